//! Reading files of the data directory, read-only, and never mapped.
//!
//! Small files (metadata) are read whole with [`read_small`]. Large files
//! (the WAL, segments) are opened as a [`ReadFile`] and read by offset
//! (`pread`) into buffers the caller bounds, so a tool's memory does not
//! grow with the database. Nothing is mapped: a file another program
//! truncates or grows while a tool reads it gives a short read or an I/O
//! error, never a SIGBUS. The length of a [`ReadFile`] is the one it had
//! when it was opened; bytes appended later (a running server's WAL) are
//! not read. Nothing is ever opened for writing.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Largest JSON metadata file read (config, schema, hashes, state,
/// directory): the engine's limit, so the two agree.
pub const JSON_FILE_MAX_BYTES: u64 = aerodb_format::JSON_FILE_SIZE_MAX_BYTES;

/// Bytes that can be read by offset: a file or a buffer in memory.
pub trait ReadAt {
    /// The length, fixed for the reader's life.
    fn length(&self) -> u64;
    /// Fills `buf` from `offset`; an error when the range is not all inside.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;

    /// Takes the file's current length as its length (for a file another
    /// process appends to; never shorter than before). Nothing for memory.
    fn refresh_length(&self) {}
}

impl ReadAt for &[u8] {
    fn length(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).ok().filter(|start| start.checked_add(buf.len()).is_some_and(|end| end <= self.len()));
        match start {
            Some(start) => {
                buf.copy_from_slice(&self[start..start + buf.len()]);
                Ok(())
            }
            None => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end")),
        }
    }
}

/// A file opened for reading by offset, with its length as of opening
/// (or of the last [`ReadAt::refresh_length`]).
pub struct ReadFile {
    file: File,
    length: std::sync::atomic::AtomicU64,
}

impl ReadFile {
    /// Opens a regular file. Opened without blocking, so a FIFO (or a
    /// device) where a file should be is refused, not waited on.
    pub fn open(path: &Path) -> std::io::Result<ReadFile> {
        let file = open_nonblocking(path)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok(ReadFile { length: std::sync::atomic::AtomicU64::new(metadata.len()), file })
    }
}

/// Opens `path` read-only with `O_NONBLOCK`: opening a FIFO returns at once
/// instead of waiting for a writer. (Reads of a regular file ignore the flag.)
pub fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

impl ReadAt for ReadFile {
    fn length(&self) -> u64 {
        self.length.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn refresh_length(&self) {
        if let Ok(metadata) = self.file.metadata() {
            self.length.fetch_max(metadata.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.length()) {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        // A file shortened since it was opened ends in UnexpectedEof.
        self.file.read_exact_at(buf, offset)
    }
}

/// A sliding window over a [`ReadAt`]: sequential reads of any size come
/// from one buffer refilled in chunks, so a scan costs one `pread` per chunk
/// and holds at most one chunk (or one requested range, if larger).
pub struct Window<'a> {
    source: &'a dyn ReadAt,
    buf: Vec<u8>,
    start: u64,
    chunk: usize,
}

impl<'a> Window<'a> {
    pub fn new(source: &'a dyn ReadAt, chunk: usize) -> Window<'a> {
        Window { source, buf: Vec::new(), start: 0, chunk: chunk.max(4096) }
    }

    pub fn length(&self) -> u64 {
        self.source.length()
    }

    /// Forgets the buffered bytes and takes the file's current length: the
    /// next read goes to the file again (for a file another process is writing).
    pub fn invalidate(&mut self) {
        self.buf.clear();
        self.source.refresh_length();
    }

    /// The bytes `[at, at + len)`, cut at the end of the source.
    pub fn get(&mut self, at: u64, len: usize) -> std::io::Result<&[u8]> {
        let end = at.saturating_add(len as u64).min(self.source.length());
        if at >= end {
            return Ok(&[]);
        }
        let wanted = (end - at) as usize;
        let inside = at >= self.start && end <= self.start + self.buf.len() as u64;
        if !inside {
            let fill = ((self.source.length() - at) as usize).min(wanted.max(self.chunk));
            self.buf.resize(fill, 0);
            self.start = at;
            if let Err(error) = self.source.read_exact_at(&mut self.buf, at) {
                self.buf.clear();
                return Err(error);
            }
            // Keep a large one-off range from pinning its memory.
            if self.buf.capacity() > 2 * self.chunk.max(wanted) {
                self.buf.shrink_to(fill);
            }
        }
        let from = (at - self.start) as usize;
        Ok(&self.buf[from..from + wanted])
    }
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
    // Without blocking: a FIFO in place of a file is refused, not waited on.
    let file = match open_nonblocking(path) {
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
