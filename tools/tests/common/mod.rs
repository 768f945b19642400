//! Builds small AeroDB databases by hand, with `aerodb-format` only, the way
//! FORMAT.md describes them: MANIFEST, WAL (one record per write, holding
//! the sealed images of every page the write changed), 4 MiB segment files,
//! schema files and their hashes, the frozen config, `state.json`, the
//! clean-shutdown marker, and B-trees bulk-loaded into the index space with
//! their `directory.json`.
//!
//! The checks under test never depend on how a database was made: these
//! helpers only produce files, and the tests then damage them in place
//! (see the `damage` helpers) and run the real binaries on them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use aerodb_format::btree::{self, Locator};
use aerodb_format::config::Config;
use aerodb_format::document;
use aerodb_format::key::{self, KeyValue};
use aerodb_format::manifest::Manifest;
use aerodb_format::page::{self, new_page, PageBytes, PageHeader, PageKind, HEADER_BYTES};
use aerodb_format::schema::{FieldType, Schema};
use aerodb_format::slotted::{self, SlotRecord, INLINE_RECORD_MAX_BYTES, OVERFLOW_DATA_BYTES};
use aerodb_format::wal::{self, RecordHeader, WalHeader, WalOp};
use aerodb_format::{segment_file_name, PageNo, SeqNo, PAGE_SIZE_BYTES, SEGMENT_PAGES};

pub const DATABASE_ID: [u8; 16] = *b"tools-test-db-01";

pub const USER_V1: &str = r#"{
  "schema_id": "user",
  "schema_version": "v1",
  "fields": {
    "_id": {"type": "string"},
    "name": {"type": "string"},
    "age": {"type": "int"},
    "score": {"type": "float", "required": false},
    "bio": {"type": "string", "required": false},
    "tags": {"type": "array", "items": {"type": "string"}, "required": false}
  },
  "indexes": ["_id", "name", "age", "score"]
}
"#;

pub const USER_V2: &str = r#"{
  "schema_id": "user",
  "schema_version": "v2",
  "fields": {
    "_id": {"type": "string"},
    "name": {"type": "string"},
    "email": {"type": "string", "required": false}
  },
  "indexes": ["email"]
}
"#;

pub const ITEM_V1: &str = r#"{
  "schema_id": "item",
  "schema_version": "v1",
  "fields": {
    "_id": {"type": "int"},
    "active": {"type": "bool"},
    "label": {"type": "string"}
  },
  "indexes": ["active"]
}
"#;

/// Where a live document is.
#[derive(Clone, Debug)]
pub struct DocumentPlace {
    pub schema_id: String,
    pub schema_version: String,
    pub locator: Locator,
    pub body: Map<String, Value>,
    pub overflow_pages: Vec<u64>,
}

/// The shape of one index tree as built.
#[derive(Clone, Debug)]
pub struct TreeLayout {
    pub schema_id: String,
    pub schema_version: String,
    pub field: String,
    pub root: u64,
    pub height: u64,
    pub entries: u64,
    /// Leaf pages in key order.
    pub leaves: Vec<u64>,
    /// Internal pages, level by level from the bottom.
    pub internals: Vec<u64>,
}

impl TreeLayout {
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.schema_id, self.schema_version, self.field)
    }
}

/// A database under construction: the document space as it would be after
/// applying every WAL record, and the WAL itself.
pub struct Builder {
    schemas: Vec<(String, String, Schema)>,
    pages: BTreeMap<u64, Box<PageBytes>>,
    wal: Vec<u8>,
    record_offsets: Vec<(u64, usize)>,
    seq: u64,
    next_page: u64,
    documents: BTreeMap<(String, String), DocumentPlace>,
    /// Page state the segments hold if the database "crashes" (None: every write applied).
    applied: Option<BTreeMap<u64, Box<PageBytes>>>,
    /// Entries per leaf and children per internal node when bulk loading
    /// (small, so that a few documents make trees of several levels).
    pub node_capacity: usize,
    config_text: String,
}

