//! Checks of the index space (`indexes/`) after a clean shutdown: the tree
//! directory, every node of every tree, and index ↔ document agreement in
//! both directions. (Indexes are derived and rebuilt at every start, so they
//! are only trustworthy after a clean shutdown; otherwise these checks are
//! skipped with a note.)
//!
//! A tree is walked depth first without recursion (one frame per level, so
//! memory follows the tree's height, not its size); children are visited
//! left to right, so the leaves come out in key order. Per node:
//! `page::verify`, `btree::check_node` (cells, key order inside the node),
//! level = height - 1 - depth (so every leaf sits at the same depth), keys
//! inside the range the parent gives the node. Then, over the whole tree: key
//! order across leaves, leaf sibling links, and each internal entry's count
//! against the real number of entries below it. A page reached twice (inside
//! one tree or from two trees) is a problem and is not walked again, so the
//! walk ends on any input.
//!
//! Agreement in bounded memory: every leaf entry the walks meet and every
//! entry the documents should have (from the document checks) are sorted
//! externally by (tree, key) and merged; an entry with no document is then
//! looked up by the locator it holds, in locator order.

use std::collections::BTreeSet;

use serde_json::Value;

use aerodb_format::btree::{self, Locator};
use aerodb_format::key;
use aerodb_format::page::{self, PageHeader, HEADER_BYTES};
use aerodb_format::PageNo;

use aerodb_format::key::KeyValue;
use aerodb_format::slotted::{self, SlotRecord};

use crate::database::{Database, DATA_DIR, INDEXES_DIR, INDEX_DIRECTORY_FILE};
use crate::describe::key_text;
use crate::extsort::{Sorted, Sorter};
use crate::files::read_small;
use crate::space::PageSpace;
use crate::verify::documents::{entry_prefix, split_prefix, DocumentOutput, ExpectedEntry, TreeIds};
use crate::verify::metadata::Schemas;
use crate::verify::progress::Progress;
use crate::verify::report::{Location, Report};
use crate::verify::wal::WalView;
use crate::verify::Limits;

/// Tallest tree accepted in `directory.json` (a tree of fanout 3 this tall
/// would hold more entries than any database can).
pub const TREE_HEIGHT_MAX: u64 = 48;

/// Byte offsets of header fields (FORMAT.md, "Pages").
const LEVEL_OFFSET: usize = 12;
const LSN_OFFSET: usize = 24;
const NEXT_OFFSET: usize = 32;
const PREV_OFFSET: usize = 40;

/// One tree as `indexes/directory.json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TreeInfo {
    pub schema_id: String,
    pub schema_version: String,
    pub field: String,
    pub root: u64,
    pub height: u64,
    pub entries: u64,
}

impl TreeInfo {
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.schema_id, self.schema_version, self.field)
    }
}

/// `indexes/directory.json`.
#[derive(Clone, Debug)]
pub struct Directory {
    pub lsn: u64,
    pub trees: Vec<TreeInfo>,
}

/// Parses the directory strictly: exactly the fields FORMAT.md names.
pub fn parse_directory(bytes: &[u8]) -> Result<Directory, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| format!("not valid JSON: {error}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    for key in object.keys() {
        if key != "lsn" && key != "trees" {
            return Err(format!("unknown field {key:?}"));
        }
    }
    let lsn = object.get("lsn").and_then(Value::as_u64).ok_or("lsn must be a non-negative integer")?;
    let Some(Value::Array(list)) = object.get("trees") else {
        return Err("trees must be an array".into());
    };
    let mut trees = Vec::with_capacity(list.len());
    for (position, tree) in list.iter().enumerate() {
        let Value::Object(tree) = tree else {
            return Err(format!("trees[{position}] is not an object"));
        };
        for key in tree.keys() {
            if !matches!(key.as_str(), "schema_id" | "schema_version" | "field" | "root" | "height" | "entries") {
                return Err(format!("trees[{position}]: unknown field {key:?}"));
            }
        }
        let text = |name: &str| -> Result<String, String> {
            tree.get(name).and_then(Value::as_str).map(str::to_owned).ok_or(format!("trees[{position}].{name} must be a string"))
        };
        let number = |name: &str| -> Result<u64, String> {
            tree.get(name).and_then(Value::as_u64).ok_or(format!("trees[{position}].{name} must be a non-negative integer"))
        };
        trees.push(TreeInfo {
            schema_id: text("schema_id")?,
            schema_version: text("schema_version")?,
            field: text("field")?,
            root: number("root")?,
            height: number("height")?,
            entries: number("entries")?,
        });
    }
    Ok(Directory { lsn, trees })
}

