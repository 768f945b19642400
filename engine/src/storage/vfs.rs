//! The file-system interface every file of a database goes through.
//!
//! [`FileSystem`] names files and folders (open, list, rename, remove,
//! folder sync); [`FileHandle`] is one open file (read and write by offset,
//! allocate, sync, lock, map); [`Mapping`] is a whole-file shared mapping
//! (the segments). [`OsFs`] is the real one. [`SimFs`] is the simulated one
//! the power-loss and I/O-failure tests drive: it keeps a *live* and a
//! *durable* image of every file's bytes and of every folder's entries,
//! builds the image a power loss would leave (unsynced writes dropped,
//! kept, or torn and reordered at sector granularity, unsynced folder
//! entries kept or lost), and fails the Nth mutating operation on request.
//!
//! What "durable" means in the simulator, the rules the engine must keep:
//! a file's bytes and length are durable once `sync_data` or `sync_all` of
//! that file returns; a folder entry (a created, renamed or removed name)
//! is durable once `sync_dir` of that folder returns. Nothing else is.
//! The simulator keys folder entries by path: renaming a folder moves its
//! durable entries with it at once (the engine renames folders only when
//! it creates a tree that is not yet in use: `init`, a backup).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link, FIFO, device or socket.
    Other,
}

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only, never blocking (a FIFO in a file's place does not hang).
    Read,
    /// Read and write an existing file.
    ReadWrite,
    /// Create a new owner-only (0600) file for reading and writing; fails
    /// with `AlreadyExists` if the name is taken.
    CreateNew,
}

/// The file-system operations the engine uses, by path.
pub trait FileSystem: Send + Sync + fmt::Debug {
    fn open(&self, path: &Path, access: Access) -> io::Result<Box<dyn FileHandle>>;
    /// What `path` names, following symbolic links; `NotFound` if nothing.
    fn kind(&self, path: &Path) -> io::Result<EntryKind>;
    /// Whether anything (a dangling symbolic link too) is at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// What `path` names itself, without following a symbolic link (a
    /// link is `Other`); `NotFound` if nothing.
    fn kind_no_follow(&self, path: &Path) -> io::Result<EntryKind> {
        self.kind(path)
    }
    /// The names in a folder, in no particular order (made UTF-8, lossily).
    fn list(&self, folder: &Path) -> io::Result<Vec<String>>;
    /// The names in a folder exactly as the file system holds them.
    fn list_raw(&self, folder: &Path) -> io::Result<Vec<std::ffi::OsString>> {
        Ok(self.list(folder)?.into_iter().map(std::ffi::OsString::from).collect())
    }
    /// Removes a tree (files and folders) this process made, as far as it
    /// can; a symbolic link in it is removed, never followed.
    fn remove_tree(&self, path: &Path) {
        if self.kind(path).ok() == Some(EntryKind::Dir) {
            for name in self.list_raw(path).unwrap_or_default() {
                self.remove_tree(&path.join(name));
            }
            let _ = self.remove_dir(path);
        } else {
            let _ = self.remove_file(path);
        }
    }
    /// Creates an owner-only (0700) folder.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Renames, replacing whatever `to` names.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Renames, failing with `AlreadyExists` instead of replacing anything.
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty folder.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Makes the folder's entries durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Random bytes (temporary names, database ids).
    fn random_bytes(&self, out: &mut [u8]) -> io::Result<()>;
}

/// One open file.
pub trait FileHandle: Send + Sync {
    fn len(&self) -> io::Result<u64>;
    /// Whether the handle is a regular file (not a folder, FIFO or device).
    fn is_regular(&self) -> io::Result<bool>;
    /// Reads exactly `buffer.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()>;
    /// Reads at most `buffer.len()` bytes at `offset`; 0 at the end.
    fn read_some(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `bytes` at `offset`, growing the file if needed.
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Reserves the blocks of the first `length` bytes (posix_fallocate);
    /// the file grows to `length` if shorter.
    fn allocate(&self, length: u64) -> io::Result<()>;
    /// fdatasync: the bytes written and the length are durable.
    fn sync_data(&self) -> io::Result<()>;
    /// fsync: the bytes and every attribute are durable.
    fn sync_all(&self) -> io::Result<()>;
    /// Takes a shared or exclusive advisory lock without waiting; `false`
    /// if another holder prevents it. Released when the handle is dropped.
    fn try_lock(&self, exclusive: bool) -> io::Result<bool>;
    /// A shared read-write mapping of the whole file.
    fn map(&self) -> io::Result<Box<dyn Mapping>>;
    /// A read-only map for a reader that jumps around; `None` where the
    /// file system cannot map (the simulator), and the caller reads.
    fn map_read_only(&self) -> Option<memmap2::Mmap> {
        None
    }
}

/// A whole-file shared mapping.
///
/// Two ways of writing: [`Mapping::write`] is a write the file sees at once
/// (as a store into a shared mapping is, for every reader and after a crash
/// of the process); [`Mapping::bytes_mut`] edits in place and the simulator
/// sees those edits only at [`Mapping::flush`], so it must only be used for
/// derived files whose content a crash may lose entirely (index pages).
pub trait Mapping: Send + Sync {
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
    fn write(&mut self, offset: usize, bytes: &[u8]);
    /// Writes every changed page back and waits for it (msync).
    fn flush(&self) -> io::Result<()>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFs;

fn entry_kind(kind: std::fs::FileType) -> EntryKind {
    if kind.is_file() {
        EntryKind::File
    } else if kind.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::Other
    }
}

/// The one real file system, shared.
pub fn os() -> Arc<dyn FileSystem> {
    Arc::new(OsFs)
}

struct OsHandle {
    file: File,
}

impl FileSystem for OsFs {
    fn open(&self, path: &Path, access: Access) -> io::Result<Box<dyn FileHandle>> {
        let mut options = OpenOptions::new();
        match access {
            Access::Read => options.read(true).custom_flags(libc::O_NONBLOCK),
            Access::ReadWrite => options.read(true).write(true),
            Access::CreateNew => options.read(true).write(true).create_new(true).mode(0o600),
        };
        Ok(Box::new(OsHandle { file: options.open(path)? }))
    }

