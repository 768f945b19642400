//! Reading files of the data directory, read-only.
//!
//! Small files are read into memory with `std::fs::read`. Files of at least
//! [`MAP_THRESHOLD_BYTES`] are mapped read-only when no process holds the
//! database's LOCK (a running engine could change a mapped file under us;
//! then the file is read into memory instead). Nothing is ever opened for
//! writing.

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::Path;

/// Files at least this large are mapped instead of read (when allowed).
pub const MAP_THRESHOLD_BYTES: u64 = 1024 * 1024;

/// Largest JSON metadata file read (config, schema, hashes, state,
/// directory): the engine's limit, so the two agree.
pub const JSON_FILE_MAX_BYTES: u64 = aerodb_format::JSON_FILE_SIZE_MAX_BYTES;

/// The bytes of one file, owned or mapped.
pub enum FileBytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Owned(bytes) => bytes,
            FileBytes::Mapped(map) => map,
        }
    }
}

/// Loads a whole file; maps it read-only if it is large and `allow_map` is set.
pub fn load(path: &Path, allow_map: bool) -> std::io::Result<FileBytes> {
    let file = File::open(path)?;
    let length = file.metadata()?.len();
    if allow_map && length >= MAP_THRESHOLD_BYTES {
        // SAFETY: the mapping is read-only and private to this process. It is
        // only made when no process holds the database LOCK, so no engine is
        // writing the file; a concurrent truncation by something else could
        // still raise SIGBUS, which is the documented risk of an offline tool
        // run against a directory another program is changing.
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        return Ok(FileBytes::Mapped(map));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0).min(64 * 1024 * 1024));
    (&file).read_to_end(&mut bytes)?;
    Ok(FileBytes::Owned(bytes))
}

/// Why a small file could not be read.
#[derive(Debug)]
pub enum SmallFileError {
    Missing,
    TooLarge(u64),
    /// A FIFO, device or folder where a file should be.
    NotRegular,
    Io(std::io::Error),
}

impl std::fmt::Display for SmallFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmallFileError::Missing => write!(f, "file is missing"),
            SmallFileError::TooLarge(length) => {
                write!(f, "file is {length} bytes, more than the {JSON_FILE_MAX_BYTES} a metadata file may hold")
            }
            SmallFileError::NotRegular => write!(f, "not a regular file"),
            SmallFileError::Io(error) => write!(f, "cannot read: {error}"),
        }
    }
}

/// Reads a metadata file of at most [`JSON_FILE_MAX_BYTES`].
pub fn read_small(path: &Path) -> Result<Vec<u8>, SmallFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    // Without blocking: a FIFO in place of a file is refused, not waited on.
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(SmallFileError::Missing),
        Err(error) => return Err(SmallFileError::Io(error)),
    };
    let metadata = file.metadata().map_err(SmallFileError::Io)?;
    if !metadata.is_file() {
        return Err(SmallFileError::NotRegular);
    }
    let length = metadata.len();
    if length > JSON_FILE_MAX_BYTES {
        return Err(SmallFileError::TooLarge(length));
    }
    let mut bytes = Vec::with_capacity(length as usize);
    file.take(JSON_FILE_MAX_BYTES + 1).read_to_end(&mut bytes).map_err(SmallFileError::Io)?;
    if bytes.len() as u64 > JSON_FILE_MAX_BYTES {
        return Err(SmallFileError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}
