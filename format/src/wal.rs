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
        out[16..32].copy_from_slice(&self.database_id);
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
        database_id.copy_from_slice(&bytes[16..32]);
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

/// A decoded record, borrowing its images.
#[derive(Clone, Debug, PartialEq)]
pub struct WalRecord<'a> {
    pub seq: SeqNo,
    pub op: WalOp,
    pub schema_id: String,
    pub schema_version: String,
    pub id: Value,
    pub pages: Vec<PageImage<'a>>,
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

/// Encodes a record holding the hole-elided images of `pages` (each sealed,
/// its own `page_no` in its header).
pub fn encode_record(header: &RecordHeader<'_>, pages: &[&PageBytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + pages.len() * PAGE_SIZE_BYTES / 2);
    out.extend_from_slice(&[0u8; 4]);
    out.push(RECORD_TYPE_PAGE_WRITE);
    out.push(header.op as u8);
    out.extend_from_slice(&(pages.len() as u16).to_le_bytes());
    out.extend_from_slice(&header.seq.0.to_le_bytes());
    for name in [header.schema_id, header.schema_version] {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    // `_id` is an int or a string: encoding cannot fail for either.
    let encoded = encode_value(&mut out, header.id);
    debug_assert!(encoded.is_ok());
    for page in pages {
        let page_no = PageHeader::read(page).page_no;
        let (lower, upper, image) = elide_hole(page);
        out.extend_from_slice(&page_no.get().to_le_bytes());
        out.extend_from_slice(&lower.to_le_bytes());
        out.extend_from_slice(&upper.to_le_bytes());
        out.extend_from_slice(&image);
    }
    let length = (out.len() + 4) as u32;
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
    /// The record is present but damaged.
    Corrupt(DecodeError),
}

/// Decodes the record at the start of `bytes` (the rest of the file).
pub fn decode_record(bytes: &[u8]) -> Result<WalRecord<'_>, RecordError> {
    let corrupt =
        |field: &'static str, offset: usize, reason: String| RecordError::Corrupt(DecodeError::new("WAL record", field, offset, reason));
    if bytes.len() < 4 {
        return Err(RecordError::Incomplete { needed: 4, available: bytes.len() });
    }
    let length = u32_at(bytes, 0) as usize;
    if !(RECORD_MIN_BYTES..=RECORD_MAX_BYTES).contains(&length) {
        return Err(corrupt("length", 0, format!("record length {length} outside [{RECORD_MIN_BYTES}, {RECORD_MAX_BYTES}]")));
    }
    if bytes.len() < length {
        return Err(RecordError::Incomplete { needed: length, available: bytes.len() });
    }
    let body = &bytes[..length - 4];
    let crc = u32_at(bytes, length - 4);
    let computed = crc32c::crc32c(body);
    if crc != computed {
        return Err(corrupt("crc", length - 4, format!("stored {crc:#010x}, computed {computed:#010x}")));
    }
    decode_checked_body(body, length).map_err(RecordError::Corrupt)
}

fn decode_checked_body(body: &[u8], length: usize) -> Result<WalRecord<'_>, DecodeError> {
    let error = |field: &'static str, offset: usize, reason: String| DecodeError::new("WAL record", field, offset, reason);
    if body[4] != RECORD_TYPE_PAGE_WRITE {
        return Err(error("record_type", 4, format!("unknown record type {}", body[4])));
    }
    let op = WalOp::from_byte(body[5]).ok_or_else(|| error("op", 5, format!("unknown op {}", body[5])))?;
    let page_count = usize::from(u16_at(body, 6));
    let seq = SeqNo(u64_at(body, 8));
    if seq.0 == 0 {
        return Err(error("seq", 8, "sequence number 0 is never used".into()));
    }
    let mut pos = RECORD_FIXED_BYTES;
    let mut names = Vec::with_capacity(2);
    for field in ["schema_id", "schema_version"] {
        let length = usize::from(*body.get(pos).ok_or_else(|| error(field, pos, "runs past the end".into()))?);
        let raw = body.get(pos + 1..pos + 1 + length).ok_or_else(|| error(field, pos, "runs past the end".into()))?;
        if raw.is_empty() || length > IDENTIFIER_LEN_MAX || !raw.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(error(field, pos, "not an identifier of 1-64 characters [A-Za-z0-9_]".into()));
        }
        names.push(String::from_utf8_lossy(raw).into_owned());
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
        if body.len() < entry + PAGE_ENTRY_HEADER_BYTES {
            return Err(error("page entry", entry, "runs past the end".into()));
        }
        let page_no = PageNo(u64_at(body, entry));
        let lower = u16_at(body, entry + 8);
        let upper = u16_at(body, entry + 10);
        let (lower_bytes, upper_bytes) = (usize::from(lower), usize::from(upper));
        if lower_bytes < crate::page::HEADER_BYTES || lower_bytes > upper_bytes || upper_bytes > PAGE_SIZE_BYTES {
            return Err(error("page entry", entry + 8, format!("bad hole bounds lower={lower} upper={upper}")));
        }
        let image_length = lower_bytes + PAGE_SIZE_BYTES - upper_bytes;
        let start = entry + PAGE_ENTRY_HEADER_BYTES;
        let image = body.get(start..start + image_length).ok_or_else(|| error("page image", start, "runs past the end".into()))?;
        let image_header = PageHeader::read_image_prefix(image);
        if image_header.page_no.get() != page_no.0
            || image_header.lsn.get() != seq.0
            || image_header.lower.get() != lower
            || image_header.upper.get() != upper
        {
            return Err(error("page image", start, "image header disagrees with its entry (page number, lsn or hole bounds)".into()));
        }
        pages.push(PageImage { page_no, lower, upper, image });
        pos = start + image_length;
    }
    if pos != body.len() {
        return Err(error("page images", pos, format!("{} bytes left over after the last page image", body.len() - pos)));
    }
    let [schema_id, schema_version]: [String; 2] =
        names.try_into().map_err(|_| error("schema", RECORD_FIXED_BYTES, "missing names".into()))?;
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
        let page = record.pages[0].to_page().unwrap();
        crate::page::verify(&page, PageNo(4)).unwrap();
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
