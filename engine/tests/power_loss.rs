//! Power loss and I/O failure at every operation index of every file, on
//! the simulated file system (`aerodb_engine::vfs::SimFs`).
//!
//! The workload boots a database, writes small documents and large ones
//! (so that three 4 MiB document segments are created), and shuts down
//! cleanly. Every mutating file-system operation of all of it (WAL writes
//! and syncs, segment creation, allocation, renames and folder syncs, the
//! metadata writes, the shutdown's flushes and marker) is numbered.
//!
//! - **Power loss after operation N, for every N**: the machine dies (every
//!   later operation fails and changes nothing), and the database is booted
//!   from the images a power loss can leave: only what was synced; synced
//!   plus unsynced writes torn and reordered sector by sector; every write
//!   and every folder entry as the process saw them (the *live* image, a
//!   process crash); folder entries as seen with torn bytes. Each boot must
//!   succeed and hold exactly the acknowledged writes, plus at most the one
//!   write in flight, whole.
//! - **Operation N fails (EIO, then ENOSPC), for every N**: the request
//!   it hits gets its documented error (or the boot refuses with a code),
//!   the workload goes on, and a restart from the live and from the durable
//!   image holds exactly the acknowledged writes (plus at most the one
//!   write a fatal error left unacknowledged).
//! - **Read N of a boot fails (EIO), for every N**, after a clean shutdown
//!   and after a crash: the boot is refused with a code (a failed read is
//!   never taken for the end of the log), and the next boot holds every
//!   acknowledged write.

mod common;

use std::io::ErrorKind;
use std::sync::Arc;

use aerodb_engine::vfs::{Bytes, Names, SimFault, SimFs, SimOp};
use aerodb_engine::{Database, Mode, OpenOptions};
use common::*;
use serde_json::{json, Value};

const BLOB_SCHEMA: &str = r#"{"schema_id": "blob", "schema_version": "v1",
 "fields": {"_id": {"type": "int"}, "data": {"type": "string"}}, "indexes": []}"#;

/// Large documents: 1 MB each (the cap is 1 MiB), about 245 overflow
/// pages; eleven of them fill more than two 4 MiB segments.
const BLOBS: i64 = 11;
const BLOB_BYTES: usize = 1_000_000;

fn blob(id: i64) -> Value {
    let fill = char::from(b'a' + id as u8);
    json!({"op": "insert", "schema_id": "blob", "schema_version": "v1", "document": {"_id": id, "data": fill.to_string().repeat(BLOB_BYTES)}})
}

/// The requests: user writes with a large document every fifth request.
fn requests() -> Vec<Value> {
    let mut out = Vec::new();
    let mut users = workload(21, 32).into_iter();
    let mut blobs = 0..BLOBS;
    for position in 0.. {
        let next = if position % 5 == 4 { blobs.next().map(blob).or_else(|| users.next()) } else { users.next() };
        match next {
            Some(request) => out.push(request),
            None => break,
        }
    }
    out.extend(blobs.map(blob));
    out
}

/// The model key of a write.
fn key_of(request: &Value) -> String {
    if request["schema_id"] == "blob" {
        return format!("b{}", request["document"]["_id"]);
    }
    match request["op"].as_str() {
        Some("delete") => request["_id"].as_str().unwrap().to_string(),
        _ => request["document"]["_id"].as_str().unwrap().to_string(),
    }
}

fn apply_write(model: &mut Model, request: &Value) {
    if request["op"] == "delete" {
        model.remove(&key_of(request));
    } else {
        model.insert(key_of(request), request["document"].clone());
    }
}

fn rejection(model: &Model, request: &Value) -> Option<&'static str> {
    match request["op"].as_str() {
        Some("insert") if model.contains_key(&key_of(request)) => Some("AERO_WRITE_DUPLICATE_ID"),
        Some("update") if !model.contains_key(&key_of(request)) => Some("AERO_WRITE_NOT_FOUND"),
        _ => None,
    }
}

