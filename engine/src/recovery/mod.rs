//! Recovery: WAL replay, verification of every document page, and the
//! rebuild of every B-tree. Runs at every start, clean or not
//! (docs/BOOT.md).
//!
//! Replay reads the WAL from its first record and writes the *last* image
//! of every logged page over that page in its segment (images are whole
//! pages, so the last one is the page's content). After a crash a segment
//! page may be stale or torn and is simply rewritten; after a clean
//! shutdown every page must already equal its last image, and a difference
//! is storage corruption. Pages the WAL never logged must be all zero.
//! Verification then checks every document page, overflow chain and
//! document, and collects index keys, which are sorted and bulk loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aerodb_format::btree::Locator;
use aerodb_format::document::decode_record;
use aerodb_format::page::{self, PageHeader, PageKind};
use aerodb_format::schema::Schema;
use aerodb_format::slotted::{self, SlotRecord};
use aerodb_format::stored::KeyScratch;
use aerodb_format::{PageNo, SeqNo, PAGE_SIZE_BYTES};
use serde_json::{Map, Value};

use aerodb_format::wal::PageChange;

use crate::btree::{Indexes, TreeId};
use crate::catalog::Catalog;
use crate::crash;
use crate::error::{corruption, AeroError, ErrorCode, Result};
use crate::heap::Heap;
use crate::wal::{scan, Wal};

mod keys;
pub use keys::{KeyArena, KeyRuns};

/// What a boot did, for the one recovery report line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether the previous run ended with a clean shutdown.
    pub clean_shutdown: bool,
    /// WAL records replayed.
    pub records_replayed: u64,
    /// The last sequence number in the WAL.
    pub last_seq: u64,
    /// Page images written over their segment pages.
    pub pages_replayed: u64,
    /// Segment pages that differed from their last WAL image (stale or torn after a crash).
    pub pages_rewritten: u64,
    /// Bytes of a torn WAL tail cut off.
    pub torn_bytes_discarded: u64,
    /// Documents found by verification.
    pub documents: u64,
    /// Index entries rebuilt.
    pub index_entries: u64,
    /// Time spent in replay, in milliseconds.
    pub replay_ms: u64,
    /// Time spent in verification, in milliseconds.
    pub verify_ms: u64,
    /// Time spent rebuilding the indexes, in milliseconds.
    pub rebuild_ms: u64,
}

impl RecoveryReport {
    /// The report as the JSON of the recovery report log line.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "clean_shutdown": self.clean_shutdown,
            "records_replayed": self.records_replayed,
            "last_seq": self.last_seq,
            "pages_replayed": self.pages_replayed,
            "pages_rewritten": self.pages_rewritten,
            "torn_bytes_discarded": self.torn_bytes_discarded,
            "documents": self.documents,
            "index_entries": self.index_entries,
            "replay_ms": self.replay_ms,
            "verify_ms": self.verify_ms,
            "rebuild_ms": self.rebuild_ms,
        })
    }
}

/// Where the last image of a page sits in the WAL.
#[derive(Clone, Copy, Debug)]
struct LastImage {
    file_offset: u64,
    lower: u16,
    upper: u16,
}

/// A page's entries in the WAL from its last whole image on: the image,
/// then the deltas logged after it, in log order (file offset and length
/// of each delta's encoded ranges), and the sequence number of the last one.
#[derive(Clone, Debug)]
struct PageLog {
    image: LastImage,
    deltas: Vec<(u64, u32)>,
    last_seq: u64,
}

