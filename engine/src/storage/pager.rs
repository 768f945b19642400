//! The pager: one page space (document pages or index pages) over
//! memory-mapped segment files of `SEGMENT_PAGES` pages each.
//!
//! Page `P` lives in segment `P / SEGMENT_PAGES` at byte
//! `(P % SEGMENT_PAGES) * PAGE_SIZE_BYTES`. A segment's disk blocks are
//! reserved (fallocate) before it is mapped, so a full disk fails at
//! allocation time, never as a SIGBUS later; a mapped file never shrinks.
//! The pager knows nothing of page contents: callers verify and seal pages.
//!
//! Creating a segment of the document space is crash-safe: the file is made
//! under a temporary name (`segment-NNNNNN.seg.new`), allocated, fsync'ed,
//! then renamed into place with a rename that replaces nothing, and the
//! folder is fsync'ed. So a crash or a power loss at any moment leaves
//! either no segment file or a complete one, and segment files become
//! durable in their numbering order (no gap). A leftover temporary file is
//! removed at the next open. Index segments are derived (their folder is
//! emptied at every boot) and are created without these syncs.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aerodb_format::page::PageBytes;
use aerodb_format::{parse_segment_file_name, segment_file_name, PageNo, PAGE_SIZE_BYTES, SEGMENT_PAGES};
use memmap2::MmapMut;

use crate::error::{io_error, AeroError, ErrorCode, Result};
use crate::io::{allocate, AllocationFaults};

/// Bytes of one segment file.
pub const SEGMENT_BYTES: u64 = SEGMENT_PAGES * PAGE_SIZE_BYTES as u64;

struct Segment {
    path: PathBuf,
    map: MmapMut,
    file: File,
}

/// A page space over segment files in one folder.
pub struct Pager {
    folder: PathBuf,
    segments: Vec<Segment>,
    /// Test hook: planned failures of new segment allocations.
    allocation_faults: Option<AllocationFaults>,
    /// New segments are made durable before use (the document space).
    durable_creation: bool,
}

/// The temporary name a segment is created under.
fn temporary_name(index: u64) -> String {
    format!("{}.new", segment_file_name(index))
}

impl Pager {
    /// Maps every segment file in `folder`. Segment files must be numbered
    /// from 0 without gaps and be exactly `SEGMENT_BYTES` long.
    pub fn open(folder: &Path, corruption_code: ErrorCode) -> Result<Pager> {
        Pager::open_with(folder, corruption_code, false)
    }

    /// [`Pager::open`] for the document space: new segments are created
    /// crash-safe, and a segment left under its temporary name by a crash
    /// during its creation is removed (it never held data: nothing is
    /// written to a segment before it is in place).
    pub fn open_durable(folder: &Path, corruption_code: ErrorCode) -> Result<Pager> {
        Pager::open_with(folder, corruption_code, true)
    }

