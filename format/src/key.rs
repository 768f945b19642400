//! Order-preserving encoding of index keys: comparing two encodings byte by
//! byte (memcmp) gives the same order as comparing the values.
//!
//! - int: `0x10`, then the i64 with its sign bit flipped, 8 bytes big-endian;
//! - float: `0x20`, then the f64 bits big-endian, with the sign bit flipped
//!   for positives and every bit flipped for negatives; `-0.0` is stored as
//!   `0.0` (they compare equal); NaN and infinities never reach an index;
//! - string: `0x30`, then the UTF-8 bytes with each `0x00` written as
//!   `0x00 0xFF`, then the terminator `0x00 0x00`;
//! - bool: `0x40`, then `0x00` (false) or `0x01` (true).
//!
//! Each encoding is self-delimiting, so an index entry key is the field's
//! encoding followed by the `_id`'s encoding, and entries with equal field
//! values order by `_id`. The `_id` index's key is the `_id` encoding alone.

use serde_json::Value;

use crate::DecodeError;

pub const KEY_TAG_INT: u8 = 0x10;
pub const KEY_TAG_FLOAT: u8 = 0x20;
pub const KEY_TAG_STRING: u8 = 0x30;
pub const KEY_TAG_BOOL: u8 = 0x40;

/// A scalar value that can be part of an index key.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyValue {
    Int(i64),
    Float(f64),
    String(String),
    Bool(bool),
}

impl KeyValue {
    /// The key value of a JSON scalar; floats come from JSON numbers that are
    /// not integers, or from any number when `as_float` is set (float fields).
    pub fn from_json(value: &Value, as_float: bool) -> Option<KeyValue> {
        match value {
            Value::Bool(flag) => Some(KeyValue::Bool(*flag)),
            Value::String(text) => Some(KeyValue::String(text.clone())),
            Value::Number(number) if as_float => number.as_f64().filter(|f| f.is_finite()).map(KeyValue::Float),
            Value::Number(number) if number.is_i64() => number.as_i64().map(KeyValue::Int),
            Value::Number(number) if number.is_f64() => number.as_f64().filter(|f| f.is_finite()).map(KeyValue::Float),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            KeyValue::Int(int) => Value::from(*int),
            KeyValue::Float(float) => serde_json::Number::from_f64(*float).map(Value::Number).unwrap_or(Value::Null),
            KeyValue::String(text) => Value::String(text.clone()),
            KeyValue::Bool(flag) => Value::Bool(*flag),
        }
    }
}

/// A key value borrowed from where it lies (a stored record).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyRef<'a> {
    Int(i64),
    Float(f64),
    String(&'a str),
    Bool(bool),
}

/// Appends the order-preserving encoding of `value`.
pub fn encode(out: &mut Vec<u8>, value: &KeyValue) {
    encode_ref(
        out,
        match value {
            KeyValue::Int(int) => KeyRef::Int(*int),
            KeyValue::Float(float) => KeyRef::Float(*float),
            KeyValue::String(text) => KeyRef::String(text),
            KeyValue::Bool(flag) => KeyRef::Bool(*flag),
        },
    )
}

