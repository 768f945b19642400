//! The install guide's walkthrough (seed/INSTALL-phase0.txt), byte for byte,
//! through the real `aerodb` binary: config, init, a hand-written schema,
//! insert, query, explain, and the crash test (start, insert, SIGKILL,
//! restart). Also the data directory's layout and permissions after init.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aerodb_tests::{fatal_error, find_user, log_lines, responses, Sandbox, INSTALL_GUIDE_CONFIG, USER_SCHEMA};
use serde_json::{json, Value};

/// The insert line the guide pipes in with `echo`.
const GUIDE_INSERT: &str = r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"1","name":"alice","age":30}}"#;

/// The guide's `query.json`, pretty-printed over several lines, as `cat query.json` sends it.
const GUIDE_QUERY_JSON: &str = r#"{
"op": "query",
"schema_id": "user",
"schema_version": "v1",
"filter": {
"age": 30
},
"limit": 10
}
"#;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn install_guide_walkthrough_byte_for_byte() {
    // 5. Create aerodb.json exactly as the guide shows it.
    let sandbox = Sandbox::new();
    assert_eq!(std::fs::read_to_string(sandbox.config()).unwrap(), INSTALL_GUIDE_CONFIG);

    // 6. Initialize.
    let init = sandbox.aerodb(&["init"], "");
    assert_eq!(init.status.code(), Some(0), "init: {}", stderr(&init));
    let init_response = responses(&init);
    assert_eq!(init_response.len(), 1);
    assert_eq!(init_response[0]["status"], "ok");
    assert!(sandbox.data().join("MANIFEST").is_file());

    // 7. The schema, written by hand into metadata/schemas/.
    std::fs::write(sandbox.data().join("metadata/schemas/user_v1.json"), USER_SCHEMA).unwrap();

    // 9. echo '<insert>' | aerodb query --config aerodb.json
    let insert = sandbox.aerodb(&["query"], &format!("{GUIDE_INSERT}\n"));
    assert_eq!(insert.status.code(), Some(0), "insert: {}", stderr(&insert));
    assert_eq!(stdout(&insert), "{\"status\":\"ok\",\"data\":[]}\n");

    // 10. cat query.json | aerodb query --config aerodb.json
    let query = sandbox.aerodb(&["query"], GUIDE_QUERY_JSON);
    assert_eq!(query.status.code(), Some(0), "query: {}", stderr(&query));
    assert_eq!(stdout(&query), "{\"status\":\"ok\",\"data\":[{\"_id\":\"1\",\"name\":\"alice\",\"age\":30}]}\n");

    // 11. cat query.json | aerodb explain --config aerodb.json
    let explain = sandbox.aerodb(&["explain"], GUIDE_QUERY_JSON);
    assert_eq!(explain.status.code(), Some(0), "explain: {}", stderr(&explain));
    let plans = responses(&explain);
    assert_eq!(plans.len(), 1, "one response line: {}", stdout(&explain));
    let plan = &plans[0];
    assert_eq!(plan["status"], "ok", "{plan}");
    let data = &plan["data"];
    assert_eq!(data["chosen_index"], "age", "{plan}");
    assert_eq!(data["scan_type"], "INDEX_EQ", "{plan}");
    assert_eq!(data["max_scan"], 1, "{plan}");
    assert_eq!(data["bounded"], true, "{plan}");
    assert_eq!(data["predicates"], json!(["age = 30"]), "{plan}");
    assert_eq!(data["limit"], 10, "{plan}");
    // Same inputs, same bytes.
    let again = sandbox.aerodb(&["explain"], GUIDE_QUERY_JSON);
    assert_eq!(again.stdout, explain.stdout);

    // 12. Crash recovery: start, insert, SIGKILL, restart.
    let mut server = sandbox.start(&[]);
    let acknowledged =
        server.request(r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"2","name":"bob","age":41}}"#);
    assert_eq!(acknowledged, Some(json!({"status": "ok", "data": []})));
    server.kill();
    assert!(!sandbox.data().join("clean_shutdown").exists(), "SIGKILL must not leave a clean shutdown marker");

    let restart = sandbox.aerodb(&["query"], &format!("{}\n{}\n", find_user("2"), find_user("1")));
    assert_eq!(restart.status.code(), Some(0), "restart after SIGKILL: {}", stderr(&restart));
    assert_eq!(
        responses(&restart),
        vec![
            json!({"status": "ok", "data": [{"_id": "2", "name": "bob", "age": 41}]}),
            json!({"status": "ok", "data": [{"_id": "1", "name": "alice", "age": 30}]}),
        ]
    );
    let reports: Vec<Value> = log_lines(&restart).into_iter().filter(|line| line["event"] == "report").collect();
    assert_eq!(reports.len(), 1, "{}", stderr(&restart));
    assert_eq!(reports[0]["clean_shutdown"], false, "the boot after SIGKILL is a crash recovery: {}", reports[0]);
    assert_eq!(reports[0]["records_replayed"], 2, "{}", reports[0]);
    assert_eq!(reports[0]["documents"], 2, "{}", reports[0]);
}

