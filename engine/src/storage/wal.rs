//! The WAL writer and the WAL scanner.
//!
//! Writer: one record per write, appended then fdatasync'ed before the
//! write is applied or acknowledged. A failed append cuts the partial record
//! off (`AERO_WAL_APPEND_FAILED`, the database keeps serving); a failed
//! fdatasync is fatal (`AERO_WAL_FSYNC_FAILED`) and is never retried.
//!
//! Scanner: reads the header and every record from the first, checking CRC
//! and that sequence numbers go up by exactly one. At the first record that
//! does not decode, it looks for any valid record after it: if there is
//! one, the log is corrupt (`AERO_WAL_CORRUPTION` with offset and sequence
//! number); if not, the bytes from there on are a torn tail, a write that
//! was never acknowledged, and are reported for cutting.

use std::path::{Path, PathBuf};

use aerodb_format::wal::{
    decode_record, RecordError, WalHeader, WalRecord, RECORD_MAX_BYTES, WAL_GROW_MIN_BYTES, WAL_GROW_STEP_BYTES, WAL_HEADER_BYTES,
};
use aerodb_format::SeqNo;

use crate::crash;
use crate::error::{AeroError, ErrorCode, Result, Severity};
use crate::io::WalFile;

/// The open WAL, positioned after its last valid record (its logical end;
/// the file may be longer: zero-filled preallocated space).
pub struct Wal {
    file: Box<dyn WalFile>,
    path: PathBuf,
    length_bytes: u64,
    last_seq: SeqNo,
    /// The file's length: preallocated space ends here.
    capacity: u64,
}

impl Wal {
    pub fn new(file: Box<dyn WalFile>, path: &Path, length_bytes: u64, last_seq: SeqNo) -> Wal {
        let capacity = file.len().unwrap_or(length_bytes);
        Wal { file, path: path.to_path_buf(), length_bytes, last_seq, capacity }
    }

    /// Grows the file so that it holds at least `end` bytes: zeros are
    /// written (the file about doubles, by at least 1 MiB and at most the
    /// growth step, in whole MiB) and synced, once,
    /// so later commits overwrite allocated, written blocks and their
    /// fdatasync writes data only. A crash inside leaves a shorter run of
    /// zeros, which reads as the same logical end.
    fn grow_to(&mut self, end: u64, seq: SeqNo) -> Result<()> {
        // Doubling from 1 MiB up to steps of `grow_step`: a small database
        // stays small, a large one grows in large steps.
        let step = self.capacity.clamp(WAL_GROW_MIN_BYTES, WAL_GROW_STEP_BYTES);
        let target = end.max(self.capacity + step).div_ceil(WAL_GROW_MIN_BYTES) * WAL_GROW_MIN_BYTES;
        let middle = self.capacity + (target - self.capacity) / 2;
        let grown = self.file.grow(middle).and_then(|()| {
            crash::reach("wal_grow");
            self.file.grow(target)
        });
        self.capacity = self.file.len().unwrap_or(self.capacity).max(self.capacity);
        if let Err(error) = grown {
            // A full disk: nothing was written into the logical log; the
            // zeros already written are preallocated space, harmless.
            return Err(AeroError::new(
                ErrorCode::WalAppendFailed,
                format!("growing {} failed: {error}; the write was not applied", self.path.display()),
            )
            .detail("file", self.path.display().to_string())
            .detail("seq", seq.0));
        }
        // Never retry an fdatasync: a failed one is fatal, as for a commit.
        self.file.sync_data().map_err(|error| {
            AeroError::new(
                ErrorCode::WalFsyncFailed,
                format!("fdatasync of {} after growing it failed: {error}; nothing was acknowledged", self.path.display()),
            )
            .detail("file", self.path.display().to_string())
            .detail("seq", seq.0)
        })
    }

    pub fn last_seq(&self) -> SeqNo {
        self.last_seq
    }

    /// The logical end: header and records (preallocated space excluded).
    pub fn length_bytes(&self) -> u64 {
        self.length_bytes
    }