/// Everything the database holds, read back by `_id`, as a model.
fn contents(db: &mut Database) -> Result<Model, String> {
    let mut found = Model::new();
    let ids = (0..24).map(|index| ("user", json!(format!("u{index}")), format!("u{index}")));
    let blobs = (0..BLOBS).map(|id| ("blob", json!(id), format!("b{id}")));
    for (schema, id, key) in ids.chain(blobs) {
        let request = json!({"op": "query", "schema_id": schema, "schema_version": "v1", "filter": {"_id": id}, "limit": 1});
        let response = db.respond(&request, Mode::Query);
        let Some(documents) = response["data"].as_array() else {
            return Err(format!("query of {key} failed: {response}"));
        };
        if let Some(document) = documents.first() {
            found.insert(key, document.clone());
        }
    }
    if db.documents() != found.len() as u64 {
        return Err(format!("{} documents counted, {} found", db.documents(), found.len()));
    }
    let users = found.keys().filter(|key| key.starts_with('u')).count() as u64;
    let entries = db.check_indexes().map_err(|error| error.to_string())?;
    if entries != 3 * users + (found.len() as u64 - users) {
        return Err(format!("{entries} index entries for {} documents", found.len()));
    }
    Ok(found)
}

/// The database as the workload leaves it.
struct Run {
    /// Acknowledged writes applied.
    acknowledged: Model,
    /// `acknowledged` plus the one write whose outcome is unknown (in
    /// flight at the power loss, or failed with a fatal error), if any.
    maybe: Option<Model>,
    /// Whether the first boot was refused.
    boot_refused: bool,
}

fn open(test: &TestDb, fs: &SimFs) -> aerodb_engine::Result<Database> {
    Database::open_with(&test.config, OpenOptions { file_system: Some(Arc::new(fs.clone())), ..OpenOptions::default() })
}

/// Boots on `fs`, runs every request, shuts down. With `retry_boot`, a
/// refused boot is tried once more (the fault was a one-off).
fn run(test: &TestDb, fs: &SimFs, requests: &[Value], retry_boot: bool, context: &str) -> Run {
    run_then(test, fs, requests, retry_boot, true, Model::new(), context)
}

/// [`run`] on a database holding `start`, ending with a clean shutdown or
/// (`shutdown` false) without one.
fn run_then(test: &TestDb, fs: &SimFs, requests: &[Value], retry_boot: bool, shutdown: bool, start: Model, context: &str) -> Run {
    let mut outcome = Run { acknowledged: start, maybe: None, boot_refused: false };
    let mut db = match open(test, fs) {
        Ok(db) => db,
        Err(error) => {
            assert!(error.code.as_str().starts_with("AERO_"), "{context}: boot refused without a code: {error}");
            outcome.boot_refused = true;
            if !retry_boot {
                return outcome;
            }
            fs.set_fault(None);
            open(test, fs).unwrap_or_else(|error| panic!("{context}: second boot refused: {error}"))
        }
    };
    for request in requests {
        let response = db.respond(request, Mode::Query);
        let expected = rejection(&outcome.acknowledged, request);
        if response["status"] == "ok" {
            assert_eq!(expected, None, "{context}: {request} acknowledged");
            apply_write(&mut outcome.acknowledged, request);
            continue;
        }
        let code = response["code"].as_str().unwrap_or_default();
        if Some(code) == expected {
            continue;
        }
        assert!(
            ["AERO_WAL_APPEND_FAILED", "AERO_WAL_FSYNC_FAILED", "AERO_STORAGE_IO_ERROR"].contains(&code),
            "{context}: unexpected answer {response}"
        );
        if response["severity"] == "FATAL" {
            if outcome.maybe.is_none() && db.fatal_error().is_some_and(|fatal| fatal.code.as_str() == code) {
                let mut maybe = outcome.acknowledged.clone();
                apply_write(&mut maybe, request);
                outcome.maybe = Some(maybe);
            }
            break;
        }
    }
    if shutdown {
        let _ = db.shutdown();
    }
    outcome
}

/// Whether the write whose outcome was unknown is in an image.
enum InFlight {
    /// There was none (or it changed nothing).
    None,
    Kept,
    Lost,
}

