//! The pager: one page space (document pages or index pages) over segment
//! files of `SEGMENT_PAGES` pages each, reached through the file-system
//! interface (`vfs`).
//!
//! Page `P` lives in segment `P / SEGMENT_PAGES` at byte
//! `(P % SEGMENT_PAGES) * PAGE_SIZE_BYTES`. A segment's disk blocks are
//! reserved (fallocate) when it is created, so a full disk fails at
//! allocation time, never as a SIGBUS later; a segment file never shrinks.
//! The pager knows nothing of page contents: callers verify and seal pages.
//!
//! The document space is mapped (shared): a page write is one copy into the
//! mapping, and the kernel writes it back. The index space is derived (its
//! folder is emptied at every boot): its pages live in memory and reach
//! their files only at `flush` (the clean shutdown writes them for
//! `aerodb-verify`), so no index access can end in SIGBUS.
//!
//! Creating a segment of the document space is crash-safe: the file is made
//! under a temporary name (`segment-NNNNNN.seg.new`), allocated, fsync'ed,
//! then renamed into place with a rename that replaces nothing, and the
//! folder is fsync'ed. So a crash or a power loss at any moment leaves
//! either no segment file or a complete one, and segment files become
//! durable in their numbering order (no gap). A leftover temporary file is
//! removed at the next open. Index segments are created without these syncs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{io_error, AeroError, ErrorCode, Result};
use crate::io::AllocationFaults;
use crate::vfs::{Access, FileHandle, FileSystem, Mapping};
use aerodb_format::page::PageBytes;
use aerodb_format::{parse_segment_file_name, segment_file_name, PageNo, PAGE_SIZE_BYTES, SEGMENT_PAGES};

/// Bytes of one segment file.
pub const SEGMENT_BYTES: u64 = SEGMENT_PAGES * PAGE_SIZE_BYTES as u64;

struct Segment {
    path: PathBuf,
    map: Box<dyn Mapping>,
    file: Box<dyn FileHandle>,
}

/// A page space over segment files in one folder.
pub struct Pager {
    fs: Arc<dyn FileSystem>,
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
    pub fn open(fs: Arc<dyn FileSystem>, folder: &Path, corruption_code: ErrorCode) -> Result<Pager> {
        Pager::open_with(fs, folder, corruption_code, false)
    }

    /// [`Pager::open`] for the document space: new segments are created
    /// crash-safe, and a segment left under its temporary name by a crash
    /// during its creation is removed (it never held data: nothing is
    /// written to a segment before it is in place).
    pub fn open_durable(fs: Arc<dyn FileSystem>, folder: &Path, corruption_code: ErrorCode) -> Result<Pager> {
        Pager::open_with(fs, folder, corruption_code, true)
    }