    fn open_with(folder: &Path, corruption_code: ErrorCode, durable_creation: bool) -> Result<Pager> {
        let mut indexes = Vec::new();
        let entries = std::fs::read_dir(folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", folder, &error))?;
        for entry in entries {
            let entry = entry.map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", folder, &error))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name.strip_suffix(".new").and_then(parse_segment_file_name);
            if durable_creation && stale.is_some() {
                let path = folder.join(&name);
                std::fs::remove_file(&path).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot remove", &path, &error))?;
                crate::log::warn("storage", "segment_creation_discarded", &[("file", path.display().to_string().into())]);
                continue;
            }
            match parse_segment_file_name(&name) {
                Some(index) => indexes.push(index),
                None => {
                    return Err(AeroError::new(corruption_code, format!("unexpected file {} in {}", name, folder.display()))
                        .detail("file", folder.join(&name).display().to_string()))
                }
            }
        }
        indexes.sort_unstable();
        let mut pager =
            Pager { folder: folder.to_path_buf(), segments: Vec::with_capacity(indexes.len()), allocation_faults: None, durable_creation };
        for (position, index) in indexes.iter().enumerate() {
            if *index != position as u64 {
                let path = folder.join(segment_file_name(position as u64));
                return Err(AeroError::new(corruption_code, format!("segment file {} is missing", path.display()))
                    .detail("file", path.display().to_string()));
            }
            pager.map_segment(*index, false, corruption_code)?;
        }
        Ok(pager)
    }

    fn map_segment(&mut self, index: u64, create: bool, corruption_code: ErrorCode) -> Result<()> {
        let path = self.folder.join(segment_file_name(index));
        let file = if create {
            self.create_segment(index, &path)?
        } else {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot open segment", &path, &error))?
        };
        let length = file.metadata().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot stat", &path, &error))?.len();
        if length != SEGMENT_BYTES {
            return Err(AeroError::new(corruption_code, format!("segment {} is {length} bytes, expected {SEGMENT_BYTES}", path.display()))
                .detail("file", path.display().to_string()));
        }
        // SAFETY: memmap2's `map_mut` is a MAP_SHARED mapping of the whole
        // file, which is exactly SEGMENT_BYTES long (checked above, and
        // fully allocated by posix_fallocate when it was made, so a write
        // to it never needs a new block). What is guaranteed: no AeroDB
        // process truncates, shrinks or writes this file while it is mapped
        // (the database LOCK admits one engine; the tools read by offset
        // and never write), and this process reaches the file only through
        // this map and `sync`. What is not, and ends in SIGBUS (not an
        // error code): another program truncating the file while it is
        // mapped, an I/O error when the kernel reads a mapped page in, and a
        // write fault that cannot get a block (a full copy-on-write or
        // compressing file system, where preallocation reserves nothing).
        // docs/BOOT.md ("What a mapping cannot report") says so to users.
        let map =
            unsafe { MmapMut::map_mut(&file) }.map_err(|error| io_error(ErrorCode::StorageIoError, "cannot map segment", &path, &error))?;
        self.segments.push(Segment { path, map, file });
        Ok(())
    }

    /// Creates segment `index` at `path`, allocated (and, for the document
    /// space, durable and in place only once complete).
    fn create_segment(&mut self, index: u64, path: &Path) -> Result<File> {
        let made_at = if self.durable_creation { self.folder.join(temporary_name(index)) } else { path.to_path_buf() };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&made_at)
            .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot create segment", &made_at, &error))?;
        let injected = self.allocation_faults.as_ref().and_then(AllocationFaults::check);
        let allocated = injected.map_or_else(|| allocate(&file, SEGMENT_BYTES), Err).and_then(|()| {
            if !self.durable_creation {
                return Ok(());
            }
            file.sync_all()?;
            crate::crash::reach("segment_create");
            crate::io::rename_no_replace(&made_at, path)?;
            crate::io::sync_dir(&self.folder)
        });
        if let Err(error) = allocated {
            drop(file);
            let _ = std::fs::remove_file(&made_at);
            return Err(io_error(ErrorCode::StorageIoError, "cannot allocate segment", path, &error));
        }
        Ok(file)
    }

    /// Installs planned allocation failures (tests).
    pub fn set_allocation_faults(&mut self, faults: Option<AllocationFaults>) {
        self.allocation_faults = faults;
    }

    /// Pages the mapped segments hold.
    pub fn capacity_pages(&self) -> u64 {
        self.segments.len() as u64 * SEGMENT_PAGES
    }

    /// Creates and maps segments until page `page_count - 1` exists.
    pub fn ensure_capacity(&mut self, page_count: u64) -> Result<()> {
        while self.capacity_pages() < page_count {
            let index = self.segments.len() as u64;
            self.map_segment(index, true, ErrorCode::StorageIoError)?;
        }
        Ok(())
    }

    /// The page, or None past the mapped segments.
    pub fn page(&self, page_no: PageNo) -> Option<&PageBytes> {
        let segment = self.segments.get(usize::try_from(page_no.segment()).ok()?)?;
        let start = page_no.offset_in_segment() as usize;
        segment.map.get(start..start + PAGE_SIZE_BYTES)?.try_into().ok()
    }

    /// The page for writing; the caller has ensured capacity.
    pub fn page_mut(&mut self, page_no: PageNo) -> Result<&mut PageBytes> {
        let Some(segment) = usize::try_from(page_no.segment()).ok().and_then(|index| self.segments.get_mut(index)) else {
            return Err(AeroError::invariant_broken(format!("page {page_no} is past the mapped segments")));
        };
        let start = page_no.offset_in_segment() as usize;
        match segment.map.get_mut(start..start + PAGE_SIZE_BYTES).and_then(|slice| <&mut PageBytes>::try_from(slice).ok()) {
            Some(page) => Ok(page),
            None => Err(AeroError::invariant_broken(format!("page {page_no} is outside its segment"))),
        }
    }

    /// Path of the segment file holding `page_no`.
    pub fn segment_path(&self, page_no: PageNo) -> PathBuf {
        self.folder.join(segment_file_name(page_no.segment()))
    }

    /// Writes every mapped page back to its file and waits for it (msync),
    /// then makes each file's metadata and the folder's entries durable.
    pub fn flush(&self) -> Result<()> {
        for segment in &self.segments {
            segment.map.flush().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot flush segment", &segment.path, &error))?;
            segment.file.sync_all().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync segment", &segment.path, &error))?;
        }
        crate::io::sync_dir(&self.folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", &self.folder, &error))
    }
}
