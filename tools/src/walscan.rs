//! The WAL read as a sequence of entries: good records, damaged records with
//! valid data after them (corruption), and a torn tail.
//!
//! The rule (SPEC section 8): a final record that is incomplete, or whose CRC
//! (or length field) is bad, with no valid record anywhere after it, is a torn
//! tail: a write that was never acknowledged. A bad record with a valid
//! record after it is corruption. A record whose CRC is right but whose
//! content is malformed was written that way: corruption wherever it is.
//! Sequence numbers must start at 1 and grow by exactly 1.
//!
//! The scan borrows nothing: page images are kept as offsets into the file,
//! so a caller can restore any image later from the same bytes.

use serde_json::Value;

use aerodb_format::page::{restore_hole, PageBytes};
use aerodb_format::wal::{decode_record, PageChange, RecordError, WalHeader, WalOp, RECORD_MAX_BYTES, RECORD_MIN_BYTES, WAL_HEADER_BYTES};
use aerodb_format::{DecodeError, PageNo, SeqNo, PAGE_SIZE_BYTES};

/// Where one page entry sits in the WAL file: a whole image (hole elided)
/// or a delta (its encoded ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub page_no: PageNo,
    /// A delta entry: `image_offset`/`image_bytes` locate its encoded
    /// ranges and `lower`/`upper` are 0.
    pub delta: bool,
    pub lower: u16,
    pub upper: u16,
    /// Offset of the image bytes (or the delta's ranges) in the file.
    pub image_offset: usize,
    pub image_bytes: usize,
}

impl ImageRef {
    /// Bytes of the hole the image leaves out (0 for a delta).
    pub fn hole_bytes(&self) -> usize {
        if self.delta {
            0
        } else {
            PAGE_SIZE_BYTES - self.image_bytes
        }
    }

    /// Applies a delta entry to `page`.
    pub fn apply_delta(&self, wal: &[u8], page: &mut PageBytes) -> Result<(), DecodeError> {
        let encoded = wal
            .get(self.image_offset..self.image_offset + self.image_bytes)
            .ok_or_else(|| DecodeError::new("page delta", "delta", self.image_offset, "delta lies outside the WAL"))?;
        aerodb_format::wal::apply_encoded_delta(page, encoded)
    }

    /// The full page, rebuilt from the WAL bytes the scan ran over.
    pub fn restore(&self, wal: &[u8]) -> Result<Box<PageBytes>, DecodeError> {
        let image = wal
            .get(self.image_offset..self.image_offset + self.image_bytes)
            .ok_or_else(|| DecodeError::new("page image", "image", self.image_offset, "image lies outside the WAL"))?;
        restore_hole(self.lower, self.upper, image)
    }
}

/// One record that decoded (its CRC and structure are good).
#[derive(Clone, Debug)]
pub struct ScannedRecord {
    pub offset: usize,
    pub length: usize,
    pub seq: SeqNo,
    pub op: WalOp,
    pub schema_id: String,
    pub schema_version: String,
    pub id: Value,
    pub pages: Vec<ImageRef>,
    /// Set when the sequence number is not the one expected.
    pub sequence_error: Option<String>,
}

/// One entry of the scan, in file order.
#[derive(Clone, Debug)]
pub enum ScanEntry {
    Record(ScannedRecord),
    /// A damaged record with a valid record after it; `skipped_bytes` runs
    /// up to that valid record.
    Corrupt {
        offset: usize,
        skipped_bytes: usize,
        error: DecodeError,
    },
    /// The end of the file holds no complete valid record.
    Torn {
        offset: usize,
        bytes: usize,
        reason: String,
    },
}

/// The whole WAL, scanned.
#[derive(Clone, Debug)]
pub struct WalScan {
    pub file_bytes: usize,
    /// Where the records end (zeros after it are preallocated space).
    pub logical_end: usize,
    pub header: Result<WalHeader, DecodeError>,
    pub entries: Vec<ScanEntry>,
}

