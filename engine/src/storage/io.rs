//! The file layer under the WAL, and filesystem helpers.
//!
//! [`WalFile`] is the small storage trait the WAL writes through. [`OsFile`]
//! is the real file. [`MemFile`] is an in-memory file for tests: it keeps
//! the *live* bytes (what a reader of the running process sees) apart from
//! the *durable* bytes (what the last successful `sync_data` made safe), and
//! can fail any numbered operation with a chosen error, once or from then on.
//! A simulated power loss keeps the durable bytes plus any prefix or torn
//! piece of the unsynced tail.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::vfs::{Access, FileHandle, FileSystem, OsFs};

/// Reads a whole file of at most `size_max` bytes from the real file
/// system ([`crate::vfs::read_bounded`]): regular files only, opened
/// without blocking, size-capped.
pub fn read_file_bounded(path: &Path, size_max: u64) -> io::Result<Vec<u8>> {
    crate::vfs::read_bounded(&OsFs, path, size_max)
}

/// Reads a JSON file AeroDB reads (config, schema, metadata) under
/// `JSON_FILE_SIZE_MAX_BYTES`.
pub fn read_json_file(path: &Path) -> io::Result<Vec<u8>> {
    read_file_bounded(path, aerodb_format::JSON_FILE_SIZE_MAX_BYTES)
}

/// The operations the WAL needs from its file. The WAL is preallocated:
/// the file is grown in large zero-filled steps ([`WalFile::grow`]) and
/// records are written into that space ([`WalFile::write_at`]), so a
/// commit's fdatasync never has to write the file's size.
pub trait WalFile: Send {
    /// Current length in bytes (the preallocated space included).
    fn len(&self) -> io::Result<u64>;
    /// Writes `bytes` at `offset` (inside the file's length).
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every written byte durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Overwrites `length` bytes at `offset` with zeros (cuts a partial or
    /// torn record off; the file keeps its length).
    fn zero(&mut self, offset: u64, length: u64) -> io::Result<()>;
    /// Extends the file to `length` bytes by writing zeros (real zeros,
    /// not a hole or an unwritten extent). Not synced.
    fn grow(&mut self, length: u64) -> io::Result<()>;
    /// Reads exactly `buffer.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()>;
    /// A read-only map of the whole file, for a reader that jumps around in
    /// it (replay reads one small delta after another); `None` when the
    /// file cannot be mapped (the in-memory file), and the caller reads.
    fn map_read_only(&self) -> Option<memmap2::Mmap> {
        None
    }
}

/// Bytes of zeros written per `write` when a WAL file grows or is cut.
const ZERO_CHUNK_BYTES: usize = 1024 * 1024;

/// The WAL's file over any [`FileSystem`]'s file (the real one, or the
/// simulator's).
pub struct OsFile {
    file: Box<dyn FileHandle>,
    length: u64,
}

impl OsFile {
    /// Opens a real file.
    pub fn open(path: &Path) -> io::Result<OsFile> {
        OsFile::open_in(&OsFs, path)
    }

    /// Opens `path` through `fs`.
    pub fn open_in(fs: &dyn FileSystem, path: &Path) -> io::Result<OsFile> {
        let file = fs.open(path, Access::ReadWrite)?;
        let length = file.len()?;
        Ok(OsFile { file, length })
    }

    fn write_zeros(&mut self, mut offset: u64, end: u64) -> io::Result<()> {
        let zeros = vec![0u8; ZERO_CHUNK_BYTES.min((end - offset) as usize)];
        while offset < end {
            let length = zeros.len().min((end - offset) as usize);
            self.file.write_at(offset, &zeros[..length])?;
            offset += length as u64;
            self.length = self.length.max(offset);
        }
        Ok(())
    }
}

impl WalFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.length)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.write_at(offset, bytes)?;
        self.length = self.length.max(offset + bytes.len() as u64);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn zero(&mut self, offset: u64, length: u64) -> io::Result<()> {
        self.write_zeros(offset, offset + length)
    }

    fn grow(&mut self, length: u64) -> io::Result<()> {
        if length > self.length {
            self.write_zeros(self.length, length)?;
        }
        Ok(())
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        self.file.read_at(offset, buffer)
    }

    fn map_read_only(&self) -> Option<memmap2::Mmap> {
        // The mapping's guarantees are stated at `vfs::OsHandle::map_read_only`.
        self.file.map_read_only()
    }
}