    fn kind(&self, path: &Path) -> io::Result<EntryKind> {
        Ok(entry_kind(std::fs::metadata(path)?.file_type()))
    }

    fn exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }

    fn kind_no_follow(&self, path: &Path) -> io::Result<EntryKind> {
        Ok(entry_kind(std::fs::symlink_metadata(path)?.file_type()))
    }

    fn list(&self, folder: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(folder)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn list_raw(&self, folder: &Path) -> io::Result<Vec<std::ffi::OsString>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(folder)? {
            names.push(entry?.file_name());
        }
        Ok(names)
    }

    fn remove_tree(&self, path: &Path) {
        let _ = std::fs::remove_dir_all(path);
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        crate::io::rename_no_replace(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn random_bytes(&self, out: &mut [u8]) -> io::Result<()> {
        crate::io::random_bytes(out)
    }
}

impl FileHandle for OsHandle {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn is_regular(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.is_file())
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buffer, offset)
    }

    fn read_some(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read_at(buffer, offset) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)
    }

    fn allocate(&self, length: u64) -> io::Result<()> {
        crate::io::allocate(&self.file, length)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn try_lock(&self, exclusive: bool) -> io::Result<bool> {
        let taken = if exclusive { self.file.try_lock() } else { self.file.try_lock_shared() };
        match taken {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }

    fn map(&self) -> io::Result<Box<dyn Mapping>> {
        // SAFETY: memmap2's `map_mut` is a MAP_SHARED mapping of the whole
        // file. The engine maps only segment files, which it made exactly
        // one segment long and allocated in full (posix_fallocate) before
        // mapping, so a store never needs a new block. Guaranteed: no AeroDB
        // process truncates, shrinks or writes a mapped segment (the
        // database LOCK admits one engine; the tools read by offset and
        // never write), and this process reaches the file only through this
        // map while it is mapped. Not guaranteed, and ending in SIGBUS (not
        // an error code): another program truncating the file while it is
        // mapped, an I/O error when the kernel reads a mapped page in, and a
        // write fault that cannot get a block (a full copy-on-write or
        // compressing file system, where preallocation reserves nothing).
        // docs/BOOT.md ("What a mapping cannot report") says so to users.
        let map = unsafe { memmap2::MmapMut::map_mut(&self.file) }?;
        Ok(Box::new(OsMapping { map }))
    }

    fn map_read_only(&self) -> Option<memmap2::Mmap> {
        // SAFETY: a read-only MAP_SHARED mapping (memmap2's `map`), alive
        // only while the caller holds the database's lock. Guaranteed: no
        // AeroDB process truncates the WAL while it is mapped (the engine
        // cuts a tail by writing zeros and only ever grows the file; the
        // tools never map or write it). Not guaranteed, and ending in
        // SIGBUS: a truncation by another program, or an I/O error when a
        // mapped page is read in (docs/BOOT.md, "What a mapping cannot
        // report").
        unsafe { memmap2::Mmap::map(&self.file) }.ok()
    }
}

struct OsMapping {
    map: memmap2::MmapMut,
}

/// Zeroed memory of `length` bytes with no file behind it (kernel zero
/// pages until written), as a [`Mapping`] whose flush writes nothing: the
/// pages of a derived space, which the pager writes to their file itself.
pub fn anonymous_mapping(length: usize) -> io::Result<Box<dyn Mapping>> {
    Ok(Box::new(OsMapping { map: memmap2::MmapMut::map_anon(length)? }))
}

impl Mapping for OsMapping {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.map[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }
}

/// Reads a whole file of at most `size_max` bytes through `fs`. The file is
/// opened without blocking and must be a regular file: a FIFO, a device or
/// a folder in its place is refused at once, and so is a file over
/// `size_max` (checked before reading).
pub fn read_bounded(fs: &dyn FileSystem, path: &Path, size_max: u64) -> io::Result<Vec<u8>> {
    let file = fs.open(path, Access::Read)?;
    if !file.is_regular()? {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    let length = file.len()?;
    if length > size_max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{length} bytes, over the limit of {size_max}")));
    }
    // Read to the end, whatever the length was: a file that shrank gives
    // what it holds, one that grew past the limit is refused.
    let mut bytes = vec![0u8; length as usize + 1];
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            if bytes.len() as u64 > size_max {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("more than {size_max} bytes, over the limit")));
            }
            bytes.resize((bytes.len() * 2).min(size_max as usize + 1), 0);
        }
        let read = file.read_some(filled as u64, &mut bytes[filled..])?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// Reads a JSON file AeroDB reads (schema, metadata) under