/// A finished database in a temporary folder.
pub struct TestDb {
    /// The temporary folder holding it (None when built into a given folder).
    pub dir: Option<tempfile::TempDir>,
    pub config: PathBuf,
    pub root: PathBuf,
    pub documents: BTreeMap<(String, String), DocumentPlace>,
    pub record_offsets: Vec<(u64, usize)>,
    pub trees: Vec<TreeLayout>,
    pub last_seq: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        let mut builder = Builder {
            schemas: Vec::new(),
            pages: BTreeMap::new(),
            wal: WalHeader::new(DATABASE_ID).encode().to_vec(),
            record_offsets: Vec::new(),
            seq: 0,
            next_page: 0,
            documents: BTreeMap::new(),
            applied: None,
            node_capacity: 2,
            config_text: "{\n  \"data_dir\": \"./data\",\n  \"wal_sync_mode\": \"fsync\",\n  \"max_wal_size_bytes\": 1073741824,\n  \"max_memory_bytes\": 536870912\n}\n".into(),
        };
        for text in [USER_V1, USER_V2, ITEM_V1] {
            builder.add_schema(text);
        }
        builder
    }

    pub fn add_schema(&mut self, text: &str) {
        let schema = Schema::parse(text.as_bytes()).expect("test schema parses");
        let name = format!("{}_{}.json", schema.schema_id, schema.schema_version);
        self.schemas.push((name, text.to_string(), schema));
    }

    fn schema(&self, schema_id: &str, schema_version: &str) -> &Schema {
        &self.schemas.iter().find(|(_, _, s)| s.schema_id == schema_id && s.schema_version == schema_version).expect("known schema").2
    }

    fn allocate(&mut self) -> u64 {
        let page_no = self.next_page;
        self.next_page += 1;
        page_no
    }

    /// Appends one WAL record holding `changed` (sealed here with the new
    /// sequence number) and applies the pages.
    fn log(&mut self, op: WalOp, schema_id: &str, schema_version: &str, id: &Value, changed: Vec<Box<PageBytes>>) {
        self.seq += 1;
        let seq = SeqNo(self.seq);
        let mut sealed = changed;
        for page in sealed.iter_mut() {
            page::seal(page, seq);
        }
        let references: Vec<&PageBytes> = sealed.iter().map(|page| &**page).collect();
        let record = wal::encode_record(&RecordHeader { seq, op, schema_id, schema_version, id }, &references);
        self.record_offsets.push((self.seq, self.wal.len()));
        self.wal.extend_from_slice(&record);
        for page in sealed {
            let page_no = PageHeader::read(&page).page_no().0;
            self.pages.insert(page_no, page);
        }
    }

    /// Inserts a document the way the engine would, without checking `_id`
    /// uniqueness (so tests can make duplicates).
    pub fn insert(&mut self, schema_id: &str, schema_version: &str, document: Value) {
        let body = self.schema(schema_id, schema_version).validate(&document).expect("test document validates");
        let id = body["_id"].clone();
        let (changed, locator, overflow_pages) = self.place(schema_id, schema_version, &body, None);
        self.log(WalOp::Insert, schema_id, schema_version, &id, changed);
        // A duplicate `_id` keeps both documents in the files; the map keeps the last.
        self.documents.insert(
            (schema_id.to_string(), id_text(&id)),
            DocumentPlace { schema_id: schema_id.into(), schema_version: schema_version.into(), locator, body, overflow_pages },
        );
    }

    /// Inserts a body exactly as given: no validation, no normalisation (to
    /// store documents a schema would reject).
    pub fn insert_raw(&mut self, schema_id: &str, schema_version: &str, document: Value) {
        let body = document.as_object().expect("an object").clone();
        let id = body["_id"].clone();
        let (changed, locator, overflow_pages) = self.place(schema_id, schema_version, &body, None);
        self.log(WalOp::Insert, schema_id, schema_version, &id, changed);
        self.documents.insert(
            (schema_id.to_string(), id_text(&id)),
            DocumentPlace { schema_id: schema_id.into(), schema_version: schema_version.into(), locator, body, overflow_pages },
        );
    }

    /// Logs one hand-made page as it is (sealed here), outside any document
    /// write (to put odd pages in the document space).
    pub fn log_raw_page(&mut self, page: Box<PageBytes>) {
        let page_no = PageHeader::read(&page).page_no().0;
        self.next_page = self.next_page.max(page_no + 1);
        self.log(WalOp::Update, "user", "v1", &json!("raw"), vec![page]);
    }

    /// Replaces a document (possibly under another version), in one record.
    pub fn update(&mut self, schema_id: &str, schema_version: &str, document: Value) {
        let body = self.schema(schema_id, schema_version).validate(&document).expect("test document validates");
        let id = body["_id"].clone();
        let key = (schema_id.to_string(), id_text(&id));
        let old = self.documents.remove(&key).expect("document to update exists");
        let mut changed = self.remove_pages(&old);
        let page_no = old.locator.page.0;
        let mut page = changed
            .iter()
            .position(|p| PageHeader::read(p).page_no().0 == page_no)
            .map(|i| changed.remove(i))
            .expect("document page changed");
        let (more, locator, overflow_pages) = self.place(schema_id, schema_version, &body, Some(&mut page));
        changed.push(page);
        changed.extend(more);
        self.log(WalOp::Update, schema_id, schema_version, &id, changed);
        self.documents.insert(
            key,
            DocumentPlace { schema_id: schema_id.into(), schema_version: schema_version.into(), locator, body, overflow_pages },
        );
    }

    pub fn delete(&mut self, schema_id: &str, id: &Value) {
        let key = (schema_id.to_string(), id_text(id));
        let old = self.documents.remove(&key).expect("document to delete exists");
        let changed = self.remove_pages(&old);
        let version = old.schema_version.clone();
        self.log(WalOp::Delete, schema_id, &version, id, changed);
    }

    /// The pages a removal changes: the document page without the slot, and
    /// the freed overflow pages.
    fn remove_pages(&mut self, old: &DocumentPlace) -> Vec<Box<PageBytes>> {
        let mut page = self.pages[&old.locator.page.0].clone();
        slotted::delete(&mut page, old.locator.slot);
        let mut changed = vec![page];
        for &overflow in &old.overflow_pages {
            changed.push(new_page(PageKind::Free, PageNo(overflow)));
        }
        changed
    }

    /// Puts a document record on a page (`into`, or the first page with room,
    /// or a new one), with an overflow chain when it is large.
    fn place(
        &mut self,
        schema_id: &str,
        schema_version: &str,
        body: &Map<String, Value>,
        into: Option<&mut Box<PageBytes>>,
    ) -> (Vec<Box<PageBytes>>, Locator, Vec<u64>) {
        let record = document::encode_record(schema_id, schema_version, body).expect("encodes");
        let mut changed = Vec::new();
        let mut overflow_pages = Vec::new();
        let slot_record = if record.len() < INLINE_RECORD_MAX_BYTES {
            slotted::encode_inline(&record)
        } else {
            let count = slotted::overflow_pages_needed(record.len());
            overflow_pages = (0..count).map(|_| self.allocate()).collect();
            for (index, chunk) in record.chunks(OVERFLOW_DATA_BYTES).enumerate() {
                let mut page = new_page(PageKind::Overflow, PageNo(overflow_pages[index]));
                let next = overflow_pages.get(index + 1).copied().unwrap_or(PageNo::NONE.0);
                slotted::fill_overflow_page(&mut page, chunk, next);
                changed.push(page);
            }
            slotted::encode_overflow_stub(record.len() as u32, overflow_pages[0])
        };
        let mut skip = None;
        if let Some(page) = into {
            skip = Some(PageHeader::read(page).page_no().0);
            if slotted::space_needed(page, slot_record.len()) <= slotted::free_bytes(page) {
                let slot = slotted::insert(page, &slot_record).expect("fits");
                let page_no = PageHeader::read(page).page_no();
                return (changed, Locator { page: page_no, slot }, overflow_pages);
            }
        }
        let existing = self.pages.iter().find(|(page_no, page)| {
            Some(**page_no) != skip
                && PageHeader::read(page).kind == PageKind::Document as u8
                && slotted::space_needed(page, slot_record.len()) <= slotted::free_bytes(page)
        });
        let mut page = match existing {
            Some((_, page)) => page.clone(),
            None => {
                let page_no = self.allocate();
                new_page(PageKind::Document, PageNo(page_no))
            }
        };
        let slot = slotted::insert(&mut page, &slot_record).expect("fits");
        let page_no = PageHeader::read(&page).page_no();
        changed.push(page);
        (changed, Locator { page: page_no, slot }, overflow_pages)
    }

    /// From now on, writes reach the WAL but not the segments (as if the
    /// process were killed before applying them).
    pub fn stop_applying(&mut self) {
        if self.applied.is_none() {
            self.applied = Some(self.pages.clone());
        }
    }

    pub fn set_config_text(&mut self, text: &str) {
        self.config_text = text.to_string();
    }

    /// The standard test database: documents in three schema versions over
    /// several pages, one large (overflow chain), one deleted, one large one
    /// deleted (its chain freed), one updated, one upgraded to v2.
    pub fn standard() -> Builder {
        let mut builder = Builder::new();
        builder.insert("user", "v1", json!({"_id": "u1", "name": "alice", "age": 30, "score": 1.5}));
        builder.insert("user", "v1", json!({"_id": "u2", "name": "bob", "age": 41}));
        builder.insert("user", "v1", json!({"_id": "u3", "name": "carol", "age": 30, "score": 10, "tags": ["a", "b"]}));
        builder.insert("user", "v1", json!({"_id": "u4", "name": "dave", "age": 25, "bio": "x".repeat(5000)}));
        builder.insert("user", "v1", json!({"_id": "u5", "name": "eve", "age": 52}));
        builder.insert("user", "v1", json!({"_id": "u6", "name": "frank", "age": 33}));
        builder.insert("user", "v1", json!({"_id": "u7", "name": "gina", "age": 28}));
        builder.delete("user", &json!("u6"));
        builder.update("user", "v1", json!({"_id": "u7", "name": "gina", "age": 29, "score": -2.25}));
        builder.update("user", "v2", json!({"_id": "u2", "name": "bob", "email": "bob@example.com"}));
        builder.insert("user", "v2", json!({"_id": "u8", "name": "hal"}));
        builder.insert("user", "v1", json!({"_id": "u9", "name": "ivy", "age": 61, "bio": "y".repeat(1800)}));
        builder.insert("user", "v1", json!({"_id": "u10", "name": "jon", "age": 30, "bio": "z".repeat(1800)}));
        builder.insert("user", "v1", json!({"_id": "u11", "name": "kim", "age": 19, "bio": "w".repeat(1800)}));
        builder.insert("user", "v1", json!({"_id": "u12", "name": "lee", "age": 44, "bio": "v".repeat(6000)}));
        builder.delete("user", &json!("u12"));
        builder.insert("item", "v1", json!({"_id": 1, "active": true, "label": "one"}));
        builder.insert("item", "v1", json!({"_id": 2, "active": false, "label": "two"}));
        builder.insert("item", "v1", json!({"_id": 3, "active": true, "label": "three"}));
        builder
    }

    /// Writes every file. `clean`: with `state.json`, the clean-shutdown
    /// marker and the indexes (as after a graceful shutdown); otherwise as
    /// after a crash (no marker, no state; indexes are left out).
    pub fn finish(&self, clean: bool) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut db = self.finish_into(dir.path(), clean);
        db.dir = Some(dir);
        db
    }

    /// [`Builder::finish`] into an existing empty folder (kept afterwards).
    pub fn finish_into(&self, folder: &Path, clean: bool) -> TestDb {
        let config = folder.join("aerodb.json");
        std::fs::write(&config, &self.config_text).unwrap();
        let root = folder.join("data");
        for folder in ["wal", "data", "indexes", "metadata/schemas"] {
            std::fs::create_dir_all(root.join(folder)).unwrap();
        }
        std::fs::write(root.join("MANIFEST"), Manifest::new(DATABASE_ID).encode()).unwrap();
        std::fs::write(root.join("LOCK"), b"").unwrap();
        std::fs::write(root.join("wal/wal.log"), &self.wal).unwrap();
        let frozen = Config::parse(self.config_text.as_bytes()).expect("test config parses");
        std::fs::write(root.join("metadata/config.json"), frozen.to_frozen_json()).unwrap();
        let mut hashes = Map::new();
        let mut sorted: Vec<&(String, String, Schema)> = self.schemas.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, text, _) in sorted {
            std::fs::write(root.join("metadata/schemas").join(name), text).unwrap();
            hashes.insert(name.clone(), Value::from(sha256_hex(text.as_bytes())));
        }
        std::fs::write(root.join("metadata/schema_hashes.json"), serde_json::to_string_pretty(&Value::Object(hashes)).unwrap()).unwrap();
        let segment_pages = self.applied.as_ref().unwrap_or(&self.pages);
        write_space(&root.join("data"), segment_pages);
        let mut trees = Vec::new();
        if clean {
            assert!(self.applied.is_none(), "a clean shutdown applies every write");
            let state = json!({"last_seq": self.seq, "wal_bytes": self.wal.len(), "documents": self.documents_in_pages(),
                               "document_pages": self.next_page});
            std::fs::write(root.join("metadata/state.json"), serde_json::to_string_pretty(&state).unwrap()).unwrap();
            trees = self.write_indexes(&root);
            std::fs::write(root.join("clean_shutdown"), b"").unwrap();
        }
        TestDb {
            dir: None,
            config,
            root,
            documents: self.documents.clone(),
            record_offsets: self.record_offsets.clone(),
            trees,
            last_seq: self.seq,
        }
    }

    /// Documents in the page images (duplicates included).
    fn documents_in_pages(&self) -> u64 {
        self.live_records().len() as u64
    }

    /// Every live record in the pages: (locator, decoded record).
    fn live_records(&self) -> Vec<(Locator, document::DocumentRecord)> {
        let mut out = Vec::new();
        for (&page_no, page) in &self.pages {
            if PageHeader::read(page).kind != PageKind::Document as u8 {
                continue;
            }
            for (slot, bytes) in slotted::check_document_page(page).expect("built pages are valid") {
                let record = match slotted::decode_slot_record(bytes).unwrap() {
                    SlotRecord::Inline(document) => document.to_vec(),
                    SlotRecord::Overflow { length, first_page } => {
                        let mut data = Vec::new();
                        let mut current = first_page;
                        while current != PageNo::NONE.0 {
                            let overflow = &self.pages[&current];
                            data.extend_from_slice(slotted::check_overflow_page(overflow).unwrap());
                            current = PageHeader::read(overflow).next().0;
                        }
                        assert_eq!(data.len(), length as usize);
                        data
                    }
                };
                out.push((Locator { page: PageNo(page_no), slot }, document::decode_record(&record).unwrap()));
            }
        }
        out
    }

    /// Bulk-loads one tree per (schema version, indexed field) into the index
    /// space and writes `directory.json`.
    fn write_indexes(&self, root: &Path) -> Vec<TreeLayout> {
        let records = self.live_records();
        let mut ids: Vec<(String, String, String)> = Vec::new();
        for (_, _, schema) in &self.schemas {
            for field in &schema.indexes {
                ids.push((schema.schema_id.clone(), schema.schema_version.clone(), field.clone()));
            }
        }
        ids.sort();
        let mut index_pages: BTreeMap<u64, Box<PageBytes>> = BTreeMap::new();
        let mut next_page = 0u64;
        let mut layouts = Vec::new();
        for (schema_id, schema_version, field) in ids {
            let schema = self.schema(&schema_id, &schema_version);
            let as_float = matches!(schema.field(&field).map(|f| &f.field_type), Some(FieldType::Float));
            let mut entries: BTreeMap<Vec<u8>, Locator> = BTreeMap::new();
            for (locator, record) in &records {
                if record.schema_id != schema_id || record.schema_version != schema_version {
                    continue;
                }
                let Some(id_value) = KeyValue::from_json(&record.body["_id"], false) else {
                    continue;
                };
                let id_key = key::encode_to_vec(&id_value);
                let entry_key = if field == "_id" {
                    id_key
                } else {
                    let Some(value) = record.body.get(&field).and_then(|value| KeyValue::from_json(value, as_float)) else {
                        continue;
                    };
                    let mut bytes = key::encode_to_vec(&value);
                    bytes.extend_from_slice(&id_key);
                    bytes
                };
                entries.entry(entry_key).or_insert(*locator);
            }
            let layout = bulk_load(&mut index_pages, &mut next_page, self.node_capacity, &entries, SeqNo(self.seq));
            layouts.push(TreeLayout { schema_id, schema_version, field, ..layout });
        }
        write_space(&root.join("indexes"), &index_pages);
        let trees: Vec<Value> = layouts
            .iter()
            .map(|t| {
                json!({"schema_id": t.schema_id, "schema_version": t.schema_version, "field": t.field,
                            "root": t.root, "height": t.height, "entries": t.entries})
            })
            .collect();
        let directory = json!({"lsn": self.seq, "trees": trees});
        std::fs::write(root.join("indexes/directory.json"), serde_json::to_string_pretty(&directory).unwrap()).unwrap();
        layouts
    }
}

