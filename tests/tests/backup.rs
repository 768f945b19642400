//! `aerodb backup`, `aerodb export` and `aerodb import` through the real
//! binary (docs/BACKUP.md): offline and online backups (a writer keeps
//! inserting and being acknowledged during the backup; the copy holds every
//! write acknowledged before the backup began and a prefix of the rest), a
//! backup that dies halfway leaves no `DEST`, a restore is a config naming
//! the copy; export → import into a fresh database → export is
//! byte-identical for documents of every type; import reports rejected
//! lines by number, `--stop-on-error` stops at the first, and an import
//! killed with SIGKILL and run again ends with every line in.

use std::collections::BTreeMap;

use aerodb_tests::reliability::*;
use aerodb_tests::Sandbox;
use serde_json::{json, Value};

fn summary(output: &std::process::Output) -> Value {
    let responses = aerodb_tests::responses(output);
    responses.last().cloned().unwrap_or_else(|| panic!("no summary: {}", describe(output)))
}

/// No backup's temporary tree is left beside its DEST.
fn assert_no_temporary_tree(sandbox: &Sandbox) {
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".backup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A sandbox whose config names `folder` (a restored copy).
fn config_for(folder: &std::path::Path) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!("{{\"data_dir\": \"{}\"}}", folder.display()));
    sandbox
}

fn load(sandbox: &Sandbox, model: &mut Model, count: usize) {
    let writes: Vec<Op> = (0..count)
        .map(|n| {
            if n % 5 == 4 {
                Op::insert("note", note_doc(&format!("n{n}"), "t", n as i64, if n % 10 == 9 { 5000 } else { 40 }))
            } else {
                Op::insert("user", user_doc(&format!("u{n:04}"), &format!("name{}", n % 9), (n % 70) as i64))
            }
        })
        .collect();
    run_writes(sandbox, model, &writes);
}

#[test]
fn offline_backup_restores_every_document_and_refuses_an_existing_dest() {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    load(&sandbox, &mut model, 120);
    run_writes(&sandbox, &mut model, &[Op::delete("user", "u0001"), Op::update("user", user_doc("u0002", "changed", 1))]);
    let dest = sandbox.path().join("copy");
    let output = sandbox.aerodb(&["backup", dest.to_str().unwrap()], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = summary(&output);
    assert_eq!(report["data"]["documents"], model.docs.len() as u64, "{report}");
    assert_eq!(report["data"]["verified"], true);
    assert_eq!(report["data"]["last_seq"], 122);
    // The copy is a clean database: restore = a config that names it.
    let restored = config_for(&dest);
    assert_serves(&restored, &model, &[("user".into(), "u0001".into())]);
    let verify = std::process::Command::new(aerodb_tests::binary("aerodb-verify")).arg("--config").arg(restored.config()).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "aerodb-verify on the copy: {}", describe(&verify));
    // DEST exists now: refused, nothing touched.
    let again = sandbox.aerodb(&["backup", dest.to_str().unwrap()], "");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("AERO_STORAGE_EXISTS"), "{}", describe(&again));
    // No temporary tree is left beside DEST.
    assert_no_temporary_tree(&sandbox);
}

#[test]
fn online_backup_holds_every_write_acknowledged_before_it_and_a_prefix_of_the_rest() {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    load(&sandbox, &mut model, 50);
    let mut server = sandbox.start(&[]);
    // Acknowledged before the backup begins.
    let mut acknowledged = Vec::new();
    for n in 0..40 {
        let write = Op::insert("user", user_doc(&format!("w{n:04}"), "before", n));
        let response = server.request(&write.request()).expect("answer");
        assert!(model.acknowledge(&write, &response).unwrap());
        acknowledged.push(write);
    }
    let dest = sandbox.path().join("online");
    let mut backup = std::process::Command::new(aerodb_tests::binary("aerodb"))
        .args(["backup", dest.to_str().unwrap(), "--config"])
        .arg(sandbox.config())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The writer keeps being acknowledged while the backup runs.
    let mut during = Vec::new();
    let mut prefixes = vec![model.clone()];
    for n in 0..300 {
        let write = Op::insert("user", user_doc(&format!("x{n:04}"), "during", n));
        let response = server.request(&write.request()).expect("the server keeps answering during the backup");
        assert!(model.acknowledge(&write, &response).unwrap());
        prefixes.push(model.clone());
        during.push(write);
        if n >= 20 && backup.try_wait().unwrap().is_some() {
            break;
        }
    }
    let output = backup.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(server.finish().status.success());
    let restored = config_for(&dest);
    let served = served_documents(&restored);
    let mut copy_model = prefixes[0].clone();
    let applied = copy_model.reconcile_prefix(&served, &prefixes).unwrap_or_else(|error| panic!("{error}"));
    eprintln!("online backup: {applied} of {} writes made during the backup are in the copy", during.len());
    for write in &acknowledged {
        assert!(served.contains_key(&write.key()), "{:?} was acknowledged before the backup began", write.key());
    }
}