/// `JSON_FILE_SIZE_MAX_BYTES`.
pub fn read_json(fs: &dyn FileSystem, path: &Path) -> io::Result<Vec<u8>> {
    read_bounded(fs, path, aerodb_format::JSON_FILE_SIZE_MAX_BYTES)
}

/// Whether `path` names something, following symbolic links.
pub fn exists_follow(fs: &dyn FileSystem, path: &Path) -> bool {
    fs.kind(path).is_ok()
}

fn random_tag(fs: &dyn FileSystem) -> io::Result<String> {
    let mut tag = [0u8; 6];
    fs.random_bytes(&mut tag)?;
    Ok(tag.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder, fsync, rename, fsync of the folder.
pub fn write_atomic(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    // A name of this write's own (process id and random bytes): two
    // processes writing the same file (`aerodb schema add` beside a boot
    // recording hashes) never share or remove each other's temporary file.
    let temporary = folder.join(format!(".{name}.tmp-{}-{}", std::process::id(), random_tag(fs)?));
    let written = fs.open(&temporary, Access::CreateNew).and_then(|file| {
        file.write_at(0, bytes)?;
        file.sync_all()?;
        // The new content is durable under its temporary name; the old one is still in place.
        crate::crash::reach("metadata_before_rename");
        Ok(())
    });
    if let Err(error) = written.and_then(|()| fs.rename(&temporary, path)) {
        let _ = fs.remove_file(&temporary);
        return Err(error);
    }
    fs.sync_dir(folder)
}

/// Creates `path` as a new file holding `bytes`, synced (its folder is not).
pub fn write_new(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = fs.open(path, Access::CreateNew)?;
    file.write_at(0, bytes)?;
    file.sync_all()
}

/// Where to build a tree that will be renamed to `target`: beside it (same
/// file system, so the rename is atomic), under a name no other process
/// uses, `.<name>.<purpose>-<pid>-<12 hex digits>`. Returns the staging
/// path and the folder holding both.
pub fn staging_path(fs: &dyn FileSystem, target: &Path, purpose: &str) -> io::Result<(PathBuf, PathBuf)> {
    let name = target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| purpose.to_string());
    let parent = target.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Ok((parent.join(format!(".{name}.{purpose}-{}-{}", std::process::id(), random_tag(fs)?)), parent))
}

// ---------------------------------------------------------------------------
// The simulator.

/// Bytes of one sector: the unit a torn write keeps or loses.
pub const SECTOR_BYTES: usize = 512;

/// The mutating operations the simulator counts (and can fail or cut
/// power after): everything that changes a file, a folder or durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimOp {
    Create,
    Write,
    Allocate,
    SyncData,
    SyncAll,
    CreateDir,
    Rename,
    Remove,
    SyncDir,
    /// The msync of a mapping.
    Flush,
}

/// Which folder entries a power-loss image keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// Only the entries a folder sync made durable.
    Durable,
    /// Every entry as the running process saw it (the kernel had written
    /// every folder change).
    Live,
}

/// Which file bytes a power-loss image keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bytes {
    /// Only what a sync made durable: every unsynced write is lost.
    Durable,
    /// Every write (the kernel had written everything back).
    Live,
    /// For every sector an unsynced write changed, the new or the old
    /// content, chosen by a generator seeded with this value (torn writes,
    /// writes reaching the disk out of order); and the old or the new length.
    Torn(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(u64),
}

#[derive(Clone, Debug, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
}

/// A planned failure: the `nth` (0-based) counted operation fails with
/// `kind` (and every later one too if `sticky`). A failing write first
/// writes its first `partial_bytes` (a torn write), or all of them if
/// `applied`.
#[derive(Clone, Copy, Debug)]
pub struct SimFault {
    pub nth: u64,
    pub sticky: bool,
    pub kind: io::ErrorKind,
    pub partial_bytes: usize,
    /// The failing write or sync does all its work before it reports the
    /// error (as fsync may after an I/O error: the data can be on disk).
    pub applied: bool,
}

/// How a counted operation fails.
struct Failure {
    error: io::Error,
    /// Bytes a failing write still writes.
    partial_bytes: usize,
    /// The operation did all its work and then reported the error (a sync
    /// that reached the disk, a write that was made whole).
    applied: bool,
}