/// Bottom-up bulk load: leaves of `capacity` entries linked both ways, then
/// levels of internal nodes (the leftmost entry of each level has the empty key).
fn bulk_load(
    pages: &mut BTreeMap<u64, Box<PageBytes>>,
    next_page: &mut u64,
    capacity: usize,
    entries: &BTreeMap<Vec<u8>, Locator>,
    lsn: SeqNo,
) -> TreeLayout {
    let mut allocate = |pages: &mut BTreeMap<u64, Box<PageBytes>>, level: u32| {
        let page_no = *next_page;
        *next_page += 1;
        let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
        btree::init_node(&mut page, PageNo(page_no), level);
        pages.insert(page_no, page);
        page_no
    };
    let list: Vec<(&Vec<u8>, &Locator)> = entries.iter().collect();
    let mut level_nodes: Vec<(Vec<u8>, u64, u64)> = Vec::new();
    let chunks: Vec<&[(&Vec<u8>, &Locator)]> = if list.is_empty() { vec![&[]] } else { list.chunks(capacity).collect() };
    let mut leaves = Vec::new();
    for chunk in chunks {
        let page_no = allocate(pages, 0);
        let page = pages.get_mut(&page_no).unwrap();
        for (index, (key_bytes, locator)) in chunk.iter().enumerate() {
            assert!(btree::insert_entry(page, index, key_bytes, &locator.to_bytes()));
        }
        let first = chunk.first().map(|(k, _)| (*k).clone()).unwrap_or_default();
        level_nodes.push((first, page_no, chunk.len() as u64));
        leaves.push(page_no);
    }
    for (index, &leaf) in leaves.iter().enumerate() {
        let prev = if index == 0 { PageNo::NONE } else { PageNo(leaves[index - 1]) };
        let next = leaves.get(index + 1).map(|&p| PageNo(p)).unwrap_or(PageNo::NONE);
        btree::set_links(pages.get_mut(&leaf).unwrap(), prev, next);
    }
    let mut height = 1u64;
    let mut internals = Vec::new();
    while level_nodes.len() > 1 {
        let mut parents = Vec::new();
        for (chunk_index, chunk) in level_nodes.chunks(capacity).enumerate() {
            let page_no = allocate(pages, height as u32);
            let page = pages.get_mut(&page_no).unwrap();
            let mut total = 0;
            for (index, (key_bytes, child, count)) in chunk.iter().enumerate() {
                let key_bytes: &[u8] = if chunk_index == 0 && index == 0 { b"" } else { key_bytes };
                assert!(btree::insert_entry(page, index, key_bytes, &btree::internal_value_bytes(PageNo(*child), *count)));
                total += count;
            }
            let first = if chunk_index == 0 { Vec::new() } else { chunk[0].0.clone() };
            parents.push((first, page_no, total));
            internals.push(page_no);
        }
        level_nodes = parents;
        height += 1;
    }
    for page_no in leaves.iter().chain(internals.iter()) {
        page::seal(pages.get_mut(page_no).unwrap(), lsn);
    }
    TreeLayout {
        schema_id: String::new(),
        schema_version: String::new(),
        field: String::new(),
        root: level_nodes[0].1,
        height,
        entries: entries.len() as u64,
        leaves,
        internals,
    }
}

