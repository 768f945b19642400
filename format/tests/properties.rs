//! Property tests of the on-disk format:
//!
//! - every structure round-trips (document records, slotted pages, B-tree
//!   nodes, WAL records with random pages, MANIFEST, WAL header, index keys);
//! - no decoder panics on arbitrary bytes or on mutated valid bytes (with
//!   checksums recomputed after the mutation, so that the structural checks
//!   behind the checksum are reached too);
//! - index key encodings sort (memcmp) exactly as their values do;
//! - every single-bit flip of a full document page and of a multi-page WAL
//!   record is detected.
//!
//! The whole file runs in about a second in the test profile, with 256
//! cases per property; `PROPTEST_CASES=100000` runs a deeper search.

use std::collections::BTreeMap;

use aerodb_format::btree;
use aerodb_format::config::Config;
use aerodb_format::document::{self, decode_record, encode_record};
use aerodb_format::key::{self, KeyValue};
use aerodb_format::manifest::{Manifest, MANIFEST_BYTES};
use aerodb_format::page::{self, PageBytes, PageHeader, PageKind, HEADER_BYTES};
use aerodb_format::schema::Schema;
use aerodb_format::slotted::{self, SlotRecord, INLINE_RECORD_MAX_BYTES, OVERFLOW_DATA_BYTES};
use aerodb_format::wal::{self, RecordError, RecordHeader, WalHeader, WalOp, WAL_HEADER_BYTES};
use aerodb_format::{PageNo, SeqNo, JSON_DEPTH_MAX, PAGE_SIZE_BYTES};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Number, Value};

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    // No regression files are written into the source tree: a failure
    // prints its minimal case, which becomes a fixed test below.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|text| text.parse().ok()).unwrap_or(CASES);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------
// Strategies

fn identifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,64}"
}

fn short_identifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,8}"
}

/// Any Unicode text, control characters and NUL included.
fn any_text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..24).prop_map(|chars| chars.into_iter().collect())
}

fn finite_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |float| float.is_finite()),
        prop::sample::select(vec![0.0, -0.0, 1.0, -1.0, 0.5, f64::MIN, f64::MAX, f64::MIN_POSITIVE, 5e-324, -5e-324]),
        (-1000i32..1000).prop_map(f64::from),
    ]
}

