//! Checks of the document space (`data/`): every segment page against the
//! WAL, slotted-page structure, overflow chains, every document against its
//! schema, and `_id` uniqueness per collection.
//!
//! Each page is checked twice over. First as it sits in its segment:
//! `page::verify` (checksum, self number, zero hole), LSN not past the WAL,
//! and equality with the page as the WAL leaves it (its last image and the
//! deltas after it); a page never logged must be all zero. Then its content
//! is checked on the *effective* page: the segment page, except when replay
//! would overwrite it (no clean shutdown and a WAL version that differs) or
//! when it is damaged and a valid WAL version exists; then the WAL version
//! is checked instead, and findings about it name the WAL record that holds
//! its last entry.
//!
//! Memory: pages are read one at a time (`pread`), each page's log history
//! comes from the sorted stream of the WAL check, and what needs every
//! document at once (`_id` uniqueness, the index entries every document
//! should have) goes to external sorts. The page space is split into parts
//! checked on their own threads; their findings are joined in page order.
//! What stays in memory grows only with large documents: one small entry
//! per overflow page (see [`OVERFLOW_ENTRY_BYTES`]) and per overflow stub.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use serde_json::Value;

use aerodb_format::btree::Locator;
use aerodb_format::document;
use aerodb_format::key::{self, KeyValue};
use aerodb_format::page::{self, PageBytes, PageHeader, PageKind};
use aerodb_format::schema::Schema;
use aerodb_format::slotted::{self, SlotRecord};
use aerodb_format::{DecodeError, PageNo, SeqNo};

use crate::database::WAL_FILE;
use crate::extsort::{Sorted, Sorter};
use crate::files::ReadAt;
use crate::space::{PageSpace, SEGMENT_BYTES};
use crate::verify::metadata::Schemas;
use crate::verify::progress::Progress;
use crate::verify::report::{Location, Report};
use crate::verify::wal::{LoggedPage, PageHistory, WalView};
use crate::verify::Limits;

/// Memory per overflow page kept for the chain check (its number, next
/// page, data length, where its data is, and its owner).
pub const OVERFLOW_ENTRY_BYTES: usize = std::mem::size_of::<OverflowPage>() + 4;

/// The trees every document should have entries in: `(schema_id,
/// schema_version, field)` in sorted order; a tree's number is its position.
pub struct TreeIds {
    pub trees: Vec<(String, String, String)>,
    /// For each schema version, the tree number of each of its indexes (in `indexes` order).
    by_schema: BTreeMap<(String, String), Vec<u16>>,
}

impl TreeIds {
    pub fn new(schemas: &Schemas) -> TreeIds {
        let mut trees: Vec<(String, String, String)> = schemas
            .iter()
            .flat_map(|((id, version), schema)| schema.indexes.iter().map(move |field| (id.clone(), version.clone(), field.clone())))
            .collect();
        trees.sort();
        trees.dedup();
        let by_schema = schemas
            .iter()
            .map(|(key, schema)| {
                let ids = schema
                    .indexes
                    .iter()
                    .map(|field| {
                        let wanted = (key.0.clone(), key.1.clone(), field.clone());
                        trees.binary_search(&wanted).map(|position| position as u16).unwrap_or(u16::MAX)
                    })
                    .collect();
                (key.clone(), ids)
            })
            .collect();
        TreeIds { trees, by_schema }
    }

    pub fn id_of(&self, schema_id: &str, schema_version: &str, field: &str) -> Option<u16> {
        let wanted = (schema_id.to_string(), schema_version.to_string(), field.to_string());
        self.trees.binary_search(&wanted).ok().map(|position| position as u16)
    }

    pub fn label(&self, id: u16) -> String {
        let (schema_id, schema_version, field) = &self.trees[usize::from(id)];
        format!("{schema_id}/{schema_version}/{field}")
    }
}

/// Where a document (or stub) was found: compact, turned into a
/// [`Location`] only when a finding names it.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    pub page: PageNo,
    /// Byte offset inside the page.
    pub within: u32,
    /// Set when the effective page is the WAL's version: `(last entry's seq, its record's offset)`.
    pub wal: Option<(SeqNo, u64)>,
}

impl Place {
    pub fn location(&self, space: &PageSpace) -> Location {
        match self.wal {
            None => Location::page(&space.file_of(self.page), self.page.0, self.page.offset_in_segment() + u64::from(self.within)),
            Some((_, record_offset)) => Location::page(WAL_FILE, self.page.0, record_offset),
        }
    }

    /// Words appended to messages about a WAL version of the page.
    pub fn suffix(&self) -> String {
        match self.wal {
            None => String::new(),
            Some((seq, _)) => format!(" (in its last WAL image, record seq {seq})"),
        }
    }

