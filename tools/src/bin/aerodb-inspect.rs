//! `aerodb-inspect`: dumps WAL records and pages of an AeroDB data directory,
//! read-only (see docs/TOOLS.md).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use aerodb_tools::cli::{parse_or_exit, print_json, write_stderr, write_stdout, EXIT_CANNOT_RUN, EXIT_OK};
use aerodb_tools::database::{Database, DEFAULT_CONFIG_PATH};
use aerodb_tools::inspect::{self, wal::SeqRange};
use aerodb_tools::output::Output;

/// Dump WAL records and pages of an AeroDB database (read-only; works while
/// the database is stopped and warns if its LOCK is held).
#[derive(Parser, Debug)]
#[command(name = "aerodb-inspect", version)]
struct Cli {
    /// The database's config file (its data_dir names the database).
    #[arg(long, global = true, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One row per WAL record: offset, sequence, op, schema, _id, page images, bytes, CRC status.
    Wal {
        /// First sequence number shown.
        #[arg(long, value_name = "N")]
        from: Option<u64>,
        /// Last sequence number shown.
        #[arg(long, value_name = "N")]
        to: Option<u64>,
        /// Only records that log this document page.
        #[arg(long, value_name = "N")]
        page: Option<u64>,
        /// Only records of this document `_id`.
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// A summary by op (records, bytes, images, deltas) instead of one row per record.
        #[arg(long)]
        stats: bool,
    },
    /// One page decoded: header, checksum status, slots and documents or B-tree entries.
    Page {
        /// Page number in the document space (or the index space with --index).
        number: u64,
        /// Read the page from the index space (indexes/) instead of data/.
        #[arg(long)]
        index: bool,
        /// Add a hex dump of the page.
        #[arg(long)]
        hex: bool,
    },
    /// One row per page: file, number, kind, LSN, fill, checksum status.
    Pages {
        /// List the index space (indexes/) instead of data/.
        #[arg(long)]
        index: bool,
    },
    /// Page counts by kind, fill factor, WAL size against its limit, documents per schema version.
    Summary,
}

fn main() {
    let cli: Cli = parse_or_exit();
    let database = match Database::open(&cli.config) {
        Ok(database) => database,
        Err(error) => {
            write_stderr(&format!("aerodb-inspect: {error}\n"));
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    // Held until the tool exits: no server opens the database meanwhile.
    let (_read_lock, not_in_use) = database.lock_for_reading("aerodb-inspect");
    let fail = |error: aerodb_tools::database::CannotRun| -> ! {
        write_stderr(&format!("aerodb-inspect: {error}\n"));
        std::process::exit(EXIT_CANNOT_RUN);
    };
    // The dumps that grow with the database stream to stdout as they go.
    let mut out = Output::stdout(EXIT_OK);
    let rendered = match cli.command {
        Command::Wal { from, to, page, id, stats } => {
            let filter = inspect::wal::WalFilter { range: SeqRange { from, to }, page, id, stats, live: !not_in_use };
            inspect::wal::run(&database, &filter, cli.json, &mut out).unwrap_or_else(|error| fail(error));
            out.finish();
            std::process::exit(EXIT_OK);
        }
        Command::Pages { index } => {
            inspect::pages::run(&database, index, cli.json, &mut out).unwrap_or_else(|error| fail(error));
            out.finish();
            std::process::exit(EXIT_OK);
        }
        Command::Page { number, index, hex } => inspect::page::run(&database, number, index, hex),
        Command::Summary => inspect::summary::run(&database),
    };
    match rendered {
        Ok(rendered) if cli.json => print_json(&rendered.json, EXIT_OK),
        Ok(rendered) => write_stdout(&rendered.text, EXIT_OK),
        Err(error) => {
            write_stderr(&format!("aerodb-inspect: {error}\n"));
            std::process::exit(EXIT_CANNOT_RUN);
        }
    }
    std::process::exit(EXIT_OK);
}
