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

fn code_of(db: &mut aerodb_engine::Database, request: &str, mode: Mode) -> String {
    let request: Value = serde_json::from_str(request).unwrap();
    let response = db.respond(&request, mode);
    assert_eq!(response["status"], "error", "{request} -> {response}");
    response["code"].as_str().unwrap().to_string()
}

#[test]
fn strings_longer_than_any_indexed_value_are_refused_in_queries_explains_and_deletes() {
    let test = TestDb::with_user_schema();
    let mut db = test.open();
    let long = "x".repeat(300);
    let name = "n".repeat(257);
    let cases = [
        format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"_id":"{long}"}},"limit":1}}"#),
        format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"name":"{name}"}},"limit":1}}"#),
        format!(r#"{{"op":"delete","schema_id":"user","schema_version":"v1","_id":"{long}"}}"#),
    ];
    for request in &cases {
        assert_eq!(code_of(&mut db, request, Mode::Query), "AERO_QUERY_INVALID", "{request}");
    }
    for request in &cases[..2] {
        assert_eq!(code_of(&mut db, request, Mode::Explain), "AERO_QUERY_INVALID", "{request}");
    }
    // 256 bytes is the cap itself: a valid value that matches nothing.
    let at_cap = "n".repeat(256);
    let request = format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"name":"{at_cap}"}},"limit":1}}"#);
    assert_eq!(ok(&mut db, &request), json!([]));
}

#[test]
fn checks_run_in_the_documented_order() {
    let test = TestDb::with_user_schema();
    let mut db = test.open();
    let query = |rest: &str| format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1",{rest}}}"#);
    let cases = [
        // An unknown top-level field comes before everything in the query.
        (query(r#""filter":{"nope":1},"limit":0,"sort":"age","x":1"#), "AERO_QUERY_INVALID"),
        // The filter's shape, then the limit, then each predicate, then the sort.
        (query(r#""filter":[],"limit":0"#), "AERO_QUERY_INVALID"),
        (query(r#""filter":{"nope":1},"limit":0,"sort":"nope""#), "AERO_QUERY_LIMIT_REQUIRED"),
        (query(r#""filter":{"nope":1},"limit":1,"sort":"nope""#), "AERO_QUERY_INVALID"),
        (query(r#""filter":{"name":"a","email":1},"limit":1,"sort":"nope""#), "AERO_QUERY_INVALID"),
        (query(r#""filter":{"age":1},"limit":1,"sort":"nope""#), "AERO_QUERY_INVALID"),
        (query(r#""filter":{"age":1},"limit":1,"sort":{"field":"age","order":"up"}"#), "AERO_QUERY_INVALID"),
        (query(r#""filter":{},"limit":1"#), "AERO_QUERY_UNBOUNDED"),
    ];
    for (request, expected) in &cases {
        assert_eq!(code_of(&mut db, request, Mode::Query), *expected, "{request}");
        assert_eq!(code_of(&mut db, request, Mode::Explain), *expected, "{request}");
    }
}

#[test]
fn negative_zero_equals_zero_in_filters_and_indexes() {
    let test = TestDb::new(&[("f_v1.json", F_SCHEMA)]);
    let mut db = test.open();
    for (id, x) in [(1, "-0.0"), (2, "0.0"), (3, "0"), (4, "1.5"), (5, "-1.5")] {
        ok(&mut db, &format!(r#"{{"op":"insert","schema_id":"f","schema_version":"v1","document":{{"_id":{id},"x":{x}}}}}"#));
    }
    let query = |filter: &str| format!(r#"{{"op":"query","schema_id":"f","schema_version":"v1","filter":{{"x":{filter}}},"limit":10}}"#);
    let ids = |db: &mut aerodb_engine::Database, filter: &str| -> Vec<i64> {
        ok(db, &query(filter)).as_array().unwrap().iter().map(|document| document["_id"].as_i64().unwrap()).collect()
    };
    // Stored as written: -0.0 stays -0.0, the integer 0 becomes 0.0.
    let stored = ok(&mut db, r#"{"op":"query","schema_id":"f","schema_version":"v1","filter":{"_id":{"$lte":3}},"limit":10}"#);
    assert_eq!(serde_json::to_string(&stored).unwrap(), r#"[{"_id":1,"x":-0.0},{"_id":2,"x":0.0},{"_id":3,"x":0.0}]"#);
    assert_eq!(ids(&mut db, "0.0"), vec![1, 2, 3]);
    assert_eq!(ids(&mut db, "-0.0"), vec![1, 2, 3]);
    assert_eq!(ids(&mut db, r#"{"$gte":0.0,"$lte":-0.0}"#), vec![1, 2, 3]);
    assert_eq!(ids(&mut db, r#"{"$gte":-0.0,"$lte":0.0}"#), vec![1, 2, 3]);
    assert_eq!(ids(&mut db, r#"{"$gt":-0.0}"#), vec![4]);
    assert_eq!(ids(&mut db, r#"{"$lt":0.0}"#), vec![5]);
    // Both of these are the empty range 0 < x <= 0: refused alike.
    for filter in [r#"{"$gt":-0.0,"$lte":0.0}"#, r#"{"$gt":0.0,"$lte":-0.0}"#, r#"{"$gte":0.0,"$lt":-0.0}"#] {
        assert_eq!(code_of(&mut db, &query(filter), Mode::Query), "AERO_QUERY_INVALID", "{filter}");
    }
}
