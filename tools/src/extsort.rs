//! External sort of byte records in bounded memory.
//!
//! A [`Sorter`] takes records (byte strings, ordered by plain byte
//! comparison) into a buffer of a fixed budget. When the buffer is full it is
//! sorted and written as a *run* to an unnamed temporary file (`O_TMPFILE`
//! in the spill folder: it disappears when closed, even if the process is
//! killed). [`Sorter::finish`] returns the records in order: straight from
//! memory when nothing was spilled, otherwise by merging the runs, at most
//! [`MERGE_FAN_IN`] at a time, each read through a buffer whose size is a
//! share of the same budget. So the memory a sorter holds is its budget (plus
//! one record per run being merged), whatever the number of records; the
//! disk it uses is about the records' total size.
//!
//! Records are encoded by the caller so that byte order is the order wanted
//! (big-endian numbers, length-prefixed strings).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Most runs merged in one pass; more runs are first merged into longer ones.
pub const MERGE_FAN_IN: usize = 16;

/// Smallest budget a sorter accepts (smaller ones are raised to it).
pub const SORTER_BUDGET_MIN_BYTES: usize = 64 * 1024;

/// Bytes of bookkeeping per record in memory (its start in the buffer).
const ENTRY_BYTES: usize = 4;

/// Sorts records in at most `budget` bytes of memory, spilling to `spill_dir`.
pub struct Sorter {
    budget: usize,
    /// Records as `[u32 length][bytes]`.
    arena: Vec<u8>,
    /// Start of each record in `arena`.
    starts: Vec<u32>,
    runs: Vec<File>,
    spill_dir: PathBuf,
    records: u64,
    spilled_bytes: u64,
}

impl Sorter {
    pub fn new(budget: usize, spill_dir: &Path) -> Sorter {
        let budget = budget.clamp(SORTER_BUDGET_MIN_BYTES, u32::MAX as usize);
        Sorter {
            budget,
            arena: Vec::new(),
            starts: Vec::new(),
            runs: Vec::new(),
            spill_dir: spill_dir.to_path_buf(),
            records: 0,
            spilled_bytes: 0,
        }
    }

    /// Records pushed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written to temporary files so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// Adds one record. Records longer than a quarter of the budget are refused.
    pub fn push(&mut self, record: &[u8]) -> std::io::Result<()> {
        if record.len() > self.budget / 4 {
            return Err(std::io::Error::other(format!(
                "a record of {} bytes does not fit a sort buffer of {} bytes",
                record.len(),
                self.budget
            )));
        }
        let needed = 4 + record.len();
        if self.arena.capacity() == 0 {
            // Reserved once: the buffer never reallocates past its budget
            // (untouched reserved pages cost no memory).
            self.arena.reserve_exact(self.budget - self.budget / 8);
            self.starts.reserve_exact(self.budget / 8 / ENTRY_BYTES);
        }
        if self.arena.len() + needed > self.arena.capacity() || self.starts.len() == self.starts.capacity() {
            self.spill()?;
        }
        self.starts.push(self.arena.len() as u32);
        self.arena.extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.arena.extend_from_slice(record);
        self.records += 1;
        Ok(())
    }

    fn sort_in_memory(&mut self) {
        let arena = &self.arena;
        self.starts.sort_unstable_by(|&a, &b| record_at(arena, a).cmp(record_at(arena, b)));
    }

