//! `aerodb-inspect pages`: one row per page of a page space: file, number,
//! kind, LSN, fill and checksum status. Runs of unwritten pages are folded
//! into one row (and one `unwritten` range in JSON).

use serde_json::{json, Value};

use aerodb_format::page::{self, PageHeader};
use aerodb_format::{PageNo, PAGE_SIZE_BYTES};

use crate::database::{CannotRun, Database, DATA_DIR, INDEXES_DIR};
use crate::describe::{kind_name, used_bytes};
use crate::inspect::Rendered;
use crate::space::PageSpace;
use crate::table::Table;

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

/// Classifies every page of a space.
pub fn rows(space: &PageSpace) -> Vec<PageRow> {
    let mut rows = Vec::new();
    for page_no in space.page_numbers() {
        let file = space.file_of(page_no);
        let Some(page) = space.page(page_no) else {
            rows.push(PageRow { page_no, file, kind: "missing".into(), lsn: None, used_bytes: None, checksum: "missing", error: None });
            continue;
        };
        if page::is_unwritten(page) {
            rows.push(PageRow { page_no, file, kind: "unwritten".into(), lsn: None, used_bytes: None, checksum: "unwritten", error: None });
            continue;
        }
        let header = PageHeader::read(page);
        let verified = page::verify(page, page_no);
        rows.push(PageRow {
            page_no,
            file,
            kind: kind_name(header.kind),
            lsn: Some(header.lsn().0),
            used_bytes: used_bytes(page),
            checksum: if verified.is_ok() { "ok" } else { "BAD" },
            error: verified.err().map(|error| error.to_string()),
        });
    }
    rows
}

pub fn run(database: &Database, allow_map: bool, index_space: bool) -> Result<Rendered, CannotRun> {
    let dir_name = if index_space { INDEXES_DIR } else { DATA_DIR };
    let space = PageSpace::open(&database.root, dir_name, allow_map);
    let rows = rows(&space);
    let mut table = Table::new(&["file", "page", "kind", "lsn", "fill", "checksum"]);
    let mut pages_json = Vec::new();
    let mut unwritten_json = Vec::new();
    let mut index = 0;
    while index < rows.len() {
        let row = &rows[index];
        if row.checksum == "unwritten" || row.checksum == "missing" {
            let mut end = index;
            while end + 1 < rows.len() && rows[end + 1].checksum == row.checksum && rows[end + 1].file == row.file {
                end += 1;
            }
            let (first, last) = (row.page_no.0, rows[end].page_no.0);
            let pages = if first == last { first.to_string() } else { format!("{first}-{last}") };
            table.row(vec![row.file.clone(), pages, row.kind.clone(), "-".into(), "-".into(), row.checksum.into()]);
            unwritten_json.push(json!({"file": row.file, "first": first, "last": last, "status": row.checksum}));
            index = end + 1;
            continue;
        }
        let fill = row.fill_percent().map(|fill| format!("{fill:.1}%")).unwrap_or_else(|| "?".into());
        table.row(vec![
            row.file.clone(),
            row.page_no.to_string(),
            row.kind.clone(),
            row.lsn.map(|lsn| lsn.to_string()).unwrap_or_default(),
            fill,
            row.checksum.into(),
        ]);
        pages_json.push(json!({
            "file": row.file, "page": row.page_no.0, "kind": row.kind, "lsn": row.lsn,
            "used_bytes": row.used_bytes, "fill_percent": row.fill_percent(), "checksum": row.checksum,
            "error": row.error.clone().map(Value::from).unwrap_or(Value::Null),
        }));
        index += 1;
    }
    let text = if space.segments.is_empty() { format!("{dir_name}/: no segment files\n") } else { table.render() };
    Ok(Rendered { text, json: json!({"space": dir_name, "pages": pages_json, "unwritten": unwritten_json}) })
}