fn float_value(float: f64) -> Value {
    Value::Number(Number::from_f64(float).expect("finite"))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        finite_float().prop_map(float_value),
        any_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((short_identifier(), inner), 0..6).prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn id_value() -> impl Strategy<Value = Value> {
    prop_oneof![any::<i64>().prop_map(Value::from), any_text().prop_map(Value::String)]
}

/// A document body: `_id` somewhere among other members, order kept.
fn document_body() -> impl Strategy<Value = Map<String, Value>> {
    (id_value(), vec((short_identifier(), json_value()), 0..8), any::<Index>()).prop_map(|(id, members, position)| {
        let mut ordered: Vec<(String, Value)> = Vec::new();
        for (name, value) in members {
            if name != "_id" && !ordered.iter().any(|(existing, _)| *existing == name) {
                ordered.push((name, value));
            }
        }
        let at = position.index(ordered.len() + 1);
        ordered.insert(at, ("_id".to_string(), id));
        ordered.into_iter().collect()
    })
}

/// One mutation of a byte string: what to do, where, with which byte.
#[derive(Clone, Debug)]
enum Mutation {
    Set(Index, u8),
    FlipBit(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ];
    vec(one, 1..6)
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for mutation in mutations {
        match mutation {
            Mutation::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
            _ if bytes.is_empty() => {}
            Mutation::Set(at, byte) => {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            Mutation::FlipBit(at, bit) => {
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
            Mutation::Remove(at) => {
                bytes.remove(at.index(bytes.len()));
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        }
    }
}

/// Mutations that keep a page 4096 bytes long.
fn mutate_page(page: &mut PageBytes, mutations: &[Mutation]) {
    let mut bytes = page.to_vec();
    mutate(&mut bytes, mutations);
    bytes.resize(PAGE_SIZE_BYTES, 0);
    page.copy_from_slice(&bytes);
}

/// How to build one page of document space.
#[derive(Clone, Debug)]
enum PagePlan {
    /// Slot records to insert (each starts with its kind byte), then slots to delete.
    Document {
        records: Vec<Vec<u8>>,
        deletes: Vec<Index>,
    },
    Overflow {
        data: Vec<u8>,
        next: u64,
    },
    Free,
}

fn page_plan() -> impl Strategy<Value = PagePlan> {
    prop_oneof![
        3 => (vec(vec(any::<u8>(), 1..300), 0..20), vec(any::<Index>(), 0..4))
            .prop_map(|(records, deletes)| PagePlan::Document { records, deletes }),
        2 => (vec(any::<u8>(), 1..=OVERFLOW_DATA_BYTES), any::<u64>()).prop_map(|(data, next)| PagePlan::Overflow { data, next }),
        1 => Just(PagePlan::Free),
    ]
}

fn build_page(plan: &PagePlan, page_no: PageNo, lsn: SeqNo) -> Box<PageBytes> {
    let mut page = match plan {
        PagePlan::Document { records, deletes } => {
            let mut page = page::new_page(PageKind::Document, page_no);
            for record in records {
                slotted::insert(&mut page, record);
            }
            let count = PageHeader::read(&page).item_count.get();
            for delete in deletes {
                if count > 0 {
                    slotted::delete(&mut page, delete.index(usize::from(count)) as u16);
                }
            }
            slotted::check_document_page(&page).expect("built document page is valid");
            page
        }
        PagePlan::Overflow { data, next } => {
            let mut page = page::new_page(PageKind::Overflow, page_no);
            slotted::fill_overflow_page(&mut page, data, *next);
            assert_eq!(slotted::check_overflow_page(&page).expect("built overflow page is valid"), &data[..]);
            page
        }
        PagePlan::Free => page::new_page(PageKind::Free, page_no),
    };
    page::seal(&mut page, lsn);
    page::verify(&page, page_no).expect("built page verifies");
    page
}

fn wal_op() -> impl Strategy<Value = WalOp> {
    prop::sample::select(vec![WalOp::Insert, WalOp::Update, WalOp::Delete])
}

#[derive(Clone, Debug)]
struct RecordPlan {
    seq: u64,
    op: WalOp,
    schema_id: String,
    schema_version: String,
    id: Value,
    pages: Vec<(u64, PagePlan)>,
}

fn record_plan() -> impl Strategy<Value = RecordPlan> {
    (1..=u64::MAX, wal_op(), identifier(), identifier(), id_value(), vec((any::<u64>(), page_plan()), 0..4))
        .prop_map(|(seq, op, schema_id, schema_version, id, pages)| RecordPlan { seq, op, schema_id, schema_version, id, pages })
}

fn build_record(plan: &RecordPlan) -> (Vec<u8>, Vec<Box<PageBytes>>) {
    let pages: Vec<Box<PageBytes>> =
        plan.pages.iter().map(|(page_no, page_plan)| build_page(page_plan, PageNo(*page_no), SeqNo(plan.seq))).collect();
    let page_refs: Vec<&PageBytes> = pages.iter().map(|page| &**page).collect();
    let header =
        RecordHeader { seq: SeqNo(plan.seq), op: plan.op, schema_id: &plan.schema_id, schema_version: &plan.schema_version, id: &plan.id };
    (wal::encode_record(&header, &page_refs), pages)
}

// ---------------------------------------------------------------------------
// Decoders run on untrusted bytes: they must return, never panic.

fn exercise_document(bytes: &[u8]) {
    if let Ok(record) = decode_record(bytes) {
        // Whatever decodes re-encodes to the same bytes: the encoding is canonical.
        let again = encode_record(&record.schema_id, &record.schema_version, &record.body).expect("decoded record re-encodes");
        assert_eq!(again, bytes);
    }
}

/// Every check a reader runs on a page, whatever its kind and checksum.
fn exercise_page(page: &PageBytes, expected: PageNo) {
    let _ = page::verify(page, expected);
    let _ = page::is_unwritten(page);
    if let Ok(records) = slotted::check_document_page(page) {
        for (slot, record) in records {
            assert_eq!(slotted::record(page, slot), Some(record));
            if let Ok(SlotRecord::Inline(document)) = slotted::decode_slot_record(record) {
                exercise_document(document);
            }
        }
    }
    if btree::check_node(page).is_ok() {
        let entries = btree::entries(page);
        for (index, (key_bytes, _)) in entries.iter().enumerate() {
            assert_eq!(btree::search(page, key_bytes), Ok(index));
            let _ = key::decode_entry_key(key_bytes, false);
            let _ = key::decode_entry_key(key_bytes, true);
            if btree::is_leaf(page) {
                let _ = btree::leaf_locator(page, index);
            } else {
                let _ = btree::internal_child(page, index);
            }
        }
    }
    let _ = slotted::check_overflow_page(page);
}

/// Decodes every record of a WAL file image, as a scanner would.
fn exercise_wal_file(bytes: &[u8]) {
    let _ = WalHeader::decode(bytes);
    let mut pos = WAL_HEADER_BYTES.min(bytes.len());
    let mut records = 0;
    while pos < bytes.len() {
        match wal::decode_record(&bytes[pos..]) {
            Ok(record) => {
                assert!(record.length > 0 && record.length <= bytes.len() - pos);
                for image in record.pages.iter().filter_map(|change| change.image()) {
                    if let Ok(page) = image.to_page() {
                        exercise_page(&page, image.page_no);
                    }
                }
                pos += record.length;
                records += 1;
            }
            Err(_) => break,
        }
    }
    assert!(records <= bytes.len());
}

/// Recomputes the CRC of a mutated WAL record whose length field is usable.
fn reseal_wal_record(bytes: &mut [u8]) {
    if bytes.len() < 8 {
        return;
    }
    let length = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if (8..=bytes.len()).contains(&length) {
        let crc = crc32c::crc32c(&bytes[..length - 4]);
        bytes[length - 4..length].copy_from_slice(&crc.to_le_bytes());
    }
}

fn reseal_trailing_crc(bytes: &mut [u8], crc_at: usize) {
    if bytes.len() >= crc_at + 4 {
        let crc = crc32c::crc32c(&bytes[..crc_at]);
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// A page whose header is random but plausible, sealed so that its checksum
/// holds: this reaches the structural checks behind the checksum.
fn plausible_page() -> impl Strategy<Value = (Box<PageBytes>, u64)> {
    /// Where `lower` comes from: random, or consistent with the item count.
    #[derive(Clone, Copy, Debug)]
    enum Lower {
        Random(u16),
        AfterSlots,
        AfterCellOffsets,
    }
    let lower = prop_oneof![
        (0u16..4200).prop_map(Lower::Random),
        any::<u16>().prop_map(Lower::Random),
        Just(Lower::AfterSlots),
        Just(Lower::AfterCellOffsets),
    ];
    (
        prop_oneof![4 => 1u8..=4, 1 => any::<u8>()],
        lower,
        prop_oneof![Just(PAGE_SIZE_BYTES as u16), 0u16..4200, any::<u16>()],
        prop_oneof![0u16..40, 1000u16..1100, any::<u16>()],
        prop_oneof![3 => Just(0u32), 1 => any::<u32>()],
        0u64..4,
        prop_oneof![3 => Just(u64::MAX), 1 => any::<u64>()],
        prop_oneof![3 => Just(u64::MAX), 1 => any::<u64>()],
        prop_oneof![Just(Vec::new()), vec(any::<u8>(), 0..64), vec(any::<u8>(), 0..PAGE_SIZE_BYTES - HEADER_BYTES)],
    )
        .prop_map(|(kind, lower, upper, item_count, level, page_no, next, prev, body)| {
            let lower = match lower {
                Lower::Random(lower) => lower,
                Lower::AfterSlots => (HEADER_BYTES as u16).wrapping_add(item_count.wrapping_mul(4)),
                Lower::AfterCellOffsets => (HEADER_BYTES as u16).wrapping_add(item_count.wrapping_mul(2)),
            };
            let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
            let mut header = PageHeader::new(PageKind::Document, PageNo(page_no));
            header.kind = kind;
            header.lower = lower.into();
            header.upper = upper.into();
            header.item_count = item_count.into();
            header.level = level.into();
            header.next = next.into();
            header.prev = prev.into();
            header.write(&mut page);
            page[HEADER_BYTES..HEADER_BYTES + body.len()].copy_from_slice(&body);
            page::seal(&mut page, SeqNo(1));
            (page, page_no)
        })
}

fn schema_field() -> impl Strategy<Value = Value> {
    let type_name = prop::sample::select(vec!["string", "int", "float", "bool", "object", "array", "date", ""]);
    let leaf = (type_name, prop_oneof![Just(None), any::<bool>().prop_map(|flag| Some(json!(flag))), Just(Some(json!("yes")))]).prop_map(
        |(name, required)| {
            let mut definition = json!({"type": name});
            if let Some(required) = required {
                definition["required"] = required;
            }
            definition
        },
    );
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec((short_identifier(), inner.clone()), 0..4)
                .prop_map(|fields| json!({"type": "object", "fields": Value::Object(fields.into_iter().collect())})),
            inner.clone().prop_map(|items| json!({"type": "array", "items": items})),
            (inner, json_value()).prop_map(|(mut definition, extra)| {
                definition["description"] = extra;
                definition
            }),
        ]
    })
}

fn schema_like() -> impl Strategy<Value = Value> {
    let name = prop_oneof![4 => short_identifier(), 1 => any_text()];
    (
        name.clone(),
        name,
        prop_oneof![Just(json!({"type": "string"})), Just(json!({"type": "int"})), schema_field()],
        vec((short_identifier(), schema_field()), 0..5),
        vec(prop_oneof![Just("_id".to_string()), short_identifier()], 0..4),
        any::<bool>(),
    )
        .prop_map(|(schema_id, schema_version, id_field, fields, indexes, with_indexes)| {
            let mut all = Map::new();
            all.insert("_id".into(), id_field);
            for (field, definition) in fields {
                all.insert(field, definition);
            }
            let mut schema = json!({"schema_id": schema_id, "schema_version": schema_version, "fields": all});
            if with_indexes {
                schema["indexes"] = json!(indexes);
            }
            schema
        })
}

const RICH_SCHEMA: &str = r#"{
  "schema_id": "person", "schema_version": "v2", "description": "property-test schema",
  "fields": {
    "_id": {"type": "int"},
    "name": {"type": "string"},
    "score": {"type": "float"},
    "active": {"type": "bool", "required": false},
    "tags": {"type": "array", "items": {"type": "string"}, "required": false},
    "address": {"type": "object", "required": false,
                "fields": {"city": {"type": "string"}, "zip": {"type": "int", "required": false},
                           "points": {"type": "array", "items": {"type": "array", "items": {"type": "float"}}}}}
  },
  "indexes": ["name", "score", "active"]
}"#;

/// Documents that fit `RICH_SCHEMA` (ints given for the float field).
fn rich_document() -> impl Strategy<Value = Value> {
    let score = prop_oneof![finite_float().prop_map(float_value), (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from)];
    let address = (any_text(), proptest::option::of(any::<i64>()), vec(vec(finite_float(), 0..3), 0..3)).prop_map(|(city, zip, points)| {
        let mut address = json!({"city": city});
        if let Some(zip) = zip {
            address["zip"] = json!(zip);
        }
        address["points"] = Value::Array(points.into_iter().map(|row| Value::Array(row.into_iter().map(float_value).collect())).collect());
        address
    });
    (
        any::<i64>(),
        any_text(),
        score,
        proptest::option::of(any::<bool>()),
        proptest::option::of(vec(any_text(), 0..4)),
        proptest::option::of(address),
    )
        .prop_map(|(id, name, score, active, tags, address)| {
            let mut document = json!({"_id": id, "name": name, "score": score});
            if let Some(active) = active {
                document["active"] = json!(active);
            }
            if let Some(tags) = tags {
                document["tags"] = json!(tags);
            }
            if let Some(address) = address {
                document["address"] = address;
            }
            document
        })
}

fn config_like() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec!["data_dir", "wal_sync_mode", "max_wal_size_bytes", "max_memory_bytes", "extra"]);
    let value = prop_oneof![
        Just(json!("./data")),
        Just(json!("fsync")),
        Just(json!("")),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        json_value(),
    ];
    vec((field, value), 0..6)
        .prop_map(|members| Value::Object(members.into_iter().map(|(field, value)| (field.to_string(), value)).collect()))
}

