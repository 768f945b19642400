//! `aerodb-inspect page N`: one page decoded: header, checksum status, and
//! its content by kind (slots and documents, overflow data, B-tree entries).
//! Works on damaged pages: every offset read from the page is bounds-checked
//! before use, and the `aerodb-format` checks are only called once the hole
//! bounds are known to lie inside the page.

use serde_json::{json, Value};

use aerodb_format::btree;
use aerodb_format::document;
use aerodb_format::page::{self, PageBytes, PageHeader, PageKind, HEADER_BYTES};
use aerodb_format::slotted::{self, SlotRecord, SLOT_BYTES};
use aerodb_format::{PageNo, PAGE_SIZE_BYTES};

use crate::database::{CannotRun, Database, DATA_DIR, INDEXES_DIR};
use crate::describe::{header_fields, hex_dump, key_json, key_text, link_text, used_bytes};
use crate::inspect::Rendered;
use crate::space::PageSpace;
use crate::table::Table;

pub fn run(database: &Database, number: u64, index_space: bool, hex: bool) -> Result<Rendered, CannotRun> {
    let dir_name = if index_space { INDEXES_DIR } else { DATA_DIR };
    let space = PageSpace::open(&database.root, dir_name);
    let page_no = PageNo(number);
    if let Some(error) = &space.folder_error {
        return Err(CannotRun(format!("{dir_name}/ cannot be read: {error}")));
    }
    let file = space.file_of(page_no);
    if let Some((_, reason)) = space.unreadable.iter().find(|(name, _)| *name == file) {
        return Err(CannotRun(format!("{file} cannot be read: {reason}")));
    }
    let Some(page) = space.page(page_no) else {
        return Err(CannotRun(format!(
            "page {number} is not in the segment files of {dir_name}/ ({} segment file(s) present)",
            space.segments.len()
        )));
    };
    Ok(render(&page, page_no, &space.file_of(page_no), hex))
}

/// Renders one page (also used by tests on hand-made pages).
pub fn render(page: &PageBytes, page_no: PageNo, file: &str, hex: bool) -> Rendered {
    let unwritten = page::is_unwritten(page);
    let status = if unwritten {
        "unwritten".to_string()
    } else {
        match page::verify(page, page_no) {
            Ok(_) => "ok".into(),
            Err(error) => format!("BAD: {error}"),
        }
    };
    let mut text = format!("page {page_no} of {file} (file offset {}): {status}\n", page_no.offset_in_segment());
    let mut json = json!({
        "file": file,
        "page": page_no.0,
        "file_offset": page_no.offset_in_segment(),
        "status": if unwritten { "unwritten" } else if status == "ok" { "ok" } else { "BAD" },
        "error": if status.starts_with("BAD") { Value::from(status.trim_start_matches("BAD: ")) } else { Value::Null },
    });
    if !unwritten {
        let mut header_json = serde_json::Map::new();
        for (name, shown, value) in header_fields(page) {
            text.push_str(&format!("  {name:<11} {shown}\n"));
            header_json.insert(name.into(), value);
        }
        json["header"] = Value::Object(header_json);
        let (content_text, content_json) = content(page);
        text.push_str(&content_text);
        json["content"] = content_json;
    }
    if hex {
        let lines = hex_dump(&page[..]);
        for line in &lines {
            text.push_str(line);
            text.push('\n');
        }
        json["hex"] = Value::from(lines);
    }
    Rendered { text, json }
}

/// True when lower/upper lie inside the page, which the format checks need.
fn bounds_sane(page: &PageBytes) -> bool {
    used_bytes(page).is_some()
}

fn content(page: &PageBytes) -> (String, Value) {
    let header = PageHeader::read(page);
    match PageKind::from_byte(header.kind) {
        Some(PageKind::Document) => document_content(page),
        Some(PageKind::Overflow) => {
            let data_bytes = header.lower().saturating_sub(HEADER_BYTES).min(PAGE_SIZE_BYTES - HEADER_BYTES);
            let structure = if bounds_sane(page) {
                slotted::check_overflow_page(page).map(|_| ()).map_err(|error| error.to_string())
            } else {
                Err("hole bounds lie outside the page".into())
            };
            let text = format!(
                "overflow data: {data_bytes} bytes; next {}; structure {}\n",
                link_text(header.next()),
                structure.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|error| format!("BAD: {error}"))
            );
            let json = json!({"data_bytes": data_bytes, "next": if header.next().is_none() { Value::Null } else { Value::from(header.next().0) },
                              "structure": structure.err().unwrap_or_else(|| "ok".into())});
            (text, json)
        }
        Some(PageKind::BtreeLeaf | PageKind::BtreeInternal) => node_content(page),
        Some(PageKind::Free) => ("free page\n".into(), json!({})),
        None => ("unknown page kind: content not decoded\n".into(), json!({})),
    }
}