    /// Writes the buffer as one sorted run.
    fn spill(&mut self) -> std::io::Result<()> {
        if self.starts.is_empty() {
            return Ok(());
        }
        self.sort_in_memory();
        let file = tempfile::tempfile_in(&self.spill_dir).map_err(|error| {
            std::io::Error::new(error.kind(), format!("cannot make a temporary file in {}: {error}", self.spill_dir.display()))
        })?;
        let mut writer = BufWriter::with_capacity(64 * 1024, file);
        for &start in &self.starts {
            let record = record_at(&self.arena, start);
            writer.write_all(&(record.len() as u32).to_le_bytes())?;
            writer.write_all(record)?;
            self.spilled_bytes += 4 + record.len() as u64;
        }
        let mut file = writer.into_inner().map_err(|error| error.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.arena.clear();
        self.starts.clear();
        Ok(())
    }

    /// Every record pushed, in byte order (equal records all kept).
    pub fn finish(mut self) -> std::io::Result<Sorted> {
        if self.runs.is_empty() {
            self.sort_in_memory();
            return Ok(Sorted { source: Source::Memory { arena: self.arena, starts: self.starts, next: 0 } });
        }
        self.spill()?;
        self.arena = Vec::new();
        self.starts = Vec::new();
        let buffer = (self.budget / (MERGE_FAN_IN + 1)).clamp(4096, 1024 * 1024);
        let mut runs = std::mem::take(&mut self.runs);
        while runs.len() > MERGE_FAN_IN {
            let group: Vec<File> = runs.drain(..MERGE_FAN_IN).collect();
            let mut merge = Merge::new(group, buffer)?;
            let file = tempfile::tempfile_in(&self.spill_dir)?;
            let mut writer = BufWriter::with_capacity(buffer, file);
            while let Some(record) = merge.next()? {
                writer.write_all(&(record.len() as u32).to_le_bytes())?;
                writer.write_all(record)?;
            }
            let mut file = writer.into_inner().map_err(|error| error.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            runs.push(file);
        }
        Ok(Sorted { source: Source::Merge(Merge::new(runs, buffer)?) })
    }
}

fn record_at(arena: &[u8], start: u32) -> &[u8] {
    let start = start as usize;
    let length = u32::from_le_bytes([arena[start], arena[start + 1], arena[start + 2], arena[start + 3]]) as usize;
    &arena[start + 4..start + 4 + length]
}

/// The records of a finished sorter, in order.
pub struct Sorted {
    source: Source,
}

enum Source {
    Memory {
        arena: Vec<u8>,
        starts: Vec<u32>,
        next: usize,
    },
    Merge(Merge),
    /// Several sorted streams merged (the parts of a parallel check).
    Streams {
        streams: Vec<Sorted>,
        heads: Vec<Option<Vec<u8>>>,
        last: Option<usize>,
        started: bool,
    },
}

impl Sorted {
    /// One stream of the records of all of `streams`, in order.
    pub fn merge(mut streams: Vec<Sorted>) -> Sorted {
        if streams.len() == 1 {
            return streams.pop().expect("one stream");
        }
        let heads = vec![None; streams.len()];
        Sorted { source: Source::Streams { streams, heads, last: None, started: false } }
    }

    /// The next record, or `None` after the last.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> std::io::Result<Option<&[u8]>> {
        match &mut self.source {
            Source::Memory { arena, starts, next } => {
                let Some(&start) = starts.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                Ok(Some(record_at(arena, start)))
            }
            Source::Merge(merge) => merge.next(),
            Source::Streams { streams, heads, last, started } => {
                let refill = |index: usize, streams: &mut Vec<Sorted>, heads: &mut Vec<Option<Vec<u8>>>| -> std::io::Result<()> {
                    let next = streams[index].next()?.map(|record| record.to_vec());
                    heads[index] = next;
                    Ok(())
                };
                if !*started {
                    *started = true;
                    for index in 0..streams.len() {
                        refill(index, streams, heads)?;
                    }
                } else if let Some(index) = last.take() {
                    refill(index, streams, heads)?;
                }
                let mut best: Option<usize> = None;
                for (index, head) in heads.iter().enumerate() {
                    if let Some(head) = head {
                        if best.is_none_or(|best| heads[best].as_ref().is_some_and(|other| head < other)) {
                            best = Some(index);
                        }
                    }
                }
                *last = best;
                Ok(best.and_then(|index| heads[index].as_deref()))
            }
        }
    }
}

struct Run {
    reader: BufReader<File>,
    current: Vec<u8>,
    live: bool,
}

impl Run {
    fn advance(&mut self) -> std::io::Result<()> {
        let mut length = [0u8; 4];
        match self.reader.read_exact(&mut length) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.live = false;
                return Ok(());
            }
            Err(error) => return Err(error),
        }
        self.current.resize(u32::from_le_bytes(length) as usize, 0);
        self.reader.read_exact(&mut self.current)
    }
}

