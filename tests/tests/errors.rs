//! Every error code a user can provoke from the command line, with its exit
//! code: 0 every request succeeded, 1 some request failed, 2 fatal, 64 usage.
//! Fatal errors are one JSON error object on stderr and nothing on stdout;
//! request errors are one response line each on stdout.

use std::path::{Component, Path, PathBuf};
use std::process::Output;

use aerodb_tests::{binary, fatal_error, find_user, insert_user, responses, Sandbox, INSTALL_GUIDE_CONFIG, USER_SCHEMA};
use serde_json::{json, Value};

/// A second schema with nested fields, an int `_id`, a float and fields
/// that are not indexed.
const PROFILE_SCHEMA: &str = r#"{
"schema_id": "profile",
"schema_version": "v1",
"fields": {
"_id": { "type": "int" },
"email": { "type": "string" },
"bio": { "type": "string", "required": false },
"score": { "type": "float" },
"address": { "type": "object", "fields": { "city": { "type": "string" }, "zip": { "type": "int" } } },
"tags": { "type": "array", "items": { "type": "string" } }
},
"indexes": ["email", "score"]
}
"#;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a fatal run: exit 2, nothing on stdout, the error object on stderr.
fn assert_fatal(output: &Output, code: &str) -> Value {
    assert_eq!(output.status.code(), Some(2), "expected exit 2 ({code}); stderr: {}", stderr(output));
    assert!(output.stdout.is_empty(), "a fatal error prints nothing on stdout: {}", String::from_utf8_lossy(&output.stdout));
    let error = fatal_error(output);
    assert_eq!(error["status"], "error", "{error}");
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["severity"], "FATAL", "{error}");
    assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()), "{error}");
    error
}

/// Asserts a request error response.
fn assert_reject(response: &Value, code: &str) {
    assert_eq!(response["status"], "error", "{response}");
    assert_eq!(response["code"], code, "{response}");
    assert_eq!(response["severity"], "REJECT", "{response}");
    assert!(response["message"].as_str().is_some_and(|message| !message.is_empty()), "{response}");
    let allowed = ["status", "code", "severity", "message", "invariant", "details"];
    for key in response.as_object().unwrap().keys() {
        assert!(allowed.contains(&key.as_str()), "unexpected key {key} in {response}");
    }
}

/// Runs `aerodb query` with one request per line and checks the exit code
/// and that there is one response per request.
fn run_requests(sandbox: &Sandbox, requests: &[&str], exit: i32) -> Vec<Value> {
    let stdin: String = requests.iter().map(|request| format!("{request}\n")).collect();
    let output = sandbox.aerodb(&["query"], &stdin);
    assert_eq!(output.status.code(), Some(exit), "stdout: {} stderr: {}", String::from_utf8_lossy(&output.stdout), stderr(&output));
    let lines = responses(&output);
    assert_eq!(lines.len(), requests.len(), "one response per request: {lines:?}");
    lines
}

/// True if `reported` (a path string from an error's details) names `expected`.
fn same_dir(reported: &Value, expected: &Path) -> bool {
    let normal = |path: &Path| -> PathBuf { path.components().filter(|component| *component != Component::CurDir).collect() };
    reported.as_str().is_some_and(|text| normal(Path::new(text)) == normal(expected))
}

fn with_profile_schema() -> Sandbox {
    let sandbox = Sandbox::with_user_schema();
    sandbox.write_schema("profile_v1.json", PROFILE_SCHEMA);
    sandbox
}

// ---- config ---------------------------------------------------------------

#[test]
fn config_invalid_missing_file() {
    let sandbox = Sandbox::new();
    std::fs::remove_file(sandbox.config()).unwrap();
    for command in ["init", "start", "query", "explain"] {
        let output = sandbox.aerodb(&[command], "");
        let error = assert_fatal(&output, "AERO_CONFIG_INVALID");
        assert!(error["message"].as_str().unwrap().contains("aerodb.json"), "names the file: {error}");
    }
    assert!(!sandbox.data().exists());
}

