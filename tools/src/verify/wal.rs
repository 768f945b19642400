//! Checks of `wal/wal.log`: the header (and its database id against the
//! MANIFEST), every record (CRC, structure, sequence numbers from 1 growing by
//! exactly 1), every page image (a sealed document-space page), and the torn
//! tail. The WAL is streamed through a bounded window; each page entry
//! (image or delta) goes to an external sort by `(page, sequence)`, so the
//! page checks can meet each page's log history in page order without the
//! history being held in memory.

use std::collections::BTreeMap;

use aerodb_format::manifest::Manifest;
use aerodb_format::page::{self, PageBytes, PageKind};
use aerodb_format::{PageNo, SeqNo};

use crate::database::{Database, WAL_FILE};
use crate::extsort::{Sorted, Sorter};
use crate::files::{ReadFile, Window};
use crate::verify::metadata::Schemas;
use crate::verify::progress::Progress;
use crate::verify::report::{Location, Report};
use crate::verify::Limits;
use crate::walscan::{ImageRef, ScanEntry, Scanner};

/// One page entry of the log, as the sort returns it.
#[derive(Clone, Copy, Debug)]
pub struct PageEntry {
    pub seq: SeqNo,
    /// The offset of the record holding the entry.
    pub record_offset: usize,
    pub image: ImageRef,
}

/// Bytes of one encoded [`PageEntry`] in the sort.
const ENTRY_RECORD_BYTES: usize = 8 + 8 + 2 + 8 + 8 + 4 + 2 + 2 + 1;

impl PageEntry {
    /// Sorts by page, then sequence number, then position in the record.
    fn encode(&self, ordinal: u16) -> [u8; ENTRY_RECORD_BYTES] {
        let mut out = [0u8; ENTRY_RECORD_BYTES];
        out[0..8].copy_from_slice(&self.image.page_no.0.to_be_bytes());
        out[8..16].copy_from_slice(&self.seq.0.to_be_bytes());
        out[16..18].copy_from_slice(&ordinal.to_be_bytes());
        out[18..26].copy_from_slice(&(self.record_offset as u64).to_le_bytes());
        out[26..34].copy_from_slice(&(self.image.image_offset as u64).to_le_bytes());
        out[34..38].copy_from_slice(&(self.image.image_bytes as u32).to_le_bytes());
        out[38..40].copy_from_slice(&self.image.lower.to_le_bytes());
        out[40..42].copy_from_slice(&self.image.upper.to_le_bytes());
        out[42] = u8::from(self.image.delta);
        out
    }

    fn decode(bytes: &[u8]) -> PageEntry {
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let le64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        PageEntry {
            seq: SeqNo(u64_at(8)),
            record_offset: le64_at(18) as usize,
            image: ImageRef {
                page_no: PageNo(u64_at(0)),
                delta: bytes[42] != 0,
                lower: u16::from_le_bytes([bytes[38], bytes[39]]),
                upper: u16::from_le_bytes([bytes[40], bytes[41]]),
                image_offset: le64_at(26) as usize,
                image_bytes: u32::from_le_bytes(bytes[34..38].try_into().expect("4 bytes")) as usize,
            },
        }
    }
}

/// What the page and index checks need to know about the WAL.
pub struct WalView {
    pub file: Option<ReadFile>,
    pub last_seq: SeqNo,
    pub file_bytes: u64,
    /// Where the records end (the file may hold zero-filled preallocated space after it).
    pub logical_end: u64,
    /// Page entries sorted by (page, sequence), one stream per part of the
    /// page space: part `i` holds the pages in `[bounds[i], bounds[i + 1])`.
    pub parts: Vec<Option<Sorted>>,
    pub bounds: Vec<u64>,
    /// Per segment the WAL logs pages of: how many, and the first.
    pub logged_segments: BTreeMap<u64, (u64, PageNo)>,
    /// The highest page the WAL logs.
    pub highest_page: Option<PageNo>,
}

/// A page's history in the log, as replay would leave it.
pub struct LoggedPage {
    /// Sequence number and record offset of the page's last entry.
    pub seq: SeqNo,
    pub record_offset: usize,
    /// The page rebuilt from its last image and the deltas after it; `None`
    /// when the image or a delta cannot be read or applied.
    pub content: Option<Box<PageBytes>>,
}

