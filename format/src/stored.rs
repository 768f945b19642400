//! A stored document record checked where it lies: the structure rules of
//! [`crate::document::decode_record`], the schema rules of
//! [`Schema::check_stored`] and the index keys of
//! [`Schema::for_each_index_key`], in one pass over the encoded bytes,
//! building no `serde_json` value and allocating nothing.
//!
//! It answers only "valid, and these are its keys" or "not valid": a record
//! it refuses is decoded the slow way to describe the fault. A record it
//! accepts is one the slow way accepts, with the same keys (the
//! differential test below checks this on random and damaged records).

use crate::document::{TAG_ARRAY, TAG_FALSE, TAG_FLOAT, TAG_INT, TAG_OBJECT, TAG_STRING, TAG_TRUE};
use crate::key::{self, KeyRef};
use crate::schema::{FieldDef, FieldType, Schema};
use crate::{varint, IDENTIFIER_LEN_MAX, INDEXED_STRING_MAX_BYTES, JSON_DEPTH_MAX};

/// Buffers reused from one record to the next.
#[derive(Default)]
pub struct KeyScratch {
    id: Vec<u8>,
    entry: Vec<u8>,
    /// Where the value of each top-level field starts (`usize::MAX`: absent).
    value_at: Vec<usize>,
}

/// Fields of an object beyond which the check leaves the record to the
/// slow way (its duplicate test is a bit set of declared fields).
const FIELDS_MAX: usize = 128;

/// The names of a record and where its body starts, read in place; `None`
/// if they are not two identifiers.
pub fn record_names(bytes: &[u8]) -> Option<(&str, &str, usize)> {
    let mut pos = 0;
    let schema_id = identifier(bytes, &mut pos)?;
    let schema_version = identifier(bytes, &mut pos)?;
    Some((schema_id, schema_version, pos))
}

fn identifier<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    let length = usize::from(*bytes.get(*pos)?);
    let raw = bytes.get(*pos + 1..*pos + 1 + length)?;
    if raw.is_empty() || raw.len() > IDENTIFIER_LEN_MAX || !raw.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    *pos += 1 + length;
    std::str::from_utf8(raw).ok()
}

fn count(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    varint::get_u64(bytes, pos, "document", "count").ok()
}

fn raw_text<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let length = usize::try_from(count(bytes, pos)?).ok()?;
    let end = pos.checked_add(length).filter(|&end| end <= bytes.len())?;
    let raw = &bytes[*pos..end];
    *pos = end;
    Some(raw)
}

fn text<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    std::str::from_utf8(raw_text(bytes, pos)?).ok()
}

fn float(bytes: &[u8], pos: &mut usize) -> Option<f64> {
    let raw: [u8; 8] = bytes.get(*pos..*pos + 8)?.try_into().ok()?;
    *pos += 8;
    Some(f64::from_le_bytes(raw)).filter(|value| value.is_finite())
}

/// Checks the members of an object (its count first) against `fields`;
/// the members' values are at `depth`. With `value_at`, notes where each
/// field's value starts.
fn members(fields: &[(String, FieldDef)], bytes: &[u8], pos: &mut usize, depth: usize, mut value_at: Option<&mut [usize]>) -> Option<()> {
    if fields.len() > FIELDS_MAX {
        return None;
    }
    let members = count(bytes, pos)?;
    if members > (bytes.len() - *pos) as u64 / 2 {
        return None;
    }
    let mut seen: u128 = 0;
    for _ in 0..members {
        // A name equal to a declared one is valid UTF-8: no other check.
        let name = raw_text(bytes, pos)?;
        let index = fields.iter().position(|(field, _)| field.as_bytes() == name)?;
        let bit = 1u128 << index;
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        if let Some(value_at) = value_at.as_deref_mut() {
            value_at[index] = *pos;
        }
        value(&fields[index].1.field_type, bytes, pos, depth)?;
    }
    let required_missing = fields.iter().enumerate().any(|(index, (_, definition))| definition.required && seen & (1u128 << index) == 0);
    (!required_missing).then_some(())
}

