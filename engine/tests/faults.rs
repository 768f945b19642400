//! Power loss and I/O faults under the WAL, through the `Database` facade
//! with the in-memory WAL file (`aerodb_engine::io::MemFile`).
//!
//! - Power loss at every operation index of a random workload: the WAL
//!   keeps its durable bytes (optionally plus a torn piece of the next,
//!   unsynced record, or the whole unsynced record), the document segment
//!   holds its content from that moment or nothing at all; every
//!   acknowledged write must be present and nothing half-applied.
//! - The I/O-error loop: fail the Nth append (once, and from N on) or the
//!   Nth fdatasync, and check the documented outcome and that a restart
//!   loses nothing acknowledged.

mod common;

use std::io::ErrorKind;
use std::path::Path;

use aerodb_engine::io::{AllocationFaults, Fault, FaultOp, MemFile};
use aerodb_engine::{Database, Mode, OpenOptions};
use common::*;
use serde_json::{json, Value};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const SNAPSHOT_BYTES: usize = 256 * 4096;

/// A copy of the database as a power loss would leave it.
fn restore(test: &TestDb, wal: &[u8], segment: Option<&[u8]>) -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    copy_tree(&test.data(), &folder.path().join("data"));
    std::fs::write(folder.path().join("aerodb.json"), r#"{"data_dir": "./data"}"#).unwrap();
    std::fs::write(folder.path().join("data/wal/wal.log"), wal).unwrap();
    std::fs::remove_file(folder.path().join("data/clean_shutdown")).ok();
    let segment_path = folder.path().join("data/data/segment-000000.seg");
    let Ok(mut bytes) = std::fs::read(&segment_path) else {
        return folder;
    };
    match segment {
        Some(snapshot) => bytes[..SNAPSHOT_BYTES].copy_from_slice(snapshot),
        None => bytes.fill(0),
    }
    std::fs::write(&segment_path, bytes).unwrap();
    folder
}

#[test]
fn power_loss_at_every_operation_index() {
    let test = TestDb::with_user_schema();
    let file = MemFile::new(std::fs::read(test.path("wal/wal.log")).unwrap());
    let mut db = open_mem(&test, &file);
    let requests = workload(7, 70);
    let segment_path = test.path("data/segment-000000.seg");
    let snapshot =
        || std::fs::read(&segment_path).map(|bytes| bytes[..SNAPSHOT_BYTES].to_vec()).unwrap_or_else(|_| vec![0; SNAPSHOT_BYTES]);
    // (model, durable WAL bytes, segment snapshot, the WAL's logical end) after each operation.
    let mut moments = vec![(Model::new(), file.durable(), snapshot(), db.wal_bytes())];
    let mut model = Model::new();
    for request in &requests {
        let response = db.respond(request, Mode::Query);
        match expected_rejection(&model, request) {
            Some(code) => assert_eq!(response["code"], code),
            None => {
                assert_eq!(response["status"], "ok", "{response}");
                apply(&mut model, request);
            }
        }
        moments.push((model.clone(), file.durable(), snapshot(), db.wal_bytes()));
    }
    drop(db);
    let mut rng = fastrand::Rng::with_seed(11);
    let mut boots = 0;
    for index in 0..moments.len() {
        let (model, durable, snapshot, end) = &moments[index];
        let next = moments.get(index + 1);
        // The WAL as fsync left it; plus a torn piece of the next record,
        // in the preallocated space (zeros after it) and in a file that ends
        // there; plus all of it.
        let mut variants: Vec<(Vec<u8>, &Model)> = vec![(durable.clone(), model)];
        if let Some((next_model, next_durable, _, next_end)) = next {
            if next_end > end {
                let torn = rng.usize(*end as usize + 1..*next_end as usize);
                let mut in_place = next_durable.clone();
                in_place[torn..*next_end as usize].fill(0);
                variants.push((in_place, model));
                variants.push((next_durable[..torn].to_vec(), model));
                variants.push((next_durable.clone(), next_model));
            }
        }
        for (wal, expected) in variants {
            for segment in [Some(snapshot.as_slice()), None] {
                let folder = restore(&test, &wal, segment);
                let config = folder.path().join("aerodb.json");
                let mut db = Database::open(&config).unwrap_or_else(|error| panic!("boot after power loss at {index}: {error}"));
                check_against(&mut db, expected, &format!("power loss after operation {index}"));
                boots += 1;
            }
        }
    }
    assert!(boots > 2 * moments.len());
}