    /// Appends the place without its page (the record it goes in holds the
    /// locator, whose page it is): `[0][within u16]` in a segment,
    /// `[1][within u16][seq u64][record offset u64]` in the WAL.
    fn encode(&self, out: &mut Vec<u8>) {
        let within = (self.within.min(u32::from(u16::MAX)) as u16).to_be_bytes();
        match self.wal {
            None => {
                out.push(0);
                out.extend_from_slice(&within);
            }
            Some((seq, offset)) => {
                out.push(1);
                out.extend_from_slice(&within);
                out.extend_from_slice(&seq.0.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
            }
        }
    }

    /// The place [`Place::encode`] wrote at the start of `bytes`, on `page`,
    /// and the bytes it took.
    fn decode(bytes: &[u8], page: PageNo) -> (Place, usize) {
        let within = u32::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        if bytes[0] == 0 {
            return (Place { page, within, wal: None }, 3);
        }
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        (Place { page, within, wal: Some((SeqNo(u64_at(3)), u64_at(11))) }, 19)
    }
}

/// Where an overflow page's data can be read again.
#[derive(Clone, Copy, Debug)]
enum DataAt {
    /// In its segment file, at this offset in the file.
    Segment(u64),
    /// In the part's spill file (its effective page came from the WAL).
    Spill(u64),
}

#[derive(Clone, Copy, Debug)]
struct OverflowPage {
    page_no: PageNo,
    next: PageNo,
    data_bytes: u16,
    data: DataAt,
    place: Place,
    /// Which spill file (the part's number).
    part: u16,
}

struct Stub {
    locator: Locator,
    length: u32,
    first_page: PageNo,
    place: Place,
}

/// What the document checks leave for the index checks.
pub struct DocumentOutput {
    pub documents: u64,
    /// The index entries every live document should have, sorted by
    /// (tree, key, locator); see [`ExpectedEntry`]. `None` when not asked for.
    pub expected: Option<Sorted>,
    /// How many expected entries there are (for progress).
    pub expected_entries: u64,
}

/// One expected index entry, as the sort holds it.
pub struct ExpectedEntry<'a> {
    pub tree: u16,
    pub key: &'a [u8],
    pub locator: Locator,
    pub place: Place,
}

/// The prefix both the expected entries and the index walk's entries sort
/// by: `[tree u16][key length u16][key]`.
pub fn entry_prefix(out: &mut Vec<u8>, tree: u16, key_bytes: &[u8]) {
    out.extend_from_slice(&tree.to_be_bytes());
    out.extend_from_slice(&(key_bytes.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(key_bytes);
}

/// Splits a sorted record at the end of its [`entry_prefix`].
pub fn split_prefix(record: &[u8]) -> (&[u8], u16, &[u8], &[u8]) {
    let tree = u16::from_be_bytes([record[0], record[1]]);
    let length = usize::from(u16::from_be_bytes([record[2], record[3]]));
    let end = 4 + length;
    (&record[..end], tree, &record[4..end], &record[end..])
}

impl ExpectedEntry<'_> {
    pub fn decode(record: &[u8]) -> ExpectedEntry<'_> {
        let (_, tree, key, rest) = split_prefix(record);
        let page = u64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"));
        let slot = u16::from_be_bytes([rest[8], rest[9]]);
        ExpectedEntry { tree, key, locator: Locator { page: PageNo(page), slot }, place: Place::decode(&rest[10..], PageNo(page)).0 }
    }
}

/// The state of a page in its segment file.
enum SegmentState {
    Absent,
    Unwritten,
    Valid(Box<PageBytes>, PageHeader),
    Invalid(DecodeError),
}

/// Per-document checks and what they feed: shared by the part threads and
/// the overflow documents checked at the end.
struct DocumentSink<'a> {
    schemas: &'a Schemas,
    trees: &'a TreeIds,
    ids: Sorter,
    expected: Option<Sorter>,
    documents: u64,
    scratch: Vec<u8>,
    failure: Option<String>,
}

