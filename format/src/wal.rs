//! The write-ahead log: file header and record codec.
//!
//! `wal/wal.log` is a 40-byte header followed by records, back to back.
//! A record logs one acknowledged write: a small logical header (op,
//! schema, `_id`) for inspection, then the image of every page the write
//! changed with the page's hole elided. Replaying a record writes each
//! image over its page; images are whole pages, so the last image of a page
//! in the log is that page's content.
//!
//! Record layout (little-endian):
//! `u32 length` (whole record, this field and the trailing CRC included),
//! `u8 record_type` (1), `u8 op` (1 insert, 2 update, 3 delete), `u16
//! page_count`, `u64 seq`, `u8`-length `schema_id`, `u8`-length
//! `schema_version`, `_id` (document value encoding: int or string), then
//! per page `u64 page_no`, `u16 lower`, `u16 upper`, `lower + 4096 - upper`
//! image bytes; last, `u32 crc32c` of every byte before it.

use serde_json::Value;

use crate::document::{decode_value, encode_value};
use crate::page::{elide_hole, PageBytes, PageHeader};
use crate::{DecodeError, PageNo, SeqNo, FORMAT_VERSION, IDENTIFIER_LEN_MAX, PAGE_SIZE_BYTES};

pub const WAL_MAGIC: [u8; 8] = *b"AERO-WAL";
pub const WAL_HEADER_BYTES: usize = 40;
/// Fixed part of a record before the schema id.
pub const RECORD_FIXED_BYTES: usize = 16;
/// Smallest possible record: fixed part, two one-byte identifiers with their
/// lengths, a one-byte-int `_id`, no pages, CRC.
pub const RECORD_MIN_BYTES: usize = RECORD_FIXED_BYTES + 4 + 2 + 4;
/// Largest record accepted (a 1 MiB document rewritten with its old overflow
/// chain freed fits with room to spare).
pub const RECORD_MAX_BYTES: usize = 4 * 1024 * 1024;
pub const RECORD_TYPE_PAGE_WRITE: u8 = 1;
/// A record whose page entries each say whether they hold a whole image or
/// a physical delta (section 10.3 of FORMAT.md). Written by this version.
pub const RECORD_TYPE_PAGE_CHANGES: u8 = 2;
/// Entry kind (records of type 2): the page's whole image, hole elided.
pub const ENTRY_IMAGE: u8 = 1;
/// Entry kind (records of type 2): byte ranges of the page that changed
/// since the page's previous entry in the log.
pub const ENTRY_DELTA: u8 = 2;
/// Bytes before a delta's ranges: page number, kind, range count.
pub const DELTA_ENTRY_HEADER_BYTES: usize = 11;
/// Whether `bytes` could start a record: a known record type and op at
/// their offsets (a cheap filter before the CRC when scanning for one).
pub fn plausible_record_start(bytes: &[u8]) -> bool {
    bytes.len() >= 6 && (bytes[4] == RECORD_TYPE_PAGE_WRITE || bytes[4] == RECORD_TYPE_PAGE_CHANGES) && WalOp::from_byte(bytes[5]).is_some()
}

/// Bytes before each range's bytes: offset, length.
pub const DELTA_RANGE_HEADER_BYTES: usize = 4;
/// The smallest growth of the WAL file, and the unit its length is rounded to.
pub const WAL_GROW_MIN_BYTES: u64 = 1024 * 1024;
/// The WAL file is preallocated in steps (doubling from
/// `WAL_GROW_MIN_BYTES`) of at most this size: zeros are written
/// and synced once, and records are written into that space, so a commit's
/// fdatasync writes data only. The log's logical end is found by content:
/// the first offset where no record decodes and every byte after it is
/// zero (FORMAT.md, section 5).
pub const WAL_GROW_STEP_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes before each page image: page number, lower, upper.
pub const PAGE_ENTRY_HEADER_BYTES: usize = 12;

/// Byte offset of the database id in the WAL header.
pub const DATABASE_ID_OFFSET: usize = 16;

/// The WAL file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalHeader {
    pub format_version: u32,
    pub page_size: u32,
    pub database_id: [u8; 16],
}