/// Replays the WAL into the heap's segments. `expected_last_seq` is the
/// sequence number recorded by the last clean shutdown, if there was one.
/// `acknowledged_wal_bytes` is the WAL length recorded by the last clean
/// shutdown (0 if none): every byte before it belongs to acknowledged records.
pub fn replay(
    wal: &mut Wal,
    heap: &mut Heap,
    catalog: &Catalog,
    expected_last_seq: Option<u64>,
    acknowledged_wal_bytes: u64,
    report: &mut RecoveryReport,
) -> Result<()> {
    let started = Instant::now();
    let clean = expected_last_seq.is_some();
    let path = wal.path().to_path_buf();
    let mut last: BTreeMap<PageNo, PageLog> = BTreeMap::new();
    let wal_bytes = wal.file().len().unwrap_or(0);
    let mut progress = crate::log::Progress::new("replay", wal_bytes, 64 << 20);
    let outcome = scan(wal.file(), &path, |offset, record, bytes| {
        progress.update(offset);
        if catalog.get(&record.schema_id, &record.schema_version).is_none() {
            return Err(AeroError::new(
                ErrorCode::RecoverySchemaMissing,
                format!(
                    "WAL record {} at offset {offset} references schema {} version {}, whose file is missing",
                    record.seq, record.schema_id, record.schema_version
                ),
            )
            .detail("schema_id", record.schema_id.to_string())
            .detail("schema_version", record.schema_version.to_string())
            .detail("seq", record.seq.0));
        }
        for change in &record.pages {
            let image = match change {
                PageChange::Image(image) => image,
                PageChange::Delta(delta) => {
                    // A delta is applied to the page as the log's earlier
                    // entries left it: the log must hold an image before it.
                    let Some(log) = last.get_mut(&delta.page_no) else {
                        return Err(AeroError::new(
                            ErrorCode::WalCorruption,
                            format!(
                                "WAL record {} at offset {offset} logs a delta of page {} with no earlier image of that page",
                                record.seq, delta.page_no
                            ),
                        )
                        .detail("offset", offset)
                        .detail("seq", record.seq.0));
                    };
                    let within = delta.encoded.as_ptr() as u64 - bytes.as_ptr() as u64;
                    log.deltas.push((offset + within, delta.encoded.len() as u32));
                    log.last_seq = record.seq.0;
                    continue;
                }
            };
            let kind = PageHeader::read_image_prefix(image.image).kind;
            if !matches!(PageKind::from_byte(kind), Some(PageKind::Document | PageKind::Overflow | PageKind::Free)) {
                return Err(AeroError::new(
                    ErrorCode::WalCorruption,
                    format!(
                        "WAL record {} at offset {offset} logs page {} of kind {kind}, not a document-space page",
                        record.seq, image.page_no
                    ),
                )
                .detail("offset", offset)
                .detail("seq", record.seq.0));
            }
            let within = image.image.as_ptr() as u64 - bytes.as_ptr() as u64;
            let image = LastImage { file_offset: offset + within, lower: image.lower, upper: image.upper };
            last.insert(change.page_no(), PageLog { image, deltas: Vec::new(), last_seq: record.seq.0 });
        }
        Ok(())
    })?;
    report.records_replayed = outcome.records;
    report.last_seq = outcome.last_seq.0;
    if let Some(expected) = expected_last_seq {
        if outcome.torn_bytes > 0 || outcome.last_seq.0 != expected {
            return Err(AeroError::new(
                ErrorCode::WalCorruption,
                format!(
                    "{}: the last clean shutdown recorded sequence {expected}, but the WAL holds {} valid records and {} bytes after them",
                    path.display(),
                    outcome.last_seq.0,
                    outcome.torn_bytes
                ),
            )
            .detail("file", path.display().to_string())
            .detail("offset", outcome.valid_end)
            .detail("seq", outcome.last_seq.0 + 1));
        }
    }
    if outcome.valid_end < acknowledged_wal_bytes {
        return Err(AeroError::new(ErrorCode::WalCorruption, format!("{}: the valid records end at offset {}, but a clean shutdown recorded {acknowledged_wal_bytes} bytes of acknowledged records (damaged or missing records)", path.display(), outcome.valid_end))
            .detail("file", path.display().to_string())
            .detail("offset", outcome.valid_end)
            .detail("seq", outcome.last_seq.0 + 1));
    }
    if outcome.torn_bytes > 0 {
        crate::log::warn("recovery", "torn_tail_discarded", &[("offset", outcome.valid_end.into()), ("bytes", outcome.torn_bytes.into())]);
        report.torn_bytes_discarded = outcome.torn_bytes;
    }
    let page_count = last.keys().next_back().map(|page_no| page_no.0 + 1).unwrap_or(0);
    if clean && heap.capacity_pages() < page_count {
        return Err(AeroError::new(
            ErrorCode::DataCorruption,
            format!(
                "the WAL logs page {} but the document segments end at page {} after a clean shutdown",
                page_count - 1,
                heap.capacity_pages()
            ),
        ));
    }
    heap.ensure_capacity(page_count)?;
    heap.set_page_count(page_count);
    // A segment page that is intact (checksum and page number right) and
    // carries a sequence number past the log's valid end was written by a
    // record that was durable (nothing reaches a segment before its record
    // is fsync'ed) and is now damaged or missing: an acknowledged write
    // would be lost. Checked before replay overwrites any page.
    for page_no in last.keys() {
        if let Some(current) = heap.segment_page(*page_no) {
            if let Ok(header) = page::verify(current, *page_no) {
                if header.lsn().0 > outcome.last_seq.0 {
                    let file = heap.segment_path(*page_no);
                    return Err(AeroError::new(ErrorCode::WalCorruption, format!("{} page {page_no} was written by WAL record {}, but the valid records of {} end at sequence {} (offset {}): a durable record is damaged or missing", file.display(), header.lsn(), path.display(), outcome.last_seq, outcome.valid_end))
                        .detail("file", path.display().to_string())
                        .detail("offset", outcome.valid_end)
                        .detail("seq", outcome.last_seq.0 + 1)
                        .detail("page", page_no.0));
                }
            }
        }
    }
    let mut image = vec![0u8; PAGE_SIZE_BYTES];
    let mut delta_bytes = Vec::new();
    // A page's entries are spread over the log: read them through a map
    // (no system call per delta) when the file can be mapped.
    let mapped = wal.file().map_read_only();
    let read = |offset: u64, buffer: &mut [u8]| -> Result<()> {
        match mapped.as_ref().and_then(|map| map.get(offset as usize..offset as usize + buffer.len())) {
            Some(bytes) => {
                buffer.copy_from_slice(bytes);
                Ok(())
            }
            None => wal.read_at(offset, buffer),
        }
    };
    for (page_no, log) in &last {
        let location = &log.image;
        let length = usize::from(location.lower) + PAGE_SIZE_BYTES - usize::from(location.upper);
        read(location.file_offset, &mut image[..length])?;
        let mut full = page::restore_hole(location.lower, location.upper, &image[..length])
            .map_err(|error| corruption(ErrorCode::WalCorruption, &path, Some(page_no.0), &error))?;
        // Every delta after the image, in log order: the page is rebuilt
        // from the log alone, never from the segment's bytes.
        for (delta_offset, delta_length) in &log.deltas {
            delta_bytes.resize(*delta_length as usize, 0);
            read(*delta_offset, &mut delta_bytes)?;
            aerodb_format::wal::apply_encoded_delta(&mut full, &delta_bytes)
                .map_err(|error| corruption(ErrorCode::WalCorruption, &path, Some(page_no.0), &error.shifted(*delta_offset as usize)))?;
        }
        let header = page::verify(&full, *page_no)
            .map_err(|error| corruption(ErrorCode::WalCorruption, &path, Some(page_no.0), &error.shifted(location.file_offset as usize)))?;
        let kind = PageKind::from_byte(header.kind);
        if header.lsn().0 != log.last_seq || !matches!(kind, Some(PageKind::Document | PageKind::Overflow | PageKind::Free)) {
            return Err(AeroError::new(
                ErrorCode::WalCorruption,
                format!(
                    "page {page_no} rebuilt from the WAL has lsn {} and kind {}, expected lsn {} and a document-space kind",
                    header.lsn(),
                    header.kind,
                    log.last_seq
                ),
            )
            .detail("page", page_no.0)
            .detail("seq", log.last_seq));
        }
        let Some(current) = heap.segment_page(*page_no) else {
            return Err(AeroError::invariant_broken(format!("page {page_no} is past the mapped segments")));
        };
        if current[..] != full[..] {
            if clean {
                let differs_at = current.iter().zip(full.iter()).position(|(a, b)| a != b).unwrap_or(0);
                let file = heap.segment_path(*page_no);
                return Err(AeroError::new(
                    ErrorCode::DataCorruption,
                    format!(
                        "{} page {page_no} differs from its content rebuilt from the WAL at byte {differs_at} after a clean shutdown",
                        file.display()
                    ),
                )
                .detail("file", file.display().to_string())
                .detail("page", page_no.0)
                .detail("offset", page_no.offset_in_segment() + differs_at as u64));
            }
            heap.write_segment_page(*page_no, &full)?;
            report.pages_rewritten += 1;
        }
        report.pages_replayed += 1;
        if report.pages_replayed == 1 {
            crash::reach("recovery_mid_replay");
        }
    }
    // The torn tail is cut by the caller once verification has passed: a
    // boot that fails must leave the log as it found it.
    wal.set_position(outcome.valid_end, outcome.last_seq);
    report.replay_ms = started.elapsed().as_millis() as u64;
    Ok(())
}

