//! The document heap: documents in slotted pages of the document page
//! space, large ones in overflow chains.
//!
//! A write never touches a segment directly. It is first *planned*: the
//! heap copies every page the write changes into a [`PagePlan`] and edits
//! the copies. The caller seals the copies, logs them in one WAL record,
//! and hands the plan to [`Heap::stage`]: the images join the *staged*
//! pages, an overlay in memory that every later read and plan sees (so the
//! next write of a group commit is planned exactly as if this one had been
//! applied), and the free-space maps follow them. Only once the group's
//! records are durable does [`Heap::apply_staged`] copy the staged images
//! into the mapped segments; a failed append calls [`Heap::discard_staged`],
//! which restores the maps from the committed pages. Nothing reaches a
//! segment before its WAL record is durable. The free-space maps are
//! derived: rebuilt at boot.

use std::collections::{BTreeMap, BTreeSet};

use aerodb_format::btree::Locator;
use aerodb_format::page::{self, new_page, PageBytes, PageHeader, PageKind};
use aerodb_format::slotted::{self, SlotRecord, INLINE_RECORD_MAX_BYTES, OVERFLOW_DATA_BYTES};
use aerodb_format::{PageNo, SeqNo, DOC_SIZE_MAX_BYTES};

use crate::crash;
use crate::error::{corruption, AeroError, ErrorCode, Result};
use crate::pager::Pager;

/// Document pages with less free space than this are not offered for inserts.
const FREE_TRACK_MIN_BYTES: u16 = 24;
/// Longest overflow chain a valid document can have.
pub const OVERFLOW_CHAIN_MAX_PAGES: usize = DOC_SIZE_MAX_BYTES.div_ceil(OVERFLOW_DATA_BYTES) + 1;

/// The pages one write changes, as edited copies.
#[derive(Default)]
pub struct PagePlan {
    pub pages: BTreeMap<PageNo, Box<PageBytes>>,
    /// Page count (high-water mark) after this write.
    pub page_count: u64,
    taken_free_pages: BTreeSet<PageNo>,
}

impl PagePlan {
    /// Seals every page with `lsn` and returns them in page order.
    pub fn seal(&mut self, lsn: SeqNo) -> Vec<&PageBytes> {
        for page in self.pages.values_mut() {
            page::seal(page, lsn);
        }
        self.pages.values().map(|page| &**page).collect()
    }
}

pub struct Heap {
    pager: Pager,
    /// Pages `[0, page_count)` may hold data; later pages are unwritten.
    /// Counts the staged pages too.
    page_count: u64,
    /// The page count of the pages in the segments (without staged pages).
    committed_page_count: u64,
    /// Sealed images of planned writes whose WAL records are not yet
    /// durable: read in place of the segment page, never written to a
    /// segment before [`Heap::apply_staged`].
    staged: BTreeMap<PageNo, Box<PageBytes>>,
    /// `(free bytes, page)` of document pages with room.
    free_by_size: BTreeSet<(u16, PageNo)>,
    free_of_page: BTreeMap<PageNo, u16>,
    /// Free pages (kind Free) ready for reuse.
    free_pages: BTreeSet<PageNo>,
    /// Set once the boot has verified every page in full (docs/BOOT.md,
    /// "Pages checked once"): reads then check a page's header only.
    pages_verified: bool,
}

impl Heap {
    pub fn new(pager: Pager, page_count: u64) -> Heap {
        Heap {
            pager,
            page_count,
            committed_page_count: page_count,
            staged: BTreeMap::new(),
            pages_verified: false,
            free_by_size: BTreeSet::new(),
            free_of_page: BTreeMap::new(),
            free_pages: BTreeSet::new(),
        }
    }

    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    pub fn new_plan(&self) -> PagePlan {
        PagePlan { page_count: self.page_count, ..PagePlan::default() }
    }