// ---------------------------------------------------------------------------
// Round trips

fn key_value() -> impl Strategy<Value = KeyValue> {
    prop_oneof![
        any::<i64>().prop_map(KeyValue::Int),
        finite_float().prop_map(KeyValue::Float),
        any_text().prop_map(KeyValue::String),
        any::<bool>().prop_map(KeyValue::Bool),
    ]
}

fn id_key() -> impl Strategy<Value = KeyValue> {
    prop_oneof![any::<i64>().prop_map(KeyValue::Int), any_text().prop_map(KeyValue::String)]
}

/// Strings over a small alphabet, so that prefixes and NULs meet often.
fn tricky_string() -> impl Strategy<Value = String> {
    vec(prop::sample::select(vec!['\0', '\u{1}', 'a', 'b', '\u{ff}', 'é', '\u{10FFFF}']), 0..6)
        .prop_map(|chars| chars.into_iter().collect())
}

fn normalized(value: &KeyValue) -> KeyValue {
    match value {
        KeyValue::Float(float) if *float == 0.0 => KeyValue::Float(0.0),
        other => other.clone(),
    }
}

fn entry_key(field: &KeyValue, id: &KeyValue) -> Vec<u8> {
    let mut out = key::encode_to_vec(field);
    key::encode(&mut out, id);
    out
}

