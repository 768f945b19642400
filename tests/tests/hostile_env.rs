//! A hostile environment through the real binaries: output streams that are
//! closed or full, and a stderr that cannot be written. No binary panics
//! (exit 101); every failure to write an answer is reported by exit code.

use std::process::{Command, Stdio};

use aerodb_tests::{binary, insert_user, Sandbox};

const EXIT_PANIC: i32 = 101;

fn full_device() -> std::fs::File {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full")
}

#[test]
fn unwritable_stderr_never_panics_and_answers_still_arrive() {
    let sandbox = Sandbox::with_user_schema();
    let output = Command::new(binary("aerodb"))
        .args(["query", "--config"])
        .arg(sandbox.config())
        .stdin(Stdio::null())
        .stderr(full_device())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    // A write whose log lines are all lost is still acknowledged and durable.
    let mut child = Command::new(binary("aerodb"))
        .args(["query", "--config"])
        .arg(sandbox.config())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(full_device())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(insert_user("1", "alice", 30).as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), r#"{"status":"ok","data":[]}"#);
    assert!(sandbox.data().join("clean_shutdown").exists(), "the shutdown ran to the end");
    let found = sandbox.query(&aerodb_tests::find_user("1"));
    assert_eq!(found[0]["data"][0]["name"], "alice");
}

#[test]
fn init_reports_a_confirmation_it_cannot_write() {
    let sandbox = Sandbox::new();
    let output = Command::new(binary("aerodb")).args(["init", "--config"]).arg(sandbox.config()).stdout(full_device()).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn tools_end_quietly_on_a_closed_pipe_and_report_a_full_device() {
    let sandbox = Sandbox::with_user_schema();
    let mut requests = String::new();
    for id in 0..300 {
        requests.push_str(&insert_user(&id.to_string(), "someone", 30));
    }
    assert!(sandbox.aerodb(&["query"], &requests).status.success());
    for args in [&["wal"][..], &["--json", "wal"], &["pages"], &["summary"]] {
        // A reader that takes nothing: the pipe is closed before the tool writes.
        let mut child = Command::new(binary("aerodb-inspect"))
            .args(["--config"])
            .arg(sandbox.config())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(output.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    for (tool, args) in
        [("aerodb-verify", &[][..]), ("aerodb-verify", &["--json"]), ("aerodb-inspect", &["summary"]), ("aerodb-inspect", &["wal"])]
    {
        let output = Command::new(binary(tool)).args(["--config"]).arg(sandbox.config()).args(args).stdout(full_device()).output().unwrap();
        assert_ne!(output.status.code(), Some(EXIT_PANIC));
        assert_eq!(output.status.code(), Some(74), "{tool} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn deleting_the_lock_file_does_not_let_a_second_process_in() {
    let sandbox = Sandbox::with_user_schema();
    let mut server = sandbox.start(&[]);
    assert_eq!(server.request(&insert_user("1", "alice", 30)).unwrap()["status"], "ok");
    std::fs::remove_file(sandbox.data().join("LOCK")).unwrap();
    let output = sandbox.aerodb(&["query"], &insert_user("2", "bob", 40));
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AERO_STORAGE_LOCKED"));
    // The tools see the running server too.
    let output = Command::new(binary("aerodb-verify")).arg("--config").arg(sandbox.config()).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("LOCK is held"), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(server.request(&insert_user("3", "carol", 50)).unwrap()["status"], "ok");
    let output = server.finish();
    assert_eq!(output.status.code(), Some(0));
    // The next boot is clean and holds exactly the server's writes.
    let lines = sandbox.query(&format!("{}{}{}", aerodb_tests::find_user("1"), aerodb_tests::find_user("2"), aerodb_tests::find_user("3")));
    assert_eq!(lines[0]["data"][0]["name"], "alice");
    assert_eq!(lines[1]["data"], serde_json::json!([]));
    assert_eq!(lines[2]["data"][0]["name"], "carol");
}