/// How the walk of every tree went, for the agreement check.
struct TreeWalks {
    /// The walk's leaf entries of every tree the schemas know, sorted like
    /// the expected entries (see `documents::entry_prefix`); each record
    /// continues with `[leaf u64][entry index u32][locator page u64][slot u16][cell offset u32]`.
    entries: Sorter,
    /// Tree numbers whose walk could not read every node.
    incomplete: BTreeSet<u16>,
}

pub fn check(
    database: &Database,
    wal: &WalView,
    schemas: &Schemas,
    trees: &TreeIds,
    documents: DocumentOutput,
    limits: &Limits,
    report: &mut Report,
) -> Result<(), String> {
    let space = PageSpace::open(&database.root, INDEXES_DIR);
    check_segment_files(&space, report);
    let location = Location::file(INDEX_DIRECTORY_FILE);
    let bytes = match read_small(&database.path(INDEX_DIRECTORY_FILE)) {
        Ok(bytes) => bytes,
        Err(error) => {
            report.problem(location, format!("index directory (written at every clean shutdown): {error}"));
            return Ok(());
        }
    };
    let directory = match parse_directory(&bytes) {
        Ok(directory) => directory,
        Err(error) => {
            report.problem(location, format!("index directory does not parse: {error}"));
            return Ok(());
        }
    };
    if directory.lsn != wal.last_seq.0 {
        report.problem(
            location.clone(),
            format!(
                "index directory was written at LSN {}, but the WAL ends at sequence number {}: the indexes are stale",
                directory.lsn, wal.last_seq
            ),
        );
    }
    check_tree_list(&directory, schemas, report);
    // The tree (1-based position in the directory) each index page belongs to.
    let mut owners: Vec<u16> = vec![0; usize::try_from(space.page_capacity()).unwrap_or(0)];
    let mut walks = TreeWalks { entries: Sorter::new(limits.sorter_budget(), &limits.spill_dir), incomplete: BTreeSet::new() };
    let mut progress = Progress::new("index pages", space.page_capacity());
    for (position, tree) in directory.trees.iter().enumerate() {
        report.count("index_trees", 1);
        let known =
            schemas.get(&(tree.schema_id.clone(), tree.schema_version.clone())).is_some_and(|schema| schema.is_indexed(&tree.field));
        let id = if known { trees.id_of(&tree.schema_id, &tree.schema_version, &tree.field) } else { None };
        let mut walker = Walker {
            space: &space,
            tree,
            labels: &directory.trees,
            position: position as u16 + 1,
            id,
            wal_last_seq: wal.last_seq.0,
            owners: &mut owners,
            report,
            progress: &mut progress,
            sorter: &mut walks.entries,
            entries: 0,
            complete: true,
            lsn_past_wal: (0, PageNo::NONE, 0),
            previous_leaf: None,
            sibling_problems: Vec::new(),
            scratch: Vec::new(),
            failure: None,
        };
        walker.walk();
        let (entries, complete, failure) = (walker.entries, walker.complete, walker.failure);
        if let Some(error) = failure {
            return Err(error);
        }
        report.count("index_entries", entries);
        if let (Some(id), false) = (id, complete) {
            walks.incomplete.insert(id);
            report.note(
                Location::file(INDEX_DIRECTORY_FILE),
                format!("tree {}: some nodes could not be read, so documents were not checked for missing entries", tree.label()),
            );
        }
    }
    progress.finish();
    let unreachable: Vec<PageNo> = space
        .page_numbers()
        .filter(|page_no| owners.get(page_no.0 as usize).is_some_and(|owner| *owner == 0))
        .filter(|page_no| space.page(*page_no).is_some_and(|page| !page::is_unwritten(&page)))
        .collect();
    if let Some(first) = unreachable.first() {
        report.note(
            Location::file(INDEXES_DIR),
            format!("{} written index pages belong to no tree (first: page {first}); they are unused", unreachable.len()),
        );
    }
    drop(owners);
    if let Some(expected) = documents.expected {
        let data = PageSpace::open(&database.root, DATA_DIR);
        let progress = Progress::new("index entries", documents.expected_entries);
        check_agreement(&space, &data, schemas, trees, expected, walks, limits, progress, report)
            .map_err(|error| format!("cannot sort the index entries: {error}"))?;
    }
    Ok(())
}

