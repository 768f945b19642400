//! `aerodb-inspect wal`: one row per record, then totals.

use serde_json::{json, Value};

use crate::database::{CannotRun, Database, WAL_FILE};
use crate::describe::hex;
use crate::files;
use crate::inspect::Rendered;
use crate::table::Table;
use crate::walscan::{ScanEntry, WalScan};

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

pub fn run(database: &Database, allow_map: bool, filter: &WalFilter) -> Result<Rendered, CannotRun> {
    let bytes = files::load(&database.path(WAL_FILE), allow_map).map_err(|error| CannotRun(format!("cannot read {WAL_FILE}: {error}")))?;
    let scan = WalScan::scan(&bytes);
    let mut text = String::new();
    let header_json = match &scan.header {
        Ok(header) => {
            text.push_str(&format!(
                "{WAL_FILE}: {} bytes; header ok (format {}, page size {}, database {})\n",
                scan.file_bytes,
                header.format_version,
                header.page_size,
                hex(&header.database_id)
            ));
            json!({"status": "ok", "format_version": header.format_version, "page_size": header.page_size,
                   "database_id": hex(&header.database_id)})
        }
        Err(error) => {
            text.push_str(&format!("{WAL_FILE}: {} bytes; header BAD: {error}\n", scan.file_bytes));
            json!({"status": "BAD", "error": error.to_string()})
        }
    };
    let mut table = Table::new(&["offset", "seq", "op", "schema", "_id", "pages (page:image+hole)", "bytes", "crc", "status"]);
    let mut rows = Vec::new();
    let mut totals = Totals::default();
    let mut by_op: std::collections::BTreeMap<&'static str, OpStats> = std::collections::BTreeMap::new();
    for entry in &scan.entries {
        match entry {
            ScanEntry::Record(record) => {
                if !filter.shows(record) {
                    continue;
                }
                let stats = by_op.entry(record.op.name()).or_default();
                stats.records += 1;
                stats.bytes += record.length as u64;
                for entry in &record.pages {
                    if entry.delta {
                        stats.deltas += 1;
                        stats.delta_bytes += entry.image_bytes as u64;
                    } else {
                        stats.images += 1;
                        stats.image_bytes += entry.image_bytes as u64;
                    }
                }
                totals.records += 1;
                totals.bytes += record.length as u64;
                let mut page_cells = Vec::with_capacity(record.pages.len());
                let mut page_rows = Vec::with_capacity(record.pages.len());
                for image in &record.pages {
                    totals.pages += 1;
                    if !image.delta {
                        totals.image_bytes += image.image_bytes as u64;
                        totals.hole_bytes += image.hole_bytes() as u64;
                    }
                    if image.delta {
                        totals.delta_bytes += image.image_bytes as u64;
                        page_cells.push(format!("{}:delta{}", image.page_no, image.image_bytes));
                        page_rows.push(json!({"page": image.page_no.0, "kind": "delta", "delta_bytes": image.image_bytes}));
                    } else {
                        page_cells.push(format!("{}:{}+{}", image.page_no, image.image_bytes, image.hole_bytes()));
                        page_rows.push(json!({"page": image.page_no.0, "kind": "image", "lower": image.lower, "upper": image.upper,
                                              "image_bytes": image.image_bytes, "hole_bytes": image.hole_bytes()}));
                    }
                }
                let status = record.sequence_error.clone().unwrap_or_else(|| "ok".into());
                table.row(vec![
                    record.offset.to_string(),
                    record.seq.to_string(),
                    record.op.name().into(),
                    format!("{}/{}", record.schema_id, record.schema_version),
                    record.id.to_string(),
                    page_cells.join(" "),
                    record.length.to_string(),
                    "ok".into(),
                    status.clone(),
                ]);
                rows.push(json!({
                    "offset": record.offset, "seq": record.seq.0, "op": record.op.name(),
                    "schema_id": record.schema_id, "schema_version": record.schema_version, "_id": record.id,
                    "pages": page_rows, "bytes": record.length, "crc": "ok", "status": status,
                }));
            }
            ScanEntry::Corrupt { offset, skipped_bytes, error } => {
                table.row(vec![
                    offset.to_string(),
                    "?".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    skipped_bytes.to_string(),
                    "BAD".into(),
                    format!("CORRUPT: {error}"),
                ]);
                rows.push(json!({"offset": offset, "bytes": skipped_bytes, "crc": "BAD", "status": "corrupt",
                                 "error": error.to_string()}));
            }
            ScanEntry::Torn { offset, bytes, reason } => {
                table.row(vec![
                    offset.to_string(),
                    "-".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    bytes.to_string(),
                    "-".into(),
                    format!("TORN TAIL: {reason}"),
                ]);
                rows.push(json!({"offset": offset, "bytes": bytes, "crc": null, "status": "torn", "error": reason}));
            }
        }
    }
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
        text.push_str(&stats_table.render());
        let json = json!({"file": WAL_FILE, "file_bytes": scan.file_bytes, "logical_bytes": scan.logical_end,
                          "last_seq": scan.last_seq().0, "by_op": stats_json});
        return Ok(Rendered { text, json });
    }
    text.push_str(&table.render());
    text.push_str(&format!(
        "totals: {} records, {} bytes, {} pages logged, {} image bytes, {} hole bytes elided, {} delta bytes\n",
        totals.records, totals.bytes, totals.pages, totals.image_bytes, totals.hole_bytes, totals.delta_bytes
    ));
    let json = json!({
        "file": WAL_FILE,
        "file_bytes": scan.file_bytes,
        "header": header_json,
        "records": rows,
        "totals": {
            "records": totals.records, "bytes": totals.bytes, "pages_logged": totals.pages,
            "image_bytes": totals.image_bytes, "hole_bytes_elided": totals.hole_bytes, "delta_bytes": totals.delta_bytes,
        },
        "last_seq": scan.last_seq().0,
        "torn_tail": scan.torn_tail().map(|(offset, bytes)| json!({"offset": offset, "bytes": bytes})).unwrap_or(Value::Null),
    });
    Ok(Rendered { text, json })
}