fn run_with_fault(fault: Fault, requests: &[Value]) -> (Model, MemFile, TestDb, Vec<String>) {
    let test = TestDb::with_user_schema();
    let file = MemFile::new(std::fs::read(test.path("wal/wal.log")).unwrap());
    file.add_fault(fault);
    let mut db = open_mem(&test, &file);
    let mut model = Model::new();
    let mut failures = Vec::new();
    for request in requests {
        let response = db.respond(request, Mode::Query);
        if response["status"] == "ok" {
            assert_eq!(expected_rejection(&model, request), None);
            apply(&mut model, request);
            continue;
        }
        let code = response["code"].as_str().unwrap().to_string();
        if Some(code.as_str()) != expected_rejection(&model, request) {
            failures.push(code);
        }
    }
    if db.fatal_error().is_none() {
        check_against(&mut db, &model, "after faults, before restart");
    }
    drop(db);
    (model, file, test, failures)
}

/// How many WAL appends the workload makes without faults.
fn appends_of(requests: &[Value]) -> u64 {
    let mut model = Model::new();
    let mut appends = 0;
    for request in requests {
        if expected_rejection(&model, request).is_none() {
            let deletes_nothing = request["op"] == "delete" && !model.contains_key(request["_id"].as_str().unwrap());
            if !deletes_nothing {
                appends += 1;
            }
            apply(&mut model, request);
        }
    }
    appends
}

fn reopen_from(test: &TestDb, wal: &[u8]) -> Database {
    std::fs::write(test.path("wal/wal.log"), wal).unwrap();
    Database::open(&test.config).unwrap()
}

#[test]
fn failed_append_once_is_reported_and_the_database_keeps_serving() {
    let requests = workload(3, 40);
    let appends = appends_of(&requests);
    assert!(appends > 10);
    for nth in 0..appends {
        let fault =
            Fault { op: FaultOp::Append, nth, sticky: false, kind: ErrorKind::StorageFull, partial_bytes: (nth as usize * 37) % 300 };
        let (model, file, test, failures) = run_with_fault(fault, &requests);
        assert_eq!(failures, vec!["AERO_WAL_APPEND_FAILED".to_string()], "append {nth}");
        // The partial record was cut off: the live file holds only whole records.
        assert_eq!(file.live(), file.durable(), "append {nth}");
        let mut db = reopen_from(&test, &file.durable());
        check_against(&mut db, &model, &format!("restart after failed append {nth}"));
    }
}

#[test]
fn failed_appends_from_n_on_reject_every_write_but_serve_reads() {
    let requests = workload(5, 40);
    for nth in [0, 5, 17] {
        let fault = Fault { op: FaultOp::Append, nth, sticky: true, kind: ErrorKind::Other, partial_bytes: 9 };
        let (model, file, test, failures) = run_with_fault(fault, &requests);
        assert!(!failures.is_empty() && failures.iter().all(|code| code == "AERO_WAL_APPEND_FAILED"), "{failures:?}");
        let mut db = reopen_from(&test, &file.durable());
        check_against(&mut db, &model, &format!("restart after sticky append failure {nth}"));
    }
}

#[test]
fn failed_fsync_is_fatal_and_nothing_unacknowledged_is_trusted() {
    let requests = workload(9, 40);
    let appends = appends_of(&requests);
    assert!(appends > 10);
    for nth in 0..appends {
        let fault = Fault { op: FaultOp::Sync, nth, sticky: false, kind: ErrorKind::Other, partial_bytes: 0 };
        let (model, file, test, failures) = run_with_fault(fault, &requests);
        // The first failure is the fsync; every later request gets the same fatal error.
        assert_eq!(failures.first().map(String::as_str), Some("AERO_WAL_FSYNC_FAILED"), "fsync {nth}");
        assert!(failures.iter().all(|code| code == "AERO_WAL_FSYNC_FAILED"));
        // Whether or not the unsynced record reached the disk, a restart
        // shows every acknowledged write; the failed one was never acknowledged.
        let mut db = reopen_from(&test, &file.durable());
        check_against(&mut db, &model, &format!("restart after failed fsync {nth}"));
    }
}

