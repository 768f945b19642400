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

pub mod documents;
pub mod indexes;
pub mod metadata;
pub mod progress;
pub mod report;
pub mod wal;

use crate::database::{Database, CLEAN_SHUTDOWN_FILE, DATA_DIR};
use crate::space::PageSpace;
use report::{Location, Report};

/// Runs every check on `database`. `allow_map` lets large files be mapped
/// (pass false when a running process holds the LOCK).
pub fn run(database: &Database, allow_map: bool) -> Report {
    let mut report = Report::default();
    let clean = database.has_clean_shutdown();
    let manifest = metadata::check_manifest(database, &mut report);
    metadata::check_frozen_config(database, &mut report);
    let schemas = metadata::check_schemas(database, &mut report);
    let wal = wal::check_wal(database, allow_map, manifest.as_ref(), clean, &mut report);
    let data = PageSpace::open(&database.root, DATA_DIR, allow_map);
    let documents = documents::check(&data, &wal, &schemas, clean, &mut report);
    let expected = metadata::StateExpectations {
        last_seq: wal.last_seq.0,
        wal_bytes: wal.logical_end,
        documents: documents.by_locator.len() as u64,
        document_pages: wal.last_images.keys().next_back().map_or(0, |page_no| page_no.0 + 1),
    };
    metadata::check_state(database, clean, &expected, &mut report);
    if clean {
        indexes::check(database, allow_map, &wal, &schemas, &documents, &mut report);
    } else {
        report.note(
            Location::file(CLEAN_SHUTDOWN_FILE),
            "no clean_shutdown marker: index checks skipped (indexes are derived, rebuilt at every start, \
             and only trustworthy after a clean shutdown)",
        );
    }
    report
}
