//! `aerodb backup`, `aerodb export` and `aerodb import` (docs/BACKUP.md).

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use aerodb_engine::requests::{REQUEST_DEPTH_MAX, REQUEST_SIZE_MAX_BYTES, REQUEST_VALUES_MAX};
use aerodb_engine::{AeroError, Database, ErrorCode, Mode};
use aerodb_format::json::JsonErrorKind;
use serde_json::{json, Map, Value};

use crate::{report_fatal, EXIT_OK, EXIT_REQUEST_FAILED};

/// Progress lines on stderr, at most one a second, only when it is a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        // SAFETY: isatty only inspects the descriptor.
        let enabled = unsafe { libc::isatty(libc::STDERR_FILENO) } == 1;
        let now = Instant::now();
        Progress { enabled, started: now, last: now }
    }

    fn tick(&mut self, what: impl FnOnce() -> String) {
        if self.enabled && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            aerodb_engine::log::write_stderr(&format!("\r{} ({:.0} s)   ", what(), self.started.elapsed().as_secs_f64()));
        }
    }

    fn done(&self) {
        if self.enabled && self.started.elapsed() >= Duration::from_secs(1) {
            aerodb_engine::log::write_stderr("\n");
        }
    }
}

fn print_line<W: Write + ?Sized>(out: &mut W, value: &Value) -> bool {
    serde_json::to_writer(&mut *out, value).is_ok() && out.write_all(b"\n").is_ok()
}

fn open(config: &Path) -> Result<Database, u8> {
    let database = Database::open(config).map_err(|error| report_fatal(&error.with_severity(aerodb_engine::Severity::Fatal)))?;
    crate::allocator_after_boot();
    Ok(database)
}

/// `aerodb backup DEST`.
pub fn backup(config: &Path, dest: &Path, pretty: bool) -> u8 {
    let progress = Progress::new();
    if progress.enabled {
        aerodb_engine::log::write_stderr(&format!("backing up to {} …\n", dest.display()));
    }
    match aerodb_engine::backup::backup(config, dest) {
        Ok(summary) => {
            let data = json!({
                "dest": summary.dest.display().to_string(),
                "records": summary.records,
                "last_seq": summary.last_seq.0,
                "wal_bytes": summary.wal_bytes,
                "documents": summary.documents,
                "schema_files": summary.schema_files,
                "bytes_copied": summary.bytes_copied,
                "verified": true,
                "elapsed_ms": summary.elapsed_ms,
            });
            let response = json!({"status": "ok", "data": data});
            let text = if pretty { serde_json::to_string_pretty(&response) } else { serde_json::to_string(&response) };
            let mut stdout = std::io::stdout().lock();
            match text.map_err(std::io::Error::other).and_then(|text| writeln!(stdout, "{text}")).and_then(|()| stdout.flush()) {
                Ok(()) => EXIT_OK,
                Err(_) => EXIT_REQUEST_FAILED,
            }
        }
        Err(error) => report_fatal(&error.with_severity(aerodb_engine::Severity::Fatal)),
    }
}

/// `aerodb export [--schema ID --version V]`.
pub fn export(config: &Path, only: Option<(&str, &str)>) -> u8 {
    let database = match open(config) {
        Ok(database) => database,
        Err(code) => return code,
    };
    let mut progress = Progress::new();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    let mut written = 0u64;
    let mut closed = false;
    let result = database.export(only, |schema, document| {
        let ok = match only {
            Some(_) => serde_json::to_writer(&mut out, document).is_ok() && out.write_all(b"\n").is_ok(),
            None => {
                let mut line = Map::with_capacity(3);
                line.insert("schema_id".into(), Value::from(schema.schema_id.as_str()));
                line.insert("schema_version".into(), Value::from(schema.schema_version.as_str()));
                line.insert("document".into(), Value::Object(document.clone()));
                print_line(&mut out, &Value::Object(line))
            }
        };
        if !ok {
            closed = true;
            return Err(AeroError::new(ErrorCode::StorageIoError, "stdout closed"));
        }
        written += 1;
        progress.tick(|| format!("exported {written} documents"));
        Ok(())
    });
    progress.done();
    let flushed = out.flush().is_ok();
    let code = match result {
        Ok(_) if flushed => EXIT_OK,
        Ok(_) => {
            aerodb_engine::log::warn("cli", "stdout_closed", &[]);
            EXIT_REQUEST_FAILED
        }
        Err(_) if closed => {
            aerodb_engine::log::warn("cli", "stdout_closed", &[]);
            EXIT_REQUEST_FAILED
        }
        Err(error) => {
            let code = report_fatal(&error);
            drop(database);
            return code;
        }
    };
    match database.shutdown() {
        Ok(()) => code,
        Err(error) => report_fatal(&error),
    }
}