/// Reads one page's entries from a part's sorted stream, in page order.
pub struct PageHistory<'a> {
    sorted: Option<Sorted>,
    pending: Option<PageEntry>,
    wal: Window<'a>,
    failed: Option<String>,
}

/// Bytes read ahead when a page's history is read from the WAL: the entries
/// of one page usually sit close together (pages fill in log order).
const HISTORY_CHUNK_BYTES: usize = 64 * 1024;

impl<'a> PageHistory<'a> {
    pub fn new(sorted: Option<Sorted>, wal: &'a ReadFile) -> PageHistory<'a> {
        let mut history = PageHistory { sorted, pending: None, wal: Window::new(wal, HISTORY_CHUNK_BYTES), failed: None };
        history.advance();
        history
    }

    fn advance(&mut self) {
        self.pending = None;
        if let Some(sorted) = self.sorted.as_mut() {
            match sorted.next() {
                Ok(Some(bytes)) => self.pending = Some(PageEntry::decode(bytes)),
                Ok(None) => {}
                Err(error) => self.failed = Some(error.to_string()),
            }
        }
    }

    /// The next page with entries in the log.
    pub fn peek_page(&self) -> Option<PageNo> {
        self.pending.map(|entry| entry.image.page_no)
    }

    /// An error of the temporary files behind the sort, if one happened.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn bytes(&mut self, image: &ImageRef) -> Option<&[u8]> {
        let bytes = self.wal.get(image.image_offset as u64, image.image_bytes).ok()?;
        (bytes.len() == image.image_bytes).then_some(bytes)
    }

    /// Consumes the entries of `page_no` (if it is next) and rebuilds the
    /// page; a delta with no image before it, or deltas that cannot be
    /// applied or leave a page that is not a sealed document-space page with
    /// the last entry's LSN, are problems.
    pub fn take(&mut self, page_no: PageNo, report: &mut Report) -> Option<LoggedPage> {
        if self.peek_page() != Some(page_no) {
            return None;
        }
        let mut logged = LoggedPage { seq: SeqNo(0), record_offset: 0, content: None };
        let mut has_image = false;
        let mut deltas_after_image = 0u64;
        let mut delta_failed = false;
        // A failure among deltas that a later image supersedes is not
        // reported: replay starts from that image.
        let mut failure: Option<(Location, String)> = None;
        while let Some(entry) = self.pending.filter(|entry| entry.image.page_no == page_no) {
            self.advance();
            let mut location = Location::at(WAL_FILE, entry.record_offset as u64);
            location.page = Some(page_no.0);
            if !entry.image.delta {
                has_image = true;
                deltas_after_image = 0;
                delta_failed = false;
                failure = None;
                let image = entry.image;
                logged.content = self.bytes(&image).and_then(|bytes| page::restore_hole(image.lower, image.upper, bytes).ok());
            } else if !has_image {
                report.problem(
                    location,
                    format!("record seq {} logs a delta of page {page_no} with no earlier image of it (AERO_WAL_CORRUPTION)", entry.seq),
                );
                continue;
            } else {
                deltas_after_image += 1;
                let image = entry.image;
                let mut content = logged.content.take();
                let applied = match (self.bytes(&image), content.as_deref_mut()) {
                    (Some(bytes), Some(page)) => aerodb_format::wal::apply_encoded_delta(page, bytes).map_err(|error| error.to_string()),
                    (None, _) => Err("the delta cannot be read".to_string()),
                    (_, None) => Err(String::new()),
                };
                match applied {
                    Ok(()) => logged.content = content,
                    Err(error) => {
                        if !delta_failed && !error.is_empty() {
                            failure =
                                Some((location, format!("the deltas of page {page_no} cannot be applied: {error} (AERO_WAL_CORRUPTION)")));
                        }
                        delta_failed = true;
                    }
                }
            }
            logged.seq = entry.seq;
            logged.record_offset = entry.record_offset;
        }
        if let Some((location, message)) = failure {
            report.problem(location, message);
        }
        if deltas_after_image > 0 && !delta_failed {
            if let Some(content) = &logged.content {
                let mut location = Location::at(WAL_FILE, logged.record_offset as u64);
                location.page = Some(page_no.0);
                match page::verify(content, page_no) {
                    Err(error) => report.problem(
                        location,
                        format!("page {page_no} rebuilt from its image and deltas does not verify: {error} (AERO_WAL_CORRUPTION)"),
                    ),
                    Ok(header)
                        if header.lsn() != logged.seq
                            || !matches!(
                                PageKind::from_byte(header.kind),
                                Some(PageKind::Document | PageKind::Overflow | PageKind::Free)
                            ) =>
                    {
                        report.problem(
                            location,
                            format!(
                                "page {page_no} rebuilt from the WAL has LSN {} and kind {}, expected LSN {} and a document-space kind \
                                 (AERO_WAL_CORRUPTION)",
                                header.lsn(),
                                header.kind,
                                logged.seq
                            ),
                        )
                    }
                    Ok(_) => {}
                }
            }
        }
        if !has_image {
            return None;
        }
        Some(logged)
    }
}