    /// The page as the writes so far left it (staged or in a segment),
    /// checked (checksum, self number, kind known).
    pub fn checked_page(&self, page_no: PageNo) -> Result<&PageBytes> {
        if let Some(page) = self.staged.get(&page_no) {
            // Sealed by this process from a checked page: nothing else wrote it.
            return Ok(page);
        }
        let Some(page) = self.pager.page(page_no).filter(|_| page_no.0 < self.page_count) else {
            return Err(AeroError::new(ErrorCode::DataCorruption, format!("page {page_no} is past the end of the document space"))
                .detail("page", page_no.0));
        };
        // Before the boot's full check, every read checks the whole page;
        // after it, every page below `page_count` was verified by the boot
        // or sealed by this process when it wrote it, so a read checks the
        // header only (its kind, flags, own number and hole bounds), which
        // still refuses a page whose header was damaged since.
        let checked = if self.pages_verified {
            page::check_header(&PageHeader::read(page), page_no)
        } else {
            page::verify(page, page_no).map(|_| ())
        };
        checked.map_err(|error| {
            corruption(
                ErrorCode::DataCorruption,
                &self.pager.segment_path(page_no),
                Some(page_no.0),
                &error.shifted(page_no.offset_in_segment() as usize),
            )
        })?;
        Ok(page)
    }

    /// Called once the boot has verified every page of the document space
    /// in full: later reads check page headers only.
    pub fn mark_pages_verified(&mut self) {
        self.pages_verified = true;
    }

