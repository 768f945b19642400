//! The document record and the compact binary value encoding.
//!
//! A document record is: `schema_id` (u8 length + bytes), `schema_version`
//! (u8 length + bytes), then the document body as an encoded object. The
//! encoding keeps field order, int versus float, nesting and any UTF-8, so a
//! document decodes to exactly the JSON it was written as.
//!
//! Value tags: 0x01 false, 0x02 true, 0x03 int (zigzag varint), 0x04 float
//! (8 bytes, IEEE 754 bits, little-endian), 0x05 string (varint length +
//! UTF-8), 0x06 array (varint count + values), 0x07 object (varint count +
//! members, each a varint key length, key bytes and a value). JSON null has
//! no tag: schemas never accept it. Nesting is limited to `JSON_DEPTH_MAX`.

use serde_json::{Map, Number, Value};

use crate::varint;
use crate::{DecodeError, IDENTIFIER_LEN_MAX, JSON_DEPTH_MAX};

pub const TAG_FALSE: u8 = 0x01;
pub const TAG_TRUE: u8 = 0x02;
pub const TAG_INT: u8 = 0x03;
pub const TAG_FLOAT: u8 = 0x04;
pub const TAG_STRING: u8 = 0x05;
pub const TAG_ARRAY: u8 = 0x06;
pub const TAG_OBJECT: u8 = 0x07;

const STRUCTURE: &str = "document";

/// A decoded document record.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentRecord {
    pub schema_id: String,
    pub schema_version: String,
    /// The document, always a JSON object holding `_id`.
    pub body: Map<String, Value>,
}

/// Why a value cannot be encoded (the engine validates before encoding, so
/// this only fires on values a schema would have rejected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError(pub String);

/// Appends the encoding of `value`.
pub fn encode_value(out: &mut Vec<u8>, value: &Value) -> Result<(), EncodeError> {
    encode_value_at(out, value, 0)
}

