//! Fuzzes the WAL decoders: `WalHeader::decode` and `wal::decode_record`,
//! driven the way a recovery scan drives them.
//!
//! Input: one mode byte, then a WAL file image. Mode bit 0 recomputes the CRC
//! of every record whose length field is usable before scanning (from the
//! end of the header, or from offset 0 when bit 2 is set), so the fuzzer
//! reaches the field checks behind the CRC; bit 1 puts a valid header in
//! front of the image. The scan starts after the header (and also at
//! offset 0, for inputs that are bare records), decodes records back to back,
//! rebuilds and verifies every page image, and at the first bad record looks
//! for a valid record at any later offset (the torn-tail rule).

#![no_main]

use aerodb_format::page;
use aerodb_format::wal::{self, WalHeader, RECORD_MAX_BYTES, RECORD_MIN_BYTES, WAL_HEADER_BYTES};
use libfuzzer_sys::fuzz_target;

/// Later offsets tried when looking for a valid record after a bad one.
const RESCAN_OFFSETS_MAX: usize = 4096;

fn reseal_records(bytes: &mut [u8], start: usize) {
    let mut pos = start;
    while bytes.len() >= pos + 4 {
        let length =
            u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
                as usize;
        if !(RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&length) || bytes.len() - pos < length {
            return;
        }
        let crc = crc32c::crc32c(&bytes[pos..pos + length - 4]);
        bytes[pos + length - 4..pos + length].copy_from_slice(&crc.to_le_bytes());
        pos += length;
    }
}

fn scan(bytes: &[u8], start: usize) {
    let mut pos = start.min(bytes.len());
    let mut last_seq = 0u64;
    while pos < bytes.len() {
        match wal::decode_record(&bytes[pos..]) {
            Ok(record) => {
                assert!(record.length >= RECORD_MIN_BYTES && record.length <= bytes.len() - pos);
                assert!(record.seq.0 > 0);
                for image in &record.pages {
                    let page = image.to_page().expect("a decoded image rebuilds");
                    assert_eq!(page::elide_hole(&page).2, image.image);
                    let _ = page::verify(&page, image.page_no);
                }
                // Sequence order is the scanner's rule, not the decoder's.
                let _in_order = record.seq.0 == last_seq + 1;
                last_seq = record.seq.0;
                pos += record.length;
            }
            Err(_) => {
                let end = bytes.len().min(pos + 1 + RESCAN_OFFSETS_MAX);
                let _valid_after =
                    (pos + 1..end).any(|later| wal::decode_record(&bytes[later..]).is_ok());
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = Vec::with_capacity(rest.len() + WAL_HEADER_BYTES);
    if mode & 2 != 0 {
        file.extend_from_slice(&WalHeader::new([0x5a; 16]).encode());
    }
    file.extend_from_slice(rest);
    if mode & 1 != 0 {
        let reseal_from = if mode & 4 != 0 {
            0
        } else {
            WAL_HEADER_BYTES.min(file.len())
        };
        reseal_records(&mut file, reseal_from);
    }
    if let Ok(header) = WalHeader::decode(&file) {
        assert_eq!(WalHeader::decode(&header.encode()), Ok(header));
    }
    scan(&file, WAL_HEADER_BYTES);
    scan(&file, 0);
});