impl<'a> DocumentSink<'a> {
    fn new(schemas: &'a Schemas, trees: &'a TreeIds, with_expected: bool, limits: &Limits) -> DocumentSink<'a> {
        DocumentSink {
            schemas,
            trees,
            ids: Sorter::new(limits.sorter_budget(), &limits.spill_dir),
            expected: with_expected.then(|| Sorter::new(limits.sorter_budget(), &limits.spill_dir)),
            documents: 0,
            scratch: Vec::with_capacity(256),
            failure: None,
        }
    }

    fn push_sorted(failure: &mut Option<String>, sorter: &mut Sorter, record: &[u8]) {
        if let Err(error) = sorter.push(record) {
            failure.get_or_insert_with(|| format!("cannot sort the documents' keys: {error}"));
        }
    }

    /// Checks one document and feeds the sorts. The common case, a valid
    /// document, builds no message, location or copy: the texts are made
    /// only for a finding.
    fn check_document(&mut self, space: &PageSpace, bytes: &[u8], locator: Locator, place: Place, report: &mut Report) {
        report.count("documents", 1);
        let place_text = || format!("page {} slot {}{}", locator.page, locator.slot, place.suffix());
        let record = match document::decode_record(bytes) {
            Ok(record) => record,
            Err(error) => {
                report.problem(place.location(space), format!("document at {} does not decode: {error}", place_text()));
                return;
            }
        };
        self.documents += 1;
        let id = record.body.get("_id").unwrap_or(&Value::Null);
        let schema = self.schemas.get(&(record.schema_id.clone(), record.schema_version.clone()));
        match schema {
            None => report.problem(
                place.location(space),
                format!(
                    "document _id {id} at {} references schema {}/{}, which has no schema file (AERO_RECOVERY_SCHEMA_MISSING)",
                    place_text(),
                    record.schema_id,
                    record.schema_version
                ),
            ),
            // Valid as stored (floats in float fields) means validation
            // would return it unchanged; only otherwise is it validated for
            // the message.
            Some(schema) if schema.check_stored(&record.body).is_ok() => {}
            Some(schema) => check_against_schema(
                schema,
                &record.body,
                id,
                &place_text(),
                (&record.schema_id, &record.schema_version),
                &place.location(space),
                report,
            ),
        }
        if let Some(id_value) = KeyValue::from_json(id, false) {
            // [schema_id][id key][locator] then the version, the place and the _id's text.
            let out = &mut self.scratch;
            out.clear();
            push_text(out, &record.schema_id);
            let length_at = out.len();
            out.extend_from_slice(&[0, 0]);
            key::encode(out, &id_value);
            let key_length = (out.len() - length_at - 2) as u16;
            out[length_at..length_at + 2].copy_from_slice(&key_length.to_be_bytes());
            out.extend_from_slice(&locator.page.0.to_be_bytes());
            out.extend_from_slice(&locator.slot.to_be_bytes());
            push_text(out, &record.schema_version);
            place.encode(out);
            match id {
                Value::String(text) => {
                    out.push(b'"');
                    // The _id's JSON text: escaped only when it needs it.
                    if text.bytes().all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\' && byte < 0x7F) {
                        out.extend_from_slice(text.as_bytes());
                        out.push(b'"');
                    } else {
                        out.pop();
                        out.extend_from_slice(id.to_string().as_bytes());
                    }
                }
                other => out.extend_from_slice(other.to_string().as_bytes()),
            }
            Self::push_sorted(&mut self.failure, &mut self.ids, out);
        }
        let (Some(schema), Some(expected)) = (schema, self.expected.as_mut()) else {
            return;
        };
        let Some(tree_ids) = self.trees.by_schema.get(&(record.schema_id, record.schema_version)) else {
            return;
        };
        let scratch = &mut self.scratch;
        let failure = &mut self.failure;
        let _ = schema.for_each_index_key(&record.body, |position, key_bytes| {
            let Some(&tree) = tree_ids.get(position).filter(|&&tree| tree != u16::MAX) else {
                return;
            };
            scratch.clear();
            entry_prefix(scratch, tree, key_bytes);
            scratch.extend_from_slice(&locator.page.0.to_be_bytes());
            scratch.extend_from_slice(&locator.slot.to_be_bytes());
            place.encode(scratch);
            Self::push_sorted(failure, expected, scratch);
        });
    }
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    out.push(text.len().min(255) as u8);
    out.extend_from_slice(&text.as_bytes()[..text.len().min(255)]);
}

fn take_text(bytes: &[u8]) -> (&str, &[u8]) {
    let length = usize::from(bytes[0]);
    (std::str::from_utf8(&bytes[1..1 + length]).unwrap_or("?"), &bytes[1 + length..])
}

fn check_against_schema(
    schema: &Schema,
    body: &serde_json::Map<String, Value>,
    id: &Value,
    place_text: &str,
    schema_key: (&str, &str),
    location: &Location,
    report: &mut Report,
) {
    // Validation copies the document; the copy is compared in order without
    // printing either (printing only when they differ, for the message).
    let stored = Value::Object(body.clone());
    match schema.validate(&stored) {
        Err(error) => report.problem(
            location.clone(),
            format!(
                "document _id {id} at {place_text} does not validate against {}/{}: field '{}' expected {}, got {}",
                schema_key.0, schema_key.1, error.path, error.expected, error.got
            ),
        ),
        Ok(normalized) => {
            let validated = Value::Object(normalized);
            if !same_in_order(&stored, &validated) {
                report.problem(
                    location.clone(),
                    format!(
                        "document _id {id} at {place_text} is not stored as its schema returns it: stored {stored}, validated {validated}"
                    ),
                );
            }
        }
    }
}

