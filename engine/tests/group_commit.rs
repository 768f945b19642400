//! Group commit through `Database::execute_batch` (docs/API_SPEC.md):
//!
//! - the WAL and the segments do not depend on grouping: one workload run
//!   one request at a time and in random batches gives byte-identical
//!   `wal.log` and document segments, and identical answers;
//! - one append and one fdatasync per group;
//! - every request sees every write before it in the batch;
//! - a failed append answers every write of its group with
//!   `AERO_WAL_APPEND_FAILED` and changes nothing; a failed fdatasync is
//!   fatal and acknowledges none; the group's other requests are unaffected
//!   by a rejected one;
//! - power loss at every operation index (every group), including inside a
//!   group's append: a boot always succeeds, every acknowledged write is
//!   present, and the writes present are a prefix of the stream.

mod common;

use std::io::ErrorKind;

use aerodb_engine::io::{Fault, FaultOp, MemFile};
use aerodb_engine::{Database, Mode};
use common::*;
use serde_json::{json, Value};

/// A workload with queries mixed in (reads split groups) and documents
/// large enough for overflow chains in a second collection.
fn mixed_workload(seed: u64, length: usize) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut requests = workload(seed, length);
    for position in (0..length).rev() {
        match rng.u8(0..12) {
            0 => requests.insert(
                position,
                json!({"op": "query", "schema_id": "user", "schema_version": "v1", "filter": {"age": {"$gte": rng.i64(0..60)}}, "limit": 50}),
            ),
            1 => {
                let id = rng.i64(0..6);
                let data = "b".repeat(rng.usize(1..9000));
                requests.insert(position, json!({"op": "insert", "schema_id": "blob", "schema_version": "v1", "document": {"_id": id, "data": data}}));
            }
            2 => requests.insert(position, json!({"op": "delete", "schema_id": "blob", "schema_version": "v1", "_id": rng.i64(0..6)})),
            3 => requests.insert(position, json!({"op": "bogus"})),
            _ => {}
        }
    }
    requests
}

const BLOB_SCHEMA: &str = r#"{"schema_id": "blob", "schema_version": "v1",
 "fields": {"_id": {"type": "int"}, "data": {"type": "string"}}, "indexes": []}"#;

fn test_db() -> TestDb {
    TestDb::new(&[("user_v1.json", USER_SCHEMA), ("blob_v1.json", BLOB_SCHEMA)])
}

/// Splits `requests` into batches of random sizes (1 to 40).
fn batches(requests: &[Value], seed: u64) -> Vec<&[Value]> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    let mut rest = requests;
    while !rest.is_empty() {
        let take = rng.usize(1..=40).min(rest.len());
        out.push(&rest[..take]);
        rest = &rest[take..];
    }
    out
}

fn files_of(test: &TestDb) -> Vec<(String, Vec<u8>)> {
    // The WAL after its header (which holds the database's own id).
    let wal = std::fs::read(test.path("wal/wal.log")).unwrap();
    let mut files = vec![("wal.log records".to_string(), wal[aerodb_format::wal::WAL_HEADER_BYTES..].to_vec())];
    let mut segments: Vec<_> = std::fs::read_dir(test.path("data")).unwrap().map(|entry| entry.unwrap().path()).collect();
    segments.sort();
    for path in segments {
        files.push((path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()));
    }
    files
}

#[test]
fn grouping_changes_no_byte_of_the_wal_or_the_segments() {
    for seed in [1, 2, 3] {
        let requests = mixed_workload(seed, 300);
        let alone = test_db();
        let mut db = alone.open();
        let answers_alone: Vec<Value> = requests.iter().map(|request| db.respond(request, Mode::Query)).collect();
        db.shutdown().unwrap();

        let grouped = test_db();
        let mut db = grouped.open();
        let mut answers_grouped = Vec::new();
        for batch in batches(&requests, seed + 100) {
            answers_grouped.extend(db.respond_batch(batch, Mode::Query));
        }
        db.shutdown().unwrap();

        assert_eq!(answers_alone, answers_grouped, "seed {seed}: answers");
        assert!(answers_alone.iter().any(|answer| answer["status"] == "error"), "the workload has rejections");
        let (files_alone, files_grouped) = (files_of(&alone), files_of(&grouped));
        assert_eq!(files_alone.len(), files_grouped.len());
        for ((name, bytes_alone), (_, bytes_grouped)) in files_alone.iter().zip(&files_grouped) {
            assert!(bytes_alone == bytes_grouped, "seed {seed}: {name} differs between one at a time and grouped");
        }
    }
}

