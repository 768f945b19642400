//! Counted B-trees in the index page space.
//!
//! One tree per (schema_id, schema_version, indexed field). Keys are the
//! format crate's order-preserving encodings (field value then `_id`), so
//! every entry is unique. Internal entries carry the number of entries in
//! the child's subtree, so the number of keys below any bound — and so in
//! any range — is found in one root-to-leaf walk (O(log n)): see [`Indexes::rank`].
//!
//! Trees are derived state: rebuilt at every boot by bulk loading sorted
//! keys ([`Indexes::bulk_load`]: leaves left to right, then each level
//! above), and maintained by every write. Index pages are not logged in
//! the WAL and are never trusted across a restart. Inserts split full
//! nodes (an append at the right end of a node moves only the new entry,
//! so ascending inserts fill nodes); deletes never merge, so leaves may be
//! underfull or empty, and every leaf stays at the same depth.

use std::collections::BTreeMap;
use std::ops::Bound;

use aerodb_format::btree::{self, Locator};
use aerodb_format::page::{self, PageBytes, PageHeader};
use aerodb_format::{PageNo, SeqNo, PAGE_SIZE_BYTES};

use crate::error::{AeroError, ErrorCode, Result};
use crate::pager::Pager;

/// Deepest tree allowed (far beyond what 2^64 entries need with >= 3 per node).
pub const TREE_HEIGHT_MAX: u32 = 48;
/// Bulk load fills nodes up to this many bytes, leaving room for later inserts.
const BULK_FILL_BYTES: usize = (PAGE_SIZE_BYTES - page::HEADER_BYTES) * 9 / 10;

/// Names one tree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreeId {
    pub schema_id: String,
    pub schema_version: String,
    pub field: String,
}

impl TreeId {
    pub fn new(schema_id: &str, schema_version: &str, field: &str) -> TreeId {
        TreeId { schema_id: schema_id.to_string(), schema_version: schema_version.to_string(), field: field.to_string() }
    }
}

/// Where a tree starts and how big it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tree {
    pub root: PageNo,
    /// Levels: 1 for a tree that is a single leaf.
    pub height: u32,
    pub entries: u64,
}

/// Every B-tree, over one pager.
pub struct Indexes {
    pager: Pager,
    page_count: u64,
    trees: BTreeMap<TreeId, Tree>,
    lsn: SeqNo,
    /// Pages changed since they were last sealed: their `lsn` is stamped at
    /// once, their checksum only when they are flushed ([`Indexes::flush`]),
    /// so an insert does not recompute the CRC of every page on its path.
    /// Index pages are derived (rebuilt at every boot) and read only by this
    /// process until a clean shutdown flushes them.
    unsealed: std::collections::BTreeSet<PageNo>,
}

fn broken(message: String) -> AeroError {
    AeroError::new(ErrorCode::IndexCorruption, message).invariant("I1")
}

impl Indexes {
    /// An empty index space over `pager` (whose files the caller emptied).
    pub fn new(pager: Pager) -> Indexes {
        Indexes { pager, page_count: 0, trees: BTreeMap::new(), lsn: SeqNo(0), unsealed: std::collections::BTreeSet::new() }
    }

    /// LSN stamped on pages changed from now on.
    pub fn set_lsn(&mut self, lsn: SeqNo) {
        self.lsn = lsn;
    }

    pub fn tree(&self, id: &TreeId) -> Option<Tree> {
        self.trees.get(id).copied()
    }

    pub fn trees(&self) -> &BTreeMap<TreeId, Tree> {
        &self.trees
    }

    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    fn allocate(&mut self, level: u32) -> Result<PageNo> {
        let page_no = PageNo(self.page_count);
        self.pager.ensure_capacity(self.page_count + 1)?;
        self.page_count += 1;
        btree::init_node(self.pager.page_mut(page_no)?, page_no, level);
        Ok(page_no)
    }