#[test]
fn second_init_fails_with_storage_exists() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.aerodb(&["init"], "").status.code(), Some(0));
    let manifest = std::fs::read(sandbox.data().join("MANIFEST")).unwrap();
    let second = sandbox.aerodb(&["init"], "");
    assert_eq!(second.status.code(), Some(2));
    assert!(second.stdout.is_empty(), "a fatal error goes to stderr only");
    assert!(stderr(&second).contains("AERO_STORAGE_EXISTS"), "{}", stderr(&second));
    let error = fatal_error(&second);
    assert_eq!(error["code"], "AERO_STORAGE_EXISTS");
    assert_eq!(error["severity"], "FATAL");
    // The existing database is untouched.
    assert_eq!(std::fs::read(sandbox.data().join("MANIFEST")).unwrap(), manifest);
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())).permissions().mode() & 0o777
}

fn walk(path: &Path, visit: &mut dyn FnMut(&Path)) {
    visit(path);
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            walk(&entry.unwrap().path(), visit);
        }
    }
}

#[test]
fn init_creates_the_documented_layout_owner_only() {
    let sandbox = Sandbox::new();
    let init = sandbox.aerodb(&["init"], "");
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    let data = sandbox.data();
    for file in ["MANIFEST", "LOCK", "wal/wal.log", "metadata/config.json"] {
        assert!(data.join(file).is_file(), "{file} missing after init");
    }
    for folder in ["data", "indexes", "metadata", "metadata/schemas", "wal"] {
        assert!(data.join(folder).is_dir(), "{folder}/ missing after init");
    }
    // The frozen config holds the guide's values.
    let frozen: Value = serde_json::from_slice(&std::fs::read(data.join("metadata/config.json")).unwrap()).unwrap();
    assert_eq!(frozen["wal_sync_mode"], "fsync", "{frozen}");
    assert_eq!(frozen["max_wal_size_bytes"], 1073741824u64, "{frozen}");
    assert_eq!(frozen["max_memory_bytes"], 536870912u64, "{frozen}");
    // No staging directory left beside it.
    let siblings: Vec<String> =
        std::fs::read_dir(sandbox.path()).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut sorted = siblings.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["aerodb.json", "data"], "init left extra files beside data/");

    let mut checked = 0;
    walk(&data, &mut |path| {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), expected, "{} has mode {:o}, expected {:o}", path.display(), mode(path), expected);
        checked += 1;
    });
    assert!(checked >= 10, "walked only {checked} entries");

    // Files created by a boot are owner-only too.
    std::fs::write(data.join("metadata/schemas/user_v1.json"), USER_SCHEMA).unwrap();
    std::fs::set_permissions(data.join("metadata/schemas/user_v1.json"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let boot = sandbox.aerodb(&["query"], &format!("{GUIDE_INSERT}\n"));
    assert_eq!(boot.status.code(), Some(0), "{}", stderr(&boot));
    walk(&data, &mut |path| {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), expected, "after a boot, {} has mode {:o}, expected {:o}", path.display(), mode(path), expected);
    });
}