#[test]
fn a_group_is_one_append_and_one_fdatasync() {
    let test = test_db();
    let file = MemFile::new(std::fs::read(test.path("wal/wal.log")).unwrap());
    let mut db = open_mem(&test, &file);
    // The first write grows the empty log (one more fdatasync, once).
    assert_eq!(run(&mut db, &user("warm", "up", 1))["status"], "ok");
    let requests: Vec<Value> = (0..200).map(|n| serde_json::from_str(&user(&format!("g{n}"), "ann", n)).unwrap()).collect();
    let before = file.operations(FaultOp::Sync);
    let answers = db.respond_batch(&requests, Mode::Query);
    assert!(answers.iter().all(|answer| answer["status"] == "ok"));
    assert_eq!(file.operations(FaultOp::Sync) - before, 1, "200 inserts, one fdatasync");
    // Bounded: a batch over GROUP_WRITES_MAX writes is committed as several groups.
    let many: Vec<Value> =
        (0..aerodb_engine::db::GROUP_WRITES_MAX + 5).map(|n| serde_json::from_str(&user(&format!("h{n}"), "bob", 1)).unwrap()).collect();
    let before = file.operations(FaultOp::Sync);
    let growths_before = file.operations(FaultOp::Grow);
    assert!(db.respond_batch(&many, Mode::Query).iter().all(|answer| answer["status"] == "ok"));
    // Each growth of the preallocated log is two `grow` calls and one fdatasync.
    let growths = (file.operations(FaultOp::Grow) - growths_before) / 2;
    assert_eq!(file.operations(FaultOp::Sync) - before, 2 + growths);
    assert_eq!(db.documents(), 201 + many.len() as u64);
}

