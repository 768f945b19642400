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
//! so a caller can restore any image later from the same bytes. A
//! [`Scanner`] streams the file through a bounded window; [`WalScan`]
//! collects a small log in memory.

use serde_json::Value;

use aerodb_format::page::{restore_hole, PageBytes};
use aerodb_format::wal::{decode_record, PageChange, RecordError, WalHeader, WalOp, RECORD_MAX_BYTES, RECORD_MIN_BYTES, WAL_HEADER_BYTES};
use aerodb_format::{DecodeError, PageNo, SeqNo, PAGE_SIZE_BYTES};

use crate::files::{ReadAt, Window};

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

    /// The entry's bytes (image or encoded delta), read from the WAL file.
    pub fn read_bytes(&self, wal: &dyn ReadAt) -> Result<Vec<u8>, DecodeError> {
        let mut bytes = vec![0; self.image_bytes];
        wal.read_exact_at(&mut bytes, self.image_offset as u64)
            .map_err(|error| DecodeError::new("page entry", "image", self.image_offset, format!("cannot be read: {error}")))?;
        Ok(bytes)
    }

    /// [`ImageRef::restore`], reading the image from the WAL file.
    pub fn restore_from(&self, wal: &dyn ReadAt) -> Result<Box<PageBytes>, DecodeError> {
        restore_hole(self.lower, self.upper, &self.read_bytes(wal)?)
    }

    /// [`ImageRef::apply_delta`], reading the delta from the WAL file.
    pub fn apply_delta_from(&self, wal: &dyn ReadAt, page: &mut PageBytes) -> Result<(), DecodeError> {
        aerodb_format::wal::apply_encoded_delta(page, &self.read_bytes(wal)?)
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
    /// The file could not be read from `offset` on (an I/O error, or a file
    /// shortened while it was read); the scan ends here.
    Unreadable {
        offset: usize,
        error: String,
    },
}

/// The whole WAL, scanned into memory (for small logs and tests; the tools
/// stream a [`Scanner`] instead).
#[derive(Clone, Debug)]
pub struct WalScan {
    pub file_bytes: usize,
    /// Where the records end (zeros after it are preallocated space).
    pub logical_end: usize,
    pub header: Result<WalHeader, DecodeError>,
    pub entries: Vec<ScanEntry>,
}

impl WalScan {
    /// Scans every byte of a WAL held in memory.
    pub fn scan(bytes: &[u8]) -> WalScan {
        let mut scanner = Scanner::new(&bytes);
        let header = scanner.header();
        let entries: Vec<ScanEntry> = scanner.by_ref().collect();
        WalScan { file_bytes: bytes.len(), logical_end: scanner.logical_end() as usize, header, entries }
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

/// A decoded record's parts: length, seq, op, schema id and version, `_id`, page entries.
type DecodedRecord = (usize, SeqNo, WalOp, String, String, Value, Vec<ImageRef>);

/// Bytes read ahead per `pread` by a scan.
pub const SCAN_CHUNK_BYTES: usize = 1024 * 1024;

/// The WAL read front to back as [`ScanEntry`]s, holding one chunk of the
/// file (or one record, if larger) at a time: memory does not grow with the
/// log. Every offset is a byte offset in the file.
pub struct Scanner<'a> {
    window: Window<'a>,
    position: u64,
    expected_seq: Option<u64>,
    last_seq: SeqNo,
    logical_end: u64,
    done: bool,
    live: bool,
}

/// Times a scan of a log being written re-reads a damaged record, and the
/// first pause (each later one is four times longer).
pub const LIVE_RETRIES: u32 = 3;
pub const LIVE_RETRY_PAUSE_MS: u64 = 10;

impl<'a> Scanner<'a> {
    pub fn new(source: &'a dyn ReadAt) -> Scanner<'a> {
        let window = Window::new(source, SCAN_CHUNK_BYTES);
        let logical_end = (WAL_HEADER_BYTES as u64).min(source.length());
        Scanner {
            window,
            position: WAL_HEADER_BYTES as u64,
            expected_seq: Some(1),
            last_seq: SeqNo(0),
            logical_end,
            done: false,
            live: false,
        }
    }

    /// A scan of a log a running server may be appending to. Records are
    /// never rewritten once written, so every complete record read is what
    /// the server wrote; but the bytes after the last one may be in flight.
    /// So: the scan ends at the first unwritten (zero) record start instead
    /// of looking further, and a damaged record is read again from the file
    /// (up to [`LIVE_RETRIES`] times, after growing pauses, as far as the
    /// file then reaches) before it is reported, so a record caught half
    /// written, or running past the length the file had when it was opened,
    /// is not taken for damage.
    pub fn live(source: &'a dyn ReadAt) -> Scanner<'a> {
        Scanner { live: true, ..Scanner::new(source) }
    }

    /// The file's header.
    pub fn header(&mut self) -> Result<WalHeader, DecodeError> {
        match self.window.get(0, WAL_HEADER_BYTES) {
            Ok(bytes) => WalHeader::decode(bytes),
            Err(error) => Err(DecodeError::new("WAL header", "header", 0, format!("cannot be read: {error}"))),
        }
    }

    pub fn file_bytes(&self) -> u64 {
        self.window.length()
    }

    /// Where the records end, as far as the scan has gone (final once it returned `None`).
    pub fn logical_end(&self) -> u64 {
        self.logical_end
    }

    /// Sequence number of the last good record so far.
    pub fn last_seq(&self) -> SeqNo {
        self.last_seq
    }

    /// Bytes of the file the scan just went over (a record's page entries),
    /// without another read when they are still in the window.
    pub fn bytes(&mut self, offset: usize, len: usize) -> std::io::Result<&[u8]> {
        let bytes = self.window.get(offset as u64, len)?;
        if bytes.len() != len {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "range runs past the end of the file"));
        }
        Ok(bytes)
    }

