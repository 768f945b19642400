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

#[test]
fn special_and_oversized_files_are_refused_at_once() {
    let sandbox = Sandbox::with_user_schema();
    let started = std::time::Instant::now();
    // A config that is a device: refused, never read without end.
    let output = Command::new(binary("aerodb")).args(["query", "--config", "/dev/zero"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AERO_CONFIG_INVALID"));
    // `schema add` of a device.
    let output = sandbox.aerodb(&["schema", "add", "/dev/zero"], "");
    assert_eq!(responses_code(&output), "AERO_SCHEMA_INVALID");
    // A FIFO in place of metadata/state.json after a clean shutdown:
    // refused at boot, not waited on.
    assert!(sandbox.aerodb(&["query"], "").status.success());
    assert!(sandbox.data().join("clean_shutdown").exists());
    let state = sandbox.data().join("metadata/state.json");
    let saved = std::fs::read(&state).unwrap();
    std::fs::remove_file(&state).unwrap();
    let fifo = std::ffi::CString::new(state.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let output = sandbox.aerodb(&["query"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a regular file"), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::remove_file(&state).unwrap();
    std::fs::write(&state, saved).unwrap();
    // A sparse 3 GiB MANIFEST is refused by its size, not read.
    let manifest = sandbox.data().join("MANIFEST");
    let original = std::fs::read(&manifest).unwrap();
    std::fs::OpenOptions::new().write(true).open(&manifest).unwrap().set_len(3 << 30).unwrap();
    let output = sandbox.aerodb(&["query"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AERO_METADATA_CORRUPTION"), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::write(&manifest, original).unwrap();
    // A blank data_dir.
    sandbox.write_config(r#"{"data_dir": "   "}"#);
    let output = sandbox.aerodb(&["init"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(!sandbox.path().join("   ").exists());
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "nothing blocked");
}

fn responses_code(output: &std::process::Output) -> String {
    let lines = aerodb_tests::responses(output);
    lines.first().and_then(|line| line["code"].as_str()).unwrap_or_default().to_string()
}

#[test]
fn a_deleted_schema_hashes_file_is_corruption_not_a_fresh_start() {
    let sandbox = Sandbox::with_user_schema();
    assert!(sandbox.aerodb(&["query"], &insert_user("1", "alice", 30)).status.success());
    let hashes = sandbox.data().join("metadata/schema_hashes.json");
    std::fs::remove_file(&hashes).unwrap();
    // An edited schema file must not be trusted again.
    let schema = sandbox.data().join("metadata/schemas/user_v1.json");
    let edited = std::fs::read_to_string(&schema).unwrap().replace("\"age\"", "\"age\" ");
    std::fs::write(&schema, edited).unwrap();
    for _ in 0..2 {
        let output = sandbox.aerodb(&["query"], "");
        assert_eq!(output.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("AERO_METADATA_CORRUPTION"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!hashes.exists(), "the boot does not re-create the file");
    }
    let output = Command::new(binary("aerodb-verify")).arg("--config").arg(sandbox.config()).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "verify agrees: {}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn concurrent_inits_give_exactly_one_database() {
    for round in 0..30 {
        let sandbox = Sandbox::new();
        // A folder of the user's that happens to look like a staging name.
        std::fs::create_dir(sandbox.path().join(".data.init")).unwrap();
        let children: Vec<_> = (0..3)
            .map(|_| {
                Command::new(binary("aerodb"))
                    .args(["init", "--config"])
                    .arg(sandbox.config())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children.into_iter().map(|child| child.wait_with_output().unwrap()).collect();
        let succeeded = outputs.iter().filter(|output| output.status.code() == Some(0)).count();
        assert_eq!(succeeded, 1, "round {round}: {outputs:?}");
        for output in outputs.iter().filter(|output| output.status.code() != Some(0)) {
            assert_eq!(output.status.code(), Some(2));
            assert!(String::from_utf8_lossy(&output.stderr).contains("AERO_STORAGE_EXISTS"), "round {round}: {output:?}");
        }
        let mut left: Vec<String> =
            std::fs::read_dir(sandbox.path()).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, vec![".data.init", "aerodb.json", "data"], "round {round}: nothing else left behind");
        let output = sandbox.aerodb(&["query"], "");
        assert_eq!(output.status.code(), Some(0), "round {round}: the database opens: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn a_database_the_process_may_not_read_is_a_permission_error_not_uninitialized() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::with_user_schema();
    // The data directory stays owner-only (0700, root's); the config is
    // readable by anyone, and the sandbox folder may be entered.
    std::fs::set_permissions(sandbox.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(sandbox.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    let output = if is_root {
        // Run as the unprivileged user "nobody" (65534).
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(binary("aerodb"))
            .args(["query", "--config"])
            .arg(sandbox.config())
            .stdin(Stdio::null())
            .output()
            .expect("setpriv runs")
    } else {
        // Not root: take the permission away from ourselves instead.
        std::fs::set_permissions(sandbox.data(), std::fs::Permissions::from_mode(0o000)).unwrap();
        let output =
            Command::new(binary("aerodb")).args(["query", "--config"]).arg(sandbox.config()).stdin(Stdio::null()).output().unwrap();
        std::fs::set_permissions(sandbox.data(), std::fs::Permissions::from_mode(0o700)).unwrap();
        output
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AERO_STORAGE_IO_ERROR") && stderr.contains("ermission denied"), "{stderr}");
    assert!(!stderr.contains("AERO_STORAGE_UNINITIALIZED"), "{stderr}");
}

/// Odd things at the names of a data directory, each judged alike by the
/// boot and `aerodb-verify` (TOOLS.md: the boot refuses exactly when verify
/// reports a problem).
#[test]
fn what_is_at_a_name_is_judged_alike_by_the_boot_and_verify() {
    use std::os::unix::ffi::OsStrExt;
    let boot = |sandbox: &Sandbox| sandbox.aerodb(&["query"], "");
    let verify = |sandbox: &Sandbox| {
        let output = Command::new(binary("aerodb-verify")).arg("--config").arg(sandbox.config()).arg("--json").output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let fresh = || {
        let sandbox = Sandbox::with_user_schema();
        assert!(sandbox.aerodb(&["query"], &insert_user("1", "alice", 30)).status.success());
        sandbox
    };

    // A folder (with content) inside indexes/: removed by the boot; a note for verify.
    let sandbox = fresh();
    std::fs::create_dir_all(sandbox.data().join("indexes/leftover/inner")).unwrap();
    std::fs::write(sandbox.data().join("indexes/leftover/inner/x"), b"x").unwrap();
    let (code, report) = verify(&sandbox);
    assert_eq!(code, Some(0), "{report}");
    assert!(boot(&sandbox).status.success());
    assert!(!sandbox.data().join("indexes/leftover").exists());

    // indexes/ as a link to nothing: the link goes, the folder is made
    // again. (After a clean shutdown verify reports the missing index files
    // all the same: the one documented exception, TOOLS.md.)
    let sandbox = fresh();
    std::fs::remove_dir_all(sandbox.data().join("indexes")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/aerodb-indexes", sandbox.data().join("indexes")).unwrap();
    assert!(boot(&sandbox).status.success(), "{}", String::from_utf8_lossy(&boot(&sandbox).stderr));
    assert!(sandbox.data().join("indexes").is_dir());

    // LOCK as a FIFO: refused by both.
    let sandbox = fresh();
    std::fs::remove_file(sandbox.data().join("LOCK")).unwrap();
    let fifo = std::ffi::CString::new(sandbox.data().join("LOCK").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let (code, report) = verify(&sandbox);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("LOCK is not a regular file"), "{report}");
    assert_eq!(aerodb_tests::fatal_error(&boot(&sandbox))["code"], "AERO_STORAGE_IO_ERROR");

    // LOCK as a link to nothing: refused by both.
    let sandbox = fresh();
    std::fs::remove_file(sandbox.data().join("LOCK")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/aerodb-lock", sandbox.data().join("LOCK")).unwrap();
    let (code, report) = verify(&sandbox);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(aerodb_tests::fatal_error(&boot(&sandbox))["code"], "AERO_STORAGE_IO_ERROR");

    // The marker as a link to nothing after a clean shutdown: it counts as
    // the marker (the state file holds), the boot removes it, and the next
    // shutdown writes a real one.
    let sandbox = fresh();
    std::fs::remove_file(sandbox.data().join("clean_shutdown")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/aerodb-marker", sandbox.data().join("clean_shutdown")).unwrap();
    let (code, report) = verify(&sandbox);
    assert_eq!(code, Some(0), "{report}");
    let output = sandbox.aerodb(&["query"], &insert_user("2", "bob", 31));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(sandbox.data().join("clean_shutdown").is_file());

    // A schema file whose name is not UTF-8: AERO_SCHEMA_INVALID, and a problem for verify.
    let sandbox = fresh();
    let name = std::ffi::OsStr::from_bytes(b"user_v1\xff.json");
    std::fs::write(sandbox.data().join("metadata/schemas").join(name), aerodb_tests::USER_SCHEMA).unwrap();
    let (code, report) = verify(&sandbox);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("not UTF-8"), "{report}");
    assert_eq!(aerodb_tests::fatal_error(&boot(&sandbox))["code"], "AERO_SCHEMA_INVALID");
}