/// The index keys of one document under its schema: `(field, key)` pairs.
pub fn index_keys(schema: &Schema, document: &Map<String, Value>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut keys = Vec::with_capacity(schema.indexes.len());
    schema
        .for_each_index_key(document, |position, key_bytes| keys.push((schema.indexes[position].clone(), key_bytes.to_vec())))
        .map_err(AeroError::invariant_broken)?;
    Ok(keys)
}

/// Per-collection-version facts gathered by verification.
#[derive(Default)]
pub struct Verified {
    /// Documents verified.
    pub documents: u64,
    /// Encoded document sizes per (schema_id, schema_version): size → count.
    pub document_sizes: BTreeMap<(String, String), BTreeMap<u64, u64>>,
    /// The index keys found, per tree, sorted.
    pub arenas: BTreeMap<TreeId, KeyRuns>,
    /// While verifying: per schema_id and schema_version, one arena per
    /// entry of the schema's `indexes` list and the size counts (looked up
    /// by `&str`, so a document costs no allocation here).
    collecting: BTreeMap<String, BTreeMap<String, VersionKeys>>,
}

#[derive(Default)]
struct VersionKeys {
    arenas: Vec<KeyArena>,
    sizes: BTreeMap<u64, u64>,
}

fn data_corruption(heap: &Heap, page_no: PageNo, offset_in_page: usize, message: String) -> AeroError {
    let file = heap.segment_path(page_no);
    AeroError::new(ErrorCode::DataCorruption, format!("{} page {page_no}: {message}", file.display()))
        .detail("file", file.display().to_string())
        .detail("page", page_no.0)
        .detail("offset", page_no.offset_in_segment() + offset_in_page as u64)
}