/// The engine empties `indexes/` at every boot (the trees are rebuilt),
/// folders inside it included, and makes it again when it is missing or a
/// link to nothing: only an `indexes` that is not a folder makes the boot
/// fail. Checked whatever the shutdown was.
pub fn check_folder_can_be_emptied(database: &Database, report: &mut Report) {
    let path = database.path(INDEXES_DIR);
    match std::fs::metadata(&path) {
        Err(_) => {} // missing (or a link to nothing): the boot makes it again
        Ok(metadata) if !metadata.is_dir() => report.problem(
            Location::file(INDEXES_DIR),
            "indexes is not a folder: the engine cannot empty it to rebuild the indexes (AERO_STORAGE_IO_ERROR)",
        ),
        Ok(_) => {
            for name in PageSpace::open(&database.root, INDEXES_DIR).folders {
                report.note(Location::file(&name), "a folder inside the index folder: the next boot removes it with the index files");
            }
        }
    }
}

fn check_segment_files(space: &PageSpace, report: &mut Report) {
    match &space.folder_error {
        Some(error) => report.problem(Location::file(INDEXES_DIR), format!("the index segment folder cannot be read: {error}")),
        None if !space.folder_exists => report.problem(Location::file(INDEXES_DIR), "the index segment folder is missing"),
        None => {}
    }
    for name in &space.stray_files {
        if name != INDEX_DIRECTORY_FILE {
            report.note(Location::file(name), "not a segment file; ignored");
        }
    }
    crate::verify::documents::check_segment_lengths(space, "index_segments", report);
}

/// Trees sorted by (schema_id, schema_version, field), one per indexed field
/// of every schema version, and no tree for anything else.
fn check_tree_list(directory: &Directory, schemas: &Schemas, report: &mut Report) {
    let location = Location::file(INDEX_DIRECTORY_FILE);
    let names = |tree: &TreeInfo| (tree.schema_id.clone(), tree.schema_version.clone(), tree.field.clone());
    for pair in directory.trees.windows(2) {
        if names(&pair[0]) >= names(&pair[1]) {
            report.problem(
                location.clone(),
                format!("trees are not sorted by (schema_id, schema_version, field): {} comes before {}", pair[0].label(), pair[1].label()),
            );
        }
    }
    let listed: BTreeSet<(String, String, String)> = directory.trees.iter().map(names).collect();
    for ((schema_id, schema_version), schema) in schemas {
        for field in &schema.indexes {
            if !listed.contains(&(schema_id.clone(), schema_version.clone(), field.clone())) {
                report.problem(location.clone(), format!("no tree for the index on {schema_id}/{schema_version} field '{field}'"));
            }
        }
    }
    for tree in &directory.trees {
        match schemas.get(&(tree.schema_id.clone(), tree.schema_version.clone())) {
            None => report.problem(location.clone(), format!("tree {} belongs to a schema version with no schema file", tree.label())),
            Some(schema) if !schema.is_indexed(&tree.field) => {
                report.problem(location.clone(), format!("tree {}: field '{}' is not indexed by its schema", tree.label(), tree.field))
            }
            Some(_) => {}
        }
    }
}

fn node_location(space: &PageSpace, page_no: PageNo, within: usize) -> Location {
    Location::page(&space.file_of(page_no), page_no.0, page_no.offset_in_segment() + within as u64)
}

/// Offset of entry `index`'s cell (the node passed `check_node`).
fn cell_offset(page: &page::PageBytes, index: usize) -> usize {
    let at = HEADER_BYTES + 2 * index;
    usize::from(u16::from_le_bytes([page[at], page[at + 1]]))
}

