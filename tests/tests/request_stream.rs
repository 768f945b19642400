//! The request stream through the real binary: limits per request (not per
//! line), strict JSON (duplicate keys, exact numbers) and the resume rule
//! after malformed input (docs/API_SPEC.md, "The request stream").

use aerodb_tests::{find_user, insert_user, responses, Sandbox};
use serde_json::json;

const LIMIT: usize = 16 * 1024 * 1024;

#[test]
fn a_line_longer_than_the_limit_answers_every_small_request_on_it() {
    let sandbox = Sandbox::with_user_schema();
    assert!(sandbox.aerodb(&["query"], &insert_user("1", "alice", 30)).status.success());
    let query = find_user("1");
    let query = query.trim_end();
    let mut line = String::new();
    for _ in 0..500 {
        line.push_str(query);
        line.push(' ');
    }
    line.push_str(&" ".repeat(LIMIT + 1024));
    for _ in 0..500 {
        line.push_str(query);
        line.push(' ');
    }
    line.push('\n');
    let output = sandbox.aerodb(&["query"], &line);
    let lines = responses(&output);
    assert_eq!(lines.len(), 1000);
    assert!(lines.iter().all(|line| line["data"] == json!([{"_id": "1", "name": "alice", "age": 30}])));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn an_oversized_request_costs_only_its_own_answer() {
    let sandbox = Sandbox::with_user_schema();
    let small = insert_user("1", "alice", 30);
    let mut big = String::from(r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"2","name":""#);
    big.push_str(&"x".repeat(LIMIT + 10));
    big.push_str(r#"","age":1}}"#);
    let line = format!("{} {big} {}\n", small.trim_end(), find_user("1").trim_end());
    let wal_before = sandbox.wal_len();
    let output = sandbox.aerodb(&["query"], &line);
    let lines = responses(&output);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], json!({"status": "ok", "data": []}));
    assert_eq!(lines[1]["code"], "AERO_QUERY_INVALID");
    assert!(lines[1]["message"].as_str().unwrap().contains("larger than 16777216"), "{}", lines[1]);
    assert_eq!(lines[2]["data"], json!([{"_id": "1", "name": "alice", "age": 30}]));
    // Only the small insert reached the WAL.
    assert!(sandbox.wal_len() > wal_before && sandbox.wal_len() < wal_before + 64 * 1024);
}

#[test]
fn duplicate_keys_are_refused_everywhere() {
    let sandbox = Sandbox::with_user_schema();
    let requests = [
        // A duplicate op must not run as the last one.
        r#"{"op":"insert","op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":"1"},"limit":1,"document":{"_id":"1","name":"a","age":1}}"#,
        r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"1","name":"a","name":"b","age":1}}"#,
        r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":1,"age":2},"limit":1}"#,
    ];
    let stdin: String = requests.iter().map(|request| format!("{request}\n")).collect();
    let wal_before = sandbox.wal_len();
    let lines = responses(&sandbox.aerodb(&["query"], &stdin));
    assert_eq!(lines[0]["code"], "AERO_QUERY_INVALID", "{}", lines[0]);
    assert_eq!(lines[1]["code"], "AERO_SCHEMA_VALIDATION_FAILED", "{}", lines[1]);
    assert_eq!(lines[1]["details"]["path"], "name", "{}", lines[1]);
    assert_eq!(lines[2]["code"], "AERO_QUERY_INVALID", "{}", lines[2]);
    assert_eq!(sandbox.wal_len(), wal_before, "nothing reached the WAL");

    // Config and schema files.
    sandbox.write_config(r#"{"data_dir": "./data", "data_dir": "./other"}"#);
    let output = sandbox.aerodb(&["query"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AERO_CONFIG_INVALID"));
    sandbox.write_config(r#"{"data_dir": "./data"}"#);
    let schema = sandbox.path().join("dup.json");
    std::fs::write(
        &schema,
        r#"{"schema_id":"d","schema_version":"v1","fields":{"_id":{"type":"int"},"_id":{"type":"string"}},"indexes":["_id"]}"#,
    )
    .unwrap();
    let output = sandbox.aerodb(&["schema", "add", schema.to_str().unwrap()], "");
    assert_eq!(responses(&output)[0]["code"], "AERO_SCHEMA_INVALID", "{}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn numbers_without_an_exact_value_are_refused_and_floats_are_kept_exactly() {
    let sandbox = Sandbox::with_user_schema();
    sandbox.write_schema(
        "m_v1.json",
        r#"{"schema_id":"m","schema_version":"v1","fields":{"_id":{"type":"int"},"f":{"type":"float"}},"indexes":["_id","f"]}"#,
    );
    let insert = |id: i64, f: &str| format!(r#"{{"op":"insert","schema_id":"m","schema_version":"v1","document":{{"_id":{id},"f":{f}}}}}"#);
    let requests = [
        insert(1, "1000000000000000.5"),
        insert(2, "18446744073709551617"),
        insert(3, "123456789012345678901234567890"),
        insert(4, "-9223372036854775809"),
        insert(5, "1e-400"),
        insert(6, "9223372036854775808"),
        insert(7, "-0"),
        r#"{"op":"query","schema_id":"m","schema_version":"v1","filter":{"f":9223372036854775808},"limit":5}"#.to_string(),
        r#"{"op":"query","schema_id":"m","schema_version":"v1","filter":{"_id":{"$lte":7}},"limit":10}"#.to_string(),
    ];
    let stdin: String = requests.iter().map(|request| format!("{request}\n")).collect();
    let lines = responses(&sandbox.aerodb(&["query"], &stdin));
    assert_eq!(lines[0]["status"], "ok");
    for line in &lines[1..5] {
        assert_eq!(line["code"], "AERO_SCHEMA_VALIDATION_FAILED", "{line}");
        assert_eq!(line["details"]["path"], "f", "{line}");
    }
    assert_eq!(lines[5]["status"], "ok", "{}", lines[5]);
    assert_eq!(lines[6]["status"], "ok", "{}", lines[6]);
    assert_eq!(lines[7]["data"], json!([{"_id": 6, "f": 9223372036854775808.0}]), "{}", lines[7]);
    let stored = serde_json::to_string(&lines[8]["data"]).unwrap();
    assert_eq!(stored, r#"[{"_id":1,"f":1000000000000000.5},{"_id":6,"f":9.223372036854776e+18},{"_id":7,"f":0.0}]"#);
}

#[test]
fn an_open_value_gives_way_to_the_next_line_that_starts_a_request() {
    let sandbox = Sandbox::with_user_schema();
    assert!(sandbox.aerodb(&["query"], &insert_user("1", "alice", 30)).status.success());
    let query = find_user("1");
    let open = query.trim_end().trim_end_matches('}');
    let stdin = format!("{open}\n{query}{query}");
    let lines = responses(&sandbox.aerodb(&["query"], &stdin));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["code"], "AERO_QUERY_INVALID");
    assert_eq!(lines[0]["details"]["line"], 2);
    assert_eq!(lines[1]["data"][0]["_id"], "1");
    assert_eq!(lines[2]["data"][0]["_id"], "1");
}