/// Checks one value of type `field_type` at `depth`.
fn value(field_type: &FieldType, bytes: &[u8], pos: &mut usize, depth: usize) -> Option<()> {
    if depth > JSON_DEPTH_MAX {
        return None;
    }
    let tag = *bytes.get(*pos)?;
    *pos += 1;
    match (field_type, tag) {
        (FieldType::Bool, TAG_FALSE | TAG_TRUE) => Some(()),
        (FieldType::Int, TAG_INT) => varint::get_i64(bytes, pos, "document", "int").ok().map(|_| ()),
        (FieldType::Float, TAG_FLOAT) => float(bytes, pos).map(|_| ()),
        (FieldType::String, TAG_STRING) => text(bytes, pos).map(|_| ()),
        (FieldType::Object(fields), TAG_OBJECT) => members(fields, bytes, pos, depth + 1, None),
        (FieldType::Array(item), TAG_ARRAY) => {
            let items = count(bytes, pos)?;
            if items > (bytes.len() - *pos) as u64 {
                return None;
            }
            for _ in 0..items {
                value(&item.field_type, bytes, pos, depth + 1)?;
            }
            Some(())
        }
        _ => None,
    }
}

/// The key value of a checked scalar value at `pos`; `None` if it is not
/// a scalar.
fn scalar_key(bytes: &[u8], mut pos: usize) -> Option<KeyRef<'_>> {
    let tag = *bytes.get(pos)?;
    pos += 1;
    Some(match tag {
        TAG_FALSE => KeyRef::Bool(false),
        TAG_TRUE => KeyRef::Bool(true),
        TAG_INT => KeyRef::Int(varint::get_i64(bytes, &mut pos, "document", "int").ok()?),
        TAG_FLOAT => KeyRef::Float(float(bytes, &mut pos)?),
        TAG_STRING => KeyRef::String(text(bytes, &mut pos)?),
        _ => return None,
    })
}

impl Schema {
    /// Checks the body of a stored record of this schema version (`bytes`
    /// from `start`, the body's object tag, to the end) and, if it is valid,
    /// calls `visit(position, key)` for each index entry, as
    /// [`Schema::for_each_index_key`] does. Returns whether it was valid;
    /// nothing is visited for an invalid body.
    pub fn check_encoded_body(&self, bytes: &[u8], start: usize, scratch: &mut KeyScratch, mut visit: impl FnMut(usize, &[u8])) -> bool {
        self.check_encoded(bytes, start, scratch, &mut visit).is_some()
    }

    fn check_encoded(&self, bytes: &[u8], start: usize, scratch: &mut KeyScratch, visit: &mut dyn FnMut(usize, &[u8])) -> Option<()> {
        let mut pos = start;
        if bytes.get(pos) != Some(&TAG_OBJECT) {
            return None;
        }
        pos += 1;
        let KeyScratch { id: id_key, entry, value_at } = scratch;
        value_at.clear();
        value_at.resize(self.fields.len(), usize::MAX);
        members(&self.fields, bytes, &mut pos, 1, Some(value_at))?;
        if pos != bytes.len() {
            return None;
        }
        // The key value of the `positions`-th index: `Some(None)` if absent,
        // `None` if it is not a scalar.
        let index_key = |position: usize| -> Option<Option<KeyRef<'_>>> {
            match value_at[self.index_positions()[position]] {
                usize::MAX => Some(None),
                at => scalar_key(bytes, at).map(Some),
            }
        };
        // The `_id` (a string or an int) and the indexed strings' caps,
        // all before the first key is visited.
        let id_position = self.indexes.iter().position(|field| field == "_id")?;
        let id = index_key(id_position)??;
        if !matches!(id, KeyRef::Int(_) | KeyRef::String(_)) {
            return None;
        }
        for position in 0..self.indexes.len() {
            if let Some(KeyRef::String(text)) = index_key(position)? {
                if text.len() > INDEXED_STRING_MAX_BYTES {
                    return None;
                }
            }
        }
        id_key.clear();
        key::encode_ref(id_key, id);
        for position in 0..self.indexes.len() {
            entry.clear();
            if position != id_position {
                match index_key(position)? {
                    Some(value) => key::encode_ref(entry, value),
                    None => continue,
                }
            }
            entry.extend_from_slice(id_key);
            visit(position, entry);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{decode_record, encode_record};
    use serde_json::{json, Value};

    const SCHEMA: &str = r#"{"schema_id": "s", "schema_version": "v1",
      "fields": {"_id": {"type": "string"}, "name": {"type": "string"}, "age": {"type": "int"},
        "score": {"type": "float", "required": false}, "ok": {"type": "bool", "required": false},
        "tags": {"type": "array", "items": {"type": "string"}, "required": false},
        "address": {"type": "object", "required": false, "fields": {"city": {"type": "string"}, "zip": {"type": "int", "required": false}}}},
      "indexes": ["name", "age", "score", "ok"]}"#;