/// A node to visit: what its parent says of it.
struct NodeInfo {
    page_no: PageNo,
    depth: u64,
    low: Vec<u8>,
    high: Option<Vec<u8>>,
    leftmost: bool,
    /// The count its parent's entry gives (the directory's, for the root).
    stored_count: u64,
    /// `(parent page, parent's cell offset, entry index)`.
    parent: Option<(PageNo, usize, usize)>,
}

/// An internal node whose children are being walked.
struct Frame {
    info: NodeInfo,
    /// `(child page, count, key)` of every entry.
    children: Vec<(PageNo, u64, Vec<u8>, usize)>,
    next_child: usize,
    /// Entries below the children walked so far (`None` once one is broken).
    sum: Option<u64>,
}

impl Frame {
    fn child(&self, position: usize) -> NodeInfo {
        let (child, count, ref key_bytes, offset) = self.children[position];
        let low = if *key_bytes < self.info.low { self.info.low.clone() } else { key_bytes.clone() };
        let high = match self.children.get(position + 1) {
            Some((_, _, next_key, _)) => Some(next_key.clone()),
            None => self.info.high.clone(),
        };
        NodeInfo {
            page_no: child,
            depth: self.info.depth + 1,
            low,
            high,
            leftmost: self.info.leftmost && position == 0,
            stored_count: count,
            parent: Some((self.info.page_no, offset, position)),
        }
    }
}

enum Visit {
    /// A leaf (its entry count) or a node that could not be read (`None`).
    Done(NodeInfo, Option<u64>),
    Internal(Frame),
}

/// The last leaf seen: for key order and sibling links across leaves.
struct PreviousLeaf {
    page_no: PageNo,
    next: PageNo,
    last_key: Option<(Vec<u8>, usize)>,
    /// Its prev link's problem, if any (reported with its next link's).
    prev_problem: Option<(Location, String)>,
}

/// Walks one tree depth first without recursion; see the module comment.
/// Memory: one frame per level of the tree.
struct Walker<'a> {
    space: &'a PageSpace,
    tree: &'a TreeInfo,
    labels: &'a [TreeInfo],
    /// This tree's 1-based position in the directory.
    position: u16,
    /// Its number among the schemas' trees, when the schemas know it.
    id: Option<u16>,
    wal_last_seq: u64,
    owners: &'a mut Vec<u16>,
    report: &'a mut Report,
    progress: &'a mut Progress,
    sorter: &'a mut Sorter,
    entries: u64,
    complete: bool,
    /// Nodes whose LSN is past the WAL: `(count, first page, its LSN)`.
    lsn_past_wal: (u64, PageNo, u64),
    previous_leaf: Option<PreviousLeaf>,
    sibling_problems: Vec<(Location, String)>,
    scratch: Vec<u8>,
    failure: Option<String>,
}

