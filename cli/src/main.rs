//! `aerodb`: the command-line front of the engine. Thin by design: it
//! parses arguments, moves JSON between stdin/stdout and the `Database`
//! facade, handles signals and chooses the exit code (docs/API_SPEC.md).
//!
//! Exit codes: 0 every request succeeded; 1 at least one request was
//! answered with an error; 2 fatal; 64 bad command-line usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aerodb_engine::catalog;
use aerodb_engine::config;
use aerodb_engine::requests::{Item, RequestReader};
use aerodb_engine::{AeroError, Database, ErrorCode, Mode};
use clap::{Parser, Subcommand};

mod transfer;
use serde_json::{json, Value};

/// The binary's allocator: mimalloc. A request's life is many small,
/// short-lived allocations (parsed JSON, documents, keys); glibc's malloc
/// and free were over a quarter of the CPU of a bulk import (docs/BENCHMARKS.md).
/// The engine library itself leaves the choice to the program embedding it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Option numbers in the mimalloc 3 header that libmimalloc-sys 0.1.49
/// builds (the crate exports no constants for them).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's default delay before it returns freed memory (milliseconds).
const MI_PURGE_DELAY_DEFAULT: std::os::raw::c_long = 10;

/// For the boot: return freed memory to the system at once and commit
/// arenas as they are used. With mimalloc's defaults the boot's
/// short-lived per-thread key arenas left the peak RSS of a
/// 1,000,000-document boot above `max_memory_bytes` now and then (517-590
/// MiB of 512; 456-460 MiB so).
fn tune_allocator() {
    // SAFETY: mi_option_set only stores a value; called before any thread starts.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

/// After the boot: the default purge delay again, which serving needs (an
/// immediate purge of every freed block cost a bulk import about 12%).
pub(crate) fn allocator_after_boot() {
    // SAFETY: mi_option_set only stores a value, read when memory is purged.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, MI_PURGE_DELAY_DEFAULT) };
}

pub(crate) const EXIT_OK: u8 = 0;
pub(crate) const EXIT_REQUEST_FAILED: u8 = 1;
const EXIT_FATAL: u8 = 2;
const EXIT_USAGE: u8 = 64;

#[derive(Parser)]
#[command(name = "aerodb", version, propagate_version = true, about = "AeroDB: a strict, deterministic, embedded document database")]
struct Cli {
    /// Config file (data_dir is resolved against its folder).
    #[arg(long, global = true, default_value = "aerodb.json")]
    config: PathBuf,
    /// Print indented JSON responses instead of one line each.
    #[arg(long, global = true)]
    pretty: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory (fails if it exists).
    Init,
    /// Boot, then serve JSON requests from stdin until EOF, SIGINT or SIGTERM.
    Start,
    /// Boot, run the JSON requests on stdin, shut down.
    Query,
    /// Like query, but "op":"query" requests return their plans.
    Explain,
    /// Write a consistent, verified copy of the database to DEST (which must not exist).
    Backup { dest: PathBuf },
    /// Print documents as NDJSON on stdout, in _id order, exactly as stored.
    #[command(disable_version_flag = true)]
    Export {
        /// Only this schema (needs --version).
        #[arg(long, requires = "version")]
        schema: Option<String>,
        /// Only this schema version (needs --schema).
        #[arg(long, requires = "schema")]
        version: Option<String>,
    },
    /// Insert the NDJSON documents of FILE (`-` for stdin), group-committed.
    #[command(disable_version_flag = true)]
    Import {
        /// The schema of the documents.
        #[arg(long)]
        schema: String,
        /// The schema version of the documents.
        #[arg(long)]
        version: String,
        /// Stop at the first rejected line.
        #[arg(long)]
        stop_on_error: bool,
        /// NDJSON file, one document per line, or `-` for stdin.
        file: PathBuf,
    },
    /// Manage schema files.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Validate a schema file and install it (an existing version is never changed).
    Add { file: PathBuf },
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::from(EXIT_OK),
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    let code = match &cli.command {
        Command::Init => init(&cli),
        Command::Start => serve(&cli, Mode::Query),
        Command::Query => serve(&cli, Mode::Query),
        Command::Explain => serve(&cli, Mode::Explain),
        Command::Schema { action: SchemaAction::Add { file } } => schema_add(&cli, file),
        Command::Backup { dest } => transfer::backup(&cli.config, dest, cli.pretty),
        Command::Export { schema, version } => transfer::export(&cli.config, schema.as_deref().zip(version.as_deref())),
        Command::Import { schema, version, stop_on_error, file } => transfer::import(&cli.config, schema, version, file, *stop_on_error),
    };
    ExitCode::from(code)
}

/// Prints a fatal error as its JSON object on stderr.
pub(crate) fn report_fatal(error: &AeroError) -> u8 {
    aerodb_engine::log::write_stderr(&format!("{}\n", error.to_json()));
    EXIT_FATAL
}

fn print_response(cli: &Cli, response: &Value) -> bool {
    let text = if cli.pretty { serde_json::to_string_pretty(response) } else { serde_json::to_string(response) };
    let mut stdout = std::io::stdout().lock();
    let written = text.map_err(std::io::Error::other).and_then(|text| writeln!(stdout, "{text}")).and_then(|_| stdout.flush());
    written.is_ok()
}

fn init(cli: &Cli) -> u8 {
    match aerodb_engine::init(&cli.config).map_err(|error| error.with_severity(aerodb_engine::Severity::Fatal)) {
        Ok(()) => {
            let data_dir = config::load(&cli.config).map(|config| config.paths.root.display().to_string()).unwrap_or_default();
            // The database exists either way; a confirmation that cannot be
            // written is still a failure the caller must see.
            if print_response(cli, &json!({"status": "ok", "data": {"data_dir": data_dir}})) {
                EXIT_OK
            } else {
                aerodb_engine::log::warn("cli", "stdout_write_failed", &[("data_dir", data_dir.into())]);
                EXIT_REQUEST_FAILED
            }
        }
        Err(error) => report_fatal(&error),
    }
}

fn schema_add(cli: &Cli, file: &Path) -> u8 {
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => return report_fatal(&error),
    };
    if let Err(error) = aerodb_engine::db::check_initialized(&config.paths) {
        return report_fatal(&error.with_severity(aerodb_engine::Severity::Fatal));
    }
    match catalog::install(&config.paths, file) {
        Ok((schema, installed)) => {
            let data = json!({"schema_id": schema.schema_id, "schema_version": schema.schema_version, "installed": installed});
            if print_response(cli, &json!({"status": "ok", "data": data})) {
                EXIT_OK
            } else {
                aerodb_engine::log::warn("cli", "stdout_write_failed", &[]);
                EXIT_REQUEST_FAILED
            }
        }
        Err(error) if error.is_fatal() => report_fatal(&error),
        Err(error) => {
            print_response(cli, &error.to_json());
            EXIT_REQUEST_FAILED
        }
    }
}