#[test]
fn a_failed_append_whose_cut_also_fails_is_fatal() {
    let requests = workload(13, 10);
    let test = TestDb::with_user_schema();
    let file = MemFile::new(std::fs::read(test.path("wal/wal.log")).unwrap());
    file.add_fault(Fault { op: FaultOp::Append, nth: 2, sticky: false, kind: ErrorKind::StorageFull, partial_bytes: 5 });
    file.add_fault(Fault { op: FaultOp::Truncate, nth: 0, sticky: true, kind: ErrorKind::Other, partial_bytes: 0 });
    let mut db = open_mem(&test, &file);
    let mut codes = Vec::new();
    for request in &requests {
        let response = db.respond(request, Mode::Query);
        if response["status"] != "ok" {
            codes.push((response["code"].clone(), response["severity"].clone()));
        }
    }
    assert_eq!(codes.first(), Some(&(json!("AERO_WAL_APPEND_FAILED"), json!("FATAL"))));
    assert!(db.fatal_error().is_some());
}

const BLOB_SCHEMA: &str = r#"{"schema_id": "blob", "schema_version": "v1",
 "fields": {"_id": {"type": "int"}, "data": {"type": "string"}}, "indexes": []}"#;

/// Fails the Nth document segment allocation (a full disk at fallocate):
/// the write that needs it is answered AERO_STORAGE_IO_ERROR before
/// anything reaches the WAL, the database keeps serving, and a restart
/// shows exactly the acknowledged writes.
#[test]
fn failed_segment_allocation_rejects_the_write_before_the_wal() {
    // 300 KiB documents: a 4 MiB segment holds about 13 of them.
    let blob = |id: i64| json!({"op": "insert", "schema_id": "blob", "schema_version": "v1", "document": {"_id": id, "data": "z".repeat(300 * 1024)}});
    for (nth, sticky) in [(0, false), (1, false), (2, false), (1, true)] {
        let test = TestDb::new(&[("blob_v1.json", BLOB_SCHEMA)]);
        let faults = AllocationFaults::new(nth, sticky, ErrorKind::StorageFull);
        let options = OpenOptions { segment_allocation_faults: Some(faults), ..OpenOptions::default() };
        let mut db = Database::open_with(&test.config, options).unwrap();
        let mut acknowledged = Vec::new();
        let mut failures = 0;
        for id in 0..45 {
            let wal_before = std::fs::metadata(test.path("wal/wal.log")).unwrap().len();
            let response = db.respond(&blob(id), Mode::Query);
            if response["status"] == "ok" {
                acknowledged.push(id);
                continue;
            }
            assert_eq!(
                (response["code"].as_str(), response["severity"].as_str()),
                (Some("AERO_STORAGE_IO_ERROR"), Some("ERROR")),
                "{response}"
            );
            assert_eq!(std::fs::metadata(test.path("wal/wal.log")).unwrap().len(), wal_before, "nothing may reach the WAL");
            failures += 1;
        }
        assert!(db.fatal_error().is_none());
        if sticky {
            assert!(failures > 1 && acknowledged.len() < 30, "allocation {nth} sticky: {failures} failures");
        } else {
            assert_eq!(failures, 1, "allocation {nth} once");
            assert_eq!(acknowledged.len(), 44);
        }
        drop(db);
        let mut db = Database::open(&test.config).unwrap();
        assert_eq!(db.documents(), acknowledged.len() as u64);
        for id in 0..45 {
            let found = db.respond(
                &json!({"op": "query", "schema_id": "blob", "schema_version": "v1", "filter": {"_id": id}, "limit": 1}),
                Mode::Query,
            );
            assert_eq!(found["data"].as_array().map(Vec::len), Some(usize::from(acknowledged.contains(&id))), "document {id}");
        }
    }
}