impl WalHeader {
    pub fn new(database_id: [u8; 16]) -> WalHeader {
        WalHeader { format_version: FORMAT_VERSION, page_size: PAGE_SIZE_BYTES as u32, database_id }
    }

    pub fn encode(&self) -> [u8; WAL_HEADER_BYTES] {
        let mut out = [0u8; WAL_HEADER_BYTES];
        out[0..8].copy_from_slice(&WAL_MAGIC);
        out[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        out[12..16].copy_from_slice(&self.page_size.to_le_bytes());
        out[DATABASE_ID_OFFSET..DATABASE_ID_OFFSET + 16].copy_from_slice(&self.database_id);
        let crc = crc32c::crc32c(&out[..36]);
        out[36..40].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<WalHeader, DecodeError> {
        let error = |field: &'static str, offset: usize, reason: String| DecodeError::new("WAL header", field, offset, reason);
        if bytes.len() < WAL_HEADER_BYTES {
            return Err(error("length", 0, format!("file holds {} bytes, the header needs {WAL_HEADER_BYTES}", bytes.len())));
        }
        if bytes[0..8] != WAL_MAGIC {
            return Err(error("magic", 0, "not an AeroDB WAL (bad magic)".into()));
        }
        let crc = u32_at(bytes, 36);
        let computed = crc32c::crc32c(&bytes[..36]);
        if crc != computed {
            return Err(error("crc", 36, format!("stored {crc:#010x}, computed {computed:#010x}")));
        }
        let format_version = u32_at(bytes, 8);
        if format_version != FORMAT_VERSION {
            return Err(error("format_version", 8, format!("unsupported format version {format_version}")));
        }
        let page_size = u32_at(bytes, 12);
        if page_size as usize != PAGE_SIZE_BYTES {
            return Err(error("page_size", 12, format!("page size {page_size}, expected {PAGE_SIZE_BYTES}")));
        }
        if u32_at(bytes, 32) != 0 {
            return Err(error("reserved", 32, "reserved bytes must be zero".into()));
        }
        let mut database_id = [0u8; 16];
        database_id.copy_from_slice(&bytes[DATABASE_ID_OFFSET..DATABASE_ID_OFFSET + 16]);
        Ok(WalHeader { format_version, page_size, database_id })
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// The logical operation a record performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalOp {
    Insert = 1,
    Update = 2,
    Delete = 3,
}

impl WalOp {
    pub fn from_byte(byte: u8) -> Option<WalOp> {
        match byte {
            1 => Some(WalOp::Insert),
            2 => Some(WalOp::Update),
            3 => Some(WalOp::Delete),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WalOp::Insert => "insert",
            WalOp::Update => "update",
            WalOp::Delete => "delete",
        }
    }
}

/// One page image inside a record, borrowed from the record bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageImage<'a> {
    pub page_no: PageNo,
    pub lower: u16,
    pub upper: u16,
    /// Bytes `[0, lower)` then `[upper, 4096)` of the page.
    pub image: &'a [u8],
}

impl PageImage<'_> {
    /// The full page this image stands for.
    pub fn to_page(&self) -> Result<Box<PageBytes>, DecodeError> {
        crate::page::restore_hole(self.lower, self.upper, self.image)
    }
}

/// The changed byte ranges of one page, borrowed from the record bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageDelta<'a> {
    pub page_no: PageNo,
    /// `(offset, bytes)` in ascending, non-overlapping order.
    pub ranges: Vec<(u16, &'a [u8])>,
    /// The entry's encoded ranges (what follows its header), for callers
    /// that keep only its position and apply it later.
    pub encoded: &'a [u8],
}

impl PageDelta<'_> {
    /// Writes the ranges over `page` (the page as the log's earlier
    /// entries left it).
    pub fn apply(&self, page: &mut PageBytes) {
        for (offset, bytes) in &self.ranges {
            let start = usize::from(*offset);
            page[start..start + bytes.len()].copy_from_slice(bytes);
        }
    }