/// Which operation a [`MemFile`] fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    /// A record write.
    Append,
    /// An fdatasync.
    Sync,
    /// A cut (the zeroing of a partial or torn record).
    Truncate,
    /// A growth of the preallocated space.
    Grow,
}

/// A planned failure: the `nth` (0-based) operation of kind `op` fails with
/// `kind`; if `sticky`, every later one of that kind fails too. A failing
/// append first writes `partial_bytes` of its data (a torn write).
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub op: FaultOp,
    pub nth: u64,
    pub sticky: bool,
    pub kind: io::ErrorKind,
    pub partial_bytes: usize,
}

#[derive(Default, Debug)]
pub struct MemState {
    pub live: Vec<u8>,
    pub durable: Vec<u8>,
    pub faults: Vec<Fault>,
    counts: [u64; 4],
}

/// An in-memory [`WalFile`]; clones share the same bytes.
#[derive(Clone, Default, Debug)]
pub struct MemFile {
    state: Arc<Mutex<MemState>>,
}

impl MemFile {
    pub fn new(initial: Vec<u8>) -> MemFile {
        let state = MemState { durable: initial.clone(), live: initial, ..MemState::default() };
        MemFile { state: Arc::new(Mutex::new(state)) }
    }

    pub fn state(&self) -> MutexGuard<'_, MemState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state().faults.push(fault);
    }

    pub fn live(&self) -> Vec<u8> {
        self.state().live.clone()
    }

    pub fn durable(&self) -> Vec<u8> {
        self.state().durable.clone()
    }

    /// How many operations of kind `op` the file has seen (failed ones too).
    pub fn operations(&self, op: FaultOp) -> u64 {
        self.state().counts[op as usize]
    }

    fn check(&self, op: FaultOp) -> Option<Fault> {
        let mut state = self.state();
        let index = op as usize;
        let nth = state.counts[index];
        state.counts[index] += 1;
        state.faults.iter().copied().find(|fault| fault.op == op && (fault.nth == nth || (fault.sticky && nth >= fault.nth)))
    }
}

impl WalFile for MemFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state().live.len() as u64)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let fault = self.check(FaultOp::Append);
        let length = match fault {
            Some(fault) => fault.partial_bytes.min(bytes.len()),
            None => bytes.len(),
        };
        {
            let mut state = self.state();
            let start = offset as usize;
            if state.live.len() < start + length {
                state.live.resize(start + length, 0);
            }
            state.live[start..start + length].copy_from_slice(&bytes[..length]);
        }
        match fault {
            Some(fault) => Err(io::Error::new(fault.kind, "injected append failure")),
            None => Ok(()),
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        if let Some(fault) = self.check(FaultOp::Sync) {
            return Err(io::Error::new(fault.kind, "injected fdatasync failure"));
        }
        let mut state = self.state();
        state.durable = state.live.clone();
        Ok(())
    }

    fn zero(&mut self, offset: u64, length: u64) -> io::Result<()> {
        if let Some(fault) = self.check(FaultOp::Truncate) {
            return Err(io::Error::new(fault.kind, "injected cut failure"));
        }
        let mut state = self.state();
        let end = ((offset + length) as usize).min(state.live.len());
        let start = (offset as usize).min(end);
        state.live[start..end].fill(0);
        Ok(())
    }

    fn grow(&mut self, length: u64) -> io::Result<()> {
        if let Some(fault) = self.check(FaultOp::Grow) {
            return Err(io::Error::new(fault.kind, "injected growth failure"));
        }
        let mut state = self.state();
        if state.live.len() < length as usize {
            state.live.resize(length as usize, 0);
        }
        Ok(())
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let state = self.state();
        let start = offset as usize;
        match state.live.get(start..start + buffer.len()) {
            Some(bytes) => {
                buffer.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end")),
        }
    }
}