#[derive(Debug, Default)]
struct SimState {
    live: BTreeMap<PathBuf, Node>,
    durable: BTreeMap<PathBuf, Node>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    operations: u64,
    log: Vec<SimOp>,
    fault: Option<SimFault>,
    /// Reads (and the reads of a file a mapping makes) so far, counted
    /// apart from the mutating operations.
    reads: u64,
    read_fault: Option<SimFault>,
    /// After this many counted operations the power is off: every later
    /// counted operation fails and changes nothing.
    power_off_after: Option<u64>,
    random: u64,
    locks: BTreeMap<u64, (usize, bool)>,
}

/// The simulated file system; clones share the same files.
#[derive(Clone, Debug, Default)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

fn clean(path: &Path) -> PathBuf {
    path.components().filter(|component| !matches!(component, Component::CurDir)).collect()
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or folder", path.display()))
}

impl SimState {
    /// Counts one operation; how it must fail, if it must.
    fn count(&mut self, op: SimOp) -> Option<Failure> {
        let nth = self.operations;
        self.operations += 1;
        self.log.push(op);
        if self.power_off_after.is_some_and(|last| nth >= last) {
            return Some(Failure { error: io::Error::other("the power is off"), partial_bytes: 0, applied: false });
        }
        match self.fault {
            Some(fault) if fault.nth == nth || (fault.sticky && nth > fault.nth) => Some(Failure {
                error: io::Error::new(fault.kind, format!("injected failure of operation {nth} ({op:?})")),
                partial_bytes: fault.partial_bytes,
                // Only a write or a sync can have done its work and still
                // report an error; every other operation fails before it.
                applied: fault.applied && matches!(op, SimOp::Write | SimOp::SyncData | SimOp::SyncAll | SimOp::SyncDir | SimOp::Flush),
            }),
            _ => None,
        }
    }

    /// Counts one read; the error it must fail with, if any.
    fn count_read(&mut self) -> Option<io::Error> {
        let nth = self.reads;
        self.reads += 1;
        match self.read_fault {
            Some(fault) if fault.nth == nth || (fault.sticky && nth > fault.nth) => {
                Some(io::Error::new(fault.kind, format!("injected failure of read {nth}")))
            }
            _ => None,
        }
    }

    fn node(&self, path: &Path) -> io::Result<Node> {
        self.live.get(path).copied().ok_or_else(|| not_found(path))
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => match self.live.get(parent) {
                Some(Node::Dir) => Ok(()),
                Some(Node::File(_)) => Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}", parent.display()))),
                None => Err(not_found(parent)),
            },
            _ => Ok(()),
        }
    }

    fn inode(&mut self, number: u64) -> &mut Inode {
        self.inodes.entry(number).or_default()
    }
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Copies a real folder tree (files and folders; anything else is
    /// skipped) into the simulator at the same paths, live and durable, with
    /// every ancestor folder of `root`.
    pub fn load_tree(&self, root: &Path) -> io::Result<()> {
        let root = clean(root);
        let mut state = self.state();
        for ancestor in root.ancestors().skip(1).filter(|path| !path.as_os_str().is_empty()) {
            state.live.insert(ancestor.to_path_buf(), Node::Dir);
            state.durable.insert(ancestor.to_path_buf(), Node::Dir);
        }
        let mut pending = vec![root];
        while let Some(path) = pending.pop() {
            let kind = std::fs::symlink_metadata(&path)?.file_type();
            if kind.is_dir() {
                state.live.insert(path.clone(), Node::Dir);
                state.durable.insert(path.clone(), Node::Dir);
                for entry in std::fs::read_dir(&path)? {
                    pending.push(path.join(entry?.file_name()));
                }
            } else if kind.is_file() {
                let bytes = std::fs::read(&path)?;
                let number = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(number, Inode { live: bytes.clone(), durable: bytes });
                state.live.insert(path.clone(), Node::File(number));
                state.durable.insert(path, Node::File(number));
            }
        }
        Ok(())
    }

    /// The live bytes of the file live-named `path`.
    pub fn live_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state();
        match state.live.get(&clean(path)) {
            Some(Node::File(number)) => state.inodes.get(number).map(|inode| inode.live.clone()),
            _ => None,
        }
    }

    /// The durable bytes of the file durably named `path`.
    pub fn durable_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state();
        match state.durable.get(&clean(path)) {
            Some(Node::File(number)) => state.inodes.get(number).map(|inode| inode.durable.clone()),
            _ => None,
        }
    }

    /// The live names under `folder` (one level), sorted.
    pub fn names(&self, folder: &Path) -> Vec<String> {
        let folder = clean(folder);
        let state = self.state();
        state
            .live
            .keys()
            .filter(|path| path.parent() == Some(folder.as_path()))
            .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
            .collect()
    }

    /// Counted operations so far.
    pub fn operations(&self) -> u64 {
        self.state().operations
    }

    /// The kind of every counted operation so far, in order.
    pub fn operation_log(&self) -> Vec<SimOp> {
        self.state().log.clone()
    }

    /// Fails operation `fault.nth` (counted from now on the whole count).
    pub fn set_fault(&self, fault: Option<SimFault>) {
        self.state().fault = fault;
    }

    /// Reads so far (each `read_at`, and each mapping made).
    pub fn reads(&self) -> u64 {
        self.state().reads
    }

    /// Fails read `fault.nth` (a read fault writes nothing: `partial_bytes`
    /// is not used).
    pub fn set_read_fault(&self, fault: Option<SimFault>) {
        self.state().read_fault = fault;
    }

    /// Turns the power off after `operations` counted operations (counting
    /// from the first operation of this file system): from then on every
    /// counted operation fails and changes nothing, as on a dead machine.
    pub fn power_off_after(&self, operations: u64) {
        self.state().power_off_after = Some(operations);
    }

    /// The file system a power loss at this moment would leave, as a new
    /// simulator whose live and durable images are both that image.
    pub fn power_loss_image(&self, names: Names, bytes: Bytes) -> SimFs {
        let state = self.state();
        let entries = match names {
            Names::Durable => &state.durable,
            Names::Live => &state.live,
        };
        let mut image = SimState { next_inode: state.next_inode, random: state.random, ..SimState::default() };
        let mut rng = match bytes {
            Bytes::Torn(seed) => Some(fastrand_like::Rng::new(seed)),
            _ => None,
        };
        // An entry whose folder did not survive is unreachable: left out.
        let reachable = |path: &Path| {
            path.ancestors()
                .skip(1)
                .filter(|ancestor| !ancestor.as_os_str().is_empty())
                .all(|ancestor| entries.get(ancestor) == Some(&Node::Dir))
        };
        for (path, node) in entries.iter().filter(|(path, _)| reachable(path)) {
            image.live.insert(path.clone(), *node);
            image.durable.insert(path.clone(), *node);
            if let Node::File(number) = node {
                if image.inodes.contains_key(number) {
                    continue;
                }
                let inode = state.inodes.get(number).cloned().unwrap_or_default();
                let content = match (bytes, rng.as_mut()) {
                    (Bytes::Durable, _) => inode.durable,
                    (Bytes::Live, _) => inode.live,
                    (_, Some(rng)) => torn(&inode, rng),
                    (Bytes::Torn(_), None) => inode.durable,
                };
                image.inodes.insert(*number, Inode { live: content.clone(), durable: content });
            }
        }
        SimFs { state: Arc::new(Mutex::new(image)) }
    }
}