    fn open_with(fs: Arc<dyn FileSystem>, folder: &Path, corruption_code: ErrorCode, durable_creation: bool) -> Result<Pager> {
        let mut indexes = Vec::new();
        let names = fs.list(folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", folder, &error))?;
        for name in names {
            let stale = name.strip_suffix(".new").and_then(parse_segment_file_name);
            if durable_creation && stale.is_some() {
                let path = folder.join(&name);
                fs.remove_file(&path).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot remove", &path, &error))?;
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
        let mut pager = Pager {
            fs,
            folder: folder.to_path_buf(),
            segments: Vec::with_capacity(indexes.len()),
            allocation_faults: None,
            durable_creation,
        };
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
            self.fs
                .open(&path, Access::ReadWrite)
                .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot open segment", &path, &error))?
        };
        let length = file.len().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot stat", &path, &error))?;
        if length != SEGMENT_BYTES {
            return Err(AeroError::new(corruption_code, format!("segment {} is {length} bytes, expected {SEGMENT_BYTES}", path.display()))
                .detail("file", path.display().to_string()));
        }
        // The mapping's guarantees (and what ends in SIGBUS) are stated
        // at `vfs::OsHandle::map`: this file is exactly SEGMENT_BYTES long
        // and fully allocated, and nothing in AeroDB shrinks it.
        let map: Box<dyn Mapping> = if self.durable_creation {
            file.map().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot map segment", &path, &error))?
        } else {
            // Derived pages (the index space) are not mapped: they live in
            // memory and are written to their file only by `flush`, so no
            // access to them can end in SIGBUS.
            let mut pages = crate::vfs::anonymous_mapping(SEGMENT_BYTES as usize)
                .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot allocate memory for segment", &path, &error))?;
            if !create {
                file.read_at(0, pages.bytes_mut())
                    .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot read segment", &path, &error))?;
            }
            pages
        };
        self.segments.push(Segment { path, map, file });
        Ok(())
    }

    /// Creates segment `index` at `path`, allocated (and, for the document
    /// space, durable and in place only once complete).
    fn create_segment(&mut self, index: u64, path: &Path) -> Result<Box<dyn FileHandle>> {
        let made_at = if self.durable_creation { self.folder.join(temporary_name(index)) } else { path.to_path_buf() };
        let file = self
            .fs
            .open(&made_at, Access::CreateNew)
            .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot create segment", &made_at, &error))?;
        let injected = self.allocation_faults.as_ref().and_then(AllocationFaults::check);
        let allocated = injected.map_or_else(|| file.allocate(SEGMENT_BYTES), Err).and_then(|()| {
            if !self.durable_creation {
                return Ok(());
            }
            file.sync_all()?;
            crate::crash::reach("segment_create");
            self.fs.rename_no_replace(&made_at, path)?;
            self.fs.sync_dir(&self.folder).inspect_err(|_| {
                // In place but not known to be durable: taken away again,
                // so the next attempt starts from no segment file.
                let _ = self.fs.remove_file(path);
            })
        });
        if let Err(error) = allocated {
            drop(file);
            let _ = self.fs.remove_file(&made_at);
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
        segment.map.bytes().get(start..start + PAGE_SIZE_BYTES)?.try_into().ok()
    }

    /// Writes a whole page; the caller has ensured capacity. The file sees
    /// the write at once (a store into the shared mapping).
    pub fn write_page(&mut self, page_no: PageNo, page: &PageBytes) -> Result<()> {
        let Some(segment) = usize::try_from(page_no.segment()).ok().and_then(|index| self.segments.get_mut(index)) else {
            return Err(AeroError::invariant_broken(format!("page {page_no} is past the mapped segments")));
        };
        let start = page_no.offset_in_segment() as usize;
        if start + PAGE_SIZE_BYTES > segment.map.bytes().len() {
            return Err(AeroError::invariant_broken(format!("page {page_no} is outside its segment")));
        }
        segment.map.write(start, &page[..]);
        Ok(())
    }

    /// The page for editing in place; the caller has ensured capacity.
    /// Only for a derived page space (the index pages): the simulated file
    /// system sees these edits only at [`Pager::flush`].
    pub fn page_mut(&mut self, page_no: PageNo) -> Result<&mut PageBytes> {
        debug_assert!(!self.durable_creation, "pages of the document space are written whole (write_page), never edited in place");
        let Some(segment) = usize::try_from(page_no.segment()).ok().and_then(|index| self.segments.get_mut(index)) else {
            return Err(AeroError::invariant_broken(format!("page {page_no} is past the mapped segments")));
        };
        let start = page_no.offset_in_segment() as usize;
        match segment.map.bytes_mut().get_mut(start..start + PAGE_SIZE_BYTES).and_then(|slice| <&mut PageBytes>::try_from(slice).ok()) {
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
            let written = if self.durable_creation { segment.map.flush() } else { segment.file.write_at(0, segment.map.bytes()) };
            written.map_err(|error| io_error(ErrorCode::StorageIoError, "cannot flush segment", &segment.path, &error))?;
            segment.file.sync_all().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync segment", &segment.path, &error))?;
        }
        self.fs.sync_dir(&self.folder).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", &self.folder, &error))
    }
}