/// Equal as printed JSON: same members in the same order, same number forms.
fn same_in_order(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| ka == kb && same_in_order(va, vb))
        }
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| same_in_order(x, y)),
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            _ if a.is_f64() != b.is_f64() => false,
            (Some(x), Some(y)) if a.is_f64() => x.to_bits() == y.to_bits(),
            _ => a == b,
        },
        _ => a == b,
    }
}

/// One part of the page space, checked on its own thread.
struct Part<'a> {
    space: &'a PageSpace,
    wal_last_seq: SeqNo,
    clean: bool,
    /// A running server may write segment pages while they are read.
    live: bool,
    number: u16,
    report: Report,
    sink: DocumentSink<'a>,
    overflow: Vec<OverflowPage>,
    stubs: Vec<Stub>,
    spill: Option<File>,
    spill_bytes: u64,
    spill_dir: &'a std::path::Path,
}

pub fn check(
    space: &PageSpace,
    wal: &mut WalView,
    schemas: &Schemas,
    trees: &TreeIds,
    clean: bool,
    limits: &Limits,
    report: &mut Report,
) -> Result<DocumentOutput, String> {
    check_segment_files(space, wal, clean, report);
    let wal_last_seq = wal.last_seq;
    let Some(wal_file) = wal.file.as_ref() else {
        // No WAL at all: the pages are checked as if nothing was logged.
        let mut part = Part::new(space, wal_last_seq, clean, 0, schemas, trees, limits);
        let mut progress = Progress::new("document pages", space.page_capacity());
        part.run(0, u64::MAX, None, &mut progress);
        return finish(space, vec![part], schemas, trees, clean, limits, report);
    };
    let bounds = wal.bounds.clone();
    let streams: Vec<Option<Sorted>> = wal.parts.iter_mut().map(Option::take).collect();
    let progress = Progress::new("document pages", space.page_capacity());
    let parts: Vec<Part> = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(number, stream)| {
                let (low, high) = (bounds[number], bounds[number + 1]);
                let mut progress = progress.clone();
                scope.spawn(move || {
                    let mut part = Part::new(space, wal_last_seq, clean, number as u16, schemas, trees, limits);
                    let mut history = PageHistory::new(stream, wal_file);
                    part.run(low, high, Some(&mut history), &mut progress);
                    if let Some(error) = history.failure() {
                        part.sink.failure.get_or_insert_with(|| format!("cannot read the sorted WAL entries: {error}"));
                    }
                    part
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("a verify thread panicked")).collect()
    });
    let mut progress = progress;
    progress.finish();
    finish(space, parts, schemas, trees, clean, limits, report)
}

/// Joins the parts: their findings in page order, then the overflow chains,
/// then `_id` uniqueness.
fn finish(
    space: &PageSpace,
    parts: Vec<Part>,
    schemas: &Schemas,
    trees: &TreeIds,
    clean: bool,
    limits: &Limits,
    report: &mut Report,
) -> Result<DocumentOutput, String> {
    let mut overflow = Vec::new();
    let mut stubs = Vec::new();
    let mut spills = Vec::new();
    let mut id_streams = Vec::new();
    let mut expected_streams = Vec::new();
    let mut documents = 0;
    for part in parts {
        if let Some(error) = part.sink.failure {
            return Err(error);
        }
        report.append(part.report);
        overflow.extend(part.overflow);
        stubs.extend(part.stubs);
        spills.push(part.spill);
        documents += part.sink.documents;
        id_streams.push(part.sink.ids);
        expected_streams.extend(part.sink.expected);
    }
    let mut sink = DocumentSink::new(schemas, trees, clean, limits);
    check_overflow_chains(space, &overflow, &spills, stubs, &mut sink, report);
    drop(overflow);
    if let Some(error) = sink.failure.take() {
        return Err(error);
    }
    documents += sink.documents;
    id_streams.push(sink.ids);
    expected_streams.extend(sink.expected);
    let spilled: u64 = id_streams.iter().chain(expected_streams.iter()).map(Sorter::spilled_bytes).sum();
    let expected_entries: u64 = expected_streams.iter().map(Sorter::records).sum();
    report.count("sort_spilled_bytes", spilled);
    let sort_error = |error: std::io::Error| format!("cannot sort the documents' keys: {error}");
    let ids = Sorted::merge(id_streams.into_iter().map(Sorter::finish).collect::<Result<Vec<_>, _>>().map_err(sort_error)?);
    check_unique_ids(space, ids, report).map_err(sort_error)?;
    let expected = if clean {
        Some(Sorted::merge(expected_streams.into_iter().map(Sorter::finish).collect::<Result<Vec<_>, _>>().map_err(sort_error)?))
    } else {
        None
    };
    Ok(DocumentOutput { documents, expected, expected_entries })
}