impl Walker<'_> {
    fn label(&self) -> String {
        self.tree.label()
    }

    fn walk(&mut self) {
        let label = self.label();
        if self.tree.height == 0 || self.tree.height > TREE_HEIGHT_MAX {
            self.report.problem(
                Location::file(INDEX_DIRECTORY_FILE),
                format!("tree {label}: height {} outside 1..={TREE_HEIGHT_MAX}", self.tree.height),
            );
            self.complete = false;
            return;
        }
        let root = NodeInfo {
            page_no: PageNo(self.tree.root),
            depth: 0,
            low: Vec::new(),
            high: None,
            leftmost: true,
            stored_count: self.tree.entries,
            parent: None,
        };
        let mut stack: Vec<Frame> = Vec::new();
        match self.visit(root) {
            Visit::Done(info, count) => self.complete_node(&info, count),
            Visit::Internal(frame) => stack.push(frame),
        }
        while let Some(top) = stack.last_mut() {
            if top.next_child < top.children.len() {
                let child = top.child(top.next_child);
                top.next_child += 1;
                match self.visit(child) {
                    Visit::Done(info, count) => {
                        self.complete_node(&info, count);
                        let top = stack.last_mut().expect("the parent frame");
                        top.sum = top.sum.zip(count).and_then(|(sum, count)| sum.checked_add(count));
                    }
                    Visit::Internal(frame) => stack.push(frame),
                }
            } else {
                let frame = stack.pop().expect("a frame");
                self.complete_node(&frame.info, frame.sum);
                if let Some(parent) = stack.last_mut() {
                    parent.sum = parent.sum.zip(frame.sum).and_then(|(sum, count)| sum.checked_add(count));
                }
            }
        }
        let (count, first, lsn) = self.lsn_past_wal;
        if count > 0 {
            self.report.problem(
                node_location(self.space, first, LSN_OFFSET),
                format!(
                    "tree {label}: {count} node page(s) have an LSN past the WAL's last sequence number {} (first: page {first}, LSN {lsn})",
                    self.wal_last_seq
                ),
            );
        }
        if let Some(last) = self.previous_leaf.take() {
            self.finish_leaf_links(last, PageNo::NONE);
        }
        if self.complete {
            for (location, message) in std::mem::take(&mut self.sibling_problems) {
                self.report.problem(location, message);
            }
        }
    }

    /// Each internal entry's count equals the entries really below it; the
    /// root's total equals the directory's `entries`.
    fn complete_node(&mut self, info: &NodeInfo, real: Option<u64>) {
        let Some(real) = real else {
            return;
        };
        match info.parent {
            Some((parent_page, offset, position)) if real != info.stored_count => self.report.problem(
                node_location(self.space, parent_page, offset),
                format!(
                    "tree {}: internal node page {parent_page} entry {position} says child page {} holds {} entries; it holds {real}",
                    self.label(),
                    info.page_no,
                    info.stored_count
                ),
            ),
            None if real != self.tree.entries => self.report.problem(
                Location::file(INDEX_DIRECTORY_FILE),
                format!("tree {}: the directory says {} entries, the tree holds {real}", self.label(), self.tree.entries),
            ),
            _ => {}
        }
    }

    fn broken(&mut self, info: NodeInfo) -> Visit {
        self.complete = false;
        Visit::Done(info, None)
    }

    fn visit(&mut self, info: NodeInfo) -> Visit {
        self.progress.tick();
        let label = self.label();
        let page_no = info.page_no;
        let space = self.space;
        let at = |within: usize| node_location(space, page_no, within);
        let slot = usize::try_from(page_no.0).ok().filter(|&slot| slot < self.owners.len());
        if let Some(slot) = slot {
            let owner = self.owners[slot];
            if owner != 0 {
                let whose = if owner == self.position {
                    "this tree".to_string()
                } else {
                    format!("tree {}", self.labels[usize::from(owner) - 1].label())
                };
                self.report.problem(at(0), format!("tree {label}: node page {page_no} is already part of {whose}"));
                return self.broken(info);
            }
            self.owners[slot] = self.position;
        }
        self.report.count("index_nodes", 1);
        let Some(page) = space.page(page_no) else {
            self.report.problem(at(0), format!("tree {label}: node page {page_no} lies outside the index segment files"));
            return self.broken(info);
        };
        if page::is_unwritten(&page) {
            self.report.problem(at(0), format!("tree {label}: node page {page_no} is all zero (never written)"));
            return self.broken(info);
        }
        if let Err(error) = page::verify(&page, page_no).and_then(|_| btree::check_node(&page)) {
            self.report.problem(at(error.offset), format!("tree {label}: node page {page_no}: {error}"));
            return self.broken(info);
        }
        let header = PageHeader::read(&page);
        if header.lsn().0 > self.wal_last_seq {
            if self.lsn_past_wal.0 == 0 {
                self.lsn_past_wal = (0, page_no, header.lsn().0);
            }
            self.lsn_past_wal.0 += 1;
        }
        let level = u64::from(header.level.get());
        let expected_level = self.tree.height - 1 - info.depth;
        if level != expected_level {
            self.report.problem(
                at(LEVEL_OFFSET),
                format!(
                    "tree {label}: node page {page_no} is at level {level}, expected {expected_level} \
                     (depth {} in a tree of height {}): every leaf must sit at the same depth",
                    info.depth, self.tree.height
                ),
            );
            return self.broken(info);
        }
        let entries = btree::entries(&page);
        for (position, (key_bytes, _)) in entries.iter().enumerate() {
            let outside = *key_bytes < info.low || info.high.as_ref().is_some_and(|high| key_bytes >= high);
            if outside {
                self.report.problem(
                    at(cell_offset(&page, position)),
                    format!(
                        "tree {label}: node page {page_no} entry {position}: key {} lies outside the range [{}, {}) its parent gives it",
                        key_text(key_bytes),
                        key_text(&info.low),
                        info.high.as_deref().map(key_text).unwrap_or_else(|| "end".into())
                    ),
                );
            }
        }
        if level == 0 {
            self.visit_leaf(&page, page_no, &header, &entries);
            return Visit::Done(info, Some(entries.len() as u64));
        }
        if entries.is_empty() {
            self.report.problem(at(0), format!("tree {label}: internal node page {page_no} has no entries"));
            return self.broken(info);
        }
        if info.leftmost && !entries[0].0.is_empty() {
            self.report.problem(
                at(cell_offset(&page, 0)),
                format!("tree {label}: node page {page_no} is the leftmost of level {level}, but its first key is not empty"),
            );
        }
        let children = entries
            .into_iter()
            .enumerate()
            .map(|(position, (key_bytes, _))| {
                let (child, count) = btree::internal_child(&page, position);
                (child, count, key_bytes, cell_offset(&page, position))
            })
            .collect();
        Visit::Internal(Frame { info, children, next_child: 0, sum: Some(0) })
    }

    fn visit_leaf(&mut self, page: &page::PageBytes, page_no: PageNo, header: &PageHeader, entries: &[(Vec<u8>, Vec<u8>)]) {
        let label = self.label();
        let id_only = self.tree.field == "_id";
        let at = |within: usize| node_location(self.space, page_no, within);
        // Keys strictly increase across leaves (inside a leaf, check_node saw to it).
        if let (Some(previous), Some((first, _))) = (&self.previous_leaf, entries.first()) {
            if let Some((last_key, last_index)) = &previous.last_key {
                if first <= last_key {
                    self.report.problem(
                        at(cell_offset(page, 0)),
                        format!(
                            "tree {label}: key order across leaves: leaf page {page_no} entry 0 ({}) is not greater than leaf page {} entry {last_index} ({})",
                            key_text(first),
                            previous.page_no,
                            key_text(last_key)
                        ),
                    );
                }
            }
        }
        for (position, (key_bytes, _)) in entries.iter().enumerate() {
            let offset = cell_offset(page, position);
            if let Err(error) = key::decode_entry_key(key_bytes, id_only) {
                self.report
                    .problem(at(offset), format!("tree {label}: leaf page {page_no} entry {position}: key does not decode: {error}"));
            }
            self.entries += 1;
            if let Some(id) = self.id {
                let locator = btree::leaf_locator(page, position);
                let out = &mut self.scratch;
                out.clear();
                entry_prefix(out, id, key_bytes);
                out.extend_from_slice(&page_no.0.to_be_bytes());
                out.extend_from_slice(&(position as u32).to_be_bytes());
                out.extend_from_slice(&locator.page.0.to_be_bytes());
                out.extend_from_slice(&locator.slot.to_be_bytes());
                out.extend_from_slice(&(offset as u32).to_be_bytes());
                if let Err(error) = self.sorter.push(out) {
                    self.failure.get_or_insert_with(|| format!("cannot sort the index entries: {error}"));
                }
            }
        }
        // Each leaf's prev/next name its neighbours in key order (none at the ends).
        let previous_page = self.previous_leaf.as_ref().map_or(PageNo::NONE, |previous| previous.page_no);
        let prev_problem = (header.prev() != previous_page).then(|| {
            (
                node_location(self.space, page_no, PREV_OFFSET),
                format!("tree {label}: leaf page {page_no} has prev {}, expected {}", link(header.prev()), link(previous_page)),
            )
        });
        let last_key = entries.last().map(|(key_bytes, _)| (key_bytes.clone(), entries.len() - 1));
        let current = PreviousLeaf { page_no, next: header.next(), last_key, prev_problem };
        if let Some(previous) = self.previous_leaf.replace(current) {
            self.finish_leaf_links(previous, page_no);
        }
    }

    fn finish_leaf_links(&mut self, leaf: PreviousLeaf, expected_next: PageNo) {
        if let Some(problem) = leaf.prev_problem {
            self.sibling_problems.push(problem);
        }
        if leaf.next != expected_next {
            self.sibling_problems.push((
                node_location(self.space, leaf.page_no, NEXT_OFFSET),
                format!("tree {}: leaf page {} has next {}, expected {}", self.label(), leaf.page_no, link(leaf.next), link(expected_next)),
            ));
        }
    }
}