#[test]
fn config_invalid_malformed_unknown_field_zero_wrong_type() {
    let cases = [
        ("{\"data_dir\": \"./data\",", None),
        ("{\"data_dir\": \"./data\", \"cache_size\": 5}", None),
        ("{\"data_dir\": \"./data\", \"max_memory_bytes\": 0}", Some("max_memory_bytes")),
        ("{\"data_dir\": \"./data\", \"max_wal_size_bytes\": 0}", Some("max_wal_size_bytes")),
        ("{\"data_dir\": \"./data\", \"max_memory_bytes\": -5}", Some("max_memory_bytes")),
        ("{\"data_dir\": \"./data\", \"max_memory_bytes\": \"512\"}", Some("max_memory_bytes")),
        ("{\"wal_sync_mode\": \"fsync\"}", Some("data_dir")),
        ("[]", None),
    ];
    for (config, field) in cases {
        let sandbox = Sandbox::with_config(config);
        let error = assert_fatal(&sandbox.aerodb(&["init"], ""), "AERO_CONFIG_INVALID");
        if let Some(field) = field {
            assert_eq!(error["details"]["field"], field, "config {config}: {error}");
        }
        assert!(!sandbox.data().exists(), "no file is created before the config is valid ({config})");
    }
    // The same for a boot of an existing database.
    let sandbox = Sandbox::with_user_schema();
    sandbox.write_config("{\"data_dir\": \"./data\", \"unknown\": true}");
    assert_fatal(&sandbox.aerodb(&["query"], ""), "AERO_CONFIG_INVALID");
}

#[test]
fn config_unsafe_sync_mode() {
    for mode in ["none", "async", "fdatasync_later"] {
        let sandbox = Sandbox::with_config(&format!("{{\"data_dir\": \"./data\", \"wal_sync_mode\": \"{mode}\"}}"));
        let error = assert_fatal(&sandbox.aerodb(&["init"], ""), "AERO_CONFIG_UNSAFE");
        assert_eq!(error["details"]["field"], "wal_sync_mode", "{error}");
        assert!(!sandbox.data().exists());
    }
}

#[test]
fn config_immutable_after_init() {
    let sandbox = Sandbox::with_user_schema();
    sandbox.write_config(&INSTALL_GUIDE_CONFIG.replace("536870912", "1234567"));
    let error = assert_fatal(&sandbox.aerodb(&["query"], &find_user("1")), "AERO_CONFIG_IMMUTABLE");
    assert_eq!(error["details"]["field"], "max_memory_bytes", "{error}");
    assert_eq!(error["details"]["old"], "536870912", "{error}");
    assert_eq!(error["details"]["new"], "1234567", "{error}");
    assert_fatal(&sandbox.start(&[]).finish(), "AERO_CONFIG_IMMUTABLE");
    // Restoring the frozen value boots again.
    sandbox.write_config(INSTALL_GUIDE_CONFIG);
    let output = sandbox.aerodb(&["query"], &find_user("1"));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // An omitted optional field takes its default, which is the frozen value here.
    sandbox.write_config("{\"data_dir\": \"./data\"}");
    assert_eq!(sandbox.aerodb(&["query"], &find_user("1")).status.code(), Some(0));
    sandbox.write_config("{\"data_dir\": \"./data\", \"max_wal_size_bytes\": 4096}");
    let error = assert_fatal(&sandbox.aerodb(&["query"], ""), "AERO_CONFIG_IMMUTABLE");
    assert_eq!(error["details"]["field"], "max_wal_size_bytes", "{error}");
}

// ---- storage --------------------------------------------------------------

#[test]
fn storage_uninitialized() {
    let sandbox = Sandbox::new();
    for command in ["start", "query", "explain"] {
        let error = assert_fatal(&sandbox.aerodb(&[command], ""), "AERO_STORAGE_UNINITIALIZED");
        assert!(same_dir(&error["details"]["data_dir"], &sandbox.data()), "{error}");
    }
    std::fs::write(sandbox.path().join("schema.json"), USER_SCHEMA).unwrap();
    assert_fatal(&sandbox.aerodb(&["schema", "add", "schema.json"], ""), "AERO_STORAGE_UNINITIALIZED");
    assert!(!sandbox.data().exists(), "a failed boot creates nothing");
    // An empty directory is not a database either.
    std::fs::create_dir(sandbox.data()).unwrap();
    assert_fatal(&sandbox.aerodb(&["query"], ""), "AERO_STORAGE_UNINITIALIZED");
}

#[test]
fn storage_exists() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.data()).unwrap();
    let error = assert_fatal(&sandbox.aerodb(&["init"], ""), "AERO_STORAGE_EXISTS");
    assert!(same_dir(&error["details"]["data_dir"], &sandbox.data()), "{error}");
    assert_eq!(std::fs::read_dir(sandbox.data()).unwrap().count(), 0, "init never touches an existing directory");
}