fn document_content(page: &PageBytes) -> (String, Value) {
    let header = PageHeader::read(page);
    let structure = if bounds_sane(page) {
        slotted::check_document_page(page).map(|_| ()).map_err(|error| error.to_string())
    } else {
        Err("hole bounds lie outside the page".into())
    };
    let mut text =
        format!("slotted structure: {}\n", structure.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|error| format!("BAD: {error}")));
    let slots_max = (PAGE_SIZE_BYTES - HEADER_BYTES) / SLOT_BYTES;
    let count = usize::from(header.item_count.get()).min(slots_max);
    let mut table = Table::new(&["slot", "offset", "length", "record"]);
    let mut slots = Vec::with_capacity(count);
    for slot in 0..count {
        let at = HEADER_BYTES + SLOT_BYTES * slot;
        let offset = usize::from(u16::from_le_bytes([page[at], page[at + 1]]));
        let length = usize::from(u16::from_le_bytes([page[at + 2], page[at + 3]]));
        let (shown, record) = if length == 0 {
            ("(empty)".to_string(), json!({"kind": "empty"}))
        } else {
            match page.get(offset..offset + length) {
                None => ("record lies outside the page".to_string(), json!({"kind": "invalid", "error": "record lies outside the page"})),
                Some(bytes) => describe_record(bytes),
            }
        };
        table.row(vec![slot.to_string(), offset.to_string(), length.to_string(), shorten(&shown)]);
        slots.push(json!({"slot": slot, "offset": offset, "length": length, "record": record}));
    }
    text.push_str(&table.render());
    let json = json!({"structure": structure.err().unwrap_or_else(|| "ok".into()), "slots": slots});
    (text, json)
}

/// Longest record text in the human table (`--json` carries every document whole).
const RECORD_TEXT_CHARS_MAX: usize = 100;

fn shorten(text: &str) -> String {
    let count = text.chars().count();
    if count <= RECORD_TEXT_CHARS_MAX {
        return text.to_string();
    }
    let kept: String = text.chars().take(RECORD_TEXT_CHARS_MAX).collect();
    format!("{kept}... ({count} characters; --json shows all)")
}

fn describe_record(bytes: &[u8]) -> (String, Value) {
    match slotted::decode_slot_record(bytes) {
        Err(error) => (format!("BAD record: {error}"), json!({"kind": "invalid", "error": error.to_string()})),
        Ok(SlotRecord::Overflow { length, first_page }) => (
            format!("overflow stub: {length} bytes from page {first_page}"),
            json!({"kind": "overflow", "length": length, "first_page": first_page}),
        ),
        Ok(SlotRecord::Inline(document)) => match document::decode_record(document) {
            Err(error) => (format!("BAD document: {error}"), json!({"kind": "invalid", "error": error.to_string()})),
            Ok(record) => {
                let body = Value::Object(record.body);
                (
                    format!("{}/{} {}", record.schema_id, record.schema_version, body),
                    json!({"kind": "inline", "schema_id": record.schema_id, "schema_version": record.schema_version, "document": body}),
                )
            }
        },
    }
}

fn node_content(page: &PageBytes) -> (String, Value) {
    let structure = if bounds_sane(page) {
        btree::check_node(page).map_err(|error| error.to_string())
    } else {
        Err("hole bounds lie outside the page".into())
    };
    let mut text = format!(
        "node structure: {}\n",
        structure.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|error| format!("BAD: {error} (entries not decoded)"))
    );
    let mut entries = Vec::new();
    if structure.is_ok() {
        let leaf = btree::is_leaf(page);
        let mut table =
            if leaf { Table::new(&["entry", "key", "document page", "slot"]) } else { Table::new(&["entry", "key", "child", "count"]) };
        for index in 0..btree::entry_count(page) {
            let key_bytes = btree::key(page, index);
            if leaf {
                let locator = btree::leaf_locator(page, index);
                table.row(vec![index.to_string(), key_text(key_bytes), locator.page.to_string(), locator.slot.to_string()]);
                entries.push(json!({"entry": index, "key": key_json(key_bytes), "page": locator.page.0, "slot": locator.slot}));
            } else {
                let (child, count) = btree::internal_child(page, index);
                table.row(vec![index.to_string(), key_text(key_bytes), child.to_string(), count.to_string()]);
                entries.push(json!({"entry": index, "key": key_json(key_bytes), "child": child.0, "count": count}));
            }
        }
        text.push_str(&table.render());
    }
    let json = json!({"structure": structure.err().unwrap_or_else(|| "ok".into()), "entries": entries});
    (text, json)
}