    /// The slow way: decode, check, collect keys.
    fn slow(schema: &Schema, bytes: &[u8]) -> Option<Vec<(usize, Vec<u8>)>> {
        let record = decode_record(bytes).ok()?;
        if record.schema_id != schema.schema_id || record.schema_version != schema.schema_version {
            return None;
        }
        schema.check_stored(&record.body).ok()?;
        let mut keys = Vec::new();
        schema.for_each_index_key(&record.body, |position, key| keys.push((position, key.to_vec()))).ok()?;
        Some(keys)
    }

    fn fast(schema: &Schema, bytes: &[u8]) -> Option<Vec<(usize, Vec<u8>)>> {
        let (id, version, start) = record_names(bytes)?;
        if id != schema.schema_id || version != schema.schema_version {
            return None;
        }
        let mut keys = Vec::new();
        let mut scratch = KeyScratch::default();
        schema.check_encoded_body(bytes, start, &mut scratch, |position, key| keys.push((position, key.to_vec()))).then_some(keys)
    }

    fn document(rng: &mut u64) -> Value {
        let mut next = || {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *rng
        };
        let mut doc = json!({"_id": format!("id{}", next() % 1000), "name": "n\u{0}é".repeat((next() % 4) as usize), "age": (next() % 200) as i64 - 100});
        if next() % 2 == 0 {
            doc["score"] = json!((next() % 1000) as f64 / 7.0 - 50.0);
        }
        if next() % 3 == 0 {
            doc["ok"] = json!(next() % 2 == 0);
        }
        if next() % 3 == 0 {
            doc["tags"] = json!(["a", "b"]);
        }
        if next() % 3 == 0 {
            doc["address"] = json!({"city": "x", "zip": 7});
        }
        if next() % 9 == 0 {
            // Wrong types and undeclared fields: the slow way refuses them too.
            doc["age"] = json!("old");
        }
        if next() % 11 == 0 {
            doc["extra"] = json!(1);
        }
        if next() % 13 == 0 {
            doc["name"] = json!("y".repeat(INDEXED_STRING_MAX_BYTES + 1));
        }
        doc
    }