#[test]
fn storage_locked_while_start_runs() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    // One round trip proves the server has booted and holds the lock.
    assert_eq!(server.request(&insert_user("1", "alice", 30)), Some(json!({"status": "ok", "data": []})));
    for command in ["query", "explain", "start"] {
        let output = sandbox.aerodb(&[command], &find_user("1"));
        let error = assert_fatal(&output, "AERO_STORAGE_LOCKED");
        assert!(same_dir(&error["details"]["data_dir"], &sandbox.data()), "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&*sandbox.path().to_string_lossy()) && message.contains("data"),
            "the message names the directory: {message}"
        );
    }
    // The server is unaffected and still serves.
    assert_eq!(server.request(&find_user("1")).unwrap()["data"][0]["name"], "alice");
    let finished = server.finish();
    assert_eq!(finished.status.code(), Some(0), "{}", stderr(&finished));
    // Released on exit.
    assert_eq!(sandbox.aerodb(&["query"], &find_user("1")).status.code(), Some(0));
}

// ---- schemas --------------------------------------------------------------

#[test]
fn schema_invalid_file_at_boot_names_the_file() {
    let malformed = [
        ("broken_v1.json", "{\"schema_id\": \"broken\","),
        ("broken_v1.json", "{\"schema_id\": \"broken\", \"schema_version\": \"v1\", \"fields\": {\"name\": {\"type\": \"string\"}}}"),
        ("broken_v1.json", "{\"schema_id\": \"broken\", \"schema_version\": \"v1\", \"fields\": {\"_id\": {\"type\": \"uuid\"}}}"),
        ("broken_v1.json", "{\"schema_id\": \"broken\", \"schema_version\": \"v1\", \"fields\": {\"_id\": {\"type\": \"string\"}}, \"indexes\": [\"nope\"]}"),
        ("other_v2.json", "{\"schema_id\": \"broken\", \"schema_version\": \"v1\", \"fields\": {\"_id\": {\"type\": \"string\"}}}"),
        ("notes.txt", "hello"),
    ];
    for (name, text) in malformed {
        let sandbox = Sandbox::with_user_schema();
        sandbox.write_schema(name, text);
        let output = sandbox.aerodb(&["query"], &find_user("1"));
        let error = assert_fatal(&output, "AERO_SCHEMA_INVALID");
        let file = error["details"]["file"].as_str().unwrap_or_else(|| panic!("details.file missing: {error}"));
        assert!(file.ends_with(name), "names the file {name}: {error}");
        assert!(error["message"].as_str().unwrap().contains(name), "{error}");
    }
}

#[test]
fn schema_add_rejects_an_invalid_file_with_exit_1() {
    let sandbox = Sandbox::with_user_schema();
    let cases = [
        ("bad.json", "{ not json"),
        ("bad.json", "{\"schema_id\": \"x\", \"schema_version\": \"v1\", \"fields\": {\"_id\": {\"type\": \"float\"}}}"),
        ("bad.json", "{\"schema_id\": \"../x\", \"schema_version\": \"v1\", \"fields\": {\"_id\": {\"type\": \"string\"}}}"),
        ("bad.json", "{\"schema_id\": \"x\", \"schema_version\": \"v1/../../y\", \"fields\": {\"_id\": {\"type\": \"string\"}}}"),
        ("bad.json", "{\"schema_id\": \"x\", \"schema_version\": \"v1\", \"fields\": {\"_id\": {\"type\": \"string\"}, \"a.b\": {\"type\": \"int\"}}}"),
    ];
    let before: Vec<_> =
        std::fs::read_dir(sandbox.data().join("metadata/schemas")).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    for (name, text) in cases {
        std::fs::write(sandbox.path().join(name), text).unwrap();
        let output = sandbox.aerodb(&["schema", "add", name], "");
        assert_eq!(output.status.code(), Some(1), "{text}: {}", stderr(&output));
        let lines = responses(&output);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_reject(&lines[0], "AERO_SCHEMA_INVALID");
    }
    // A missing file is the same code.
    let output = sandbox.aerodb(&["schema", "add", "missing.json"], "");
    assert_eq!(output.status.code(), Some(1));
    assert_reject(&responses(&output)[0], "AERO_SCHEMA_INVALID");
    let after: Vec<_> =
        std::fs::read_dir(sandbox.data().join("metadata/schemas")).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(before, after, "nothing was installed");
    assert!(!sandbox.path().join("x_v1.json").exists() && !sandbox.data().join("metadata/x_v1.json").exists());
}