/// Most lines committed as one batch (the engine's group bound).
const IMPORT_BATCH_LINES: usize = aerodb_engine::db::GROUP_WRITES_MAX;
/// A batch takes no further line once its text reaches this size.
const IMPORT_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Reads one line of at most `REQUEST_SIZE_MAX_BYTES` bytes into `line`
/// (without its newline). Returns `None` at the end of input, else whether
/// the line was longer than the cap (its bytes past the cap are dropped).
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut oversized = false;
    let mut any = false;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(if any { Some(oversized) } else { None });
        }
        any = true;
        let (part, found) = match buffer.iter().position(|&byte| byte == b'\n') {
            Some(position) => (&buffer[..position], Some(position)),
            None => (buffer, None),
        };
        let room = REQUEST_SIZE_MAX_BYTES.saturating_sub(line.len());
        if part.len() > room {
            oversized = true;
        }
        line.extend_from_slice(&part[..part.len().min(room)]);
        let used = found.map(|position| position + 1).unwrap_or(buffer.len());
        input.consume(used);
        if found.is_some() {
            return Ok(Some(oversized));
        }
    }
}

/// A line as one JSON document, strictly (the request stream's rules and limits).
fn parse_line(line: &[u8], oversized: bool) -> Result<Value, AeroError> {
    if oversized {
        return Err(AeroError::new(ErrorCode::QueryInvalid, format!("line is over {REQUEST_SIZE_MAX_BYTES} bytes")));
    }
    aerodb_format::json::parse_slice(line, REQUEST_DEPTH_MAX, REQUEST_VALUES_MAX).map_err(|error| {
        if matches!(error.kind, JsonErrorKind::DuplicateKey | JsonErrorKind::Number) {
            let path = error.path.join(".").replace(".[", "[");
            AeroError::new(ErrorCode::SchemaValidationFailed, format!("document field '{path}': {}", error.message)).detail("path", path)
        } else {
            AeroError::new(ErrorCode::QueryInvalid, format!("malformed JSON: {error}")).detail("column", error.column)
        }
    })
}

struct Tally {
    lines: u64,
    inserted: u64,
    rejected: std::collections::BTreeMap<&'static str, u64>,
}