    fn page(&self, page_no: PageNo) -> Result<&PageBytes> {
        self.pager
            .page(page_no)
            .filter(|_| page_no.0 < self.page_count)
            .ok_or_else(|| broken(format!("index page {page_no} does not exist")))
    }

    fn page_mut(&mut self, page_no: PageNo) -> Result<&mut PageBytes> {
        if page_no.0 >= self.page_count {
            return Err(broken(format!("index page {page_no} does not exist")));
        }
        self.pager.page_mut(page_no)
    }

    /// Stamps the current LSN on a changed page; its checksum is written
    /// when the page is flushed.
    fn seal(&mut self, page_no: PageNo) -> Result<()> {
        let lsn = self.lsn;
        page::stamp_lsn(self.page_mut(page_no)?, lsn);
        self.unsealed.insert(page_no);
        Ok(())
    }

    fn get_tree(&self, id: &TreeId) -> Result<Tree> {
        self.tree(id).ok_or_else(|| AeroError::invariant_broken(format!("no index {}.{}.{}", id.schema_id, id.schema_version, id.field)))
    }

    /// Entries below a node.
    fn subtree_count(&self, page_no: PageNo) -> Result<u64> {
        let page = self.page(page_no)?;
        if btree::is_leaf(page) {
            return Ok(btree::entry_count(page) as u64);
        }
        Ok((0..btree::entry_count(page)).map(|index| btree::internal_child(page, index).1).sum())
    }

    /// Walks from the root to the leaf whose range holds `key`, returning
    /// the leaf and the `(internal page, child index)` path.
    fn descend(&self, tree: Tree, key: &[u8]) -> Result<(PageNo, Vec<(PageNo, usize)>)> {
        let mut path = Vec::with_capacity(tree.height as usize);
        let mut node = tree.root;
        loop {
            let page = self.page(node)?;
            if btree::is_leaf(page) {
                return Ok((node, path));
            }
            if path.len() as u32 >= TREE_HEIGHT_MAX || btree::entry_count(page) == 0 {
                return Err(broken(format!("index page {node} is an empty internal node or the tree is too deep")));
            }
            let index = btree::child_index_for(page, key);
            path.push((node, index));
            node = btree::internal_child(page, index).0;
        }
    }

    /// Adds an entry; the key must not be present.
    pub fn insert(&mut self, id: &TreeId, key: &[u8], locator: Locator) -> Result<()> {
        let mut tree = self.get_tree(id)?;
        let (leaf, path) = self.descend(tree, key)?;
        let position = match btree::search(self.page(leaf)?, key) {
            Ok(_) => {
                return Err(AeroError::invariant_broken(format!("duplicate key in index {}.{}", id.schema_id, id.field)).invariant("I2"))
            }
            Err(position) => position,
        };
        let value = locator.to_bytes();
        let mut pending = if btree::insert_entry(self.page_mut(leaf)?, position, key, &value) {
            None
        } else {
            Some(self.split_insert(leaf, position, key, &value)?)
        };
        self.seal(leaf)?;
        let mut child = leaf;
        for &(parent, index) in path.iter().rev() {
            // The child's subtree gained exactly one entry; only a split
            // below (which moved entries to a new right sibling) needs the
            // count summed again.
            let count = match pending {
                None => btree::internal_child(self.page(parent)?, index).1 + 1,
                Some(_) => self.subtree_count(child)?,
            };
            btree::set_internal_count(self.page_mut(parent)?, index, count);
            if let Some((separator, right)) = pending.take() {
                let value = btree::internal_value_bytes(right, self.subtree_count(right)?);
                if !btree::insert_entry(self.page_mut(parent)?, index + 1, &separator, &value) {
                    pending = Some(self.split_insert(parent, index + 1, &separator, &value)?);
                }
            }
            self.seal(parent)?;
            child = parent;
        }
        if let Some((separator, right)) = pending {
            let level = PageHeader::read(self.page(tree.root)?).level.get() + 1;
            let root = self.allocate(level)?;
            let left_value = btree::internal_value_bytes(tree.root, self.subtree_count(tree.root)?);
            let right_value = btree::internal_value_bytes(right, self.subtree_count(right)?);
            let page = self.page_mut(root)?;
            let fits = btree::insert_entry(page, 0, b"", &left_value) && btree::insert_entry(page, 1, &separator, &right_value);
            if !fits {
                return Err(AeroError::invariant_broken("a new root cannot hold two entries"));
            }
            self.seal(root)?;
            tree.root = root;
            tree.height += 1;
        }
        tree.entries += 1;
        self.trees.insert(id.clone(), tree);
        Ok(())
    }

