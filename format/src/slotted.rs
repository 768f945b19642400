//! Slotted document pages and overflow pages.
//!
//! A document page holds a slot directory growing from the front (after the
//! header) and records growing from the back, so the free space is the one
//! contiguous hole `[lower, upper)`. Slot `i` is 4 bytes at
//! `HEADER_BYTES + 4 * i`: record offset (u16) and record length (u16); an
//! empty slot is `(0, 0)`. Slot numbers are stable for the life of a record
//! (index entries point at `(page, slot)`), so a delete empties its slot and
//! only trailing empty slots are trimmed.
//!
//! Invariants checked by [`check_document_page`]: `lower = HEADER_BYTES + 4 *
//! item_count`; the last slot is not empty; records lie inside
//! `[upper, PAGE_SIZE_BYTES)`, do not overlap and cover it exactly (no gaps),
//! so `upper` equals the lowest record offset.
//!
//! Overflow pages hold `[HEADER_BYTES, lower)` bytes of a large record and
//! link to the next page of the chain through `next`.

use zerocopy::little_endian::U16;

use crate::page::{PageBytes, PageHeader, PageKind, HEADER_BYTES};
use crate::{DecodeError, PAGE_SIZE_BYTES};

/// Bytes of one slot directory entry.
pub const SLOT_BYTES: usize = 4;

/// Largest slot record stored inline in a document page (kind byte
/// included); a document of `INLINE_RECORD_MAX_BYTES` bytes or more goes to
/// an overflow chain and leaves a stub in the slot.
pub const INLINE_RECORD_MAX_BYTES: usize = 2000;

/// Payload bytes of one overflow page.
pub const OVERFLOW_DATA_BYTES: usize = PAGE_SIZE_BYTES - HEADER_BYTES;

/// Record kind byte: the document follows inline.
pub const RECORD_INLINE: u8 = 1;
/// Record kind byte: an overflow stub (u32 length, u64 first page) follows.
pub const RECORD_OVERFLOW: u8 = 2;
/// Size of an overflow stub record, kind byte included.
pub const OVERFLOW_STUB_BYTES: usize = 13;

/// `(offset, length)` of slot `slot`, or None past the directory.
pub fn slot(page: &PageBytes, slot: u16) -> Option<(usize, usize)> {
    let header = PageHeader::read(page);
    if slot >= header.item_count.get() {
        return None;
    }
    let at = HEADER_BYTES + SLOT_BYTES * usize::from(slot);
    let offset = usize::from(u16::from_le_bytes([page[at], page[at + 1]]));
    let length = usize::from(u16::from_le_bytes([page[at + 2], page[at + 3]]));
    Some((offset, length))
}

fn set_slot(page: &mut PageBytes, slot: u16, offset: usize, length: usize) {
    let at = HEADER_BYTES + SLOT_BYTES * usize::from(slot);
    page[at..at + 2].copy_from_slice(&(offset as u16).to_le_bytes());
    page[at + 2..at + 4].copy_from_slice(&(length as u16).to_le_bytes());
}

/// The record bytes in `slot`, or None for an empty or missing slot.
pub fn record(page: &PageBytes, slot_no: u16) -> Option<&[u8]> {
    let (offset, length) = slot(page, slot_no)?;
    if length == 0 {
        return None;
    }
    page.get(offset..offset + length)
}

/// Free bytes in the hole.
pub fn free_bytes(page: &PageBytes) -> usize {
    let header = PageHeader::read(page);
    header.upper().saturating_sub(header.lower())
}

/// Bytes a record of `length` needs on this page (record plus a new slot
/// when no empty slot can be reused).
pub fn space_needed(page: &PageBytes, length: usize) -> usize {
    if first_empty_slot(page).is_some() {
        length
    } else {
        length + SLOT_BYTES
    }
}

fn first_empty_slot(page: &PageBytes) -> Option<u16> {
    let count = PageHeader::read(page).item_count.get();
    (0..count).find(|&index| matches!(slot(page, index), Some((_, 0))))
}