/// Checks every page of the document space and every document, and collects index keys.
/// Threads used to verify the document pages at boot.
const VERIFY_THREADS: u64 = 2;

/// What one thread found in its range of pages.
#[derive(Default)]
struct PageScan {
    verified: Verified,
    overflow_pages: BTreeSet<PageNo>,
    stubs: Vec<(Locator, PageNo, usize)>,
}

fn empty_verified(catalog: &Catalog) -> Verified {
    let mut verified = Verified::default();
    for schema in catalog.all() {
        let keys = VersionKeys { arenas: schema.indexes.iter().map(|_| KeyArena::default()).collect(), sizes: BTreeMap::new() };
        verified.collecting.entry(schema.schema_id.clone()).or_default().insert(schema.schema_version.clone(), keys);
    }
    verified
}

/// Checks every page of the document space and every document, and collects index keys.
/// The pages are split into `VERIFY_THREADS` ranges checked in parallel;
/// results merge in page order, and the first problem in page order is the
/// one reported, so the outcome is the same as a sequential check.
pub fn verify(heap: &mut Heap, catalog: &Catalog, last_seq: SeqNo, report: &mut RecoveryReport) -> Result<Verified> {
    let started = Instant::now();
    let capacity = heap.capacity_pages();
    // Even shares of the written pages; the last range also checks the
    // unwritten rest of the last segment (cheap: they must be zero).
    let written = heap.page_count().min(capacity);
    let share = written.div_ceil(VERIFY_THREADS).max(1);
    let shared: &Heap = heap;
    let scans: Vec<Result<PageScan>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..VERIFY_THREADS)
            .map(|thread| {
                let first = (thread * share).min(written);
                let end = if thread + 1 == VERIFY_THREADS { capacity } else { ((thread + 1) * share).min(written) };
                scope.spawn(move || scan_pages(shared, catalog, last_seq, first..end, thread == 0))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| Err(AeroError::invariant_broken("a verify thread panicked"))))
            .collect()
    });
    // Each thread sorted its own keys; they join as runs of their trees,
    // in page order (the first problem in page order is the one reported).
    let mut verified = Verified::default();
    for tree in
        catalog.all().flat_map(|schema| schema.indexes.iter().map(|field| TreeId::new(&schema.schema_id, &schema.schema_version, field)))
    {
        verified.arenas.entry(tree).or_default();
    }
    let mut overflow_pages = BTreeSet::new();
    let mut stubs = Vec::new();
    for scan in scans {
        let scan = scan?;
        absorb(catalog, &mut verified, scan.verified)?;
        overflow_pages.extend(scan.overflow_pages);
        stubs.extend(scan.stubs);
    }
    // Documents on overflow pages: checked here, their keys one more run.
    let mut chained: BTreeSet<PageNo> = BTreeSet::new();
    let mut scratch = KeyScratch::default();
    let mut long_documents = empty_verified(catalog);
    for (locator, first, length) in stubs {
        let bytes = heap.read_overflow(first, length)?;
        let mut next = first;
        while !next.is_none() {
            if !chained.insert(next) {
                return Err(data_corruption(heap, next, page::NEXT_OFFSET, "overflow page belongs to two chains".into()));
            }
            next = heap.segment_page(next).map(|page| PageHeader::read(page).next()).unwrap_or(PageNo::NONE);
        }
        verify_document(heap, catalog, locator, &bytes, &mut long_documents, &mut scratch)?;
    }
    if let Some(orphan) = overflow_pages.difference(&chained).next() {
        return Err(data_corruption(heap, *orphan, page::KIND_OFFSET, "overflow page belongs to no document".into()));
    }
    sort_collected(&mut long_documents);
    absorb(catalog, &mut verified, long_documents)?;
    for number in 0..heap.page_count() {
        heap.note_segment_page(PageNo(number));
    }
    report.documents = verified.documents;
    report.verify_ms = started.elapsed().as_millis() as u64;
    Ok(verified)
}