impl WalScan {
    /// Scans every byte of a WAL file.
    pub fn scan(bytes: &[u8]) -> WalScan {
        let header = WalHeader::decode(bytes);
        let mut entries = Vec::new();
        let mut expected_seq = Some(1u64);
        let mut position = WAL_HEADER_BYTES;
        // Each iteration moves `position` forward by at least one byte.
        while position < bytes.len() {
            let rest = &bytes[position..];
            if aerodb_format::all_zero(rest) {
                // Zeros to the end of the file: the logical end of a
                // preallocated log, not a torn tail (FORMAT.md section 5).
                break;
            }
            match decode_record(rest) {
                Ok(record) => {
                    let sequence_error = match expected_seq {
                        Some(expected) if record.seq.0 != expected => Some(if record.seq.0 < expected {
                            format!("sequence number {} repeats or goes back (expected {expected})", record.seq)
                        } else {
                            format!("sequence number {} leaves a gap (expected {expected})", record.seq)
                        }),
                        _ => None,
                    };
                    expected_seq = record.seq.0.checked_add(1);
                    let pages = record
                        .pages
                        .iter()
                        .map(|change| match change {
                            PageChange::Image(image) => ImageRef {
                                page_no: image.page_no,
                                delta: false,
                                lower: image.lower,
                                upper: image.upper,
                                image_offset: offset_within(bytes, image.image),
                                image_bytes: image.image.len(),
                            },
                            PageChange::Delta(delta) => ImageRef {
                                page_no: delta.page_no,
                                delta: true,
                                lower: 0,
                                upper: 0,
                                image_offset: offset_within(bytes, delta.encoded),
                                image_bytes: delta.encoded.len(),
                            },
                        })
                        .collect();
                    entries.push(ScanEntry::Record(ScannedRecord {
                        offset: position,
                        length: record.length,
                        seq: record.seq,
                        op: record.op,
                        schema_id: record.schema_id,
                        schema_version: record.schema_version,
                        id: record.id,
                        pages,
                        sequence_error,
                    }));
                    position += record.length;
                }
                Err(RecordError::Incomplete { needed, available }) => {
                    let reason = format!("record needs {needed} bytes, only {available} remain");
                    if let Some(next) = next_valid_record(bytes, position) {
                        // A damaged length field claims more than the file holds.
                        let error = DecodeError::new("WAL record", "length", 0, reason);
                        entries.push(ScanEntry::Corrupt { offset: position, skipped_bytes: next - position, error });
                        expected_seq = None;
                        position = next;
                        continue;
                    }
                    let torn = aerodb_format::nonzero_end(rest);
                    entries.push(ScanEntry::Torn { offset: position, bytes: torn, reason });
                    break;
                }
                Err(RecordError::Unverified(error)) => match next_valid_record(bytes, position) {
                    Some(next) => {
                        entries.push(ScanEntry::Corrupt { offset: position, skipped_bytes: next - position, error });
                        // The damaged bytes hid at least one sequence number.
                        expected_seq = None;
                        position = next;
                    }
                    None => {
                        let reason = format!("{} (nothing valid follows)", error);
                        // The torn bytes end at the last non-zero byte; the zeros after it are preallocated space.
                        let torn = aerodb_format::nonzero_end(rest);
                        entries.push(ScanEntry::Torn { offset: position, bytes: torn, reason });
                        break;
                    }
                },
                Err(RecordError::Corrupt(error)) => match next_valid_record(bytes, position) {
                    Some(next) => {
                        entries.push(ScanEntry::Corrupt { offset: position, skipped_bytes: next - position, error });
                        expected_seq = None;
                        position = next;
                    }
                    None => {
                        // The CRC matched: these bytes were written as they are.
                        entries.push(ScanEntry::Corrupt { offset: position, skipped_bytes: rest.len(), error });
                        break;
                    }
                },
            }
        }
        let logical_end = match entries.last() {
            Some(ScanEntry::Record(record)) => record.offset + record.length,
            Some(ScanEntry::Torn { offset, .. }) => *offset,
            Some(ScanEntry::Corrupt { offset, skipped_bytes, .. }) => offset + skipped_bytes,
            None => WAL_HEADER_BYTES.min(bytes.len()),
        };
        WalScan { file_bytes: bytes.len(), logical_end, header, entries }
    }

    pub fn records(&self) -> impl Iterator<Item = &ScannedRecord> {
        self.entries.iter().filter_map(|entry| match entry {
            ScanEntry::Record(record) => Some(record),
            _ => None,
        })
    }

    /// Sequence number of the last good record (0 when there is none).
    pub fn last_seq(&self) -> SeqNo {
        self.records().last().map(|record| record.seq).unwrap_or_default()
    }

    /// `(offset, bytes)` of the torn tail, if any.
    pub fn torn_tail(&self) -> Option<(usize, usize)> {
        self.entries.iter().find_map(|entry| match entry {
            ScanEntry::Torn { offset, bytes, .. } => Some((*offset, *bytes)),
            _ => None,
        })
    }
}

/// Offset of `inner` inside `outer` (`inner` is a sub-slice of `outer`).
fn offset_within(outer: &[u8], inner: &[u8]) -> usize {
    let offset = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    assert!(offset + inner.len() <= outer.len(), "image slice lies outside the WAL bytes");
    offset
}