/// Bytes read from stdin per `read` call.
const STDIN_CHUNK_BYTES: usize = 64 * 1024;
/// Most requests run as one batch (the engine commits the writes among
/// them as groups of at most `GROUP_WRITES_MAX`).
const BATCH_REQUESTS_MAX: usize = aerodb_engine::db::GROUP_WRITES_MAX;
/// A batch takes no further request once this much request text has been
/// read for it (so a batch holds at most this plus one request's text).
const BATCH_TEXT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Responses are gathered in a buffer of this size before they are written
/// (and always written before the process waits for input).
const STDOUT_BUFFER_BYTES: usize = 64 * 1024;

/// stdin as the request reader's input, on the thread that runs requests.
///
/// Two duties make it more than a `BufReader`: before it waits for input it
/// writes out every buffered response (so an interactive client gets each
/// answer at once, and a pipelined stream gets its answers in large
/// writes); and it waits with `poll` on stdin and on a self-pipe that the
/// signal handlers write to, so SIGINT, SIGTERM, SIGHUP or SIGQUIT end the
/// wait at once. A signal found while waiting is reported as an error of
/// kind `Interrupted` (the caller reads which signal from `signal`).
struct Stdin<'a> {
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// Gathering a batch: take only input that is already there (in the
    /// buffer or in the pipe); report `WouldBlock` instead of waiting.
    no_wait: bool,
    /// Bytes consumed so far (bounds the text of a batch).
    consumed: u64,
    signal_pipe: &'a std::os::unix::net::UnixStream,
    signal: &'a std::sync::atomic::AtomicUsize,
    output: &'a mut Output,
}