/// A torn mix of a file's durable and live bytes, sector by sector.
fn torn(inode: &Inode, rng: &mut fastrand_like::Rng) -> Vec<u8> {
    let length = if rng.bit() { inode.live.len() } else { inode.durable.len() };
    let mut out = vec![0u8; length];
    for (index, sector) in out.chunks_mut(SECTOR_BYTES).enumerate() {
        let start = index * SECTOR_BYTES;
        let end = start + sector.len();
        let old = inode.durable.get(start..end.min(inode.durable.len())).unwrap_or(&[]);
        let new = inode.live.get(start..end.min(inode.live.len())).unwrap_or(&[]);
        let source = if old == new || rng.bit() { old } else { new };
        sector[..source.len()].copy_from_slice(source);
    }
    out
}

/// A tiny deterministic generator (xorshift64*), so the simulator needs
/// no random-number crate.
mod fastrand_like {
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        pub fn bit(&mut self) -> bool {
            self.next() >> 63 == 1
        }
    }
}

impl FileSystem for SimFs {
    fn open(&self, path: &Path, access: Access) -> io::Result<Box<dyn FileHandle>> {
        let path = clean(path);
        let mut state = self.state();
        let number = match access {
            Access::Read | Access::ReadWrite => match state.node(&path)? {
                Node::File(number) => Some(number),
                Node::Dir if access == Access::Read => None,
                Node::Dir => return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{}", path.display()))),
            },
            Access::CreateNew => {
                state.check_parent(&path)?;
                if state.live.contains_key(&path) {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
                }
                if let Some(failure) = state.count(SimOp::Create) {
                    return Err(failure.error);
                }
                let number = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(number, Inode::default());
                state.live.insert(path.clone(), Node::File(number));
                Some(number)
            }
        };
        // Locks are per file identity: the inode, or for a folder its path.
        let key = match number {
            Some(number) => number,
            None => {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                path.hash(&mut hasher);
                hasher.finish() | 1 << 63
            }
        };
        Ok(Box::new(SimHandle { fs: self.clone(), number, key, lock: Mutex::new(None) }))
    }