/// The crash point inside the WAL copy: the backup dies with its copy half
/// made; no DEST exists (only the temporary tree, which boots as nothing).
#[test]
fn a_backup_killed_halfway_leaves_no_dest() {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    load(&sandbox, &mut model, 30);
    let dest = sandbox.path().join("half");
    let output = sandbox.aerodb_env(&["backup", dest.to_str().unwrap()], "", &[("AERODB_CRASH_POINT", "backup_mid_copy")]);
    assert!(aborted(&output.status), "{}", describe(&output));
    assert!(reached_crash_point(&output, "backup_mid_copy"));
    assert!(!dest.exists(), "a half-made backup must not be at DEST");
    // The source is untouched and a new backup works.
    let output = sandbox.aerodb(&["backup", dest.to_str().unwrap()], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_serves(&config_for(&dest), &model, &[]);
}

const TYPES_SCHEMA: &str = r#"{"schema_id": "kinds", "schema_version": "v1",
  "fields": {"_id": {"type": "int"}, "s": {"type": "string"}, "f": {"type": "float"}, "i": {"type": "int"},
             "b": {"type": "bool"}, "tags": {"type": "array", "items": {"type": "string"}, "required": false},
             "nested": {"type": "object", "required": false, "fields": {"x": {"type": "float"}, "deep": {"type": "object", "fields": {"y": {"type": "int"}}}}},
             "big": {"type": "string", "required": false}},
  "indexes": ["s", "i"]}"#;

fn kinds_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for n in 0..60i64 {
        let mut document =
            json!({"_id": n, "s": format!("ü→{n}\u{1F600}\"\\"), "f": n as f64 + 0.5, "i": -n * 1_000_000_007, "b": n % 2 == 0});
        if n % 3 == 0 {
            document["tags"] = json!(["a", format!("t{n}"), ""]);
        }
        if n % 4 == 0 {
            document["nested"] = json!({"x": 1.0e-300 * n as f64, "deep": {"y": i64::MAX - n}});
        }
        if n == 7 {
            // Close to the largest document: overflow pages.
            document["big"] = json!("z".repeat(aerodb_format::DOC_SIZE_MAX_BYTES - 400));
        }
        if n == 8 {
            document["f"] = json!(2.0);
            document["i"] = json!(i64::MIN);
        }
        lines.push(document.to_string());
    }
    lines
}

fn kinds_sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    assert!(sandbox.aerodb(&["init"], "").status.success());
    std::fs::write(sandbox.path().join("kinds.json"), TYPES_SCHEMA).unwrap();
    assert!(sandbox.aerodb(&["schema", "add", "kinds.json"], "").status.success());
    sandbox
}

