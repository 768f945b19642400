//! Torn and damaged WAL tails through the real `aerodb` binary (SPEC
//! section 8, "WAL rules"):
//! - a final record that is incomplete (truncated at any byte inside it) or
//!   followed by garbage is a write that was never acknowledged: the boot
//!   cuts it off, reports `torn_bytes_discarded`, and serves every earlier write;
//! - a damaged record with valid records after it, a repeated sequence
//!   number, or a damaged header is `AERO_WAL_CORRUPTION` (exit 2) naming
//!   the byte offset and sequence number;
//! - after a clean shutdown, a WAL that lost its last record is fatal (the
//!   clean shutdown recorded a later sequence number);
//! - a refused boot leaves the WAL exactly as it found it.
//!
//! A torn tail is made the way a crash makes one: the crash point
//! `wal_after_append` kills the process after the record's bytes reached
//! the file and before fdatasync, so nothing of that write reached the
//! segments. (Truncating a record that was acknowledged and applied is a
//! different case: its pages carry its sequence number, so the log lost a
//! durable record, which is corruption; see
//! `truncating_an_acknowledged_applied_last_record_is_refused`.)

use aerodb_tests::reliability::*;
use aerodb_tests::{fatal_error, Sandbox};
use serde_json::Value;

/// A database whose history is: a clean run with u1..u3, a SIGKILLed run
/// with u4 and u5 acknowledged (and applied), and, when `torn` is set, a
/// run killed at `wal_after_append` while inserting u6 (its record complete
/// in the file, not fsync'ed, not applied, never acknowledged).
fn crashed_database(torn: bool) -> (Sandbox, Model, Op) {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    run_writes(
        &sandbox,
        &mut model,
        &[
            Op::insert("user", user_doc("u1", "alice", 30)),
            Op::insert("user", user_doc("u2", "bob", 31)),
            Op::insert("note", note_doc("n1", "first", 1, 50)),
        ],
    );
    let mut server = sandbox.start(&[]);
    for write in [Op::insert("user", user_doc("u4", "dave", 40)), Op::update("user", user_doc("u2", "bob", 32))] {
        let response = server.request(&write.request()).expect("response");
        assert!(model.acknowledge(&write, &response).expect("expected response"));
    }
    server.kill();
    let in_flight = Op::insert("user", user_doc("u6", "fay", 60));
    if torn {
        let mut server = sandbox.start(&[("AERODB_CRASH_POINT", "wal_after_append")]);
        assert!(send(&mut server, &in_flight.request()));
        assert!(read_response(&mut server).is_none(), "the in-flight write must not be answered");
        let output = server.finish();
        assert!(aborted(&output.status), "{}", describe(&output));
    }
    (sandbox, model, in_flight)
}

/// [`crashed_database`] with the WAL's preallocated zero tail cut off, so
/// the log ends at its last record and bytes can be appended after it (the
/// `preallocated_*` tests damage the zero-filled form itself).
fn crashed_database_without_preallocation(torn: bool) -> (Sandbox, Model, Op) {
    let (sandbox, model, in_flight) = crashed_database(torn);
    strip_preallocation(&wal_path(&sandbox));
    (sandbox, model, in_flight)
}

/// The bytes after `end` are all zero.
fn zeros_after(wal: &[u8], end: usize) -> bool {
    wal[end..].iter().all(|&byte| byte == 0)
}

fn wal_bytes(sandbox: &Sandbox) -> Vec<u8> {
    std::fs::read(wal_path(sandbox)).expect("read WAL")
}

/// Boots with the read-all queries; requires success, the served data to
/// equal `model`, and returns the recovery report.
fn boots_and_serves(sandbox: &Sandbox, model: &Model, context: &str) -> Value {
    let output = sandbox.aerodb(&["query"], &read_all_requests());
    assert_eq!(output.status.code(), Some(0), "{context}: {}", describe(&output));
    let served = parse_read_all(&aerodb_tests::responses(&output)).unwrap_or_else(|error| panic!("{context}: {error}"));
    model.check(&served).unwrap_or_else(|error| panic!("{context}: {error}"));
    recovery_report(&output).unwrap_or_else(|| panic!("{context}: no recovery report"))
}