/// Planned failures of segment allocation (the fallocate of a new segment
/// file), for the I/O-error tests: the `nth` (0-based) allocation fails with
/// `kind`, and every later one too if `sticky`. Clones share the counter.
#[derive(Clone, Debug)]
pub struct AllocationFaults {
    pub nth: u64,
    pub sticky: bool,
    pub kind: io::ErrorKind,
    count: Arc<Mutex<u64>>,
}

impl AllocationFaults {
    pub fn new(nth: u64, sticky: bool, kind: io::ErrorKind) -> AllocationFaults {
        AllocationFaults { nth, sticky, kind, count: Arc::new(Mutex::new(0)) }
    }

    /// Counts one allocation; the error it must fail with, if any.
    pub fn check(&self) -> Option<io::Error> {
        let mut count = match self.count.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let nth = *count;
        *count += 1;
        (nth == self.nth || (self.sticky && nth > self.nth)).then(|| io::Error::new(self.kind, "injected allocation failure"))
    }
}

/// Creates a new file, owner-only (0600), failing if it exists.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path)
}

/// Creates a directory, owner-only (0700).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

/// Fills `out` with random bytes from `/dev/urandom`.
pub fn random_bytes(out: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    File::open("/dev/urandom")?.read_exact(out)
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of
/// replacing anything at `to` (Linux `renameat2` with `RENAME_NOREPLACE`).
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(from.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let result = unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::RENAME_NOREPLACE) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// fsyncs a directory so the entries created in it are durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Reserves the disk blocks of `length` bytes (posix_fallocate), so a full
/// disk fails here and never later as a SIGBUS in a mapping.
pub fn allocate(file: &File, length: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let length = libc::off_t::try_from(length).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
    // SAFETY: posix_fallocate only reads its integer arguments and operates
    // on a file descriptor that `file` keeps open for the call.
    let result = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, length) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_file_separates_live_and_durable() {
        let mut file = MemFile::new(vec![1, 2]);
        file.write_at(2, &[3, 4]).unwrap();
        assert_eq!(file.live(), vec![1, 2, 3, 4]);
        assert_eq!(file.durable(), vec![1, 2]);
        file.sync_data().unwrap();
        assert_eq!(file.durable(), vec![1, 2, 3, 4]);
        file.grow(6).unwrap();
        file.zero(1, 2).unwrap();
        assert_eq!(file.live(), vec![1, 0, 0, 4, 0, 0]);
        assert_eq!(file.durable(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn mem_file_faults_fire_once_or_sticky() {
        let mut file = MemFile::new(Vec::new());
        file.add_fault(Fault { op: FaultOp::Append, nth: 1, sticky: false, kind: io::ErrorKind::StorageFull, partial_bytes: 1 });
        file.write_at(0, &[1]).unwrap();
        assert!(file.write_at(1, &[2, 2]).is_err());
        assert_eq!(file.live(), vec![1, 2]);
        file.write_at(2, &[3]).unwrap();
        file.add_fault(Fault { op: FaultOp::Sync, nth: 0, sticky: true, kind: io::ErrorKind::Other, partial_bytes: 0 });
        assert!(file.sync_data().is_err());
        assert!(file.sync_data().is_err());
        file.add_fault(Fault { op: FaultOp::Grow, nth: 0, sticky: false, kind: io::ErrorKind::StorageFull, partial_bytes: 0 });
        assert!(file.grow(100).is_err());
        assert_eq!(file.live().len(), 3);
    }

    #[test]
    fn os_file_grows_with_written_zeros_and_cuts_by_zeroing() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("wal");
        std::fs::write(&path, b"abc").unwrap();
        let mut file = OsFile::open(&path).unwrap();
        file.grow(3 + 2 * ZERO_CHUNK_BYTES as u64 + 5).unwrap();
        assert_eq!(file.len().unwrap(), 3 + 2 * ZERO_CHUNK_BYTES as u64 + 5);
        file.write_at(3, b"defg").unwrap();
        file.zero(5, 2).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..7], b"abcde\0\0");
        assert!(bytes[7..].iter().all(|&byte| byte == 0));
        // Written zeros, not a hole: every block is allocated.
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(&path).unwrap();
        assert!(metadata.blocks() * 512 >= metadata.len(), "the grown space is a hole");
    }
}