/// Inserts a record, reusing the lowest empty slot. Returns the slot number,
/// or None when the page lacks room.
pub fn insert(page: &mut PageBytes, bytes: &[u8]) -> Option<u16> {
    assert!(!bytes.is_empty() && bytes.len() <= INLINE_RECORD_MAX_BYTES.max(OVERFLOW_STUB_BYTES));
    if space_needed(page, bytes.len()) > free_bytes(page) {
        return None;
    }
    let mut header = PageHeader::read(page);
    let slot_no = match first_empty_slot(page) {
        Some(slot_no) => slot_no,
        None => {
            let slot_no = header.item_count.get();
            header.item_count = U16::new(slot_no + 1);
            header.lower = U16::new(header.lower.get() + SLOT_BYTES as u16);
            slot_no
        }
    };
    let offset = header.upper() - bytes.len();
    page[offset..offset + bytes.len()].copy_from_slice(bytes);
    header.upper = U16::new(offset as u16);
    header.write(page);
    set_slot(page, slot_no, offset, bytes.len());
    Some(slot_no)
}

/// Removes the record of `slot_no` and closes the gap it leaves, keeping
/// the slot (now empty) unless it is trailing.
pub fn delete(page: &mut PageBytes, slot_no: u16) {
    remove_record_bytes(page, slot_no);
    trim_trailing_slots(page);
}

/// Replaces the record in `slot_no` if the new one fits on this page.
/// Returns false (page unchanged) when it does not fit.
pub fn replace(page: &mut PageBytes, slot_no: u16, bytes: &[u8]) -> bool {
    let Some((_, old_length)) = slot(page, slot_no) else { return false };
    if free_bytes(page) + old_length < bytes.len() {
        return false;
    }
    remove_record_bytes(page, slot_no);
    let mut header = PageHeader::read(page);
    let offset = header.upper() - bytes.len();
    page[offset..offset + bytes.len()].copy_from_slice(bytes);
    header.upper = U16::new(offset as u16);
    header.write(page);
    set_slot(page, slot_no, offset, bytes.len());
    true
}

fn remove_record_bytes(page: &mut PageBytes, slot_no: u16) {
    let Some((offset, length)) = slot(page, slot_no) else { return };
    if length == 0 {
        return;
    }
    let mut header = PageHeader::read(page);
    let upper = header.upper();
    // Records below the removed one move up by `length`.
    page.copy_within(upper..offset, upper + length);
    page[upper..upper + length].fill(0);
    for index in 0..header.item_count.get() {
        if let Some((other_offset, other_length)) = slot(page, index) {
            if other_length > 0 && other_offset < offset {
                set_slot(page, index, other_offset + length, other_length);
            }
        }
    }
    set_slot(page, slot_no, 0, 0);
    header.upper = U16::new((upper + length) as u16);
    header.write(page);
}

fn trim_trailing_slots(page: &mut PageBytes) {
    let mut header = PageHeader::read(page);
    while header.item_count.get() > 0 {
        let last = header.item_count.get() - 1;
        if !matches!(slot(page, last), Some((_, 0))) {
            break;
        }
        let at = HEADER_BYTES + SLOT_BYTES * usize::from(last);
        page[at..at + SLOT_BYTES].fill(0);
        header.item_count = U16::new(last);
        header.lower = U16::new(at as u16);
        header.write(page);
    }
}