/// Adjacent records with the same `(schema_id, _id key)` are duplicates of the first.
fn check_unique_ids(space: &PageSpace, mut ids: Sorted, report: &mut Report) -> std::io::Result<()> {
    let mut first: Vec<u8> = Vec::new();
    let mut first_key_end = 0;
    while let Some(record) = ids.next()? {
        let (schema_id, rest) = take_text(record);
        let key_length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let key_end = record.len() - rest.len() + 2 + key_length;
        if first_key_end == key_end && first[..first_key_end] == record[..key_end] {
            let parse = |record: &[u8]| {
                let rest = &record[key_end..];
                let locator = Locator {
                    page: PageNo(u64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"))),
                    slot: u16::from_be_bytes([rest[8], rest[9]]),
                };
                let (version, rest) = take_text(&rest[10..]);
                let (place, used) = Place::decode(rest, locator.page);
                let id_text = String::from_utf8_lossy(&rest[used..]).into_owned();
                (locator, version.to_string(), place, id_text)
            };
            let (other, other_version, _, _) = parse(&first);
            let (locator, version, place, id_text) = parse(record);
            report.problem(
                place.location(space),
                format!(
                    "duplicate _id {id_text} in collection {schema_id}: page {} slot {}{} (version {version}) and page {} slot {} (version {other_version})",
                    locator.page,
                    locator.slot,
                    place.suffix(),
                    other.page,
                    other.slot
                ),
            );
            continue;
        }
        first.clear();
        first.extend_from_slice(record);
        first_key_end = key_end;
    }
    Ok(())
}

/// The folder, stray files, segment sizes, and segment files the WAL needs but that are missing.
/// Every segment of a page space can be read and is exactly
/// `SEGMENT_BYTES` long; counts them under `counter`. (Shared by the
/// document and index checks.)
pub fn check_segment_lengths(space: &PageSpace, counter: &'static str, report: &mut Report) {
    for (name, reason) in &space.unreadable {
        report.problem(Location::file(name), format!("segment file cannot be read: {reason}"));
    }
    for segment in space.segments.values() {
        report.count(counter, 1);
        let length = segment.file.length();
        if length != SEGMENT_BYTES {
            let name = space.file_of(PageNo(segment.index * aerodb_format::SEGMENT_PAGES));
            report.problem(Location::file(&name), format!("segment file is {length} bytes, expected {SEGMENT_BYTES}"));
        }
    }
}

fn check_segment_files(space: &PageSpace, wal: &WalView, clean: bool, report: &mut Report) {
    match &space.folder_error {
        Some(error) => report.problem(Location::file(space.dir_name), format!("the document segment folder cannot be read: {error}")),
        None if !space.folder_exists => report.problem(Location::file(space.dir_name), "the document segment folder is missing"),
        None => {}
    }
    // The engine opens the document segments as one numbered run and refuses
    // anything else in the folder: so does verify (the two agree).
    for name in &space.stray_files {
        // A segment whose creation a crash interrupted (made under its
        // temporary name, never in place, never written): the engine
        // removes it at the next boot.
        let file_name = name.rsplit('/').next().unwrap_or(name);
        if file_name.strip_suffix(".new").and_then(aerodb_format::parse_segment_file_name).is_some() {
            report.note(
                Location::file(name),
                "a segment file under its temporary name: its creation was interrupted by a crash; the next boot removes it",
            );
            continue;
        }
        report.problem(Location::file(name), "not a segment file: the engine refuses a document folder holding other files");
    }
    for name in &space.folders {
        report.problem(
            Location::file(name),
            "a folder inside the document folder: the engine cannot open or remove it (AERO_STORAGE_IO_ERROR)",
        );
    }
    check_segment_lengths(space, "document_segments", report);
    // A gap below the highest segment present is refused by the engine even
    // when the WAL could rewrite the missing pages; missing segments past the
    // highest one present are made again by replay after a crash.
    let last_present = space.segments.keys().next_back().copied();
    if let Some(last) = last_present {
        for index in (0..last).filter(|index| !space.segments.contains_key(index)) {
            let name = space.file_of(PageNo(index * aerodb_format::SEGMENT_PAGES));
            report.problem(Location::file(&name), format!("segment file is missing: a gap in the numbering before segment {last}"));
        }
    }
    for (&segment, &(pages, first)) in &wal.logged_segments {
        if space.segments.contains_key(&segment) || last_present.is_some_and(|last| segment <= last) {
            continue;
        }
        let name = space.file_of(PageNo(segment * aerodb_format::SEGMENT_PAGES));
        let message = format!("segment file is missing, but the WAL logs {pages} of its pages (first: page {first})");
        if clean {
            report.problem(Location::file(&name), message);
        } else {
            report.note(Location::file(&name), format!("{message}; replay would write them"));
        }
    }
}

impl<'a> Part<'a> {
    fn new(
        space: &'a PageSpace,
        wal_last_seq: SeqNo,
        clean: bool,
        number: u16,
        schemas: &'a Schemas,
        trees: &'a TreeIds,
        limits: &'a Limits,
    ) -> Part<'a> {
        Part {
            space,
            wal_last_seq,
            clean,
            live: limits.live,
            number,
            report: Report::default(),
            sink: DocumentSink::new(schemas, trees, clean, limits),
            overflow: Vec::new(),
            stubs: Vec::new(),
            spill: None,
            spill_bytes: 0,
            spill_dir: &limits.spill_dir,
        }
    }

    /// Checks every page in `[low, high)` that is in a segment or in the log, in page order.
    fn run(&mut self, low: u64, high: u64, mut history: Option<&mut PageHistory<'_>>, progress: &mut Progress) {
        let space = self.space;
        let mut segment_pages = space
            .segments
            .keys()
            .flat_map(|&index| (index * aerodb_format::SEGMENT_PAGES..(index + 1) * aerodb_format::SEGMENT_PAGES).map(PageNo))
            .skip_while(|page_no| page_no.0 < low)
            .take_while(|page_no| page_no.0 < high)
            .peekable();
        loop {
            let in_segment = segment_pages.peek().copied();
            let logged = history.as_ref().and_then(|history| history.peek_page());
            let page_no = match (in_segment, logged) {
                (None, None) => break,
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
            };
            if in_segment == Some(page_no) {
                segment_pages.next();
                progress.tick();
            }
            let logged = history.as_mut().and_then(|history| history.take(page_no, &mut self.report));
            self.check_page(page_no, logged);
        }
    }

    fn check_page(&mut self, page_no: PageNo, logged: Option<LoggedPage>) {
        let Some((effective, place)) = self.effective_page(page_no, logged) else {
            return;
        };
        self.report.count("document_space_pages_checked", 1);
        let header = PageHeader::read(&effective);
        match PageKind::from_byte(header.kind) {
            Some(PageKind::Document) => self.check_document_page(page_no, &effective, place),
            Some(PageKind::Overflow) => {
                self.report.count("overflow_pages", 1);
                match slotted::check_overflow_page(&effective) {
                    Ok(data) => {
                        let within = (data.as_ptr() as usize - effective.as_ptr() as usize) as u64;
                        let data_bytes = data.len() as u16;
                        // Read again from its segment for the chain check, unless
                        // the page is the WAL's version or a running server may
                        // reuse it before then (live mode): then kept as judged.
                        let at = match place.wal {
                            None if !self.live => Some(DataAt::Segment(page_no.offset_in_segment() + within)),
                            _ => self.spill_data(data).map(DataAt::Spill),
                        };
                        if let Some(data) = at {
                            let entry = OverflowPage { page_no, next: header.next(), data_bytes, data, place, part: self.number };
                            self.overflow.push(entry);
                        }
                    }
                    Err(error) => {
                        let at = Place { within: error.offset as u32, ..place };
                        self.report.problem(at.location(self.space), format!("overflow page {page_no}{}: {error}", place.suffix()))
                    }
                }
            }
            Some(PageKind::Free) => {
                self.report.count("free_pages", 1);
                if !page::is_unused_header(&header) {
                    self.report.problem(
                        Place { within: 6, ..place }.location(self.space),
                        format!(
                            "free page {page_no}{} has header fields of a used page (a free page has lower 48, upper 4096, \
                             no items, level 0 and no links)",
                            place.suffix()
                        ),
                    );
                }
            }
            Some(kind) => self.report.problem(
                Place { within: 4, ..place }.location(self.space),
                format!("page {page_no}{} is a {} in the document space", place.suffix(), kind.name()),
            ),
            None => {} // page::verify rejected it already.
        }
    }

    /// An overflow page's data whose effective page came from the WAL is
    /// kept in a temporary file, not in memory.
    fn spill_data(&mut self, data: &[u8]) -> Option<u64> {
        if self.spill.is_none() {
            match tempfile::tempfile_in(self.spill_dir) {
                Ok(file) => self.spill = Some(file),
                Err(error) => {
                    self.sink.failure.get_or_insert_with(|| format!("cannot make a temporary file: {error}"));
                    return None;
                }
            }
        }
        let at = self.spill_bytes;
        let file = self.spill.as_mut()?;
        if let Err(error) = file.write_all(data) {
            self.sink.failure.get_or_insert_with(|| format!("cannot write a temporary file: {error}"));
            return None;
        }
        self.spill_bytes += data.len() as u64;
        Some(at)
    }

    /// Checks the page in its segment against the WAL; returns the page whose
    /// content the rest of the checks look at, or None when there is none.
    fn effective_page(&mut self, page_no: PageNo, logged: Option<LoggedPage>) -> Option<(Box<PageBytes>, Place)> {
        let file = self.space.file_of(page_no);
        let page_offset = page_no.offset_in_segment();
        let at = |within: usize| Location::page(&file, page_no.0, page_offset + within as u64);
        let segment_place = Place { page: page_no, within: 0, wal: None };
        let state = match self.space.page(page_no) {
            None => SegmentState::Absent,
            Some(page) if page::is_unwritten(&page) => SegmentState::Unwritten,
            Some(page) => match page::verify(&page, page_no) {
                Ok(header) => SegmentState::Valid(page, header),
                Err(error) => SegmentState::Invalid(error),
            },
        };
        let mut state = state;
        if let SegmentState::Valid(_, header) = &state {
            if header.lsn() > self.wal_last_seq && self.live {
                // Judged as of the WAL verify read: its version of the page, if it has one.
                self.report.note(
                    at(24),
                    format!("page {page_no} has LSN {}, written by the running server after verify read the WAL", header.lsn()),
                );
                if logged.is_none() {
                    return None;
                }
                state = SegmentState::Absent;
            } else if header.lsn() > self.wal_last_seq {
                self.report.problem(
                    at(24),
                    format!("page {page_no} has LSN {}, past the WAL's last sequence number {}", header.lsn(), self.wal_last_seq),
                );
            }
        }
        let Some(last) = logged else {
            if self.live && !matches!(state, SegmentState::Absent | SegmentState::Unwritten) {
                // Logged after the moment verify read the WAL, or caught half written.
                self.report
                    .note(at(0), format!("page {page_no} is written, but not by a WAL record verify read: left to the running server"));
                return None;
            }
            match state {
                SegmentState::Absent => {}
                SegmentState::Unwritten => self.report.count("unwritten_pages", 1),
                SegmentState::Valid(_, header) => self.report.problem(
                    at(0),
                    format!(
                        "page {page_no} is written ({}, LSN {}) but no WAL record logged it; a page never in the WAL must be all zero",
                        kind_name(header.kind),
                        header.lsn()
                    ),
                ),
                SegmentState::Invalid(error) => self.report.problem(
                    at(error.offset),
                    format!("page {page_no} is not all zero but no WAL record logged it, and it does not verify: {error}"),
                ),
            }
            return None;
        };
        let image = last.content.filter(|image| page::verify(image, page_no).is_ok());
        let image_place = Place { page: page_no, within: 0, wal: Some((last.seq, last.record_offset as u64)) };
        let equal = match (&state, &image) {
            (SegmentState::Valid(page, _), Some(image)) => page[..] == image[..],
            _ => false,
        };
        if equal {
            if let SegmentState::Valid(page, _) = state {
                return Some((page, segment_place));
            }
        }
        let describe_last = format!("last WAL image: record seq {} at WAL offset {}", last.seq, last.record_offset);
        if !self.clean {
            if !matches!(state, SegmentState::Absent) {
                self.report.note(
                    at(0),
                    format!("page {page_no} would be rewritten by replay (segment page: {}; {describe_last})", describe_state(&state)),
                );
            }
            return image.map(|image| (image, image_place));
        }
        match state {
            SegmentState::Absent => {} // reported once for its segment file
            SegmentState::Unwritten => self.report.problem(at(0), format!("page {page_no} is all zero, but {describe_last} wrote it")),
            SegmentState::Invalid(ref error) => self.report.problem(at(error.offset), format!("page {page_no} does not verify: {error}")),
            SegmentState::Valid(page, header) => {
                match &image {
                    Some(image) => {
                        let first = first_difference(&page, image);
                        self.report.problem(
                            at(first),
                            format!(
                                "page {page_no} differs from its last WAL image from byte {first} of the page on \
                                 (page LSN {}; {describe_last}); after a clean shutdown every page must equal it \
                                 (AERO_DATA_CORRUPTION)",
                                header.lsn()
                            ),
                        );
                    }
                    None => self.report.note(
                        at(0),
                        format!("page {page_no} cannot be compared with its last WAL image, which does not verify ({describe_last})"),
                    ),
                }
                return Some((page, segment_place));
            }
        }
        image.map(|image| (image, image_place))
    }

    fn check_document_page(&mut self, page_no: PageNo, page: &PageBytes, place: Place) {
        self.report.count("document_pages", 1);
        let records = match slotted::check_document_page(page) {
            Ok(records) => records,
            Err(error) => {
                self.report.problem(
                    Place { within: error.offset as u32, ..place }.location(self.space),
                    format!("document page {page_no}{}: slotted structure: {error}", place.suffix()),
                );
                return;
            }
        };
        for (slot, bytes) in records {
            // check_document_page has bounded every slot of this page.
            let record_offset = slotted::slot(page, slot).map(|(offset, _)| offset).unwrap_or(0);
            let record_place = Place { within: record_offset as u32, ..place };
            let locator = Locator { page: page_no, slot };
            match slotted::decode_slot_record(bytes) {
                Err(error) => self.report.problem(
                    Place { within: (record_offset + error.offset) as u32, ..place }.location(self.space),
                    format!("page {page_no} slot {slot}{}: record does not decode: {error}", place.suffix()),
                ),
                Ok(SlotRecord::Inline(document)) => {
                    let document_place = Place { within: record_offset as u32 + 1, ..place };
                    self.sink.check_document(self.space, document, locator, document_place, &mut self.report);
                }
                Ok(SlotRecord::Overflow { length, first_page }) => {
                    self.stubs.push(Stub { locator, length, first_page: PageNo(first_page), place: record_place })
                }
            }
        }
    }
}