#[test]
fn schema_immutable_at_boot_and_in_schema_add() {
    let sandbox = Sandbox::with_user_schema();
    // The first boot records the file's hash.
    assert_eq!(sandbox.aerodb(&["query"], &insert_user("1", "alice", 30)).status.code(), Some(0));
    let changed = USER_SCHEMA.replace("\"indexes\": [\"_id\", \"name\", \"age\"]", "\"indexes\": [\"_id\", \"age\"]");
    assert_ne!(changed, USER_SCHEMA);
    sandbox.write_schema("user_v1.json", &changed);
    let error = assert_fatal(&sandbox.aerodb(&["query"], &find_user("1")), "AERO_SCHEMA_IMMUTABLE");
    assert!(error["details"]["file"].as_str().unwrap().ends_with("user_v1.json"), "{error}");
    // Even one byte of whitespace.
    sandbox.write_schema("user_v1.json", &format!("{USER_SCHEMA}\n"));
    assert_fatal(&sandbox.aerodb(&["query"], &find_user("1")), "AERO_SCHEMA_IMMUTABLE");
    sandbox.write_schema("user_v1.json", USER_SCHEMA);
    assert_eq!(sandbox.aerodb(&["query"], &find_user("1")).status.code(), Some(0));

    // schema add: different content for an existing version is refused.
    std::fs::write(sandbox.path().join("user_v1_changed.json"), &changed).unwrap();
    let output = sandbox.aerodb(&["schema", "add", "user_v1_changed.json"], "");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines = responses(&output);
    assert_eq!(lines.len(), 1);
    assert_reject(&lines[0], "AERO_SCHEMA_IMMUTABLE");
    assert_eq!(std::fs::read_to_string(sandbox.data().join("metadata/schemas/user_v1.json")).unwrap(), USER_SCHEMA);
}

#[test]
fn schema_add_installs_then_is_a_no_op_and_is_usable() {
    let sandbox = Sandbox::with_user_schema();
    std::fs::write(sandbox.path().join("profile.json"), PROFILE_SCHEMA).unwrap();
    let output = sandbox.aerodb(&["schema", "add", "profile.json"], "");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        responses(&output),
        vec![json!({"status": "ok", "data": {"schema_id": "profile", "schema_version": "v1", "installed": true}})]
    );
    assert_eq!(std::fs::read_to_string(sandbox.data().join("metadata/schemas/profile_v1.json")).unwrap(), PROFILE_SCHEMA);
    let again = sandbox.aerodb(&["schema", "add", "profile.json"], "");
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        responses(&again),
        vec![json!({"status": "ok", "data": {"schema_id": "profile", "schema_version": "v1", "installed": false}})]
    );

    let insert = r#"{"op":"insert","schema_id":"profile","schema_version":"v1","document":{"_id":7,"email":"a@b.c","score":10,"address":{"city":"Oslo","zip":150},"tags":["x","y"]}}"#;
    let query = r#"{"op":"query","schema_id":"profile","schema_version":"v1","filter":{"email":"a@b.c"},"limit":5}"#;
    let lines = run_requests(&sandbox, &[insert, query], 0);
    assert_eq!(lines[0], json!({"status": "ok", "data": []}));
    // 10 for a float field is stored and returned as 10.0.
    assert_eq!(lines[1]["data"][0]["score"].as_f64(), Some(10.0), "{}", lines[1]);
    assert!(lines[1]["data"][0]["score"].is_f64(), "{}", lines[1]);
    assert_eq!(lines[1]["data"][0]["address"], json!({"city": "Oslo", "zip": 150}));
}