    fn kind(&self, path: &Path) -> io::Result<EntryKind> {
        match self.state().node(&clean(path))? {
            Node::Dir => Ok(EntryKind::Dir),
            Node::File(_) => Ok(EntryKind::File),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        self.state().live.contains_key(&clean(path))
    }

    fn list(&self, folder: &Path) -> io::Result<Vec<String>> {
        let folder = clean(folder);
        let node = self.state().node(&folder)?;
        match node {
            Node::Dir => Ok(self.names(&folder)),
            Node::File(_) => Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}", folder.display()))),
        }
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let path = clean(path);
        let mut state = self.state();
        state.check_parent(&path)?;
        if state.live.contains_key(&path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
        }
        if let Some(failure) = state.count(SimOp::CreateDir) {
            return Err(failure.error);
        }
        state.live.insert(path, Node::Dir);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_inner(from, to, true)
    }

    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_inner(from, to, false)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = clean(path);
        let mut state = self.state();
        match state.node(&path)? {
            Node::File(_) => {}
            Node::Dir => return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{}", path.display()))),
        }
        if let Some(failure) = state.count(SimOp::Remove) {
            return Err(failure.error);
        }
        state.live.remove(&path);
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let path = clean(path);
        if self.state().node(&path)? != Node::Dir {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}", path.display())));
        }
        if !self.names(&path).is_empty() {
            return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, format!("{}", path.display())));
        }
        let mut state = self.state();
        if let Some(failure) = state.count(SimOp::Remove) {
            return Err(failure.error);
        }
        state.live.remove(&path);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let folder = clean(path);
        let mut state = self.state();
        if state.node(&folder)? != Node::Dir {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}", folder.display())));
        }
        let failure = state.count(SimOp::SyncDir);
        if let Some(failure) = failure.as_ref().filter(|failure| !failure.applied) {
            return Err(io::Error::new(failure.error.kind(), failure.error.to_string()));
        }
        let children = |map: &BTreeMap<PathBuf, Node>| -> Vec<PathBuf> {
            map.keys().filter(|path| path.parent() == Some(folder.as_path())).cloned().collect()
        };
        for gone in children(&state.durable) {
            state.durable.remove(&gone);
        }
        for path in children(&state.live) {
            let node = state.live[&path];
            // A folder entry made durable keeps the folder's own entries
            // as they were made durable (a renamed folder moves them).
            state.durable.insert(path, node);
        }
        failure.map_or(Ok(()), |failure| Err(failure.error))
    }

    fn random_bytes(&self, out: &mut [u8]) -> io::Result<()> {
        let mut state = self.state();
        for byte in out {
            state.random = state.random.wrapping_add(1);
            *byte = (state.random.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8;
        }
        Ok(())
    }
}

impl SimFs {
    fn rename_inner(&self, from: &Path, to: &Path, replace: bool) -> io::Result<()> {
        let (from, to) = (clean(from), clean(to));
        let mut state = self.state();
        let node = state.node(&from)?;
        state.check_parent(&to)?;
        match state.live.get(&to) {
            Some(_) if !replace => return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", to.display()))),
            Some(Node::Dir) => return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{}", to.display()))),
            _ => {}
        }
        if let Some(failure) = state.count(SimOp::Rename) {
            return Err(failure.error);
        }
        // Move the entry and, for a folder, every entry beneath it.
        let moved: Vec<(PathBuf, Node)> =
            state.live.iter().filter(|(path, _)| path.starts_with(&from)).map(|(path, node)| (path.clone(), *node)).collect();
        for (path, _) in &moved {
            state.live.remove(path);
        }
        for (path, node) in moved {
            let suffix = path.strip_prefix(&from).map(Path::to_path_buf).unwrap_or_default();
            let target = if suffix.as_os_str().is_empty() { to.clone() } else { to.join(suffix) };
            state.live.insert(target, node);
        }
        if let Node::Dir = node {
            // The folder's own entries travel with it durably too: they
            // belong to the folder, not to its parent's entry.
            let durable: Vec<(PathBuf, Node)> = state
                .durable
                .iter()
                .filter(|(path, _)| path.starts_with(&from) && *path != &from)
                .map(|(path, node)| (path.clone(), *node))
                .collect();
            for (path, node) in durable {
                state.durable.remove(&path);
                let suffix = path.strip_prefix(&from).map(Path::to_path_buf).unwrap_or_default();
                state.durable.insert(to.join(suffix), node);
            }
        }
        Ok(())
    }
}

struct SimHandle {
    fs: SimFs,
    /// None for a folder opened to be locked.
    number: Option<u64>,
    /// What a lock through this handle locks.
    key: u64,
    /// The lock this handle holds, released when it is dropped.
    lock: Mutex<Option<u64>>,
}

impl SimHandle {
    fn number(&self) -> io::Result<u64> {
        self.number.ok_or_else(|| io::Error::new(io::ErrorKind::IsADirectory, "a folder"))
    }

    fn sync(&self, op: SimOp) -> io::Result<()> {
        let number = self.number()?;
        let mut state = self.fs.state();
        let failure = state.count(op);
        if let Some(failure) = failure.as_ref().filter(|failure| !failure.applied) {
            return Err(io::Error::new(failure.error.kind(), failure.error.to_string()));
        }
        let inode = state.inode(number);
        inode.durable = inode.live.clone();
        failure.map_or(Ok(()), |failure| Err(failure.error))
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let held = match self.lock.get_mut() {
            Ok(held) => held.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(key) = held {
            let mut state = self.fs.state();
            if let Some(entry) = state.locks.get_mut(&key) {
                entry.0 = entry.0.saturating_sub(1);
                if entry.0 == 0 {
                    state.locks.remove(&key);
                }
            }
        }
    }
}

impl FileHandle for SimHandle {
    fn len(&self) -> io::Result<u64> {
        let number = self.number()?;
        Ok(self.fs.state().inode(number).live.len() as u64)
    }