/// Checks the WAL; `clean` (the clean-shutdown marker exists) makes a torn
/// tail corruption instead of a warning. `bounds` splits the page space into
/// parts, one sorted stream of page entries each.
#[allow(clippy::too_many_arguments)]
pub fn check_wal(
    database: &Database,
    manifest: Option<&Manifest>,
    schemas: &Schemas,
    clean: bool,
    bounds: Vec<u64>,
    limits: &Limits,
    report: &mut Report,
) -> Result<WalView, String> {
    let mut view = WalView {
        file: None,
        last_seq: SeqNo(0),
        file_bytes: 0,
        logical_end: 0,
        parts: Vec::new(),
        bounds,
        logged_segments: BTreeMap::new(),
        highest_page: None,
    };
    let file = match ReadFile::open(&database.path(WAL_FILE)) {
        Ok(file) => file,
        Err(error) => {
            report.problem(Location::file(WAL_FILE), format!("the WAL cannot be read: {error}"));
            return Ok(view);
        }
    };
    let part_count = view.bounds.len() - 1;
    let mut sorters: Vec<Sorter> = (0..part_count).map(|_| Sorter::new(limits.sorter_budget(), &limits.spill_dir)).collect();
    let mut scanner = if limits.live { Scanner::live(&file) } else { Scanner::new(&file) };
    view.file_bytes = scanner.file_bytes();
    report.count("wal_bytes", view.file_bytes);
    match scanner.header() {
        Err(error) => report
            .problem(Location::at(WAL_FILE, error.offset as u64), format!("WAL header does not decode: {error} (AERO_WAL_CORRUPTION)")),
        Ok(header) => {
            if let Some(manifest) = manifest.filter(|manifest| manifest.database_id != header.database_id) {
                report.problem(
                    Location::at(WAL_FILE, 16),
                    format!("the WAL belongs to database {}, the MANIFEST names {}", hex(&header.database_id), hex(&manifest.database_id)),
                );
            }
        }
    }
    let mut progress = Progress::new("WAL", view.file_bytes);
    // Schema versions records name that have no schema file: the boot refuses them.
    let mut missing_schemas: std::collections::BTreeSet<(String, String)> = std::collections::BTreeSet::new();
    while let Some(entry) = scanner.next() {
        match entry {
            ScanEntry::Record(record) => {
                progress.set(record.offset as u64);
                report.count("wal_records", 1);
                let location = Location::at(WAL_FILE, record.offset as u64);
                if let Some(error) = &record.sequence_error {
                    report.problem(location.clone(), format!("record seq {}: {error} (AERO_WAL_CORRUPTION)", record.seq));
                }
                let version = (record.schema_id.clone(), record.schema_version.clone());
                if !schemas.contains_key(&version) && !missing_schemas.contains(&version) {
                    report.problem(
                        location.clone(),
                        format!(
                            "record seq {} references schema {}/{}, which has no schema file (AERO_RECOVERY_SCHEMA_MISSING; \
                             reported for its first record only)",
                            record.seq, version.0, version.1
                        ),
                    );
                    missing_schemas.insert(version);
                }
                for (ordinal, image) in record.pages.iter().enumerate() {
                    if image.delta {
                        report.count("wal_page_deltas", 1);
                    } else {
                        report.count("wal_page_images", 1);
                        match scanner.bytes(image.image_offset, image.image_bytes) {
                            Ok(bytes) => check_image(bytes, record.seq, image, &location, report),
                            Err(error) => {
                                report.problem(location.clone(), format!("image of page {} cannot be read: {error}", image.page_no))
                            }
                        }
                    }
                    let page_no = image.page_no;
                    let logged = view.logged_segments.entry(page_no.segment()).or_insert((0, page_no));
                    logged.0 += 1;
                    logged.1 = logged.1.min(page_no);
                    view.highest_page = view.highest_page.max(Some(page_no));
                    let part = view.bounds[1..].iter().position(|&bound| page_no.0 < bound).unwrap_or(part_count - 1);
                    let entry = PageEntry { seq: record.seq, record_offset: record.offset, image: *image };
                    sorters[part]
                        .push(&entry.encode(ordinal as u16))
                        .map_err(|error| format!("cannot sort the WAL's page entries: {error}"))?;
                }
            }
            ScanEntry::Corrupt { offset, skipped_bytes, error } => report.problem(
                Location::at(WAL_FILE, offset as u64),
                format!(
                    "damaged record at offset {offset} ({error}); {skipped_bytes} bytes up to the next valid record: \
                     corruption, not a torn tail (AERO_WAL_CORRUPTION)"
                ),
            ),
            ScanEntry::Torn { offset, bytes, reason } if clean => report.problem(
                Location::at(WAL_FILE, offset as u64),
                format!(
                    "torn tail of {bytes} bytes at offset {offset} after a clean shutdown: corruption, since a clean \
                     shutdown leaves no unacknowledged write (AERO_WAL_CORRUPTION): {reason}"
                ),
            ),
            ScanEntry::Torn { offset, bytes, reason } if limits.live => report.note(
                Location::at(WAL_FILE, offset as u64),
                format!(
                    "{bytes} bytes at offset {offset} are not a complete record yet (a write in flight in the running server): {reason}"
                ),
            ),
            ScanEntry::Torn { offset, bytes, reason } => report.warning(
                Location::at(WAL_FILE, offset as u64),
                format!("torn tail of {bytes} bytes at offset {offset} (a write that was never acknowledged): {reason}"),
            ),
            ScanEntry::Unreadable { offset, error } => {
                report.problem(Location::at(WAL_FILE, offset as u64), format!("the WAL cannot be read from offset {offset} on: {error}"))
            }
        }
    }
    progress.finish();
    view.last_seq = scanner.last_seq();
    view.logical_end = scanner.logical_end();
    report.count("wal_logical_bytes", view.logical_end);
    let spilled: u64 = sorters.iter().map(Sorter::spilled_bytes).sum();
    report.count("sort_spilled_bytes", spilled);
    for sorter in sorters {
        view.parts.push(Some(sorter.finish().map_err(|error| format!("cannot sort the WAL's page entries: {error}"))?));
    }
    view.file = Some(file);
    Ok(view)
}

/// A logged image is a sealed page of the document space.
fn check_image(bytes: &[u8], seq: SeqNo, image: &ImageRef, location: &Location, report: &mut Report) {
    let page_no = image.page_no;
    let mut location = location.clone();
    location.page = Some(page_no.0);
    let restored = match page::restore_hole(image.lower, image.upper, bytes) {
        Ok(restored) => restored,
        Err(error) => {
            report.problem(location, format!("image of page {page_no} in record seq {seq} cannot be rebuilt: {error}"));
            return;
        }
    };
    match page::verify(&restored, page_no) {
        Err(error) => report.problem(location, format!("image of page {page_no} in record seq {seq} does not verify: {error}")),
        Ok(header) => {
            if matches!(PageKind::from_byte(header.kind), Some(PageKind::BtreeLeaf | PageKind::BtreeInternal)) {
                report.problem(
                    location,
                    format!("record seq {seq} logs page {page_no} as a B-tree node; only document-space pages are logged"),
                );
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