#[test]
fn schema_required_unknown_schema_unknown_version() {
    let sandbox = Sandbox::with_user_schema();
    let lines = run_requests(
        &sandbox,
        &[
            r#"{"op":"insert","document":{"_id":"1","name":"a","age":1}}"#,
            r#"{"op":"insert","schema_id":"user","document":{"_id":"1","name":"a","age":1}}"#,
            r#"{"op":"query","schema_version":"v1","filter":{"_id":"1"},"limit":1}"#,
            r#"{"op":"insert","schema_id":5,"schema_version":"v1","document":{"_id":"1","name":"a","age":1}}"#,
            r#"{"op":"insert","schema_id":"nope","schema_version":"v1","document":{"_id":"1","name":"a","age":1}}"#,
            r#"{"op":"query","schema_id":"../x","schema_version":"v1","filter":{"_id":"1"},"limit":1}"#,
            r#"{"op":"insert","schema_id":"user","schema_version":"v9","document":{"_id":"1","name":"a","age":1}}"#,
            r#"{"op":"delete","schema_id":"user","schema_version":"../../v1","_id":"1"}"#,
        ],
        1,
    );
    for line in &lines[..4] {
        assert_reject(line, "AERO_SCHEMA_REQUIRED");
    }
    assert_reject(&lines[4], "AERO_UNKNOWN_SCHEMA");
    assert_eq!(lines[4]["details"]["schema_id"], "nope");
    assert_reject(&lines[5], "AERO_UNKNOWN_SCHEMA");
    assert_reject(&lines[6], "AERO_UNKNOWN_SCHEMA_VERSION");
    assert_eq!(lines[6]["details"]["schema_version"], "v9");
    assert_reject(&lines[7], "AERO_UNKNOWN_SCHEMA_VERSION");
}