    /// Splits a full node while inserting; returns the right node's first key and page.
    fn split_insert(&mut self, node: PageNo, position: usize, key: &[u8], value: &[u8]) -> Result<(Vec<u8>, PageNo)> {
        let page = self.page(node)?;
        let header = PageHeader::read(page);
        let level = header.level.get();
        let mut entries = btree::entries(page);
        let appending = position == entries.len() && (level > 0 || header.next().is_none());
        entries.insert(position, (key.to_vec(), value.to_vec()));
        let split_at = if appending {
            entries.len() - 1
        } else {
            let total: usize = entries.iter().map(|(key, value)| key.len() + value.len() + 4).sum();
            let mut left_bytes = 0;
            let mut split_at = entries.len() - 1;
            for (index, (key, value)) in entries.iter().enumerate() {
                left_bytes += key.len() + value.len() + 4;
                if left_bytes * 2 >= total {
                    split_at = (index + 1).clamp(1, entries.len() - 1);
                    break;
                }
            }
            split_at
        };
        let right = self.allocate(level)?;
        let old_next = header.next();
        self.fill_node(node, level, &entries[..split_at])?;
        self.fill_node(right, level, &entries[split_at..])?;
        if level == 0 {
            btree::set_links(self.page_mut(node)?, header.prev(), right);
            btree::set_links(self.page_mut(right)?, node, old_next);
            if !old_next.is_none() {
                let next_header = PageHeader::read(self.page(old_next)?);
                btree::set_links(self.page_mut(old_next)?, right, next_header.next());
                self.seal(old_next)?;
            }
        }
        self.seal(right)?;
        Ok((entries[split_at].0.clone(), right))
    }

    fn fill_node(&mut self, node: PageNo, level: u32, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let page = self.page_mut(node)?;
        btree::init_node(page, node, level);
        for (index, (key, value)) in entries.iter().enumerate() {
            if !btree::insert_entry(page, index, key, value) {
                return Err(AeroError::invariant_broken(format!("split half does not fit index page {node}")));
            }
        }
        Ok(())
    }

    /// Removes an entry that must be present; returns its locator.
    pub fn remove(&mut self, id: &TreeId, key: &[u8]) -> Result<Locator> {
        let mut tree = self.get_tree(id)?;
        let (leaf, path) = self.descend(tree, key)?;
        let page = self.page(leaf)?;
        let Ok(position) = btree::search(page, key) else {
            return Err(broken(format!("index {}.{}.{} lacks an entry it should hold", id.schema_id, id.schema_version, id.field)));
        };
        let locator = btree::leaf_locator(page, position);
        btree::remove_entry(self.page_mut(leaf)?, position);
        self.seal(leaf)?;
        for &(parent, index) in path.iter().rev() {
            // Removal never merges nodes: the child's subtree lost exactly one entry.
            let count = btree::internal_child(self.page(parent)?, index).1;
            if count == 0 {
                return Err(broken(format!("index page {parent} counts no entry under the child that held one")));
            }
            btree::set_internal_count(self.page_mut(parent)?, index, count - 1);
            self.seal(parent)?;
        }
        tree.entries -= 1;
        self.trees.insert(id.clone(), tree);
        Ok(locator)
    }

    /// The locator stored under exactly `key`.
    pub fn get(&self, id: &TreeId, key: &[u8]) -> Result<Option<Locator>> {
        let tree = self.get_tree(id)?;
        let (leaf, _) = self.descend(tree, key)?;
        let page = self.page(leaf)?;
        Ok(btree::search(page, key).ok().map(|index| btree::leaf_locator(page, index)))
    }

