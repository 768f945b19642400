//! `aerodb`: the command-line front of the engine. Thin by design: it
//! parses arguments, moves JSON between stdin/stdout and the `Database`
//! facade, handles signals and chooses the exit code (docs/API_SPEC.md).
//!
//! Exit codes: 0 every request succeeded; 1 at least one request was
//! answered with an error; 2 fatal; 64 bad command-line usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use aerodb_engine::catalog;
use aerodb_engine::config;
use aerodb_engine::requests::{Item, RequestReader};
use aerodb_engine::{AeroError, Database, ErrorCode, Mode};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

const EXIT_OK: u8 = 0;
const EXIT_REQUEST_FAILED: u8 = 1;
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
    };
    ExitCode::from(code)
}

/// Prints a fatal error as its JSON object on stderr.
fn report_fatal(error: &AeroError) -> u8 {
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

enum Message {
    Item(Item),
    End,
    Signal(i32),
    ReadFailed(String),
}

/// Reads stdin on its own thread so a signal can end the wait for input.
fn spawn_reader(sender: mpsc::SyncSender<Message>) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = RequestReader::new(stdin.lock());
        loop {
            let message = match reader.next_item() {
                Ok(Some(item)) => Message::Item(item),
                Ok(None) => Message::End,
                Err(error) => Message::ReadFailed(error.to_string()),
            };
            let last = !matches!(message, Message::Item(_));
            if sender.send(message).is_err() || last {
                return;
            }
        }
    });
}

fn spawn_signal_listener(sender: mpsc::SyncSender<Message>) -> std::io::Result<()> {
    // Every signal a terminal sends to end a program ends the server with a
    // graceful shutdown: SIGINT (Ctrl-C), SIGQUIT (Ctrl-\), SIGHUP (the
    // terminal closed), and SIGTERM. (SIGPIPE is ignored by the Rust runtime:
    // a closed stdout is a write error, handled where it is written.)
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = sender.send(Message::Signal(signal));
        }
    });
    Ok(())
}

fn serve(cli: &Cli, mode: Mode) -> u8 {
    // Bounded: the reader thread parses at most one request ahead.
    let (sender, receiver) = mpsc::sync_channel(1);
    if let Err(error) = spawn_signal_listener(sender.clone()) {
        return report_fatal(&AeroError::new(ErrorCode::InternalInvariant, format!("cannot install signal handlers: {error}")));
    }
    let mut database = match Database::open(&cli.config) {
        Ok(database) => database,
        // Every boot failure stops the process: report it as FATAL.
        Err(error) => return report_fatal(&error.with_severity(aerodb_engine::Severity::Fatal)),
    };
    spawn_reader(sender);
    let mut failed = false;
    loop {
        let message = match receiver.recv() {
            Ok(message) => message,
            Err(_) => Message::End,
        };
        let response = match message {
            Message::Item(Item::Request(request)) => database.respond(&request, mode),
            Message::Item(Item::Malformed(error)) => error.to_json(),
            Message::End => break,
            Message::Signal(signal) => {
                aerodb_engine::log::info("cli", "signal", &[("signal", signal.into())]);
                break;
            }
            Message::ReadFailed(reason) => {
                aerodb_engine::log::warn("cli", "stdin_read_failed", &[("reason", reason.into())]);
                failed = true;
                break;
            }
        };
        if response["status"] != "ok" {
            failed = true;
        }
        if !print_response(cli, &response) {
            aerodb_engine::log::warn("cli", "stdout_closed", &[]);
            failed = true;
            break;
        }
        if let Some(fatal) = database.fatal_error() {
            return report_fatal(&fatal.clone());
        }
    }
    match database.shutdown() {
        Ok(()) if failed => EXIT_REQUEST_FAILED,
        Ok(()) => EXIT_OK,
        Err(error) => report_fatal(&error),
    }
}
