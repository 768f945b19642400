//! `aerodb-inspect summary`: page counts by kind, fill factor, WAL size
//! against `max_wal_size_bytes`, WAL records and last sequence number,
//! documents per schema version, index trees.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use aerodb_format::document;
use aerodb_format::page::{self, PageHeader};
use aerodb_format::slotted::{self, SlotRecord};
use aerodb_format::{PageNo, PAGE_SIZE_BYTES};

use crate::database::{CannotRun, Database, DATA_DIR, INDEXES_DIR, INDEX_DIRECTORY_FILE, WAL_FILE};
use crate::files::read_small;
use crate::files::ReadFile;
use crate::inspect::pages::for_each_row;
use crate::inspect::Rendered;
use crate::space::PageSpace;
use crate::verify::indexes::parse_directory;
use crate::walscan::{ScanEntry, Scanner};

pub fn run(database: &Database) -> Result<Rendered, CannotRun> {
    let clean = database.has_clean_shutdown();
    let mut text = format!(
        "data directory {} (clean_shutdown marker: {})\n",
        database.root.display(),
        if clean { "present" } else { "absent: segment pages may be stale until replay" }
    );
    let data = PageSpace::open(&database.root, DATA_DIR);
    let indexes = PageSpace::open(&database.root, INDEXES_DIR);
    let (data_text, data_json) = space_summary(&data);
    let (index_text, index_json) = space_summary(&indexes);
    text.push_str(&data_text);
    text.push_str(&index_text);
    let (wal_text, wal_json) = wal_summary(database);
    text.push_str(&wal_text);
    let (documents_text, documents_json) = document_summary(&data);
    text.push_str(&documents_text);
    let (trees_text, trees_json) = tree_summary(database);
    text.push_str(&trees_text);
    let json = json!({
        "data_dir": database.root.display().to_string(),
        "clean_shutdown": clean,
        "document_space": data_json,
        "index_space": index_json,
        "wal": wal_json,
        "documents": documents_json,
        "index_trees": trees_json,
    });
    Ok(Rendered { text, json })
}

fn space_summary(space: &PageSpace) -> (String, Value) {
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut bad = 0u64;
    let (mut used, mut written, mut pages) = (0u64, 0u64, 0u64);
    for_each_row(space, |row| {
        pages += 1;
        *kinds.entry(row.kind.clone()).or_insert(0) += 1;
        if row.checksum == "BAD" {
            bad += 1;
        }
        if let Some(bytes) = row.used_bytes {
            used += bytes as u64;
            written += 1;
        }
    });
    let fill = if written == 0 { 0.0 } else { used as f64 * 100.0 / (written * PAGE_SIZE_BYTES as u64) as f64 };
    let kind_list: Vec<String> = kinds.iter().map(|(kind, count)| format!("{count} {kind}")).collect();
    let unreadable = space.read_error();
    let text = format!(
        "{}/: {} segment file(s), {} pages: {}; {bad} with a BAD checksum or header; fill of written pages {fill:.1}%{}\n",
        space.dir_name,
        space.segments.len(),
        pages,
        if kind_list.is_empty() { "none".to_string() } else { kind_list.join(", ") },
        unreadable.as_ref().map(|error| format!("; UNREADABLE: {error}")).unwrap_or_default()
    );
    let json = json!({"folder": space.dir_name, "segments": space.segments.len(), "pages": pages, "by_kind": kinds,
                      "bad_pages": bad, "written_pages": written, "fill_percent": fill, "unreadable": unreadable});
    (text, json)
}

