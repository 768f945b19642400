//! `aerodb-verify`: offline, read-only, complete consistency check of an
//! AeroDB data directory (see docs/TOOLS.md). Exit 0 clean, 1 problems
//! found, 2 could not run, 64 bad usage.

use std::path::PathBuf;

use clap::Parser;

use aerodb_tools::cli::{parse_or_exit, print_json, write_stderr, write_stdout, EXIT_CANNOT_RUN, EXIT_OK, EXIT_PROBLEMS};
use aerodb_tools::database::{Database, DEFAULT_CONFIG_PATH};
use aerodb_tools::verify::{self, Limits};

/// Check an AeroDB database offline and report every problem found, each
/// with its file, page and byte offset. Read-only.
#[derive(Parser, Debug)]
#[command(name = "aerodb-verify", version)]
struct Cli {
    /// The database's config file (its data_dir names the database).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Print {"problems": [...], "notes": [...], "checked": {...}} instead of text.
    #[arg(long)]
    json: bool,
    /// Bound on verify's memory, in bytes (default: the config's max_memory_bytes).
    /// Sorts that do not fit spill to temporary files.
    #[arg(long, value_name = "BYTES")]
    memory: Option<u64>,
    /// Folder for those temporary files (default: $TMPDIR or /tmp); they are
    /// unnamed and vanish when verify exits, however it exits.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
}

fn main() {
    let cli: Cli = parse_or_exit();
    let database = match Database::open(&cli.config) {
        Ok(database) => database,
        Err(error) => {
            write_stderr(&format!("aerodb-verify: cannot run: {error}\n"));
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    // Held until the tool exits: no server opens the database meanwhile.
    let (_read_lock, not_in_use) = database.lock_for_reading("aerodb-verify");
    let memory = cli.memory.unwrap_or(database.config.max_memory_bytes).max(1);
    let mut limits = Limits::new(memory, cli.spill_dir.clone().unwrap_or_else(std::env::temp_dir));
    // The spill folder is tried at once, not first when a sort fills up.
    if let Err(error) = tempfile::tempfile_in(&limits.spill_dir) {
        write_stderr(&format!("aerodb-verify: cannot run: cannot make temporary files in {}: {error}\n", limits.spill_dir.display()));
        std::process::exit(EXIT_CANNOT_RUN);
    }
    limits.live = !not_in_use;
    let report = match verify::run(&database, &limits) {
        Ok(report) => report,
        Err(error) => {
            write_stderr(&format!("aerodb-verify: cannot run: {error}\n"));
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let exit_code = if report.is_clean() { EXIT_OK } else { EXIT_PROBLEMS };
    if cli.json {
        print_json(&report.to_json(), exit_code);
    } else {
        write_stdout(&report.render_human(), exit_code);
    }
    std::process::exit(exit_code);
}