    /// Appends a record with sequence number `seq` and makes it durable.
    pub fn append_durable(&mut self, record: &[u8], seq: SeqNo) -> Result<()> {
        self.append_group(&[record], seq)
    }

    /// Appends a group of records, numbered from `first_seq`, and makes
    /// them durable with one fdatasync (group commit). On a failed write
    /// every byte of the group is cut off again, so the group is logged
    /// whole or not at all (`AERO_WAL_APPEND_FAILED`, nothing changed).
    pub fn append_group(&mut self, records: &[&[u8]], first_seq: SeqNo) -> Result<()> {
        if first_seq.0 != self.last_seq.0 + 1 {
            return Err(AeroError::invariant_broken(format!("sequence {first_seq} does not follow {}", self.last_seq)).invariant("W1"));
        }
        let Some(count) = u64::try_from(records.len()).ok().filter(|count| *count > 0) else {
            return Err(AeroError::invariant_broken("an empty group reached the WAL"));
        };
        let last_seq = SeqNo(first_seq.0 + count - 1);
        let mut total = 0u64;
        for record in records {
            // The size rule boot applies: a record it would refuse is never written.
            if record.len() > RECORD_MAX_BYTES {
                return Err(AeroError::invariant_broken(format!(
                    "a WAL record of {} bytes is over the cap of {RECORD_MAX_BYTES}",
                    record.len()
                ))
                .invariant("W2"));
            }
            total += record.len() as u64;
        }
        crash::reach("wal_before_append");
        let failure = |error: std::io::Error, path: &Path| {
            AeroError::new(ErrorCode::WalAppendFailed, format!("append to {} failed: {error}; the write was not applied", path.display()))
                .detail("file", path.display().to_string())
                .detail("seq", first_seq.0)
        };
        if self.length_bytes + total > self.capacity {
            self.grow_to(self.length_bytes + total, first_seq)?;
        }
        // Two writes for a group: the first half, then the rest, so the
        // `wal_mid_group` crash point finds some records written and none synced.
        let half = if records.len() >= 2 { records.len() / 2 } else { records.len() };
        let mut written = self.write_records(self.length_bytes, &records[..half]);
        if written.is_ok() && half < records.len() {
            crash::reach("wal_mid_group");
            let offset = self.length_bytes + records[..half].iter().map(|record| record.len() as u64).sum::<u64>();
            written = self.write_records(offset, &records[half..]);
        }
        if let Err(error) = written {
            let failure = failure(error, &self.path);
            if let Err(cut_error) = self.file.zero(self.length_bytes, total) {
                // The partial record cannot be cut off: the log's tail is
                // unknown, so no further write may be appended after it.
                return Err(failure.with_severity(Severity::Fatal).detail("cut_error", cut_error.to_string()));
            }
            return Err(failure);
        }
        crash::reach("wal_after_append");
        if let Err(error) = self.file.sync_data() {
            return Err(AeroError::new(
                ErrorCode::WalFsyncFailed,
                format!("fdatasync of {} failed: {error}; nothing was acknowledged", self.path.display()),
            )
            .detail("file", self.path.display().to_string())
            .detail("seq", last_seq.0));
        }
        crash::reach("wal_after_fsync");
        self.length_bytes += total;
        self.last_seq = last_seq;
        Ok(())
    }

    /// Writes records back to back at `offset`, in one write.
    fn write_records(&mut self, offset: u64, records: &[&[u8]]) -> std::io::Result<()> {
        if let [record] = records {
            return self.file.write_at(offset, record);
        }
        let mut bytes = Vec::with_capacity(records.iter().map(|record| record.len()).sum());
        for record in records {
            bytes.extend_from_slice(record);
        }
        self.file.write_at(offset, &bytes)
    }

    /// Reads `buffer.len()` bytes at `offset` (page images during replay).
    pub fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<()> {
        self.file
            .read_at(offset, buffer)
            .map_err(|error| AeroError::new(ErrorCode::StorageIoError, format!("read of {} failed: {error}", self.path.display())))
    }

