//! B-tree node layout.
//!
//! A node is a page of kind `BtreeLeaf` or `BtreeInternal`. After the header
//! comes a directory of u16 cell offsets in key order (`lower = HEADER_BYTES
//! + 2 * item_count`); cells grow from the back (`upper` = lowest cell
//! offset) and cover `[upper, PAGE_SIZE_BYTES)` without gaps.
//!
//! - leaf cell: u16 key length, key bytes, u64 document page, u16 document slot;
//! - internal cell: u16 key length, key bytes, u64 child page, u64 number of
//!   entries in the child's subtree.
//!
//! In an internal node, cell `i`'s key is the lowest key that may live in
//! child `i`; child `i` holds the keys in `[key_i, key_{i+1})`. The first
//! cell of the leftmost node of each internal level has the empty key (minus
//! infinity). Leaves of one tree are linked both ways through
//! `next`/`prev`; internal nodes have no links. `level` is 0 for leaves and
//! grows by one per level up. Keys within a node strictly increase.

use zerocopy::little_endian::{U16, U32, U64};

use crate::page::{PageBytes, PageHeader, PageKind, HEADER_BYTES};
use crate::{DecodeError, PageNo, PAGE_SIZE_BYTES};

/// Longest key accepted in a node (keeps at least three cells per node).
pub const KEY_BYTES_MAX: usize = 1040;
/// Value bytes of a leaf cell: document page (u64) and slot (u16).
pub const LEAF_VALUE_BYTES: usize = 10;
/// Value bytes of an internal cell: child page (u64) and subtree count (u64).
pub const INTERNAL_VALUE_BYTES: usize = 16;

/// Where an index entry's document lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Locator {
    pub page: PageNo,
    pub slot: u16,
}

