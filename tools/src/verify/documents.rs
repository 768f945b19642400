//! Checks of the document space (`data/`): every segment page against the
//! WAL, slotted-page structure, overflow chains, every document against its
//! schema, and `_id` uniqueness per collection.
//!
//! Each page is checked twice over. First as it sits in its segment:
//! `page::verify` (checksum, self number, zero hole), LSN not past the WAL,
//! and equality with the page's last WAL image; a page never logged must be
//! all zero. Then its content is checked on the *effective* page: the
//! segment page, except when replay would overwrite it (no clean shutdown and
//! a WAL image that differs) or when it is damaged and a valid WAL image
//! exists; then the WAL image is checked instead, and findings about it name
//! the WAL record that holds it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use serde_json::Value;

use aerodb_format::btree::Locator;
use aerodb_format::document;
use aerodb_format::key::{self, KeyValue};
use aerodb_format::page::{self, PageBytes, PageHeader, PageKind, HEADER_BYTES};
use aerodb_format::schema::Schema;
use aerodb_format::slotted::{self, SlotRecord};
use aerodb_format::{DecodeError, PageNo, SeqNo, PAGE_SIZE_BYTES};

use crate::database::WAL_FILE;
use crate::space::{PageSpace, SEGMENT_BYTES};
use crate::verify::metadata::Schemas;
use crate::verify::progress::Progress;
use crate::verify::report::{Location, Report};
use crate::verify::wal::{LastImage, WalView};

/// One live document, as the index checks need it.
#[derive(Clone, Debug)]
pub struct LiveDocument {
    pub schema_id: String,
    pub schema_version: String,
    pub id: Value,
    pub location: Location,
    /// `(indexed field, entry key)` for every index of its schema version
    /// the document has an entry in.
    pub keys: Vec<(String, Vec<u8>)>,
}

/// Every live document found.
#[derive(Default)]
pub struct DocumentSet {
    pub by_locator: BTreeMap<Locator, LiveDocument>,
    pub counts: BTreeMap<(String, String), u64>,
}

/// Where the effective page came from.
#[derive(Clone, Debug)]
enum Source {
    Segment { file: String, page_offset: u64 },
    WalImage { seq: SeqNo, record_offset: usize },
}

impl Source {
    fn location(&self, page_no: PageNo, within_page: usize) -> Location {
        match self {
            Source::Segment { file, page_offset } => Location::page(file, page_no.0, page_offset + within_page as u64),
            Source::WalImage { record_offset, .. } => Location::page(WAL_FILE, page_no.0, *record_offset as u64),
        }
    }

    /// Words appended to messages about a WAL image.
    fn suffix(&self) -> String {
        match self {
            Source::Segment { .. } => String::new(),
            Source::WalImage { seq, .. } => format!(" (in its last WAL image, record seq {seq})"),
        }
    }
}

enum PageRef<'a> {
    Borrowed(&'a PageBytes),
    Owned(Box<PageBytes>),
}

impl Deref for PageRef<'_> {
    type Target = PageBytes;

    fn deref(&self) -> &PageBytes {
        match self {
            PageRef::Borrowed(page) => page,
            PageRef::Owned(page) => page,
        }
    }
}

struct OverflowPage {
    data: Vec<u8>,
    next: PageNo,
    location: Location,
}

struct Stub {
    locator: Locator,
    length: u32,
    first_page: PageNo,
    location: Location,
}

/// The state of a page in its segment file.
enum SegmentState<'a> {
    Absent,
    Unwritten,
    Valid(&'a PageBytes, PageHeader),
    Invalid(DecodeError),
}

struct Checker<'a> {
    space: &'a PageSpace,
    wal: &'a WalView,
    schemas: &'a Schemas,
    clean: bool,
    report: &'a mut Report,
    overflow: BTreeMap<PageNo, OverflowPage>,
    stubs: Vec<Stub>,
    ids: BTreeMap<(String, Vec<u8>), (Locator, String)>,
    documents: DocumentSet,
}

pub fn check(space: &PageSpace, wal: &WalView, schemas: &Schemas, clean: bool, report: &mut Report) -> DocumentSet {
    check_segment_files(space, wal, clean, report);
    let mut checker = Checker {
        space,
        wal,
        schemas,
        clean,
        report,
        overflow: BTreeMap::new(),
        stubs: Vec::new(),
        ids: BTreeMap::new(),
        documents: DocumentSet::default(),
    };
    let outside: BTreeSet<PageNo> = wal.last_images.keys().copied().filter(|page_no| space.page(*page_no).is_none()).collect();
    let mut progress = Progress::new("document pages", space.page_capacity() + outside.len() as u64);
    for page_no in space.page_numbers().chain(outside.iter().copied()) {
        progress.tick();
        checker.check_page(page_no);
    }
    progress.finish();
    checker.check_overflow_chains();
    checker.documents
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
        let length = segment.bytes.len() as u64;
        if length != SEGMENT_BYTES {
            let name = space.file_of(PageNo(segment.index * aerodb_format::SEGMENT_PAGES));
            report.problem(Location::file(&name), format!("segment file is {length} bytes, expected {SEGMENT_BYTES}"));
        }
    }
}

