//! `aerodb backup`: a consistent, verified copy of a database, taken with
//! or without a server running on it (docs/BACKUP.md has the argument).
//!
//! The copy needs no lock and takes no part in the server's writes. It
//! rests on three facts of the format: the WAL is append-only, every record
//! is checksummed and sequence-numbered, and replay rebuilds every page
//! from its first full image in the WAL without trusting a segment's bytes.
//! So the WAL up to the end of its last whole valid record, read at one
//! moment, *is* the database as of that moment (every write acknowledged
//! before it is in it, because acknowledgement follows fdatasync), and the
//! segment files need not be copied at all: the copy's first boot replays
//! the WAL into fresh segments.
//!
//! Steps: the copy is built under a temporary name beside `DEST`
//! (`.<name>.backup-<pid>-<hex>`); MANIFEST and the frozen config are
//! copied; the WAL's length is read once and the log is scanned up to it
//! (a record being appended at that moment is a torn tail and is left
//! out); the bytes up to the last valid record are copied; the schema
//! hashes are read, then the schema files (a schema's file is written
//! before its hash, so every hash read has its file); every file and
//! folder is fsync'ed; the copy is booted with the full boot of BOOT.md
//! (replay, verification of every page, index rebuild), its `state.json`
//! written, and the segment and index files that check wrote removed (the
//! copy's first boot rebuilds them from its log); only then is it renamed
//! to `DEST` with a rename that refuses to replace anything. A backup that
//! fails or is killed leaves no `DEST`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aerodb_format::SeqNo;

use crate::config::{self, Paths};
use crate::crash;
use crate::db::{check_initialized, Database};
use crate::error::{io_error, AeroError, ErrorCode, Result};
use crate::io::WalFile;
use crate::vfs::{Access, FileHandle, FileSystem};

/// What a backup copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// Where the copy is.
    pub dest: PathBuf,
    /// WAL records copied.
    pub records: u64,
    /// The sequence number of the last record copied.
    pub last_seq: SeqNo,
    /// WAL bytes copied.
    pub wal_bytes: u64,
    /// Documents the copy holds (found by its verifying boot).
    pub documents: u64,
    /// Schema files copied.
    pub schema_files: u64,
    /// Total bytes written at `DEST`'s files before the verifying boot.
    pub bytes_copied: u64,
    /// Wall time, in milliseconds.
    pub elapsed_ms: u64,
}

/// Bytes copied per read/write of the WAL.
const COPY_CHUNK_BYTES: usize = 1024 * 1024;

/// A read-only view of a file cut at a fixed length: the WAL as it was at
/// one moment, whatever a server appends after it.
struct Snapshot {
    file: Box<dyn FileHandle>,
    length: u64,
}

impl WalFile for Snapshot {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.length)
    }
    fn write_at(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("a backup never writes the source WAL"))
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn zero(&mut self, _: u64, _: u64) -> std::io::Result<()> {
        Err(std::io::Error::other("a backup never writes the source WAL"))
    }
    fn grow(&mut self, _: u64) -> std::io::Result<()> {
        Err(std::io::Error::other("a backup never writes the source WAL"))
    }
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
        if offset + buffer.len() as u64 > self.length {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        self.file.read_at(offset, buffer)
    }
}