/// Structural check of a document page (its checksum is checked by
/// [`crate::page::verify`]). Returns the `(slot, record)` pairs in slot order.
pub fn check_document_page(page: &PageBytes) -> Result<Vec<(u16, &[u8])>, DecodeError> {
    let header = PageHeader::read(page);
    if header.kind != PageKind::Document as u8 {
        return Err(DecodeError::new(
            "document page",
            "kind",
            4,
            format!("expected kind {}, found {}", PageKind::Document as u8, header.kind),
        ));
    }
    // The page may not have passed `page::verify`: bound the hole before
    // reading the slot directory.
    if !crate::page::hole_bounds_valid(header.lower(), header.upper()) {
        return Err(DecodeError::new(
            "document page",
            "lower/upper",
            6,
            format!("bad hole bounds lower={} upper={}", header.lower(), header.upper()),
        ));
    }
    let count = usize::from(header.item_count.get());
    let directory_end = HEADER_BYTES + SLOT_BYTES * count;
    if header.lower() != directory_end {
        return Err(DecodeError::new(
            "document page",
            "lower",
            6,
            format!("lower is {} but {count} slots end at {directory_end}", header.lower()),
        ));
    }
    if header.level.get() != 0 || !header.next().is_none() || !header.prev().is_none() {
        return Err(DecodeError::new("document page", "level/next/prev", 12, "unused header fields must be 0 / none"));
    }
    let mut extents: Vec<(usize, usize, u16)> = Vec::with_capacity(count);
    for index in 0..count as u16 {
        let at = HEADER_BYTES + SLOT_BYTES * usize::from(index);
        let (offset, length) = slot(page, index).unwrap_or((0, 0));
        if length == 0 {
            if offset != 0 {
                return Err(DecodeError::new("document page", "slot", at, "empty slot with a nonzero offset"));
            }
            if usize::from(index) + 1 == count {
                return Err(DecodeError::new("document page", "slot", at, "trailing empty slot was not trimmed"));
            }
            continue;
        }
        if offset < header.upper() || offset + length > PAGE_SIZE_BYTES {
            return Err(DecodeError::new(
                "document page",
                "slot",
                at,
                format!("record [{offset}, {}) lies outside [{}, {PAGE_SIZE_BYTES})", offset + length, header.upper()),
            ));
        }
        extents.push((offset, length, index));
    }
    extents.sort_unstable();
    let mut expected_start = header.upper();
    for &(offset, length, index) in &extents {
        if offset != expected_start {
            let at = HEADER_BYTES + SLOT_BYTES * usize::from(index);
            return Err(DecodeError::new(
                "document page",
                "slot",
                at,
                format!("record at {offset} overlaps or leaves a gap (expected {expected_start})"),
            ));
        }
        expected_start = offset + length;
    }
    if expected_start != PAGE_SIZE_BYTES {
        return Err(DecodeError::new("document page", "upper", 8, "records do not reach the end of the page"));
    }
    let mut records: Vec<(u16, &[u8])> = extents.iter().map(|&(offset, length, index)| (index, &page[offset..offset + length])).collect();
    records.sort_unstable_by_key(|&(index, _)| index);
    Ok(records)
}

/// A decoded slot record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotRecord<'a> {
    /// The encoded document itself.
    Inline(&'a [u8]),
    /// A document of `length` bytes stored in the overflow chain at `first_page`.
    Overflow { length: u32, first_page: u64 },
}

pub fn encode_inline(document: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(document.len() + 1);
    out.push(RECORD_INLINE);
    out.extend_from_slice(document);
    out
}

pub fn encode_overflow_stub(length: u32, first_page: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERFLOW_STUB_BYTES);
    out.push(RECORD_OVERFLOW);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&first_page.to_le_bytes());
    out
}

pub fn decode_slot_record(bytes: &[u8]) -> Result<SlotRecord<'_>, DecodeError> {
    match bytes.first() {
        Some(&RECORD_INLINE) => {
            if bytes.len() < 2 || bytes.len() > INLINE_RECORD_MAX_BYTES {
                return Err(DecodeError::new("slot record", "length", 0, format!("inline record of {} bytes", bytes.len())));
            }
            Ok(SlotRecord::Inline(&bytes[1..]))
        }
        Some(&RECORD_OVERFLOW) => {
            if bytes.len() != OVERFLOW_STUB_BYTES {
                return Err(DecodeError::new(
                    "slot record",
                    "length",
                    0,
                    format!("overflow stub of {} bytes, expected {OVERFLOW_STUB_BYTES}", bytes.len()),
                ));
            }
            let length = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            let mut page = [0u8; 8];
            page.copy_from_slice(&bytes[5..13]);
            let first_page = u64::from_le_bytes(page);
            if (length as usize) < INLINE_RECORD_MAX_BYTES || length as usize > crate::DOC_SIZE_MAX_BYTES {
                return Err(DecodeError::new(
                    "slot record",
                    "overflow length",
                    1,
                    format!("overflow length {length} outside [{INLINE_RECORD_MAX_BYTES}, {}]", crate::DOC_SIZE_MAX_BYTES),
                ));
            }
            Ok(SlotRecord::Overflow { length, first_page })
        }
        Some(&other) => Err(DecodeError::new("slot record", "kind", 0, format!("unknown record kind {other}"))),
        None => Err(DecodeError::new("slot record", "kind", 0, "empty record")),
    }
}

