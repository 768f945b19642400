//! Checks of the index space (`indexes/`) after a clean shutdown: the tree
//! directory, every node of every tree, and index ↔ document agreement in
//! both directions. (Indexes are derived and rebuilt at every start, so they
//! are only trustworthy after a clean shutdown; otherwise these checks are
//! skipped with a note.)
//!
//! A tree is walked breadth first without recursion: nodes of one depth are
//! visited left to right, so the leaves come out in key order. Per node:
//! `page::verify`, `btree::check_node` (cells, key order inside the node),
//! level = height - 1 - depth (so every leaf sits at the same depth), keys
//! inside the range the parent gives the node. Then, over the whole tree: key
//! order across leaves, leaf sibling links, and each internal entry's count
//! against the real number of entries below it. A page reached twice (inside
//! one tree or from two trees) is a problem and is not walked again, so the
//! walk ends on any input.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use aerodb_format::btree::{self, Locator};
use aerodb_format::key;
use aerodb_format::page::{self, PageHeader, HEADER_BYTES};
use aerodb_format::PageNo;

use crate::database::{Database, INDEXES_DIR, INDEX_DIRECTORY_FILE};
use crate::describe::key_text;
use crate::files::read_small;
use crate::space::PageSpace;
use crate::verify::documents::DocumentSet;
use crate::verify::metadata::Schemas;
use crate::verify::progress::Progress;
use crate::verify::report::{Location, Report};
use crate::verify::wal::WalView;

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

/// One leaf entry, in key order.
pub struct LeafEntry {
    pub key: Vec<u8>,
    pub locator: Locator,
    pub leaf: PageNo,
    pub index: usize,
    pub location: Location,
}

/// What a walk found.
pub struct Walk {
    pub entries: Vec<LeafEntry>,
    /// False when some node could not be read: entries below it are unknown.
    pub complete: bool,
}

enum NodeState {
    Broken,
    Leaf { entries: u64, prev: PageNo, next: PageNo },
    Internal { children: Vec<usize> },
}

struct Node {
    page_no: PageNo,
    depth: u64,
    /// `(parent node, entry index in the parent)`.
    parent: Option<(usize, usize)>,
    stored_count: u64,
    low: Vec<u8>,
    high: Option<Vec<u8>>,
    leftmost: bool,
    state: NodeState,
}

