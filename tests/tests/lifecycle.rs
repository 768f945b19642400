//! The process lifecycle through the real `aerodb` binary: graceful
//! shutdown on SIGTERM, SIGINT and EOF; exit codes; the JSON log lines on
//! stderr; restart after SIGKILL with no stale lock and every acknowledged
//! write present; read-after-write; and hostile input that must be refused
//! cleanly without crashing or touching the WAL.

use std::process::Output;
use std::time::Duration;

use aerodb_tests::{find_user, insert_user, log_lines, responses, Sandbox};
use serde_json::{json, Value};

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok_empty() -> Value {
    json!({"status": "ok", "data": []})
}

/// The (from, to) pairs of the lifecycle transition log lines.
fn transitions(logs: &[Value]) -> Vec<(String, String)> {
    logs.iter()
        .filter(|line| line["component"] == "lifecycle" && line["event"] == "transition")
        .map(|line| (line["from"].as_str().unwrap_or_default().to_string(), line["to"].as_str().unwrap_or_default().to_string()))
        .collect()
}

fn full_lifecycle() -> Vec<(String, String)> {
    let states = ["UNINITIALIZED", "INITIALIZING", "RECOVERING", "VERIFYING", "SERVING", "SHUTTING_DOWN", "TERMINATED"];
    states.windows(2).map(|pair| (pair[0].to_string(), pair[1].to_string())).collect()
}

/// Asserts the files a clean shutdown leaves, and returns state.json.
fn assert_clean_shutdown(sandbox: &Sandbox, documents: u64) -> Value {
    assert!(sandbox.data().join("clean_shutdown").is_file(), "clean_shutdown marker missing");
    let state: Value = serde_json::from_slice(&std::fs::read(sandbox.data().join("metadata/state.json")).expect("metadata/state.json"))
        .expect("state.json is JSON");
    assert_eq!(state["documents"], documents, "{state}");
    assert!(state["last_seq"].is_u64(), "{state}");
    state
}

fn graceful_on_signal(signal: i32, name: &str) {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    // A round trip proves the server is SERVING (signal handlers installed).
    assert_eq!(server.request(&insert_user("1", "alice", 30)), Some(ok_empty()));
    assert!(!sandbox.data().join("clean_shutdown").exists(), "no marker while serving");
    server.signal(signal);
    // stdin stays open: only the signal can end the process.
    let output = server.wait_exit(EXIT_TIMEOUT);
    assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
    assert!(output.stdout.is_empty(), "no further output after the signal: {}", String::from_utf8_lossy(&output.stdout));
    let state = assert_clean_shutdown(&sandbox, 1);
    assert_eq!(state["last_seq"], 1, "{state}");
    let logs = log_lines(&output);
    assert!(logs.iter().any(|line| line["event"] == "signal" && line["signal"] == signal), "{name} logged: {}", stderr(&output));
    assert_eq!(transitions(&logs), full_lifecycle(), "{}", stderr(&output));

    // The next boot sees a clean shutdown, removes the marker, and serves the data.
    let mut server = sandbox.start(&[]);
    assert_eq!(server.request(&find_user("1")).unwrap()["data"], json!([{"_id": "1", "name": "alice", "age": 30}]));
    assert!(!sandbox.data().join("clean_shutdown").exists(), "the marker is removed after a successful boot");
    let output = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = log_lines(&output).into_iter().find(|line| line["event"] == "report").expect("recovery report");
    assert_eq!(report["clean_shutdown"], true, "{report}");
}

