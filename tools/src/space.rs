//! A page space: the segment files of `data/` (document pages) or `indexes/`
//! (B-tree nodes). Page `P` lives in segment `P / SEGMENT_PAGES` at byte
//! `(P % SEGMENT_PAGES) * PAGE_SIZE_BYTES`; every segment file is exactly
//! `SEGMENT_PAGES * PAGE_SIZE_BYTES` bytes. A page that is not inside a
//! present segment file reads as `None`.

use std::collections::BTreeMap;
use std::path::Path;

use aerodb_format::page::PageBytes;
use aerodb_format::{parse_segment_file_name, segment_file_name, PageNo, PAGE_SIZE_BYTES, SEGMENT_PAGES};

use crate::files::{ReadAt, ReadFile};

/// Size every segment file must have.
pub const SEGMENT_BYTES: u64 = SEGMENT_PAGES * PAGE_SIZE_BYTES as u64;

/// One segment file.
pub struct Segment {
    pub index: u64,
    pub file: ReadFile,
}

/// The segment files of one page space.
pub struct PageSpace {
    /// `data` or `indexes`.
    pub dir_name: &'static str,
    /// False when the folder itself is missing or cannot be listed.
    pub folder_exists: bool,
    /// Why the folder cannot be listed, when it exists but cannot be.
    pub folder_error: Option<String>,
    pub segments: BTreeMap<u64, Segment>,
    /// Files in the folder that are not segment files (relative names).
    pub stray_files: Vec<String>,
    /// Entries of the folder that are folders themselves (relative names).
    pub folders: Vec<String>,
    /// Segment files that could not be read: (relative name, reason).
    pub unreadable: Vec<(String, String)>,
}

impl PageSpace {
    /// Opens every segment file of `root/dir_name` (read by offset, never mapped).
    pub fn open(root: &Path, dir_name: &'static str) -> PageSpace {
        let mut space = PageSpace {
            dir_name,
            folder_exists: false,
            folder_error: None,
            segments: BTreeMap::new(),
            stray_files: Vec::new(),
            folders: Vec::new(),
            unreadable: Vec::new(),
        };
        let folder = root.join(dir_name);
        let listing = match std::fs::read_dir(&folder) {
            Ok(listing) => listing,
            Err(error) => {
                if error.kind() != std::io::ErrorKind::NotFound {
                    space.folder_error = Some(error.to_string());
                }
                return space;
            }
        };
        space.folder_exists = true;
        let mut names: Vec<(String, bool)> = listing
            .filter_map(|entry| entry.ok())
            .map(|entry| (entry.file_name().to_string_lossy().into_owned(), entry.file_type().is_ok_and(|kind| kind.is_dir())))
            .collect();
        names.sort();
        for (name, is_folder) in names {
            let relative = format!("{dir_name}/{name}");
            if is_folder {
                space.folders.push(relative);
                continue;
            }
            let Some(index) = parse_segment_file_name(&name) else {
                space.stray_files.push(relative);
                continue;
            };
            match ReadFile::open(&folder.join(&name)) {
                Ok(file) => {
                    space.segments.insert(index, Segment { index, file });
                }
                Err(error) => space.unreadable.push((relative, error.to_string())),
            }
        }
        space
    }

    /// The page, if its segment file is present and long enough (and can be read).
    pub fn page(&self, page_no: PageNo) -> Option<Box<PageBytes>> {
        let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
        self.read_page(page_no, &mut page).then_some(page)
    }

    /// Reads the page into `page`; false when it is not inside a present
    /// segment file or cannot be read.
    pub fn read_page(&self, page_no: PageNo, page: &mut PageBytes) -> bool {
        let Some(segment) = self.segments.get(&page_no.segment()) else {
            return false;
        };
        segment.file.read_exact_at(page, page_no.offset_in_segment()).is_ok()
    }

    /// Relative name of the segment file holding `page_no`.
    pub fn file_of(&self, page_no: PageNo) -> String {
        format!("{}/{}", self.dir_name, segment_file_name(page_no.segment()))
    }

    /// Every page number inside the present segment files, in order.
    pub fn page_numbers(&self) -> impl Iterator<Item = PageNo> + '_ {
        self.segments.keys().flat_map(|&index| (index * SEGMENT_PAGES..(index + 1) * SEGMENT_PAGES).map(PageNo))
    }

    /// Why some of the space cannot be read: the folder, or its first
    /// unreadable segment file (for the inspect dumps, which stop on it).
    pub fn read_error(&self) -> Option<String> {
        if let Some(error) = &self.folder_error {
            return Some(format!("{}/ cannot be read: {error}", self.dir_name));
        }
        self.unreadable.first().map(|(name, reason)| format!("{name} cannot be read: {reason}"))
    }

    /// Number of pages the present segment files have room for.
    pub fn page_capacity(&self) -> u64 {
        self.segments.len() as u64 * SEGMENT_PAGES
    }
}