pub fn check(database: &Database, allow_map: bool, wal: &WalView, schemas: &Schemas, documents: &DocumentSet, report: &mut Report) {
    let space = PageSpace::open(&database.root, INDEXES_DIR, allow_map);
    check_segment_files(&space, report);
    let location = Location::file(INDEX_DIRECTORY_FILE);
    let bytes = match read_small(&database.path(INDEX_DIRECTORY_FILE)) {
        Ok(bytes) => bytes,
        Err(error) => {
            report.problem(location, format!("index directory (written at every clean shutdown): {error}"));
            return;
        }
    };
    let directory = match parse_directory(&bytes) {
        Ok(directory) => directory,
        Err(error) => {
            report.problem(location, format!("index directory does not parse: {error}"));
            return;
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
    let mut owners: BTreeMap<PageNo, String> = BTreeMap::new();
    let mut progress = Progress::new("index pages", space.page_capacity());
    for tree in &directory.trees {
        report.count("index_trees", 1);
        let walk = walk_tree(&space, tree, wal.last_seq.0, &mut owners, report, &mut progress);
        report.count("index_entries", walk.entries.len() as u64);
        let known =
            schemas.get(&(tree.schema_id.clone(), tree.schema_version.clone())).is_some_and(|schema| schema.is_indexed(&tree.field));
        if known {
            check_agreement(tree, &walk, documents, report);
        }
    }
    progress.finish();
    let unreachable: Vec<PageNo> = space
        .page_numbers()
        .filter(|page_no| !owners.contains_key(page_no))
        .filter(|page_no| space.page(*page_no).is_some_and(|page| !page::is_unwritten(page)))
        .collect();
    if let Some(first) = unreachable.first() {
        report.note(
            Location::file(INDEXES_DIR),
            format!("{} written index pages belong to no tree (first: page {first}); they are unused", unreachable.len()),
        );
    }
}

fn check_segment_files(space: &PageSpace, report: &mut Report) {
    if !space.folder_exists {
        report.problem(Location::file(INDEXES_DIR), "the index segment folder is missing");
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

/// Walks one tree; see the module comment.
pub fn walk_tree(
    space: &PageSpace,
    tree: &TreeInfo,
    wal_last_seq: u64,
    owners: &mut BTreeMap<PageNo, String>,
    report: &mut Report,
    progress: &mut Progress,
) -> Walk {
    let label = tree.label();
    let mut walk = Walk { entries: Vec::new(), complete: true };
    if tree.height == 0 || tree.height > TREE_HEIGHT_MAX {
        report.problem(Location::file(INDEX_DIRECTORY_FILE), format!("tree {label}: height {} outside 1..={TREE_HEIGHT_MAX}", tree.height));
        walk.complete = false;
        return walk;
    }
    let id_only = tree.field == "_id";
    let mut nodes = vec![Node {
        page_no: PageNo(tree.root),
        depth: 0,
        parent: None,
        stored_count: tree.entries,
        low: Vec::new(),
        high: None,
        leftmost: true,
        state: NodeState::Broken,
    }];
    // Nodes whose LSN is past the WAL: one problem per tree names them all.
    let mut lsn_past_wal: Vec<(PageNo, u64)> = Vec::new();
    let mut cursor = 0;
    // Every node is visited once; a page is walked at most once (owners), so
    // the list grows by at most one node's entries per distinct page.
    while cursor < nodes.len() {
        let index = cursor;
        cursor += 1;
        progress.tick();
        let page_no = nodes[index].page_no;
        let at = |within: usize| node_location(space, page_no, within);
        if let Some(owner) = owners.get(&page_no) {
            let whose = if *owner == label { "this tree".to_string() } else { format!("tree {owner}") };
            report.problem(at(0), format!("tree {label}: node page {page_no} is already part of {whose}"));
            walk.complete = false;
            continue;
        }
        owners.insert(page_no, label.clone());
        report.count("index_nodes", 1);
        let Some(page) = space.page(page_no) else {
            report.problem(at(0), format!("tree {label}: node page {page_no} lies outside the index segment files"));
            walk.complete = false;
            continue;
        };
        if page::is_unwritten(page) {
            report.problem(at(0), format!("tree {label}: node page {page_no} is all zero (never written)"));
            walk.complete = false;
            continue;
        }
        if let Err(error) = page::verify(page, page_no).and_then(|_| btree::check_node(page)) {
            report.problem(at(error.offset), format!("tree {label}: node page {page_no}: {error}"));
            walk.complete = false;
            continue;
        }
        let header = PageHeader::read(page);
        if header.lsn().0 > wal_last_seq {
            lsn_past_wal.push((page_no, header.lsn().0));
        }
        let level = u64::from(header.level.get());
        let depth = nodes[index].depth;
        let expected_level = tree.height - 1 - depth;
        if level != expected_level {
            report.problem(
                at(LEVEL_OFFSET),
                format!(
                    "tree {label}: node page {page_no} is at level {level}, expected {expected_level} \
                     (depth {depth} in a tree of height {}): every leaf must sit at the same depth",
                    tree.height
                ),
            );
            walk.complete = false;
            continue;
        }
        let entries = btree::entries(page);
        let (low, high) = (nodes[index].low.clone(), nodes[index].high.clone());
        for (position, (key_bytes, _)) in entries.iter().enumerate() {
            let outside = *key_bytes < low || high.as_ref().is_some_and(|high| key_bytes >= high);
            if outside {
                report.problem(
                    at(cell_offset(page, position)),
                    format!(
                        "tree {label}: node page {page_no} entry {position}: key {} lies outside the range [{}, {}) its parent gives it",
                        key_text(key_bytes),
                        key_text(&low),
                        high.as_deref().map(key_text).unwrap_or_else(|| "end".into())
                    ),
                );
            }
        }
        if level == 0 {
            for (position, (key_bytes, _)) in entries.iter().enumerate() {
                let location = at(cell_offset(page, position));
                if let Err(error) = key::decode_entry_key(key_bytes, id_only) {
                    report.problem(
                        location.clone(),
                        format!("tree {label}: leaf page {page_no} entry {position}: key does not decode: {error}"),
                    );
                }
                walk.entries.push(LeafEntry {
                    key: key_bytes.clone(),
                    locator: btree::leaf_locator(page, position),
                    leaf: page_no,
                    index: position,
                    location,
                });
            }
            nodes[index].state = NodeState::Leaf { entries: entries.len() as u64, prev: header.prev(), next: header.next() };
            continue;
        }
        if entries.is_empty() {
            report.problem(at(0), format!("tree {label}: internal node page {page_no} has no entries"));
            walk.complete = false;
            continue;
        }
        if nodes[index].leftmost && !entries[0].0.is_empty() {
            report.problem(
                at(cell_offset(page, 0)),
                format!("tree {label}: node page {page_no} is the leftmost of level {level}, but its first key is not empty"),
            );
        }
        let mut children = Vec::with_capacity(entries.len());
        for position in 0..entries.len() {
            let (child, count) = btree::internal_child(page, position);
            let child_low = if entries[position].0 < low { low.clone() } else { entries[position].0.clone() };
            let child_high = match entries.get(position + 1) {
                Some((next_key, _)) => Some(next_key.clone()),
                None => high.clone(),
            };
            children.push(nodes.len());
            nodes.push(Node {
                page_no: child,
                depth: depth + 1,
                parent: Some((index, position)),
                stored_count: count,
                low: child_low,
                high: child_high,
                leftmost: nodes[index].leftmost && position == 0,
                state: NodeState::Broken,
            });
        }
        nodes[index].state = NodeState::Internal { children };
    }
    if let Some(&(first, lsn)) = lsn_past_wal.first() {
        report.problem(
            node_location(space, first, LSN_OFFSET),
            format!(
                "tree {label}: {} node page(s) have an LSN past the WAL's last sequence number {wal_last_seq} \
                 (first: page {first}, LSN {lsn})",
                lsn_past_wal.len()
            ),
        );
    }
    check_leaf_order(&label, &walk, report);
    if walk.complete {
        check_sibling_links(space, &label, tree.height, &nodes, report);
    }
    check_counts(space, tree, &nodes, report);
    walk
}

/// Keys strictly increase across leaves (inside a leaf, `check_node` saw to it).
fn check_leaf_order(label: &str, walk: &Walk, report: &mut Report) {
    for pair in walk.entries.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if before.leaf != after.leaf && before.key >= after.key {
            report.problem(
                after.location.clone(),
                format!(
                    "tree {label}: key order across leaves: leaf page {} entry {} ({}) is not greater than leaf page {} entry {} ({})",
                    after.leaf,
                    after.index,
                    key_text(&after.key),
                    before.leaf,
                    before.index,
                    key_text(&before.key)
                ),
            );
        }
    }
}

/// Each leaf's prev/next name its neighbours in key order (none at the ends).
fn check_sibling_links(space: &PageSpace, label: &str, height: u64, nodes: &[Node], report: &mut Report) {
    let leaves: Vec<&Node> = nodes.iter().filter(|node| node.depth == height - 1).collect();
    for (position, leaf) in leaves.iter().enumerate() {
        let NodeState::Leaf { prev, next, .. } = leaf.state else {
            continue;
        };
        let expected_prev = if position == 0 { PageNo::NONE } else { leaves[position - 1].page_no };
        let expected_next = leaves.get(position + 1).map(|node| node.page_no).unwrap_or(PageNo::NONE);
        let show = |page_no: PageNo| {
            if page_no.is_none() {
                "none".to_string()
            } else {
                page_no.to_string()
            }
        };
        if prev != expected_prev {
            report.problem(
                node_location(space, leaf.page_no, PREV_OFFSET),
                format!("tree {label}: leaf page {} has prev {}, expected {}", leaf.page_no, show(prev), show(expected_prev)),
            );
        }
        if next != expected_next {
            report.problem(
                node_location(space, leaf.page_no, NEXT_OFFSET),
                format!("tree {label}: leaf page {} has next {}, expected {}", leaf.page_no, show(next), show(expected_next)),
            );
        }
    }
}

/// Each internal entry's count equals the entries really below it; the root's
/// total equals the directory's `entries`.
fn check_counts(space: &PageSpace, tree: &TreeInfo, nodes: &[Node], report: &mut Report) {
    let label = tree.label();
    let mut actual: Vec<Option<u64>> = vec![None; nodes.len()];
    // Children always come after their parent in `nodes`.
    for index in (0..nodes.len()).rev() {
        actual[index] = match &nodes[index].state {
            NodeState::Broken => None,
            NodeState::Leaf { entries, .. } => Some(*entries),
            NodeState::Internal { children } => {
                children.iter().try_fold(0u64, |sum, &child| actual[child].and_then(|count| sum.checked_add(count)))
            }
        };
    }
    for (index, node) in nodes.iter().enumerate() {
        let (Some((parent, position)), Some(real)) = (node.parent, actual[index]) else {
            continue;
        };
        if real != node.stored_count {
            let parent_page = nodes[parent].page_no;
            let offset = space.page(parent_page).map(|page| cell_offset(page, position)).unwrap_or(0);
            report.problem(
                node_location(space, parent_page, offset),
                format!(
                    "tree {label}: internal node page {parent_page} entry {position} says child page {} holds {} entries; it holds {real}",
                    node.page_no, node.stored_count
                ),
            );
        }
    }
    if let Some(real) = actual.first().copied().flatten() {
        if real != tree.entries {
            report.problem(
                Location::file(INDEX_DIRECTORY_FILE),
                format!("tree {label}: the directory says {} entries, the tree holds {real}", tree.entries),
            );
        }
    }
}

/// Every document of the tree's schema version has exactly its entry, and
/// every entry points at a live document whose key is the entry's key.
fn check_agreement(tree: &TreeInfo, walk: &Walk, documents: &DocumentSet, report: &mut Report) {
    let label = tree.label();
    let mut expected: BTreeMap<&[u8], Locator> = BTreeMap::new();
    for (locator, document) in &documents.by_locator {
        if document.schema_id != tree.schema_id || document.schema_version != tree.schema_version {
            continue;
        }
        for (field, key_bytes) in &document.keys {
            if *field == tree.field {
                expected.entry(key_bytes.as_slice()).or_insert(*locator);
            }
        }
    }
    let mut matched: BTreeSet<&[u8]> = BTreeSet::new();
    for entry in &walk.entries {
        let place = format!("tree {label}: leaf page {} entry {} (key {})", entry.leaf, entry.index, key_text(&entry.key));
        let target = format!("page {} slot {}", entry.locator.page, entry.locator.slot);
        match expected.get(entry.key.as_slice()) {
            Some(locator) => {
                matched.insert(entry.key.as_slice());
                if *locator != entry.locator {
                    report.problem(
                        entry.location.clone(),
                        format!("{place} points at {target}, but that document is at page {} slot {}", locator.page, locator.slot),
                    );
                }
            }
            None => {
                let message = match documents.by_locator.get(&entry.locator) {
                    None => format!("{place} points at {target}, where there is no live document"),
                    Some(document) if document.schema_id != tree.schema_id || document.schema_version != tree.schema_version => {
                        format!("{place} points at {target}, which holds a document of {}/{}", document.schema_id, document.schema_version)
                    }
                    Some(document) => match document.keys.iter().find(|(field, _)| *field == tree.field) {
                        Some((_, own)) => format!(
                            "{place} points at document _id {} at {target}, whose key in this index is {}",
                            document.id,
                            key_text(own)
                        ),
                        None => format!(
                            "{place} points at document _id {} at {target}, which has no value for '{}' (it should have no entry)",
                            document.id, tree.field
                        ),
                    },
                };
                report.problem(entry.location.clone(), message);
            }
        }
    }
    if !walk.complete {
        report.note(
            Location::file(INDEX_DIRECTORY_FILE),
            format!("tree {label}: some nodes could not be read, so documents were not checked for missing entries"),
        );
        return;
    }
    for (key_bytes, locator) in &expected {
        if matched.contains(key_bytes) {
            continue;
        }
        let Some(document) = documents.by_locator.get(locator) else {
            continue;
        };
        report.problem(
            document.location.clone(),
            format!(
                "tree {label} has no entry for document _id {} at page {} slot {} (key {})",
                document.id,
                locator.page,
                locator.slot,
                key_text(key_bytes)
            ),
        );
    }
}