/// Every overflow page is in exactly one chain, each chain holds its stub's
/// length, and the documents they hold are checked. `overflow` is in page order.
fn check_overflow_chains(
    space: &PageSpace,
    overflow: &[OverflowPage],
    spills: &[Option<File>],
    stubs: Vec<Stub>,
    sink: &mut DocumentSink<'_>,
    report: &mut Report,
) {
    // The stub (1-based) that claimed each overflow page.
    let mut claimed: Vec<u32> = vec![0; overflow.len()];
    let find = |page_no: PageNo| overflow.binary_search_by_key(&page_no, |entry| entry.page_no).ok();
    for (number, stub) in stubs.iter().enumerate() {
        let owner = format!("overflow chain of page {} slot {}", stub.locator.page, stub.locator.slot);
        let needed = slotted::overflow_pages_needed(stub.length as usize);
        let mut data: Vec<u8> = Vec::with_capacity(stub.length as usize);
        let mut current = stub.first_page;
        let mut steps = 0usize;
        let mut intact = true;
        let location = stub.place.location(space);
        while !current.is_none() {
            if steps == needed {
                report.problem(
                    location.clone(),
                    format!("{owner} is longer than the {needed} pages its {} bytes need (page {current} follows)", stub.length),
                );
                intact = false;
                break;
            }
            let Some(index) = find(current) else {
                report.problem(location.clone(), format!("{owner} reaches page {current}, which is not a valid overflow page"));
                intact = false;
                break;
            };
            let page = &overflow[index];
            if claimed[index] != 0 {
                let other = &stubs[claimed[index] as usize - 1].locator;
                report.problem(
                    page.place.location(space),
                    format!(
                        "overflow page {current} is in two chains: page {} slot {} and page {} slot {}",
                        other.page, other.slot, stub.locator.page, stub.locator.slot
                    ),
                );
                intact = false;
                break;
            }
            claimed[index] = number as u32 + 1;
            let start = data.len();
            data.resize(start + usize::from(page.data_bytes), 0);
            let read = match page.data {
                DataAt::Segment(offset) => space
                    .segments
                    .get(&page.page_no.segment())
                    .map(|segment| segment.file.read_exact_at(&mut data[start..], offset).is_ok()),
                DataAt::Spill(offset) => {
                    spills[usize::from(page.part)].as_ref().map(|file| file.read_exact_at(&mut data[start..], offset).is_ok())
                }
            };
            if read != Some(true) {
                report.problem(page.place.location(space), format!("overflow page {current} cannot be read again"));
                intact = false;
                break;
            }
            current = page.next;
            steps += 1;
        }
        if !intact {
            continue;
        }
        if data.len() != stub.length as usize {
            report.problem(location, format!("{owner} holds {} bytes, its stub says {}", data.len(), stub.length));
            continue;
        }
        sink.check_document(space, &data, stub.locator, stub.place, report);
    }
    for (index, page) in overflow.iter().enumerate() {
        if claimed[index] == 0 {
            report.problem(
                page.place.location(space),
                format!("overflow page {} belongs to no chain (no document's stub reaches it)", page.page_no),
            );
        }
    }
}

