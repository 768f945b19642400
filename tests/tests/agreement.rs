//! The engine and aerodb-verify agree on what a valid database is: for a
//! damaged database, the boot fails exactly when verify reports a problem
//! (docs/TOOLS.md). Each case damages a copy of a database left by a crash
//! or a clean shutdown and runs both.

use std::process::Command;

use aerodb_tests::{binary, insert_user, Sandbox};

/// (boot succeeded, verify exit code)
fn boot_and_verify(sandbox: &Sandbox) -> (bool, i32) {
    let verify = Command::new(binary("aerodb-verify")).arg("--config").arg(sandbox.config()).output().unwrap();
    let boot = sandbox.aerodb(&["query"], "");
    (boot.status.success(), verify.status.code().unwrap_or(-1))
}

fn crashed_database() -> Sandbox {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    for id in 0..20 {
        assert_eq!(server.request(&insert_user(&id.to_string(), "someone", 30)).unwrap()["status"], "ok");
    }
    server.kill();
    assert!(!sandbox.data().join("clean_shutdown").exists());
    sandbox
}

#[test]
fn an_unreadable_state_file_after_a_crash_serves_and_verifies_with_a_warning() {
    let sandbox = crashed_database();
    std::fs::write(sandbox.data().join("metadata/state.json"), b"\x00garbage").unwrap();
    let verify = Command::new(binary("aerodb-verify")).arg("--config").arg(sandbox.config()).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("WARNING metadata/state.json"), "{}", String::from_utf8_lossy(&verify.stdout));
    // Verify first (the boot below rewrites nothing it reads), then the boot.
    let (booted, _) = boot_and_verify(&sandbox);
    assert!(booted);
}

#[test]
fn an_unreadable_state_file_after_a_clean_shutdown_is_refused_by_both() {
    let sandbox = Sandbox::with_user_schema();
    assert!(sandbox.aerodb(&["query"], &insert_user("1", "alice", 30)).status.success());
    std::fs::write(sandbox.data().join("metadata/state.json"), b"\x00garbage").unwrap();
    let (booted, verify) = boot_and_verify(&sandbox);
    assert!(!booted);
    assert_eq!(verify, 1);
}