    pub fn file(&self) -> &dyn WalFile {
        &*self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Positions the writer after the last valid record found by a scan.
    pub fn set_position(&mut self, length_bytes: u64, last_seq: SeqNo) {
        self.length_bytes = length_bytes;
        self.last_seq = last_seq;
    }

    /// Cuts a torn tail `[valid_end, valid_end + torn_bytes)` off (overwrites
    /// it with zeros, so the log ends at `valid_end` by content) and makes
    /// the cut durable.
    pub fn cut_tail(&mut self, valid_end: u64, torn_bytes: u64) -> Result<()> {
        let io = |error: std::io::Error| {
            AeroError::new(ErrorCode::RecoveryFailed, format!("cannot cut the torn tail of {}: {error}", self.path.display()))
        };
        self.file.zero(valid_end, torn_bytes).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.length_bytes = valid_end;
        Ok(())
    }
}

/// What a scan found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOutcome {
    pub header: WalHeader,
    pub records: u64,
    pub last_seq: SeqNo,
    /// End of the last valid record.
    pub valid_end: u64,
    /// Bytes after `valid_end` up to the last non-zero byte of the file (a
    /// torn tail; the zeros after it are preallocated space).
    pub torn_bytes: u64,
}

/// A sliding window over the file, so a large log is never read whole.
struct Window<'a> {
    file: &'a dyn WalFile,
    length: u64,
    start: u64,
    bytes: Vec<u8>,
    /// The whole file, when it can be mapped: read in place, no copies.
    map: Option<memmap2::Mmap>,
}

const WINDOW_BYTES: usize = 2 * RECORD_MAX_BYTES;

impl<'a> Window<'a> {
    /// Bytes from `offset`: at least `RECORD_MAX_BYTES` of them, or all up to the end.
    fn at(&mut self, offset: u64) -> std::io::Result<&[u8]> {
        if let Some(map) = &self.map {
            let end = map.len().min(self.length as usize);
            return Ok(map.get(offset as usize..end).unwrap_or_default());
        }
        let wanted_end = (offset + RECORD_MAX_BYTES as u64).min(self.length);
        if offset < self.start || wanted_end > self.start + self.bytes.len() as u64 {
            let end = (offset + WINDOW_BYTES as u64).min(self.length);
            self.bytes.resize((end - offset) as usize, 0);
            self.file.read_at(offset, &mut self.bytes)?;
            self.start = offset;
        }
        Ok(&self.bytes[(offset - self.start) as usize..])
    }
}

fn corruption(path: &Path, offset: u64, seq: u64, reason: String) -> AeroError {
    AeroError::new(ErrorCode::WalCorruption, format!("{} at offset {offset} (sequence {seq}): {reason}", path.display()))
        .detail("file", path.display().to_string())
        .detail("offset", offset)
        .detail("seq", seq)
}