/// Copies the database of `config_path` to `dest` (which must not exist).
pub fn backup(config_path: &Path, dest: &Path) -> Result<BackupSummary> {
    let started = Instant::now();
    let config = config::load(config_path)?;
    let source = config.paths.clone();
    check_initialized(&source)?;
    let exists = || {
        AeroError::new(ErrorCode::StorageExists, format!("{} already exists; a backup never writes over anything", dest.display()))
            .detail("dest", dest.display().to_string())
    };
    let fs = &*source.fs;
    if fs.exists(dest) {
        return Err(exists());
    }
    // A copy inside the source would be a stray file of the source (a
    // folder in its schema, segment or index folder stops its next boot).
    // Compared with symbolic links resolved: the folder DEST would go in.
    let dest_folder = dest.parent().filter(|folder| !folder.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let (Ok(root), Ok(folder)) = (std::fs::canonicalize(&source.root), std::fs::canonicalize(dest_folder)) {
        if folder.starts_with(&root) {
            return Err(AeroError::new(
                ErrorCode::StorageExists,
                format!(
                    "{} lies inside the database's data directory {}; a backup never writes in the source",
                    dest.display(),
                    root.display()
                ),
            )
            .detail("dest", dest.display().to_string()));
        }
    }
    let (staging, parent) = crate::vfs::staging_path(fs, dest, "backup")
        .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot read", Path::new("/dev/urandom"), &error))?;
    let outcome = copy_into(&source, &staging).and_then(|mut summary| {
        // The check: the copy's own boot, every step that can refuse it
        // (replay, every page and document verified, `_id` uniqueness),
        // without building the index trees its first real boot builds.
        let copy_config = config::for_data_dir(&staging, config.values.max_wal_size_bytes, config.values.max_memory_bytes)?;
        let database = Database::open_to_check(copy_config)?;
        summary.documents = database.documents();
        if database.last_seq() != summary.last_seq {
            return Err(AeroError::invariant_broken(format!(
                "the copy boots at sequence {}, the copied log ends at {}",
                database.last_seq(),
                summary.last_seq
            )));
        }
        // The copy keeps its log and metadata only: the segments and the
        // index files the check wrote are rebuilt from the log by the copy's
        // first boot, so they are removed instead of flushed. `state.json`
        // records how far the log reaches, so that boot refuses a log that
        // later lost records.
        database.write_state_without_marker()?;
        drop(database);
        let copy = Paths::with_fs(staging.clone(), source.fs.clone());
        for folder in [&copy.data, &copy.indexes] {
            let names = fs.list_raw(folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", folder, &error))?;
            for name in names {
                let path = folder.join(name);
                fs.remove_file(&path).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot remove", &path, &error))?;
            }
            fs.sync_dir(folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", folder, &error))?;
        }
        fs.sync_dir(&copy.metadata).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", &copy.metadata, &error))?;
        fs.rename_no_replace(&staging, dest).map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => exists(),
            _ => io_error(ErrorCode::StorageIoError, "cannot rename into place", dest, &error),
        })?;
        fs.sync_dir(&parent).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", &parent, &error))?;
        Ok(summary)
    });
    match outcome {
        Ok(mut summary) => {
            summary.dest = dest.to_path_buf();
            summary.elapsed_ms = started.elapsed().as_millis() as u64;
            Ok(summary)
        }
        Err(error) => {
            // Only the tree this process made is removed.
            fs.remove_tree(&staging);
            Err(error)
        }
    }
}

/// Writes a new file with `bytes` and syncs it.
fn write_synced(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    crate::vfs::write_new(fs, path, bytes).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", path, &error))
}

fn read_small(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u8>> {
    crate::vfs::read_json(fs, path).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot read", path, &error))
}

fn copy_into(source: &Paths, staging: &Path) -> Result<BackupSummary> {
    let fs = &*source.fs;
    let target = Paths::with_fs(staging.to_path_buf(), source.fs.clone());
    for folder in [&target.root, &target.wal_dir, &target.data, &target.indexes, &target.metadata, &target.schemas] {
        fs.create_dir(folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot create", folder, &error))?;
    }
    let mut bytes_copied = 0u64;
    let manifest = crate::vfs::read_bounded(fs, &source.manifest, aerodb_format::PAGE_SIZE_BYTES as u64)
        .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot read", &source.manifest, &error))?;
    write_synced(fs, &target.manifest, &manifest)?;
    write_synced(fs, &target.lock, b"")?;
    let frozen = read_small(fs, &source.frozen_config)?;
    write_synced(fs, &target.frozen_config, &frozen)?;
    bytes_copied += (manifest.len() + frozen.len()) as u64;

    // The WAL as of now: its length once, then every valid record up to it.
    let file =
        fs.open(&source.wal, Access::Read).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot open", &source.wal, &error))?;
    let length = file.len().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot read", &source.wal, &error))?;
    let snapshot = Snapshot { file, length };
    // A server may be writing a group into the preallocated space while the
    // log is read: a read can catch a later page of that write before an
    // earlier one and see what looks like a damaged record with a valid one
    // after it. Such a race settles within one write, so the scan is tried
    // again before damage is believed; real damage stays and fails the backup.
    let mut attempt = 0;
    let scanned = loop {
        match crate::wal::scan(&snapshot, &source.wal, |_, _, _| Ok(())) {
            Err(error) if error.code == ErrorCode::WalCorruption && attempt < 3 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other?,
        }
    };
    copy_wal(fs, &snapshot, scanned.valid_end, &target.wal)?;
    bytes_copied += scanned.valid_end;

    // Hashes first, then the files (a schema file is written before its hash).
    let hashes = read_small(fs, &source.schema_hashes)?;
    let mut names: Vec<String> = fs
        .list(&source.schemas)
        .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", &source.schemas, &error))?
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    for name in &names {
        let bytes = read_small(fs, &source.schemas.join(name))?;
        write_synced(fs, &target.schemas.join(name), &bytes)?;
        bytes_copied += bytes.len() as u64;
    }
    write_synced(fs, &target.schema_hashes, &hashes)?;
    bytes_copied += hashes.len() as u64;
    for folder in [&target.wal_dir, &target.data, &target.indexes, &target.schemas, &target.metadata, &target.root] {
        fs.sync_dir(folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", folder, &error))?;
    }
    Ok(BackupSummary {
        dest: staging.to_path_buf(),
        records: scanned.records,
        last_seq: scanned.last_seq,
        wal_bytes: scanned.valid_end,
        documents: 0,
        schema_files: names.len() as u64,
        bytes_copied,
        elapsed_ms: 0,
    })
}

/// Copies the first `end` bytes of the source WAL to `path`, synced.
fn copy_wal(fs: &dyn FileSystem, source: &Snapshot, end: u64, path: &Path) -> Result<()> {
    let out = fs.open(path, Access::CreateNew).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot create", path, &error))?;
    let mut buffer = vec![0u8; COPY_CHUNK_BYTES];
    let mut offset = 0u64;
    while offset < end {
        let length = ((end - offset) as usize).min(COPY_CHUNK_BYTES);
        source.read_at(offset, &mut buffer[..length]).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot read", path, &error))?;
        out.write_at(offset, &buffer[..length]).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", path, &error))?;
        offset += length as u64;
        if offset == length as u64 {
            crash::reach("backup_mid_copy");
        }
    }
    out.sync_all().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", path, &error))
}