/// Boots; requires exit 2 with `AERO_WAL_CORRUPTION`, nothing on stdout,
/// and the WAL unchanged. Returns the error object.
fn refused_as_wal_corruption(sandbox: &Sandbox, context: &str) -> Value {
    let before = wal_bytes(sandbox);
    let output = sandbox.aerodb(&["query"], &read_all_requests());
    assert_eq!(output.status.code(), Some(2), "{context}: expected a fatal refusal: {}", describe(&output));
    assert!(output.stdout.is_empty(), "{context}: a refused boot answered: {}", describe(&output));
    let error = fatal_error(&output);
    assert_eq!(error["code"], "AERO_WAL_CORRUPTION", "{context}: {error}");
    assert_eq!(error["severity"], "FATAL", "{context}: {error}");
    assert!(wal_bytes(sandbox) == before, "{context}: a refused boot changed the WAL (it must never repair what it refuses)");
    error
}

#[test]
fn torn_last_record_is_cut_at_every_byte_offset() {
    let (sandbox, model, in_flight) = crashed_database_without_preallocation(true);
    let wal = wal_path(&sandbox);
    let original = wal_bytes(&sandbox);
    let records = wal_records(&original);
    assert_eq!(records.len(), 6, "five acknowledged records and the torn one");
    let (start, end) = *records.last().expect("last record");
    assert_eq!(end, original.len());
    let snapshot = Snapshot::capture(&sandbox.data());
    for length in start..=end {
        snapshot.restore(&sandbox.data());
        set_length(&wal, length as u64);
        let context = format!("WAL cut to {length} bytes (last record is [{start}, {end}))");
        let mut expected = model.clone();
        if length == end {
            // The record is whole: it was durable in the file and replay applies it.
            expected.apply(&in_flight);
        }
        let report = boots_and_serves(&sandbox, &expected, &context);
        // The torn bytes end at the last non-zero byte (zeros are no torn tail).
        let torn = if length == end { 0 } else { original[start..length].iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1) };
        assert_eq!(report["torn_bytes_discarded"], torn as u64, "{context}: {report}");
        assert_eq!(report["clean_shutdown"], false, "{context}: {report}");
        let valid_end = if length == end { end } else { start };
        let after = wal_bytes(&sandbox);
        assert_eq!(wal_logical_end(&after), valid_end, "{context}: the WAL must be cut back to its valid end");
        assert!(zeros_after(&after, valid_end), "{context}: the cut bytes are zeroed");
    }
}

#[test]
fn after_a_torn_tail_is_cut_the_next_write_continues_the_log() {
    let (sandbox, mut model, _) = crashed_database_without_preallocation(true);
    let wal = wal_path(&sandbox);
    let (start, end) = *wal_records(&wal_bytes(&sandbox)).last().expect("record");
    set_length(&wal, ((start + end) / 2) as u64);
    let report = boots_and_serves(&sandbox, &model, "half a record");
    assert!(report["torn_bytes_discarded"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(report["last_seq"], 5, "{report}");
    // The next write takes sequence 6 where the torn record was.
    run_writes(&sandbox, &mut model, &[Op::insert("user", user_doc("u7", "gus", 70)), Op::delete("user", "u1")]);
    let records = wal_records(&wal_bytes(&sandbox));
    assert_eq!(records.len(), 7);
    assert_eq!(records[5].0, start, "the new record starts where the torn one was cut");
    let report = boots_and_serves(&sandbox, &model, "after the new writes");
    assert_eq!(report["last_seq"], 7, "{report}");
    assert_eq!(report["clean_shutdown"], true, "{report}");
    assert_serves(&sandbox, &model, &[("user".into(), "u1".into()), ("user".into(), "u6".into())]);
}

#[test]
fn garbage_after_the_last_record_is_cut_as_a_torn_tail() {
    let (sandbox, model, _) = crashed_database_without_preallocation(false);
    let wal = wal_path(&sandbox);
    let original = wal_bytes(&sandbox);
    let (last_start, last_end) = *wal_records(&original).last().expect("record");
    let snapshot = Snapshot::capture(&sandbox.data());
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("one zero byte", vec![0]),
        ("a zero-filled page", vec![0; 4096]),
        ("0xAB bytes", vec![0xAB; 100]),
        ("the first 30 bytes of the last record again", original[last_start..last_start + 30].to_vec()),
        ("the last record without its final byte", original[last_start..last_end - 1].to_vec()),
        ("0xFF bytes", vec![0xFF; 7]),
    ];
    for (what, bytes) in garbage {
        snapshot.restore(&sandbox.data());
        append(&wal, &bytes);
        let report = boots_and_serves(&sandbox, &model, what);
        // Zeros after the last record are the log's end, not a torn tail:
        // the torn bytes end at the last non-zero byte.
        let torn = bytes.iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1);
        assert_eq!(report["torn_bytes_discarded"], torn as u64, "{what}: {report}");
        let after = wal_bytes(&sandbox);
        assert_eq!(wal_logical_end(&after), original.len(), "{what}: cut back to the valid end");
        assert!(
            after[..original.len()] == original[..] && zeros_after(&after, original.len()),
            "{what}: the valid records are untouched, the garbage zeroed"
        );
    }
}