    /// Number of entries whose key is below `bound` (`Included(k)`: keys
    /// `< k`; `Excluded(k)`: keys `<= k`; `Unbounded`: all entries).
    pub fn rank(&self, id: &TreeId, bound: Bound<&[u8]>) -> Result<u64> {
        let tree = self.get_tree(id)?;
        let (key, inclusive) = match bound {
            Bound::Unbounded => return Ok(tree.entries),
            Bound::Included(key) => (key, false),
            Bound::Excluded(key) => (key, true),
        };
        let mut below = 0u64;
        let mut node = tree.root;
        for _ in 0..TREE_HEIGHT_MAX {
            let page = self.page(node)?;
            if btree::is_leaf(page) {
                let position = match btree::search(page, key) {
                    Ok(index) if inclusive => index + 1,
                    Ok(index) | Err(index) => index,
                };
                return Ok(below + position as u64);
            }
            let index = btree::child_index_for(page, key);
            below += (0..index).map(|child| btree::internal_child(page, child).1).sum::<u64>();
            node = btree::internal_child(page, index).0;
        }
        Err(broken("index deeper than the height limit".into()))
    }

    /// Exact number of entries inside the range `(low, high)`, with the
    /// meaning of Rust's ranges: `low` `Included(k)` is `key >= k`,
    /// `Excluded(k)` is `key > k`; `high` `Included(k)` is `key <= k`,
    /// `Excluded(k)` is `key < k`. (The bounds of [`Indexes::rank`] mean
    /// "below", so the high bound's sense is the opposite of the low one's.)
    pub fn count_range(&self, id: &TreeId, low: Bound<&[u8]>, high: Bound<&[u8]>) -> Result<u64> {
        let below_low = match low {
            Bound::Unbounded => 0,
            Bound::Included(key) => self.rank(id, Bound::Included(key))?,
            Bound::Excluded(key) => self.rank(id, Bound::Excluded(key))?,
        };
        let up_to_high = match high {
            Bound::Unbounded => self.rank(id, Bound::Unbounded)?,
            Bound::Included(key) => self.rank(id, Bound::Excluded(key))?,
            Bound::Excluded(key) => self.rank(id, Bound::Included(key))?,
        };
        Ok(up_to_high.saturating_sub(below_low))
    }

    /// A cursor at the first entry `>= key` (ascending) or the last entry
    /// `< key` (descending); `None` means the tree's end.
    pub fn cursor(&self, id: &TreeId, start: Option<&[u8]>, descending: bool) -> Result<Cursor> {
        let tree = self.get_tree(id)?;
        match (start, descending) {
            (Some(key), _) => {
                let (leaf, _) = self.descend(tree, key)?;
                let position = match btree::search(self.page(leaf)?, key) {
                    Ok(index) | Err(index) => index,
                };
                Ok(Cursor { page: leaf, position: position as i64 - i64::from(descending), descending })
            }
            (None, _) => {
                // The leftmost (or rightmost) leaf, in at most TREE_HEIGHT_MAX steps.
                let mut node = tree.root;
                for _ in 0..TREE_HEIGHT_MAX {
                    let page = self.page(node)?;
                    let count = btree::entry_count(page);
                    if btree::is_leaf(page) {
                        let position = if descending { count as i64 - 1 } else { 0 };
                        return Ok(Cursor { page: node, position, descending });
                    }
                    if count == 0 {
                        return Err(broken(format!("index page {node} is an empty internal node")));
                    }
                    node = btree::internal_child(page, if descending { count - 1 } else { 0 }).0;
                }
                Err(broken(format!("tree {}.{} is deeper than {TREE_HEIGHT_MAX} levels", id.schema_id, id.field)))
            }
        }
    }