impl Locator {
    pub fn to_bytes(self) -> [u8; LEAF_VALUE_BYTES] {
        let mut out = [0u8; LEAF_VALUE_BYTES];
        out[..8].copy_from_slice(&self.page.0.to_le_bytes());
        out[8..].copy_from_slice(&self.slot.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Locator {
        let mut page = [0u8; 8];
        page.copy_from_slice(&bytes[..8]);
        Locator { page: PageNo(u64::from_le_bytes(page)), slot: u16::from_le_bytes([bytes[8], bytes[9]]) }
    }
}

/// `(child page, subtree entry count)` of an internal cell.
pub fn internal_value_bytes(child: PageNo, count: u64) -> [u8; INTERNAL_VALUE_BYTES] {
    let mut out = [0u8; INTERNAL_VALUE_BYTES];
    out[..8].copy_from_slice(&child.0.to_le_bytes());
    out[8..].copy_from_slice(&count.to_le_bytes());
    out
}

pub fn is_leaf(page: &PageBytes) -> bool {
    PageHeader::read(page).kind == PageKind::BtreeLeaf as u8
}

fn value_bytes(page: &PageBytes) -> usize {
    if is_leaf(page) {
        LEAF_VALUE_BYTES
    } else {
        INTERNAL_VALUE_BYTES
    }
}

/// Formats `page` as an empty node.
pub fn init_node(page: &mut PageBytes, page_no: PageNo, level: u32) {
    page.fill(0);
    let kind = if level == 0 { PageKind::BtreeLeaf } else { PageKind::BtreeInternal };
    let mut header = PageHeader::new(kind, page_no);
    header.level = U32::new(level);
    header.write(page);
}

pub fn entry_count(page: &PageBytes) -> usize {
    usize::from(PageHeader::read(page).item_count.get())
}

fn cell_offset(page: &PageBytes, index: usize) -> usize {
    let at = HEADER_BYTES + 2 * index;
    usize::from(u16::from_le_bytes([page[at], page[at + 1]]))
}

/// Key of entry `index` (the caller keeps `index < entry_count`).
pub fn key(page: &PageBytes, index: usize) -> &[u8] {
    let offset = cell_offset(page, index);
    let length = usize::from(u16::from_le_bytes([page[offset], page[offset + 1]]));
    &page[offset + 2..offset + 2 + length]
}

fn value(page: &PageBytes, index: usize) -> &[u8] {
    let offset = cell_offset(page, index);
    let length = usize::from(u16::from_le_bytes([page[offset], page[offset + 1]]));
    &page[offset + 2 + length..offset + 2 + length + value_bytes(page)]
}

pub fn leaf_locator(page: &PageBytes, index: usize) -> Locator {
    Locator::from_bytes(value(page, index))
}

pub fn internal_child(page: &PageBytes, index: usize) -> (PageNo, u64) {
    let raw = value(page, index);
    let mut child = [0u8; 8];
    let mut count = [0u8; 8];
    child.copy_from_slice(&raw[..8]);
    count.copy_from_slice(&raw[8..16]);
    (PageNo(u64::from_le_bytes(child)), u64::from_le_bytes(count))
}

/// Overwrites the subtree count of internal entry `index`.
pub fn set_internal_count(page: &mut PageBytes, index: usize, count: u64) {
    let offset = cell_offset(page, index);
    let length = usize::from(u16::from_le_bytes([page[offset], page[offset + 1]]));
    let at = offset + 2 + length + 8;
    page[at..at + 8].copy_from_slice(&count.to_le_bytes());
}

/// Binary search: `Ok(i)` if entry `i` has exactly `key`, else `Err(i)`
/// with `i` the position where it would be inserted.
pub fn search(page: &PageBytes, key_bytes: &[u8]) -> Result<usize, usize> {
    let (mut low, mut high) = (0, entry_count(page));
    while low < high {
        let middle = low + (high - low) / 2;
        match key(page, middle).cmp(key_bytes) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
            std::cmp::Ordering::Equal => return Ok(middle),
        }
    }
    Err(low)
}

/// For an internal node: the child entry whose range holds `key_bytes`.
pub fn child_index_for(page: &PageBytes, key_bytes: &[u8]) -> usize {
    match search(page, key_bytes) {
        Ok(index) => index,
        Err(0) => 0,
        Err(index) => index - 1,
    }
}

/// Bytes one entry with a key of `key_length` takes (cell and directory slot).
pub fn entry_bytes(key_length: usize, leaf: bool) -> usize {
    2 + key_length + if leaf { LEAF_VALUE_BYTES } else { INTERNAL_VALUE_BYTES } + 2
}

pub fn free_bytes(page: &PageBytes) -> usize {
    let header = PageHeader::read(page);
    header.upper().saturating_sub(header.lower())
}

/// Inserts an entry at position `index`; false (page unchanged) if it does not fit.
pub fn insert_entry(page: &mut PageBytes, index: usize, key_bytes: &[u8], value_raw: &[u8]) -> bool {
    assert!(key_bytes.len() <= KEY_BYTES_MAX && value_raw.len() == value_bytes(page));
    let count = entry_count(page);
    assert!(index <= count);
    let cell_length = 2 + key_bytes.len() + value_raw.len();
    if cell_length + 2 > free_bytes(page) {
        return false;
    }
    let mut header = PageHeader::read(page);
    let offset = header.upper() - cell_length;
    page[offset..offset + 2].copy_from_slice(&(key_bytes.len() as u16).to_le_bytes());
    page[offset + 2..offset + 2 + key_bytes.len()].copy_from_slice(key_bytes);
    page[offset + 2 + key_bytes.len()..offset + cell_length].copy_from_slice(value_raw);
    let slot_at = HEADER_BYTES + 2 * index;
    let directory_end = HEADER_BYTES + 2 * count;
    page.copy_within(slot_at..directory_end, slot_at + 2);
    page[slot_at..slot_at + 2].copy_from_slice(&(offset as u16).to_le_bytes());
    header.item_count = U16::new((count + 1) as u16);
    header.lower = U16::new((directory_end + 2) as u16);
    header.upper = U16::new(offset as u16);
    header.write(page);
    true
}

/// Removes entry `index`, closing the gap its cell leaves.
pub fn remove_entry(page: &mut PageBytes, index: usize) {
    let count = entry_count(page);
    assert!(index < count);
    let offset = cell_offset(page, index);
    let key_length = usize::from(u16::from_le_bytes([page[offset], page[offset + 1]]));
    let cell_length = 2 + key_length + value_bytes(page);
    let mut header = PageHeader::read(page);
    let upper = header.upper();
    page.copy_within(upper..offset, upper + cell_length);
    page[upper..upper + cell_length].fill(0);
    let slot_at = HEADER_BYTES + 2 * index;
    let directory_end = HEADER_BYTES + 2 * count;
    page.copy_within(slot_at + 2..directory_end, slot_at);
    page[directory_end - 2..directory_end].fill(0);
    for other in 0..count - 1 {
        let other_offset = cell_offset(page, other);
        if other_offset < offset {
            let at = HEADER_BYTES + 2 * other;
            page[at..at + 2].copy_from_slice(&((other_offset + cell_length) as u16).to_le_bytes());
        }
    }
    header.item_count = U16::new((count - 1) as u16);
    header.lower = U16::new((directory_end - 2) as u16);
    header.upper = U16::new((upper + cell_length) as u16);
    header.write(page);
}

/// All entries of a node as `(key, value bytes)`.
pub fn entries(page: &PageBytes) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..entry_count(page)).map(|index| (key(page, index).to_vec(), value(page, index).to_vec())).collect()
}