#[test]
fn a_repeated_record_is_corruption() {
    let (sandbox, _, _) = crashed_database_without_preallocation(false);
    let original = wal_bytes(&sandbox);
    let records = wal_records(&original);
    let (last_start, last_end) = *records.last().expect("record");
    append(&wal_path(&sandbox), &original[last_start..last_end]);
    let error = refused_as_wal_corruption(&sandbox, "the last record appended twice");
    assert_eq!(error["details"]["offset"], last_end as u64, "{error}");
    assert_eq!(error["details"]["seq"], records.len() as u64, "the repeated sequence number: {error}");
}

#[test]
fn flipped_byte_in_a_middle_record_is_corruption_naming_offset_and_seq() {
    let (sandbox, _, _) = crashed_database(false);
    let wal = wal_path(&sandbox);
    let records = wal_records(&wal_bytes(&sandbox));
    assert_eq!(records.len(), 5);
    let snapshot = Snapshot::capture(&sandbox.data());
    let mut tried = 0;
    // Record 2 (three valid records after it) at every byte; record 4 (one after it) at a sample.
    for (index, step) in [(1usize, 1usize), (3, 9)] {
        let (start, end) = records[index];
        for offset in (start..end).step_by(step) {
            for mask in [0x01u8, 0xFF] {
                if mask == 0xFF && offset % 5 != 0 {
                    continue;
                }
                snapshot.restore(&sandbox.data());
                xor_byte(&wal, offset as u64, mask);
                let context = format!("byte {offset} of record {} [{start}, {end}) xor {mask:#04x}", index + 1);
                let error = refused_as_wal_corruption(&sandbox, &context);
                assert_eq!(error["details"]["offset"], start as u64, "{context}: {error}");
                assert_eq!(error["details"]["seq"], (index + 1) as u64, "{context}: {error}");
                tried += 1;
            }
        }
    }
    eprintln!("middle-record flips refused as AERO_WAL_CORRUPTION: {tried}");
}

#[test]
fn damaged_wal_header_is_corruption() {
    let (sandbox, _, _) = crashed_database(false);
    let wal = wal_path(&sandbox);
    let snapshot = Snapshot::capture(&sandbox.data());
    for offset in 0..40u64 {
        for mask in [0x01u8, 0xFF] {
            snapshot.restore(&sandbox.data());
            xor_byte(&wal, offset, mask);
            let error = refused_as_wal_corruption(&sandbox, &format!("header byte {offset} xor {mask:#04x}"));
            assert!(error["details"].get("offset").is_some(), "{error}");
        }
    }
    for length in [0u64, 1, 20, 39] {
        snapshot.restore(&sandbox.data());
        set_length(&wal, length);
        refused_as_wal_corruption(&sandbox, &format!("WAL cut to {length} bytes, inside its header"));
    }
}