/// Scans the whole log, calling `visit(offset, record, record_bytes)` for
/// every valid record in order.
pub fn scan(file: &dyn WalFile, path: &Path, mut visit: impl FnMut(u64, &WalRecord<'_>, &[u8]) -> Result<()>) -> Result<ScanOutcome> {
    let read_error = |error: std::io::Error| AeroError::new(ErrorCode::StorageIoError, format!("cannot read {}: {error}", path.display()));
    let length = file.len().map_err(read_error)?;
    let mut header_bytes = vec![0u8; (WAL_HEADER_BYTES as u64).min(length) as usize];
    file.read_at(0, &mut header_bytes).map_err(read_error)?;
    let header =
        WalHeader::decode(&header_bytes).map_err(|error| corruption(path, error.offset as u64, 0, format!("bad WAL header: {error}")))?;
    let map = file.map_read_only().filter(|map| map.len() as u64 >= length);
    let mut window = Window { file, length, start: 0, bytes: Vec::new(), map };
    let mut offset = WAL_HEADER_BYTES as u64;
    let mut last_seq = SeqNo(0);
    let mut records = 0u64;
    while offset < length {
        let bytes = window.at(offset).map_err(read_error)?;
        match decode_record(bytes) {
            Ok(record) => {
                if record.seq.0 != last_seq.0 + 1 {
                    let kind = if record.seq.0 <= last_seq.0 { "repeated or decreasing" } else { "gap in" };
                    return Err(corruption(
                        path,
                        offset,
                        record.seq.0,
                        format!("{kind} sequence numbers: expected {}, found {}", last_seq.0 + 1, record.seq.0),
                    ));
                }
                let record_bytes = &bytes[..record.length];
                visit(offset, &record, record_bytes)?;
                last_seq = record.seq;
                records += 1;
                offset += record.length as u64;
            }
            Err(RecordError::Corrupt(error)) => {
                // The CRC matched: the record was written whole, so it is
                // damaged (or forged), never a torn write.
                return Err(corruption(path, offset, last_seq.0 + 1, format!("record with a valid CRC does not decode: {error}")));
            }
            Err(error) => {
                let reason = match &error {
                    RecordError::Incomplete { needed, available } => format!("record needs {needed} bytes, {available} remain"),
                    RecordError::Unverified(error) | RecordError::Corrupt(error) => error.to_string(),
                };
                let Some(nonzero_end) = last_nonzero_end(&mut window, offset).map_err(read_error)? else {
                    // Only zeros from here on: the logical end of a preallocated log.
                    return Ok(ScanOutcome { header, records, last_seq, valid_end: offset, torn_bytes: 0 });
                };
                if let Some((found_at, found_seq)) = find_valid_record_after(&mut window, offset).map_err(read_error)? {
                    return Err(corruption(
                        path,
                        offset,
                        last_seq.0 + 1,
                        format!("damaged record ({reason}) with a valid record (sequence {found_seq}) after it at offset {found_at}"),
                    ));
                }
                return Ok(ScanOutcome { header, records, last_seq, valid_end: offset, torn_bytes: nonzero_end - offset });
            }
        }
    }
    Ok(ScanOutcome { header, records, last_seq, valid_end: offset, torn_bytes: 0 })
}

/// The end of the last non-zero byte in `[offset, length)`, or `None` when
/// every byte there is zero (read in windows; zeros are skipped at memory speed).
fn last_nonzero_end(window: &mut Window<'_>, offset: u64) -> std::io::Result<Option<u64>> {
    let mut last = None;
    let mut at = offset;
    let length = window.length;
    while at < length {
        let bytes = window.at(at)?;
        let chunk = &bytes[..bytes.len().min((length - at) as usize).min(RECORD_MAX_BYTES)];
        let end = aerodb_format::nonzero_end(chunk);
        if end > 0 {
            last = Some(at + end as u64);
        }
        at += chunk.len().max(1) as u64;
    }
    Ok(last)
}

/// Looks for a record that decodes, at any byte offset after `offset`.
fn find_valid_record_after(window: &mut Window<'_>, offset: u64) -> std::io::Result<Option<(u64, u64)>> {
    let mut candidate = offset + 1;
    while candidate + 16 <= window.length {
        let bytes = window.at(candidate)?;
        // A record's length field is never zero: skip a run of zeros (the
        // preallocated space) to 3 bytes before its next non-zero byte.
        if bytes[..4] == [0, 0, 0, 0] {
            match bytes.iter().position(|&byte| byte != 0) {
                Some(position) => candidate += (position as u64).saturating_sub(3).max(1),
                None => candidate += bytes.len() as u64,
            }
            continue;
        }
        // A cheap filter before the CRC: record type and op bytes. Any
        // valid record counts, whatever its sequence number.
        let plausible = aerodb_format::wal::plausible_record_start(bytes);
        if plausible {
            if let Ok(record) = decode_record(bytes) {
                return Ok(Some((candidate, record.seq.0)));
            }
        }
        candidate += 1;
    }
    Ok(None)
}