/// Boots `image` and checks it holds exactly what `run` allows.
fn check_image(test: &TestDb, image: &SimFs, run: &Run, context: &str) -> InFlight {
    let mut db = open(test, image).unwrap_or_else(|error| panic!("{context}: boot refused: {error}"));
    let found = contents(&mut db).unwrap_or_else(|error| panic!("{context}: {error}"));
    let allowed = found == run.acknowledged || run.maybe.as_ref() == Some(&found);
    if allowed {
        return match &run.maybe {
            Some(maybe) if *maybe != run.acknowledged => {
                if found == *maybe {
                    InFlight::Kept
                } else {
                    InFlight::Lost
                }
            }
            _ => InFlight::None,
        };
    }
    {
        let missing: Vec<&String> = run.acknowledged.keys().filter(|key| found.get(*key) != run.acknowledged.get(*key)).collect();
        let extra: Vec<&String> = found.keys().filter(|key| !run.acknowledged.contains_key(*key)).collect();
        panic!("{context}: the database differs from the acknowledged writes (differing {missing:?}, extra {extra:?})");
    }
}

fn fresh(base: &SimFs) -> SimFs {
    base.power_loss_image(Names::Live, Bytes::Live)
}

fn setup() -> (TestDb, SimFs, Vec<Value>, u64) {
    let test = TestDb::new(&[("user_v1.json", USER_SCHEMA), ("blob_v1.json", BLOB_SCHEMA)]);
    let base = SimFs::new();
    base.load_tree(&test.data()).unwrap();
    let requests = requests();
    // One run without faults: how many operations the whole workload makes,
    // and a check that it creates several segments.
    let fs = fresh(&base);
    let outcome = run(&test, &fs, &requests, false, "the workload without faults");
    assert!(outcome.maybe.is_none() && !outcome.boot_refused);
    assert_eq!(outcome.acknowledged.keys().filter(|key| key.starts_with('b')).count() as i64, BLOBS);
    let segments = fs.names(&test.path("data"));
    assert!(segments.len() >= 3, "the workload must create several segments: {segments:?}");
    let log = fs.operation_log();
    for op in [SimOp::Create, SimOp::Allocate, SimOp::Rename, SimOp::SyncDir, SimOp::SyncData, SimOp::Flush] {
        assert!(log.contains(&op), "the workload makes no {op:?}");
    }
    let _ = check_image(&test, &fs.power_loss_image(Names::Durable, Bytes::Durable), &outcome, "after the whole workload");
    (test, base, requests, fs.operations())
}

#[test]
fn power_loss_after_every_operation_boots_with_every_acknowledged_write() {
    let (test, base, requests, operations) = setup();
    let (mut in_flight_kept, mut in_flight_lost) = (0, 0);
    for cut in 0..=operations {
        let fs = fresh(&base);
        fs.power_off_after(cut);
        let outcome = run(&test, &fs, &requests, false, &format!("power off after {cut}"));
        let images = [
            (Names::Durable, Bytes::Durable),
            (Names::Durable, Bytes::Torn(cut)),
            (Names::Live, Bytes::Live),
            (Names::Live, Bytes::Durable),
            (Names::Live, Bytes::Torn(cut + 1)),
        ];
        for (names, bytes) in images {
            let image = fs.power_loss_image(names, bytes);
            let context = format!("power off after operation {cut} of {operations}, image {names:?} {bytes:?}");
            match check_image(&test, &image, &outcome, &context) {
                InFlight::Kept => in_flight_kept += 1,
                InFlight::Lost => in_flight_lost += 1,
                InFlight::None => {}
            }
        }
    }
    // The write in flight at the power loss survives in some images and not
    // in others: both outcomes are exercised.
    assert!(in_flight_kept > 0 && in_flight_lost > 0, "in flight: kept {in_flight_kept}, lost {in_flight_lost}");
}

