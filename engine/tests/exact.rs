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

const F_SCHEMA: &str = r#"{"schema_id":"f","schema_version":"v1",
  "fields":{"_id":{"type":"int"},"x":{"type":"float"}},"indexes":["_id","x"]}"#;

#[test]
fn float_literals_round_trip_exactly() {
    let test = TestDb::new(&[("f_v1.json", F_SCHEMA)]);
    let mut db = test.open();
    let mut rng = fastrand::Rng::with_seed(12);
    let mut values: Vec<f64> = vec![1000000000000000.5, 0.1, 5e-324, f64::MAX, f64::MIN_POSITIVE, -2.2250738585072014e-308];
    while values.len() < 2000 {
        let value = f64::from_bits(rng.u64(..));
        if value.is_finite() {
            values.push(value);
        }
    }
    for (id, value) in values.iter().enumerate() {
        // The shortest text that round-trips (Rust's Display), as a client would send it.
        let text = format!("{value:?}");
        let request = format!(r#"{{"op":"insert","schema_id":"f","schema_version":"v1","document":{{"_id":{id},"x":{text}}}}}"#);
        ok(&mut db, &request);
        let query = format!(r#"{{"op":"query","schema_id":"f","schema_version":"v1","filter":{{"_id":{id}}},"limit":1}}"#);
        let stored = ok(&mut db, &query)[0]["x"].as_f64().unwrap();
        assert_eq!(stored.to_bits(), value.to_bits(), "{text} came back as {stored:?}");
        // The query literal is read the same way: equality finds the document.
        let query = format!(r#"{{"op":"query","schema_id":"f","schema_version":"v1","filter":{{"x":{text}}},"limit":10}}"#);
        let found = ok(&mut db, &query);
        assert!(found.as_array().unwrap().iter().any(|document| document["_id"] == id), "{text}: {found}");
    }
}