    /// A record by hand: members in the order given, duplicates allowed.
    fn raw_record(members: &[(&str, Value)]) -> Vec<u8> {
        let mut out = vec![1, b's', 2, b'v', b'1', TAG_OBJECT];
        varint::put_u64(&mut out, members.len() as u64);
        for (name, value) in members {
            varint::put_u64(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            crate::document::encode_value(&mut out, value).unwrap();
        }
        out
    }

    #[test]
    fn the_check_in_place_agrees_on_chosen_cases() {
        let int_id = Schema::parse(
            br#"{"schema_id": "s", "schema_version": "v1",
              "fields": {"_id": {"type": "int"}, "score": {"type": "float", "required": false},
                "rows": {"type": "array", "required": false, "items": {"type": "object", "fields": {"k": {"type": "string"}, "v": {"type": "array", "items": {"type": "int"}}}}}},
              "indexes": ["score"]}"#,
        )
        .unwrap();
        let agree = |schema: &Schema, bytes: &[u8], valid: bool| {
            let expected = slow(schema, bytes);
            assert_eq!(expected.is_some(), valid, "the slow way on {bytes:?}");
            assert_eq!(fast(schema, bytes), expected, "{bytes:?}");
        };
        // An int _id, a negative zero (its key is that of 0.0), arrays of objects.
        agree(&int_id, &raw_record(&[("_id", json!(-7)), ("score", json!(-0.0))]), true);
        agree(&int_id, &raw_record(&[("_id", json!(i64::MIN)), ("score", json!(0.0))]), true);
        agree(&int_id, &raw_record(&[("_id", json!(3)), ("rows", json!([{"k": "a", "v": [1, 2]}, {"k": "b", "v": []}]))]), true);
        // Wrong types inside arrays of objects, a missing nested field, an undeclared nested field.
        agree(&int_id, &raw_record(&[("_id", json!(3)), ("rows", json!([{"k": "a", "v": [1, "2"]}]))]), false);
        agree(&int_id, &raw_record(&[("_id", json!(3)), ("rows", json!([{"v": [1]}]))]), false);
        agree(&int_id, &raw_record(&[("_id", json!(3)), ("rows", json!([{"k": "a", "v": [], "x": 1}]))]), false);
        // An int field holding a float, a float field holding an int, a string _id under an int schema.
        agree(&int_id, &raw_record(&[("_id", json!(3.5))]), false);
        agree(&int_id, &raw_record(&[("_id", json!(3)), ("score", json!(1))]), false);
        agree(&int_id, &raw_record(&[("_id", json!("3"))]), false);
        // A duplicate member, at the top and inside an object; no _id at all.
        agree(&int_id, &raw_record(&[("_id", json!(3)), ("_id", json!(4))]), false);
        agree(&int_id, &raw_record(&[("_id", json!(3)), ("rows", json!([{"k": "a", "v": []}])), ("rows", json!([]))]), false);
        agree(&int_id, &raw_record(&[("score", json!(1.0))]), false);
        // A string _id schema: an indexed string at the cap and one over it.
        let schema = Schema::parse(SCHEMA.as_bytes()).unwrap();
        let at_cap = json!({"_id": "a", "name": "x".repeat(INDEXED_STRING_MAX_BYTES), "age": 1});
        agree(&schema, &encode_record("s", "v1", at_cap.as_object().unwrap()).unwrap(), true);
        let over = json!({"_id": "a", "name": "x".repeat(INDEXED_STRING_MAX_BYTES + 1), "age": 1});
        agree(&schema, &encode_record("s", "v1", over.as_object().unwrap()).unwrap(), false);
        // Over FIELDS_MAX declared fields: the check in place declines, the slow way decides.
        let mut fields: Vec<String> = vec![r#""_id": {"type": "int"}"#.to_string()];
        fields.extend((0..FIELDS_MAX).map(|index| format!(r#""f{index}": {{"type": "int", "required": false}}"#)));
        let wide = Schema::parse(
            format!(r#"{{"schema_id": "s", "schema_version": "v1", "fields": {{{}}}, "indexes": []}}"#, fields.join(", ")).as_bytes(),
        )
        .unwrap();
        let bytes = raw_record(&[("_id", json!(1)), ("f5", json!(2))]);
        assert!(slow(&wide, &bytes).is_some());
        assert_eq!(fast(&wide, &bytes), None);
    }

    #[test]
    fn the_check_in_place_agrees_with_decoding_on_random_and_damaged_records() {
        let schema = Schema::parse(SCHEMA.as_bytes()).unwrap();
        let mut rng = 0x1234_5678_9abc_def1u64;
        let (mut valid, mut damaged) = (0, 0);
        for round in 0..3000 {
            let doc = document(&mut rng);
            let bytes = encode_record("s", "v1", doc.as_object().unwrap()).unwrap();
            let expected = slow(&schema, &bytes);
            assert_eq!(fast(&schema, &bytes), expected, "record {round}: {doc}");
            valid += usize::from(expected.is_some());
            // Damage: every single-byte change at a few positions, and cuts.
            for step in 0..6 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mut bad = bytes.clone();
                let at = (rng as usize) % bad.len();
                if step == 5 {
                    bad.truncate(at);
                } else {
                    bad[at] = bad[at].wrapping_add(1 + (rng >> 40) as u8 % 255);
                }
                let expected = slow(&schema, &bad);
                assert_eq!(fast(&schema, &bad), expected, "record {round}, damage {step} at byte {at}: {doc}");
                damaged += usize::from(expected.is_none());
            }
        }
        assert!(valid > 1000 && damaged > 5000, "{valid} valid, {damaged} refused damaged records");
    }
}
