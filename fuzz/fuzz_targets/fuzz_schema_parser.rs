//! Fuzzes `Schema::parse` and, for schemas that parse, `Schema::validate`
//! and the document encoder behind it.
//!
//! Input: the schema file's bytes, optionally followed by a 0x00 byte and
//! material for documents. That material is read as a stream of JSON values
//! (each one validated), and is also the byte source for a document built in
//! the schema's shape (with, now and then, a missing field, a wrong type or
//! an undeclared field). Every document that validates must encode, decode to
//! the same JSON, and validate again unchanged.

#![no_main]

use aerodb_format::document::{decode_record, encode_record};
use aerodb_format::schema::{is_identifier, FieldDef, FieldType, Schema};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Values one synthesized document may hold (arrays multiply quickly).
const SYNTHESIZED_VALUES_MAX: usize = 2000;
/// JSON documents read from the input per run.
const JSON_DOCUMENTS_MAX: usize = 4;

/// Hands out the input's bytes, then zeros; counts the values built.
struct ByteSource<'a> {
    bytes: &'a [u8],
    pos: usize,
    values_built: usize,
}

impl ByteSource<'_> {
    fn next(&mut self) -> u8 {
        let byte = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        byte
    }

    fn next_u64(&mut self) -> u64 {
        (0..8).fold(0u64, |value, _| (value << 8) | u64::from(self.next()))
    }

    fn text(&mut self) -> String {
        let length = usize::from(self.next() % 16);
        let raw: Vec<u8> = (0..length).map(|_| self.next()).collect();
        String::from_utf8_lossy(&raw).into_owned()
    }

    fn exhausted(&self) -> bool {
        self.values_built >= SYNTHESIZED_VALUES_MAX
    }
}

/// A value of `field_type`, or now and then of another type. Recursion
/// follows the schema, whose nesting the parser bounds to JSON_DEPTH_MAX.
fn synthesize(field_type: &FieldType, source: &mut ByteSource<'_>) -> Value {
    source.values_built += 1;
    let choice = source.next();
    if choice == 0xFF {
        return Value::Null;
    }
    if choice == 0xFE {
        return Value::from("wrong type");
    }
    match field_type {
        FieldType::String => Value::String(source.text()),
        FieldType::Int => Value::from(source.next_u64() as i64),
        FieldType::Float => {
            if choice & 1 == 0 {
                Value::from(i64::from(source.next()) - 128)
            } else {
                let float = f64::from_bits(source.next_u64());
                serde_json::Number::from_f64(float).map_or(Value::from(0.5), Value::Number)
            }
        }
        FieldType::Bool => Value::Bool(choice & 1 == 1),
        FieldType::Object(fields) => synthesize_object(fields, source),
        FieldType::Array(item) => {
            let count = if source.exhausted() { 0 } else { choice % 4 };
            Value::Array(
                (0..count)
                    .map(|_| synthesize(&item.field_type, source))
                    .collect(),
            )
        }
    }
}

fn synthesize_object(fields: &[(String, FieldDef)], source: &mut ByteSource<'_>) -> Value {
    let mut members = Map::new();
    for (name, definition) in fields {
        let skip = source.next();
        if skip == 0xFD || (!definition.required && skip & 1 == 0) {
            continue;
        }
        members.insert(name.clone(), synthesize(&definition.field_type, source));
    }
    if source.next() == 0xFC {
        members.insert("undeclared".into(), Value::Bool(true));
    }
    Value::Object(members)
}

fn check_document(schema: &Schema, document: &Value) {
    let Ok(stored) = schema.validate(document) else {
        return;
    };
    let bytes = encode_record(&schema.schema_id, &schema.schema_version, &stored)
        .expect("a valid document encodes");
    let record = decode_record(&bytes).expect("an encoded document decodes");
    assert_eq!(
        serde_json::to_string(&record.body).ok(),
        serde_json::to_string(&stored).ok()
    );
    assert_eq!(
        schema.validate(&Value::Object(stored.clone())).ok(),
        Some(stored)
    );
}

fuzz_target!(|data: &[u8]| {
    let (schema_bytes, material) = match data.iter().position(|&byte| byte == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(schema) = Schema::parse(schema_bytes) else {
        return;
    };
    assert!(is_identifier(&schema.schema_id) && is_identifier(&schema.schema_version));
    assert_eq!(schema.indexes.first().map(String::as_str), Some("_id"));
    for name in &schema.indexes {
        assert!(schema
            .field(name)
            .is_some_and(|field| field.field_type.is_scalar()));
    }
    let id = schema.field("_id").expect("_id is declared");
    assert!(id.required && matches!(id.field_type, FieldType::String | FieldType::Int));

    let stream = serde_json::Deserializer::from_slice(material).into_iter::<Value>();
    for document in stream.take(JSON_DOCUMENTS_MAX) {
        let Ok(document) = document else { break };
        check_document(&schema, &document);
    }
    let mut source = ByteSource {
        bytes: material,
        pos: 0,
        values_built: 0,
    };
    let document = synthesize_object(&schema.fields, &mut source);
    check_document(&schema, &document);
});
