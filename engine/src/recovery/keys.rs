//! The index keys a boot collects, and their sort.
//!
//! Each verify thread pushes the keys it finds into one [`KeyArena`] per
//! tree and sorts it before it ends, so the sort runs on every core with
//! even shares. The rebuild merges a tree's sorted arenas ([`KeyRuns`])
//! straight into the bulk load: nothing is copied to join them.
//!
//! Key bytes go into chunks of [`CHUNK_BYTES`] that never move, so an arena
//! grows without copying what it holds. The sort is a multikey sort on
//! eight bytes at a time: every entry carries eight bytes of its key from
//! the current depth as a big-endian `u64`, the entries sort by that number,
//! and each run of entries that agree on it sorts again further in (after
//! skipping what the whole run shares). Most comparisons therefore read
//! only the entries, not the scattered key bytes.

use std::cmp::Ordering;

use aerodb_format::btree::{Locator, KEY_BYTES_MAX};
use aerodb_format::PageNo;

use crate::error::{AeroError, Result};

/// Bytes per chunk of key bytes. A key never spans two chunks.
const CHUNK_BYTES: usize = 1 << 20;
const CHUNK_SHIFT: u32 = 20;
/// Chunks an arena may hold: positions are 32 bits (4 GiB of keys).
const CHUNKS_MAX: usize = 1 << (32 - CHUNK_SHIFT);
/// Runs this short sort by whole keys instead of another level.
const SMALL_RUN: usize = 16;
/// Entries ahead of the one read whose key is prefetched.
const PREFETCH_DISTANCE: usize = 8;

const _: () = assert!(KEY_BYTES_MAX <= CHUNK_BYTES);

/// Index keys of one tree, with their documents' locators.
#[derive(Default)]
pub struct KeyArena {
    chunks: Vec<Vec<u8>>,
    entries: Vec<ArenaEntry>,
}

#[derive(Clone, Copy)]
struct ArenaEntry {
    /// Eight key bytes from the sort's current depth, big-endian, zero
    /// padded (only meaningful while sorting).
    prefix: u64,
    page: u64,
    /// Chunk number << CHUNK_SHIFT | offset in the chunk.
    position: u32,
    length: u16,
    slot: u16,
}

impl KeyArena {
    /// Adds a key (at most `KEY_BYTES_MAX` bytes).
    pub fn push(&mut self, key: &[u8], locator: Locator) -> Result<()> {
        if key.len() > KEY_BYTES_MAX {
            return Err(AeroError::invariant_broken(format!("an index key of {} bytes, over {KEY_BYTES_MAX}", key.len())));
        }
        let fits = self.chunks.last().is_some_and(|chunk| chunk.len() + key.len() <= CHUNK_BYTES);
        if !fits {
            if self.chunks.len() == CHUNKS_MAX {
                return Err(AeroError::invariant_broken("index key arena over 4 GiB"));
            }
            self.chunks.push(Vec::with_capacity(CHUNK_BYTES));
        }
        let number = self.chunks.len() - 1;
        let chunk = &mut self.chunks[number];
        let position = ((number as u32) << CHUNK_SHIFT) | chunk.len() as u32;
        chunk.extend_from_slice(key);
        self.entries.push(ArenaEntry { prefix: 0, page: locator.page.0, position, length: key.len() as u16, slot: locator.slot });
        Ok(())
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn key(&self, entry: &ArenaEntry) -> &[u8] {
        key_of(&self.chunks, entry)
    }

    /// Sorts the keys in byte order (equal keys end up next to each other).
    pub fn sort(&mut self) {
        let chunks = &self.chunks;
        let entries = &mut self.entries;
        let mut work = vec![(0, entries.len(), 0usize)];
        while let Some((start, end, depth)) = work.pop() {
            let run = &mut entries[start..end];
            if run.len() <= SMALL_RUN {
                run.sort_unstable_by(|left, right| key_of(chunks, left)[depth..].cmp(&key_of(chunks, right)[depth..]));
                continue;
            }
            // Skip the bytes the whole run shares, then take eight more of each key.
            let depth = depth + shared_length(chunks, run, depth);
            for index in 0..run.len() {
                if let Some(ahead) = run.get(index + PREFETCH_DISTANCE) {
                    prefetch(key_of(chunks, ahead));
                }
                let entry = &mut run[index];
                entry.prefix = prefix_at(key_of(chunks, entry), depth);
            }
            let rank = |entry: &ArenaEntry| (entry.prefix, rest_class(entry, depth));
            run.sort_unstable_by_key(rank);
            // Runs that agree on the eight bytes and go on past them sort further in.
            let mut first = 0;
            while first < run.len() {
                let class = rank(&run[first]);
                let mut last = first + 1;
                while last < run.len() && rank(&run[last]) == class {
                    last += 1;
                }
                if last - first > 1 && class.1 > 8 {
                    work.push((start + first, start + last, depth + 8));
                }
                first = last;
            }
        }
    }

    /// The keys in the arena's order, prefetching ahead.
    fn iter(&self) -> impl Iterator<Item = (&[u8], Locator)> {
        self.entries.iter().enumerate().map(move |(index, entry)| {
            if let Some(ahead) = self.entries.get(index + PREFETCH_DISTANCE) {
                prefetch(self.key(ahead));
            }
            (self.key(entry), locator_of(entry))
        })
    }
}

fn key_of<'a>(chunks: &'a [Vec<u8>], entry: &ArenaEntry) -> &'a [u8] {
    let chunk = &chunks[(entry.position >> CHUNK_SHIFT) as usize];
    let offset = (entry.position & ((1 << CHUNK_SHIFT) - 1)) as usize;
    &chunk[offset..offset + usize::from(entry.length)]
}