/// Buffered responses on stdout.
struct Output {
    writer: std::io::BufWriter<std::io::Stdout>,
    /// A write or flush failed (stdout closed or full): nothing more is written.
    failed: bool,
}

impl Output {
    /// Writes one response as a line, serialised straight into the buffer.
    fn write_value(&mut self, response: &Value, pretty: bool) {
        if self.failed {
            return;
        }
        let written = if pretty {
            serde_json::to_writer_pretty(&mut self.writer, response)
        } else {
            serde_json::to_writer(&mut self.writer, response)
        };
        if written.is_err() || self.writer.write_all(b"\n").is_err() {
            self.failed = true;
        }
    }

    fn flush(&mut self) {
        if !self.failed && self.writer.flush().is_err() {
            self.failed = true;
        }
    }
}

impl std::io::Read for Stdin<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let available = self.fill_buf()?;
        let length = available.len().min(out.len());
        out[..length].copy_from_slice(&available[..length]);
        self.consume(length);
        Ok(length)
    }
}

impl std::io::BufRead for Stdin<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        while self.start == self.end {
            if !self.no_wait {
                // About to wait: every answer so far goes out first.
                self.output.flush();
            }
            if self.signal.load(Ordering::SeqCst) != 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
            }
            let mut fds = [
                libc::pollfd { fd: libc::STDIN_FILENO, events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.signal_pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: `fds` is a valid array of two pollfd structures for the
            // duration of the call.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, if self.no_wait { 0 } else { -1 }) };
            if ready < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if fds[1].revents != 0 {
                // Drain the wake-up bytes (the pipe is non-blocking), so a
                // wake-up never leaves the pipe readable for ever.
                let mut drain = [0u8; 64];
                while matches!(std::io::Read::read(&mut &*self.signal_pipe, &mut drain), Ok(length) if length > 0) {}
            }
            if self.signal.load(Ordering::SeqCst) != 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
            }
            if fds[0].revents == 0 {
                if self.no_wait {
                    return Err(std::io::Error::from(std::io::ErrorKind::WouldBlock));
                }
                continue;
            }
            // SAFETY: the buffer is valid for `len` bytes of writes.
            let read = unsafe { libc::read(libc::STDIN_FILENO, self.buffer.as_mut_ptr().cast(), self.buffer.len()) };
            if read < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted || error.kind() == std::io::ErrorKind::WouldBlock {
                    if self.no_wait {
                        return Err(std::io::Error::from(std::io::ErrorKind::WouldBlock));
                    }
                    continue;
                }
                return Err(error);
            }
            self.start = 0;
            self.end = read as usize;
            if read == 0 {
                return Ok(&[]);
            }
        }
        Ok(&self.buffer[self.start..self.end])
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.end - self.start);
        self.consumed += amount as u64;
        self.start += amount;
    }
}

/// Registers the signals that end `start` with a graceful shutdown: each
/// stores its number in `signal` and wakes the self-pipe.
fn register_signals(signal: &std::sync::Arc<std::sync::atomic::AtomicUsize>, pipe: &std::os::unix::net::UnixStream) -> std::io::Result<()> {
    // Every signal a terminal sends to end a program ends the server with a
    // graceful shutdown: SIGINT (Ctrl-C), SIGQUIT (Ctrl-\\), SIGHUP (the
    // terminal closed), and SIGTERM. (SIGPIPE is ignored by the Rust runtime:
    // a closed stdout is a write error, handled where it is written.)
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    for number in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
        signal_hook::flag::register_usize(number, signal.clone(), number as usize)?;
        signal_hook::low_level::pipe::register(number, pipe.try_clone()?)?;
    }
    Ok(())
}