#[test]
fn truncating_an_acknowledged_applied_last_record_is_refused() {
    // The last record was acknowledged and its page images reached the
    // segment (they carry its sequence number): losing its tail is losing a
    // durable record, not a torn write.
    let (sandbox, _, _) = crashed_database(false);
    let wal = wal_path(&sandbox);
    let records = wal_records(&wal_bytes(&sandbox));
    let (start, end) = *records.last().expect("record");
    let snapshot = Snapshot::capture(&sandbox.data());
    for length in (start + 1..end).step_by(((end - start) / 12).max(1)).chain([end - 1]) {
        snapshot.restore(&sandbox.data());
        set_length(&wal, length as u64);
        refused_as_wal_corruption(&sandbox, &format!("acknowledged last record cut to {} of its {} bytes", length - start, end - start));
    }
}

#[test]
fn torn_tail_inside_what_a_clean_shutdown_recorded_is_refused() {
    // state.json of the first (clean) run recorded the WAL length after
    // record 3: a "torn tail" inside records 1..=3 is a damaged acknowledged
    // record, even though the latest run ended without a clean shutdown.
    let (sandbox, _, _) = crashed_database(false);
    let wal = wal_path(&sandbox);
    let records = wal_records(&wal_bytes(&sandbox));
    let snapshot = Snapshot::capture(&sandbox.data());
    let (start, end) = records[2];
    for length in [start + 1, (start + end) / 2, end - 1] {
        snapshot.restore(&sandbox.data());
        set_length(&wal, length as u64);
        refused_as_wal_corruption(&sandbox, &format!("WAL cut to {length} inside record 3 [{start}, {end})"));
    }
}

#[test]
fn after_a_clean_shutdown_a_lost_last_record_is_fatal() {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    run_writes(
        &sandbox,
        &mut model,
        &[
            Op::insert("user", user_doc("u1", "alice", 30)),
            Op::insert("note", note_doc("n1", "big", 1, 6000)),
            Op::insert("user", user_doc("u2", "bob", 31)),
        ],
    );
    assert!(sandbox.data().join("clean_shutdown").exists());
    let wal = wal_path(&sandbox);
    let original = wal_bytes(&sandbox);
    let records = wal_records(&original);
    let (start, end) = *records.last().expect("record");
    let snapshot = Snapshot::capture(&sandbox.data());
    for length in [start, start + 1, start + 4, (start + end) / 2, end - 1] {
        snapshot.restore(&sandbox.data());
        set_length(&wal, length as u64);
        refused_as_wal_corruption(&sandbox, &format!("clean database, WAL cut to {length} (last record [{start}, {end}))"));
        assert!(sandbox.data().join("clean_shutdown").exists(), "a refused boot keeps the marker");
    }
    // Non-zero bytes after the last record of a cleanly shut down log are
    // damage too, next to the records or far into the preallocated space;
    // zeros there are preallocated space.
    let file_length = original.len();
    assert!(file_length > end + 4096, "the log is preallocated");
    for at in [end, end + 1, file_length - 1] {
        snapshot.restore(&sandbox.data());
        let mut bytes = wal_bytes(&sandbox);
        bytes[at] = 0xAB;
        std::fs::write(&wal, &bytes).expect("write WAL");
        refused_as_wal_corruption(&sandbox, &format!("clean database with a non-zero byte at {at}, after the last record"));
    }
    snapshot.restore(&sandbox.data());
    append(&wal, &[0u8; 64]);
    let report = boots_and_serves(&sandbox, &model, "clean database with 64 more zero bytes");
    assert_eq!(report["torn_bytes_discarded"], 0);
    // Undamaged, it serves everything.
    snapshot.restore(&sandbox.data());
    let report = boots_and_serves(&sandbox, &model, "undamaged");
    assert_eq!(report["clean_shutdown"], true);
    assert_eq!(report["torn_bytes_discarded"], 0);
}