#[test]
fn every_request_sees_the_writes_before_it() {
    let test = test_db();
    let mut db = test.open();
    let parse = |text: &str| -> Value { serde_json::from_str(text).unwrap() };
    let batch = vec![
        parse(&user("a", "ann", 30)),
        parse(&user("a", "dup", 1)),
        parse(r#"{"op":"update","schema_id":"user","schema_version":"v1","document":{"_id":"a","name":"ann2","age":31}}"#),
        parse(r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":"a"},"limit":1}"#),
        parse(r#"{"op":"delete","schema_id":"user","schema_version":"v1","_id":"a"}"#),
        parse(r#"{"op":"update","schema_id":"user","schema_version":"v1","document":{"_id":"a","name":"gone","age":1}}"#),
        parse(&user("a", "again", 5)),
        parse(r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"name":"again"},"limit":5}"#),
    ];
    let answers = db.respond_batch(&batch, Mode::Query);
    let codes: Vec<&str> = answers.iter().map(|answer| answer["code"].as_str().unwrap_or("ok")).collect();
    assert_eq!(codes, ["ok", "AERO_WRITE_DUPLICATE_ID", "ok", "ok", "ok", "AERO_WRITE_NOT_FOUND", "ok", "ok"]);
    assert_eq!(answers[3]["data"], json!([{"_id": "a", "name": "ann2", "age": 31}]));
    assert_eq!(answers[7]["data"], json!([{"_id": "a", "name": "again", "age": 5}]));
    assert_eq!(db.documents(), 1);
    assert_eq!(db.check_indexes().unwrap(), 3);
}

/// The code the model expects for each request of `batch` (the accepted
/// ones applied to `model`), and whether it appends a WAL record (an
/// accepted write that changes something).
fn expected(model: &mut Model, batch: &[Value]) -> Vec<(String, bool)> {
    batch
        .iter()
        .map(|request| match expected_rejection(model, request) {
            Some(code) => (code.to_string(), false),
            None => {
                let no_op = request["op"] == "delete" && !model.contains_key(request["_id"].as_str().unwrap());
                apply(model, request);
                ("ok".to_string(), !no_op)
            }
        })
        .collect()
}

fn codes(answers: &[Value]) -> Vec<String> {
    answers.iter().map(|answer| answer["code"].as_str().unwrap_or("ok").to_string()).collect()
}

/// WAL writes a group of `records` records makes: one, or two (the halves
/// around the `wal_mid_group` crash point).
fn append_calls(records: usize) -> u64 {
    match records {
        0 => 0,
        1 => 1,
        _ => 2,
    }
}

#[test]
fn a_failed_append_fails_its_whole_group_and_changes_nothing() {
    let requests = workload(21, 120);
    for failing in 0..8u64 {
        let test = test_db();
        let file = MemFile::new(std::fs::read(test.path("wal/wal.log")).unwrap());
        file.add_fault(Fault { op: FaultOp::Append, nth: failing, sticky: false, kind: ErrorKind::StorageFull, partial_bytes: 700 });
        let mut db = open_mem(&test, &file);
        let mut model = Model::new();
        let mut calls = 0u64;
        let mut failed_groups = 0;
        for batch in requests.chunks(8) {
            let answers = db.respond_batch(batch, Mode::Query);
            let mut trial = model.clone();
            let want = expected(&mut trial, batch);
            let records = want.iter().filter(|(_, appends)| *appends).count();
            let group_calls = append_calls(records);
            if (calls..calls + group_calls).contains(&failing) {
                // Every write of the group is refused; rejections and no-op deletes keep their answers.
                let refused: Vec<String> =
                    want.iter().map(|(code, appends)| if *appends { "AERO_WAL_APPEND_FAILED".to_string() } else { code.clone() }).collect();
                assert_eq!(codes(&answers), refused, "failing append {failing}");
                assert_eq!(file.live(), file.durable(), "the partial group was cut off");
                failed_groups += 1;
                // The failed write that failed was the one write counted.
                calls = failing + 1;
            } else {
                assert_eq!(codes(&answers), want.iter().map(|(code, _)| code.clone()).collect::<Vec<_>>(), "failing append {failing}");
                model = trial;
                calls += group_calls;
            }
        }
        assert_eq!(failed_groups, 1, "failing append {failing}");
        check_against(&mut db, &model, &format!("append {failing} failed"));
        drop(db);
        std::fs::write(test.path("wal/wal.log"), file.durable()).unwrap();
        let mut db = Database::open(&test.config).unwrap();
        check_against(&mut db, &model, &format!("restart after append {failing} failed"));
    }
}

#[test]
fn a_failed_fdatasync_acknowledges_none_of_its_group() {
    let requests = workload(23, 80);
    for failing in 0..4u64 {
        let test = test_db();
        let file = MemFile::new(std::fs::read(test.path("wal/wal.log")).unwrap());
        file.add_fault(Fault { op: FaultOp::Sync, nth: failing, sticky: false, kind: ErrorKind::Other, partial_bytes: 0 });
        let mut db = open_mem(&test, &file);
        let mut model = Model::new();
        let mut fatal_seen = false;
        for batch in requests.chunks(10) {
            let answers = db.respond_batch(batch, Mode::Query);
            let got = codes(&answers);
            if fatal_seen {
                assert!(got.iter().all(|code| code == "AERO_WAL_FSYNC_FAILED"), "after the fatal error: {got:?}");
                continue;
            }
            let mut trial = model.clone();
            let want = expected(&mut trial, batch);
            if got.iter().all(|code| code != "AERO_WAL_FSYNC_FAILED") {
                assert_eq!(got, want.iter().map(|(code, _)| code.clone()).collect::<Vec<_>>());
                model = trial;
                continue;
            }
            // The failed group: every write that would append is refused, none acknowledged.
            for (got, (want, appends)) in got.iter().zip(&want) {
                if *appends {
                    assert_eq!(got, "AERO_WAL_FSYNC_FAILED");
                } else {
                    assert_eq!(got, want);
                }
            }
            fatal_seen = true;
        }
        assert!(fatal_seen, "fdatasync {failing} failed");
        assert!(db.fatal_error().is_some());
        drop(db);
        std::fs::write(test.path("wal/wal.log"), file.durable()).unwrap();
        let mut db = Database::open(&test.config).unwrap();
        check_against(&mut db, &model, &format!("restart after fdatasync {failing} failed"));
    }
}

#[test]
fn power_loss_in_any_group_leaves_a_prefix_with_every_acknowledged_write() {
    let requests = workload(31, 160);
    let test = test_db();
    let file = MemFile::new(std::fs::read(test.path("wal/wal.log")).unwrap());
    let mut db = open_mem(&test, &file);
    // After each group: the durable WAL, its logical end, and the models after every prefix of the group.
    let mut moments: Vec<(Vec<u8>, usize, Vec<Model>)> = vec![(file.durable(), db.wal_bytes() as usize, vec![Model::new()])];
    let mut model = Model::new();
    for batch in batches(&requests, 5) {
        let mut prefixes = vec![model.clone()];
        let want: Vec<String> = expected(&mut model.clone(), batch).into_iter().map(|(code, _)| code).collect();
        let answers = db.respond_batch(batch, Mode::Query);
        assert_eq!(codes(&answers), want);
        for request in batch {
            if expected_rejection(&model, request).is_none() {
                apply(&mut model, request);
                prefixes.push(model.clone());
            }
        }
        moments.push((file.durable(), db.wal_bytes() as usize, prefixes));
    }
    drop(db);
    let mut rng = fastrand::Rng::with_seed(9);
    for index in 1..moments.len() {
        let (_, before, _) = &moments[index - 1];
        let (after, after_end, prefixes) = &moments[index];
        let acknowledged_before = prefixes.first().unwrap();
        // Power lost before the group's fdatasync: nothing, a torn piece, or all of its bytes;
        // each in the preallocated file (zeros after the cut) and in a file that ends at the cut.
        let mut cuts = vec![*before, *after_end];
        if *after_end > before + 1 {
            cuts.extend((0..3).map(|_| rng.usize(before + 1..*after_end)));
        }
        for (cut, in_place) in cuts.iter().flat_map(|cut| [(*cut, true), (*cut, false)]) {
            let folder = tempfile::tempdir().unwrap();
            copy_data(&test, folder.path());
            let wal = if in_place {
                let mut bytes = after.clone();
                bytes[cut..*after_end].fill(0);
                bytes
            } else {
                after[..cut].to_vec()
            };
            std::fs::write(folder.path().join("data/wal/wal.log"), &wal).unwrap();
            let mut db = Database::open(&folder.path().join("aerodb.json"))
                .unwrap_or_else(|error| panic!("boot at group {index}, cut {cut}: {error}"));
            let present: Model = (0..24)
                .filter_map(|n| {
                    let data = ok(
                        &mut db,
                        &format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"_id":"u{n}"}},"limit":1}}"#),
                    );
                    data.as_array().unwrap().first().map(|document| (format!("u{n}"), document.clone()))
                })
                .collect();
            assert!(prefixes.contains(&present), "group {index}, cut {cut}: the documents are no prefix of the group");
            if cut == *after_end {
                assert_eq!(&present, prefixes.last().unwrap());
            }
            if cut == *before {
                assert_eq!(&present, acknowledged_before);
            }
            assert_eq!(db.check_indexes().unwrap(), 3 * present.len() as u64);
        }
    }
}

/// Copies the test database's files (segments emptied: replay rebuilds them) to `to`.
fn copy_data(test: &TestDb, to: &std::path::Path) {
    let status = std::process::Command::new("cp").arg("-r").arg(test.data()).arg(to.join("data")).status().unwrap();
    assert!(status.success());
    std::fs::write(to.join("aerodb.json"), r#"{"data_dir": "./data"}"#).unwrap();
    std::fs::remove_file(to.join("data/clean_shutdown")).ok();
    for entry in std::fs::read_dir(to.join("data/data")).unwrap() {
        let path = entry.unwrap().path();
        let length = std::fs::metadata(&path).unwrap().len();
        std::fs::write(&path, vec![0u8; length as usize]).unwrap();
    }
}