fn check_segment_files(space: &PageSpace, wal: &WalView, clean: bool, report: &mut Report) {
    if !space.folder_exists {
        report.problem(Location::file(space.dir_name), "the document segment folder is missing");
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
    let mut missing: BTreeMap<u64, Vec<PageNo>> = BTreeMap::new();
    for page_no in wal.last_images.keys() {
        if !space.segments.contains_key(&page_no.segment()) && last_present.is_none_or(|last| page_no.segment() > last) {
            missing.entry(page_no.segment()).or_default().push(*page_no);
        }
    }
    for (segment, pages) in missing {
        let name = space.file_of(PageNo(segment * aerodb_format::SEGMENT_PAGES));
        let message = format!("segment file is missing, but the WAL logs {} of its pages (first: page {})", pages.len(), pages[0]);
        if clean {
            report.problem(Location::file(&name), message);
        } else {
            report.note(Location::file(&name), format!("{message}; replay would write them"));
        }
    }
}

impl<'a> Checker<'a> {
    fn check_page(&mut self, page_no: PageNo) {
        let Some((effective, source)) = self.effective_page(page_no) else {
            return;
        };
        self.report.count("document_space_pages_checked", 1);
        let header = PageHeader::read(&effective);
        match PageKind::from_byte(header.kind) {
            Some(PageKind::Document) => self.check_document_page(page_no, &effective, &source),
            Some(PageKind::Overflow) => {
                self.report.count("overflow_pages", 1);
                match slotted::check_overflow_page(&effective) {
                    Ok(data) => {
                        let page = OverflowPage { data: data.to_vec(), next: header.next(), location: source.location(page_no, 0) };
                        self.overflow.insert(page_no, page);
                    }
                    Err(error) => self
                        .report
                        .problem(source.location(page_no, error.offset), format!("overflow page {page_no}{}: {error}", source.suffix())),
                }
            }
            Some(PageKind::Free) => {
                self.report.count("free_pages", 1);
                let unused = header.lower() == HEADER_BYTES
                    && header.upper() == PAGE_SIZE_BYTES
                    && header.item_count.get() == 0
                    && header.level.get() == 0
                    && header.next().is_none()
                    && header.prev().is_none();
                if !unused {
                    self.report.problem(
                        source.location(page_no, 6),
                        format!(
                            "free page {page_no}{} has header fields of a used page (a free page has lower 48, upper 4096, \
                             no items, level 0 and no links)",
                            source.suffix()
                        ),
                    );
                }
            }
            Some(kind) => self.report.problem(
                source.location(page_no, 4),
                format!("page {page_no}{} is a {} in the document space", source.suffix(), kind.name()),
            ),
            None => {} // page::verify rejected it already.
        }
    }

    /// Checks the page in its segment against the WAL; returns the page whose
    /// content the rest of the checks look at, or None when there is none.
    fn effective_page(&mut self, page_no: PageNo) -> Option<(PageRef<'a>, Source)> {
        let space: &'a PageSpace = self.space;
        let file = self.space.file_of(page_no);
        let page_offset = page_no.offset_in_segment();
        let at = |within: usize| Location::page(&file, page_no.0, page_offset + within as u64);
        let segment_source = Source::Segment { file: file.clone(), page_offset };
        let state = match space.page(page_no) {
            None => SegmentState::Absent,
            Some(page) if page::is_unwritten(page) => SegmentState::Unwritten,
            Some(page) => match page::verify(page, page_no) {
                Ok(header) => SegmentState::Valid(page, header),
                Err(error) => SegmentState::Invalid(error),
            },
        };
        if let SegmentState::Valid(_, header) = &state {
            if header.lsn() > self.wal.last_seq {
                self.report.problem(
                    at(24),
                    format!("page {page_no} has LSN {}, past the WAL's last sequence number {}", header.lsn(), self.wal.last_seq),
                );
            }
        }
        let last = self.wal.last_images.get(&page_no).cloned();
        let Some(last) = last else {
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
        let image = self.wal.restore(&last).filter(|image| page::verify(image, page_no).is_ok());
        let image_source = Source::WalImage { seq: last.seq, record_offset: last.record_offset };
        let equal = match (&state, &image) {
            (SegmentState::Valid(page, _), Some(image)) => page[..] == image[..],
            _ => false,
        };
        if equal {
            if let SegmentState::Valid(page, _) = state {
                return Some((PageRef::Borrowed(page), segment_source));
            }
        }
        let describe_last = describe_last(&last);
        if !self.clean {
            if !matches!(state, SegmentState::Absent) {
                self.report.note(
                    at(0),
                    format!("page {page_no} would be rewritten by replay (segment page: {}; {describe_last})", describe_state(&state)),
                );
            }
            return image.map(|image| (PageRef::Owned(image), image_source));
        }
        match state {
            SegmentState::Absent => {} // reported once for its segment file
            SegmentState::Unwritten => self.report.problem(at(0), format!("page {page_no} is all zero, but {describe_last} wrote it")),
            SegmentState::Invalid(ref error) => self.report.problem(at(error.offset), format!("page {page_no} does not verify: {error}")),
            SegmentState::Valid(page, header) => {
                match &image {
                    Some(image) => {
                        let first = first_difference(page, image);
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
                return Some((PageRef::Borrowed(page), segment_source));
            }
        }
        image.map(|image| (PageRef::Owned(image), image_source))
    }

    fn check_document_page(&mut self, page_no: PageNo, page: &PageBytes, source: &Source) {
        self.report.count("document_pages", 1);
        let records = match slotted::check_document_page(page) {
            Ok(records) => records,
            Err(error) => {
                self.report.problem(
                    source.location(page_no, error.offset),
                    format!("document page {page_no}{}: slotted structure: {error}", source.suffix()),
                );
                return;
            }
        };
        for (slot, bytes) in records {
            // check_document_page has bounded every slot of this page.
            let record_offset = slotted::slot(page, slot).map(|(offset, _)| offset).unwrap_or(0);
            let location = source.location(page_no, record_offset);
            let locator = Locator { page: page_no, slot };
            match slotted::decode_slot_record(bytes) {
                Err(error) => self.report.problem(
                    source.location(page_no, record_offset + error.offset),
                    format!("page {page_no} slot {slot}{}: record does not decode: {error}", source.suffix()),
                ),
                Ok(SlotRecord::Inline(document)) => {
                    let location = source.location(page_no, record_offset + 1);
                    self.check_document(document, locator, location, &source.suffix());
                }
                Ok(SlotRecord::Overflow { length, first_page }) => {
                    self.stubs.push(Stub { locator, length, first_page: PageNo(first_page), location })
                }
            }
        }
    }

    /// Every overflow page is in exactly one chain, each chain holds its
    /// stub's length, and the documents they hold are checked.
    fn check_overflow_chains(&mut self) {
        let mut claimed: BTreeMap<PageNo, Locator> = BTreeMap::new();
        let stubs = std::mem::take(&mut self.stubs);
        for stub in &stubs {
            let owner = format!("overflow chain of page {} slot {}", stub.locator.page, stub.locator.slot);
            let needed = slotted::overflow_pages_needed(stub.length as usize);
            let mut data: Vec<u8> = Vec::with_capacity(stub.length as usize);
            let mut current = stub.first_page;
            let mut steps = 0usize;
            let mut intact = true;
            while !current.is_none() {
                if steps == needed {
                    self.report.problem(
                        stub.location.clone(),
                        format!("{owner} is longer than the {needed} pages its {} bytes need (page {current} follows)", stub.length),
                    );
                    intact = false;
                    break;
                }
                let Some(page) = self.overflow.get(&current) else {
                    self.report
                        .problem(stub.location.clone(), format!("{owner} reaches page {current}, which is not a valid overflow page"));
                    intact = false;
                    break;
                };
                if let Some(other) = claimed.get(&current) {
                    self.report.problem(
                        page.location.clone(),
                        format!(
                            "overflow page {current} is in two chains: page {} slot {} and page {} slot {}",
                            other.page, other.slot, stub.locator.page, stub.locator.slot
                        ),
                    );
                    intact = false;
                    break;
                }
                claimed.insert(current, stub.locator);
                data.extend_from_slice(&page.data);
                current = page.next;
                steps += 1;
            }
            if !intact {
                continue;
            }
            if data.len() != stub.length as usize {
                self.report.problem(stub.location.clone(), format!("{owner} holds {} bytes, its stub says {}", data.len(), stub.length));
                continue;
            }
            self.check_document(&data, stub.locator, stub.location.clone(), "");
        }
        let orphans: Vec<(PageNo, Location)> = self
            .overflow
            .iter()
            .filter(|(page_no, _)| !claimed.contains_key(page_no))
            .map(|(page_no, page)| (*page_no, page.location.clone()))
            .collect();
        for (page_no, location) in orphans {
            self.report.problem(location, format!("overflow page {page_no} belongs to no chain (no document's stub reaches it)"));
        }
    }

    fn check_document(&mut self, bytes: &[u8], locator: Locator, location: Location, suffix: &str) {
        self.report.count("documents", 1);
        let place = format!("page {} slot {}{suffix}", locator.page, locator.slot);
        let record = match document::decode_record(bytes) {
            Ok(record) => record,
            Err(error) => {
                self.report.problem(location, format!("document at {place} does not decode: {error}"));
                return;
            }
        };
        let id = record.body.get("_id").cloned().unwrap_or(Value::Null);
        let schema_key = (record.schema_id.clone(), record.schema_version.clone());
        let schema = self.schemas.get(&schema_key);
        match schema {
            None => self.report.problem(
                location.clone(),
                format!(
                    "document _id {id} at {place} references schema {}/{}, which has no schema file (AERO_RECOVERY_SCHEMA_MISSING)",
                    schema_key.0, schema_key.1
                ),
            ),
            Some(schema) => match schema.validate(&Value::Object(record.body.clone())) {
                Err(error) => self.report.problem(
                    location.clone(),
                    format!(
                        "document _id {id} at {place} does not validate against {}/{}: field '{}' expected {}, got {}",
                        schema_key.0, schema_key.1, error.path, error.expected, error.got
                    ),
                ),
                Ok(normalized) => {
                    let stored = Value::Object(record.body.clone()).to_string();
                    let validated = Value::Object(normalized).to_string();
                    if stored != validated {
                        self.report.problem(
                            location.clone(),
                            format!("document _id {id} at {place} is not stored as its schema returns it: stored {stored}, validated {validated}"),
                        );
                    }
                }
            },
        }
        if let Some(id_key) = KeyValue::from_json(&id, false).map(|value| key::encode_to_vec(&value)) {
            let collection_key = (record.schema_id.clone(), id_key);
            if let Some((other, other_version)) = self.ids.get(&collection_key) {
                self.report.problem(
                    location.clone(),
                    format!(
                        "duplicate _id {id} in collection {}: {place} (version {}) and page {} slot {} (version {other_version})",
                        record.schema_id, record.schema_version, other.page, other.slot
                    ),
                );
            } else {
                self.ids.insert(collection_key, (locator, record.schema_version.clone()));
            }
        }
        let keys = schema.map(|schema| entry_keys(schema, &record.body)).unwrap_or_default();
        *self.documents.counts.entry(schema_key).or_insert(0) += 1;
        let document = LiveDocument { schema_id: record.schema_id, schema_version: record.schema_version, id, location, keys };
        self.documents.by_locator.insert(locator, document);
    }
}

/// The key each index of `schema` holds for a document body (FORMAT.md,
/// "Index keys"); none for a body without a valid `_id`.
pub fn entry_keys(schema: &Schema, body: &serde_json::Map<String, Value>) -> Vec<(String, Vec<u8>)> {
    let mut keys = Vec::with_capacity(schema.indexes.len());
    let _ = schema.for_each_index_key(body, |position, key_bytes| keys.push((schema.indexes[position].clone(), key_bytes.to_vec())));
    keys
}

fn kind_name(kind: u8) -> String {
    match PageKind::from_byte(kind) {
        Some(kind) => kind.name().to_string(),
        None => format!("kind {kind}"),
    }
}

fn describe_state(state: &SegmentState<'_>) -> String {
    match state {
        SegmentState::Absent => "absent".into(),
        SegmentState::Unwritten => "all zero".into(),
        SegmentState::Valid(_, header) => format!("LSN {}", header.lsn()),
        SegmentState::Invalid(error) => format!("does not verify: {error}"),
    }
}

fn describe_last(last: &LastImage) -> String {
    format!("last WAL image: record seq {} at WAL offset {}", last.seq, last.record_offset)
}

/// First byte where two pages differ, looking past the checksum first (a
/// changed page always has a changed checksum; the byte after it says more).
fn first_difference(a: &PageBytes, b: &PageBytes) -> usize {
    let past_checksum = a[4..].iter().zip(b[4..].iter()).position(|(x, y)| x != y).map(|index| index + 4);
    past_checksum.unwrap_or(0)
}
