//! `aerodb-inspect pages`: one row per page of a page space: file, number,
//! kind, LSN, fill and checksum status. Runs of unwritten pages are folded
//! into one row (and one `unwritten` range in JSON).

use serde_json::{json, Value};

use aerodb_format::page::{self, PageHeader};
use aerodb_format::{PageNo, PAGE_SIZE_BYTES};

use crate::database::{CannotRun, Database, DATA_DIR, INDEXES_DIR};
use crate::describe::{kind_name, used_bytes};
use crate::output::{JsonObject, Output};
use crate::space::PageSpace;
use crate::table::StreamTable;
use crate::verify::progress::Progress;

/// The state of one page as `pages` and `summary` show it.
pub struct PageRow {
    pub page_no: PageNo,
    pub file: String,
    /// Kind name, "unwritten", or "missing" (the segment file is too short).
    pub kind: String,
    pub lsn: Option<u64>,
    pub used_bytes: Option<usize>,
    /// "ok", "BAD" or "unwritten" (or "missing").
    pub checksum: &'static str,
    pub error: Option<String>,
}

impl PageRow {
    pub fn fill_percent(&self) -> Option<f64> {
        self.used_bytes.map(|used| used as f64 * 100.0 / PAGE_SIZE_BYTES as f64)
    }
}

/// Classifies every page of a space, one at a time, in page order.
pub fn for_each_row(space: &PageSpace, mut visit: impl FnMut(PageRow)) {
    for page_no in space.page_numbers() {
        let file = space.file_of(page_no);
        let Some(page) = space.page(page_no) else {
            visit(PageRow { page_no, file, kind: "missing".into(), lsn: None, used_bytes: None, checksum: "missing", error: None });
            continue;
        };
        if page::is_unwritten(&page) {
            visit(PageRow { page_no, file, kind: "unwritten".into(), lsn: None, used_bytes: None, checksum: "unwritten", error: None });
            continue;
        }
        let header = PageHeader::read(&page);
        let verified = page::verify(&page, page_no);
        visit(PageRow {
            page_no,
            file,
            kind: kind_name(header.kind),
            lsn: Some(header.lsn().0),
            used_bytes: used_bytes(&page),
            checksum: if verified.is_ok() { "ok" } else { "BAD" },
            error: verified.err().map(|error| error.to_string()),
        });
    }
}

/// A run of unwritten (or missing) pages in one file, folded into one row.
struct Run {
    file: String,
    kind: String,
    status: &'static str,
    first: u64,
    last: u64,
}

/// Streams the listing to `out`: memory holds one block of rows and the
/// folded runs' ranges (for the JSON `unwritten` list).
pub fn run(database: &Database, index_space: bool, as_json: bool, out: &mut Output) -> Result<(), CannotRun> {
    let dir_name = if index_space { INDEXES_DIR } else { DATA_DIR };
    let space = PageSpace::open(&database.root, dir_name);
    if let Some(error) = space.read_error() {
        return Err(CannotRun(error));
    }
    if space.segments.is_empty() && !as_json {
        out.write(&format!("{dir_name}/: no segment files\n"));
        return Ok(());
    }
    let mut table = StreamTable::new(&["file", "page", "kind", "lsn", "fill", "checksum"]);
    let mut object = as_json.then(|| JsonObject::begin(out));
    if let Some(object) = object.as_mut() {
        object.field(out, "space", &json!(dir_name));
        object.begin_array(out, "pages");
    }
    let mut unwritten_json = Vec::new();
    let mut pending: Option<Run> = None;
    let mut progress = Progress::new("pages", space.page_capacity());
    let emit_run = |run: Run, out: &mut Output, table: &mut StreamTable, unwritten_json: &mut Vec<Value>| {
        let pages = if run.first == run.last { run.first.to_string() } else { format!("{}-{}", run.first, run.last) };
        if !as_json {
            if let Some(text) = table.row(vec![run.file.clone(), pages, run.kind, "-".into(), "-".into(), run.status.into()]) {
                out.write(&text);
            }
        }
        unwritten_json.push(json!({"file": run.file, "first": run.first, "last": run.last, "status": run.status}));
    };
    for_each_row(&space, |row| {
        progress.tick();
        if row.checksum == "unwritten" || row.checksum == "missing" {
            if let Some(run) = pending.as_mut().filter(|run| run.status == row.checksum && run.file == row.file) {
                run.last = row.page_no.0;
                return;
            }
            if let Some(run) = pending.take() {
                emit_run(run, out, &mut table, &mut unwritten_json);
            }
            pending = Some(Run { file: row.file, kind: row.kind, status: row.checksum, first: row.page_no.0, last: row.page_no.0 });
            return;
        }
        if let Some(run) = pending.take() {
            emit_run(run, out, &mut table, &mut unwritten_json);
        }
        match object.as_mut() {
            Some(object) => object.item(
                out,
                &json!({
                    "file": row.file, "page": row.page_no.0, "kind": row.kind, "lsn": row.lsn,
                    "used_bytes": row.used_bytes, "fill_percent": row.fill_percent(), "checksum": row.checksum,
                    "error": row.error.clone().map(Value::from).unwrap_or(Value::Null),
                }),
            ),
            None => {
                let fill = row.fill_percent().map(|fill| format!("{fill:.1}%")).unwrap_or_else(|| "?".into());
                let cells = vec![
                    row.file.clone(),
                    row.page_no.to_string(),
                    row.kind.clone(),
                    row.lsn.map(|lsn| lsn.to_string()).unwrap_or_default(),
                    fill,
                    row.checksum.into(),
                ];
                if let Some(text) = table.row(cells) {
                    out.write(&text);
                }
            }
        }
    });
    if let Some(run) = pending.take() {
        emit_run(run, out, &mut table, &mut unwritten_json);
    }
    progress.finish();
    match object {
        Some(mut object) => {
            object.end_array(out);
            object.field(out, "unwritten", &Value::Array(unwritten_json));
            object.end(out);
        }
        None => out.write(&table.flush()),
    }
    Ok(())
}