fn link(page_no: PageNo) -> String {
    if page_no.is_none() {
        "none".to_string()
    } else {
        page_no.to_string()
    }
}

/// Every document of a tree's schema version has exactly its entry, and
/// every entry points at a live document whose key is the entry's key: a
/// merge of the expected entries with the walk's, both sorted by (tree,
/// key). Entries with no expected one are then looked up by locator.
#[allow(clippy::too_many_arguments)]
fn check_agreement(
    space: &PageSpace,
    data: &PageSpace,
    schemas: &Schemas,
    trees: &TreeIds,
    mut expected: Sorted,
    walks: TreeWalks,
    limits: &Limits,
    mut progress: Progress,
    report: &mut Report,
) -> std::io::Result<()> {
    let mut walked = walks.entries.finish()?;
    let mut unmatched = Sorter::new(limits.sorter_budget(), &limits.spill_dir);
    let mut x: Option<Vec<u8>> = expected.next()?.map(<[u8]>::to_vec);
    let mut w: Option<Vec<u8>> = walked.next()?.map(<[u8]>::to_vec);
    // Whether some walked entry had the current expected entry's key.
    let mut x_matched = false;
    loop {
        let order = match (&x, &w) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(w)) => split_prefix(x).0.cmp(split_prefix(w).0),
        };
        match order {
            std::cmp::Ordering::Less => {
                progress.tick();
                let record = x.take().expect("an expected entry");
                let entry = ExpectedEntry::decode(&record);
                if !x_matched && !walks.incomplete.contains(&entry.tree) {
                    report.problem(
                        entry.place.location(data),
                        format!(
                            "tree {} has no entry for document _id {} at page {} slot {} (key {})",
                            trees.label(entry.tree),
                            id_text(entry.key, &trees.trees[usize::from(entry.tree)].2),
                            entry.locator.page,
                            entry.locator.slot,
                            key_text(entry.key)
                        ),
                    );
                }
                // Equal keys after the first add nothing (the first one is the document's).
                let prefix = split_prefix(&record).0.to_vec();
                x = expected.next()?.map(<[u8]>::to_vec);
                while x.as_ref().is_some_and(|next| split_prefix(next).0 == prefix.as_slice()) {
                    x = expected.next()?.map(<[u8]>::to_vec);
                }
                x_matched = false;
            }
            std::cmp::Ordering::Equal => {
                let record = w.take().expect("a walked entry");
                let entry = WalkedEntry::decode(&record);
                let wanted = ExpectedEntry::decode(x.as_ref().expect("an expected entry"));
                x_matched = true;
                if wanted.locator != entry.locator {
                    report.problem(
                        entry.location(space),
                        format!(
                            "{} points at {}, but that document is at page {} slot {}",
                            entry.place(trees),
                            entry.target(),
                            wanted.locator.page,
                            wanted.locator.slot
                        ),
                    );
                }
                w = walked.next()?.map(<[u8]>::to_vec);
            }
            std::cmp::Ordering::Greater => {
                let record = w.take().expect("a walked entry");
                // Looked up later by locator: [locator][the walked record].
                let entry = WalkedEntry::decode(&record);
                let mut keyed = Vec::with_capacity(10 + record.len());
                keyed.extend_from_slice(&entry.locator.page.0.to_be_bytes());
                keyed.extend_from_slice(&entry.locator.slot.to_be_bytes());
                keyed.extend_from_slice(&record);
                unmatched.push(&keyed)?;
                w = walked.next()?.map(<[u8]>::to_vec);
            }
        }
    }
    progress.finish();
    let mut unmatched = unmatched.finish()?;
    let mut cache: Option<(PageNo, Option<Box<page::PageBytes>>)> = None;
    while let Some(keyed) = unmatched.next()? {
        let entry = WalkedEntry::decode(&keyed[10..]);
        let place = entry.place(trees);
        let target = entry.target();
        let (schema_id, schema_version, field) = &trees.trees[usize::from(entry.tree)];
        let message = match live_document(data, entry.locator, &mut cache) {
            None => format!("{place} points at {target}, where there is no live document"),
            Some(record) if record.schema_id != *schema_id || record.schema_version != *schema_version => {
                format!("{place} points at {target}, which holds a document of {}/{}", record.schema_id, record.schema_version)
            }
            Some(record) => {
                let id = record.body.get("_id").cloned().unwrap_or(Value::Null);
                let schema = schemas.get(&(record.schema_id.clone(), record.schema_version.clone()));
                let own = schema.and_then(|schema| {
                    let position = schema.indexes.iter().position(|index| index == field)?;
                    let mut own = None;
                    let _ = schema.for_each_index_key(&record.body, |at, key_bytes| {
                        if at == position {
                            own = Some(key_bytes.to_vec());
                        }
                    });
                    own
                });
                match own {
                    Some(own) => format!("{place} points at document _id {id} at {target}, whose key in this index is {}", key_text(&own)),
                    None => format!(
                        "{place} points at document _id {id} at {target}, which has no value for '{field}' (it should have no entry)"
                    ),
                }
            }
        };
        report.problem(entry.location(space), message);
    }
    Ok(())
}