/// A power loss during the recovery boot itself, at every operation of
/// that boot (cutting the tail, recording hashes, writing the index
/// directory, removing the marker, creating segments), from the crash
/// images of every tenth operation of the workload: the next boot still
/// holds exactly what the first crash allowed.
#[test]
fn power_loss_during_the_recovery_boot_loses_nothing() {
    let (test, base, requests, operations) = setup();
    let mut boots = 0;
    for cut in (0..=operations).step_by(10) {
        let fs = fresh(&base);
        fs.power_off_after(cut);
        let outcome = run(&test, &fs, &requests, false, &format!("power off after {cut}"));
        let image = fs.power_loss_image(Names::Durable, Bytes::Torn(cut));
        let probe = fresh(&image);
        drop(open(&test, &probe).unwrap_or_else(|error| panic!("power off after {cut}: boot refused: {error}")));
        let boot_operations = probe.operations();
        for second in 0..boot_operations {
            let during = fresh(&image);
            during.power_off_after(second);
            let _ = open(&test, &during);
            let context =
                format!("power off after operation {cut}, then after operation {second} of {boot_operations} of the recovery boot");
            check_image(&test, &during.power_loss_image(Names::Durable, Bytes::Torn(second)), &outcome, &context);
            boots += 1;
        }
    }
    assert!(boots > 20, "{boots} recovery boots cut");
}

#[test]
fn failure_of_every_operation_loses_nothing_acknowledged() {
    let (test, base, requests, operations) = setup();
    for nth in 0..operations {
        // EIO and ENOSPC before the operation does anything (a write
        // leaving part of its bytes), and EIO after a write or sync did all
        // its work (fsync may report an error for data that reached the disk).
        for (kind, applied) in [(ErrorKind::Other, false), (ErrorKind::StorageFull, false), (ErrorKind::Other, true)] {
            let fs = fresh(&base);
            fs.set_fault(Some(SimFault { nth, sticky: false, kind, partial_bytes: (nth as usize * 37) % 300, applied }));
            let context = format!("operation {nth} of {operations} failing with {kind:?}{}", if applied { " after its work" } else { "" });
            let outcome = run(&test, &fs, &requests, true, &context);
            fs.set_fault(None);
            for (names, bytes) in [(Names::Live, Bytes::Live), (Names::Durable, Bytes::Durable)] {
                let _ = check_image(
                    &test,
                    &fs.power_loss_image(names, bytes),
                    &outcome,
                    &format!("{context}, restart from {names:?} {bytes:?}"),
                );
            }
        }
    }
}

#[test]
fn a_failed_read_at_every_read_of_a_boot_is_refused_and_loses_nothing() {
    let test = TestDb::new(&[("user_v1.json", USER_SCHEMA), ("blob_v1.json", BLOB_SCHEMA)]);
    let base = SimFs::new();
    base.load_tree(&test.data()).unwrap();
    // Small writes and one large document (an overflow chain to replay).
    let mut requests = workload(23, 40);
    requests.insert(20, blob(0));
    // After a clean shutdown; after a crash; after a clean shutdown, more
    // writes and a crash (a state file without its marker).
    for scenario in ["a clean shutdown", "a crash", "a crash after a clean shutdown"] {
        let fs = fresh(&base);
        let outcome = if scenario == "a crash after a clean shutdown" {
            let first = run_then(&test, &fs, &requests[..20], false, true, Model::new(), "the first half");
            assert!(fs.live_bytes(&test.path("metadata/state.json")).is_some());
            run_then(&test, &fs, &requests[20..], false, false, first.acknowledged, "the second half")
        } else {
            run_then(&test, &fs, &requests, false, scenario == "a clean shutdown", Model::new(), "the workload")
        };
        let image = fs.power_loss_image(Names::Live, Bytes::Live);
        let probe = fresh(&image);
        drop(open(&test, &probe).unwrap());
        let reads = probe.reads();
        assert!(reads > 10, "a boot makes {reads} reads");
        for nth in 0..reads {
            let context = format!("read {nth} of {reads} failing, after {scenario}");
            let copy = fresh(&image);
            copy.set_read_fault(Some(SimFault { nth, sticky: false, kind: ErrorKind::Other, partial_bytes: 0, applied: false }));
            match open(&test, &copy) {
                Ok(_) => panic!("{context}: the boot succeeded without the bytes it read"),
                Err(error) => assert!(error.code.as_str().starts_with("AERO_"), "{context}: {error}"),
            }
            copy.set_read_fault(None);
            let _ = check_image(&test, &copy, &outcome, &context);
        }
    }
}