/// [`encode`] for a borrowed key value.
pub fn encode_ref(out: &mut Vec<u8>, value: KeyRef<'_>) {
    match value {
        KeyRef::Int(int) => {
            out.push(KEY_TAG_INT);
            out.extend_from_slice(&((int as u64) ^ (1 << 63)).to_be_bytes());
        }
        KeyRef::Float(float) => {
            out.push(KEY_TAG_FLOAT);
            let float = if float == 0.0 { 0.0 } else { float };
            let bits = float.to_bits();
            let ordered = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        KeyRef::String(text) => {
            out.push(KEY_TAG_STRING);
            for &byte in text.as_bytes() {
                out.push(byte);
                if byte == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        KeyRef::Bool(flag) => {
            out.push(KEY_TAG_BOOL);
            out.push(u8::from(flag));
        }
    }
}

pub fn encode_to_vec(value: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode(&mut out, value);
    out
}

/// Decodes one key value at `*pos`, advancing it.
pub fn decode(bytes: &[u8], pos: &mut usize) -> Result<KeyValue, DecodeError> {
    let start = *pos;
    let error = |offset: usize, reason: &str| DecodeError::new("index key", "value", offset, reason.to_string());
    let Some(&tag) = bytes.get(start) else { return Err(error(start, "key runs past the end")) };
    let fixed = |length: usize| bytes.get(start + 1..start + 1 + length).ok_or_else(|| error(start, "key runs past the end"));
    let value = match tag {
        KEY_TAG_INT => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(fixed(8)?);
            *pos = start + 9;
            KeyValue::Int((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
        }
        KEY_TAG_FLOAT => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(fixed(8)?);
            *pos = start + 9;
            let ordered = u64::from_be_bytes(raw);
            let bits = if ordered >> 63 == 1 { ordered ^ (1 << 63) } else { !ordered };
            let float = f64::from_bits(bits);
            if !float.is_finite() {
                return Err(error(start, "float key is not finite"));
            }
            KeyValue::Float(float)
        }
        KEY_TAG_STRING => {
            let mut text = Vec::new();
            let mut at = start + 1;
            loop {
                match (bytes.get(at), bytes.get(at + 1)) {
                    (Some(0), Some(0)) => break,
                    (Some(0), Some(0xFF)) => {
                        text.push(0);
                        at += 2;
                    }
                    (Some(0), _) => return Err(error(at, "bad escape in string key")),
                    (Some(&byte), _) => {
                        text.push(byte);
                        at += 1;
                    }
                    (None, _) => return Err(error(at, "string key has no terminator")),
                }
            }
            *pos = at + 2;
            KeyValue::String(String::from_utf8(text).map_err(|_| error(start, "string key is not UTF-8"))?)
        }
        KEY_TAG_BOOL => {
            let raw = fixed(1)?[0];
            if raw > 1 {
                return Err(error(start + 1, "bool key byte must be 0 or 1"));
            }
            *pos = start + 2;
            KeyValue::Bool(raw == 1)
        }
        _ => return Err(error(start, "unknown key tag")),
    };
    Ok(value)
}

/// Splits an index entry key into its field value and `_id` (for the `_id`
/// index, `id_only` is set and the key is the `_id` alone).
pub fn decode_entry_key(bytes: &[u8], id_only: bool) -> Result<(KeyValue, KeyValue), DecodeError> {
    let mut pos = 0;
    let first = decode(bytes, &mut pos)?;
    let id = if id_only { first.clone() } else { decode(bytes, &mut pos)? };
    if !matches!(id, KeyValue::Int(_) | KeyValue::String(_)) {
        return Err(DecodeError::new("index key", "_id", 0, "_id must be an int or a string"));
    }
    if pos != bytes.len() {
        return Err(DecodeError::new("index key", "value", pos, "trailing bytes after the key"));
    }
    Ok((first, id))
}

/// The smallest byte string greater than every key starting with `prefix`.
pub fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.push(0xFF);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_order(values: &[KeyValue]) {
        for pair in values.windows(2) {
            let (a, b) = (encode_to_vec(&pair[0]), encode_to_vec(&pair[1]));
            assert!(a < b, "{:?} should sort before {:?}", pair[0], pair[1]);
        }
        for value in values {
            let bytes = encode_to_vec(value);
            let mut pos = 0;
            assert_eq!(&decode(&bytes, &mut pos).unwrap(), value);
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn ints_order() {
        assert_order(&[i64::MIN, -1_000_000, -2, -1, 0, 1, 2, 255, 256, i64::MAX].map(KeyValue::Int));
    }

    #[test]
    fn floats_order() {
        assert_order(&[f64::MIN, -1e300, -2.5, -1.0, -5e-324, 0.0, 5e-324, 1.0, 1.5, 1e300, f64::MAX].map(KeyValue::Float));
        assert_eq!(encode_to_vec(&KeyValue::Float(-0.0)), encode_to_vec(&KeyValue::Float(0.0)));
    }

    #[test]
    fn strings_order() {
        assert_order(&["", "\0", "\0\0", "\0a", "a", "a\0", "a\0b", "ab", "b", "é", "\u{1F600}"].map(|s| KeyValue::String(s.to_string())));
    }

    #[test]
    fn bools_order() {
        assert_order(&[KeyValue::Bool(false), KeyValue::Bool(true)]);
    }

    #[test]
    fn entry_keys_order_by_id_on_ties() {
        let key = |age: i64, id: &str| {
            let mut out = encode_to_vec(&KeyValue::Int(age));
            encode(&mut out, &KeyValue::String(id.into()));
            out
        };
        assert!(key(30, "a") < key(30, "b"));
        assert!(key(30, "zzz") < key(31, ""));
        assert_eq!(decode_entry_key(&key(30, "x"), false).unwrap(), (KeyValue::Int(30), KeyValue::String("x".into())));
    }
}
