//! What both binaries share: exit codes and argument parsing that maps clap's
//! usage errors to exit code 64.

use clap::error::ErrorKind;
use clap::Parser;

/// Everything ran; nothing wrong found (verify) or the dump was printed (inspect).
pub const EXIT_OK: i32 = 0;
/// `aerodb-verify` found at least one problem.
pub const EXIT_PROBLEMS: i32 = 1;
/// The tool could not run at all (no config, no data directory, unreadable input).
pub const EXIT_CANNOT_RUN: i32 = 2;
/// Bad command-line usage.
pub const EXIT_USAGE: i32 = 64;
/// The output could not be written (a full device, an I/O error); a closed
/// pipe is not this: it ends the run quietly.
pub const EXIT_OUTPUT_FAILED: i32 = 74;

/// Parses the command line; prints help or version and exits 0, or prints
/// the usage error and exits [`EXIT_USAGE`].
pub fn parse_or_exit<T: Parser>() -> T {
    parse_from_or_exit(std::env::args_os())
}

/// [`parse_or_exit`] over explicit arguments (the first is the program name).
pub fn parse_from_or_exit<T: Parser, I, A>(arguments: I) -> T
where
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    match T::try_parse_from(arguments) {
        Ok(parsed) => parsed,
        Err(error) => {
            let code = match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => EXIT_OK,
                _ => EXIT_USAGE,
            };
            // Printing can only fail when stdout/stderr is closed; the exit code still tells.
            let _ = error.print();
            std::process::exit(code);
        }
    }
}

/// Prints `value` as one JSON document on stdout (see [`write_stdout`]).
pub fn print_json(value: &serde_json::Value, exit_code: i32) {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            write_stdout(&text, exit_code);
        }
        Err(error) => write_stderr(&format!("cannot render JSON: {error}\n")),
    }
}

/// Writes `text` to stdout and flushes it. A reader that went away (a
/// closed pipe, as in `aerodb-inspect wal | head -1`) ends the process
/// quietly with `exit_code`, the code the run would have had; any other
/// write error (a full device) is reported on stderr and ends the process
/// with [`EXIT_OUTPUT_FAILED`]. Never panics.
pub fn write_stdout(text: &str, exit_code: i32) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(exit_code),
        Err(error) => {
            write_stderr(&format!("cannot write the output: {error}\n"));
            std::process::exit(EXIT_OUTPUT_FAILED);
        }
    }
}

/// Writes `text` to stderr, ignoring errors: a message that cannot be
/// shown is lost, never a panic.
pub fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The running tool's name (`aerodb-verify`, `aerodb-inspect`), for progress lines.
pub fn tool_name() -> String {
    std::env::args()
        .next()
        .and_then(|path| std::path::Path::new(&path).file_name().map(|name| name.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "aerodb".into())
}