    /// The cursor's entry, advancing it; None at the tree's end.
    pub fn next(&self, cursor: &mut Cursor) -> Result<Option<(Vec<u8>, Locator)>> {
        // Every step either returns an entry or moves to a sibling page; more
        // pages without an entry than the space holds means a sibling cycle.
        let mut pages_without_entry = 0u64;
        loop {
            if cursor.page.is_none() {
                return Ok(None);
            }
            if pages_without_entry > self.page_count {
                return Err(broken(format!("the sibling links from index page {} run in a cycle", cursor.page)));
            }
            pages_without_entry += 1;
            let page = self.page(cursor.page)?;
            let count = btree::entry_count(page) as i64;
            if cursor.position >= 0 && cursor.position < count {
                let index = cursor.position as usize;
                cursor.position += if cursor.descending { -1 } else { 1 };
                return Ok(Some((btree::key(page, index).to_vec(), btree::leaf_locator(page, index))));
            }
            let header = PageHeader::read(page);
            if cursor.descending {
                cursor.page = header.prev();
                cursor.position = match cursor.page.is_none() {
                    true => -1,
                    false => btree::entry_count(self.page(cursor.page)?) as i64 - 1,
                };
            } else {
                cursor.page = header.next();
                cursor.position = 0;
            }
        }
    }