    /// Number of changed bytes.
    pub fn changed_bytes(&self) -> usize {
        self.ranges.iter().map(|(_, bytes)| bytes.len()).sum()
    }
}

/// One page entry of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageChange<'a> {
    /// The whole page, hole elided.
    Image(PageImage<'a>),
    /// The bytes that changed since the page's previous entry.
    Delta(PageDelta<'a>),
}

impl<'a> PageChange<'a> {
    /// The whole image, when the entry is one.
    pub fn image(&self) -> Option<&PageImage<'a>> {
        match self {
            PageChange::Image(image) => Some(image),
            PageChange::Delta(_) => None,
        }
    }

    pub fn page_no(&self) -> PageNo {
        match self {
            PageChange::Image(image) => image.page_no,
            PageChange::Delta(delta) => delta.page_no,
        }
    }
}

/// Parses the ranges of a delta entry (`encoded`: range count, then the
/// ranges) and applies them to `page`. For callers that kept the entry's
/// bytes; the same rules as the decoder.
pub fn apply_encoded_delta(page: &mut PageBytes, encoded: &[u8]) -> Result<(), DecodeError> {
    let (ranges, used) = decode_ranges(encoded, 0)?;
    if used != encoded.len() {
        return Err(DecodeError::new("WAL record", "page delta", used, "bytes left over after the ranges"));
    }
    PageDelta { page_no: PageNo(0), ranges, encoded }.apply(page);
    Ok(())
}

/// Decodes `u16 count` then the ranges at `at`; returns them and the end.
fn decode_ranges(bytes: &[u8], at: usize) -> Result<(Vec<(u16, &[u8])>, usize), DecodeError> {
    let error = |offset: usize, reason: String| DecodeError::new("WAL record", "page delta", offset, reason);
    let count_bytes = bytes.get(at..at + 2).ok_or_else(|| error(at, "runs past the end".into()))?;
    let count = usize::from(u16::from_le_bytes([count_bytes[0], count_bytes[1]]));
    if count == 0 {
        return Err(error(at, "a delta changes at least the page's lsn and checksum".into()));
    }
    let mut pos = at + 2;
    let mut ranges = Vec::with_capacity(count);
    let mut previous_end = 0usize;
    for _ in 0..count {
        let head = bytes.get(pos..pos + DELTA_RANGE_HEADER_BYTES).ok_or_else(|| error(pos, "runs past the end".into()))?;
        let offset = u16::from_le_bytes([head[0], head[1]]);
        let length = usize::from(u16::from_le_bytes([head[2], head[3]]));
        let start = usize::from(offset);
        if length == 0 || start + length > PAGE_SIZE_BYTES || (!ranges.is_empty() && start <= previous_end) {
            return Err(error(
                pos,
                format!("bad range offset={offset} length={length}: ranges are non-empty, inside the page, ascending and apart"),
            ));
        }
        let data = bytes
            .get(pos + DELTA_RANGE_HEADER_BYTES..pos + DELTA_RANGE_HEADER_BYTES + length)
            .ok_or_else(|| error(pos, "runs past the end".into()))?;
        ranges.push((offset, data));
        previous_end = start + length;
        pos += DELTA_RANGE_HEADER_BYTES + length;
    }
    Ok((ranges, pos))
}

/// The ranges where `new` differs from `old`, two runs joined when the
/// bytes between them are fewer than a range header costs.
pub fn changed_ranges(old: &PageBytes, new: &PageBytes) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < PAGE_SIZE_BYTES {
        // Equal 8-byte words are skipped a word at a time.
        if at % 8 == 0 && at + 8 <= PAGE_SIZE_BYTES && old[at..at + 8] == new[at..at + 8] {
            at += 8;
            continue;
        }
        if old[at] == new[at] {
            at += 1;
            continue;
        }
        let start = at;
        while at < PAGE_SIZE_BYTES && old[at] != new[at] {
            at += 1;
        }
        match ranges.last_mut() {
            Some(last) if start - last.1 < DELTA_RANGE_HEADER_BYTES => last.1 = at,
            _ => ranges.push((start, at)),
        }
    }
    ranges
}

