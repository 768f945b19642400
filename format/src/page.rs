//! The common page header carried by every page of every segment file, the
//! page kinds, the page checksum, and hole elision for WAL page images.
//!
//! Invariants of a sealed page (see `FORMAT.md`, "Pages"):
//! - `HEADER_BYTES <= lower <= upper <= PAGE_SIZE_BYTES`;
//! - every byte of the hole `[lower, upper)` is zero;
//! - `checksum` is the CRC32C of bytes `4..PAGE_SIZE_BYTES`.
//!
//! A page that was never written is all zero bytes (kind 0) and has no checksum.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::{DecodeError, PageNo, SeqNo, PAGE_SIZE_BYTES};

/// Size of the common page header.
pub const HEADER_BYTES: usize = 48;

/// One page, as bytes.
pub type PageBytes = [u8; PAGE_SIZE_BYTES];

/// What a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageKind {
    /// Slotted page of document records.
    Document = 1,
    /// Continuation of a document too large for a slotted page.
    Overflow = 2,
    /// B-tree leaf node.
    BtreeLeaf = 3,
    /// B-tree internal node.
    BtreeInternal = 4,
    /// A document-space page that held an overflow chain and is free for reuse.
    Free = 5,
}

impl PageKind {
    pub fn from_byte(byte: u8) -> Option<PageKind> {
        match byte {
            1 => Some(PageKind::Document),
            2 => Some(PageKind::Overflow),
            3 => Some(PageKind::BtreeLeaf),
            4 => Some(PageKind::BtreeInternal),
            5 => Some(PageKind::Free),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PageKind::Document => "document",
            PageKind::Overflow => "overflow",
            PageKind::BtreeLeaf => "btree_leaf",
            PageKind::BtreeInternal => "btree_internal",
            PageKind::Free => "free",
        }
    }
}

/// The 48-byte header at the start of every written page. All integers are
/// little-endian.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
pub struct PageHeader {
    /// CRC32C of bytes `4..PAGE_SIZE_BYTES` of the page.
    pub checksum: U32,
    /// A [`PageKind`] byte.
    pub kind: u8,
    /// Always zero in format version 1.
    pub flags: u8,
    /// End of the front area (header, slot directory, overflow data).
    pub lower: U16,
    /// Start of the back area (records or cells); the hole is `[lower, upper)`.
    pub upper: U16,
    /// Slots (document pages) or entries (B-tree nodes); 0 on overflow pages.
    pub item_count: U16,
    /// B-tree level (0 for leaves); 0 on other kinds.
    pub level: U32,
    /// This page's own number: catches misdirected writes.
    pub page_no: U64,
    /// Sequence number of the WAL record that last wrote this page.
    pub lsn: U64,
    /// Next page in a chain (overflow chain, right sibling), or `u64::MAX`.
    pub next: U64,
    /// Previous page in a chain (left sibling), or `u64::MAX`.
    pub prev: U64,
}

const _: () = assert!(std::mem::size_of::<PageHeader>() == HEADER_BYTES);

/// Byte offsets of header fields (error reports name them).
pub const KIND_OFFSET: usize = std::mem::offset_of!(PageHeader, kind);
pub const LOWER_OFFSET: usize = std::mem::offset_of!(PageHeader, lower);
pub const NEXT_OFFSET: usize = std::mem::offset_of!(PageHeader, next);

impl PageHeader {
    pub fn new(kind: PageKind, page_no: PageNo) -> PageHeader {
        PageHeader {
            checksum: U32::new(0),
            kind: kind as u8,
            flags: 0,
            lower: U16::new(HEADER_BYTES as u16),
            upper: U16::new(PAGE_SIZE_BYTES as u16),
            item_count: U16::new(0),
            level: U32::new(0),
            page_no: U64::new(page_no.0),
            lsn: U64::new(0),
            next: U64::new(PageNo::NONE.0),
            prev: U64::new(PageNo::NONE.0),
        }
    }

    /// Reads the header of a page without checking anything.
    pub fn read(page: &PageBytes) -> PageHeader {
        PageHeader::read_image_prefix(&page[..])
    }