#[test]
fn a_deleted_index_folder_is_derived_data_rebuilt_at_boot() {
    let sandbox = crashed_database();
    std::fs::remove_dir_all(sandbox.data().join("indexes")).unwrap();
    let verify = Command::new(binary("aerodb-verify")).arg("--config").arg(sandbox.config()).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    let output = sandbox.aerodb(&["query"], &aerodb_tests::find_user("7"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("index_folder_recreated"));
    assert_eq!(aerodb_tests::responses(&output)[0]["data"][0]["_id"], "7");
    assert!(sandbox.data().join("indexes").is_dir());
}

#[test]
fn a_gap_in_the_segment_numbering_or_a_stray_file_is_refused_by_both() {
    for damage in ["gap", "stray"] {
        let sandbox = Sandbox::with_user_schema();
        assert!(sandbox.aerodb(&["query"], &insert_user("1", "alice", 30)).status.success());
        let folder = sandbox.data().join("data");
        match damage {
            "gap" => {
                let file = std::fs::File::create(folder.join("segment-000009.seg")).unwrap();
                file.set_len(4 << 20).unwrap();
            }
            _ => std::fs::write(folder.join("notes.txt"), b"hello").unwrap(),
        }
        let (booted, verify) = boot_and_verify(&sandbox);
        assert!(!booted, "{damage}: the engine refuses");
        assert_eq!(verify, 1, "{damage}: verify reports a problem");
    }
}

#[test]
fn a_schema_file_over_the_size_limit_is_refused_by_schema_add_boot_and_verify() {
    let sandbox = Sandbox::with_user_schema();
    let padding = " ".repeat(17 << 20);
    let text = format!(r#"{{"schema_id":"big","schema_version":"v1","fields":{{"_id":{{"type":"int"}}}},"indexes":[]{padding}}}"#);
    let file = sandbox.path().join("big.json");
    std::fs::write(&file, &text).unwrap();
    let output = sandbox.aerodb(&["schema", "add", file.to_str().unwrap()], "");
    assert_eq!(aerodb_tests::responses(&output)[0]["code"], "AERO_SCHEMA_INVALID");
    // Put in place by hand: the boot and verify refuse it alike.
    std::fs::write(sandbox.data().join("metadata/schemas/big_v1.json"), &text).unwrap();
    let (booted, verify) = boot_and_verify(&sandbox);
    assert!(!booted);
    assert_eq!(verify, 1);
}

/// A database shut down cleanly once, then written to and killed: the state
/// file of the clean shutdown stays, without the marker.
fn crashed_after_a_clean_shutdown() -> Sandbox {
    let sandbox = Sandbox::with_user_schema();
    assert!(sandbox.aerodb(&["query"], &insert_user("first", "alice", 30)).status.success());
    let mut server = sandbox.start(&[]);
    for id in 0..10 {
        assert_eq!(server.request(&insert_user(&id.to_string(), "someone", 30)).unwrap()["status"], "ok");
    }
    server.kill();
    assert!(sandbox.data().join("metadata/state.json").exists());
    sandbox
}

/// Schema folders, the hashes file, the state file after a crash and the
/// index folder: for each damage, the boot fails exactly when verify
/// reports a problem.
#[test]
fn the_boot_and_verify_agree_on_metadata_and_folder_damage() {
    type Damage = fn(&Sandbox);
    let cases: [(&str, fn() -> Sandbox, Damage, bool); 7] = [
        (
            "a schema file without .json",
            crashed_database,
            |sandbox| std::fs::write(sandbox.data().join("metadata/schemas/README.txt"), b"notes").unwrap(),
            false,
        ),
        (
            "a hidden file among the schemas",
            crashed_database,
            |sandbox| std::fs::write(sandbox.data().join("metadata/schemas/.scratch"), b"{").unwrap(),
            true,
        ),
        (
            "a new schema file with no recorded hash",
            crashed_database,
            |sandbox| {
                let text = std::fs::read_to_string(sandbox.data().join("metadata/schemas/user_v1.json")).unwrap();
                std::fs::write(sandbox.data().join("metadata/schemas/user_v9.json"), text.replace("\"v1\"", "\"v9\"")).unwrap();
            },
            true,
        ),
        (
            "a repeated key in the hashes file",
            crashed_database,
            |sandbox| {
                let path = sandbox.data().join("metadata/schema_hashes.json");
                let text = std::fs::read_to_string(&path).unwrap();
                let entry = text.trim().trim_start_matches('{').trim_end_matches('}').trim().to_string();
                std::fs::write(&path, format!("{{{entry}, {entry}}}")).unwrap();
            },
            false,
        ),
        (
            "after a crash, a state file recording more log than there is",
            crashed_after_a_clean_shutdown,
            |sandbox| {
                let path = sandbox.data().join("metadata/state.json");
                let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                state["wal_bytes"] = serde_json::json!(state["wal_bytes"].as_u64().unwrap() + 50_000_000);
                std::fs::write(&path, state.to_string()).unwrap();
            },
            false,
        ),
        (
            "after a crash, a state file with an unknown field",
            crashed_after_a_clean_shutdown,
            |sandbox| {
                let path = sandbox.data().join("metadata/state.json");
                let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                state["extra"] = serde_json::json!(1);
                std::fs::write(&path, state.to_string()).unwrap();
            },
            true,
        ),
        (
            // Removed with the index files (BOOT.md step 21): a note for verify.
            "a folder inside indexes/",
            crashed_database,
            |sandbox| std::fs::create_dir(sandbox.data().join("indexes/leftover")).unwrap(),
            true,
        ),
    ];
    for (name, make, damage, boots) in cases {
        let sandbox = make();
        damage(&sandbox);
        let (booted, verify) = boot_and_verify(&sandbox);
        assert_eq!(booted, boots, "{name}: the boot");
        assert_eq!(verify, if boots { 0 } else { 1 }, "{name}: verify");
    }
}