/// Checks the pages of `range` (see [`verify`]).
fn scan_pages(heap: &Heap, catalog: &Catalog, last_seq: SeqNo, range: std::ops::Range<u64>, show_progress: bool) -> Result<PageScan> {
    let mut scan = PageScan { verified: empty_verified(catalog), ..PageScan::default() };
    let page_count = heap.page_count();
    let mut progress = crate::log::Progress::new("verify", range.end, if show_progress { 16_384 } else { u64::MAX });
    let mut scratch = KeyScratch::default();
    for number in range {
        progress.update(number);
        let page_no = PageNo(number);
        let Some(page) = heap.segment_page(page_no) else { break };
        if number >= page_count || page::is_unwritten(page) {
            if let Some(position) = page.iter().position(|&byte| byte != 0) {
                return Err(data_corruption(heap, page_no, position, "a page the WAL never wrote holds nonzero bytes".into()));
            }
            if number < page_count {
                // A logged page that became all zero cannot happen: every logged page has a header.
                return Err(data_corruption(heap, page_no, 0, "a page the WAL logged is all zero".into()));
            }
            continue;
        }
        let header = page::verify(page, page_no).map_err(|error| data_corruption(heap, page_no, error.offset, error.to_string()))?;
        if header.lsn().0 > last_seq.0 {
            return Err(AeroError::new(ErrorCode::WalCorruption, format!("page {page_no} was written by WAL record {} but the WAL ends at record {last_seq}: a durable record is missing or damaged", header.lsn())).detail("page", page_no.0).detail("seq", header.lsn().0));
        }
        match PageKind::from_byte(header.kind) {
            Some(PageKind::Document) => {
                let records =
                    slotted::check_document_page(page).map_err(|error| data_corruption(heap, page_no, error.offset, error.to_string()))?;
                for (slot, record) in records {
                    let locator = Locator { page: page_no, slot };
                    match slotted::decode_slot_record(record)
                        .map_err(|error| data_corruption(heap, page_no, error.offset, error.to_string()))?
                    {
                        SlotRecord::Inline(bytes) => verify_document(heap, catalog, locator, bytes, &mut scan.verified, &mut scratch)?,
                        SlotRecord::Overflow { length, first_page } => scan.stubs.push((locator, PageNo(first_page), length as usize)),
                    }
                }
            }
            Some(PageKind::Overflow) => {
                scan.overflow_pages.insert(page_no);
            }
            Some(PageKind::Free) => {
                // An unused page: empty, level 0, linked to nothing (verify's rule too).
                if !page::is_unused_header(&header) {
                    return Err(data_corruption(heap, page_no, page::LOWER_OFFSET, "a free page holds content, a level or links".into()));
                }
            }
            _ => {
                return Err(data_corruption(
                    heap,
                    page_no,
                    page::KIND_OFFSET,
                    format!("page kind {} does not belong in the document space", header.kind),
                ))
            }
        }
    }
    sort_collected(&mut scan.verified);
    Ok(scan)
}

