//! LEB128 unsigned varints and zigzag signed varints, bounded to 10 bytes.

use crate::DecodeError;

/// Longest varint encoding of a u64.
pub const VARINT_LEN_MAX: usize = 10;

pub fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads a varint at `*pos`, advancing it.
pub fn get_u64(bytes: &[u8], pos: &mut usize, structure: &'static str, field: &'static str) -> Result<u64, DecodeError> {
    let start = *pos;
    let mut value: u64 = 0;
    for index in 0..VARINT_LEN_MAX {
        let Some(&byte) = bytes.get(start + index) else {
            return Err(DecodeError::new(structure, field, start, "varint runs past the end"));
        };
        let part = u64::from(byte & 0x7f);
        if index == VARINT_LEN_MAX - 1 && byte > 1 {
            return Err(DecodeError::new(structure, field, start, "varint overflows 64 bits"));
        }
        value |= part << (7 * index);
        if byte & 0x80 == 0 {
            if index > 0 && byte == 0 {
                return Err(DecodeError::new(structure, field, start, "varint is not minimally encoded"));
            }
            *pos = start + index + 1;
            return Ok(value);
        }
    }
    Err(DecodeError::new(structure, field, start, "varint longer than 10 bytes"))
}

pub fn get_i64(bytes: &[u8], pos: &mut usize, structure: &'static str, field: &'static str) -> Result<i64, DecodeError> {
    let raw = get_u64(bytes, pos, structure, field)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        for value in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 300, -300] {
            let mut out = Vec::new();
            put_i64(&mut out, value);
            let mut pos = 0;
            assert_eq!(get_i64(&out, &mut pos, "t", "v").unwrap(), value);
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        let mut pos = 0;
        assert!(get_u64(&[0x80, 0x00], &mut pos, "t", "v").is_err());
        assert!(get_u64(&[0x80], &mut pos, "t", "v").is_err());
        assert!(get_u64(&[0xff; 11], &mut pos, "t", "v").is_err());
        assert!(get_u64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], &mut pos, "t", "v").is_err());
    }
}