    fn finish(&mut self, entry: ScanEntry) -> Option<ScanEntry> {
        self.done = true;
        self.logical_end = match &entry {
            ScanEntry::Record(record) => (record.offset + record.length) as u64,
            ScanEntry::Torn { offset, .. } | ScanEntry::Unreadable { offset, .. } => *offset as u64,
            ScanEntry::Corrupt { offset, skipped_bytes, .. } => (offset + skipped_bytes) as u64,
        };
        Some(entry)
    }

    /// True when the file holds only zeros from `at` to its end.
    fn zeros_to_end(&mut self, at: u64) -> std::io::Result<bool> {
        // A record starts with its non-zero length: decided without a new read.
        let head = self.window.get(at, 8)?;
        if !aerodb_format::all_zero(head) {
            return Ok(false);
        }
        let mut position = at;
        while position < self.window.length() {
            let chunk = self.window.get(position, SCAN_CHUNK_BYTES)?;
            if !aerodb_format::all_zero(chunk) {
                return Ok(false);
            }
            position += chunk.len() as u64;
        }
        Ok(true)
    }

    /// Bytes from `at` to one past the file's last non-zero byte.
    fn nonzero_bytes_from(&mut self, at: u64) -> std::io::Result<usize> {
        let mut end = self.window.length();
        while end > at {
            let start = end.saturating_sub(SCAN_CHUNK_BYTES as u64).max(at);
            let chunk = self.window.get(start, (end - start) as usize)?;
            let last = aerodb_format::nonzero_end(chunk);
            if last > 0 {
                return Ok((start + last as u64 - at) as usize);
            }
            end = start;
        }
        Ok(0)
    }

    /// Whether a valid record starts at `at`.
    fn valid_at(&mut self, at: u64) -> std::io::Result<bool> {
        let head = self.window.get(at, 6)?;
        if head.len() < 6 {
            return Ok(false);
        }
        let length = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if !(RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&length) || !aerodb_format::wal::plausible_record_start(head) {
            return Ok(false);
        }
        let bytes = self.window.get(at, length)?;
        Ok(bytes.len() == length && decode_record(bytes).is_ok())
    }