/// Number of overflow pages a document of `length` bytes needs.
pub fn overflow_pages_needed(length: usize) -> usize {
    length.div_ceil(OVERFLOW_DATA_BYTES)
}

/// Writes `data` (at most [`OVERFLOW_DATA_BYTES`]) into a fresh overflow page.
pub fn fill_overflow_page(page: &mut PageBytes, data: &[u8], next: u64) {
    assert!(data.len() <= OVERFLOW_DATA_BYTES);
    let mut header = PageHeader::read(page);
    header.kind = PageKind::Overflow as u8;
    header.lower = U16::new((HEADER_BYTES + data.len()) as u16);
    header.upper = U16::new(PAGE_SIZE_BYTES as u16);
    header.next = zerocopy::little_endian::U64::new(next);
    header.write(page);
    page[HEADER_BYTES..HEADER_BYTES + data.len()].copy_from_slice(data);
    page[HEADER_BYTES + data.len()..].fill(0);
}

/// Structural check of an overflow page; returns its data bytes.
pub fn check_overflow_page(page: &PageBytes) -> Result<&[u8], DecodeError> {
    let header = PageHeader::read(page);
    if header.kind != PageKind::Overflow as u8 {
        return Err(DecodeError::new(
            "overflow page",
            "kind",
            4,
            format!("expected kind {}, found {}", PageKind::Overflow as u8, header.kind),
        ));
    }
    if header.upper() != PAGE_SIZE_BYTES
        || header.lower() <= HEADER_BYTES
        || header.lower() > header.upper()
        || header.item_count.get() != 0
        || header.level.get() != 0
        || !header.prev().is_none()
    {
        return Err(DecodeError::new("overflow page", "header", 6, "overflow page header fields out of range"));
    }
    Ok(&page[HEADER_BYTES..header.lower()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::new_page;
    use crate::PageNo;

    #[test]
    fn insert_delete_replace_keep_page_valid() {
        let mut page = new_page(PageKind::Document, PageNo(0));
        let a = insert(&mut page, b"\x01aaaa").unwrap();
        let b = insert(&mut page, b"\x01bbbbbbbb").unwrap();
        let c = insert(&mut page, b"\x01cc").unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        check_document_page(&page).unwrap();
        delete(&mut page, b);
        check_document_page(&page).unwrap();
        assert_eq!(record(&page, a).unwrap(), b"\x01aaaa");
        assert_eq!(record(&page, c).unwrap(), b"\x01cc");
        assert_eq!(insert(&mut page, b"\x01dd").unwrap(), 1);
        assert!(replace(&mut page, a, b"\x01a much longer record than before"));
        check_document_page(&page).unwrap();
        assert_eq!(record(&page, a).unwrap(), b"\x01a much longer record than before");
        delete(&mut page, c);
        delete(&mut page, 1);
        check_document_page(&page).unwrap();
        assert_eq!(PageHeader::read(&page).item_count.get(), 1);
        delete(&mut page, a);
        assert_eq!(free_bytes(&page), PAGE_SIZE_BYTES - HEADER_BYTES);
        assert!(page[HEADER_BYTES..].iter().all(|&b| b == 0));
    }

    #[test]
    fn fills_until_full() {
        let mut page = new_page(PageKind::Document, PageNo(0));
        let record = [1u8; 100];
        let mut count = 0;
        while insert(&mut page, &record).is_some() {
            count += 1;
        }
        assert_eq!(count, (PAGE_SIZE_BYTES - HEADER_BYTES) / 104);
        check_document_page(&page).unwrap();
    }

    #[test]
    fn stub_round_trips() {
        let stub = encode_overflow_stub(5000, 42);
        assert_eq!(decode_slot_record(&stub).unwrap(), SlotRecord::Overflow { length: 5000, first_page: 42 });
        assert!(decode_slot_record(&stub[..12]).is_err());
        assert!(decode_slot_record(&encode_overflow_stub(10, 1)).is_err());
        assert!(decode_slot_record(b"\x09").is_err());
    }
}