#[test]
fn export_then_import_then_export_is_byte_identical() {
    let first = kinds_sandbox();
    std::fs::write(first.path().join("in.ndjson"), kinds_lines().join("\n") + "\n").unwrap();
    let output = first.aerodb(&["import", "--schema", "kinds", "--version", "v1", "in.ndjson"], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(summary(&output)["data"]["inserted"], 60);
    let exported = first.aerodb(&["export", "--schema", "kinds", "--version", "v1"], "");
    assert_eq!(exported.status.code(), Some(0), "{}", describe(&exported));
    let text = String::from_utf8(exported.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 60);
    // As stored: float 2.0 stays a float, field order as written, _id order.
    assert!(
        text.lines().nth(8).unwrap().starts_with(r#"{"_id":8,"s":"#) && text.contains(r#""f":2.0,"#),
        "{}",
        text.lines().nth(8).unwrap()
    );
    let ids: Vec<i64> = text.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()["_id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));

    let second = kinds_sandbox();
    let output = second.aerodb_bytes(&["import", "--schema", "kinds", "--version", "v1", "-"], &exported.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let again = second.aerodb(&["export", "--schema", "kinds", "--version", "v1"], "");
    assert!(again.stdout == exported.stdout, "the round trip changed the export");
    // Without --schema: every version, each line naming its schema.
    let all = second.aerodb(&["export"], "");
    let first_line: Value = serde_json::from_str(String::from_utf8_lossy(&all.stdout).lines().next().unwrap()).unwrap();
    assert_eq!((first_line["schema_id"].as_str(), first_line["schema_version"].as_str()), (Some("kinds"), Some("v1")));
    assert_eq!(first_line["document"]["_id"], 0);
}

#[test]
fn import_reports_rejected_lines_and_stops_on_error_when_asked() {
    let lines = [
        r#"{"_id": "a1", "name": "ann", "age": 30}"#,
        r#"{"_id": "a2", "name": "bob", "age": "old"}"#,
        r#"{"_id": "a3", "name": "cy", "age": 31"#,
        r#"{"_id": "a1", "name": "dup", "age": 1}"#,
        "",
        r#"{"_id": "a4", "name": "dee", "age": 32, "age": 33}"#,
        r#"{"_id": "a5", "name": "eve", "age": 34}"#,
    ];
    let sandbox = Sandbox::with_user_schema();
    std::fs::write(sandbox.path().join("in.ndjson"), lines.join("\n")).unwrap();
    let output = sandbox.aerodb(&["import", "--schema", "user", "--version", "v1", "in.ndjson"], "");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let responses = aerodb_tests::responses(&output);
    let rejected: Vec<(u64, &str)> = responses[..responses.len() - 1]
        .iter()
        .map(|report| (report["line"].as_u64().unwrap(), report["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [
            (2, "AERO_SCHEMA_VALIDATION_FAILED"),
            (3, "AERO_QUERY_INVALID"),
            (4, "AERO_WRITE_DUPLICATE_ID"),
            (6, "AERO_SCHEMA_VALIDATION_FAILED")
        ]
    );
    let report = summary(&output);
    assert_eq!(report["data"]["lines_read"], 7);
    assert_eq!(report["data"]["inserted"], 2);
    assert_eq!(
        report["data"]["rejected_by_code"],
        json!({"AERO_QUERY_INVALID": 1, "AERO_SCHEMA_VALIDATION_FAILED": 2, "AERO_WRITE_DUPLICATE_ID": 1})
    );

    let stopping = Sandbox::with_user_schema();
    std::fs::write(stopping.path().join("in.ndjson"), lines.join("\n")).unwrap();
    let output = stopping.aerodb(&["import", "--schema", "user", "--version", "v1", "--stop-on-error", "in.ndjson"], "");
    assert_eq!(output.status.code(), Some(1));
    let report = summary(&output);
    assert_eq!((report["data"]["inserted"].as_u64(), report["data"]["stopped_early"].as_bool()), (Some(1), Some(true)), "{report}");
    let exported = stopping.aerodb(&["export", "--schema", "user", "--version", "v1"], "");
    assert_eq!(String::from_utf8_lossy(&exported.stdout).lines().count(), 1, "nothing after the first rejected line was inserted");
    assert_eq!(report["data"]["lines_read"], 2, "the import stopped at line 2: {report}");

    // The rejected line in the last batch, with nothing after it to parse:
    // the summary still says it stopped there.
    let last_batch = Sandbox::with_user_schema();
    let file = [lines[0], lines[1], lines[6]].join("\n") + "\n";
    std::fs::write(last_batch.path().join("in.ndjson"), file).unwrap();
    let output = last_batch.aerodb(&["import", "--schema", "user", "--version", "v1", "--stop-on-error", "in.ndjson"], "");
    assert_eq!(output.status.code(), Some(1));
    let report = summary(&output);
    assert_eq!(report["data"]["stopped_early"], true, "{report}");
    assert_eq!(report["data"]["lines_read"], 2, "{report}");
    assert_eq!(report["data"]["inserted"], 1, "{report}");

    // A file that cannot be read, or a folder: fatal, before the database is opened.
    for missing in ["no-such-file.ndjson", "."] {
        let output = last_batch.aerodb(&["import", "--schema", "user", "--version", "v1", missing], "");
        assert_eq!(output.status.code(), Some(2), "{missing}: {}", describe(&output));
        let error = aerodb_tests::fatal_error(&output);
        assert_eq!(
            (error["code"].as_str(), error["severity"].as_str()),
            (Some("AERO_STORAGE_IO_ERROR"), Some("FATAL")),
            "{missing}: {error}"
        );
    }
}

#[test]
fn a_backup_inside_the_source_is_refused_and_the_source_still_boots() {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    load(&sandbox, &mut model, 20);
    std::os::unix::fs::symlink(sandbox.data().join("metadata/schemas"), sandbox.path().join("schemas-link")).unwrap();
    for dest in ["data/metadata/schemas/bk", "data/data/bk", "data/indexes/bk", "data/bk", "schemas-link/bk"] {
        let output = sandbox.aerodb(&["backup", dest], "");
        assert_eq!(output.status.code(), Some(2), "{dest}: {}", describe(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains("a backup never writes in the source"), "{dest}: {}", describe(&output));
        assert!(std::fs::symlink_metadata(sandbox.path().join(dest)).is_err(), "{dest} was created");
    }
    assert_serves(&sandbox, &model, &[]);
}

#[test]
fn an_import_killed_with_sigkill_then_run_again_ends_with_every_line() {
    let sandbox = Sandbox::with_user_schema();
    let lines: Vec<String> = (0..60_000).map(|n| user_doc(&format!("k{n:06}"), &format!("name{}", n % 50), n % 90).to_string()).collect();
    std::fs::write(sandbox.path().join("big.ndjson"), lines.join("\n") + "\n").unwrap();
    let mut child = std::process::Command::new(aerodb_tests::binary("aerodb"))
        .args(["import", "--schema", "user", "--version", "v1", "big.ndjson", "--config"])
        .arg(sandbox.config())
        .current_dir(sandbox.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    let _ = child.wait();
    let before = sandbox.aerodb(&["export", "--schema", "user", "--version", "v1"], "");
    let present = String::from_utf8_lossy(&before.stdout).lines().count();
    // A prefix of the file is in (writes are committed in file order).
    let exported: Vec<&str> = std::str::from_utf8(&before.stdout).unwrap().lines().collect();
    let expected_prefix: Vec<String> =
        lines[..present].iter().map(|line| serde_json::from_str::<Value>(line).unwrap().to_string()).collect();
    assert_eq!(exported, expected_prefix.iter().map(String::as_str).collect::<Vec<_>>());
    let output = sandbox.aerodb(&["import", "--schema", "user", "--version", "v1", "big.ndjson"], "");
    let report = summary(&output);
    assert_eq!(report["data"]["inserted"].as_u64(), Some((lines.len() - present) as u64), "{report}");
    let by_code: BTreeMap<String, u64> = serde_json::from_value(report["data"]["rejected_by_code"].clone()).unwrap();
    assert_eq!(by_code.get("AERO_WRITE_DUPLICATE_ID").copied().unwrap_or(0), present as u64);
    let after = sandbox.aerodb(&["export", "--schema", "user", "--version", "v1"], "");
    assert_eq!(String::from_utf8_lossy(&after.stdout).lines().count(), lines.len());
    eprintln!("import killed after {present} of {} lines; the re-run inserted the rest", lines.len());
}

/// A DEST whose file system refuses the copy's bytes fails cleanly: the
/// error names the file and `AERO_STORAGE_IO_ERROR`, no DEST and no
/// temporary tree are left, the source is untouched. The full disk is made
/// with a file-size limit (`ulimit -f`, SIGXFSZ ignored), so every write
/// past 256 KiB fails as a write to a full file system does.
#[test]
fn a_backup_to_a_full_file_system_fails_cleanly() {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    load(&sandbox, &mut model, 200);
    // Enough WAL that the copy must write past the limit.
    let notes: Vec<Op> = (0..60).map(|n| Op::insert("note", note_doc(&format!("big{n}"), "t", n, 6000))).collect();
    run_writes(&sandbox, &mut model, &notes);
    assert!(sandbox.wal_len() > 300 * 1024, "the WAL holds {} bytes", sandbox.wal_len());
    let dest = sandbox.path().join("full");
    let script = format!(
        "trap '' XFSZ; ulimit -f 256; exec '{}' backup --config '{}' '{}'",
        aerodb_tests::binary("aerodb").display(),
        sandbox.config().display(),
        dest.display()
    );
    let output = std::process::Command::new("sh").arg("-c").arg(&script).current_dir(sandbox.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AERO_STORAGE_IO_ERROR"), "{stderr}");
    assert!(!dest.exists());
    assert_no_temporary_tree(&sandbox);
    assert_serves(&sandbox, &model, &[]);
}
