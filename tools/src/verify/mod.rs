//! `aerodb-verify`: an offline, read-only, complete consistency check.
//!
//! Order of the checks (each reads what the one before established):
//! 1. [`metadata`]: MANIFEST, frozen config, schema files and their hashes;
//! 2. [`wal`]: the WAL header and every record; each page's last image;
//! 3. [`documents`]: every page of `data/` against the WAL, slotted pages,
//!    overflow chains, every document against its schema, `_id` uniqueness;
//! 4. `metadata/state.json` against the WAL and the documents;
//! 5. [`indexes`] (after a clean shutdown only): every tree and index ↔
//!    document agreement.
//!
//! Every problem is reported; no check stops at the first one. The report
//! holds findings in the order they were found, which follows the files.
//!
//! Memory is bounded by construction ([`Limits`]): files are read by offset
//! in bounded buffers, never mapped; whatever grows with the number of
//! records, documents or index entries goes through external sorts
//! ([`crate::extsort`]) whose buffers share a fixed part of the bound and
//! spill to temporary files beyond it. What remains in memory grows only
//! with the number of segment files, index pages (2 bytes each) and overflow
//! pages and stubs (84 and 72 bytes each), and the findings kept are capped ([`report::FINDINGS_KEPT_MAX`]).

pub mod documents;
pub mod indexes;
pub mod metadata;
pub mod progress;
pub mod report;
pub mod wal;

use std::path::PathBuf;

use crate::database::{Database, CLEAN_SHUTDOWN_FILE, DATA_DIR};
use crate::space::PageSpace;
use report::{Location, Report};

/// How much memory verify may use, and where it spills.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The bound on the memory verify's data structures take (the config's
    /// `max_memory_bytes`, or `--memory`).
    pub memory_bytes: u64,
    /// Where sorted runs that do not fit go (unnamed temporary files).
    pub spill_dir: PathBuf,
    /// Threads checking the document space.
    pub threads: usize,
    /// A running server holds the database (see [`LIVE_NOTE`]).
    pub live: bool,
}

/// What verify concludes about a database a running server holds, said in
/// its report.
pub const LIVE_NOTE: &str = "the database is open in a running server: verify checked the WAL up to the last record \
     written when it read it (records are never rewritten, so those checks hold), the metadata files, and every \
     document as the WAL leaves it; segment pages the server wrote after that moment, the state file and the \
     indexes (derived, rebuilt at every start) are not judged, and findings about them are notes. Stop the server, \
     or verify a copy made by `aerodb backup`, for a complete check";

/// Sort buffers that can be alive at once (two parts' WAL entries, `_id`
/// keys and expected index entries, plus the main thread's and the walk's):
/// each gets this share of the bound, so together they take under a third.
pub const SORT_BUFFER_SHARES: u64 = 32;

impl Limits {
    pub fn new(memory_bytes: u64, spill_dir: PathBuf) -> Limits {
        let threads = std::thread::available_parallelism().map(|count| count.get()).unwrap_or(1).clamp(1, 8);
        Limits { memory_bytes, spill_dir, threads, live: false }
    }

    pub fn sorter_budget(&self) -> usize {
        usize::try_from(self.memory_bytes / SORT_BUFFER_SHARES).unwrap_or(usize::MAX)
    }
}

/// Runs every check on `database`; `Err` when verify itself cannot go on
/// (its temporary files cannot be written).
pub fn run(database: &Database, limits: &Limits) -> Result<Report, String> {
    let mut report = Report::default();
    if limits.live {
        report.note(Location::file(crate::database::LOCK_FILE), LIVE_NOTE);
    }
    let clean = database.has_clean_shutdown() && !limits.live;
    metadata::check_marker_files(database, &mut report);
    let manifest = metadata::check_manifest(database, &mut report);
    metadata::check_frozen_config(database, &mut report);
    let schemas = metadata::check_schemas(database, &mut report);
    let data = PageSpace::open(&database.root, DATA_DIR);
    // The page space is split evenly between the threads by page number.
    let capacity = data.segments.keys().next_back().map_or(0, |last| (last + 1) * aerodb_format::SEGMENT_PAGES);
    let parts = limits.threads.max(1) as u64;
    let mut bounds: Vec<u64> = (0..parts).map(|part| capacity * part / parts).collect();
    bounds.push(u64::MAX);
    let mut wal = wal::check_wal(database, manifest.as_ref(), &schemas, clean, bounds, limits, &mut report)?;
    let trees = documents::TreeIds::new(&schemas);
    let output = documents::check(&data, &mut wal, &schemas, &trees, clean, limits, &mut report)?;
    let expected = metadata::StateExpectations {
        last_seq: wal.last_seq.0,
        wal_bytes: wal.logical_end,
        documents: output.documents,
        document_pages: wal.highest_page.map_or(0, |page_no| page_no.0 + 1),
    };
    if !limits.live {
        metadata::check_state(database, clean, &expected, &mut report);
    }
    indexes::check_folder_can_be_emptied(database, &mut report);
    if clean {
        indexes::check(database, &wal, &schemas, &trees, output, limits, &mut report)?;
    } else {
        report.note(
            Location::file(CLEAN_SHUTDOWN_FILE),
            "no clean_shutdown marker: index checks skipped (indexes are derived, rebuilt at every start, \
             and only trustworthy after a clean shutdown)",
        );
    }
    Ok(report)
}
