//! `aerodb-inspect wal`: one row per record, then totals.

use serde_json::{json, Value};

use crate::database::{CannotRun, Database, WAL_FILE};
use crate::describe::hex;
use crate::files::ReadFile;
use crate::output::{JsonObject, Output};
use crate::table::{StreamTable, Table};
use crate::verify::progress::Progress;
use crate::walscan::{ScanEntry, Scanner};

/// Sequence-number range shown (inclusive); `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeqRange {
    pub from: Option<u64>,
    pub to: Option<u64>,
}

impl SeqRange {
    fn contains(&self, seq: u64) -> bool {
        self.from.is_none_or(|from| seq >= from) && self.to.is_none_or(|to| seq <= to)
    }
}

/// Which records are shown, and how.
#[derive(Clone, Debug, Default)]
pub struct WalFilter {
    pub range: SeqRange,
    /// Only records that log this document page.
    pub page: Option<u64>,
    /// Only records of this `_id` (compared as text: `7` and `"7"` both
    /// match an int 7 and a string "7").
    pub id: Option<String>,
    /// Print a summary by op (records, bytes, pages, images, deltas) instead of the rows.
    pub stats: bool,
    /// A running server holds the database: read the log as [`Scanner::live`] does.
    pub live: bool,
}

impl WalFilter {
    fn shows(&self, record: &crate::walscan::ScannedRecord) -> bool {
        let id_text = match &record.id {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        self.range.contains(record.seq.0)
            && self.page.is_none_or(|page| record.pages.iter().any(|entry| entry.page_no.0 == page))
            && self.id.as_ref().is_none_or(|id| *id == id_text)
    }
}

/// Per-op figures of `--stats`.
#[derive(Default)]
struct OpStats {
    records: u64,
    bytes: u64,
    images: u64,
    deltas: u64,
    image_bytes: u64,
    delta_bytes: u64,
}

#[derive(Default)]
struct Totals {
    records: u64,
    bytes: u64,
    pages: u64,
    image_bytes: u64,
    hole_bytes: u64,
    delta_bytes: u64,
}

/// Streams the dump to `out`: one row (or JSON item) per record as it is
/// scanned, so memory holds one scan chunk and one block of rows, whatever
/// the size of the log.
pub fn run(database: &Database, filter: &WalFilter, as_json: bool, out: &mut Output) -> Result<(), CannotRun> {
    let file = ReadFile::open(&database.path(WAL_FILE)).map_err(|error| CannotRun(format!("cannot read {WAL_FILE}: {error}")))?;
    let mut scanner = if filter.live { Scanner::live(&file) } else { Scanner::new(&file) };
    let file_bytes = scanner.file_bytes();
    let header = scanner.header();
    let header_json = match &header {
        Ok(header) => json!({"status": "ok", "format_version": header.format_version, "page_size": header.page_size,
                             "database_id": hex(&header.database_id)}),
        Err(error) => json!({"status": "BAD", "error": error.to_string()}),
    };
    let header_text = match &header {
        Ok(header) => format!(
            "{WAL_FILE}: {file_bytes} bytes; header ok (format {}, page size {}, database {})\n",
            header.format_version,
            header.page_size,
            hex(&header.database_id)
        ),
        Err(error) => format!("{WAL_FILE}: {file_bytes} bytes; header BAD: {error}\n"),
    };
    let mut progress = Progress::new("WAL", file_bytes);
    let mut totals = Totals::default();
    let mut by_op: std::collections::BTreeMap<&'static str, OpStats> = std::collections::BTreeMap::new();
    let mut torn_tail = Value::Null;
    let mut table = StreamTable::new(&["offset", "seq", "op", "schema", "_id", "pages (page:image+hole)", "bytes", "crc", "status"]);
    let rows = !filter.stats;
    let mut object = None;
    if rows && as_json {
        let mut started = JsonObject::begin(out);
        started.field(out, "file", &json!(WAL_FILE));
        started.field(out, "file_bytes", &json!(file_bytes));
        started.field(out, "header", &header_json);
        started.begin_array(out, "records");
        object = Some(started);
    } else if !as_json {
        out.write(&header_text);
    }
    // Rows go to the JSON array or to the table, a block at a time.
    let mut emit = |object: &mut Option<JsonObject>, cells: Vec<String>, row: Value, out: &mut Output| {
        if !rows {
            return;
        }
        match object {
            Some(object) => object.item(out, &row),
            None => {
                if let Some(text) = table.row(cells) {
                    out.write(&text);
                }
            }
        }
    };
    while let Some(entry) = scanner.next() {
        match entry {
            ScanEntry::Record(record) => {
                progress.set(record.offset as u64);
                if !filter.shows(&record) {
                    continue;
                }
                let stats = by_op.entry(record.op.name()).or_default();
                stats.records += 1;
                stats.bytes += record.length as u64;
                totals.records += 1;
                totals.bytes += record.length as u64;
                let mut page_cells = Vec::with_capacity(record.pages.len());
                let mut page_rows = Vec::with_capacity(record.pages.len());
                for image in &record.pages {
                    totals.pages += 1;
                    if image.delta {
                        stats.deltas += 1;
                        stats.delta_bytes += image.image_bytes as u64;
                        totals.delta_bytes += image.image_bytes as u64;
                        if rows {
                            page_cells.push(format!("{}:delta{}", image.page_no, image.image_bytes));
                            page_rows.push(json!({"page": image.page_no.0, "kind": "delta", "delta_bytes": image.image_bytes}));
                        }
                    } else {
                        stats.images += 1;
                        stats.image_bytes += image.image_bytes as u64;
                        totals.image_bytes += image.image_bytes as u64;
                        totals.hole_bytes += image.hole_bytes() as u64;
                        if rows {
                            page_cells.push(format!("{}:{}+{}", image.page_no, image.image_bytes, image.hole_bytes()));
                            page_rows.push(json!({"page": image.page_no.0, "kind": "image", "lower": image.lower, "upper": image.upper,
                                                  "image_bytes": image.image_bytes, "hole_bytes": image.hole_bytes()}));
                        }
                    }
                }
                if !rows {
                    continue;
                }
                let status = record.sequence_error.clone().unwrap_or_else(|| "ok".into());
                let cells = vec![
                    record.offset.to_string(),
                    record.seq.to_string(),
                    record.op.name().into(),
                    format!("{}/{}", record.schema_id, record.schema_version),
                    record.id.to_string(),
                    page_cells.join(" "),
                    record.length.to_string(),
                    "ok".into(),
                    status.clone(),
                ];
                let row = json!({
                    "offset": record.offset, "seq": record.seq.0, "op": record.op.name(),
                    "schema_id": record.schema_id, "schema_version": record.schema_version, "_id": record.id,
                    "pages": page_rows, "bytes": record.length, "crc": "ok", "status": status,
                });
                emit(&mut object, cells, row, out);
            }
            ScanEntry::Corrupt { offset, skipped_bytes, error } => {
                let mut cells = status_cells(offset, skipped_bytes.to_string(), "BAD", format!("CORRUPT: {error}"));
                cells[1] = "?".into();
                let row = json!({"offset": offset, "bytes": skipped_bytes, "crc": "BAD", "status": "corrupt", "error": error.to_string()});
                emit(&mut object, cells, row, out);
            }
            ScanEntry::Torn { offset, bytes, reason } => {
                torn_tail = json!({"offset": offset, "bytes": bytes});
                let cells = status_cells(offset, bytes.to_string(), "-", format!("TORN TAIL: {reason}"));
                let row = json!({"offset": offset, "bytes": bytes, "crc": null, "status": "torn", "error": reason});
                emit(&mut object, cells, row, out);
            }
            ScanEntry::Unreadable { offset, error } => {
                let cells = status_cells(offset, String::new(), "-", format!("UNREADABLE: {error}"));
                let row = json!({"offset": offset, "bytes": 0, "crc": null, "status": "unreadable", "error": error});
                emit(&mut object, cells, row, out);
            }
        }
    }
    progress.finish();
    let last_seq = scanner.last_seq().0;
    if filter.stats {
        let mut stats_table = Table::new(&["op", "records", "bytes", "bytes/record", "images", "image bytes", "deltas", "delta bytes"]);
        let mut stats_json = serde_json::Map::new();
        for (op, stats) in &by_op {
            let per = if stats.records == 0 { 0 } else { stats.bytes / stats.records };
            stats_table.row(vec![
                op.to_string(),
                stats.records.to_string(),
                stats.bytes.to_string(),
                per.to_string(),
                stats.images.to_string(),
                stats.image_bytes.to_string(),
                stats.deltas.to_string(),
                stats.delta_bytes.to_string(),
            ]);
            stats_json.insert(
                op.to_string(),
                json!({"records": stats.records, "bytes": stats.bytes, "images": stats.images, "image_bytes": stats.image_bytes,
                       "deltas": stats.deltas, "delta_bytes": stats.delta_bytes}),
            );
        }
        if as_json {
            let json = json!({"file": WAL_FILE, "file_bytes": file_bytes, "logical_bytes": scanner.logical_end(),
                              "last_seq": last_seq, "by_op": stats_json});
            out.write(&(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"));
        } else {
            out.write(&stats_table.render());
        }
        return Ok(());
    }
    let totals_json = json!({
        "records": totals.records, "bytes": totals.bytes, "pages_logged": totals.pages,
        "image_bytes": totals.image_bytes, "hole_bytes_elided": totals.hole_bytes, "delta_bytes": totals.delta_bytes,
    });
    match object {
        Some(mut object) => {
            object.end_array(out);
            object.field(out, "totals", &totals_json);
            object.field(out, "last_seq", &json!(last_seq));
            object.field(out, "torn_tail", &torn_tail);
            object.end(out);
        }
        None => {
            out.write(&table.flush());
            out.write(&format!(
                "totals: {} records, {} bytes, {} pages logged, {} image bytes, {} hole bytes elided, {} delta bytes\n",
                totals.records, totals.bytes, totals.pages, totals.image_bytes, totals.hole_bytes, totals.delta_bytes
            ));
        }
    }
    Ok(())
}

/// The table cells of a row that is not a record: offset, `-` for the
/// sequence number, empty record columns, then bytes, CRC and status.
fn status_cells(offset: usize, bytes: String, crc: &str, status: String) -> Vec<String> {
    vec![offset.to_string(), "-".into(), String::new(), String::new(), String::new(), String::new(), bytes, crc.into(), status]
}