#[test]
fn sigterm_shuts_down_gracefully() {
    graceful_on_signal(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_shuts_down_gracefully() {
    // A closed terminal is a normal way for a server to end.
    graceful_on_signal(libc::SIGHUP, "SIGHUP");
}

#[test]
fn sigquit_shuts_down_gracefully() {
    graceful_on_signal(libc::SIGQUIT, "SIGQUIT");
}

#[test]
fn sigint_shuts_down_gracefully() {
    graceful_on_signal(libc::SIGINT, "SIGINT");
}

#[test]
fn eof_shuts_down_gracefully_with_exit_0() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    assert_eq!(server.request(&insert_user("1", "alice", 30)), Some(ok_empty()));
    assert_eq!(server.request(&insert_user("2", "bob", 41)), Some(ok_empty()));
    let output = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let state = assert_clean_shutdown(&sandbox, 2);
    assert_eq!(state["last_seq"], 2, "{state}");
    assert_eq!(transitions(&log_lines(&output)), full_lifecycle());
}

#[test]
fn failed_request_then_eof_exits_1_and_still_shuts_down_cleanly() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    assert_eq!(server.request(&insert_user("1", "alice", 30)), Some(ok_empty()));
    let refused = server.request(&insert_user("1", "alice", 30)).expect("a response");
    assert_eq!(refused["code"], "AERO_WRITE_DUPLICATE_ID", "{refused}");
    // A later success does not clear the failure.
    assert_eq!(server.request(&find_user("1")).unwrap()["status"], "ok");
    let output = server.finish();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_clean_shutdown(&sandbox, 1);

    // The same after SIGTERM.
    let mut server = sandbox.start(&[]);
    assert_eq!(server.request(r#"{"op":"nope"}"#).unwrap()["code"], "AERO_QUERY_INVALID");
    server.signal(libc::SIGTERM);
    let output = server.wait_exit(EXIT_TIMEOUT);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_clean_shutdown(&sandbox, 1);
}

#[test]
fn stderr_is_json_logs_with_lifecycle_and_one_recovery_report_stdout_only_responses() {
    let sandbox = Sandbox::with_user_schema();
    let requests = format!("{}\n{}\n{}\n{{\"op\":\"bad\"}}\n", insert_user("1", "alice", 30), insert_user("2", "bob", 41), find_user("2"));
    for command in ["query", "start", "explain"] {
        let output = sandbox.aerodb(&[command], &requests);
        let logs = log_lines(&output);
        assert_eq!(transitions(&logs), full_lifecycle(), "{command}: {}", stderr(&output));
        for line in &logs {
            assert!(["info", "warn", "error", "debug"].contains(&line["level"].as_str().unwrap_or_default()), "{line}");
        }
        let reports: Vec<&Value> = logs.iter().filter(|line| line["event"] == "report").collect();
        assert_eq!(reports.len(), 1, "{command}: exactly one recovery report: {}", stderr(&output));
        let report = reports[0];
        assert_eq!(report["component"], "recovery", "{report}");
        for field in [
            "records_replayed",
            "last_seq",
            "pages_replayed",
            "documents",
            "index_entries",
            "torn_bytes_discarded",
            "replay_ms",
            "verify_ms",
            "rebuild_ms",
        ] {
            assert!(report[field].is_u64(), "{command}: report field {field} missing: {report}");
        }
        // The report comes after VERIFYING and before SERVING.
        let position = |predicate: &dyn Fn(&Value) -> bool| logs.iter().position(predicate).unwrap();
        let report_at = position(&|line| line["event"] == "report");
        let serving_at = position(&|line| line["to"] == "SERVING");
        let verifying_at = position(&|line| line["to"] == "VERIFYING");
        assert!(verifying_at < report_at && report_at < serving_at, "{}", stderr(&output));
        // stdout: one JSON response line per request, nothing else.
        let lines = responses(&output);
        assert_eq!(lines.len(), 4, "{command}: {lines:?}");
        assert!(lines.iter().all(|line| line["status"] == "ok" || line["status"] == "error"), "{lines:?}");
        assert!(lines.iter().all(|line| line.get("level").is_none()), "no log line on stdout");
        assert_eq!(output.status.code(), Some(1), "{command}");
    }
    // The first run inserted; the later runs see the documents and refuse the duplicates.
    let last = sandbox.aerodb(&["query"], &format!("{}\n", find_user("1")));
    assert_eq!(responses(&last)[0]["data"][0]["name"], "alice");
    let report = log_lines(&last).into_iter().find(|line| line["event"] == "report").unwrap();
    assert_eq!(report["documents"], 2, "{report}");
    assert_eq!(report["last_seq"], 2, "{report}");
    assert_eq!(report["records_replayed"], 2, "the WAL is replayed from its first record at every boot: {report}");
}

#[test]
fn restart_after_sigkill_finds_every_acknowledged_insert() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    for number in 0..50 {
        let response = server.request(&insert_user(&format!("user{number}"), &format!("name{number}"), number));
        assert_eq!(response, Some(ok_empty()), "insert {number} not acknowledged");
    }
    server.kill();
    assert!(!sandbox.data().join("clean_shutdown").exists());
    assert!(sandbox.data().join("LOCK").exists(), "the LOCK file stays; only its advisory lock is gone");

    // `start` again: no stale lock, every acknowledged insert is there.
    let mut server = sandbox.start(&[]);
    for number in 0..50 {
        let response = server.request(&find_user(&format!("user{number}"))).expect("a response");
        assert_eq!(
            response["data"],
            json!([{"_id": format!("user{number}"), "name": format!("name{number}"), "age": number}]),
            "user{number}"
        );
    }
    let all = server.request(r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{},"limit":100,"sort":"age"}"#).unwrap();
    assert_eq!(all["data"].as_array().map(Vec::len), Some(50), "{all}");
    let output = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = log_lines(&output).into_iter().find(|line| line["event"] == "report").unwrap();
    assert_eq!(report["clean_shutdown"], false, "{report}");
    assert_eq!(report["records_replayed"], 50, "{report}");
    assert_eq!(report["documents"], 50, "{report}");
    assert_clean_shutdown(&sandbox, 50);

    // A kill before any request, right after boot, leaves no stale lock either.
    let mut server = sandbox.start(&[]);
    assert_eq!(server.request(&find_user("user0")).unwrap()["status"], "ok");
    server.kill();
    let output = sandbox.aerodb(&["query"], &find_user("user49"));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(responses(&output)[0]["data"][0]["age"], 49);
}

#[test]
fn read_after_write_within_one_session() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    let query_age = |age: i64| format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"age":{age}}},"limit":10}}"#);
    assert_eq!(server.request(&find_user("1")).unwrap(), ok_empty());
    assert_eq!(server.request(&insert_user("1", "alice", 30)), Some(ok_empty()));
    assert_eq!(server.request(&find_user("1")).unwrap()["data"], json!([{"_id": "1", "name": "alice", "age": 30}]));
    assert_eq!(server.request(&query_age(30)).unwrap()["data"][0]["_id"], "1");
    let update = r#"{"op":"update","schema_id":"user","schema_version":"v1","document":{"_id":"1","name":"alicia","age":31}}"#;
    assert_eq!(server.request(update), Some(ok_empty()));
    assert_eq!(server.request(&find_user("1")).unwrap()["data"], json!([{"_id": "1", "name": "alicia", "age": 31}]));
    assert_eq!(server.request(&query_age(30)).unwrap()["data"], json!([]), "the old index entry is gone");
    assert_eq!(server.request(&query_age(31)).unwrap()["data"][0]["name"], "alicia");
    let delete = r#"{"op":"delete","schema_id":"user","schema_version":"v1","_id":"1"}"#;
    assert_eq!(server.request(delete), Some(ok_empty()));
    assert_eq!(server.request(&find_user("1")).unwrap()["data"], json!([]));
    assert_eq!(server.request(&query_age(31)).unwrap()["data"], json!([]));
    // The _id is free again.
    assert_eq!(server.request(&insert_user("1", "again", 5)), Some(ok_empty()));
    assert_eq!(server.request(&find_user("1")).unwrap()["data"][0]["name"], "again");
    let output = server.finish();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn update_and_delete_are_visible_after_restart() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    for (id, name, age) in [("1", "alice", 30), ("2", "bob", 41), ("3", "carol", 52)] {
        assert_eq!(server.request(&insert_user(id, name, age)), Some(ok_empty()));
    }
    let update = r#"{"op":"update","schema_id":"user","schema_version":"v1","document":{"_id":"2","name":"robert","age":42}}"#;
    assert_eq!(server.request(update), Some(ok_empty()));
    assert_eq!(server.request(r#"{"op":"delete","schema_id":"user","schema_version":"v1","_id":"3"}"#), Some(ok_empty()));
    // Crash: only the WAL knows about the update and the delete for sure.
    server.kill();

    let check = |sandbox: &Sandbox| {
        let requests = format!(
            "{}\n{}\n{}\n{}\n",
            find_user("1"),
            find_user("2"),
            find_user("3"),
            r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":{"$gte":0}},"limit":10,"sort":{"field":"age","order":"desc"}}"#
        );
        let output = sandbox.aerodb(&["query"], &requests);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let lines = responses(&output);
        assert_eq!(lines[0]["data"], json!([{"_id": "1", "name": "alice", "age": 30}]));
        assert_eq!(lines[1]["data"], json!([{"_id": "2", "name": "robert", "age": 42}]));
        assert_eq!(lines[2]["data"], json!([]));
        assert_eq!(lines[3]["data"], json!([{"_id": "2", "name": "robert", "age": 42}, {"_id": "1", "name": "alice", "age": 30}]));
    };
    check(&sandbox);
    // And again after the clean shutdown of that check.
    check(&sandbox);
    assert_clean_shutdown(&sandbox, 2);
}

/// Runs `aerodb query` with raw bytes, expects exit 1 (some request refused,
/// no crash, no fatal) and returns the responses.
fn hostile(sandbox: &Sandbox, stdin: &[u8]) -> Vec<Value> {
    let output = sandbox.aerodb_bytes(&["query"], stdin);
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit code (a signal means a crash): {:?}; stderr tail: {}",
        output.status,
        stderr(&output).chars().rev().take(2000).collect::<String>().chars().rev().collect::<String>()
    );
    log_lines(&output);
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    responses(&output)
}