fn kind_name(kind: u8) -> String {
    match PageKind::from_byte(kind) {
        Some(kind) => kind.name().to_string(),
        None => format!("kind {kind}"),
    }
}

fn describe_state(state: &SegmentState) -> String {
    match state {
        SegmentState::Absent => "absent".into(),
        SegmentState::Unwritten => "all zero".into(),
        SegmentState::Valid(_, header) => format!("LSN {}", header.lsn()),
        SegmentState::Invalid(error) => format!("does not verify: {error}"),
    }
}

/// First byte where two pages differ, looking past the checksum first (a
/// changed page always has a changed checksum; the byte after it says more).
fn first_difference(a: &PageBytes, b: &PageBytes) -> usize {
    let past_checksum = a[4..].iter().zip(b[4..].iter()).position(|(x, y)| x != y).map(|index| index + 4);
    past_checksum.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_and_number_form_matter_when_comparing_documents() {
        assert!(same_in_order(&json!({"a": 1, "b": [1.5, "x"]}), &json!({"a": 1, "b": [1.5, "x"]})));
        assert!(!same_in_order(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
        assert!(!same_in_order(&json!({"a": 1}), &json!({"a": 1.0})));
        assert!(!same_in_order(&json!(0.0), &json!(-0.0)));
        assert!(same_in_order(&json!(-7), &json!(-7)));
    }
}
