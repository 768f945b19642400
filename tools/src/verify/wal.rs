//! Checks of `wal/wal.log`: the header (and its database id against the
//! MANIFEST), every record (CRC, structure, sequence numbers from 1 growing by
//! exactly 1), every page image (a sealed document-space page), and the torn
//! tail. Builds the map of each page's last image, which the page checks use.

use std::collections::BTreeMap;

use aerodb_format::manifest::Manifest;
use aerodb_format::page::{self, PageKind};
use aerodb_format::{PageNo, SeqNo};

use crate::database::{Database, WAL_FILE};
use crate::files::{self, FileBytes};
use crate::verify::report::{Location, Report};
use crate::walscan::{ImageRef, ScanEntry, WalScan};

/// The last whole image of one page in the WAL, and the deltas logged
/// after it (in log order): together, the page's content by the log.
#[derive(Clone, Debug)]
pub struct LastImage {
    /// The sequence number of the page's last entry.
    pub seq: SeqNo,
    /// The offset of the record of the page's last entry.
    pub record_offset: usize,
    pub image: ImageRef,
    pub deltas: Vec<ImageRef>,
}

/// What the page and index checks need to know about the WAL.
pub struct WalView {
    pub bytes: Option<FileBytes>,
    pub last_images: BTreeMap<PageNo, LastImage>,
    pub last_seq: SeqNo,
    pub file_bytes: u64,
    /// Where the records end (the file may hold zero-filled preallocated space after it).
    pub logical_end: u64,
}

impl WalView {
    /// The page as the log leaves it: its last image with every later delta applied.
    pub fn restore(&self, last: &LastImage) -> Option<Box<page::PageBytes>> {
        let wal = self.bytes.as_deref()?;
        let mut page = last.image.restore(wal).ok()?;
        for delta in &last.deltas {
            delta.apply_delta(wal, &mut page).ok()?;
        }
        Some(page)
    }
}

/// Checks the WAL; `clean` (the clean-shutdown marker exists) makes a torn
/// tail corruption instead of a warning.
pub fn check_wal(database: &Database, allow_map: bool, manifest: Option<&Manifest>, clean: bool, report: &mut Report) -> WalView {
    let mut view = WalView { bytes: None, last_images: BTreeMap::new(), last_seq: SeqNo(0), file_bytes: 0, logical_end: 0 };
    let bytes = match files::load(&database.path(WAL_FILE), allow_map) {
        Ok(bytes) => bytes,
        Err(error) => {
            report.problem(Location::file(WAL_FILE), format!("the WAL cannot be read: {error}"));
            return view;
        }
    };
    let scan = WalScan::scan(&bytes);
    view.file_bytes = bytes.len() as u64;
    report.count("wal_bytes", view.file_bytes);
    match &scan.header {
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
    for entry in &scan.entries {
        match entry {
            ScanEntry::Record(record) => {
                report.count("wal_records", 1);
                let location = Location::at(WAL_FILE, record.offset as u64);
                if let Some(error) = &record.sequence_error {
                    report.problem(location.clone(), format!("record seq {}: {error} (AERO_WAL_CORRUPTION)", record.seq));
                }
                for image in &record.pages {
                    if image.delta {
                        report.count("wal_page_deltas", 1);
                        match view.last_images.get_mut(&image.page_no) {
                            Some(last) => {
                                last.deltas.push(*image);
                                last.seq = record.seq;
                                last.record_offset = record.offset;
                            }
                            None => {
                                let mut location = location.clone();
                                location.page = Some(image.page_no.0);
                                report.problem(
                                    location,
                                    format!(
                                        "record seq {} logs a delta of page {} with no earlier image of it (AERO_WAL_CORRUPTION)",
                                        record.seq, image.page_no
                                    ),
                                );
                            }
                        }
                        continue;
                    }
                    report.count("wal_page_images", 1);
                    check_image(&bytes, record.seq, image, &location, report);
                    let last = LastImage { seq: record.seq, record_offset: record.offset, image: *image, deltas: Vec::new() };
                    view.last_images.insert(image.page_no, last);
                }
            }
            ScanEntry::Corrupt { offset, skipped_bytes, error } => report.problem(
                Location::at(WAL_FILE, *offset as u64),
                format!(
                    "damaged record at offset {offset} ({error}); {skipped_bytes} bytes up to the next valid record: \
                     corruption, not a torn tail (AERO_WAL_CORRUPTION)"
                ),
            ),
            ScanEntry::Torn { offset, bytes, reason } if clean => report.problem(
                Location::at(WAL_FILE, *offset as u64),
                format!(
                    "torn tail of {bytes} bytes at offset {offset} after a clean shutdown: corruption, since a clean \
                     shutdown leaves no unacknowledged write (AERO_WAL_CORRUPTION): {reason}"
                ),
            ),
            ScanEntry::Torn { offset, bytes, reason } => report.warning(
                Location::at(WAL_FILE, *offset as u64),
                format!("torn tail of {bytes} bytes at offset {offset} (a write that was never acknowledged): {reason}"),
            ),
        }
    }
    view.last_seq = scan.last_seq();
    // A page with deltas: its content rebuilt from the log must be a sealed
    // document-space page carrying its last entry's sequence number.
    for (page_no, last) in &view.last_images {
        if last.deltas.is_empty() {
            continue;
        }
        let mut page = match last.image.restore(&bytes) {
            Ok(page) => page,
            Err(_) => continue, // reported by check_image
        };
        let mut location = Location::at(WAL_FILE, last.record_offset as u64);
        location.page = Some(page_no.0);
        if let Some(error) = last.deltas.iter().find_map(|delta| delta.apply_delta(&bytes, &mut page).err()) {
            report.problem(location, format!("the deltas of page {page_no} cannot be applied: {error} (AERO_WAL_CORRUPTION)"));
            continue;
        }
        match page::verify(&page, *page_no) {
            Err(error) => report.problem(location, format!("page {page_no} rebuilt from its image and deltas does not verify: {error} (AERO_WAL_CORRUPTION)")),
            Ok(header) if header.lsn() != last.seq || !matches!(PageKind::from_byte(header.kind), Some(PageKind::Document | PageKind::Overflow | PageKind::Free)) => report.problem(
                location,
                format!("page {page_no} rebuilt from the WAL has LSN {} and kind {}, expected LSN {} and a document-space kind (AERO_WAL_CORRUPTION)", header.lsn(), header.kind, last.seq),
            ),
            Ok(_) => {}
        }
    }
    view.logical_end = scan.logical_end as u64;
    report.count("wal_logical_bytes", view.logical_end);
    view.bytes = Some(bytes);
    view
}

/// A logged image is a sealed page of the document space.
fn check_image(wal: &[u8], seq: SeqNo, image: &ImageRef, location: &Location, report: &mut Report) {
    let page_no = image.page_no;
    let mut location = location.clone();
    location.page = Some(page_no.0);
    let restored = match image.restore(wal) {
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