    /// Reads a header from the first bytes of a page or page image; a
    /// buffer shorter than a header reads as an all-zero header.
    pub fn read_image_prefix(bytes: &[u8]) -> PageHeader {
        match PageHeader::read_from_prefix(bytes) {
            Ok((header, _)) => header,
            Err(_) => PageHeader::new_zeroed(),
        }
    }

    pub fn write(&self, page: &mut PageBytes) {
        page[..HEADER_BYTES].copy_from_slice(self.as_bytes());
    }

    pub fn lower(&self) -> usize {
        usize::from(self.lower.get())
    }

    pub fn upper(&self) -> usize {
        usize::from(self.upper.get())
    }

    pub fn page_no(&self) -> PageNo {
        PageNo(self.page_no.get())
    }

    pub fn lsn(&self) -> SeqNo {
        SeqNo(self.lsn.get())
    }

    pub fn next(&self) -> PageNo {
        PageNo(self.next.get())
    }

    pub fn prev(&self) -> PageNo {
        PageNo(self.prev.get())
    }
}

/// A fresh, zeroed page with a header of `kind` and number `page_no`.
pub fn new_page(kind: PageKind, page_no: PageNo) -> Box<PageBytes> {
    let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
    PageHeader::new(kind, page_no).write(&mut page);
    page
}

/// CRC32C of the checksummed part of a page.
pub fn compute_checksum(page: &PageBytes) -> u32 {
    crc32c::crc32c(&page[4..])
}

/// Stamps `lsn` without writing the checksum (a page whose checksum is
/// written later, at flush: the index pages).
pub fn stamp_lsn(page: &mut PageBytes, lsn: SeqNo) {
    page[24..32].copy_from_slice(&lsn.0.to_le_bytes());
}

/// Stamps `lsn` and writes the checksum. Call after every change.
pub fn seal(page: &mut PageBytes, lsn: SeqNo) {
    stamp_lsn(page, lsn);
    let checksum = compute_checksum(page);
    page[0..4].copy_from_slice(&checksum.to_le_bytes());
}

/// True if the page was never written (every byte zero).
pub fn is_unwritten(page: &PageBytes) -> bool {
    page.iter().all(|&byte| byte == 0)
}

/// Checks a written page: checksum, kind, self number, hole bounds and
/// zeroed hole. Returns its header.
pub fn verify(page: &PageBytes, expected: PageNo) -> Result<PageHeader, DecodeError> {
    let header = PageHeader::read(page);
    let stored = header.checksum.get();
    let computed = compute_checksum(page);
    if stored != computed {
        return Err(DecodeError::new(
            "page",
            "checksum",
            0,
            format!("stored checksum {stored:#010x} does not match computed {computed:#010x}"),
        ));
    }
    check_header(&header, expected)?;
    if let Some(position) = page[header.lower()..header.upper()].iter().position(|&b| b != 0) {
        return Err(DecodeError::new("page", "hole", header.lower() + position, "free space between lower and upper is not zero"));
    }
    Ok(header)
}

/// Whether the header is that of an unused page of the document space
/// (FORMAT.md, "Free pages"): empty (`lower` 48, `upper` 4096, no items),
/// level 0, and linked to nothing. The rule the boot and verify share.
pub fn is_unused_header(header: &PageHeader) -> bool {
    header.lower() == HEADER_BYTES
        && header.upper() == PAGE_SIZE_BYTES
        && header.item_count.get() == 0
        && header.level.get() == 0
        && header.next().is_none()
        && header.prev().is_none()
}

/// Structural checks of a header (everything but the checksum and the hole).
pub fn check_header(header: &PageHeader, expected: PageNo) -> Result<(), DecodeError> {
    if PageKind::from_byte(header.kind).is_none() {
        return Err(DecodeError::new("page", "kind", 4, format!("unknown page kind {}", header.kind)));
    }
    if header.flags != 0 {
        return Err(DecodeError::new("page", "flags", 5, format!("flags must be 0, found {}", header.flags)));
    }
    if header.page_no() != expected {
        return Err(DecodeError::new(
            "page",
            "page_no",
            16,
            format!("page says it is page {} but sits at page {}", header.page_no(), expected),
        ));
    }
    let (lower, upper) = (header.lower(), header.upper());
    if !hole_bounds_valid(lower, upper) {
        return Err(DecodeError::new("page", "lower/upper", 6, format!("bad hole bounds lower={lower} upper={upper}")));
    }
    Ok(())
}