fn verify_document(
    heap: &Heap,
    catalog: &Catalog,
    locator: Locator,
    bytes: &[u8],
    verified: &mut Verified,
    scratch: &mut KeyScratch,
) -> Result<()> {
    // The check in place (no decoded value, no allocation): a record it
    // accepts is one the checks below accept, with the same keys. One it
    // refuses goes the slow way, which names the fault.
    if let Some((schema_id, schema_version, start)) = aerodb_format::stored::record_names(bytes) {
        let schema = catalog.get(schema_id, schema_version);
        let keys = verified.collecting.get_mut(schema_id).and_then(|versions| versions.get_mut(schema_version));
        if let (Some(schema), Some(keys)) = (schema, keys) {
            let mut pushed: Result<()> = Ok(());
            let valid = schema.check_encoded_body(bytes, start, scratch, |position, key_bytes| {
                if pushed.is_ok() {
                    pushed = keys.arenas[position].push(key_bytes, locator);
                }
            });
            if valid {
                pushed?;
                *keys.sizes.entry(bytes.len() as u64).or_default() += 1;
                verified.documents += 1;
                return Ok(());
            }
        }
    }
    let record = decode_record(bytes)
        .map_err(|error| data_corruption(heap, locator.page, 0, format!("slot {}: document does not decode: {error}", locator.slot)))?;
    let Some(schema) = catalog.get(&record.schema_id, &record.schema_version) else {
        return Err(AeroError::new(
            ErrorCode::RecoverySchemaMissing,
            format!(
                "a document on page {} references schema {} version {}, whose file is missing",
                locator.page, record.schema_id, record.schema_version
            ),
        )
        .detail("schema_id", record.schema_id)
        .detail("schema_version", record.schema_version)
        .detail("page", locator.page.0));
    };
    match schema.check_stored(&record.body) {
        Ok(()) => {}
        Err(error) => {
            return Err(data_corruption(
                heap,
                locator.page,
                0,
                format!(
                    "slot {}: document does not validate: {} expected {}, found {}",
                    locator.slot, error.path, error.expected, error.got
                ),
            ))
        }
    }
    let Some(keys) = verified.collecting.get_mut(&record.schema_id).and_then(|versions| versions.get_mut(&record.schema_version)) else {
        return Err(AeroError::invariant_broken("index arenas missing for a loaded schema"));
    };
    let mut pushed: Result<()> = Ok(());
    schema
        .for_each_index_key(&record.body, |position, key_bytes| {
            if pushed.is_ok() {
                pushed = keys.arenas[position].push(key_bytes, locator);
            }
        })
        .map_err(AeroError::invariant_broken)?;
    pushed?;
    *keys.sizes.entry(bytes.len() as u64).or_default() += 1;
    verified.documents += 1;
    Ok(())
}

/// Sorts every arena being collected (each verify thread sorts its own).
fn sort_collected(verified: &mut Verified) {
    for versions in verified.collecting.values_mut() {
        for keys in versions.values_mut() {
            for arena in &mut keys.arenas {
                arena.sort();
            }
        }
    }
}

/// Adds what one scan collected (sorted) to `verified`: its arenas as runs
/// of their trees, its documents and size counts.
fn absorb(catalog: &Catalog, verified: &mut Verified, scan: Verified) -> Result<()> {
    verified.documents += scan.documents;
    for (schema_id, versions) in scan.collecting {
        for (schema_version, keys) in versions {
            let Some(schema) = catalog.get(&schema_id, &schema_version) else {
                return Err(AeroError::invariant_broken("verify threads saw different catalogs"));
            };
            for (field, arena) in schema.indexes.iter().zip(keys.arenas) {
                verified.arenas.entry(TreeId::new(&schema_id, &schema_version, field)).or_default().add(arena);
            }
            if !keys.sizes.is_empty() {
                let sizes = verified.document_sizes.entry((schema_id.clone(), schema_version)).or_default();
                for (size, count) in keys.sizes {
                    *sizes.entry(size).or_default() += count;
                }
            }
        }
    }
    Ok(())
}