/// A page to log: its sealed new content and, when the log already holds
/// the page (an earlier record wrote it), its content before this write.
#[derive(Clone, Copy, Debug)]
pub struct PageWrite<'a> {
    pub page: &'a PageBytes,
    pub before: Option<&'a PageBytes>,
}

/// A decoded record, borrowing its page entries.
#[derive(Clone, Debug, PartialEq)]
pub struct WalRecord<'a> {
    pub seq: SeqNo,
    pub op: WalOp,
    pub schema_id: &'a str,
    pub schema_version: &'a str,
    pub id: Value,
    pub pages: Vec<PageChange<'a>>,
    /// Encoded length of the whole record.
    pub length: usize,
}

/// The logical header of a record to encode.
#[derive(Clone, Debug)]
pub struct RecordHeader<'a> {
    pub seq: SeqNo,
    pub op: WalOp,
    pub schema_id: &'a str,
    pub schema_version: &'a str,
    pub id: &'a Value,
}

/// Encodes a record of type 1 holding the hole-elided images of `pages`
/// (each sealed, its own `page_no` in its header). Kept for tests and tools
/// that build logs of the first record type.
pub fn encode_record(header: &RecordHeader<'_>, pages: &[&PageBytes]) -> Vec<u8> {
    let mut out = encode_record_start(header, RECORD_TYPE_PAGE_WRITE, pages.len());
    for page in pages {
        push_image(&mut out, page, false);
    }
    finish_record(out)
}

/// Encodes a record of type 2: for each page, a delta against its content
/// before the write when it has one and the delta is smaller, else its
/// whole image (hole elided). The choice depends only on the two pages, so
/// a record is the same bytes whoever writes it.
pub fn encode_changes(header: &RecordHeader<'_>, pages: &[PageWrite<'_>]) -> Vec<u8> {
    let mut out = encode_record_start(header, RECORD_TYPE_PAGE_CHANGES, pages.len());
    for write in pages {
        let image_bytes = 5 + usize::from(PageHeader::read(write.page).lower.get()) + PAGE_SIZE_BYTES
            - usize::from(PageHeader::read(write.page).upper.get());
        let delta = write.before.map(|before| changed_ranges(before, write.page));
        match delta {
            Some(ranges)
                if ranges.len() <= usize::from(u16::MAX)
                    && 2 + ranges.iter().map(|(start, end)| DELTA_RANGE_HEADER_BYTES + end - start).sum::<usize>() < image_bytes =>
            {
                out.extend_from_slice(&PageHeader::read(write.page).page_no.get().to_le_bytes());
                out.push(ENTRY_DELTA);
                out.extend_from_slice(&(ranges.len() as u16).to_le_bytes());
                for (start, end) in ranges {
                    out.extend_from_slice(&(start as u16).to_le_bytes());
                    out.extend_from_slice(&((end - start) as u16).to_le_bytes());
                    out.extend_from_slice(&write.page[start..end]);
                }
            }
            _ => push_image(&mut out, write.page, true),
        }
    }
    finish_record(out)
}

fn encode_record_start(header: &RecordHeader<'_>, record_type: u8, page_count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + page_count * 256);
    out.extend_from_slice(&[0u8; 4]);
    out.push(record_type);
    out.push(header.op as u8);
    out.extend_from_slice(&(page_count.min(usize::from(u16::MAX)) as u16).to_le_bytes());
    out.extend_from_slice(&header.seq.0.to_le_bytes());
    for name in [header.schema_id, header.schema_version] {
        out.push(name.len().min(IDENTIFIER_LEN_MAX) as u8);
        out.extend_from_slice(&name.as_bytes()[..name.len().min(IDENTIFIER_LEN_MAX)]);
    }
    // `_id` is an int or a string: encoding cannot fail for either.
    let encoded = encode_value(&mut out, header.id);
    debug_assert!(encoded.is_ok());
    out
}