fn serve(cli: &Cli, mode: Mode) -> u8 {
    let signal = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (signal_read, signal_write) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(error) => return report_fatal(&AeroError::new(ErrorCode::InternalInvariant, format!("cannot make the signal pipe: {error}"))),
    };
    if let Err(error) = signal_read.set_nonblocking(true).and_then(|()| register_signals(&signal, &signal_write)) {
        return report_fatal(&AeroError::new(ErrorCode::InternalInvariant, format!("cannot install signal handlers: {error}")));
    }
    let mut database = match Database::open(&cli.config) {
        Ok(database) => database,
        // Every boot failure stops the process: report it as FATAL.
        Err(error) => return report_fatal(&error.with_severity(aerodb_engine::Severity::Fatal)),
    };
    allocator_after_boot();
    let mut output = Output { writer: std::io::BufWriter::with_capacity(STDOUT_BUFFER_BYTES, std::io::stdout()), failed: false };
    let mut failed = false;
    {
        let stdin = Stdin {
            buffer: vec![0; STDIN_CHUNK_BYTES],
            start: 0,
            end: 0,
            no_wait: false,
            consumed: 0,
            signal_pipe: &signal_read,
            signal: &signal,
            output: &mut output,
        };
        let mut reader = RequestReader::new(stdin);
        let mut batch: Vec<Value> = Vec::new();
        loop {
            // A signal is acted on between two batches: the requests in
            // flight always finish and get their answers.
            let pending = signal.load(std::sync::atomic::Ordering::SeqCst);
            if pending != 0 {
                aerodb_engine::log::info("cli", "signal", &[("signal", pending.into())]);
                break;
            }
            let first = match reader.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    aerodb_engine::log::warn("cli", "stdin_read_failed", &[("reason", error.to_string().into())]);
                    failed = true;
                    break;
                }
            };
            // The requests already waiting join this one as a batch (their
            // writes are group-committed); a malformed item ends the batch
            // and is answered after it.
            let mut after_batch = None;
            let mut read_error = None;
            batch.clear();
            match first {
                Item::Request(request) => batch.push(request),
                Item::Malformed(error) => after_batch = Some(error),
            }
            if after_batch.is_none() {
                let batch_start = reader.input_mut().consumed;
                reader.input_mut().no_wait = true;
                while batch.len() < BATCH_REQUESTS_MAX && reader.input_mut().consumed - batch_start < BATCH_TEXT_MAX_BYTES {
                    match reader.next_item() {
                        Ok(Some(Item::Request(request))) => batch.push(request),
                        Ok(Some(Item::Malformed(error))) => {
                            after_batch = Some(error);
                            break;
                        }
                        Ok(None) => break,
                        Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => break,
                        Err(error) => {
                            read_error = Some(error);
                            break;
                        }
                    }
                }
                reader.input_mut().no_wait = false;
            }
            let mut responses = database.respond_batch(&batch, mode);
            if let Some(error) = after_batch {
                responses.push(error.to_json());
            }
            let output = &mut *reader.input_mut().output;
            for response in &responses {
                if response["status"] != "ok" {
                    failed = true;
                }
                output.write_value(response, cli.pretty);
            }
            if output.failed {
                aerodb_engine::log::warn("cli", "stdout_closed", &[]);
                failed = true;
                break;
            }
            if let Some(fatal) = database.fatal_error() {
                output.flush();
                return report_fatal(&fatal.clone());
            }
            if let Some(error) = read_error {
                aerodb_engine::log::warn("cli", "stdin_read_failed", &[("reason", error.to_string().into())]);
                failed = true;
                break;
            }
        }
    }
    output.flush();
    if output.failed && !failed {
        aerodb_engine::log::warn("cli", "stdout_closed", &[]);
        failed = true;
    }
    match database.shutdown() {
        Ok(()) if failed => EXIT_REQUEST_FAILED,
        Ok(()) => EXIT_OK,
        Err(error) => report_fatal(&error),
    }
}