/// A k-way merge of sorted runs (k ≤ [`MERGE_FAN_IN`], so a linear pick of
/// the smallest head is as fast as a heap).
struct Merge {
    runs: Vec<Run>,
    last: Option<usize>,
}

impl Merge {
    fn new(files: Vec<File>, buffer: usize) -> std::io::Result<Merge> {
        let mut runs = Vec::with_capacity(files.len());
        for file in files {
            let mut run = Run { reader: BufReader::with_capacity(buffer, file), current: Vec::new(), live: true };
            run.advance()?;
            runs.push(run);
        }
        Ok(Merge { runs, last: None })
    }

    fn next(&mut self) -> std::io::Result<Option<&[u8]>> {
        if let Some(last) = self.last.take() {
            self.runs[last].advance()?;
        }
        let mut best: Option<usize> = None;
        for (index, run) in self.runs.iter().enumerate() {
            if run.live && best.is_none_or(|best| run.current < self.runs[best].current) {
                best = Some(index);
            }
        }
        self.last = best;
        Ok(best.map(|index| self.runs[index].current.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut sorted: Sorted) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(record) = sorted.next().unwrap() {
            out.push(record.to_vec());
        }
        out
    }

    fn records(count: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let length = (state % 40) as usize;
                (0..length).map(|index| (state >> (index % 8)) as u8 % 7).collect()
            })
            .collect()
    }

    #[test]
    fn in_memory_and_spilled_sorts_agree_with_a_plain_sort() {
        let spill = tempfile::tempdir().unwrap();
        for (count, budget) in [(0, 1 << 20), (1, 1 << 20), (5_000, 1 << 20), (50_000, SORTER_BUDGET_MIN_BYTES)] {
            let input = records(count, 0x9E37_79B9 + count as u64);
            let mut sorter = Sorter::new(budget, spill.path());
            for record in &input {
                sorter.push(record).unwrap();
            }
            assert_eq!(sorter.records(), count as u64);
            let spilled = sorter.spilled_bytes() > 0;
            // 50,000 records of ~24 bytes do not fit 64 KiB: many runs, and
            // more than one merge pass.
            assert_eq!(spilled, count == 50_000);
            let mut expected = input.clone();
            expected.sort();
            assert_eq!(drain(sorter.finish().unwrap()), expected);
        }
        // Two sorted streams merged give the same as one sort of both.
        let (first, second) = (records(3_000, 1), records(2_000, 2));
        let sorted = |input: &[Vec<u8>]| {
            let mut sorter = Sorter::new(1 << 20, spill.path());
            input.iter().for_each(|record| sorter.push(record).unwrap());
            sorter.finish().unwrap()
        };
        let mut expected: Vec<Vec<u8>> = first.iter().chain(second.iter()).cloned().collect();
        expected.sort();
        assert_eq!(drain(Sorted::merge(vec![sorted(&first), sorted(&second)])), expected);
        // Every temporary file is unnamed: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_record_larger_than_the_buffer_allows_is_refused() {
        let spill = tempfile::tempdir().unwrap();
        let mut sorter = Sorter::new(SORTER_BUDGET_MIN_BYTES, spill.path());
        assert!(sorter.push(&vec![1; SORTER_BUDGET_MIN_BYTES]).is_err());
        sorter.push(b"fits").unwrap();
        assert_eq!(drain(sorter.finish().unwrap()), vec![b"fits".to_vec()]);
    }
}