/// Whether `lower` and `upper` bound a hole: `HEADER_BYTES <= lower <= upper
/// <= PAGE_SIZE_BYTES` (the one rule every page and image is held to).
pub fn hole_bounds_valid(lower: usize, upper: usize) -> bool {
    (HEADER_BYTES..=upper).contains(&lower) && upper <= PAGE_SIZE_BYTES
}

/// The hole-elided image of a sealed page, as logged in the WAL: bytes
/// `[0, lower)` followed by bytes `[upper, PAGE_SIZE_BYTES)`.
pub fn elide_hole(page: &PageBytes) -> (u16, u16, Vec<u8>) {
    let header = PageHeader::read(page);
    let (mut lower, mut upper) = (header.lower(), header.upper());
    if !hole_bounds_valid(lower, upper) {
        // Never for a page this process sealed; a damaged page is logged whole.
        (lower, upper) = (PAGE_SIZE_BYTES, PAGE_SIZE_BYTES);
    }
    let mut image = Vec::with_capacity(lower + PAGE_SIZE_BYTES - upper);
    image.extend_from_slice(&page[..lower]);
    image.extend_from_slice(&page[upper..]);
    (lower as u16, upper as u16, image)
}

/// Rebuilds a full page from a hole-elided image (the hole is zero).
pub fn restore_hole(lower: u16, upper: u16, image: &[u8]) -> Result<Box<PageBytes>, DecodeError> {
    let (lower, upper) = (usize::from(lower), usize::from(upper));
    if !hole_bounds_valid(lower, upper) {
        return Err(DecodeError::new("page image", "lower/upper", 0, format!("bad hole bounds lower={lower} upper={upper}")));
    }
    if image.len() != lower + PAGE_SIZE_BYTES - upper {
        return Err(DecodeError::new(
            "page image",
            "image",
            0,
            format!("image is {} bytes, hole bounds need {}", image.len(), lower + PAGE_SIZE_BYTES - upper),
        ));
    }
    let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
    page[..lower].copy_from_slice(&image[..lower]);
    page[upper..].copy_from_slice(&image[lower..]);
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_page_verifies_and_every_bit_flip_is_detected() {
        let mut page = new_page(PageKind::Overflow, PageNo(7));
        page[HEADER_BYTES..HEADER_BYTES + 5].copy_from_slice(b"hello");
        let mut header = PageHeader::read(&page);
        header.lower = U16::new((HEADER_BYTES + 5) as u16);
        header.write(&mut page);
        seal(&mut page, SeqNo(3));
        verify(&page, PageNo(7)).unwrap();
        for bit in 0..PAGE_SIZE_BYTES * 8 {
            let mut damaged = page.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&damaged, PageNo(7)).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn misdirected_page_is_detected() {
        let mut page = new_page(PageKind::Document, PageNo(1));
        seal(&mut page, SeqNo(1));
        let error = verify(&page, PageNo(2)).unwrap_err();
        assert_eq!(error.field, "page_no");
    }

    #[test]
    fn hole_elision_round_trips() {
        let mut page = new_page(PageKind::Document, PageNo(0));
        page[4000..].fill(9);
        let mut header = PageHeader::read(&page);
        header.upper = U16::new(4000);
        header.write(&mut page);
        seal(&mut page, SeqNo(1));
        let (lower, upper, image) = elide_hole(&page);
        assert_eq!(image.len(), HEADER_BYTES + 96);
        assert_eq!(*restore_hole(lower, upper, &image).unwrap(), *page);
        assert!(restore_hole(lower, upper, &image[1..]).is_err());
        assert!(restore_hole(60, 50, &image).is_err());
    }
}