fn locator_of(entry: &ArenaEntry) -> Locator {
    Locator { page: PageNo(entry.page), slot: entry.slot }
}

/// How many bytes past `depth` the key has, up to 9: "9" means "more than
/// the eight bytes of the prefix", so two entries with equal prefixes and
/// class 9 need a look further in, and a shorter key (zero padded) sorts
/// before a longer one that agrees with it.
fn rest_class(entry: &ArenaEntry, depth: usize) -> u8 {
    (usize::from(entry.length) - depth).min(9) as u8
}

/// Eight bytes of `key` from `depth`, big-endian, zero padded.
fn prefix_at(key: &[u8], depth: usize) -> u64 {
    let rest = &key[depth.min(key.len())..];
    let mut bytes = [0u8; 8];
    let length = rest.len().min(8);
    bytes[..length].copy_from_slice(&rest[..length]);
    u64::from_be_bytes(bytes)
}

/// How many bytes after `depth` every key of `run` shares with the first.
fn shared_length(chunks: &[Vec<u8>], run: &[ArenaEntry], depth: usize) -> usize {
    let first = &key_of(chunks, &run[0])[depth..];
    let mut shared = first.len();
    for index in 1..run.len() {
        if shared == 0 {
            break;
        }
        if let Some(ahead) = run.get(index + PREFETCH_DISTANCE) {
            prefetch(key_of(chunks, ahead));
        }
        let key = &key_of(chunks, &run[index])[depth..];
        shared = common_prefix(&first[..shared], key);
    }
    shared
}

/// Length of the common prefix of two byte strings.
fn common_prefix(left: &[u8], right: &[u8]) -> usize {
    let length = left.len().min(right.len());
    let mut at = 0;
    while at + 8 <= length {
        let a = u64::from_be_bytes(left[at..at + 8].try_into().unwrap_or_default());
        let b = u64::from_be_bytes(right[at..at + 8].try_into().unwrap_or_default());
        if a != b {
            return at + (a ^ b).leading_zeros() as usize / 8;
        }
        at += 8;
    }
    while at < length && left[at] == right[at] {
        at += 1;
    }
    at
}