/// Two equal keys in one sorted arena: two documents of one schema version
/// share an index key, which means a duplicate `_id`.
fn check_sorted_arena(tree: &TreeId, arena: &KeyRuns) -> Result<()> {
    let mut previous: Option<&[u8]> = None;
    for (key_bytes, locator) in arena.iter() {
        if previous == Some(key_bytes) {
            return Err(AeroError::new(
                ErrorCode::DataCorruption,
                format!(
                    "two documents of {}/{} share the index key of field '{}' (duplicate _id); one is on page {}",
                    tree.schema_id, tree.schema_version, tree.field, locator.page
                ),
            )
            .detail("page", locator.page.0));
        }
        previous = Some(key_bytes);
    }
    Ok(())
}

/// `_id` uniqueness across the versions of each collection, from the
/// `_id` keys of every version of the collections that have several.
fn check_collections(by_collection: BTreeMap<String, Vec<(Vec<u8>, Locator)>>) -> Result<()> {
    for (collection, mut keys) in by_collection {
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(AeroError::new(
                ErrorCode::DataCorruption,
                format!("collection {collection} holds two documents with the same _id (pages {} and {})", pair[0].1.page, pair[1].1.page),
            )
            .detail("page", pair[1].1.page.0));
        }
    }
    Ok(())
}

/// What [`rebuild`] refuses, without building a tree: `_id` uniqueness per
/// schema version and per collection. (A key of any other index ends with
/// the `_id`, so two equal keys there mean two equal `_id`s of one version,
/// which this finds too.) Only the `_id` arenas are sorted.
pub fn check_unique_ids(verified: &mut Verified, report: &mut RecoveryReport) -> Result<()> {
    let started = Instant::now();
    let mut id_arenas: BTreeMap<TreeId, KeyRuns> = BTreeMap::new();
    let trees: Vec<TreeId> = verified.arenas.keys().filter(|tree| tree.field == "_id").cloned().collect();
    for tree in trees {
        if let Some(arena) = verified.arenas.remove(&tree) {
            id_arenas.insert(tree, arena);
        }
    }
    verified.arenas.clear();
    let mut by_collection: BTreeMap<String, Vec<(Vec<u8>, Locator)>> = BTreeMap::new();
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for (tree, arena) in &id_arenas {
        if !arena.is_empty() {
            *versions.entry(tree.schema_id.clone()).or_default() += 1;
        }
    }
    for (tree, arena) in &id_arenas {
        check_sorted_arena(tree, arena)?;
        report.index_entries += arena.len() as u64;
        if versions.get(&tree.schema_id).is_some_and(|count| *count > 1) {
            by_collection.entry(tree.schema_id.clone()).or_default().extend(arena.iter().map(|(key, locator)| (key.to_vec(), locator)));
        }
    }
    check_collections(by_collection)?;
    report.rebuild_ms = started.elapsed().as_millis() as u64;
    Ok(())
}