/// An operation on a slotted page, checked against a model.
#[derive(Clone, Debug)]
enum SlotOp {
    Insert(Vec<u8>),
    Delete(Index),
    Replace(Index, Vec<u8>),
}

fn slot_ops() -> impl Strategy<Value = Vec<SlotOp>> {
    let record = (1u8..=2, vec(any::<u8>(), 0..400)).prop_map(|(kind, mut body)| {
        body.insert(0, kind);
        body
    });
    let op = prop_oneof![
        3 => record.clone().prop_map(SlotOp::Insert),
        1 => any::<Index>().prop_map(SlotOp::Delete),
        1 => (any::<Index>(), record).prop_map(|(at, bytes)| SlotOp::Replace(at, bytes)),
    ];
    vec(op, 0..60)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn document_records_round_trip(schema_id in identifier(), schema_version in identifier(), body in document_body()) {
        let bytes = encode_record(&schema_id, &schema_version, &body).unwrap();
        let record = decode_record(&bytes).unwrap();
        prop_assert_eq!(&record.schema_id, &schema_id);
        prop_assert_eq!(&record.schema_version, &schema_version);
        // Text comparison also checks member order, int versus float and -0.0.
        prop_assert_eq!(serde_json::to_string(&record.body).unwrap(), serde_json::to_string(&body).unwrap());
        prop_assert_eq!(encode_record(&schema_id, &schema_version, &record.body).unwrap(), bytes.clone());
        // Every strict prefix is refused.
        for cut in 0..bytes.len() {
            prop_assert!(decode_record(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn document_values_round_trip(value in json_value()) {
        let mut bytes = Vec::new();
        document::encode_value(&mut bytes, &value).unwrap();
        let mut pos = 0;
        let decoded = document::decode_value(&bytes, &mut pos).unwrap();
        prop_assert_eq!(pos, bytes.len());
        prop_assert_eq!(decoded.to_string(), value.to_string());
    }

    #[test]
    fn slotted_pages_follow_a_model(ops in slot_ops(), page_no in 0u64..10_000) {
        let mut page = page::new_page(PageKind::Document, PageNo(page_no));
        let mut model: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
        for op in &ops {
            match op {
                SlotOp::Insert(bytes) => {
                    let fits = slotted::space_needed(&page, bytes.len()) <= slotted::free_bytes(&page);
                    match slotted::insert(&mut page, bytes) {
                        Some(slot) => {
                            prop_assert!(fits);
                            // The lowest free slot number is reused.
                            let expected = (0..).find(|slot| !model.contains_key(slot)).unwrap();
                            prop_assert_eq!(slot, expected);
                            model.insert(slot, bytes.clone());
                        }
                        None => prop_assert!(!fits),
                    }
                }
                SlotOp::Delete(at) => {
                    if let Some(&slot) = model.keys().nth(at.index(model.len().max(1))) {
                        slotted::delete(&mut page, slot);
                        model.remove(&slot);
                    }
                }
                SlotOp::Replace(at, bytes) => {
                    if let Some(&slot) = model.keys().nth(at.index(model.len().max(1))) {
                        if slotted::replace(&mut page, slot, bytes) {
                            model.insert(slot, bytes.clone());
                        }
                    }
                }
            }
            let records = slotted::check_document_page(&page).unwrap();
            let listed: BTreeMap<u16, Vec<u8>> = records.into_iter().map(|(slot, bytes)| (slot, bytes.to_vec())).collect();
            prop_assert_eq!(&listed, &model);
            let used: usize = model.values().map(Vec::len).sum();
            let slots = model.keys().next_back().map_or(0, |&last| usize::from(last) + 1);
            prop_assert_eq!(slotted::free_bytes(&page), PAGE_SIZE_BYTES - HEADER_BYTES - 4 * slots - used);
        }
        page::seal(&mut page, SeqNo(5));
        page::verify(&page, PageNo(page_no)).unwrap();
        let (lower, upper, image) = page::elide_hole(&page);
        prop_assert_eq!(*page::restore_hole(lower, upper, &image).unwrap(), *page);
    }

    #[test]
    fn btree_nodes_follow_a_model(keys in vec(vec(any::<u8>(), 0..40), 0..120), removals in vec(any::<Index>(), 0..40), leaf in any::<bool>()) {
        let mut page = page::new_page(PageKind::BtreeLeaf, PageNo(9));
        btree::init_node(&mut page, PageNo(9), if leaf { 0 } else { 2 });
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (number, key_bytes) in keys.iter().enumerate() {
            let value = if leaf {
                btree::Locator { page: PageNo(number as u64), slot: number as u16 }.to_bytes().to_vec()
            } else {
                btree::internal_value_bytes(PageNo(number as u64), number as u64 * 3).to_vec()
            };
            if let Err(position) = btree::search(&page, key_bytes) {
                let fits = btree::entry_bytes(key_bytes.len(), leaf) <= btree::free_bytes(&page);
                prop_assert_eq!(btree::insert_entry(&mut page, position, key_bytes, &value), fits);
                if fits {
                    model.insert(key_bytes.clone(), value);
                }
            }
            btree::check_node(&page).unwrap();
        }
        for removal in &removals {
            if model.is_empty() {
                break;
            }
            let index = removal.index(model.len());
            let removed = model.keys().nth(index).unwrap().clone();
            btree::remove_entry(&mut page, index);
            model.remove(&removed);
            btree::check_node(&page).unwrap();
        }
        let entries: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
        prop_assert_eq!(btree::entries(&page), entries);
        page::seal(&mut page, SeqNo(2));
        page::verify(&page, PageNo(9)).unwrap();
    }

    #[test]
    fn wal_records_round_trip(plan in record_plan(), other in record_plan()) {
        let (bytes, pages) = build_record(&plan);
        let record = wal::decode_record(&bytes).unwrap();
        prop_assert_eq!(record.length, bytes.len());
        prop_assert_eq!(record.seq, SeqNo(plan.seq));
        prop_assert_eq!(record.op, plan.op);
        prop_assert_eq!(&record.schema_id, &plan.schema_id);
        prop_assert_eq!(&record.schema_version, &plan.schema_version);
        prop_assert_eq!(&record.id, &plan.id);
        prop_assert_eq!(record.pages.len(), pages.len());
        for (change, page) in record.pages.iter().zip(&pages) {
            let image = change.image().unwrap();
            prop_assert_eq!(image.page_no, PageHeader::read(page).page_no());
            let restored = image.to_page().unwrap();
            prop_assert!(*restored == **page);
        }
        // Records sit back to back: the length finds the next one.
        let (second, _) = build_record(&other);
        let mut file = bytes.clone();
        file.extend_from_slice(&second);
        prop_assert_eq!(wal::decode_record(&file).unwrap().length, bytes.len());
        prop_assert_eq!(wal::decode_record(&file[bytes.len()..]).unwrap().length, second.len());
        // A cut record is incomplete, never corrupt.
        for cut in [0, 1, 3, 4, bytes.len() / 2, bytes.len() - 1] {
            let is_incomplete = matches!(wal::decode_record(&bytes[..cut]), Err(RecordError::Incomplete { .. }));
            prop_assert!(is_incomplete);
        }
    }

    #[test]
    fn manifest_round_trips_and_guards_every_other_byte(database_id in any::<[u8; 16]>(), at in 0usize..44, xor in 1u8..=255) {
        let manifest = Manifest::new(database_id);
        let bytes = manifest.encode();
        prop_assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);
        // Any change outside the database id is refused even with its CRC recomputed.
        let mut damaged = bytes;
        damaged[at] ^= xor;
        reseal_trailing_crc(&mut damaged, 44);
        prop_assert_eq!(Manifest::decode(&damaged).is_ok(), (24..40).contains(&at));
    }

    #[test]
    fn wal_header_round_trips_and_guards_every_other_byte(database_id in any::<[u8; 16]>(), at in 0usize..36, xor in 1u8..=255) {
        let header = WalHeader::new(database_id);
        let bytes = header.encode();
        prop_assert_eq!(WalHeader::decode(&bytes).unwrap(), header);
        let mut damaged = bytes;
        damaged[at] ^= xor;
        reseal_trailing_crc(&mut damaged, 36);
        prop_assert_eq!(WalHeader::decode(&damaged).is_ok(), (16..32).contains(&at));
    }

    #[test]
    fn keys_round_trip(value in key_value(), id in id_key()) {
        let bytes = key::encode_to_vec(&value);
        let mut pos = 0;
        prop_assert_eq!(key::decode(&bytes, &mut pos).unwrap(), normalized(&value));
        prop_assert_eq!(pos, bytes.len());
        let entry = entry_key(&value, &id);
        prop_assert_eq!(key::decode_entry_key(&entry, false).unwrap(), (normalized(&value), id.clone()));
        let id_bytes = key::encode_to_vec(&id);
        prop_assert_eq!(key::decode_entry_key(&id_bytes, true).unwrap(), (id.clone(), id));
        // The successor of a prefix is above every key that starts with it.
        prop_assert!(key::prefix_successor(&bytes) > entry);
    }

    #[test]
    fn int_keys_sort_as_values(a in any::<i64>(), b in prop_oneof![any::<i64>(), (-3i64..3)]) {
        prop_assert_eq!(key::encode_to_vec(&KeyValue::Int(a)).cmp(&key::encode_to_vec(&KeyValue::Int(b))), a.cmp(&b));
    }

    #[test]
    fn float_keys_sort_as_values(a in finite_float(), b in finite_float()) {
        let order = a.partial_cmp(&b).unwrap();
        prop_assert_eq!(key::encode_to_vec(&KeyValue::Float(a)).cmp(&key::encode_to_vec(&KeyValue::Float(b))), order);
    }

    #[test]
    fn string_keys_sort_as_values(a in prop_oneof![any_text(), tricky_string()], b in prop_oneof![any_text(), tricky_string()]) {
        let encoded = |text: &str| key::encode_to_vec(&KeyValue::String(text.to_string()));
        prop_assert_eq!(encoded(&a).cmp(&encoded(&b)), a.as_bytes().cmp(b.as_bytes()));
    }

    #[test]
    fn bool_keys_sort_as_values(a in any::<bool>(), b in any::<bool>()) {
        prop_assert_eq!(key::encode_to_vec(&KeyValue::Bool(a)).cmp(&key::encode_to_vec(&KeyValue::Bool(b))), a.cmp(&b));
    }

    #[test]
    fn entry_keys_sort_by_value_then_id(
        a in (prop_oneof![any::<i64>(), -2i64..2], prop_oneof![tricky_string(), any_text()]),
        b in (prop_oneof![any::<i64>(), -2i64..2], prop_oneof![tricky_string(), any_text()]),
        sa in tricky_string(), sb in tricky_string(),
    ) {
        let int_entry = |(value, id): &(i64, String)| entry_key(&KeyValue::Int(*value), &KeyValue::String(id.clone()));
        let expected = a.0.cmp(&b.0).then(a.1.as_bytes().cmp(b.1.as_bytes()));
        prop_assert_eq!(int_entry(&a).cmp(&int_entry(&b)), expected);
        // String fields with string ids: no prefix of one field value leaks into the id order.
        let string_entry = |value: &str, id: i64| entry_key(&KeyValue::String(value.to_string()), &KeyValue::Int(id));
        let expected = sa.as_bytes().cmp(sb.as_bytes()).then(a.0.cmp(&b.0));
        prop_assert_eq!(string_entry(&sa, a.0).cmp(&string_entry(&sb, b.0)), expected);
    }

    #[test]
    fn rich_documents_validate_encode_and_decode(document in rich_document()) {
        let schema = Schema::parse(RICH_SCHEMA.as_bytes()).unwrap();
        let stored = schema.validate(&document).unwrap();
        // Validation is idempotent and its output always encodes.
        prop_assert_eq!(schema.validate(&Value::Object(stored.clone())).unwrap(), stored.clone());
        let bytes = encode_record(&schema.schema_id, &schema.schema_version, &stored).unwrap();
        let record = decode_record(&bytes).unwrap();
        prop_assert_eq!(serde_json::to_string(&record.body).unwrap(), serde_json::to_string(&stored).unwrap());
        let stored_score = &stored["score"];
        prop_assert!(stored_score.is_f64());
    }
}

// Decoders never panic.
proptest! {
    #![proptest_config(config())]

    #[test]
    fn document_decoder_never_panics(bytes in vec(any::<u8>(), 0..200)) {
        exercise_document(&bytes);
        let mut pos = 0;
        let _ = document::decode_value(&bytes, &mut pos);
        prop_assert!(pos <= bytes.len());
    }

    #[test]
    fn document_decoder_survives_mutations(body in document_body(), mutations in mutations()) {
        let mut bytes = encode_record("user", "v1", &body).unwrap();
        mutate(&mut bytes, &mutations);
        exercise_document(&bytes);
    }

    #[test]
    fn wal_decoder_never_panics(bytes in vec(any::<u8>(), 0..300), header_first in any::<bool>()) {
        let mut file = Vec::new();
        if header_first {
            file.extend_from_slice(&WalHeader::new([3; 16]).encode());
        }
        file.extend_from_slice(&bytes);
        exercise_wal_file(&file);
        // A plausible length prefix with a correct CRC gets past the framing.
        let mut framed = bytes.clone();
        if framed.len() >= 26 {
            let length = framed.len() as u32;
            framed[..4].copy_from_slice(&length.to_le_bytes());
            reseal_wal_record(&mut framed);
            let _ = wal::decode_record(&framed);
        }
    }

    #[test]
    fn wal_decoder_survives_mutations(plan in record_plan(), mutations in mutations(), reseal in any::<bool>()) {
        let (mut bytes, _) = build_record(&plan);
        mutate(&mut bytes, &mutations);
        if reseal {
            reseal_wal_record(&mut bytes);
        }
        let _ = wal::decode_record(&bytes);
        let mut file = WalHeader::new([1; 16]).encode().to_vec();
        file.extend_from_slice(&bytes);
        exercise_wal_file(&file);
    }

    #[test]
    fn header_decoders_never_panic(bytes in vec(any::<u8>(), 0..64), mutations in mutations(), database_id in any::<[u8; 16]>()) {
        let _ = WalHeader::decode(&bytes);
        let _ = Manifest::decode(&bytes);
        let mut manifest = Manifest::new(database_id).encode().to_vec();
        mutate(&mut manifest, &mutations);
        let _ = Manifest::decode(&manifest);
        reseal_trailing_crc(&mut manifest, MANIFEST_BYTES - 4);
        let _ = Manifest::decode(&manifest);
        let mut header = WalHeader::new(database_id).encode().to_vec();
        mutate(&mut header, &mutations);
        let _ = WalHeader::decode(&header);
        reseal_trailing_crc(&mut header, WAL_HEADER_BYTES - 4);
        let _ = WalHeader::decode(&header);
    }

    #[test]
    fn page_checks_never_panic_on_random_pages(bytes in vec(any::<u8>(), PAGE_SIZE_BYTES), expected in 0u64..4) {
        let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
        page.copy_from_slice(&bytes);
        exercise_page(&page, PageNo(expected));
    }

    #[test]
    fn page_checks_never_panic_on_plausible_pages((page, page_no) in plausible_page()) {
        exercise_page(&page, PageNo(page_no));
    }

    #[test]
    fn page_checks_survive_mutations(plan in page_plan(), mutations in mutations(), reseal in any::<bool>()) {
        let mut page = build_page(&plan, PageNo(2), SeqNo(8));
        mutate_page(&mut page, &mutations);
        if reseal {
            page::seal(&mut page, SeqNo(8));
        }
        exercise_page(&page, PageNo(2));
    }

    #[test]
    fn node_checks_survive_mutations(keys in vec(vec(any::<u8>(), 0..30), 1..60), leaf in any::<bool>(), mutations in mutations()) {
        let mut page = page::new_page(PageKind::BtreeLeaf, PageNo(4));
        btree::init_node(&mut page, PageNo(4), if leaf { 0 } else { 1 });
        for key_bytes in &keys {
            if let Err(position) = btree::search(&page, key_bytes) {
                let value = if leaf { vec![7u8; btree::LEAF_VALUE_BYTES] } else { vec![7u8; btree::INTERNAL_VALUE_BYTES] };
                btree::insert_entry(&mut page, position, key_bytes, &value);
            }
        }
        btree::check_node(&page).unwrap();
        mutate_page(&mut page, &mutations);
        page::seal(&mut page, SeqNo(1));
        exercise_page(&page, PageNo(4));
    }

    #[test]
    fn key_decoder_never_panics(bytes in vec(any::<u8>(), 0..40), value in key_value(), id in id_key(), mutations in mutations()) {
        let _ = key::decode_entry_key(&bytes, false);
        let _ = key::decode_entry_key(&bytes, true);
        let mut entry = entry_key(&value, &id);
        mutate(&mut entry, &mutations);
        let _ = key::decode_entry_key(&entry, false);
        let _ = key::decode_entry_key(&entry, true);
    }

    #[test]
    fn schema_parser_never_panics(bytes in vec(any::<u8>(), 0..200), schema in schema_like(), mutations in mutations(), documents in vec(json_value(), 0..4)) {
        let _ = Schema::parse(&bytes);
        let text = schema.to_string();
        let mut mutated = text.clone().into_bytes();
        mutate(&mut mutated, &mutations);
        let _ = Schema::parse(&mutated);
        if let Ok(parsed) = Schema::parse(text.as_bytes()) {
            prop_assert_eq!(parsed.indexes.first().map(String::as_str), Some("_id"));
            for name in &parsed.indexes {
                prop_assert!(parsed.field(name).is_some_and(|field| field.field_type.is_scalar()));
            }
            for document in &documents {
                if let Ok(stored) = parsed.validate(document) {
                    let bytes = encode_record(&parsed.schema_id, &parsed.schema_version, &stored).unwrap();
                    prop_assert!(decode_record(&bytes).is_ok());
                }
            }
        }
    }

    #[test]
    fn config_parser_never_panics(bytes in vec(any::<u8>(), 0..120), config in config_like(), mutations in mutations()) {
        let _ = Config::parse(&bytes);
        let text = config.to_string();
        if let Ok(parsed) = Config::parse(text.as_bytes()) {
            // The frozen form parses back to the same values.
            prop_assert_eq!(Config::parse_frozen(parsed.to_frozen_json().as_bytes()).unwrap(), Config { data_dir: String::new(), ..parsed });
        }
        let mut mutated = text.into_bytes();
        mutate(&mut mutated, &mutations);
        let _ = Config::parse(&mutated);
    }
}

// ---------------------------------------------------------------------------
// Fixed cases

fn sample_document(number: usize) -> Map<String, Value> {
    let value = json!({
        "_id": format!("user-{number:04}"),
        "name": format!("name {number}"),
        "age": number as i64 * 7 - 100,
        "score": number as f64 / 3.0,
        "tags": ["a", "é", number.to_string()],
    });
    value.as_object().unwrap().clone()
}

/// A document page filled until the next document does not fit.
fn full_document_page(page_no: PageNo, lsn: SeqNo) -> Box<PageBytes> {
    let mut page = page::new_page(PageKind::Document, page_no);
    let mut number = 0;
    loop {
        let record = slotted::encode_inline(&encode_record("user", "v1", &sample_document(number)).unwrap());
        if slotted::insert(&mut page, &record).is_none() {
            break;
        }
        number += 1;
    }
    assert!(number > 30, "only {number} documents fit");
    // Empty a slot in the middle so the page also holds an empty slot.
    slotted::delete(&mut page, 5);
    page::seal(&mut page, lsn);
    page
}

#[test]
fn every_bit_flip_of_a_full_document_page_is_detected() {
    let page = full_document_page(PageNo(1234), SeqNo(77));
    page::verify(&page, PageNo(1234)).unwrap();
    let records = slotted::check_document_page(&page).unwrap();
    for (_, record) in &records {
        let SlotRecord::Inline(document) = slotted::decode_slot_record(record).unwrap() else { panic!("stub") };
        decode_record(document).unwrap();
    }
    let mut damaged = page.clone();
    for bit in 0..PAGE_SIZE_BYTES * 8 {
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(page::verify(&damaged, PageNo(1234)).is_err(), "flip of bit {bit} went unnoticed");
        damaged[bit / 8] ^= 1 << (bit % 8);
    }
}

/// An update that rewrites a full document page, a half-full one and a
/// full overflow page, and frees another page.
fn multi_page_record() -> Vec<u8> {
    let lsn = SeqNo(4242);
    let full = full_document_page(PageNo(3), lsn);
    let mut half = page::new_page(PageKind::Document, PageNo(4));
    for number in 0..12 {
        let record = slotted::encode_inline(&encode_record("user", "v1", &sample_document(number)).unwrap());
        slotted::insert(&mut half, &record).unwrap();
    }
    let overflow_data: Vec<u8> = (0..OVERFLOW_DATA_BYTES).map(|index| (index * 31 % 251) as u8).collect();
    let mut overflow = page::new_page(PageKind::Overflow, PageNo(9));
    slotted::fill_overflow_page(&mut overflow, &overflow_data, PageNo::NONE.0);
    let mut free = page::new_page(PageKind::Free, PageNo(10));
    for page in [&mut half, &mut overflow, &mut free] {
        page::seal(page, lsn);
    }
    let id = json!("user-0003");
    let header = RecordHeader { seq: lsn, op: WalOp::Update, schema_id: "user", schema_version: "v1", id: &id };
    wal::encode_record(&header, &[&full, &half, &overflow, &free])
}

#[test]
fn every_bit_flip_of_a_multi_page_wal_record_is_detected() {
    let bytes = multi_page_record();
    let record = wal::decode_record(&bytes).unwrap();
    assert_eq!(record.pages.len(), 4);
    assert!(bytes.len() > PAGE_SIZE_BYTES * 2);
    let mut damaged = bytes.clone();
    for bit in 0..bytes.len() * 8 {
        damaged[bit / 8] ^= 1 << (bit % 8);
        match wal::decode_record(&damaged) {
            Ok(_) => panic!("flip of bit {bit} went unnoticed"),
            // Only a damaged length can make a record look incomplete.
            Err(RecordError::Incomplete { .. }) => {
                assert!(bit < 32, "flip of bit {bit} read as incomplete")
            }
            Err(RecordError::Unverified(_) | RecordError::Corrupt(_)) => {}
        }
        damaged[bit / 8] ^= 1 << (bit % 8);
    }
}

#[test]
fn every_cut_of_a_multi_page_wal_record_is_incomplete() {
    let bytes = multi_page_record();
    for cut in 0..bytes.len() {
        assert!(matches!(wal::decode_record(&bytes[..cut]), Err(RecordError::Incomplete { .. })), "cut at {cut}");
    }
}

#[test]
fn inline_limit_is_exact() {
    // An inline slot record (kind byte plus document record) is at most
    // INLINE_RECORD_MAX_BYTES; a document record of INLINE_RECORD_MAX_BYTES
    // bytes or more needs an overflow stub.
    let record_of = |length: usize| {
        let mut body = Map::new();
        body.insert("_id".into(), json!(1));
        body.insert("pad".into(), json!(""));
        let base = encode_record("s", "v", &body).unwrap().len();
        // A string of n < 128 bytes takes n + 1 bytes after its tag; longer
        // ones take n + 2 (two-byte varint length).
        let pad = if length - base < 128 { length - base } else { length - base - 1 };
        body.insert("pad".into(), json!("x".repeat(pad)));
        let bytes = encode_record("s", "v", &body).unwrap();
        assert_eq!(bytes.len(), length);
        bytes
    };
    let largest_inline = record_of(INLINE_RECORD_MAX_BYTES - 1);
    let mut page = page::new_page(PageKind::Document, PageNo(0));
    let slot = slotted::insert(&mut page, &slotted::encode_inline(&largest_inline)).unwrap();
    let stored = slotted::record(&page, slot).unwrap();
    assert_eq!(stored.len(), INLINE_RECORD_MAX_BYTES);
    assert_eq!(slotted::decode_slot_record(stored).unwrap(), SlotRecord::Inline(&largest_inline[..]));
    let smallest_overflow = record_of(INLINE_RECORD_MAX_BYTES);
    assert!(slotted::decode_slot_record(&slotted::encode_inline(&smallest_overflow)).is_err());
    let stub = slotted::encode_overflow_stub(smallest_overflow.len() as u32, 17);
    assert!(slotted::insert(&mut page, &stub).is_some());
    let too_small = slotted::encode_overflow_stub(INLINE_RECORD_MAX_BYTES as u32 - 1, 17);
    assert!(slotted::decode_slot_record(&too_small).is_err());
    let too_large = slotted::encode_overflow_stub(aerodb_format::DOC_SIZE_MAX_BYTES as u32 + 1, 17);
    assert!(slotted::decode_slot_record(&too_large).is_err());
}

/// A page whose header has only been written, not verified.
fn unverified_page(kind: PageKind, lower: u16, upper: u16, item_count: u16, fill: u8) -> Box<PageBytes> {
    let mut page = Box::new([fill; PAGE_SIZE_BYTES]);
    let mut header = PageHeader::new(kind, PageNo(0));
    header.lower = lower.into();
    header.upper = upper.into();
    header.item_count = item_count.into();
    header.write(&mut page);
    page
}

#[test]
fn structure_checks_bound_the_directory_on_unverified_pages() {
    // A slot directory claimed to run past the page, over empty slots.
    let document = unverified_page(PageKind::Document, 48 + 4 * 1050, 4096, 1050, 0);
    assert!(slotted::check_document_page(&document).is_err());
    // A cell directory claimed to run past the page, over plausible cells.
    let node = unverified_page(PageKind::BtreeLeaf, 48 + 2 * 2100, 48, 2100, 1);
    assert!(btree::check_node(&node).is_err());
    // Overflow data claimed to run past the page.
    let overflow = unverified_page(PageKind::Overflow, 5000, 4096, 0, 0);
    assert!(slotted::check_overflow_page(&overflow).is_err());
    for page in [&document, &node, &overflow] {
        exercise_page(page, PageNo(0));
    }
}

#[test]
fn nesting_limit_is_exact() {
    // The body's members are at depth 1; each array level adds one.
    let nested = |levels: usize| {
        let mut value = json!(true);
        for _ in 0..levels {
            value = json!([value]);
        }
        let mut body = Map::new();
        body.insert("_id".into(), json!(1));
        body.insert("deep".into(), value);
        body
    };
    let deepest = nested(JSON_DEPTH_MAX - 1);
    let bytes = encode_record("s", "v", &deepest).unwrap();
    assert_eq!(decode_record(&bytes).unwrap().body, deepest);
    assert!(encode_record("s", "v", &nested(JSON_DEPTH_MAX)).is_err());
    // The same encoding one level deeper, built by hand, is refused by the decoder.
    let mut too_deep = bytes.clone();
    let at = too_deep.len() - 1; // the innermost `true`
    too_deep.splice(at..at, [document::TAG_ARRAY, 1]);
    assert!(decode_record(&too_deep).is_err());
}

#[test]
fn unwritten_page_is_all_zero_and_fails_verification() {
    let page = Box::new([0u8; PAGE_SIZE_BYTES]);
    assert!(page::is_unwritten(&page));
    assert!(page::verify(&page, PageNo(0)).is_err());
}
