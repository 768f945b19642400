//! Harness for the end-to-end tests: finds the built binaries, makes a
//! fresh directory with a config and the install guide's schema, runs
//! commands with stdin, and drives a long-running `aerodb start`.
//!
//! The binaries are those `cargo test --workspace` builds beside the test
//! executables (`target/<profile>/aerodb`, `aerodb-inspect`, `aerodb-verify`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const USER_SCHEMA: &str = include_str!("../fixtures/user_v1.json");

pub const INSTALL_GUIDE_CONFIG: &str = r#"{
"data_dir": "./data",
"wal_sync_mode": "fsync",
"max_wal_size_bytes": 1073741824,
"max_memory_bytes": 536870912
}
"#;

/// Path of a binary built by this workspace.
pub fn binary(name: &str) -> PathBuf {
    let mut folder = std::env::current_exe().expect("test executable path");
    folder.pop();
    if folder.ends_with("deps") {
        folder.pop();
    }
    let path = folder.join(name);
    assert!(path.exists(), "{} is missing: run the tests with `cargo test --workspace`, which builds every binary", path.display());
    path
}

/// A scratch folder with `aerodb.json` (data_dir ./data).
pub struct Sandbox {
    pub folder: tempfile::TempDir,
}

impl Sandbox {
    /// A folder with the install guide's config, not yet initialised.
    pub fn new() -> Sandbox {
        let folder = tempfile::tempdir().expect("temporary folder");
        std::fs::write(folder.path().join("aerodb.json"), INSTALL_GUIDE_CONFIG).expect("write config");
        Sandbox { folder }
    }

    /// Initialised, with the install guide's schema written by hand into
    /// `metadata/schemas/` as the guide does.
    pub fn with_user_schema() -> Sandbox {
        let sandbox = Sandbox::new();
        let output = sandbox.aerodb(&["init"], "");
        assert!(output.status.success(), "init failed: {}", String::from_utf8_lossy(&output.stderr));
        std::fs::write(sandbox.data().join("metadata/schemas/user_v1.json"), USER_SCHEMA).expect("write schema");
        sandbox
    }

    pub fn path(&self) -> &Path {
        self.folder.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("aerodb.json")
    }

    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// A folder with `config` (the text of `aerodb.json`), not yet initialised.
    pub fn with_config(config: &str) -> Sandbox {
        let sandbox = Sandbox::new();
        sandbox.write_config(config);
        sandbox
    }

    /// Replaces `aerodb.json`.
    pub fn write_config(&self, config: &str) {
        std::fs::write(self.config(), config).expect("write config");
    }

    /// Writes a schema file by hand into `metadata/schemas/<name>`.
    pub fn write_schema(&self, name: &str, text: &str) {
        std::fs::write(self.data().join("metadata/schemas").join(name), text).expect("write schema");
    }

    /// The logical end of `data/wal/wal.log`: where its chain of records
    /// ends (the file is longer by its zero-filled preallocated space).
    pub fn wal_len(&self) -> u64 {
        let wal = std::fs::read(self.data().join("wal/wal.log")).expect("wal/wal.log");
        reliability::wal_records(&wal).last().map_or(40.min(wal.len()), |(_, end)| *end) as u64
    }

    /// Runs `aerodb <args> --config aerodb.json` in the sandbox with `stdin`.
    pub fn aerodb(&self, args: &[&str], stdin: &str) -> Output {
        self.aerodb_env(args, stdin, &[])
    }

    /// Like [`Sandbox::aerodb`] with raw bytes (not necessarily UTF-8) on stdin.
    pub fn aerodb_bytes(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut command = Command::new(binary("aerodb"));
        command.args(args).arg("--config").arg(self.config()).current_dir(self.path());
        run_with_stdin(command, stdin, &[])
    }

    pub fn aerodb_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(binary("aerodb"));
        command.args(args).arg("--config").arg(self.config()).current_dir(self.path());
        run_with_stdin(command, stdin.as_bytes(), env)
    }

    /// Runs `aerodb query` and returns the parsed response lines.
    pub fn query(&self, stdin: &str) -> Vec<Value> {
        let output = self.aerodb(&["query"], stdin);
        responses(&output)
    }

    /// Starts `aerodb start` with piped stdin/stdout.
    pub fn start(&self, env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(binary("aerodb"));
        command.arg("start").arg("--config").arg(self.config()).current_dir(self.path());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn aerodb start");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Server { child, stdin, stdout }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

pub fn run_with_stdin(mut command: Command, stdin: &[u8], env: &[(&str, &str)]) -> Output {
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let output = child.wait_with_output().expect("wait");
    let _ = writer.join();
    output
}

/// Every stdout line of a run, parsed as JSON.
pub fn responses(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line}")))
        .collect()
}

/// The JSON error object a fatal run printed on stderr (its last JSON line with a code).
pub fn fatal_error(output: &Output) -> Value {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value.get("code").is_some() && value.get("status").is_some())
        .unwrap_or_else(|| panic!("no fatal error object on stderr: {}", String::from_utf8_lossy(&output.stderr)))
}

/// Every stderr line of a run, parsed as a JSON log line; panics on a line
/// that is not a JSON object with `level`, `component` and `event` (or a
/// fatal error object with `status` and `code`).
pub fn log_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("stderr line is not JSON ({error}): {line}"));
            let is_log = ["level", "component", "event"].iter().all(|key| value.get(key).is_some_and(Value::is_string));
            let is_error = value.get("status").is_some() && value.get("code").is_some();
            assert!(is_log || is_error, "stderr line is neither a log line nor an error object: {line}");
            value
        })
        .collect()
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running `aerodb start`.
pub struct Server {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Sends one request line and waits for its response line.
    pub fn request(&mut self, request: &str) -> Option<Value> {
        let stdin = self.stdin.as_mut()?;
        writeln!(stdin, "{request}").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&line).ok(),
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with the pid of a child this test owns.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits (stdin left open) for the process to exit by itself, at most
    /// `timeout`; kills it and panics if it does not. Returns the exit status
    /// with the rest of stdout and all of stderr.
    pub fn wait_exit(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("aerodb start did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut stdout = Vec::new();
        let _ = self.stdout.read_to_end(&mut stdout);
        let mut stderr = Vec::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_end(&mut stderr);
        }
        drop(self.stdin.take());
        Output { status, stdout, stderr }
    }

    /// Closes stdin (EOF) and waits for the exit status.
    pub fn finish(mut self) -> Output {
        drop(self.stdin.take());
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut rest);
        let mut output = self.child.wait_with_output().expect("wait");
        output.stdout = rest.into_bytes();
        output
    }
}

/// An insert request for the install guide's schema.
pub fn insert_user(id: &str, name: &str, age: i64) -> String {
    format!(r#"{{"op":"insert","schema_id":"user","schema_version":"v1","document":{{"_id":"{id}","name":"{name}","age":{age}}}}}"#)
}

/// A query for one `_id`.
pub fn find_user(id: &str) -> String {
    format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"_id":"{id}"}},"limit":1}}"#)
}
pub mod reliability;