/// Sorts the collected keys, checks `_id` uniqueness per collection and
/// bulk loads every tree.
pub fn rebuild(indexes: &mut Indexes, verified: &mut Verified, report: &mut RecoveryReport) -> Result<()> {
    let started = Instant::now();
    let mut id_keys_by_collection: BTreeMap<String, Vec<(Vec<u8>, Locator)>> = BTreeMap::new();
    let mut versions_with_documents: BTreeMap<String, usize> = BTreeMap::new();
    for (tree, arena) in verified.arenas.iter() {
        if tree.field == "_id" && !arena.is_empty() {
            *versions_with_documents.entry(tree.schema_id.clone()).or_default() += 1;
        }
    }
    // The largest trees first, and each tree's keys freed once it is
    // loaded: the keys shrink while the index pages grow, which keeps the
    // peak of the two together lower than holding every key to the end.
    let mut trees: Vec<(TreeId, KeyRuns)> = std::mem::take(&mut verified.arenas).into_iter().collect();
    trees.sort_by_key(|(_, runs)| std::cmp::Reverse(runs.key_bytes()));
    let mut loaded = 0usize;
    for (tree, arena) in trees {
        let tree = &tree;
        // Equal keys (a duplicate `_id`) are refused by the bulk load, with
        // the message `check_sorted_arena` gives.
        if tree.field == "_id" && versions_with_documents.get(&tree.schema_id).is_some_and(|count| *count > 1) {
            id_keys_by_collection
                .entry(tree.schema_id.clone())
                .or_default()
                .extend(arena.iter().map(|(key_bytes, locator)| (key_bytes.to_vec(), locator)));
        }
        indexes.bulk_load(tree, arena.iter())?;
        report.index_entries += arena.len() as u64;
        drop(arena);
        loaded += 1;
        if loaded == 1 {
            crash::reach("recovery_mid_rebuild");
        }
    }
    check_collections(id_keys_by_collection)?;
    report.rebuild_ms = started.elapsed().as_millis() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(keys: &[(&[u8], u64)]) -> KeyArena {
        let mut arena = KeyArena::default();
        for (key, page) in keys {
            arena.push(key, Locator { page: PageNo(*page), slot: 0 }).unwrap();
        }
        arena
    }

    fn verified(arenas: Vec<(TreeId, KeyArena)>) -> Verified {
        Verified { arenas: arenas.into_iter().map(|(tree, arena)| (tree, KeyRuns::from(arena))).collect(), ..Verified::default() }
    }

    #[test]
    fn the_check_without_trees_refuses_what_the_rebuild_refuses() {
        let id = |version: &str| TreeId::new("user", version, "_id");
        let name = TreeId::new("user", "v1", "name");
        let mut report = RecoveryReport::default();
        // Distinct _ids in two versions, and a secondary arena: accepted, and
        // the secondary arena is not kept (no tree is built from it).
        let mut ok = verified(vec![
            (id("v1"), arena(&[(b"b", 2), (b"a", 1)])),
            (id("v2"), arena(&[(b"c", 3)])),
            (name.clone(), arena(&[(b"x\x00a", 1), (b"x\x00b", 2)])),
        ]);
        check_unique_ids(&mut ok, &mut report).unwrap();
        assert!(ok.arenas.is_empty());
        assert_eq!(report.index_entries, 3);
        // Two documents of one version with one _id.
        let mut same_version = verified(vec![(id("v1"), arena(&[(b"a", 1), (b"b", 2), (b"a", 3)]))]);
        let error = check_unique_ids(&mut same_version, &mut report).unwrap_err();
        assert_eq!(error.code, ErrorCode::DataCorruption);
        assert!(error.message.contains("duplicate _id"), "{}", error.message);
        // One _id in two versions of one collection.
        let mut two_versions = verified(vec![(id("v1"), arena(&[(b"a", 1)])), (id("v2"), arena(&[(b"a", 2)]))]);
        let error = check_unique_ids(&mut two_versions, &mut report).unwrap_err();
        assert!(error.message.contains("collection user holds two documents with the same _id"), "{}", error.message);
        // The same _id in two collections is allowed.
        let mut two_collections = verified(vec![(id("v1"), arena(&[(b"a", 1)])), (TreeId::new("item", "v1", "_id"), arena(&[(b"a", 2)]))]);
        check_unique_ids(&mut two_collections, &mut report).unwrap();
    }

    #[test]
    fn the_rebuild_refuses_what_the_check_without_trees_refuses() {
        let id = |version: &str| TreeId::new("user", version, "_id");
        let rebuild_of = |arenas: Vec<(TreeId, KeyArena)>| {
            let folder = tempfile::tempdir().unwrap();
            let mut indexes = Indexes::new(crate::pager::Pager::open(crate::vfs::os(), folder.path(), ErrorCode::IndexCorruption).unwrap());
            rebuild(&mut indexes, &mut verified(arenas), &mut RecoveryReport::default())
                .map(|()| indexes.tree(&id("v1")).map(|tree| tree.entries))
        };
        assert_eq!(rebuild_of(vec![(id("v1"), arena(&[(b"b", 2), (b"a", 1)]))]).unwrap(), Some(2));
        // Two documents of one version with one _id: the bulk load finds the equal keys.
        let error = rebuild_of(vec![(id("v1"), arena(&[(b"a", 1), (b"b", 2), (b"a", 3)]))]).unwrap_err();
        assert_eq!(error.code, ErrorCode::DataCorruption);
        assert!(error.message.contains("share the index key of field '_id' (duplicate _id)"), "{}", error.message);
        // One _id in two versions of one collection.
        let error = rebuild_of(vec![(id("v1"), arena(&[(b"a", 1)])), (id("v2"), arena(&[(b"a", 2)]))]).unwrap_err();
        assert!(error.message.contains("collection user holds two documents with the same _id"), "{}", error.message);
    }
}