/// Asks the processor to bring `bytes` into the cache (a hint only).
#[inline(always)]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no effect on memory; the
    // pointer is that of a live slice.
    unsafe {
        std::arch::x86_64::_mm_prefetch(bytes.as_ptr().cast(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// The sorted arenas of one tree (one per verify thread, and one for
/// documents found on overflow pages), read as one sorted sequence.
#[derive(Default)]
pub struct KeyRuns {
    runs: Vec<KeyArena>,
}

impl KeyRuns {
    /// Adds an arena; it must be sorted.
    pub fn add(&mut self, arena: KeyArena) {
        if !arena.is_empty() {
            self.runs.push(arena);
        }
    }

    /// Keys held in all runs.
    pub fn len(&self) -> usize {
        self.runs.iter().map(KeyArena::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of key text held in all runs.
    pub fn key_bytes(&self) -> usize {
        self.runs.iter().flat_map(|run| run.chunks.iter()).map(Vec::len).sum()
    }

    /// Every key in byte order: a merge of the runs.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Locator)> {
        let mut heads: Vec<_> = self.runs.iter().map(|run| run.iter().peekable()).collect();
        std::iter::from_fn(move || {
            let mut best: Option<usize> = None;
            for index in 0..heads.len() {
                let Some(&(key, _)) = heads[index].peek() else { continue };
                let better = match best {
                    None => true,
                    Some(chosen) => heads[chosen].peek().is_some_and(|&(best_key, _)| key.cmp(best_key) == Ordering::Less),
                };
                if better {
                    best = Some(index);
                }
            }
            best.and_then(|index| heads[index].next())
        })
    }
}

impl From<KeyArena> for KeyRuns {
    fn from(mut arena: KeyArena) -> KeyRuns {
        arena.sort();
        let mut runs = KeyRuns::default();
        runs.add(arena);
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Keys with long shared prefixes, zero bytes, prefixes of each other and duplicates.
    fn keys(seed: u64, count: usize) -> Vec<Vec<u8>> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                let shape = rng(&mut state) % 6;
                let mut key = match shape {
                    0 => b"name-".to_vec(),
                    1 => vec![0u8; (rng(&mut state) % 20) as usize],
                    2 => b"abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwx".to_vec(),
                    _ => Vec::new(),
                };
                for _ in 0..rng(&mut state) % 24 {
                    key.push(match rng(&mut state) % 4 {
                        0 => 0,
                        1 => 255,
                        _ => b'a' + (rng(&mut state) % 3) as u8,
                    });
                }
                key
            })
            .collect()
    }

    #[test]
    fn sorts_like_a_slice_sort() {
        for seed in 1..40u64 {
            let count = [0, 1, 2, 17, 300, 3_000][(seed % 6) as usize];
            let keys = keys(seed, count);
            let mut arena = KeyArena::default();
            for (index, key) in keys.iter().enumerate() {
                arena.push(key, Locator { page: PageNo(index as u64), slot: 7 }).unwrap();
            }
            arena.sort();
            let got: Vec<Vec<u8>> = arena.iter().map(|(key, _)| key.to_vec()).collect();
            let mut expected = keys.clone();
            expected.sort();
            assert_eq!(got, expected, "seed {seed}");
            // Every locator still travels with its own key.
            for (key, locator) in arena.iter() {
                assert_eq!(keys[locator.page.0 as usize], key);
                assert_eq!(locator.slot, 7);
            }
        }
    }

    #[test]
    fn runs_merge_in_order() {
        for seed in 1..20u64 {
            let all = keys(seed, 2_000);
            let mut runs = KeyRuns::default();
            for part in all.chunks(700) {
                let mut arena = KeyArena::default();
                for key in part {
                    arena.push(key, Locator { page: PageNo(1), slot: 0 }).unwrap();
                }
                arena.sort();
                runs.add(arena);
            }
            runs.add(KeyArena::default());
            let got: Vec<Vec<u8>> = runs.iter().map(|(key, _)| key.to_vec()).collect();
            let mut expected = all.clone();
            expected.sort();
            assert_eq!(runs.len(), all.len());
            assert_eq!(got, expected, "seed {seed}");
        }
    }

    #[test]
    fn keys_fill_chunks_without_spanning_them() {
        let mut arena = KeyArena::default();
        let key = vec![9u8; KEY_BYTES_MAX];
        for _ in 0..(2 * CHUNK_BYTES / KEY_BYTES_MAX + 3) {
            arena.push(&key, Locator { page: PageNo(0), slot: 0 }).unwrap();
        }
        assert_eq!(arena.chunks.len(), 3);
        assert!(arena.chunks.iter().all(|chunk| chunk.len() <= CHUNK_BYTES));
        assert!(arena.iter().all(|(bytes, _)| bytes == key.as_slice()));
        assert!(arena.push(&vec![0u8; KEY_BYTES_MAX + 1], Locator { page: PageNo(0), slot: 0 }).is_err());
    }

    #[test]
    fn common_prefix_counts_bytes() {
        assert_eq!(common_prefix(b"", b"abc"), 0);
        assert_eq!(common_prefix(b"abcdefghij", b"abcdefghiX"), 9);
        assert_eq!(common_prefix(b"abcdefgh", b"abcdefgh"), 8);
        assert_eq!(common_prefix(b"abcXefghijk", b"abcdefghijk"), 3);
        assert_eq!(prefix_at(b"ab", 0), u64::from_be_bytes(*b"ab\0\0\0\0\0\0"));
        assert_eq!(prefix_at(b"ab", 2), 0);
    }
}
