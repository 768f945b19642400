//! Fuzzes the request stream reader and query validation: arbitrary bytes
//! on "stdin" must yield requests or AERO_QUERY_INVALID items, never a
//! panic, and every request object must be checked by `parse_query`
//! against a fixed schema without panicking.
#![no_main]

use aerodb_engine::query::parse_query;
use aerodb_engine::requests::{Item, RequestReader};
use aerodb_format::schema::Schema;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const SCHEMA: &str = r#"{"schema_id": "user", "schema_version": "v1",
 "fields": {"_id": {"type": "string"}, "name": {"type": "string"}, "age": {"type": "int"},
            "score": {"type": "float", "required": false}, "ok": {"type": "bool"},
            "tags": {"type": "array", "items": {"type": "string"}, "required": false}},
 "indexes": ["name", "age", "score", "ok"]}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = Schema::parse(SCHEMA.as_bytes()) else { return };
    let mut reader = RequestReader::new(data);
    // Every item consumes input, so the loop ends; bound it anyway.
    for _ in 0..data.len() + 1 {
        match reader.next_item() {
            Ok(Some(Item::Request(Value::Object(request)))) => {
                let _ = parse_query(&schema, &request);
                if let Some(document) = request.get("document") {
                    let _ = schema.validate(document);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