    /// Builds a tree from entries sorted by key (strictly increasing),
    /// replacing any tree of that id: leaves left to right, then each
    /// level above from the first keys of the level below.
    pub fn bulk_load<'a>(&mut self, id: &TreeId, sorted: impl Iterator<Item = (&'a [u8], Locator)>) -> Result<()> {
        let mut level_entries: Vec<(Vec<u8>, PageNo, u64)> = Vec::new();
        let mut leaf = self.allocate(0)?;
        let mut first_key: Option<Vec<u8>> = None;
        let mut previous: Option<&'a [u8]> = None;
        let mut total = 0u64;
        for (key, locator) in sorted {
            match previous.map(|previous| previous.cmp(key)) {
                // Two documents with one key: every key ends with the
                // document's `_id`, so two documents share an `_id`. Found
                // here rather than in a pass of its own over the keys.
                Some(std::cmp::Ordering::Equal) => {
                    return Err(AeroError::new(
                        ErrorCode::DataCorruption,
                        format!(
                            "two documents of {}/{} share the index key of field '{}' (duplicate _id); one is on page {}",
                            id.schema_id, id.schema_version, id.field, locator.page
                        ),
                    )
                    .detail("page", locator.page.0))
                }
                Some(std::cmp::Ordering::Greater) => {
                    return Err(AeroError::invariant_broken("bulk load keys are not strictly increasing").invariant("I2"))
                }
                _ => {}
            }
            let page = self.page(leaf)?;
            let used = PAGE_SIZE_BYTES - page::HEADER_BYTES - btree::free_bytes(page);
            if btree::entry_count(page) > 0 && used + btree::entry_bytes(key.len(), true) > BULK_FILL_BYTES {
                let next = self.allocate(0)?;
                let previous_leaf = PageHeader::read(self.page(leaf)?).prev();
                btree::set_links(self.page_mut(leaf)?, previous_leaf, next);
                btree::set_links(self.page_mut(next)?, leaf, PageNo::NONE);
                self.seal(leaf)?;
                level_entries.push((first_key.take().unwrap_or_default(), leaf, self.subtree_count(leaf)?));
                leaf = next;
            }
            let page = self.page_mut(leaf)?;
            let position = btree::entry_count(page);
            if !btree::insert_entry(page, position, key, &locator.to_bytes()) {
                return Err(AeroError::invariant_broken("bulk load entry does not fit an empty leaf"));
            }
            if first_key.is_none() {
                first_key = Some(key.to_vec());
            }
            previous = Some(key);
            total += 1;
        }
        self.seal(leaf)?;
        level_entries.push((first_key.unwrap_or_default(), leaf, self.subtree_count(leaf)?));
        let mut height = 1;
        while level_entries.len() > 1 {
            level_entries = self.build_level(&level_entries, height)?;
            height += 1;
        }
        let root = level_entries[0].1;
        self.trees.insert(id.clone(), Tree { root, height, entries: total });
        Ok(())
    }

    fn build_level(&mut self, children: &[(Vec<u8>, PageNo, u64)], level: u32) -> Result<Vec<(Vec<u8>, PageNo, u64)>> {
        let mut parents = Vec::new();
        let mut node = self.allocate(level)?;
        let mut node_first: Option<Vec<u8>> = None;
        let mut node_count = 0u64;
        for (index, (key, child, count)) in children.iter().enumerate() {
            // The leftmost entry of a level carries the empty key (minus infinity).
            let key: &[u8] = if index == 0 { b"" } else { key };
            let page = self.page(node)?;
            let used = PAGE_SIZE_BYTES - page::HEADER_BYTES - btree::free_bytes(page);
            if btree::entry_count(page) > 0 && used + btree::entry_bytes(key.len(), false) > BULK_FILL_BYTES {
                self.seal(node)?;
                parents.push((node_first.take().unwrap_or_default(), node, node_count));
                node = self.allocate(level)?;
                node_count = 0;
            }
            let page = self.page_mut(node)?;
            let position = btree::entry_count(page);
            if !btree::insert_entry(page, position, key, &btree::internal_value_bytes(*child, *count)) {
                return Err(AeroError::invariant_broken("bulk load entry does not fit an empty internal node"));
            }
            if node_first.is_none() {
                node_first = Some(key.to_vec());
            }
            node_count += count;
        }
        self.seal(node)?;
        parents.push((node_first.unwrap_or_default(), node, node_count));
        Ok(parents)
    }

    /// The bytes of `indexes/directory.json`, naming every tree's root.
    pub fn directory_text(&self) -> String {
        let trees: Vec<btree::DirectoryEntry<'_>> = self
            .trees
            .iter()
            .map(|(id, tree)| btree::DirectoryEntry {
                schema_id: &id.schema_id,
                schema_version: &id.schema_version,
                field: &id.field,
                root: tree.root.0,
                height: tree.height,
                entries: tree.entries,
            })
            .collect();
        btree::encode_directory(self.lsn.0, &trees)
    }

    /// Writes the checksum of every page changed since its last flush,
    /// then flushes the index segments.
    pub fn flush(&mut self) -> Result<()> {
        for page_no in std::mem::take(&mut self.unsealed) {
            let page = self.page_mut(page_no)?;
            let lsn = PageHeader::read(page).lsn();
            page::seal(page, lsn);
        }
        self.pager.flush()
    }

    /// Checks every invariant of one tree: node checksums and structure,
    /// keys strictly increasing in key order across the whole tree and
    /// within each child's bounds, every leaf at the same depth, child
    /// counts equal to the real number of entries, leaf sibling links, and
    /// the entry count. Returns the number of entries. Iterative, bounded
    /// by the number of pages.
    pub fn check(&self, id: &TreeId) -> Result<u64> {
        let tree = self.get_tree(id)?;
        // (page, depth, lower bound, upper bound, expected count)
        let mut stack: Vec<(PageNo, u32, Vec<u8>, Option<Vec<u8>>, Option<u64>)> = vec![(tree.root, 1, Vec::new(), None, None)];
        let mut leaves: Vec<PageNo> = Vec::new();
        let mut previous_key: Option<Vec<u8>> = None;
        let mut total = 0u64;
        let mut visited = 0u64;
        while let Some((node, depth, low, high, expected)) = stack.pop() {
            visited += 1;
            if visited > self.page_count || depth > tree.height {
                return Err(broken(format!("tree {}.{} has a cycle or is deeper than its height {}", id.schema_id, id.field, tree.height)));
            }
            let page = self.page(node)?;
            if self.unsealed.contains(&node) {
                // Changed since its last flush: its checksum is not written yet.
                let mut sealed = Box::new(*page);
                let lsn = PageHeader::read(&sealed).lsn();
                page::seal(&mut sealed, lsn);
                page::verify(&sealed, node).map_err(|error| broken(format!("index page {node}: {error}")))?;
            } else {
                page::verify(page, node).map_err(|error| broken(format!("index page {node}: {error}")))?;
            }
            btree::check_node(page).map_err(|error| broken(format!("index page {node}: {error}")))?;
            let count = btree::entry_count(page);
            for index in 0..count {
                let key = btree::key(page, index);
                let below_low = key < low.as_slice() && !(index == 0 && !btree::is_leaf(page) && key.is_empty() && low.is_empty());
                if below_low || high.as_deref().is_some_and(|high| key >= high) {
                    return Err(broken(format!("index page {node} entry {index} lies outside its parent's bounds")));
                }
            }
            if let Some(expected) = expected {
                if self.subtree_count(node)? != expected {
                    return Err(broken(format!("index page {node}: parent count {expected} differs from {}", self.subtree_count(node)?)));
                }
            }
            if btree::is_leaf(page) {
                if depth != tree.height {
                    return Err(broken(format!("leaf {node} at depth {depth}, tree height {}", tree.height)));
                }
                for index in 0..count {
                    let key = btree::key(page, index);
                    if previous_key.as_deref().is_some_and(|previous| previous >= key) {
                        return Err(broken(format!("index page {node} entry {index} is out of order across leaves")));
                    }
                    previous_key = Some(key.to_vec());
                }
                total += count as u64;
                leaves.push(node);
                continue;
            }
            // Push children right to left so they pop left to right.
            for index in (0..count).rev() {
                let (child, child_count) = btree::internal_child(page, index);
                let child_low = btree::key(page, index).to_vec();
                let child_high = if index + 1 < count { Some(btree::key(page, index + 1).to_vec()) } else { high.clone() };
                stack.push((child, depth + 1, child_low, child_high, Some(child_count)));
            }
        }
        for (position, leaf) in leaves.iter().enumerate() {
            let header = PageHeader::read(self.page(*leaf)?);
            let prev = if position == 0 { PageNo::NONE } else { leaves[position - 1] };
            let next = leaves.get(position + 1).copied().unwrap_or(PageNo::NONE);
            if header.prev() != prev || header.next() != next {
                return Err(broken(format!(
                    "leaf {leaf} has sibling links {}/{} but its neighbours are {}/{}",
                    header.prev().0,
                    header.next().0,
                    prev.0,
                    next.0
                )));
            }
        }
        if total != tree.entries {
            return Err(broken(format!("tree {}.{} holds {total} entries but records {}", id.schema_id, id.field, tree.entries)));
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn key_of(value: u32) -> Vec<u8> {
        // Variable-length keys exercise byte-based splits.
        let mut key = value.to_be_bytes().to_vec();
        key.extend(std::iter::repeat_n(b'k', (value % 37) as usize));
        key
    }

    fn locator(value: u32) -> Locator {
        Locator { page: PageNo(u64::from(value)), slot: (value % 7) as u16 }
    }

    #[test]
    fn random_inserts_and_removes_keep_every_invariant() {
        let folder = tempfile::tempdir().unwrap();
        let mut indexes = Indexes::new(Pager::open(crate::vfs::os(), folder.path(), ErrorCode::IndexCorruption).unwrap());
        let id = TreeId::new("s", "v", "f");
        indexes.bulk_load(&id, std::iter::empty()).unwrap();
        let mut model = BTreeSet::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for step in 0..20_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let value = (rng % 5000) as u32;
            if model.contains(&value) && rng % 3 == 0 {
                assert_eq!(indexes.remove(&id, &key_of(value)).unwrap(), locator(value));
                model.remove(&value);
            } else if !model.contains(&value) {
                indexes.insert(&id, &key_of(value), locator(value)).unwrap();
                model.insert(value);
            }
            if step % 2500 == 0 {
                assert_eq!(indexes.check(&id).unwrap(), model.len() as u64);
            }
        }
        assert_eq!(indexes.check(&id).unwrap(), model.len() as u64);
        // Ranks and range counts are exact.
        for bound in [0u32, 1, 777, 2500, 4999, 5000] {
            let expected = model.range(..bound).count() as u64;
            assert_eq!(indexes.rank(&id, Bound::Included(&key_of(bound))).unwrap(), expected);
        }
        // Every combination of bounds counts exactly what the model holds,
        // including bounds equal to a stored key (the `_id` index's case).
        let stored: Vec<u32> = model.iter().copied().step_by(331).collect();
        for &low in stored.iter().chain([0u32, 5000].iter()) {
            for &high in stored.iter().chain([0u32, 5000].iter()) {
                let (low_key, high_key) = (key_of(low), key_of(high));
                let lows = [Bound::Unbounded, Bound::Included(low), Bound::Excluded(low)];
                let highs = [Bound::Unbounded, Bound::Included(high), Bound::Excluded(high)];
                for low_bound in lows {
                    for high_bound in highs {
                        let as_key = |bound: Bound<u32>, key: &Vec<u8>| match bound {
                            Bound::Unbounded => Bound::Unbounded,
                            Bound::Included(_) => Bound::Included(key.clone()),
                            Bound::Excluded(_) => Bound::Excluded(key.clone()),
                        };
                        let (low_k, high_k) = (as_key(low_bound, &low_key), as_key(high_bound, &high_key));
                        let expected = model.iter().filter(|value| {
                            let key = key_of(**value);
                            (match &low_k {
                                Bound::Unbounded => true,
                                Bound::Included(k) => key >= *k,
                                Bound::Excluded(k) => key > *k,
                            }) && (match &high_k {
                                Bound::Unbounded => true,
                                Bound::Included(k) => key <= *k,
                                Bound::Excluded(k) => key < *k,
                            })
                        });
                        let counted = indexes.count_range(&id, low_k.as_ref().map(Vec::as_slice), high_k.as_ref().map(Vec::as_slice));
                        assert_eq!(counted.unwrap(), expected.count() as u64, "{low_bound:?} {high_bound:?}");
                    }
                }
            }
        }
        // Ascending and descending scans see the model in order.
        let mut cursor = indexes.cursor(&id, None, false).unwrap();
        let mut seen = Vec::new();
        while let Some((key, _)) = indexes.next(&mut cursor).unwrap() {
            seen.push(key);
        }
        let expected: Vec<Vec<u8>> = model.iter().map(|value| key_of(*value)).collect();
        assert_eq!(seen, expected);
        let mut cursor = indexes.cursor(&id, Some(&key_of(2500)), true).unwrap();
        let mut descending = Vec::new();
        while let Some((key, _)) = indexes.next(&mut cursor).unwrap() {
            descending.push(key);
        }
        let expected: Vec<Vec<u8>> = model.range(..2500).rev().map(|value| key_of(*value)).collect();
        assert_eq!(descending, expected);
    }

    #[test]
    fn bulk_load_builds_a_valid_tree() {
        let folder = tempfile::tempdir().unwrap();
        let mut indexes = Indexes::new(Pager::open(crate::vfs::os(), folder.path(), ErrorCode::IndexCorruption).unwrap());
        let id = TreeId::new("s", "v", "f");
        let keys: Vec<Vec<u8>> = (0..100_000u32).map(key_of).collect();
        let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
        sorted.sort();
        indexes.bulk_load(&id, sorted.iter().map(|key| (key.as_slice(), locator(1)))).unwrap();
        assert_eq!(indexes.check(&id).unwrap(), 100_000);
        assert!(indexes.tree(&id).unwrap().height >= 3);
        indexes.insert(&id, b"\xff\xff\xff\xff", locator(2)).unwrap();
        assert_eq!(indexes.check(&id).unwrap(), 100_001);
    }
}

/// A position in a tree's leaf chain.
#[derive(Clone, Copy, Debug)]
pub struct Cursor {
    page: PageNo,
    position: i64,
    descending: bool,
}