pub fn set_links(page: &mut PageBytes, prev: PageNo, next: PageNo) {
    let mut header = PageHeader::read(page);
    header.prev = U64::new(prev.0);
    header.next = U64::new(next.0);
    header.write(page);
}

/// Structural check of a node (its checksum is checked by
/// [`crate::page::verify`]): directory and cells in bounds, cells
/// contiguous and non-overlapping, keys strictly increasing, key lengths
/// within [`KEY_BYTES_MAX`].
pub fn check_node(page: &PageBytes) -> Result<(), DecodeError> {
    let header = PageHeader::read(page);
    let leaf = match PageKind::from_byte(header.kind) {
        Some(PageKind::BtreeLeaf) => true,
        Some(PageKind::BtreeInternal) => false,
        _ => return Err(DecodeError::new("btree node", "kind", 4, format!("kind {} is not a B-tree node", header.kind))),
    };
    if leaf != (header.level.get() == 0) {
        return Err(DecodeError::new("btree node", "level", 12, format!("level {} does not match the node kind", header.level.get())));
    }
    if !leaf && (!header.next().is_none() || !header.prev().is_none()) {
        return Err(DecodeError::new("btree node", "next/prev", 32, "internal nodes carry no sibling links"));
    }
    // The page may not have passed `page::verify`: bound the hole before
    // reading the cell directory.
    if !crate::page::hole_bounds_valid(header.lower(), header.upper()) {
        return Err(DecodeError::new(
            "btree node",
            "lower/upper",
            6,
            format!("bad hole bounds lower={} upper={}", header.lower(), header.upper()),
        ));
    }
    let count = usize::from(header.item_count.get());
    if header.lower() != HEADER_BYTES + 2 * count {
        return Err(DecodeError::new("btree node", "lower", 6, format!("lower {} does not match {count} entries", header.lower())));
    }
    let value_length = if leaf { LEAF_VALUE_BYTES } else { INTERNAL_VALUE_BYTES };
    let mut extents = Vec::with_capacity(count);
    for index in 0..count {
        let slot_at = HEADER_BYTES + 2 * index;
        let offset = cell_offset(page, index);
        if offset < header.upper() || offset + 2 > PAGE_SIZE_BYTES {
            return Err(DecodeError::new(
                "btree node",
                "cell offset",
                slot_at,
                format!("cell offset {offset} outside [{}, {PAGE_SIZE_BYTES})", header.upper()),
            ));
        }
        let key_length = usize::from(u16::from_le_bytes([page[offset], page[offset + 1]]));
        let end = offset + 2 + key_length + value_length;
        if key_length > KEY_BYTES_MAX || end > PAGE_SIZE_BYTES {
            return Err(DecodeError::new("btree node", "key length", offset, format!("key length {key_length} runs past the page")));
        }
        extents.push((offset, end, slot_at));
    }
    extents.sort_unstable();
    let mut expected = header.upper();
    for &(offset, end, slot_at) in &extents {
        if offset != expected {
            return Err(DecodeError::new(
                "btree node",
                "cell offset",
                slot_at,
                format!("cell at {offset} overlaps or leaves a gap (expected {expected})"),
            ));
        }
        expected = end;
    }
    if expected != PAGE_SIZE_BYTES {
        return Err(DecodeError::new("btree node", "upper", 8, "cells do not reach the end of the page"));
    }
    for index in 1..count {
        if key(page, index - 1) >= key(page, index) {
            return Err(DecodeError::new(
                "btree node",
                "key order",
                cell_offset(page, index),
                format!("key {index} is not greater than key {}", index - 1),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::new_page;

    #[test]
    fn insert_search_remove() {
        let mut page = new_page(PageKind::BtreeLeaf, PageNo(3));
        init_node(&mut page, PageNo(3), 0);
        for (index, key_bytes) in [b"m".as_slice(), b"c", b"x", b"a"].iter().enumerate() {
            let position = search(&page, key_bytes).unwrap_err();
            let locator = Locator { page: PageNo(index as u64), slot: 1 };
            assert!(insert_entry(&mut page, position, key_bytes, &locator.to_bytes()));
            check_node(&page).unwrap();
        }
        let keys: Vec<_> = (0..4).map(|index| key(&page, index).to_vec()).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec(), b"m".to_vec(), b"x".to_vec()]);
        assert_eq!(search(&page, b"m"), Ok(2));
        assert_eq!(leaf_locator(&page, 2), Locator { page: PageNo(0), slot: 1 });
        remove_entry(&mut page, 1);
        check_node(&page).unwrap();
        assert_eq!(search(&page, b"c"), Err(1));
        assert_eq!(leaf_locator(&page, 2), Locator { page: PageNo(2), slot: 1 });
        for _ in 0..3 {
            remove_entry(&mut page, 0);
        }
        assert!(page[HEADER_BYTES..].iter().all(|&b| b == 0));
    }

    #[test]
    fn internal_counts_update() {
        let mut page = new_page(PageKind::BtreeInternal, PageNo(1));
        init_node(&mut page, PageNo(1), 1);
        assert!(insert_entry(&mut page, 0, b"", &internal_value_bytes(PageNo(5), 10)));
        assert!(insert_entry(&mut page, 1, b"k", &internal_value_bytes(PageNo(6), 7)));
        set_internal_count(&mut page, 1, 8);
        assert_eq!(internal_child(&page, 1), (PageNo(6), 8));
        assert_eq!(child_index_for(&page, b"a"), 0);
        assert_eq!(child_index_for(&page, b"k"), 1);
        assert_eq!(child_index_for(&page, b"z"), 1);
        check_node(&page).unwrap();
    }

    #[test]
    fn three_largest_keys_fit() {
        let mut page = new_page(PageKind::BtreeInternal, PageNo(1));
        init_node(&mut page, PageNo(1), 1);
        for index in 0..3u8 {
            let key_bytes = vec![index; KEY_BYTES_MAX];
            assert!(insert_entry(&mut page, usize::from(index), &key_bytes, &internal_value_bytes(PageNo(1), 1)));
        }
    }
}

/// One tree of `indexes/directory.json` (FORMAT.md section 11.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry<'a> {
    pub schema_id: &'a str,
    pub schema_version: &'a str,
    pub field: &'a str,
    pub root: u64,
    pub height: u32,
    pub entries: u64,
}

/// The bytes of `indexes/directory.json`: `lsn` and the trees in order,
/// indented by two spaces, with a final newline.
pub fn encode_directory(lsn: u64, trees: &[DirectoryEntry<'_>]) -> String {
    let trees: Vec<serde_json::Value> = trees
        .iter()
        .map(|tree| {
            serde_json::json!({"schema_id": tree.schema_id, "schema_version": tree.schema_version, "field": tree.field,
                               "root": tree.root, "height": tree.height, "entries": tree.entries})
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({"lsn": lsn, "trees": trees})).unwrap_or_default();
    text.push('\n');
    text
}