/// `aerodb import --schema ID --version V FILE`.
pub fn import(config: &Path, schema: &str, version: &str, file: &Path, stop_on_error: bool) -> u8 {
    let input: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::BufReader::with_capacity(256 * 1024, std::io::stdin()))
    } else {
        // A file that cannot be opened (or a folder) stops the import before
        // the database is opened: a fatal storage error, like any file the
        // command cannot read.
        let opened = std::fs::File::open(file).and_then(|handle| {
            if handle.metadata()?.is_dir() {
                return Err(std::io::Error::other("is a folder, not a file of lines"));
            }
            Ok(handle)
        });
        match opened {
            Ok(handle) => Box::new(std::io::BufReader::with_capacity(256 * 1024, handle)),
            Err(error) => {
                return report_fatal(
                    &AeroError::new(ErrorCode::StorageIoError, format!("cannot open {}: {error}", file.display()))
                        .detail("file", file.display().to_string())
                        .with_severity(aerodb_engine::Severity::Fatal),
                )
            }
        }
    };
    let mut input = input;
    let mut database = match open(config) {
        Ok(database) => database,
        Err(code) => return code,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut tally = Tally { lines: 0, inserted: 0, rejected: Default::default() };
    let mut progress = Progress::new();
    let mut batch: Vec<(u64, Value)> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut line = Vec::new();
    let mut stopped = false;
    let mut read_failure = None;
    // Answers a batch; false once the import must stop (an error with
    // --stop-on-error, or a fatal error). Lines read after the one it
    // stopped at were never run: `lines` then ends at that line.
    let run = |database: &mut Database, batch: &mut Vec<(u64, Value)>, tally: &mut Tally, out: &mut dyn Write| -> bool {
        let (numbers, requests): (Vec<u64>, Vec<Value>) = batch.drain(..).unzip();
        let results = if stop_on_error {
            database.execute_batch_until_error(&requests, Mode::Query)
        } else {
            database.execute_batch(&requests, Mode::Query)
        };
        let mut go_on = true;
        for (number, result) in numbers.iter().zip(&results) {
            match result {
                Ok(_) => tally.inserted += 1,
                Err(error) => {
                    let mut report = error.to_json();
                    report["line"] = Value::from(*number);
                    let _ = print_line(out, &report);
                    *tally.rejected.entry(error.code.as_str()).or_default() += 1;
                    if go_on && (stop_on_error || error.is_fatal()) {
                        go_on = false;
                        tally.lines = *number;
                    }
                }
            }
        }
        go_on
    };
    loop {
        let read = match read_line(&mut input, &mut line) {
            Ok(read) => read,
            Err(error) => {
                read_failure = Some(error);
                break;
            }
        };
        let Some(oversized) = read else { break };
        tally.lines += 1;
        let number = tally.lines;
        if !oversized && line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let document = match parse_line(&line, oversized) {
            Ok(document) => document,
            Err(error) => {
                // Lines before it are committed first, so the order of effects is the file's.
                if !batch.is_empty() && !run(&mut database, &mut batch, &mut tally, &mut out) {
                    stopped = true;
                    break;
                }
                batch_bytes = 0;
                let mut report = error.to_json();
                report["line"] = Value::from(number);
                let _ = print_line(&mut out, &report);
                *tally.rejected.entry(error.code.as_str()).or_default() += 1;
                if stop_on_error {
                    stopped = true;
                    break;
                }
                continue;
            }
        };
        let request = json!({"op": "insert", "schema_id": schema, "schema_version": version, "document": document});
        batch_bytes += line.len();
        batch.push((number, request));
        if batch.len() >= IMPORT_BATCH_LINES || batch_bytes >= IMPORT_BATCH_BYTES {
            batch_bytes = 0;
            if !run(&mut database, &mut batch, &mut tally, &mut out) {
                stopped = true;
                break;
            }
        }
        progress.tick(|| format!("imported {} of {} lines", tally.inserted, tally.lines));
    }
    if !stopped && !batch.is_empty() && !run(&mut database, &mut batch, &mut tally, &mut out) {
        stopped = true;
    }
    progress.done();
    let rejected: u64 = tally.rejected.values().sum();
    let summary = json!({
        "status": if rejected == 0 && read_failure.is_none() { "ok" } else { "error" },
        "data": {
            "lines_read": tally.lines,
            "inserted": tally.inserted,
            "rejected": rejected,
            "rejected_by_code": tally.rejected,
            "stopped_early": stopped,
        }
    });
    let printed = print_line(&mut out, &summary) && out.flush().is_ok();
    drop(out);
    if let Some(error) = read_failure {
        aerodb_engine::log::warn("cli", "input_read_failed", &[("reason", error.to_string().into())]);
    }
    if let Some(fatal) = database.fatal_error() {
        return report_fatal(&fatal.clone());
    }
    let failed = rejected > 0 || !printed || summary["status"] != "ok";
    match database.shutdown() {
        Ok(()) if failed => EXIT_REQUEST_FAILED,
        Ok(()) => EXIT_OK,
        Err(error) => report_fatal(&error),
    }
}
