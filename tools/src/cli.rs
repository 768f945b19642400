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

/// Prints `value` as one JSON document on stdout.
pub fn print_json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("cannot render JSON: {error}"),
    }
}