fn push_image(out: &mut Vec<u8>, page: &PageBytes, with_kind: bool) {
    let page_no = PageHeader::read(page).page_no;
    let (lower, upper, image) = elide_hole(page);
    out.extend_from_slice(&page_no.get().to_le_bytes());
    if with_kind {
        out.push(ENTRY_IMAGE);
    }
    out.extend_from_slice(&lower.to_le_bytes());
    out.extend_from_slice(&upper.to_le_bytes());
    out.extend_from_slice(&image);
}

fn finish_record(mut out: Vec<u8>) -> Vec<u8> {
    // Over-long records are refused by the writer before they are appended
    // (RECORD_MAX_BYTES); the length saturates rather than wraps.
    let length = u32::try_from(out.len() + 4).unwrap_or(u32::MAX);
    out[0..4].copy_from_slice(&length.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Why a record at some offset could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end before the record does (a torn tail if nothing follows).
    Incomplete { needed: usize, available: usize },
    /// The length is out of range or the CRC does not match: the bytes were
    /// never written whole as a record, so they may be a torn write (if
    /// nothing valid follows) or damage.
    Unverified(DecodeError),
    /// The CRC matches but the content breaks a rule: the record was written
    /// whole, so it is damaged (or forged), never a torn write.
    Corrupt(DecodeError),
}

impl RecordError {
    /// The decode error, for either kind of damage (`None` when incomplete).
    pub fn decode_error(&self) -> Option<&DecodeError> {
        match self {
            RecordError::Incomplete { .. } => None,
            RecordError::Unverified(error) | RecordError::Corrupt(error) => Some(error),
        }
    }
}

/// Decodes the record at the start of `bytes` (the rest of the file).
pub fn decode_record(bytes: &[u8]) -> Result<WalRecord<'_>, RecordError> {
    let unverified =
        |field: &'static str, offset: usize, reason: String| RecordError::Unverified(DecodeError::new("WAL record", field, offset, reason));
    if bytes.len() < 4 {
        return Err(RecordError::Incomplete { needed: 4, available: bytes.len() });
    }
    let length = u32_at(bytes, 0) as usize;
    if !(RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&length) {
        return Err(unverified("length", 0, format!("record length {length} outside [{RECORD_MIN_BYTES}, {RECORD_MAX_BYTES}]")));
    }
    if bytes.len() < length {
        return Err(RecordError::Incomplete { needed: length, available: bytes.len() });
    }
    let body = &bytes[..length - 4];
    let crc = u32_at(bytes, length - 4);
    let computed = crc32c::crc32c(body);
    if crc != computed {
        return Err(unverified("crc", length - 4, format!("stored {crc:#010x}, computed {computed:#010x}")));
    }
    decode_checked_body(body, length).map_err(RecordError::Corrupt)
}