fn assert_invalid(response: &Value) {
    assert_eq!(response["status"], "error", "{response}");
    assert_eq!(response["code"], "AERO_QUERY_INVALID", "{response}");
    assert_eq!(response["severity"], "REJECT", "{response}");
}

#[test]
fn hostile_input_is_refused_cleanly_and_never_reaches_the_wal() {
    let sandbox = Sandbox::with_user_schema();
    let seeded = sandbox.aerodb(&["query"], &insert_user("1", "alice", 30));
    assert_eq!(seeded.status.code(), Some(0), "{}", stderr(&seeded));
    let wal_before = sandbox.wal_len();
    let alice = json!([{"_id": "1", "name": "alice", "age": 30}]);
    let next = format!("{}\n", find_user("1"));

    // A 20 MB single-line request, then a valid request on the next line.
    let mut big = br#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"big","name":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 20 * 1024 * 1024));
    big.extend_from_slice(b"\",\"age\":1}}\n");
    big.extend_from_slice(next.as_bytes());
    let lines = hostile(&sandbox, &big);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_invalid(&lines[0]);
    assert_eq!(lines[1]["data"], alice);

    // 100000 nested '[' (and a closed variant), then a valid request.
    let mut deep = "[".repeat(100_000).into_bytes();
    deep.push(b'\n');
    deep.extend(format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    deep.extend(
        format!(
            "{{\"op\":\"insert\",\"schema_id\":\"user\",\"schema_version\":\"v1\",\"document\":{}{}}}\n",
            "{\"a\":".repeat(50_000),
            "1}".repeat(50_000)
        )
        .into_bytes(),
    );
    deep.extend_from_slice(next.as_bytes());
    let lines = hostile(&sandbox, &deep);
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines[..3] {
        assert_invalid(line);
    }
    assert_eq!(lines[3]["data"], alice);

    // Invalid UTF-8 inside a string and as bare bytes, NUL bytes, a lone surrogate.
    let mut bytes = br#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"u","name":""#.to_vec();
    bytes.extend_from_slice(b"\xff\xfe\xc3\x28\",\"age\":1}}\n");
    bytes.extend_from_slice(b"\x80\x81\x00\x00garbage\xff\n");
    bytes.extend_from_slice(b"\x00\n");
    bytes.extend_from_slice(br#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"\ud800","name":"s","age":1}}"#);
    bytes.push(b'\n');
    bytes.extend_from_slice(next.as_bytes());
    let lines = hostile(&sandbox, &bytes);
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in &lines[..4] {
        assert_invalid(line);
    }
    assert_eq!(lines[4]["data"], alice);

    // Huge integers everywhere a number can go.
    let huge = "1".repeat(400);
    let requests = [
        format!(r#"{{"op":"insert","schema_id":"user","schema_version":"v1","document":{{"_id":"h","name":"h","age":{huge}}}}}"#),
        r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"h","name":"h","age":18446744073709551616}}"#
            .to_string(),
        r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"h","name":"h","age":-9223372036854775809}}"#
            .to_string(),
        r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"h","name":"h","age":1e400}}"#.to_string(),
        format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"age":{huge}}},"limit":1}}"#),
        r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":{"$gt":99999999999999999999999}},"limit":1}"#.to_string(),
        r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":30},"limit":18446744073709551617}"#.to_string(),
        format!(r#"{{"op":"delete","schema_id":"user","schema_version":"v1","_id":{huge}}}"#),
        next.trim_end().to_string(),
    ];
    let stdin: String = requests.iter().map(|request| format!("{request}\n")).collect();
    let lines = hostile(&sandbox, stdin.as_bytes());
    assert_eq!(lines.len(), requests.len(), "{lines:?}");
    for (request, line) in requests.iter().zip(&lines).take(requests.len() - 1) {
        assert_eq!(line["status"], "error", "{request}: {line}");
        assert_eq!(line["severity"], "REJECT", "{request}: {line}");
        let code = line["code"].as_str().unwrap();
        assert!(["AERO_QUERY_INVALID", "AERO_SCHEMA_VALIDATION_FAILED", "AERO_QUERY_LIMIT_REQUIRED"].contains(&code), "{request}: {line}");
    }
    assert_eq!(lines[6]["code"], "AERO_QUERY_LIMIT_REQUIRED", "{}", lines[6]);
    assert_eq!(lines[requests.len() - 1]["data"], alice);

    // Path-like schema ids and versions never reach the filesystem.
    let requests = [
        r#"{"op":"insert","schema_id":"../x","schema_version":"v1","document":{"_id":"p","name":"p","age":1}}"#,
        r#"{"op":"insert","schema_id":"user","schema_version":"../../../../etc/passwd","document":{"_id":"p","name":"p","age":1}}"#,
        r#"{"op":"query","schema_id":"/etc/passwd","schema_version":"v1","filter":{"_id":"p"},"limit":1}"#,
        r#"{"op":"delete","schema_id":"user_v1.json\u0000","schema_version":"v1","_id":"p"}"#,
        r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"../x":1},"limit":1}"#,
    ];
    let stdin: String = requests.iter().map(|request| format!("{request}\n")).collect();
    let lines = hostile(&sandbox, stdin.as_bytes());
    assert_eq!(lines.len(), requests.len(), "{lines:?}");
    assert_eq!(lines[0]["code"], "AERO_UNKNOWN_SCHEMA", "{}", lines[0]);
    assert_eq!(lines[1]["code"], "AERO_UNKNOWN_SCHEMA_VERSION", "{}", lines[1]);
    assert_eq!(lines[2]["code"], "AERO_UNKNOWN_SCHEMA", "{}", lines[2]);
    assert_eq!(lines[3]["code"], "AERO_UNKNOWN_SCHEMA", "{}", lines[3]);
    assert_invalid(&lines[4]);
    std::fs::write(sandbox.path().join("evil.json"), r#"{"schema_id":"../x","schema_version":"v1","fields":{"_id":{"type":"string"}}}"#)
        .unwrap();
    let output = sandbox.aerodb(&["schema", "add", "evil.json"], "");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(responses(&output)[0]["code"], "AERO_SCHEMA_INVALID");
    assert!(!sandbox.data().join("metadata/x_v1.json").exists() && !sandbox.data().join("metadata/schemas/../x_v1.json").exists());

    // None of it reached the WAL; the database still boots and serves.
    assert_eq!(sandbox.wal_len(), wal_before, "hostile input changed the WAL");
    let output = sandbox.aerodb(&["query"], &next);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(responses(&output)[0]["data"], alice);
    let report = log_lines(&output).into_iter().find(|line| line["event"] == "report").unwrap();
    assert_eq!(report["documents"], 1, "{report}");
}

#[test]
fn hostile_input_through_a_running_start() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    assert_eq!(server.request(&insert_user("1", "alice", 30)), Some(ok_empty()));
    let wal_before = sandbox.wal_len();
    assert_invalid(&server.request(&"[".repeat(100_000)).expect("a response, not a crash"));
    assert_invalid(&server.request("{\"op\": \"query\", \"schema_id\": }").expect("a response"));
    assert_invalid(&server.request("}").expect("a response"));
    assert_eq!(server.request(&find_user("1")).unwrap()["data"][0]["name"], "alice");
    assert_eq!(sandbox.wal_len(), wal_before);
    let output = server.finish();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}