fn encode_value_at(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), EncodeError> {
    if depth > JSON_DEPTH_MAX {
        return Err(EncodeError(format!("nesting deeper than {JSON_DEPTH_MAX}")));
    }
    match value {
        Value::Null => return Err(EncodeError("null cannot be stored".into())),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Number(number) => {
            if let Some(int) = number.as_i64().filter(|_| !number.is_f64()) {
                out.push(TAG_INT);
                varint::put_i64(out, int);
            } else if number.is_f64() {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&number.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
            } else {
                return Err(EncodeError(format!("integer {number} does not fit i64")));
            }
        }
        Value::String(text) => {
            out.push(TAG_STRING);
            varint::put_u64(out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            varint::put_u64(out, items.len() as u64);
            for item in items {
                encode_value_at(out, item, depth + 1)?;
            }
        }
        Value::Object(members) => {
            out.push(TAG_OBJECT);
            varint::put_u64(out, members.len() as u64);
            for (key, member) in members {
                varint::put_u64(out, key.len() as u64);
                out.extend_from_slice(key.as_bytes());
                encode_value_at(out, member, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Decodes one value starting at `*pos`, advancing it.
pub fn decode_value(bytes: &[u8], pos: &mut usize) -> Result<Value, DecodeError> {
    decode_value_at(bytes, pos, 0)
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, length: u64, field: &'static str) -> Result<&'a [u8], DecodeError> {
    let start = *pos;
    let end = usize::try_from(length).ok().and_then(|length| start.checked_add(length)).filter(|&end| end <= bytes.len());
    let Some(end) = end else {
        return Err(DecodeError::new(
            STRUCTURE,
            field,
            start,
            format!("length {length} runs past the end ({} bytes left)", bytes.len() - start.min(bytes.len())),
        ));
    };
    *pos = end;
    Ok(&bytes[start..end])
}

fn take_text<'a>(bytes: &'a [u8], pos: &mut usize, field: &'static str) -> Result<&'a str, DecodeError> {
    let length = varint::get_u64(bytes, pos, STRUCTURE, field)?;
    let start = *pos;
    let raw = take(bytes, pos, length, field)?;
    std::str::from_utf8(raw).map_err(|error| DecodeError::new(STRUCTURE, field, start + error.valid_up_to(), "invalid UTF-8"))
}

fn decode_value_at(bytes: &[u8], pos: &mut usize, depth: usize) -> Result<Value, DecodeError> {
    let tag_offset = *pos;
    if depth > JSON_DEPTH_MAX {
        return Err(DecodeError::new(STRUCTURE, "value", tag_offset, format!("nesting deeper than {JSON_DEPTH_MAX}")));
    }
    let Some(&tag) = bytes.get(tag_offset) else {
        return Err(DecodeError::new(STRUCTURE, "tag", tag_offset, "value runs past the end"));
    };
    *pos += 1;
    Ok(match tag {
        TAG_FALSE => Value::Bool(false),
        TAG_TRUE => Value::Bool(true),
        TAG_INT => Value::Number(varint::get_i64(bytes, pos, STRUCTURE, "int")?.into()),
        TAG_FLOAT => {
            let raw = take(bytes, pos, 8, "float")?;
            let mut bits = [0u8; 8];
            bits.copy_from_slice(raw);
            let float = f64::from_bits(u64::from_le_bytes(bits));
            match Number::from_f64(float) {
                Some(number) => Value::Number(number),
                None => return Err(DecodeError::new(STRUCTURE, "float", tag_offset + 1, "float is not finite")),
            }
        }
        TAG_STRING => Value::String(take_text(bytes, pos, "string")?.to_owned()),
        TAG_ARRAY => {
            let count = varint::get_u64(bytes, pos, STRUCTURE, "array count")?;
            // Every item takes at least one byte: a count past the bytes left is a lie.
            if count > (bytes.len() - *pos) as u64 {
                return Err(DecodeError::new(STRUCTURE, "array count", tag_offset + 1, format!("count {count} exceeds the bytes left")));
            }
            let mut items = Vec::with_capacity(count as usize);
            for _ in 0..count {
                items.push(decode_value_at(bytes, pos, depth + 1)?);
            }
            Value::Array(items)
        }
        TAG_OBJECT => Value::Object(decode_members(bytes, pos, depth, tag_offset)?),
        other => return Err(DecodeError::new(STRUCTURE, "tag", tag_offset, format!("unknown value tag {other:#04x}"))),
    })
}

fn decode_members(bytes: &[u8], pos: &mut usize, depth: usize, tag_offset: usize) -> Result<Map<String, Value>, DecodeError> {
    let count = varint::get_u64(bytes, pos, STRUCTURE, "object count")?;
    if count > (bytes.len() - *pos) as u64 / 2 {
        return Err(DecodeError::new(STRUCTURE, "object count", tag_offset + 1, format!("count {count} exceeds the bytes left")));
    }
    let mut members = Map::with_capacity(count as usize);
    for _ in 0..count {
        let key_offset = *pos;
        let key = take_text(bytes, pos, "key")?.to_owned();
        let value = decode_value_at(bytes, pos, depth + 1)?;
        if members.insert(key, value).is_some() {
            return Err(DecodeError::new(STRUCTURE, "key", key_offset, "duplicate key"));
        }
    }
    Ok(members)
}

/// Encodes a document record.
pub fn encode_record(schema_id: &str, schema_version: &str, body: &Map<String, Value>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    for name in [schema_id, schema_version] {
        if name.is_empty() || name.len() > IDENTIFIER_LEN_MAX {
            return Err(EncodeError(format!("identifier of {} bytes", name.len())));
        }
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    out.push(TAG_OBJECT);
    varint::put_u64(&mut out, body.len() as u64);
    for (key, member) in body {
        varint::put_u64(&mut out, key.len() as u64);
        out.extend_from_slice(key.as_bytes());
        encode_value_at(&mut out, member, 1)?;
    }
    Ok(out)
}

fn take_identifier_bytes<'a>(bytes: &'a [u8], pos: &mut usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
    let start = *pos;
    let Some(&length) = bytes.get(start) else {
        return Err(DecodeError::new(STRUCTURE, field, start, "record runs past the end"));
    };
    *pos += 1;
    let raw = take(bytes, pos, u64::from(length), field)?;
    if raw.is_empty() || raw.len() > IDENTIFIER_LEN_MAX || !raw.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(DecodeError::new(STRUCTURE, field, start, "not an identifier of 1-64 characters [A-Za-z0-9_]"));
    }
    Ok(raw)
}

fn take_identifier(bytes: &[u8], pos: &mut usize, field: &'static str) -> Result<String, DecodeError> {
    take_identifier_bytes(bytes, pos, field).map(|raw| String::from_utf8_lossy(raw).into_owned())
}

/// Decodes a document record; the whole buffer must be consumed and the
/// body must carry an `_id` that is an int or a string.
pub fn decode_record(bytes: &[u8]) -> Result<DocumentRecord, DecodeError> {
    let mut pos = 0;
    let schema_id = take_identifier(bytes, &mut pos, "schema_id")?;
    let schema_version = take_identifier(bytes, &mut pos, "schema_version")?;
    let body = decode_body_at(bytes, pos)?;
    Ok(DocumentRecord { schema_id, schema_version, body })
}

/// The body of a record of `schema_id`/`schema_version`, with the checks of
/// [`decode_record`]; `Ok(None)` when the record belongs to another schema
/// version (its names are compared in place, not copied).
pub fn decode_record_of(bytes: &[u8], schema_id: &str, schema_version: &str) -> Result<Option<Map<String, Value>>, DecodeError> {
    let mut pos = 0;
    let id = take_identifier_bytes(bytes, &mut pos, "schema_id")?;
    let version = take_identifier_bytes(bytes, &mut pos, "schema_version")?;
    if id != schema_id.as_bytes() || version != schema_version.as_bytes() {
        return Ok(None);
    }
    decode_body_at(bytes, pos).map(Some)
}

/// The body that starts at `pos` and ends the record, with its `_id` checked.
fn decode_body_at(bytes: &[u8], mut pos: usize) -> Result<Map<String, Value>, DecodeError> {
    let tag_offset = pos;
    if bytes.get(pos) != Some(&TAG_OBJECT) {
        return Err(DecodeError::new(STRUCTURE, "body", pos, "body is not an object"));
    }
    pos += 1;
    let body = decode_members(bytes, &mut pos, 0, tag_offset)?;
    if pos != bytes.len() {
        return Err(DecodeError::new(STRUCTURE, "body", pos, format!("{} trailing bytes after the body", bytes.len() - pos)));
    }
    match body.get("_id") {
        Some(Value::String(_)) => {}
        Some(Value::Number(number)) if number.is_i64() => {}
        _ => return Err(DecodeError::new(STRUCTURE, "_id", tag_offset, "body has no string or int _id")),
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_of_a_named_version_decodes_in_place() {
        let body = json!({"_id": "a", "n": 1}).as_object().unwrap().clone();
        let bytes = encode_record("user", "v1", &body).unwrap();
        assert_eq!(decode_record_of(&bytes, "user", "v1").unwrap(), Some(body.clone()));
        assert_eq!(decode_record_of(&bytes, "user", "v2").unwrap(), None);
        assert_eq!(decode_record_of(&bytes, "users", "v1").unwrap(), None);
        assert!(decode_record_of(&bytes[..bytes.len() - 1], "user", "v1").is_err());
    }

    fn round_trip(value: Value) {
        let body = value.as_object().unwrap().clone();
        let bytes = encode_record("user", "v1", &body).unwrap();
        let record = decode_record(&bytes).unwrap();
        assert_eq!(record.schema_id, "user");
        assert_eq!(record.schema_version, "v1");
        assert_eq!(serde_json::to_string(&record.body).unwrap(), serde_json::to_string(&body).unwrap());
    }

    #[test]
    fn round_trips_order_types_and_unicode() {
        round_trip(json!({"_id": "1", "name": "alice", "age": 30}));
        round_trip(json!({"zeta": 1, "_id": -5, "alpha": 2.5, "f": 10.0, "neg": -0.0}));
        round_trip(json!({"_id": "ü\u{1F600}", "nested": {"b": [1, 2, {"c": true}], "a": false}, "empty": {}, "list": []}));
        round_trip(json!({"_id": i64::MIN, "max": i64::MAX, "tiny": 5e-324, "big": 1.7976931348623157e308}));
    }

    #[test]
    fn float_stays_float() {
        let bytes = encode_record("s", "v", json!({"_id": 1, "f": 10.0}).as_object().unwrap()).unwrap();
        let record = decode_record(&bytes).unwrap();
        assert_eq!(serde_json::to_string(&record.body).unwrap(), r#"{"_id":1,"f":10.0}"#);
    }

    #[test]
    fn rejects_bad_records() {
        let good = encode_record("s", "v", json!({"_id": 1}).as_object().unwrap()).unwrap();
        for cut in 0..good.len() {
            assert!(decode_record(&good[..cut]).is_err());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_record(&trailing).is_err());
        let no_id = encode_record("s", "v", json!({"x": 1}).as_object().unwrap()).unwrap();
        assert!(decode_record(&no_id).is_err());
        assert!(encode_record("s", "v", json!({"_id": 1, "n": null}).as_object().unwrap()).is_err());
        assert!(encode_record("s", "v", json!({"_id": 1, "n": u64::MAX}).as_object().unwrap()).is_err());
    }

    #[test]
    fn depth_is_bounded() {
        let mut deep = json!(1);
        for _ in 0..(JSON_DEPTH_MAX + 2) {
            deep = json!([deep]);
        }
        let mut body = Map::new();
        body.insert("_id".into(), json!(1));
        body.insert("deep".into(), deep);
        assert!(encode_record("s", "v", &body).is_err());
        // A hand-made deep encoding is refused by the decoder too.
        let mut bytes = vec![1, b's', 1, b'v', TAG_OBJECT, 2, 3, b'_', b'i', b'd', TAG_INT, 2, 1, b'd'];
        bytes.extend(std::iter::repeat_n([TAG_ARRAY, 1], 100).flatten());
        bytes.push(TAG_TRUE);
        assert!(decode_record(&bytes).is_err());
    }
}