/// The preallocated form itself: a record torn inside the zero-filled space
/// (the crash point `wal_after_append` leaves the whole record there, a
/// power loss may leave any prefix of it) is cut by zeroing it, the file
/// keeps its length, and the next write overwrites the same place; a
/// non-zero byte anywhere in the zero tail after a crash is a torn tail.
#[test]
fn preallocated_log_torn_records_and_stray_bytes_are_cut_in_place() {
    let (sandbox, model, in_flight) = crashed_database(true);
    let wal = wal_path(&sandbox);
    let original = wal_bytes(&sandbox);
    let (start, end) = *wal_records(&original).last().expect("the torn record");
    assert!(original.len() > end + 4096 && zeros_after(&original, end), "the record lies in preallocated space");
    let snapshot = Snapshot::capture(&sandbox.data());
    for keep in [1, 4, 20, (end - start) / 2, end - start - 1, end - start] {
        snapshot.restore(&sandbox.data());
        let mut bytes = original.clone();
        bytes[start + keep..end].fill(0);
        std::fs::write(&wal, &bytes).expect("write WAL");
        let context = format!("{keep} of the torn record's {} bytes survived", end - start);
        let mut expected = model.clone();
        if keep == end - start {
            expected.apply(&in_flight);
        }
        let report = boots_and_serves(&sandbox, &expected, &context);
        let survived_to = bytes[..end].iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1);
        let torn = if keep == end - start { 0 } else { survived_to - start };
        assert_eq!(report["torn_bytes_discarded"], torn as u64, "{context}: {report}");
        let after = wal_bytes(&sandbox);
        assert_eq!(after.len(), original.len(), "{context}: the file keeps its preallocated length");
        let valid_end = if keep == end - start { end } else { start };
        assert!(after[..valid_end] == original[..valid_end] && zeros_after(&after, valid_end), "{context}: cut by zeroing");
    }
    // A stray non-zero byte deep in the preallocated space after a crash.
    snapshot.restore(&sandbox.data());
    let mut bytes = original.clone();
    let stray = original.len() - 1;
    bytes[stray] = 0x5A;
    std::fs::write(&wal, &bytes).expect("write WAL");
    let mut expected = model.clone();
    expected.apply(&in_flight);
    let report = boots_and_serves(&sandbox, &expected, "a stray byte in the zero tail");
    assert_eq!(report["torn_bytes_discarded"], (stray + 1 - end) as u64, "{report}");
    assert!(zeros_after(&wal_bytes(&sandbox), end));
    // The next write lands where the log ended, in the same file.
    let mut model = expected;
    run_writes(&sandbox, &mut model, &[Op::insert("user", user_doc("u8", "hal", 8))]);
    let after = wal_bytes(&sandbox);
    assert_eq!(after.len(), original.len());
    assert_eq!(wal_records(&after).len(), 7);
}

/// After a clean shutdown, more writes and a crash, a WAL cut back at a
/// record boundary before the length the clean shutdown recorded is
/// refused: those records were acknowledged.
#[test]
fn wal_cut_at_a_record_boundary_before_the_clean_shutdown_length_is_corruption() {
    let sandbox = Sandbox::with_user_schema();
    let mut requests = String::new();
    for index in 0..6 {
        requests.push_str(&aerodb_tests::insert_user(&format!("c{index}"), "clean", index));
        requests.push('\n');
    }
    let output = sandbox.aerodb(&["query"], &requests);
    assert_eq!(output.status.code(), Some(0));
    let wal = sandbox.data().join("wal/wal.log");
    let bytes = std::fs::read(&wal).unwrap();
    let boundaries = aerodb_tests::reliability::wal_records(&bytes);
    // Remove the marker (as if a later run had crashed) and cut the last two whole records.
    std::fs::remove_file(sandbox.data().join("clean_shutdown")).unwrap();
    let (cut_at, _) = boundaries[boundaries.len() - 2];
    std::fs::write(&wal, &bytes[..cut_at]).unwrap();
    // The segment lost its writes too (power loss): no page LSN betrays the
    // missing records; only the recorded WAL length does.
    let segment = sandbox.data().join("data/segment-000000.seg");
    let length = std::fs::metadata(&segment).unwrap().len() as usize;
    std::fs::write(&segment, vec![0u8; length]).unwrap();
    let refused = sandbox.aerodb(&["query"], "");
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(aerodb_tests::fatal_error(&refused)["code"], "AERO_WAL_CORRUPTION");
}