/// Writes pages into 4 MiB segment files.
fn write_space(folder: &Path, pages: &BTreeMap<u64, Box<PageBytes>>) {
    let mut segments: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (&page_no, page) in pages {
        let segment = segments.entry(page_no / SEGMENT_PAGES).or_insert_with(|| vec![0u8; SEGMENT_PAGES as usize * PAGE_SIZE_BYTES]);
        let at = (page_no % SEGMENT_PAGES) as usize * PAGE_SIZE_BYTES;
        segment[at..at + PAGE_SIZE_BYTES].copy_from_slice(&page[..]);
    }
    if segments.is_empty() {
        segments.insert(0, vec![0u8; SEGMENT_PAGES as usize * PAGE_SIZE_BYTES]);
    }
    for (index, bytes) in segments {
        std::fs::write(folder.join(segment_file_name(index)), bytes).unwrap();
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn id_text(id: &Value) -> String {
    match id {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- damage

impl TestDb {
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    pub fn document(&self, schema_id: &str, id: &str) -> &DocumentPlace {
        &self.documents[&(schema_id.to_string(), id.to_string())]
    }

    pub fn tree(&self, label: &str) -> &TreeLayout {
        self.trees.iter().find(|tree| tree.label() == label).expect("tree exists")
    }

    pub fn record_offset(&self, seq: u64) -> usize {
        self.record_offsets.iter().find(|(s, _)| *s == seq).expect("record exists").1
    }

    /// XORs one byte of a file.
    pub fn flip_byte(&self, relative: &str, offset: u64) {
        let path = self.path(relative);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset as usize] ^= 0x5A;
        std::fs::write(path, bytes).unwrap();
    }

    pub fn truncate(&self, relative: &str, length: u64) {
        let path = self.path(relative);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(length as usize);
        std::fs::write(path, bytes).unwrap();
    }

    /// Reads page `page_no` of `data` or `indexes`.
    pub fn read_page(&self, space: &str, page_no: u64) -> Box<PageBytes> {
        let path = self.path(&format!("{space}/{}", segment_file_name(page_no / SEGMENT_PAGES)));
        let bytes = std::fs::read(path).unwrap();
        let at = (page_no % SEGMENT_PAGES) as usize * PAGE_SIZE_BYTES;
        let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
        page.copy_from_slice(&bytes[at..at + PAGE_SIZE_BYTES]);
        page
    }

    /// Writes page `page_no` back, resealed (checksum recomputed, LSN kept).
    pub fn write_page_resealed(&self, space: &str, page_no: u64, page: &mut PageBytes) {
        let lsn = PageHeader::read(page).lsn();
        page::seal(page, lsn);
        let path = self.path(&format!("{space}/{}", segment_file_name(page_no / SEGMENT_PAGES)));
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (page_no % SEGMENT_PAGES) as usize * PAGE_SIZE_BYTES;
        bytes[at..at + PAGE_SIZE_BYTES].copy_from_slice(&page[..]);
        std::fs::write(path, bytes).unwrap();
    }

    /// Byte offset of page `page_no` in its segment file, and the file name.
    pub fn page_file(&self, space: &str, page_no: u64) -> (String, u64) {
        (format!("{space}/{}", segment_file_name(page_no / SEGMENT_PAGES)), (page_no % SEGMENT_PAGES) * PAGE_SIZE_BYTES as u64)
    }

    /// Offset of the record bytes of a slot inside its page.
    pub fn slot_offset(&self, locator: Locator) -> u64 {
        let page = self.read_page("data", locator.page.0);
        slotted::slot(&page, locator.slot).unwrap().0 as u64
    }

    pub fn run(&self, binary: &str, args: &[&str]) -> Output {
        let output = Command::new(binary).arg("--config").arg(&self.config).args(args).output().expect("binary runs");
        Output::from(output)
    }

    pub fn verify(&self) -> Output {
        self.run(env!("CARGO_BIN_EXE_aerodb-verify"), &["--json"])
    }

    pub fn inspect(&self, args: &[&str]) -> Output {
        self.run(env!("CARGO_BIN_EXE_aerodb-inspect"), args)
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(output: std::process::Output) -> Output {
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Output {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// The problems of a verify --json report.
    pub fn problems(&self) -> Vec<Value> {
        self.json()["problems"].as_array().cloned().unwrap_or_default()
    }

    pub fn notes(&self) -> Vec<Value> {
        self.json()["notes"].as_array().cloned().unwrap_or_default()
    }
}

/// A compact dump of findings for assertion messages.
pub fn show(findings: &[Value]) -> String {
    findings.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n")
}

/// The findings whose message contains `needle`.
pub fn matching<'a>(findings: &'a [Value], needle: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["message"].as_str().is_some_and(|m| m.contains(needle))).collect()
}

pub const HEADER: usize = HEADER_BYTES;