/// The first offset after `damaged` where a valid record starts. The record
/// at `damaged` tells its own length; that place is tried first, then every
/// byte after the damaged record's start (a cheap look at the record type and
/// op bytes skips most offsets before the CRC is computed).
fn next_valid_record(bytes: &[u8], damaged: usize) -> Option<usize> {
    let is_valid_at = |at: usize| {
        let Some(head) = bytes.get(at..at + 6) else {
            return false;
        };
        let length = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        (RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&length)
            && at + length <= bytes.len()
            && aerodb_format::wal::plausible_record_start(head)
            && decode_record(&bytes[at..]).is_ok()
    };
    if let Some(head) = bytes.get(damaged..damaged + 4) {
        let claimed = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if (RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&claimed) && is_valid_at(damaged + claimed) {
            return Some(damaged + claimed);
        }
    }
    let last_start = bytes.len().checked_sub(RECORD_MIN_BYTES)?;
    (damaged + 1..=last_start).find(|&at| is_valid_at(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerodb_format::page::{new_page, seal, PageKind};
    use aerodb_format::slotted;
    use aerodb_format::wal::{encode_record, RecordHeader};
    use serde_json::json;

    fn record(seq: u64) -> Vec<u8> {
        let mut page = new_page(PageKind::Document, PageNo(seq));
        slotted::insert(&mut page, b"\x01document").unwrap();
        seal(&mut page, SeqNo(seq));
        let id = json!(seq as i64);
        let header = RecordHeader { seq: SeqNo(seq), op: WalOp::Insert, schema_id: "s", schema_version: "v", id: &id };
        encode_record(&header, &[&page])
    }

    fn wal(records: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = WalHeader::new([1; 16]).encode().to_vec();
        for record in records {
            bytes.extend_from_slice(record);
        }
        bytes
    }

    #[test]
    fn clean_log_scans_to_the_end() {
        let bytes = wal(&[record(1), record(2), record(3)]);
        let scan = WalScan::scan(&bytes);
        assert!(scan.header.is_ok());
        assert_eq!(scan.records().count(), 3);
        assert_eq!(scan.last_seq(), SeqNo(3));
        assert!(scan.torn_tail().is_none());
        let image = scan.records().next().unwrap().pages[0];
        aerodb_format::page::verify(&image.restore(&bytes).unwrap(), PageNo(1)).unwrap();
    }

    #[test]
    fn truncated_and_damaged_tails_are_torn() {
        let full = wal(&[record(1), record(2)]);
        let cut = &full[..full.len() - 5];
        let scan = WalScan::scan(cut);
        assert_eq!(scan.records().count(), 1);
        assert!(scan.torn_tail().is_some());
        let mut damaged = full.clone();
        let last = damaged.len() - 10;
        damaged[last] ^= 0xFF;
        let scan = WalScan::scan(&damaged);
        assert_eq!(scan.records().count(), 1);
        assert!(matches!(scan.entries.last(), Some(ScanEntry::Torn { .. })));
    }

    #[test]
    fn damage_before_a_valid_record_is_corruption() {
        let first = record(1);
        let mut bytes = wal(&[first.clone(), record(2), record(3)]);
        let middle = WAL_HEADER_BYTES + first.len() + 30;
        bytes[middle] ^= 0x40;
        let scan = WalScan::scan(&bytes);
        assert!(matches!(scan.entries[1], ScanEntry::Corrupt { offset, .. } if offset == WAL_HEADER_BYTES + first.len()));
        assert_eq!(scan.records().map(|r| r.seq.0).collect::<Vec<_>>(), vec![1, 3]);
        // The length field itself damaged: the scan still finds record 3.
        let mut bytes = wal(&[first.clone(), record(2), record(3)]);
        bytes[WAL_HEADER_BYTES + first.len() + 1] ^= 0x7F;
        let scan = WalScan::scan(&bytes);
        assert!(matches!(scan.entries[1], ScanEntry::Corrupt { .. }));
        assert_eq!(scan.last_seq(), SeqNo(3));
    }

    #[test]
    fn sequence_gaps_and_repeats_are_flagged() {
        let scan = WalScan::scan(&wal(&[record(1), record(3), record(3)]));
        let errors: Vec<_> = scan.records().map(|r| r.sequence_error.is_some()).collect();
        assert_eq!(errors, vec![false, true, true]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x1234_5678_u64;
        for length in [0, 1, 39, 40, 41, 100, 5000] {
            let mut bytes = vec![0u8; length];
            for byte in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            let _ = WalScan::scan(&bytes);
        }
    }
}