    fn plan_page<'p>(&self, plan: &'p mut PagePlan, page_no: PageNo) -> Result<&'p mut PageBytes> {
        if let std::collections::btree_map::Entry::Vacant(e) = plan.pages.entry(page_no) {
            let copy = Box::new(*self.checked_page(page_no)?);
            e.insert(copy);
        }
        match plan.pages.get_mut(&page_no) {
            Some(page) => Ok(page),
            None => Err(AeroError::invariant_broken("planned page vanished")),
        }
    }

    /// Takes a page for new content: the lowest free page, else a new one.
    fn plan_allocate(&self, plan: &mut PagePlan, kind: PageKind) -> PageNo {
        let reusable =
            self.free_pages.iter().find(|page_no| !plan.taken_free_pages.contains(page_no) && !plan.pages.contains_key(page_no)).copied();
        let page_no = match reusable {
            Some(page_no) => {
                plan.taken_free_pages.insert(page_no);
                page_no
            }
            None => {
                plan.page_count += 1;
                PageNo(plan.page_count - 1)
            }
        };
        plan.pages.insert(page_no, new_page(kind, page_no));
        page_no
    }

    /// Plans storing a document record; returns where it will live.
    pub fn plan_insert(&self, plan: &mut PagePlan, record: &[u8]) -> Result<Locator> {
        if record.len() > DOC_SIZE_MAX_BYTES {
            return Err(AeroError::invariant_broken("document over the size cap reached the heap"));
        }
        let slot_record = if record.len() < INLINE_RECORD_MAX_BYTES {
            slotted::encode_inline(record)
        } else {
            let chunks: Vec<&[u8]> = record.chunks(OVERFLOW_DATA_BYTES).collect();
            let pages: Vec<PageNo> = chunks.iter().map(|_| self.plan_allocate(plan, PageKind::Overflow)).collect();
            for (index, chunk) in chunks.iter().enumerate() {
                let next = pages.get(index + 1).copied().unwrap_or(PageNo::NONE);
                let page = self.plan_page(plan, pages[index])?;
                slotted::fill_overflow_page(page, chunk, next.0);
            }
            slotted::encode_overflow_stub(record.len() as u32, pages[0].0)
        };
        // Best fit among the document pages this plan already edits and the committed ones.
        let needed = slot_record.len() + slotted::SLOT_BYTES;
        let planned: Vec<PageNo> = plan
            .pages
            .iter()
            .filter(|(_, page)| PageHeader::read(page).kind == PageKind::Document as u8)
            .map(|(page_no, _)| *page_no)
            .collect();
        for page_no in planned {
            let page = self.plan_page(plan, page_no)?;
            if let Some(slot) = slotted::insert(page, &slot_record) {
                return Ok(Locator { page: page_no, slot });
            }
        }
        let candidates: Vec<PageNo> =
            self.free_by_size.range((needed.min(u16::MAX as usize) as u16, PageNo(0))..).take(4).map(|(_, page_no)| *page_no).collect();
        for page_no in candidates {
            let page = self.plan_page(plan, page_no)?;
            if let Some(slot) = slotted::insert(page, &slot_record) {
                return Ok(Locator { page: page_no, slot });
            }
        }
        let page_no = self.plan_allocate(plan, PageKind::Document);
        let page = self.plan_page(plan, page_no)?;
        match slotted::insert(page, &slot_record) {
            Some(slot) => Ok(Locator { page: page_no, slot }),
            None => Err(AeroError::invariant_broken("a record does not fit an empty page")),
        }
    }

    /// Plans removing the document at `locator` (and freeing its overflow chain).
    pub fn plan_delete(&self, plan: &mut PagePlan, locator: Locator) -> Result<()> {
        let chain = {
            let page = self.plan_page(plan, locator.page)?;
            let Some(bytes) = slotted::record(page, locator.slot) else {
                return Err(AeroError::new(
                    ErrorCode::IndexCorruption,
                    format!("index points at empty slot {} of page {}", locator.slot, locator.page),
                ));
            };
            match slotted::decode_slot_record(bytes) {
                Ok(SlotRecord::Overflow { first_page, .. }) => Some(PageNo(first_page)),
                Ok(SlotRecord::Inline(_)) => None,
                Err(error) => {
                    return Err(corruption(ErrorCode::DataCorruption, &self.pager.segment_path(locator.page), Some(locator.page.0), &error))
                }
            }
        };
        if let Some(first) = chain {
            for page_no in self.overflow_chain(first)? {
                plan.pages.insert(page_no, new_page(PageKind::Free, page_no));
            }
        }
        let page = self.plan_page(plan, locator.page)?;
        slotted::delete(page, locator.slot);
        Ok(())
    }

    /// Plans replacing the document at `locator`; returns its new location.
    pub fn plan_update(&self, plan: &mut PagePlan, locator: Locator, record: &[u8]) -> Result<Locator> {
        if record.len() < INLINE_RECORD_MAX_BYTES {
            let page = self.plan_page(plan, locator.page)?;
            let inline_now =
                matches!(slotted::record(page, locator.slot).map(slotted::decode_slot_record), Some(Ok(SlotRecord::Inline(_))));
            if inline_now && slotted::replace(page, locator.slot, &slotted::encode_inline(record)) {
                return Ok(locator);
            }
        }
        self.plan_delete(plan, locator)?;
        self.plan_insert(plan, record)
    }

    /// The pages of the overflow chain starting at `first`, checked.
    fn overflow_chain(&self, first: PageNo) -> Result<Vec<PageNo>> {
        let mut pages = Vec::new();
        let mut next = first;
        while !next.is_none() {
            if pages.len() >= OVERFLOW_CHAIN_MAX_PAGES {
                return Err(AeroError::new(
                    ErrorCode::DataCorruption,
                    format!("overflow chain from page {first} is longer than {OVERFLOW_CHAIN_MAX_PAGES} pages"),
                )
                .detail("page", first.0));
            }
            let page = self.checked_page(next)?;
            slotted::check_overflow_page(page)
                .map_err(|error| corruption(ErrorCode::DataCorruption, &self.pager.segment_path(next), Some(next.0), &error))?;
            pages.push(next);
            next = PageHeader::read(page).next();
        }
        Ok(pages)
    }

    /// The document record bytes at `locator`: borrowed from the page when
    /// the record is inline, read from its overflow chain otherwise.
    pub fn record_bytes(&self, locator: Locator) -> Result<std::borrow::Cow<'_, [u8]>> {
        let page = self.checked_page(locator.page)?;
        if PageHeader::read(page).kind != PageKind::Document as u8 {
            return Err(AeroError::new(
                ErrorCode::IndexCorruption,
                format!("index points at page {} which is not a document page", locator.page),
            ));
        }
        let Some(bytes) = slotted::record(page, locator.slot) else {
            return Err(AeroError::new(
                ErrorCode::IndexCorruption,
                format!("index points at empty slot {} of page {}", locator.slot, locator.page),
            ));
        };
        match slotted::decode_slot_record(bytes)
            .map_err(|error| corruption(ErrorCode::DataCorruption, &self.pager.segment_path(locator.page), Some(locator.page.0), &error))?
        {
            SlotRecord::Inline(document) => Ok(std::borrow::Cow::Borrowed(document)),
            SlotRecord::Overflow { length, first_page } => {
                Ok(std::borrow::Cow::Owned(self.read_overflow(PageNo(first_page), length as usize)?))
            }
        }
    }

    /// The document record bytes at `locator`, following an overflow chain.
    pub fn read_record(&self, locator: Locator) -> Result<Vec<u8>> {
        self.record_bytes(locator).map(std::borrow::Cow::into_owned)
    }

    /// Concatenates an overflow chain, checking it holds exactly `length` bytes.
    pub fn read_overflow(&self, first: PageNo, length: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(length);
        let chain = self.overflow_chain(first)?;
        // Every page of a chain is full but the last: a longer chain is not
        // one the engine wrote (verify's rule too).
        let needed = slotted::overflow_pages_needed(length);
        if chain.len() > needed {
            return Err(AeroError::new(
                ErrorCode::DataCorruption,
                format!("overflow chain from page {first} has {} pages, more than the {needed} its {length} bytes need", chain.len()),
            )
            .detail("page", first.0));
        }
        for page_no in chain {
            let page = self.checked_page(page_no)?;
            let data = slotted::check_overflow_page(page)
                .map_err(|error| corruption(ErrorCode::DataCorruption, &self.pager.segment_path(page_no), Some(page_no.0), &error))?;
            out.extend_from_slice(data);
            if out.len() > length {
                break;
            }
        }
        if out.len() != length {
            return Err(AeroError::new(
                ErrorCode::DataCorruption,
                format!("overflow chain from page {first} holds {} bytes, its stub says {length}", out.len()),
            )
            .detail("page", first.0));
        }
        Ok(out)
    }

    /// Makes space for the plan's new pages (creates segment files).
    pub fn prepare(&mut self, plan: &PagePlan) -> Result<()> {
        self.pager.ensure_capacity(plan.page_count)
    }

    /// Adds a sealed plan to the staged pages: later reads and plans see
    /// it, the segments do not (yet).
    pub fn stage(&mut self, plan: PagePlan) {
        for (page_no, image) in plan.pages {
            self.note_page(page_no, &image);
            self.staged.insert(page_no, image);
        }
        self.page_count = self.page_count.max(plan.page_count);
    }

    /// Whether any planned write is staged and not yet applied.
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty() || self.page_count != self.committed_page_count
    }

    /// Copies every staged image into the segments: the group's WAL
    /// records are durable.
    pub fn apply_staged(&mut self, durable_seq: SeqNo) -> Result<()> {
        let staged = std::mem::take(&mut self.staged);
        for (applied, (page_no, image)) in staged.iter().enumerate() {
            if page_no.0 >= self.page_count {
                return Err(AeroError::invariant_broken(format!("staged page {page_no} is past the page count {}", self.page_count)));
            }
            // The image is sealed (its checksum holds), carries its own
            // number and an LSN of a durable record.
            let header = aerodb_format::page::verify(image, *page_no)
                .map_err(|error| AeroError::invariant_broken(format!("staged image of page {page_no} is not sealed: {error}")))?;
            if header.page_no() != *page_no || header.lsn().0 == 0 || header.lsn() > durable_seq {
                return Err(AeroError::invariant_broken(format!(
                    "staged image of page {page_no} says page {} LSN {}, past the durable sequence {durable_seq}",
                    header.page_no(),
                    header.lsn()
                )));
            }
            self.pager.write_page(*page_no, image)?;
            if applied == 0 {
                crash::reach("storage_mid_apply");
            }
        }
        self.committed_page_count = self.page_count;
        Ok(())
    }

    /// Forgets every staged image (their WAL records were not written):
    /// the free-space maps and the page count return to the segments' state.
    pub fn discard_staged(&mut self) {
        let staged = std::mem::take(&mut self.staged);
        for page_no in staged.keys() {
            if let Some(old) = self.free_of_page.remove(page_no) {
                self.free_by_size.remove(&(old, *page_no));
            }
            self.free_pages.remove(page_no);
            if page_no.0 < self.committed_page_count {
                if let Some(page) = self.pager.page(*page_no) {
                    let copy = Box::new(*page);
                    self.note_page(*page_no, &copy);
                }
            }
        }
        self.page_count = self.committed_page_count;
    }

    /// Updates the free-space maps for a page's new content.
    pub fn note_page(&mut self, page_no: PageNo, page: &PageBytes) {
        let kind = PageKind::from_byte(PageHeader::read(page).kind);
        let free = if kind == Some(PageKind::Document) { slotted::free_bytes(page) as u16 } else { 0 };
        self.note_facts(page_no, kind, free);
    }

    /// [`Heap::note_page`] for the page as it is in its segment (recovery,
    /// after verification).
    pub fn note_segment_page(&mut self, page_no: PageNo) {
        let Some(page) = self.pager.page(page_no) else { return };
        let kind = PageKind::from_byte(PageHeader::read(page).kind);
        let free = if kind == Some(PageKind::Document) { slotted::free_bytes(page) as u16 } else { 0 };
        self.note_facts(page_no, kind, free);
    }

    fn note_facts(&mut self, page_no: PageNo, kind: Option<PageKind>, free: u16) {
        if let Some(old) = self.free_of_page.remove(&page_no) {
            self.free_by_size.remove(&(old, page_no));
        }
        self.free_pages.remove(&page_no);
        match kind {
            Some(PageKind::Document) => {
                if free >= FREE_TRACK_MIN_BYTES {
                    self.free_of_page.insert(page_no, free);
                    self.free_by_size.insert((free, page_no));
                }
            }
            Some(PageKind::Free) => {
                self.free_pages.insert(page_no);
            }
            _ => {}
        }
    }

    /// The segment page as it is on disk (recovery's access below the
    /// staged pages and the page count: replay and verification).
    pub fn segment_page(&self, page_no: PageNo) -> Option<&PageBytes> {
        self.pager.page(page_no)
    }

    /// Overwrites a segment page (replay).
    pub fn write_segment_page(&mut self, page_no: PageNo, page: &PageBytes) -> Result<()> {
        self.pager.write_page(page_no, page)
    }

    /// Pages the segments hold.
    pub fn capacity_pages(&self) -> u64 {
        self.pager.capacity_pages()
    }

    /// Creates segments until page `page_count - 1` exists.
    pub fn ensure_capacity(&mut self, page_count: u64) -> Result<()> {
        self.pager.ensure_capacity(page_count)
    }

    /// Path of the segment file holding `page_no`.
    pub fn segment_path(&self, page_no: PageNo) -> std::path::PathBuf {
        self.pager.segment_path(page_no)
    }

    /// Writes every segment back to disk and syncs it (graceful shutdown).
    pub fn flush(&self) -> Result<()> {
        self.pager.flush()
    }

    /// Sets the high-water mark found by recovery.
    pub fn set_page_count(&mut self, page_count: u64) {
        self.page_count = page_count;
        self.committed_page_count = page_count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerodb_format::page::{new_page, seal, PageKind};

    fn heap(folder: &std::path::Path) -> Heap {
        Heap::new(Pager::open_durable(crate::vfs::os(), folder, ErrorCode::DataCorruption).unwrap(), 0)
    }

    fn plan(image: Box<PageBytes>) -> PagePlan {
        PagePlan { pages: [(PageNo(0), image)].into_iter().collect(), page_count: 1, taken_free_pages: BTreeSet::new() }
    }

    #[test]
    fn only_a_sealed_image_of_a_durable_record_reaches_a_segment() {
        let folder = tempfile::tempdir().unwrap();
        let mut heap = heap(folder.path());
        let mut image = new_page(PageKind::Document, PageNo(0));
        seal(&mut image, SeqNo(1));
        // Sealed, LSN 1, but the durable sequence is 0: refused.
        let staged = plan(image.clone());
        heap.prepare(&staged).unwrap();
        heap.stage(staged);
        assert_eq!(heap.apply_staged(SeqNo(0)).unwrap_err().code, ErrorCode::InternalInvariant);
        // A byte changed after sealing: refused, and the segment keeps zeros.
        let mut damaged = image.clone();
        damaged[aerodb_format::PAGE_SIZE_BYTES - 1] ^= 1;
        heap.stage(plan(damaged));
        let error = heap.apply_staged(SeqNo(1)).unwrap_err();
        assert!(error.message.contains("not sealed"), "{}", error.message);
        assert!(heap.segment_page(PageNo(0)).unwrap().iter().all(|&byte| byte == 0));
        // Sealed and durable: applied.
        heap.stage(plan(image.clone()));
        heap.apply_staged(SeqNo(1)).unwrap();
        assert_eq!(heap.segment_page(PageNo(0)).unwrap()[..], image[..]);
    }
}