    fn is_regular(&self) -> io::Result<bool> {
        Ok(self.number.is_some())
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let number = self.number()?;
        let mut state = self.fs.state();
        if let Some(error) = state.count_read() {
            return Err(error);
        }
        let live = &state.inode(number).live;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        match live.get(start..start + buffer.len()) {
            Some(bytes) => {
                buffer.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end")),
        }
    }

    fn read_some(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let number = self.number()?;
        let mut state = self.fs.state();
        if let Some(error) = state.count_read() {
            return Err(error);
        }
        let live = &state.inode(number).live;
        let start = usize::try_from(offset).map_err(io::Error::other)?.min(live.len());
        let length = buffer.len().min(live.len() - start);
        buffer[..length].copy_from_slice(&live[start..start + length]);
        Ok(length)
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let number = self.number()?;
        let mut state = self.fs.state();
        let failure = state.count(SimOp::Write);
        let length = match &failure {
            Some(failure) if !failure.applied => failure.partial_bytes.min(bytes.len()),
            _ => bytes.len(),
        };
        if length > 0 {
            let live = &mut state.inode(number).live;
            let start = offset as usize;
            if live.len() < start + length {
                live.resize(start + length, 0);
            }
            live[start..start + length].copy_from_slice(&bytes[..length]);
        }
        failure.map_or(Ok(()), |failure| Err(failure.error))
    }

    fn allocate(&self, length: u64) -> io::Result<()> {
        let number = self.number()?;
        let mut state = self.fs.state();
        if let Some(failure) = state.count(SimOp::Allocate) {
            return Err(failure.error);
        }
        let live = &mut state.inode(number).live;
        if (live.len() as u64) < length {
            live.resize(length as usize, 0);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync(SimOp::SyncData)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync(SimOp::SyncAll)
    }

    fn try_lock(&self, exclusive: bool) -> io::Result<bool> {
        let key = self.key;
        let mut state = self.fs.state();
        match state.locks.get_mut(&key) {
            Some((_, true)) => return Ok(false),
            Some((_, false)) if exclusive => return Ok(false),
            Some((holders, false)) => *holders += 1,
            None => {
                state.locks.insert(key, (1, exclusive));
            }
        }
        drop(state);
        if let Ok(mut held) = self.lock.lock() {
            *held = Some(key);
        }
        Ok(true)
    }

    fn map(&self) -> io::Result<Box<dyn Mapping>> {
        let number = self.number()?;
        let mut state = self.fs.state();
        if let Some(error) = state.count_read() {
            return Err(error);
        }
        let buffer = state.inode(number).live.clone();
        drop(state);
        Ok(Box::new(SimMapping { fs: self.fs.clone(), number, buffer }))
    }
}

struct SimMapping {
    fs: SimFs,
    number: u64,
    buffer: Vec<u8>,
}

impl Mapping for SimMapping {
    fn bytes(&self) -> &[u8] {
        &self.buffer
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buffer
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.buffer[offset..offset + bytes.len()].copy_from_slice(bytes);
        let mut state = self.fs.state();
        // A store into a shared mapping reaches the page cache at once, so
        // it is in the live image; with the power off it reaches nothing.
        let powered = !state.power_off_after.is_some_and(|last| state.operations >= last);
        if powered {
            let live = &mut state.inode(self.number).live;
            if live.len() >= offset + bytes.len() {
                live[offset..offset + bytes.len()].copy_from_slice(bytes);
            }
        }
    }

    fn flush(&self) -> io::Result<()> {
        let mut state = self.fs.state();
        let failure = state.count(SimOp::Flush);
        if let Some(failure) = failure.as_ref().filter(|failure| !failure.applied) {
            return Err(io::Error::new(failure.error.kind(), failure.error.to_string()));
        }
        let inode = state.inode(self.number);
        inode.live.clone_from(&self.buffer);
        inode.durable.clone_from(&self.buffer);
        failure.map_or(Ok(()), |failure| Err(failure.error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(fs: &SimFs, path: &str) -> Box<dyn FileHandle> {
        fs.open(Path::new(path), Access::CreateNew).unwrap()
    }

    fn tree() -> SimFs {
        let fs = SimFs::new();
        let mut state = fs.state();
        for folder in ["/", "/db"] {
            state.live.insert(PathBuf::from(folder), Node::Dir);
            state.durable.insert(PathBuf::from(folder), Node::Dir);
        }
        drop(state);
        fs
    }

    #[test]
    fn a_new_name_is_durable_only_after_its_folder_is_synced() {
        let fs = tree();
        let handle = file(&fs, "/db/a");
        handle.write_at(0, b"hello").unwrap();
        handle.sync_data().unwrap();
        let lost = fs.power_loss_image(Names::Durable, Bytes::Durable);
        assert!(lost.kind(Path::new("/db/a")).is_err());
        fs.sync_dir(Path::new("/db")).unwrap();
        let kept = fs.power_loss_image(Names::Durable, Bytes::Durable);
        assert_eq!(kept.live_bytes(Path::new("/db/a")).unwrap(), b"hello");
    }

    #[test]
    fn unsynced_bytes_are_dropped_kept_or_torn_by_sector() {
        let fs = tree();
        let handle = file(&fs, "/db/a");
        handle.write_at(0, &[1u8; 4 * SECTOR_BYTES]).unwrap();
        handle.sync_data().unwrap();
        fs.sync_dir(Path::new("/db")).unwrap();
        handle.write_at(0, &[2u8; 4 * SECTOR_BYTES]).unwrap();
        let path = Path::new("/db/a");
        assert_eq!(fs.power_loss_image(Names::Durable, Bytes::Durable).live_bytes(path).unwrap(), vec![1u8; 4 * SECTOR_BYTES]);
        assert_eq!(fs.power_loss_image(Names::Durable, Bytes::Live).live_bytes(path).unwrap(), vec![2u8; 4 * SECTOR_BYTES]);
        let mut mixed = false;
        for seed in 0..16 {
            let bytes = fs.power_loss_image(Names::Durable, Bytes::Torn(seed)).live_bytes(path).unwrap();
            for sector in bytes.chunks(SECTOR_BYTES) {
                assert!(sector.iter().all(|&byte| byte == sector[0]), "a sector is all old or all new");
            }
            mixed |= bytes.chunks(SECTOR_BYTES).any(|sector| sector[0] == 1) && bytes.chunks(SECTOR_BYTES).any(|sector| sector[0] == 2);
        }
        assert!(mixed, "some seed mixes old and new sectors");
    }

    #[test]
    fn a_rename_is_durable_after_the_folder_sync_and_replaces() {
        let fs = tree();
        write_atomic(&fs, Path::new("/db/state"), b"one").unwrap();
        write_atomic(&fs, Path::new("/db/state"), b"two").unwrap();
        let image = fs.power_loss_image(Names::Durable, Bytes::Durable);
        assert_eq!(image.live_bytes(Path::new("/db/state")).unwrap(), b"two");
        assert_eq!(image.names(Path::new("/db")), vec!["state".to_string()]);
        assert!(fs.rename_no_replace(Path::new("/db/state"), Path::new("/db/state")).is_err());
    }

    #[test]
    fn the_nth_operation_fails_and_a_dead_machine_writes_nothing() {
        let fs = tree();
        fs.set_fault(Some(SimFault { nth: 1, sticky: false, kind: io::ErrorKind::StorageFull, partial_bytes: 2, applied: false }));
        let handle = file(&fs, "/db/a");
        assert_eq!(handle.write_at(0, b"abcd").unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs.live_bytes(Path::new("/db/a")).unwrap(), b"ab");
        handle.write_at(0, b"xy").unwrap();
        fs.power_off_after(fs.operations());
        assert!(handle.write_at(0, b"zz").is_err());
        assert!(handle.sync_data().is_err());
        assert_eq!(fs.live_bytes(Path::new("/db/a")).unwrap(), b"xy");
        assert_eq!(fs.operation_log(), vec![SimOp::Create, SimOp::Write, SimOp::Write, SimOp::Write, SimOp::SyncData]);
    }

    #[test]
    fn a_sync_can_fail_after_its_work_is_done() {
        let fs = tree();
        let handle = file(&fs, "/db/a");
        handle.write_at(0, b"data").unwrap();
        fs.set_fault(Some(SimFault { nth: fs.operations(), sticky: false, kind: io::ErrorKind::Other, partial_bytes: 0, applied: true }));
        assert!(handle.sync_data().is_err());
        fs.set_fault(None);
        fs.sync_dir(Path::new("/db")).unwrap();
        assert_eq!(fs.durable_bytes(Path::new("/db/a")).unwrap(), b"data", "the failed sync still reached the disk");
        // A rename never fails after its work: only writes and syncs can.
        fs.set_fault(Some(SimFault { nth: fs.operations(), sticky: false, kind: io::ErrorKind::Other, partial_bytes: 0, applied: true }));
        assert!(fs.rename(Path::new("/db/a"), Path::new("/db/b")).is_err());
        assert!(fs.exists(Path::new("/db/a")) && !fs.exists(Path::new("/db/b")));
    }

    #[test]
    fn locks_exclude_each_other_until_dropped() {
        let fs = tree();
        let handle = file(&fs, "/db/LOCK");
        let other = fs.open(Path::new("/db/LOCK"), Access::ReadWrite).unwrap();
        assert!(handle.try_lock(true).unwrap());
        assert!(!other.try_lock(false).unwrap());
    }
}