/// The `_id` part of an entry key, as JSON text.
fn id_text(key_bytes: &[u8], field: &str) -> String {
    match key::decode_entry_key(key_bytes, field == "_id") {
        Ok((_, KeyValue::Int(value))) => value.to_string(),
        Ok((_, KeyValue::String(text))) => Value::String(text).to_string(),
        _ => key_text(key_bytes),
    }
}

/// The document a locator names, read from its segment page (after a clean
/// shutdown the segment pages are the database; a damaged one is reported
/// by the document checks).
fn live_document(
    data: &PageSpace,
    locator: Locator,
    cache: &mut Option<(PageNo, Option<Box<page::PageBytes>>)>,
) -> Option<aerodb_format::document::DocumentRecord> {
    if cache.as_ref().is_none_or(|(page_no, _)| *page_no != locator.page) {
        let page = data.page(locator.page).filter(|page| page::verify(page, locator.page).is_ok());
        *cache = Some((locator.page, page));
    }
    let page = cache.as_ref()?.1.as_ref()?;
    let records = slotted::check_document_page(page).ok()?;
    let (_, bytes) = records.into_iter().find(|(slot, _)| *slot == locator.slot)?;
    match slotted::decode_slot_record(bytes).ok()? {
        SlotRecord::Inline(document) => aerodb_format::document::decode_record(document).ok(),
        SlotRecord::Overflow { length, first_page } => {
            let document = crate::inspect::summary::read_chain(data, PageNo(first_page), length as usize)?;
            aerodb_format::document::decode_record(&document).ok()
        }
    }
}

/// One walked leaf entry, as the sort holds it.
struct WalkedEntry<'a> {
    tree: u16,
    key: &'a [u8],
    leaf: PageNo,
    index: u32,
    locator: Locator,
    cell_offset: u32,
}

impl WalkedEntry<'_> {
    fn decode(record: &[u8]) -> WalkedEntry<'_> {
        let (_, tree, key, rest) = split_prefix(record);
        let u64_at = |at: usize| u64::from_be_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |at: usize| u32::from_be_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
        WalkedEntry {
            tree,
            key,
            leaf: PageNo(u64_at(0)),
            index: u32_at(8),
            locator: Locator { page: PageNo(u64_at(12)), slot: u16::from_be_bytes([rest[20], rest[21]]) },
            cell_offset: u32_at(22),
        }
    }

    fn location(&self, space: &PageSpace) -> Location {
        node_location(space, self.leaf, self.cell_offset as usize)
    }

    fn place(&self, trees: &TreeIds) -> String {
        format!("tree {}: leaf page {} entry {} (key {})", trees.label(self.tree), self.leaf, self.index, key_text(self.key))
    }

    fn target(&self) -> String {
        format!("page {} slot {}", self.locator.page, self.locator.slot)
    }
}