fn decode_checked_body(body: &[u8], length: usize) -> Result<WalRecord<'_>, DecodeError> {
    let error = |field: &'static str, offset: usize, reason: String| DecodeError::new("WAL record", field, offset, reason);
    let record_type = body[4];
    if record_type != RECORD_TYPE_PAGE_WRITE && record_type != RECORD_TYPE_PAGE_CHANGES {
        return Err(error("record_type", 4, format!("unknown record type {record_type}")));
    }
    let op = WalOp::from_byte(body[5]).ok_or_else(|| error("op", 5, format!("unknown op {}", body[5])))?;
    let page_count = usize::from(u16_at(body, 6));
    let seq = SeqNo(u64_at(body, 8));
    if seq.0 == 0 {
        return Err(error("seq", 8, "sequence number 0 is never used".into()));
    }
    let mut pos = RECORD_FIXED_BYTES;
    let mut names = ["", ""];
    for (slot, field) in ["schema_id", "schema_version"].into_iter().enumerate() {
        let length = usize::from(*body.get(pos).ok_or_else(|| error(field, pos, "runs past the end".into()))?);
        let raw = body.get(pos + 1..pos + 1 + length).ok_or_else(|| error(field, pos, "runs past the end".into()))?;
        if raw.is_empty() || length > IDENTIFIER_LEN_MAX || !raw.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(error(field, pos, "not an identifier of 1-64 characters [A-Za-z0-9_]".into()));
        }
        // Checked ASCII above, so this never fails.
        names[slot] = std::str::from_utf8(raw).map_err(|_| error(field, pos, "not UTF-8".into()))?;
        pos += 1 + length;
    }
    let id_offset = pos;
    let id = decode_value(body, &mut pos)?;
    if !(id.is_string() || id.is_i64()) {
        return Err(error("_id", id_offset, "_id must be an int or a string".into()));
    }
    let mut pages = Vec::with_capacity(page_count);
    for _ in 0..page_count {
        let entry = pos;
        if body.len() < entry + 8 {
            return Err(error("page entry", entry, "runs past the end".into()));
        }
        let page_no = PageNo(u64_at(body, entry));
        let mut at = entry + 8;
        if record_type == RECORD_TYPE_PAGE_CHANGES {
            let kind = *body.get(at).ok_or_else(|| error("page entry", at, "runs past the end".into()))?;
            at += 1;
            match kind {
                ENTRY_IMAGE => {}
                ENTRY_DELTA => {
                    let (ranges, end) = decode_ranges(body, at)?;
                    pages.push(PageChange::Delta(PageDelta { page_no, ranges, encoded: &body[at..end] }));
                    pos = end;
                    continue;
                }
                other => return Err(error("page entry", at - 1, format!("unknown entry kind {other}"))),
            }
        }
        if body.len() < at + 4 {
            return Err(error("page entry", entry, "runs past the end".into()));
        }
        let lower = u16_at(body, at);
        let upper = u16_at(body, at + 2);
        let (lower_bytes, upper_bytes) = (usize::from(lower), usize::from(upper));
        if !crate::page::hole_bounds_valid(lower_bytes, upper_bytes) {
            return Err(error("page entry", at, format!("bad hole bounds lower={lower} upper={upper}")));
        }
        let image_length = lower_bytes + PAGE_SIZE_BYTES - upper_bytes;
        let start = at + 4;
        let image = body.get(start..start + image_length).ok_or_else(|| error("page image", start, "runs past the end".into()))?;
        let image_header = PageHeader::read_image_prefix(image);
        if image_header.page_no.get() != page_no.0
            || image_header.lsn.get() != seq.0
            || image_header.lower.get() != lower
            || image_header.upper.get() != upper
        {
            return Err(error("page image", start, "image header disagrees with its entry (page number, lsn or hole bounds)".into()));
        }
        pages.push(PageChange::Image(PageImage { page_no, lower, upper, image }));
        pos = start + image_length;
    }
    if pos != body.len() {
        return Err(error("page images", pos, format!("{} bytes left over after the last page image", body.len() - pos)));
    }
    let [schema_id, schema_version] = names;
    Ok(WalRecord { seq, op, schema_id, schema_version, id, pages, length })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::{new_page, seal, PageKind};
    use crate::slotted;
    use serde_json::json;

    fn sample() -> Vec<u8> {
        let mut page = new_page(PageKind::Document, PageNo(4));
        slotted::insert(&mut page, b"\x01some document bytes").unwrap();
        seal(&mut page, SeqNo(9));
        let id = json!("user-1");
        encode_record(&RecordHeader { seq: SeqNo(9), op: WalOp::Insert, schema_id: "user", schema_version: "v1", id: &id }, &[&page])
    }

    #[test]
    fn record_round_trips_with_hole_elided() {
        let bytes = sample();
        let record = decode_record(&bytes).unwrap();
        assert_eq!(record.seq, SeqNo(9));
        assert_eq!(record.op, WalOp::Insert);
        assert_eq!(record.id, json!("user-1"));
        assert_eq!(record.pages.len(), 1);
        assert!(bytes.len() < 200, "hole not elided: {} bytes", bytes.len());
        let PageChange::Image(image) = &record.pages[0] else { panic!("an image") };
        crate::page::verify(&image.to_page().unwrap(), PageNo(4)).unwrap();
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let bytes = sample();
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_record(&damaged).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn truncation_is_incomplete() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            match decode_record(&bytes[..cut]) {
                Err(RecordError::Incomplete { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    /// A page before and after one more document, both sealed.
    fn before_and_after() -> (Box<PageBytes>, Box<PageBytes>) {
        let mut before = new_page(PageKind::Document, PageNo(4));
        slotted::insert(&mut before, b"\x01some document bytes").unwrap();
        seal(&mut before, SeqNo(9));
        let mut after = before.clone();
        slotted::insert(&mut after, b"\x01another document, a little longer").unwrap();
        seal(&mut after, SeqNo(10));
        (before, after)
    }

    fn changes_record(before: Option<&PageBytes>, after: &PageBytes) -> Vec<u8> {
        let id = json!(7);
        let header = RecordHeader { seq: SeqNo(10), op: WalOp::Insert, schema_id: "user", schema_version: "v1", id: &id };
        encode_changes(&header, &[PageWrite { page: after, before }])
    }

    #[test]
    fn a_delta_rebuilds_the_page_from_its_previous_content() {
        let (before, after) = before_and_after();
        let bytes = changes_record(Some(&before), &after);
        assert!(bytes.len() < 120, "a small change logs a small delta: {} bytes", bytes.len());
        let record = decode_record(&bytes).unwrap();
        let PageChange::Delta(delta) = &record.pages[0] else { panic!("a delta") };
        assert_eq!(delta.page_no, PageNo(4));
        let mut page = before.clone();
        delta.apply(&mut page);
        assert!(page[..] == after[..]);
        let mut again = before.clone();
        apply_encoded_delta(&mut again, delta.encoded).unwrap();
        assert!(again[..] == after[..]);
        // Without a previous content (a new page), the whole image.
        let record_bytes = changes_record(None, &after);
        let record = decode_record(&record_bytes).unwrap();
        assert!(matches!(&record.pages[0], PageChange::Image(image) if *image.to_page().unwrap() == *after));
    }

    #[test]
    fn a_delta_record_detects_every_bit_flip_and_every_cut() {
        let (before, after) = before_and_after();
        let bytes = changes_record(Some(&before), &after);
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_record(&damaged).is_err(), "flip of bit {bit} went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(matches!(decode_record(&bytes[..cut]), Err(RecordError::Incomplete { .. })), "cut at {cut}");
        }
    }

    #[test]
    fn delta_ranges_must_be_ascending_apart_and_inside_the_page() {
        let mut page = [0u8; PAGE_SIZE_BYTES];
        let ranges = |list: &[(u16, u16)]| {
            let mut out = (list.len() as u16).to_le_bytes().to_vec();
            for (offset, length) in list {
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&length.to_le_bytes());
                out.extend(std::iter::repeat_n(0xAA, usize::from(*length)));
            }
            out
        };
        assert!(apply_encoded_delta(&mut page, &ranges(&[(0, 4), (24, 8)])).is_ok());
        assert_eq!(&page[..4], &[0xAA; 4]);
        for bad in [vec![], vec![(0, 0)], vec![(4090, 7)], vec![(24, 8), (0, 4)], vec![(0, 4), (4, 4)], vec![(0, 4), (2, 4)]] {
            assert!(apply_encoded_delta(&mut page, &ranges(&bad)).is_err(), "{bad:?} accepted");
        }
        let mut extra = ranges(&[(0, 4)]);
        extra.push(1);
        assert!(apply_encoded_delta(&mut page, &extra).is_err(), "bytes after the ranges");
    }

    #[test]
    fn changed_ranges_join_runs_closer_than_a_range_header() {
        let old = [0u8; PAGE_SIZE_BYTES];
        let mut new = old;
        new[10] = 1;
        new[12] = 1; // 1 byte apart: joined
        new[100] = 1;
        new[105] = 1; // 4 bytes apart: separate
        assert_eq!(changed_ranges(&old, &new), vec![(10, 13), (100, 101), (105, 106)]);
        assert!(changed_ranges(&old, &old).is_empty());
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let header = WalHeader::new([7; 16]);
        let bytes = header.encode();
        assert_eq!(WalHeader::decode(&bytes).unwrap(), header);
        for bit in 0..WAL_HEADER_BYTES * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(WalHeader::decode(&damaged).is_err());
        }
        assert!(WalHeader::decode(&bytes[..39]).is_err());
    }
}
