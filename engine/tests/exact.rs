//! Exact answers: regressions for planner counts and the documented tie rules.

mod common;

use aerodb_engine::Mode;
use common::{ok, TestDb};
use serde_json::{json, Value};

const P_SCHEMA: &str = r#"{"schema_id":"p","schema_version":"v1",
  "fields":{"_id":{"type":"int"},"i":{"type":"int"}},"indexes":["_id","i"]}"#;

fn explain(db: &mut aerodb_engine::Database, request: &str) -> Value {
    let request: Value = serde_json::from_str(request).unwrap();
    let response = db.respond(&request, Mode::Explain);
    assert_eq!(response["status"], "ok", "{response}");
    response["data"].clone()
}

#[test]
fn strict_upper_bound_on_id_is_exclusive() {
    let test = TestDb::new(&[("p_v1.json", P_SCHEMA)]);
    let mut db = test.open();
    for (id, i) in [(1, 40), (2, 30), (3, 20), (4, 10), (5, -1)] {
        ok(&mut db, &format!(r#"{{"op":"insert","schema_id":"p","schema_version":"v1","document":{{"_id":{id},"i":{i}}}}}"#));
    }
    let query = r#"{"op":"query","schema_id":"p","schema_version":"v1","filter":{"_id":{"$lt":5},"i":{"$gte":0}},"limit":1}"#;
    assert_eq!(ok(&mut db, query), json!([{"_id": 1, "i": 40}]));
    let plan = explain(&mut db, query);
    assert_eq!(plan["chosen_index"], "_id");
    assert_eq!(plan["max_scan"], 4);
    for (filter, expected) in [
        (r#"{"_id":{"$lt":1}}"#, 0),
        (r#"{"_id":{"$lt":5}}"#, 4),
        (r#"{"_id":{"$lte":5}}"#, 5),
        (r#"{"_id":{"$gt":5}}"#, 0),
        (r#"{"_id":{"$gte":5}}"#, 1),
        (r#"{"_id":{"$gt":1,"$lt":5}}"#, 3),
        (r#"{"_id":{"$gte":1,"$lte":5}}"#, 5),
    ] {
        let request = format!(r#"{{"op":"query","schema_id":"p","schema_version":"v1","filter":{filter},"limit":1}}"#);
        let plan = explain(&mut db, &request);
        assert_eq!(plan["max_scan"], expected, "{filter}");
        if expected == 0 {
            assert_eq!(plan["memory_bytes_max"], 0, "{filter}");
        }
    }
}