#[test]
fn schema_validation_failures_carry_path_expected_got() {
    let sandbox = with_profile_schema();
    let wal_before = sandbox.wal_len();
    let user = |document: &str| format!(r#"{{"op":"insert","schema_id":"user","schema_version":"v1","document":{document}}}"#);
    let profile = |document: &str| format!(r#"{{"op":"insert","schema_id":"profile","schema_version":"v1","document":{document}}}"#);
    let cases: Vec<(String, &str, &str)> = vec![
        (user(r#"{"_id":"1","age":30}"#), "name", "missing"),
        (user(r#"{"_id":"1","name":"a","age":30,"email":"x"}"#), "email", "string"),
        (user(r#"{"_id":"1","name":null,"age":30}"#), "name", "null"),
        (user(r#"{"_id":"1","name":"a","age":30.0}"#), "age", "float"),
        (user(r#"{"_id":"1","name":"a","age":"30"}"#), "age", "string"),
        (user(r#"{"_id":"1","name":"a","age":18446744073709551615}"#), "age", "i64"),
        (user(r#"{"_id":"1","name":"a","age":99999999999999999999999}"#), "age", "exact"),
        (user(r#"{"_id":1,"name":"a","age":30}"#), "_id", "int"),
        (user(r#"{"name":"a","age":30}"#), "_id", "missing"),
        (user(r#"["_id","1"]"#), "", "array"),
        (profile(r#"{"_id":1,"email":"e","score":1.5,"address":{"city":5,"zip":1},"tags":[]}"#), "address.city", "int"),
        (
            profile(r#"{"_id":1,"email":"e","score":1.5,"address":{"city":"c","zip":1,"country":"no"},"tags":[]}"#),
            "address.country",
            "string",
        ),
        (profile(r#"{"_id":1,"email":"e","score":1.5,"address":{"city":"c"},"tags":[]}"#), "address.zip", "missing"),
        (profile(r#"{"_id":1,"email":"e","score":1.5,"address":{"city":"c","zip":1},"tags":["a",2]}"#), "tags[1]", "int"),
        (profile(r#"{"_id":1,"email":"e","score":true,"address":{"city":"c","zip":1},"tags":[]}"#), "score", "bool"),
    ];
    let requests: Vec<&str> = cases.iter().map(|(request, _, _)| request.as_str()).collect();
    let lines = run_requests(&sandbox, &requests, 1);
    for ((request, path, got), line) in cases.iter().zip(&lines) {
        assert_reject(line, "AERO_SCHEMA_VALIDATION_FAILED");
        assert_eq!(line["details"]["path"], *path, "{request}: {line}");
        assert!(line["details"]["expected"].is_string(), "{request}: {line}");
        assert!(line["details"]["got"].as_str().is_some_and(|text| text.contains(got)), "{request}: got should mention '{got}': {line}");
    }
    // An optional field may be absent; nothing rejected reached the WAL.
    assert_eq!(sandbox.wal_len(), wal_before, "rejected documents must not reach the WAL");
    let ok = profile(r#"{"_id":1,"email":"e","score":1.5,"address":{"city":"c","zip":1},"tags":[]}"#);
    assert_eq!(run_requests(&sandbox, &[&ok], 0)[0], json!({"status": "ok", "data": []}));
    assert!(sandbox.wal_len() > wal_before);
}

#[test]
fn schema_validation_rejects_an_oversized_document_with_its_size() {
    let sandbox = Sandbox::with_user_schema();
    let wal_before = sandbox.wal_len();
    // Unindexed strings are not length-capped; the document cap is.
    let profile = r#"{"schema_id":"blob","schema_version":"v1","fields":{"_id":{"type":"string"},"body":{"type":"string"}}}"#;
    sandbox.write_schema("blob_v1.json", profile);
    let body = "x".repeat(2 * 1024 * 1024);
    let request = format!(r#"{{"op":"insert","schema_id":"blob","schema_version":"v1","document":{{"_id":"big","body":"{body}"}}}}"#);
    let lines = run_requests(&sandbox, &[&request], 1);
    assert_reject(&lines[0], "AERO_SCHEMA_VALIDATION_FAILED");
    assert!(lines[0]["details"]["size"].as_u64().is_some_and(|size| size > 2 * 1024 * 1024), "{}", lines[0]["details"]);
    assert_eq!(sandbox.wal_len(), wal_before);
}

// ---- queries --------------------------------------------------------------

#[test]
fn query_invalid_variants() {
    let sandbox = Sandbox::with_user_schema();
    assert_eq!(run_requests(&sandbox, &[&insert_user("1", "alice", 30)], 0)[0]["status"], "ok");
    let q = |rest: &str| format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1",{rest}}}"#);
    let cases = [
        r#"{"op":"frobnicate","schema_id":"user","schema_version":"v1"}"#.to_string(),
        r#"{"schema_id":"user","schema_version":"v1","filter":{},"limit":1}"#.to_string(),
        r#"{"op":7,"schema_id":"user","schema_version":"v1"}"#.to_string(),
        r#"[1,2,3]"#.to_string(),
        r#""a string""#.to_string(),
        q(r#""filter":{"age":30},"limit":1,"timeout":5"#),
        r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"9","name":"x","age":1},"upsert":true}"#.to_string(),
        r#"{"op":"delete","schema_id":"user","schema_version":"v1"}"#.to_string(),
        r#"{"op":"insert","schema_id":"user","schema_version":"v1"}"#.to_string(),
        q(r#""limit":1"#),
        q(r#""filter":[],"limit":1"#),
        q(r#""filter":{"age":{"$ne":30}},"limit":1"#),
        q(r#""filter":{"age":{"$in":[30]}},"limit":1"#),
        q(r#""filter":{"$or":[{"age":30},{"name":"bob"}]},"limit":1"#),
        q(r#""filter":{"age":{"$gt":40,"$lt":20}},"limit":1"#),
        q(r#""filter":{"age":{"$gt":30,"$lt":30}},"limit":1"#),
        q(r#""filter":{"age":{}},"limit":1"#),
        q(r#""filter":{"age":"30"},"limit":1"#),
        q(r#""filter":{"age":30.5},"limit":1"#),
        q(r#""filter":{"name":{"$gt":"a"}},"limit":1"#),
        q(r#""filter":{"name":null},"limit":1"#),
        q(r#""filter":{"name":["a"]},"limit":1"#),
        q(r#""filter":{"email":"x"},"limit":1"#),
        q(r#""filter":{"age":{"$gt":1,"$gte":2}},"limit":1"#),
        q(r#""filter":{},"limit":1,"sort":"nope""#),
        q(r#""filter":{},"limit":1,"sort":{"field":"age","order":"up"}"#),
        q(r#""filter":{},"limit":1,"sort":5"#),
    ];
    let requests: Vec<&str> = cases.iter().map(String::as_str).collect();
    let wal_before = sandbox.wal_len();
    let lines = run_requests(&sandbox, &requests, 1);
    for (request, line) in requests.iter().zip(&lines) {
        assert_eq!(line["code"], "AERO_QUERY_INVALID", "{request}: {line}");
        assert_reject(line, "AERO_QUERY_INVALID");
    }
    assert_eq!(lines[0]["details"]["op"], "frobnicate");
    assert_eq!(lines[5]["details"]["field"], "timeout");
    assert_eq!(lines[6]["details"]["field"], "upsert");
    assert_eq!(sandbox.wal_len(), wal_before);
}

#[test]
fn malformed_json_line_then_a_valid_request_gives_two_responses() {
    let sandbox = Sandbox::with_user_schema();
    let stdin = format!("{{\"op\": \"insert\", oops\n{}\n", insert_user("1", "alice", 30));
    let output = sandbox.aerodb(&["query"], &stdin);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines = responses(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_reject(&lines[0], "AERO_QUERY_INVALID");
    assert_eq!(lines[1], json!({"status": "ok", "data": []}));
    // Truncated JSON at the end of input is malformed too.
    let output = sandbox.aerodb(&["query"], &format!("{}\n{{\"op\":", find_user("1")));
    assert_eq!(output.status.code(), Some(1));
    let lines = responses(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["data"][0]["name"], "alice");
    assert_reject(&lines[1], "AERO_QUERY_INVALID");
}

#[test]
fn query_unbounded_unindexed_limit_sort() {
    let sandbox = with_profile_schema();
    let q = |schema: &str, rest: &str| format!(r#"{{"op":"query","schema_id":"{schema}","schema_version":"v1",{rest}}}"#);
    let cases = [
        (q("user", r#""filter":{},"limit":10"#), "AERO_QUERY_UNBOUNDED"),
        (q("profile", r#""filter":{"bio":"x"},"limit":10"#), "AERO_QUERY_UNINDEXED_FIELD"),
        (q("profile", r#""filter":{"email":"e","bio":"x"},"limit":10"#), "AERO_QUERY_UNINDEXED_FIELD"),
        (q("user", r#""filter":{"age":30}"#), "AERO_QUERY_LIMIT_REQUIRED"),
        (q("user", r#""filter":{"age":30},"limit":0"#), "AERO_QUERY_LIMIT_REQUIRED"),
        (q("user", r#""filter":{"age":30},"limit":10001"#), "AERO_QUERY_LIMIT_REQUIRED"),
        (q("user", r#""filter":{"age":30},"limit":"10""#), "AERO_QUERY_LIMIT_REQUIRED"),
        (q("user", r#""filter":{"age":30},"limit":-1"#), "AERO_QUERY_LIMIT_REQUIRED"),
        (q("user", r#""filter":{"age":30},"limit":2.5"#), "AERO_QUERY_LIMIT_REQUIRED"),
        (q("user", r#""filter":{"age":30},"limit":null"#), "AERO_QUERY_LIMIT_REQUIRED"),
        (q("profile", r#""filter":{},"limit":10,"sort":"bio""#), "AERO_QUERY_SORT_NOT_INDEXED"),
        (q("profile", r#""filter":{"email":"e"},"limit":10,"sort":{"field":"bio","order":"desc"}"#), "AERO_QUERY_SORT_NOT_INDEXED"),
        (q("profile", r#""filter":{},"limit":10,"sort":[{"field":"bio"}]"#), "AERO_QUERY_SORT_NOT_INDEXED"),
    ];
    let requests: Vec<&str> = cases.iter().map(|(request, _)| request.as_str()).collect();
    let lines = run_requests(&sandbox, &requests, 1);
    for ((request, code), line) in cases.iter().zip(&lines) {
        assert_eq!(line["code"], *code, "{request}: {line}");
        assert_reject(line, code);
    }
    assert_eq!(lines[0]["invariant"], "Q1", "{}", lines[0]);
    assert_eq!(lines[1]["details"]["field"], "bio");
    assert_eq!(lines[10]["details"]["field"], "bio");
    // Explain answers a rejected query with the same error.
    let explained = sandbox.aerodb(&["explain"], &requests.iter().map(|request| format!("{request}\n")).collect::<String>());
    assert_eq!(explained.status.code(), Some(1));
    assert_eq!(responses(&explained), lines);
    // The bounds themselves are accepted.
    let ok = [q("user", r#""filter":{},"limit":10000,"sort":"age""#), q("user", r#""filter":{"age":30},"limit":1"#)];
    let ok: Vec<&str> = ok.iter().map(String::as_str).collect();
    for line in run_requests(&sandbox, &ok, 0) {
        assert_eq!(line, json!({"status": "ok", "data": []}));
    }
}

// ---- writes ---------------------------------------------------------------

#[test]
fn write_duplicate_id_and_not_found() {
    let sandbox = Sandbox::with_user_schema();
    let update =
        |id: &str| format!(r#"{{"op":"update","schema_id":"user","schema_version":"v1","document":{{"_id":"{id}","name":"z","age":1}}}}"#);
    let delete = |id: &str| format!(r#"{{"op":"delete","schema_id":"user","schema_version":"v1","_id":"{id}"}}"#);
    let requests = [insert_user("1", "alice", 30), insert_user("1", "alice2", 31), update("2"), delete("2"), find_user("1")];
    let requests: Vec<&str> = requests.iter().map(String::as_str).collect();
    let lines = run_requests(&sandbox, &requests, 1);
    assert_eq!(lines[0], json!({"status": "ok", "data": []}));
    assert_reject(&lines[1], "AERO_WRITE_DUPLICATE_ID");
    assert_eq!(lines[1]["details"]["_id"], "1");
    assert_reject(&lines[2], "AERO_WRITE_NOT_FOUND");
    assert_eq!(lines[2]["details"]["_id"], "2");
    // Deleting a missing document succeeds and writes nothing.
    assert_eq!(lines[3], json!({"status": "ok", "data": []}));
    assert_eq!(lines[4]["data"], json!([{"_id": "1", "name": "alice", "age": 30}]));
    // The duplicate is refused across restarts too.
    let wal = sandbox.wal_len();
    let lines = run_requests(&sandbox, &[&insert_user("1", "again", 1), &delete("nope")], 1);
    assert_reject(&lines[0], "AERO_WRITE_DUPLICATE_ID");
    assert_eq!(lines[1]["status"], "ok");
    assert_eq!(sandbox.wal_len(), wal);
}

// ---- output and usage -----------------------------------------------------

#[test]
fn pretty_prints_indented_json() {
    let sandbox = Sandbox::with_user_schema();
    let stdin = format!("{}\n{}\n{{\"op\":\"nope\"}}\n", insert_user("1", "alice", 30), find_user("1"));
    let output = sandbox.aerodb(&["query", "--pretty"], &stdin);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(text.contains("\n  \"status\": \"ok\""), "indented: {text}");
    assert!(text.lines().count() > 6, "pretty output spans lines: {text}");
    let values: Vec<Value> = serde_json::Deserializer::from_str(&text).into_iter::<Value>().map(Result::unwrap).collect();
    assert_eq!(values.len(), 3);
    assert_eq!(values[0], json!({"status": "ok", "data": []}));
    assert_eq!(values[1], json!({"status": "ok", "data": [{"_id": "1", "name": "alice", "age": 30}]}));
    assert_eq!(values[2]["code"], "AERO_QUERY_INVALID");
    // --pretty before the subcommand works as well; without it, one line each.
    let before = sandbox.aerodb(&["--pretty", "query"], &find_user("1"));
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    assert_eq!(String::from_utf8(before.stdout).unwrap(), format!("{}\n", serde_json::to_string_pretty(&values[1]).unwrap()));
    let plain = sandbox.aerodb(&["query"], &find_user("1"));
    assert_eq!(String::from_utf8(plain.stdout).unwrap().lines().count(), 1);
}

#[test]
fn help_and_version_exit_0_on_every_subcommand() {
    let commands: [&[&str]; 7] = [&[], &["init"], &["start"], &["query"], &["explain"], &["schema"], &["schema", "add"]];
    for command in commands {
        for flag in ["--help", "--version"] {
            let output = std::process::Command::new(binary("aerodb")).args(command).arg(flag).output().unwrap();
            assert_eq!(output.status.code(), Some(0), "aerodb {} {flag}: {}", command.join(" "), stderr(&output));
            let text = String::from_utf8_lossy(&output.stdout);
            match flag {
                "--help" => assert!(text.contains("Usage"), "aerodb {} --help: {text}", command.join(" ")),
                _ => assert!(text.contains(env!("CARGO_PKG_VERSION")), "aerodb {} --version: {text}", command.join(" ")),
            }
        }
    }
}

#[test]
fn bad_usage_exits_64() {
    let cases: [&[&str]; 6] = [&[], &["frobnicate"], &["schema"], &["schema", "add"], &["query", "--no-such-flag"], &["init", "extra"]];
    for args in cases {
        let output = std::process::Command::new(binary("aerodb")).args(args).stdin(std::process::Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(64), "aerodb {}: {}", args.join(" "), stderr(&output));
        assert!(output.stdout.is_empty(), "usage errors go to stderr");
    }
}