fn wal_summary(database: &Database) -> (String, Value) {
    let limit = database.config.max_wal_size_bytes;
    let file = match ReadFile::open(&database.path(WAL_FILE)) {
        Ok(file) => file,
        Err(error) => {
            return (format!("{WAL_FILE}: cannot be read: {error}\n"), json!({"error": error.to_string()}));
        }
    };
    let mut scanner = Scanner::new(&file);
    let header_ok = scanner.header().is_ok();
    let (mut records, mut corrupt, mut torn) = (0u64, 0u64, 0usize);
    for entry in scanner.by_ref() {
        match entry {
            ScanEntry::Record(_) => records += 1,
            ScanEntry::Corrupt { .. } | ScanEntry::Unreadable { .. } => corrupt += 1,
            ScanEntry::Torn { bytes, .. } => torn = bytes,
        }
    }
    let logical_end = scanner.logical_end();
    let file_bytes = scanner.file_bytes();
    let last_seq = scanner.last_seq();
    // The limit applies to the records (the logical end), as the engine's
    // warning does; the file is longer by its preallocated zeros.
    let percent = logical_end as f64 * 100.0 / limit as f64;
    let text = format!(
        "{WAL_FILE}: {logical_end} bytes of records of max_wal_size_bytes {limit} ({percent:.2}%){} in a file of {file_bytes} bytes; header {}; \
         {records} records, last seq {last_seq}; torn tail {torn} bytes; {corrupt} damaged record(s)\n",
        if logical_end > limit { " OVER THE LIMIT" } else { "" },
        if header_ok { "ok" } else { "BAD" },
    );
    let json = json!({"file_bytes": file_bytes, "logical_bytes": logical_end, "max_wal_size_bytes": limit, "percent_of_limit": percent,
                      "over_limit": logical_end > limit, "header_ok": header_ok,
                      "records": records, "last_seq": last_seq.0, "torn_tail_bytes": torn, "damaged_records": corrupt});
    (text, json)
}

/// Counts the documents in the segment pages as they are (pages that verify).
fn document_summary(space: &PageSpace) -> (String, Value) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut unreadable = 0u64;
    for page_no in space.page_numbers() {
        let Some(page) = space.page(page_no) else {
            continue;
        };
        if page::is_unwritten(&page) || page::verify(&page, page_no).is_err() {
            continue;
        }
        let Ok(records) = slotted::check_document_page(&page) else {
            continue;
        };
        for (_, bytes) in records {
            let decoded = match slotted::decode_slot_record(bytes) {
                Ok(SlotRecord::Inline(document)) => document::decode_record(document).ok(),
                Ok(SlotRecord::Overflow { length, first_page }) => {
                    read_chain(space, PageNo(first_page), length as usize).and_then(|bytes| document::decode_record(&bytes).ok())
                }
                Err(_) => None,
            };
            match decoded {
                Some(record) => *counts.entry(format!("{}/{}", record.schema_id, record.schema_version)).or_insert(0) += 1,
                None => unreadable += 1,
            }
        }
    }
    let mut text = String::from("documents (in the segment pages as they are):\n");
    if counts.is_empty() {
        text.push_str("  none\n");
    }
    for (version, count) in &counts {
        text.push_str(&format!("  {version}: {count}\n"));
    }
    if unreadable > 0 {
        text.push_str(&format!("  unreadable: {unreadable}\n"));
    }
    (text, json!({"by_schema_version": counts, "unreadable": unreadable}))
}

/// The bytes of an overflow chain, if every page of it verifies and the
/// lengths add up. Follows at most as many pages as `length` needs.
pub fn read_chain(space: &PageSpace, first: PageNo, length: usize) -> Option<Vec<u8>> {
    let mut data = Vec::with_capacity(length.min(aerodb_format::DOC_SIZE_MAX_BYTES));
    let mut current = first;
    for _ in 0..slotted::overflow_pages_needed(length) {
        let page = space.page(current)?;
        page::verify(&page, current).ok()?;
        data.extend_from_slice(slotted::check_overflow_page(&page).ok()?);
        current = PageHeader::read(&page).next();
    }
    (current.is_none() && data.len() == length).then_some(data)
}

fn tree_summary(database: &Database) -> (String, Value) {
    let directory =
        read_small(&database.path(INDEX_DIRECTORY_FILE)).map_err(|error| error.to_string()).and_then(|bytes| parse_directory(&bytes));
    match directory {
        Err(error) => (format!("{INDEX_DIRECTORY_FILE}: {error}\n"), json!({"error": error})),
        Ok(directory) => {
            let mut text = format!("index trees ({INDEX_DIRECTORY_FILE}, written at LSN {}):\n", directory.lsn);
            let mut trees = Vec::new();
            for tree in &directory.trees {
                text.push_str(&format!("  {}: {} entries, height {}, root page {}\n", tree.label(), tree.entries, tree.height, tree.root));
                trees.push(json!({"schema_id": tree.schema_id, "schema_version": tree.schema_version, "field": tree.field,
                                  "entries": tree.entries, "height": tree.height, "root": tree.root}));
            }
            (text, json!({"lsn": directory.lsn, "trees": trees}))
        }
    }
}