    /// The first offset after `damaged` where a valid record starts. The
    /// record at `damaged` tells its own length; that place is tried first,
    /// then every byte after the damaged record's start (a cheap look at the
    /// record type and op bytes skips most offsets before the CRC is computed).
    fn next_valid_record(&mut self, damaged: u64) -> std::io::Result<Option<u64>> {
        let head = self.window.get(damaged, 4)?;
        if head.len() == 4 {
            let claimed = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if (RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&claimed) && self.valid_at(damaged + claimed as u64)? {
                return Ok(Some(damaged + claimed as u64));
            }
        }
        let Some(last_start) = self.window.length().checked_sub(RECORD_MIN_BYTES as u64) else {
            return Ok(None);
        };
        for at in damaged + 1..=last_start {
            if self.valid_at(at)? {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// Decodes the record at `position` into owned parts.
    #[allow(clippy::type_complexity)]
    fn decode_at(&mut self, position: u64, remaining: u64) -> std::io::Result<Result<DecodedRecord, RecordError>> {
        let head = self.window.get(position, 4)?;
        let claimed = if head.len() == 4 { u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize } else { 0 };
        // Enough bytes for decode_record to judge: the whole record when its
        // length is possible, else just the length field.
        let span = if (RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&claimed) { claimed } else { 4 };
        let span = (span as u64).min(remaining) as usize;
        let bytes = self.window.get(position, span)?;
        let base = position as usize;
        Ok(decode_record(bytes).map(|record| {
            let start = bytes.as_ptr() as usize;
            let offset_of = |inner: &[u8]| base + (inner.as_ptr() as usize - start);
            let pages: Vec<ImageRef> = record
                .pages
                .iter()
                .map(|change| match change {
                    PageChange::Image(image) => ImageRef {
                        page_no: image.page_no,
                        delta: false,
                        lower: image.lower,
                        upper: image.upper,
                        image_offset: offset_of(image.image),
                        image_bytes: image.image.len(),
                    },
                    PageChange::Delta(delta) => ImageRef {
                        page_no: delta.page_no,
                        delta: true,
                        lower: 0,
                        upper: 0,
                        image_offset: offset_of(delta.encoded),
                        image_bytes: delta.encoded.len(),
                    },
                })
                .collect();
            (record.length, record.seq, record.op, record.schema_id.to_string(), record.schema_version.to_string(), record.id, pages)
        }))
    }

    /// A damaged record at the scan position: corruption when a valid record
    /// follows (the scan goes on from there), else `on_end`.
    fn damaged(&mut self, error: DecodeError, on_end: impl FnOnce(&mut Self) -> std::io::Result<ScanEntry>) -> Option<ScanEntry> {
        let position = self.position;
        match self.next_valid_record(position) {
            Ok(Some(next)) => {
                // The damaged bytes hid at least one sequence number.
                self.expected_seq = None;
                self.position = next;
                self.logical_end = next;
                Some(ScanEntry::Corrupt { offset: position as usize, skipped_bytes: (next - position) as usize, error })
            }
            Ok(None) => match on_end(self) {
                Ok(entry) => self.finish(entry),
                Err(io) => self.unreadable(position, io),
            },
            Err(io) => self.unreadable(position, io),
        }
    }

    fn unreadable(&mut self, offset: u64, error: std::io::Error) -> Option<ScanEntry> {
        self.finish(ScanEntry::Unreadable { offset: offset as usize, error: error.to_string() })
    }
}

impl Iterator for Scanner<'_> {
    type Item = ScanEntry;

    /// Each call moves the position forward by at least one byte, or ends the scan.
    fn next(&mut self) -> Option<ScanEntry> {
        if self.done || self.position >= self.window.length() {
            self.done = true;
            return None;
        }
        let position = self.position;
        if self.live {
            match self.window.get(position, 4) {
                Ok(head) if aerodb_format::all_zero(head) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(error) => return self.unreadable(position, error),
            }
        }
        match self.zeros_to_end(position) {
            // Zeros to the end of the file: the logical end of a
            // preallocated log, not a torn tail (FORMAT.md section 5).
            Ok(true) => {
                self.done = true;
                return None;
            }
            Ok(false) => {}
            Err(error) => return self.unreadable(position, error),
        }
        let base = position as usize;
        let mut attempt = 0;
        let mut remaining = self.window.length() - position;
        let decoded = loop {
            let decoded = match self.decode_at(position, remaining) {
                Ok(decoded) => decoded,
                Err(error) => return self.unreadable(position, error),
            };
            if decoded.is_ok() || !self.live || attempt == LIVE_RETRIES {
                break decoded;
            }
            std::thread::sleep(std::time::Duration::from_millis(LIVE_RETRY_PAUSE_MS << (2 * attempt)));
            attempt += 1;
            // Read again, as far as the file now reaches (it may have grown).
            self.window.invalidate();
            remaining = self.window.length() - position;
        };
        match decoded {
            Ok((length, seq, op, schema_id, schema_version, id, pages)) => {
                let sequence_error = match self.expected_seq {
                    Some(expected) if seq.0 != expected => Some(if seq.0 < expected {
                        format!("sequence number {seq} repeats or goes back (expected {expected})")
                    } else {
                        format!("sequence number {seq} leaves a gap (expected {expected})")
                    }),
                    _ => None,
                };
                self.expected_seq = seq.0.checked_add(1);
                self.last_seq = seq;
                self.position += length as u64;
                self.logical_end = self.position;
                Some(ScanEntry::Record(ScannedRecord {
                    offset: base,
                    length,
                    seq,
                    op,
                    schema_id,
                    schema_version,
                    id,
                    pages,
                    sequence_error,
                }))
            }
            Err(RecordError::Incomplete { needed, available }) => {
                let reason = format!("record needs {needed} bytes, only {available} remain");
                // A damaged length field may claim more than the file holds.
                let error = DecodeError::new("WAL record", "length", 0, reason.clone());
                self.damaged(error, move |scanner| {
                    let torn = scanner.nonzero_bytes_from(position)?;
                    Ok(ScanEntry::Torn { offset: base, bytes: torn, reason })
                })
            }
            Err(RecordError::Unverified(error)) => {
                let reason = format!("{error} (nothing valid follows)");
                self.damaged(error, move |scanner| {
                    // The torn bytes end at the last non-zero byte; the zeros after it are preallocated space.
                    let torn = scanner.nonzero_bytes_from(position)?;
                    Ok(ScanEntry::Torn { offset: base, bytes: torn, reason })
                })
            }
            Err(RecordError::Corrupt(error)) => {
                let copy = error.clone();
                // The CRC matched: these bytes were written as they are.
                self.damaged(error, move |_| Ok(ScanEntry::Corrupt { offset: base, skipped_bytes: remaining as usize, error: copy }))
            }
        }
    }
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
