//! `aerodb-verify` and `aerodb-inspect` on databases the engine wrote:
//! clean after a clean shutdown, notes only after SIGKILL, and a precise
//! problem for a damaged page; every inspect subcommand runs and its
//! `--json` parses.

use std::process::Command;

use aerodb_tests::reliability::{insert_request, note_doc, sandbox_with_schemas, update_request, user_doc};
use aerodb_tests::{binary, responses, Sandbox};
use serde_json::Value;

fn tool(sandbox: &Sandbox, name: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary(name)).args(args).arg("--config").arg(sandbox.config()).current_dir(sandbox.path()).output().expect("run tool")
}

fn workload() -> String {
    let mut requests = Vec::new();
    for index in 0..60 {
        requests.push(insert_request("user", &user_doc(&format!("u{index}"), &format!("name{}", index % 5), index % 30)));
    }
    requests.push(insert_request("note", &note_doc("big", "overflow", 1, 9000)));
    requests.push(insert_request("note", &note_doc("small", "inline", 1, 10)));
    requests.push(update_request("note", &note_doc("small", "inline", 2, 7000)));
    requests.push(r#"{"op":"delete","schema_id":"user","schema_version":"v1","_id":"u7"}"#.to_string());
    requests.join("\n")
}

#[test]
fn verify_is_clean_after_a_clean_shutdown_and_names_a_damaged_page() {
    let sandbox = sandbox_with_schemas();
    let output = sandbox.aerodb(&["query"], &workload());
    assert!(responses(&output).iter().all(|response| response["status"] == "ok"), "{}", String::from_utf8_lossy(&output.stdout));
    let clean = tool(&sandbox, "aerodb-verify", &["--json"]);
    let report: Value = serde_json::from_slice(&clean.stdout).expect("verify --json");
    assert_eq!(clean.status.code(), Some(0), "{report}");
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0));

    for args in [
        vec!["wal", "--json"],
        vec!["pages", "--json"],
        vec!["summary", "--json"],
        vec!["page", "0", "--json"],
        vec!["page", "0", "--index", "--json"],
    ] {
        let output = tool(&sandbox, "aerodb-inspect", &args);
        assert_eq!(output.status.code(), Some(0), "inspect {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).unwrap_or_else(|error| panic!("inspect {args:?} --json: {error}"));
    }
    let human = tool(&sandbox, "aerodb-inspect", &["summary"]);
    assert_eq!(human.status.code(), Some(0));
    assert!(!human.stdout.is_empty());

    // Flip one byte inside the record area of document page 0.
    let segment = sandbox.data().join("data/segment-000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[4000] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let damaged = tool(&sandbox, "aerodb-verify", &["--json"]);
    assert_eq!(damaged.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&damaged.stdout).expect("verify --json");
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .any(|problem| problem["page"] == 0 && problem["file"].as_str().is_some_and(|file| file.ends_with("segment-000000.seg"))),
        "{report}"
    );
    // The engine refuses the same damage.
    let refused = sandbox.aerodb(&["query"], "");
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn verify_after_sigkill_reports_notes_not_problems() {
    let sandbox = sandbox_with_schemas();
    let mut server = sandbox.start(&[]);
    for index in 0..20 {
        let response = server.request(&insert_request("user", &user_doc(&format!("k{index}"), "x", index))).expect("response");
        assert_eq!(response["status"], "ok");
    }
    server.kill();
    let output = tool(&sandbox, "aerodb-verify", &["--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("verify --json");
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report["notes"].as_array().is_some_and(|notes| !notes.is_empty()), "{report}");
}

/// Runs a tool to the end and returns its output and its peak resident set
/// size in KiB: the highest `VmHWM` read from `/proc/PID/status` while it
/// runs (polled; the kernel's own high-water mark, so no peak between polls
/// is missed, only growth in the last instant). `wait4`'s `ru_maxrss` would
/// count the test process itself, which the child shares until `exec`.
fn tool_measured(sandbox: &Sandbox, name: &str, args: &[&str]) -> (std::process::Output, u64) {
    use std::io::Read;
    let mut child = Command::new(binary(name))
        .args(args)
        .arg("--config")
        .arg(sandbox.config())
        .current_dir(sandbox.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tool");
    let mut stdout_pipe = child.stdout.take().expect("stdout");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout_pipe.read_to_end(&mut bytes).expect("read stdout");
        bytes
    });
    let stderr = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stderr_pipe.read_to_end(&mut bytes).expect("read stderr");
        bytes
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let output = std::process::Output { status, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") };
    (output, peak_kib)
}

fn import_users(sandbox: &Sandbox, from: usize, to: usize) {
    let lines: Vec<String> = (from..to)
        .map(|index| user_doc(&format!("u{index:07}"), &format!("name {}", index % 977), (index % 90) as i64).to_string())
        .collect();
    let file = sandbox.path().join("users.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let output = sandbox.aerodb(&["import", "--schema", "user", "--version", "v1", file.to_str().unwrap()], "");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Verify's memory does not follow the database: with a small `--memory`
/// its sorts spill, its answer is the same as with the default bound, and
/// its peak RSS stays flat while the database grows fourfold. The same for
/// `aerodb-inspect wal`, which streams.
#[test]
fn verify_and_inspect_stay_within_a_small_memory_bound_as_the_database_grows() {
    let sandbox = sandbox_with_schemas();
    let mut peaks = Vec::new();
    for (from, to) in [(0, 6_000), (6_000, 24_000)] {
        import_users(&sandbox, from, to);
        let (bounded, verify_kib) = tool_measured(&sandbox, "aerodb-verify", &["--json", "--memory", "1048576"]);
        let bounded: Value = serde_json::from_slice(&bounded.stdout).expect("verify --json");
        assert_eq!(bounded["summary"]["clean"], true, "{bounded}");
        assert_eq!(bounded["checked"]["documents"], to as u64);
        assert!(bounded["checked"]["sort_spilled_bytes"].as_u64().unwrap() > 0, "a 1 MiB bound must make the sorts spill: {bounded}");
        let unbounded = tool(&sandbox, "aerodb-verify", &["--json"]);
        let unbounded: Value = serde_json::from_slice(&unbounded.stdout).expect("verify --json");
        assert_eq!(unbounded["checked"]["sort_spilled_bytes"], 0);
        let without_spill = |report: &Value| {
            let mut checked = report["checked"].clone();
            checked.as_object_mut().unwrap().remove("sort_spilled_bytes");
            (checked, report["problems"].clone(), report["notes"].clone())
        };
        assert_eq!(without_spill(&bounded), without_spill(&unbounded));
        let (wal, wal_kib) = tool_measured(&sandbox, "aerodb-inspect", &["wal", "--json"]);
        let wal: Value = serde_json::from_slice(&wal.stdout).expect("inspect wal --json");
        assert_eq!(wal["records"].as_array().map(Vec::len), Some(to));
        peaks.push((verify_kib, wal_kib));
    }
    let ((verify_small, wal_small), (verify_large, wal_large)) = (peaks[0], peaks[1]);
    eprintln!("peak RSS KiB: verify {verify_small} -> {verify_large}, inspect wal {wal_small} -> {wal_large}");
    assert!(verify_small > 0 && wal_small > 0, "the peaks were never read");
    assert!(verify_large <= verify_small + 4096, "verify peak RSS grew with the database: {verify_small} KiB -> {verify_large} KiB");
    assert!(wal_large <= wal_small + 4096, "inspect wal peak RSS grew with the database: {wal_small} KiB -> {wal_large} KiB");
    assert!(verify_large < 48 * 1024, "verify peak RSS {verify_large} KiB with --memory 1 MiB");
}

/// Verify and `inspect wal` beside a running server that keeps writing:
/// every run ends with no problem (a half-written WAL record or segment page
/// is not damage), says what it could not judge, and `inspect wal` sees at
/// least every write acknowledged before it started.
#[test]
fn verify_and_inspect_beside_a_server_that_keeps_writing_report_no_false_damage() {
    let sandbox = sandbox_with_schemas();
    let mut server = sandbox.start(&[]);
    let mut acknowledged = 0usize;
    let write = |server: &mut aerodb_tests::Server, acknowledged: &mut usize| {
        let index = *acknowledged;
        let request = if index % 7 == 3 {
            insert_request("note", &note_doc(&format!("n{index}"), "live", 1, 5000 + index % 3000))
        } else if index % 7 == 5 {
            // Rewrites a large note of two writes ago with another size:
            // its overflow pages are freed and handed to other chains while
            // the tools read (the case that once gave false damage).
            update_request("note", &note_doc(&format!("n{}", index - 2), "live", 2, 2000 + (index % 5) * 7000))
        } else {
            insert_request("user", &user_doc(&format!("w{index}"), &format!("name{}", index % 11), (index % 80) as i64))
        };
        let response = server.request(&request).expect("response");
        assert_eq!(response["status"], "ok", "{response}");
        *acknowledged += 1;
    };
    // Every write but the updates (index % 7 == 5) adds a document.
    let documents_after = |writes: usize| writes - (writes + 1) / 7;
    for _ in 0..300 {
        write(&mut server, &mut acknowledged);
    }
    let mut during = 0;
    for round in 0..16 {
        let before = acknowledged;
        let config = sandbox.config();
        let folder = sandbox.path().to_path_buf();
        let (name, args): (&str, Vec<&str>) =
            if round % 2 == 0 { ("aerodb-verify", vec!["--json"]) } else { ("aerodb-inspect", vec!["wal", "--json"]) };
        let mut child = Command::new(binary(name))
            .args(&args)
            .arg("--config")
            .arg(&config)
            .current_dir(&folder)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tool");
        let mut stdout_pipe = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut stdout_pipe, &mut bytes).expect("read stdout");
            bytes
        });
        // Writes go on, acknowledged, for as long as the tool runs.
        while child.try_wait().expect("try_wait").is_none() {
            write(&mut server, &mut acknowledged);
        }
        let mut output = child.wait_with_output().expect("tool output");
        output.stdout = stdout.join().expect("stdout");
        during += acknowledged - before;
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{name} --json: {error}"));
        assert_eq!(output.status.code(), Some(0), "{name}: {report}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("LOCK is held"), "{name} warns that the database is in use");
        if name == "aerodb-verify" {
            assert_eq!(report["problems"].as_array().map(Vec::len), Some(0), "{report}");
            let notes = report["notes"].as_array().expect("notes");
            assert!(notes.iter().any(|note| note["message"].as_str().is_some_and(|text| text.contains("running server"))), "{report}");
            assert!(report["checked"]["documents"].as_u64().unwrap() >= documents_after(before) as u64, "{report}");
        } else {
            assert!(report["records"].as_array().unwrap().len() >= before, "inspect saw fewer records than were acknowledged");
            // Every record is whole, but the last may still be in flight.
            let records = report["records"].as_array().unwrap();
            let (last, earlier) = records.split_last().unwrap();
            assert!(earlier.iter().all(|record| record["status"] == "ok"), "{report}");
            assert!(last["status"] == "ok" || last["status"] == "torn", "{report}");
        }
    }
    assert!(during >= 16, "only {during} writes were acknowledged while the tools ran");
    let finished = server.finish();
    assert!(finished.status.success());
    // Stopped cleanly, the same database verifies completely.
    let clean = tool(&sandbox, "aerodb-verify", &["--json"]);
    let report: Value = serde_json::from_slice(&clean.stdout).expect("verify --json");
    assert_eq!(clean.status.code(), Some(0), "{report}");
    assert_eq!(report["checked"]["documents"], documents_after(acknowledged) as u64);
    assert_eq!(report["notes"].as_array().map(Vec::len), Some(0), "{report}");
}

/// Verify beside a server that rewrites large documents as fast as a
/// pipelined client can send them: their overflow pages are freed and
/// handed to other chains while verify reads. Every run reports no problem.
#[test]
fn verify_beside_a_server_rewriting_large_documents_reports_no_false_damage() {
    use std::io::{BufRead, Write};
    let sandbox = sandbox_with_schemas();
    let mut server = sandbox.start(&[]);
    for index in 0..40 {
        let response =
            server.request(&insert_request("note", &note_doc(&format!("big{index}"), "t", 1, 3000 + index * 700))).expect("response");
        assert_eq!(response["status"], "ok", "{response}");
    }
    let mut stdin = server.stdin.take().expect("stdin");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_stop = stop.clone();
    // Pipelined rewrites: sizes cycle from one page of overflow to eight.
    let writer = std::thread::spawn(move || {
        let mut round = 0usize;
        while !writer_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut batch = String::new();
            for index in 0..40 {
                let size = 2500 + ((round + index) % 9) * 3500;
                batch.push_str(&update_request("note", &note_doc(&format!("big{index}"), "t", round as i64 + 2, size)));
                batch.push('\n');
            }
            if stdin.write_all(batch.as_bytes()).and_then(|()| stdin.flush()).is_err() {
                break;
            }
            round += 1;
        }
        drop(stdin);
        round
    });
    let mut stdout = std::mem::replace(&mut server.stdout, std::io::BufReader::new(tempfile_stdout()));
    let reader = std::thread::spawn(move || {
        let mut acknowledged = 0u64;
        let mut line = String::new();
        while stdout.read_line(&mut line).is_ok_and(|read| read > 0) {
            assert!(line.contains("\"ok\""), "{line}");
            acknowledged += 1;
            line.clear();
        }
        acknowledged
    });
    for _ in 0..12 {
        let output = tool(&sandbox, "aerodb-verify", &["--json"]);
        let report: Value = serde_json::from_slice(&output.stdout).expect("verify --json");
        assert_eq!(output.status.code(), Some(0), "{report}");
        assert_eq!(report["problems"].as_array().map(Vec::len), Some(0), "{report}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.join().expect("writer");
    let acknowledged = reader.join().expect("reader");
    assert!(rounds >= 2 && acknowledged >= 80, "the writer kept rewriting: {rounds} rounds, {acknowledged} answers");
    let _ = server.wait_exit(std::time::Duration::from_secs(60));
    let clean = tool(&sandbox, "aerodb-verify", &["--json"]);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
}

/// A stand-in reader for the moved-out server stdout (never read).
fn tempfile_stdout() -> std::process::ChildStdout {
    let child = Command::new("true").stdout(std::process::Stdio::piped()).spawn().expect("spawn true");
    child.stdout.expect("stdout")
}
