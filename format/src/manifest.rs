//! MANIFEST: the 48-byte file that names a directory as an AeroDB database.
//!
//! Layout (little-endian): `magic` "AERO-MAN" (8), `format_version` u32,
//! `page_size` u32, `segment_pages` u32, reserved u32 (0), `database_id`
//! (16 bytes), reserved u32 (0), `crc32c` u32 of bytes 0..44.

use crate::{DecodeError, FORMAT_VERSION, PAGE_SIZE_BYTES, SEGMENT_PAGES};

pub const MANIFEST_MAGIC: [u8; 8] = *b"AERO-MAN";
pub const MANIFEST_BYTES: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub format_version: u32,
    pub page_size: u32,
    pub segment_pages: u32,
    pub database_id: [u8; 16],
}

impl Manifest {
    pub fn new(database_id: [u8; 16]) -> Manifest {
        Manifest { format_version: FORMAT_VERSION, page_size: PAGE_SIZE_BYTES as u32, segment_pages: SEGMENT_PAGES as u32, database_id }
    }

    pub fn encode(&self) -> [u8; MANIFEST_BYTES] {
        let mut out = [0u8; MANIFEST_BYTES];
        out[0..8].copy_from_slice(&MANIFEST_MAGIC);
        out[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        out[12..16].copy_from_slice(&self.page_size.to_le_bytes());
        out[16..20].copy_from_slice(&self.segment_pages.to_le_bytes());
        out[24..40].copy_from_slice(&self.database_id);
        let crc = crc32c::crc32c(&out[..44]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest, DecodeError> {
        let error = |field: &'static str, offset: usize, reason: String| DecodeError::new("MANIFEST", field, offset, reason);
        let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        if bytes.len() != MANIFEST_BYTES {
            return Err(error("length", 0, format!("MANIFEST is {} bytes, expected {MANIFEST_BYTES}", bytes.len())));
        }
        if bytes[0..8] != MANIFEST_MAGIC {
            return Err(error("magic", 0, "not an AeroDB MANIFEST (bad magic)".into()));
        }
        let computed = crc32c::crc32c(&bytes[..44]);
        if u32_at(44) != computed {
            return Err(error("crc", 44, format!("stored {:#010x}, computed {computed:#010x}", u32_at(44))));
        }
        let manifest = Manifest {
            format_version: u32_at(8),
            page_size: u32_at(12),
            segment_pages: u32_at(16),
            database_id: bytes[24..40].try_into().map_err(|_| error("database_id", 24, "short".into()))?,
        };
        if manifest.format_version != FORMAT_VERSION {
            return Err(error("format_version", 8, format!("unsupported format version {}", manifest.format_version)));
        }
        if manifest.page_size as usize != PAGE_SIZE_BYTES {
            return Err(error("page_size", 12, format!("page size {}, expected {PAGE_SIZE_BYTES}", manifest.page_size)));
        }
        if u64::from(manifest.segment_pages) != SEGMENT_PAGES {
            return Err(error("segment_pages", 16, format!("segment of {} pages, expected {SEGMENT_PAGES}", manifest.segment_pages)));
        }
        for reserved in [20, 40] {
            if u32_at(reserved) != 0 {
                return Err(error("reserved", reserved, "reserved bytes must be zero".into()));
            }
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_every_bit_flip() {
        let manifest = Manifest::new([0xAB; 16]);
        let bytes = manifest.encode();
        assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);
        for bit in 0..MANIFEST_BYTES * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(Manifest::decode(&damaged).is_err(), "bit {bit}");
        }
        assert!(Manifest::decode(&bytes[..47]).is_err());
    }
}
