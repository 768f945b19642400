//! Fuzzes the page decoders: `page::verify`, then by kind
//! `slotted::check_document_page` (and every slot record and document in
//! it), `slotted::check_overflow_page` or `btree::check_node` (and every
//! entry key), exactly as a reader checks a segment page.
//!
//! Input: one mode byte, then the page, padded with zeros or cut to 4096
//! bytes. Mode bit 0 re-seals the page (recomputes its checksum) so the
//! fuzzer reaches the structural checks behind the checksum. The structural
//! checks also run on the page unverified: they must not panic either.

#![no_main]

use aerodb_format::page::{self, PageBytes, PageHeader, PageKind};
use aerodb_format::slotted::{self, SlotRecord};
use aerodb_format::{btree, document, key, PageNo, PAGE_SIZE_BYTES};
use libfuzzer_sys::fuzz_target;

fn check_document_page(page: &PageBytes) {
    let Ok(records) = slotted::check_document_page(page) else {
        return;
    };
    for (slot, record) in records {
        assert_eq!(slotted::record(page, slot), Some(record));
        match slotted::decode_slot_record(record) {
            Ok(SlotRecord::Inline(bytes)) => {
                if let Ok(decoded) = document::decode_record(bytes) {
                    let again = document::encode_record(
                        &decoded.schema_id,
                        &decoded.schema_version,
                        &decoded.body,
                    )
                    .expect("a decoded document re-encodes");
                    assert_eq!(again, bytes, "the document encoding is canonical");
                }
            }
            Ok(SlotRecord::Overflow { .. }) | Err(_) => {}
        }
    }
}

fn check_node(page: &PageBytes) {
    if btree::check_node(page).is_err() {
        return;
    }
    let leaf = btree::is_leaf(page);
    for index in 0..btree::entry_count(page) {
        let key_bytes = btree::key(page, index);
        assert_eq!(btree::search(page, key_bytes), Ok(index));
        let _ = key::decode_entry_key(key_bytes, false);
        let _ = key::decode_entry_key(key_bytes, true);
        if leaf {
            let _ = btree::leaf_locator(page, index);
        } else {
            let _ = btree::internal_child(page, index);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut page: Box<PageBytes> = Box::new([0u8; PAGE_SIZE_BYTES]);
    let length = rest.len().min(PAGE_SIZE_BYTES);
    page[..length].copy_from_slice(&rest[..length]);
    let header = PageHeader::read(&page);
    if mode & 1 != 0 {
        page::seal(&mut page, header.lsn());
    }
    let _ = page::is_unwritten(&page);
    // The page claims its own number: verify against it, and against another.
    let _ = page::verify(&page, PageNo(header.page_no().0.wrapping_add(1)));
    match page::verify(&page, header.page_no()) {
        Ok(verified) => {
            let (lower, upper, image) = page::elide_hole(&page);
            assert_eq!(
                *page::restore_hole(lower, upper, &image).expect("a verified page rebuilds"),
                *page
            );
            match PageKind::from_byte(verified.kind) {
                Some(PageKind::Document) => check_document_page(&page),
                Some(PageKind::Overflow) => {
                    let _ = slotted::check_overflow_page(&page);
                }
                Some(PageKind::BtreeLeaf | PageKind::BtreeInternal) => check_node(&page),
                Some(PageKind::Free) | None => {}
            }
        }
        Err(_) => {
            // Unverified pages reach the structural checks too.
            check_document_page(&page);
            check_node(&page);
            let _ = slotted::check_overflow_page(&page);
        }
    }
});
