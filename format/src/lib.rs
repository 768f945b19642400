//! `aerodb-format`: every byte AeroDB writes, as code.
//!
//! This crate is the executable form of `FORMAT.md`. It owns the layout of
//! pages (common header, slotted document pages, overflow pages, B-tree
//! nodes), the document and index-key encodings, the WAL file header and
//! record codec, the MANIFEST, and the JSON files under `metadata/`
//! (config and schema definitions, with document validation).
//!
//! It is pure: no file I/O, no mmap, no clock. Every decoder takes untrusted
//! bytes and returns a value or a [`DecodeError`] naming the structure, the
//! field and the byte offset that failed; no decoder panics on any input.

pub mod btree;
pub mod config;
pub mod document;
pub mod error;
pub mod json;
pub mod key;
pub mod layout;
pub mod manifest;
pub mod page;
pub mod schema;
pub mod slotted;
pub mod state;
pub mod stored;
pub mod varint;
pub mod wal;

pub use error::DecodeError;

/// Size of every page in every segment file, in bytes.
pub const PAGE_SIZE_BYTES: usize = 4096;

/// Number of pages in one segment file (segment size = 4 MiB).
pub const SEGMENT_PAGES: u64 = 1024;

/// Version of the on-disk format described by `FORMAT.md`.
pub const FORMAT_VERSION: u32 = 1;

/// Largest encoded document record accepted (1 MiB).
pub const DOC_SIZE_MAX_BYTES: usize = 1024 * 1024;

/// Largest JSON file AeroDB reads (a config, a schema, `metadata/*.json`):
/// every file is size-checked before it is read, by the engine and the
/// tools alike.
pub const JSON_FILE_SIZE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Deepest nesting of objects and arrays accepted in a document or schema.
pub const JSON_DEPTH_MAX: usize = 32;

/// Longest identifier (`schema_id`, `schema_version`, field name).
pub const IDENTIFIER_LEN_MAX: usize = 64;

/// Longest string accepted as an `_id` or as the value of an indexed field,
/// so that every B-tree node holds several keys.
pub const INDEXED_STRING_MAX_BYTES: usize = 256;

/// A page number inside one page space (document pages or index pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageNo(pub u64);

impl PageNo {
    /// Marks "no page" in `next`/`prev` links.
    pub const NONE: PageNo = PageNo(u64::MAX);

    pub fn is_none(self) -> bool {
        self == Self::NONE
    }

    /// Index of the segment file holding this page.
    pub fn segment(self) -> u64 {
        self.0 / SEGMENT_PAGES
    }

    /// Byte offset of this page inside its segment file.
    pub fn offset_in_segment(self) -> u64 {
        (self.0 % SEGMENT_PAGES) * PAGE_SIZE_BYTES as u64
    }
}

impl std::fmt::Display for PageNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A WAL sequence number; also the LSN stamped on every page it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqNo(pub u64);

impl std::fmt::Display for SeqNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// File name of segment `index` in `data/` or `indexes/`.
pub fn segment_file_name(index: u64) -> String {
    format!("segment-{index:06}.seg")
}

/// Parses a segment file name back to its index.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".seg")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether every byte of `bytes` is zero. Compared against a block of zeros
/// (memcmp), so a long run of preallocated space is checked at memory speed
/// even in an unoptimised build.
pub fn all_zero(bytes: &[u8]) -> bool {
    const ZEROS: [u8; 4096] = [0; 4096];
    bytes.chunks(ZEROS.len()).all(|chunk| chunk == &ZEROS[..chunk.len()])
}

/// One past the last non-zero byte of `bytes` (0 when all are zero).
pub fn nonzero_end(bytes: &[u8]) -> usize {
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(4096);
        if !all_zero(&bytes[start..end]) {
            return start + bytes[start..end].iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1);
        }
        end = start;
    }
    0
}
