//! Every crash point of `engine/src/crash.rs` (SPEC section 8), through the
//! real `aerodb` binary: a process runs with `AERODB_CRASH_POINT=<name>`,
//! reaches the point and dies by SIGABRT (no cleanup, like SIGKILL); a
//! restart without the variable must serve every acknowledged write, serve
//! the in-flight write exactly when its WAL record was durable, and answer
//! through every index consistently. A further write and restart check
//! that the database carries on normally afterwards.
//!
//! Write-path points are reached by a write in flight in `aerodb start`;
//! three kinds of write are used: a one-page insert, an update that moves a
//! small document into an overflow chain (several pages in one record), and
//! a delete that frees an overflow chain (several pages again), so the
//! `storage_mid_apply` crash really leaves a record half applied.

use std::collections::BTreeSet;
use std::time::Duration;

use aerodb_tests::reliability::*;
use aerodb_tests::{find_user, insert_user, Sandbox};
use serde_json::Value;

const CRASH: &str = "AERODB_CRASH_POINT";

/// Whether the in-flight write must be present after the restart.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Durable {
    /// The process died before the record reached the file.
    No,
    /// The record's bytes were written but not fsync'ed: they may or may not have survived.
    Maybe,
    /// The record was fsync'ed: replay must apply it.
    Yes,
}

const WRITE_POINTS: [(&str, Durable); 6] = [
    ("wal_before_append", Durable::No),
    ("wal_after_append", Durable::Maybe),
    ("wal_after_fsync", Durable::Yes),
    ("storage_mid_apply", Durable::Yes),
    ("storage_after_apply", Durable::Yes),
    ("index_mid_update", Durable::Yes),
];

const RECOVERY_POINTS: [&str; 3] = ["recovery_mid_replay", "recovery_mid_rebuild", "metadata_before_rename"];
const GROUP_POINT: &str = "wal_mid_group";
const GROW_POINT: &str = "wal_grow";
const SEGMENT_POINT: &str = "segment_create";
const SHUTDOWN_POINT: &str = "shutdown_before_marker";
const INIT_POINT: &str = "init_before_rename";

/// The crash points `engine/src/crash.rs` lists in `CRASH_POINTS`.
fn engine_crash_points() -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src/crash.rs");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let start = source.find("CRASH_POINTS").expect("CRASH_POINTS in crash.rs");
    let list = &source[start..];
    let list = &list[list.find("= &[").expect("= &[") + 4..list.find("];").expect("];")];
    list.split(',').map(|item| item.trim().trim_matches('"').to_string()).filter(|item| !item.is_empty()).collect()
}

#[test]
fn every_engine_crash_point_is_tested_here() {
    let tested: BTreeSet<String> = WRITE_POINTS
        .iter()
        .map(|(name, _)| name.to_string())
        .chain(RECOVERY_POINTS.iter().map(|name| name.to_string()))
        .chain([SHUTDOWN_POINT.to_string(), GROUP_POINT.to_string(), GROW_POINT.to_string(), SEGMENT_POINT.to_string()])
        // Tested in tests/tests/backup.rs (a_backup_killed_halfway_leaves_no_dest).
        .chain(["backup_mid_copy".to_string()])
        .chain([INIT_POINT.to_string()])
        .collect();
    let engine = engine_crash_points();
    assert!(engine.len() >= 9, "crash.rs lists {engine:?}");
    assert_eq!(tested, engine, "the crash points tested here must be exactly those of engine/src/crash.rs");
}

/// A database with users and notes (two with overflow bodies, one of them
/// deleted so its chain became free pages), after a clean shutdown.
/// Returns the model and the `_id`s that must be absent.
fn base() -> (Sandbox, Model, Vec<DocKey>) {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    let writes = [
        Op::insert("user", user_doc("u1", "alice", 30)),
        Op::insert("user", user_doc("u2", "bob", 25)),
        Op::insert("user", user_doc("u3", "carol", 30)),
        Op::insert("user", user_doc("u4", "dave", 41)),
        Op::insert("user", user_doc("u5", "erin", 19)),
        Op::insert("note", note_doc("n1", "first", 1, 40)),
        Op::insert("note", note_doc("n2", "second", 1, 6000)),
        Op::insert("note", note_doc("n3", "third", 1, 6000)),
        Op::update("user", user_doc("u2", "bob", 26)),
        Op::delete("user", "u3"),
        Op::delete("note", "n3"),
    ];
    run_writes(&sandbox, &mut model, &writes);
    let absent = vec![("user".to_string(), "u3".to_string()), ("note".to_string(), "n3".to_string())];
    (sandbox, model, absent)
}

/// The in-flight writes tried at each write-path point.
fn in_flight_writes() -> Vec<(&'static str, Op)> {
    vec![
        ("insert", Op::insert("user", user_doc("u9", "ivy", 30))),
        ("update_into_overflow", Op::update("note", note_doc("n1", "first", 2, 6000))),
        ("delete_overflow_chain", Op::delete("note", "n2")),
    ]
}

/// Checks the restarted database, then writes once more and checks again.
fn check_after_restart(sandbox: &Sandbox, model: &mut Model, mut absent: Vec<DocKey>, context: &str) {
    for key in model.docs.keys() {
        absent.retain(|other| other != key);
    }
    assert_serves(sandbox, model, &absent);
    // The database carries on: a new write gets the next sequence number
    // and survives another restart.
    run_writes(sandbox, model, &[Op::insert("user", user_doc("u10", "zed", 77)), Op::update("note", note_doc("n1", "first", 9, 10))]);
    assert_serves(sandbox, model, &absent);
    let output = sandbox.aerodb(&["query"], "");
    assert_eq!(output.status.code(), Some(0), "{context}: {}", describe(&output));
    let report = recovery_report(&output).unwrap_or_else(|| panic!("{context}: no recovery report"));
    assert_eq!(report["clean_shutdown"], true, "{context}: {report}");
    assert_eq!(report["documents"], model.docs.len() as u64, "{context}: {report}");
}

fn write_point(point: &str) {
    let durable = WRITE_POINTS.iter().find(|(name, _)| *name == point).map(|(_, durable)| *durable).expect("a write-path crash point");
    let mut outcomes = Vec::new();
    for (kind, write) in in_flight_writes() {
        let context = format!("{point} with an in-flight {kind}");
        let (sandbox, mut model, mut absent) = base();
        let before = model.docs.get(&write.key()).cloned();
        let after = model.after(&write);
        assert_ne!(before.as_ref().map(text), after.as_ref().map(text), "{context}: the write must change something");

        let mut server = sandbox.start(&[(CRASH, point)]);
        assert!(send(&mut server, &write.request()), "{context}: send");
        let response = read_response(&mut server);
        assert!(response.is_none(), "{context}: the crashed write was answered: {response:?}");
        let output = server.finish();
        assert!(aborted(&output.status), "{context}: expected death by SIGABRT, got {}", describe(&output));
        assert!(reached_crash_point(&output, point), "{context}: crash point not logged: {}", describe(&output));
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("\"ok\""),
            "{context}: an ok response was printed: {}",
            describe(&output)
        );

        // Restart without the variable.
        let restart = sandbox.aerodb(&["query"], &read_all_requests());
        assert_eq!(restart.status.code(), Some(0), "{context}: restart failed: {}", describe(&restart));
        let report = recovery_report(&restart).unwrap_or_else(|| panic!("{context}: no recovery report"));
        assert_eq!(report["clean_shutdown"], false, "{context}: {report}");
        let served = parse_read_all(&aerodb_tests::responses(&restart)).unwrap_or_else(|error| panic!("{context}: {error}"));
        let states = match durable {
            Durable::No => vec![before.clone()],
            Durable::Maybe => vec![before.clone(), after.clone()],
            Durable::Yes => vec![after.clone()],
        };
        model.reconcile(&served, &[(write.key(), states)]).unwrap_or_else(|error| panic!("{context}: {error}"));
        let present = model.docs.get(&write.key()).map(text) == after.as_ref().map(text);
        outcomes.push(format!("{kind}: {}", if present { "applied" } else { "not applied" }));
        if !model.docs.contains_key(&write.key()) {
            absent.push(write.key());
        }
        check_after_restart(&sandbox, &mut model, absent, &context);
    }
    eprintln!("crash point {point}: in-flight writes after restart: {}", outcomes.join(", "));
}

#[test]
fn crash_at_wal_before_append_loses_only_the_in_flight_write() {
    write_point("wal_before_append");
}

#[test]
fn crash_at_wal_after_append_boots_consistently() {
    write_point("wal_after_append");
}

#[test]
fn crash_at_wal_after_fsync_keeps_the_durable_write() {
    write_point("wal_after_fsync");
}

#[test]
fn crash_at_storage_mid_apply_keeps_the_durable_write() {
    write_point("storage_mid_apply");
}

#[test]
fn crash_at_storage_after_apply_keeps_the_durable_write() {
    write_point("storage_after_apply");
}

#[test]
fn crash_at_index_mid_update_keeps_the_durable_write() {
    write_point("index_mid_update");
}

/// `wal_mid_group`: a burst of writes arrives in one read, so they are
/// committed as one group; the process dies after the first half of the
/// group's records was written and before the fdatasync. No write of the
/// group was answered; after the restart the writes present must be a
/// prefix of the burst (the half that reached the file survives a process
/// crash in the page cache, so here exactly that half), nothing half-present.
#[test]
fn crash_at_wal_mid_group_leaves_a_prefix_of_the_group() {
    let (sandbox, mut model, mut absent) = base();
    let burst = [
        Op::insert("user", user_doc("u20", "gia", 20)),
        Op::update("note", note_doc("n1", "first", 3, 1500)),
        Op::insert("user", user_doc("u21", "hal", 21)),
        Op::delete("user", "u1"),
        Op::insert("note", note_doc("n9", "ninth", 1, 30)),
        Op::update("user", user_doc("u2", "bob", 27)),
    ];
    let mut prefixes = vec![model.clone()];
    for write in &burst {
        let mut next = prefixes.last().unwrap().clone();
        next.apply(write);
        prefixes.push(next);
    }
    // One write of the pipe (under PIPE_BUF, so it arrives whole): one group.
    let text: Vec<String> = burst.iter().map(|write| write.request()).collect();
    let text = text.join("\n");
    assert!(text.len() < 4096);
    let mut server = sandbox.start(&[(CRASH, GROUP_POINT)]);
    assert!(send(&mut server, &text));
    assert!(read_response(&mut server).is_none(), "a write of the crashed group was answered");
    let output = server.finish();
    assert!(aborted(&output.status), "expected death by SIGABRT, got {}", describe(&output));
    assert!(reached_crash_point(&output, GROUP_POINT), "crash point not logged: {}", describe(&output));

    let restart = sandbox.aerodb(&["query"], &read_all_requests());
    assert_eq!(restart.status.code(), Some(0), "restart failed: {}", describe(&restart));
    let served = parse_read_all(&aerodb_tests::responses(&restart)).unwrap_or_else(|error| panic!("{error}"));
    let applied = model.reconcile_prefix(&served, &prefixes).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(applied, burst.len() / 2, "the first half of the group's records were written before the crash");
    eprintln!("crash point {GROUP_POINT}: {applied} of {} writes of the group present after restart", burst.len());
    absent.push(("user".to_string(), "u1".to_string()));
    check_after_restart(&sandbox, &mut model, absent, GROUP_POINT);
}

/// `wal_grow`: the first write of a new database grows the empty log (40
/// bytes) into preallocated space; the process dies with half the zeros
/// written and nothing synced. The write was never answered and is absent
/// after the restart; the half-grown log (a shorter zero tail) boots, and
/// the next writes grow it and land in it.
#[test]
fn crash_at_wal_grow_leaves_a_log_that_boots() {
    let sandbox = sandbox_with_schemas();
    let write = Op::insert("user", user_doc("g1", "gia", 1));
    let mut server = sandbox.start(&[(CRASH, GROW_POINT)]);
    assert!(send(&mut server, &write.request()));
    assert!(read_response(&mut server).is_none(), "the write of the crashed growth was answered");
    let output = server.finish();
    assert!(aborted(&output.status), "expected death by SIGABRT, got {}", describe(&output));
    assert!(reached_crash_point(&output, GROW_POINT), "crash point not logged: {}", describe(&output));
    let length = std::fs::metadata(wal_path(&sandbox)).expect("WAL").len();
    assert!(length > 40, "half the growth reached the file ({length} bytes)");
    let mut model = Model::default();
    assert_serves(&sandbox, &model, &[write.key()]);
    run_writes(&sandbox, &mut model, &[write.clone(), Op::insert("note", note_doc("n1", "grown", 1, 3000))]);
    assert_serves(&sandbox, &model, &[]);
    assert!(std::fs::metadata(wal_path(&sandbox)).expect("WAL").len() >= length);
}

/// `segment_create`: writes fill the first 4 MiB document segment until one
/// needs the second; the process dies with that segment made, allocated and
/// synced under its temporary name, before it is renamed into place. The
/// write that needed it never reached the WAL and was never answered; every
/// answered write is served after the restart, the temporary file is
/// removed (and `aerodb-verify` calls it a note, not a problem), and the
/// next writes create the segment again.
#[test]
fn crash_at_segment_create_leaves_no_half_made_segment() {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    // A first run (one group-committed batch) fills most of segment 0; the
    // crash then hits the creation of segment 1.
    let fill: Vec<Op> = (0..480).map(|n| Op::insert("note", note_doc(&format!("f{n:04}"), &format!("fill{n}"), n, 6000))).collect();
    run_writes(&sandbox, &mut model, &fill);
    let mut server = sandbox.start(&[(CRASH, SEGMENT_POINT)]);
    let mut in_flight = None;
    for n in 0..2000 {
        let write = Op::insert("note", note_doc(&format!("s{n:04}"), &format!("more{n}"), 1000 + n, 6000));
        match server.request(&write.request()) {
            Some(response) => assert!(model.acknowledge(&write, &response).unwrap()),
            None => {
                in_flight = Some(write);
                break;
            }
        }
    }
    let in_flight = in_flight.expect("the writes reached a second segment");
    let output = server.finish();
    assert!(aborted(&output.status), "expected death by SIGABRT, got {}", describe(&output));
    assert!(reached_crash_point(&output, SEGMENT_POINT), "crash point not logged: {}", describe(&output));
    let data = sandbox.data().join("data");
    assert!(
        data.join("segment-000001.seg.new").exists() && !data.join("segment-000001.seg").exists(),
        "made under its temporary name only"
    );
    if let Some(verify) = optional_binary("aerodb-verify") {
        let report = std::process::Command::new(verify).arg("--config").arg(sandbox.config()).output().unwrap();
        assert_eq!(report.status.code(), Some(0), "verify must not call the interrupted creation a problem: {}", describe(&report));
    }
    assert_serves(&sandbox, &model, &[in_flight.key()]);
    assert!(!data.join("segment-000001.seg.new").exists(), "the boot removed the temporary file");
    run_writes(&sandbox, &mut model, &[in_flight]);
    assert_serves(&sandbox, &model, &[]);
    assert!(data.join("segment-000001.seg").exists());
    eprintln!("crash point {SEGMENT_POINT}: {} acknowledged writes before the second segment", model.docs.len() - 1);
    assert!(model.docs.len() > 481, "some writes were acknowledged by the crashing server");
}

/// Byte offsets (in `data/segment-000000.seg`) of every written page.
fn written_pages(sandbox: &Sandbox) -> Vec<u64> {
    let segment = std::fs::read(sandbox.data().join("data/segment-000000.seg")).expect("segment");
    segment
        .chunks(4096)
        .enumerate()
        .filter(|(_, page)| page.iter().any(|&byte| byte != 0))
        .map(|(number, _)| number as u64 * 4096)
        .collect()
}

/// A database whose last process was SIGKILLed after acknowledged writes,
/// with every written segment page then damaged (a torn or stale page, as
/// a crash may leave): replay must rewrite them all.
fn killed_with_torn_pages() -> (Sandbox, Model, Vec<DocKey>) {
    let (sandbox, mut model, absent) = base();
    let mut server = sandbox.start(&[]);
    for write in [
        Op::insert("user", user_doc("u6", "fay", 52)),
        Op::update("note", note_doc("n2", "second", 2, 7000)),
        Op::insert("note", note_doc("n4", "fourth", 3, 100)),
    ] {
        let response = server.request(&write.request()).expect("response");
        assert!(model.acknowledge(&write, &response).expect("expected response"));
    }
    server.kill();
    let segment = sandbox.data().join("data/segment-000000.seg");
    let pages = written_pages(&sandbox);
    assert!(pages.len() >= 4, "expected several written pages, found {}", pages.len());
    for page in pages {
        xor_byte(&segment, page + 100, 0xFF);
    }
    (sandbox, model, absent)
}

fn recovery_point(point: &str) {
    for (scenario, (sandbox, mut model, absent)) in
        [("after SIGKILL with torn pages", killed_with_torn_pages()), ("after a clean shutdown", base())]
    {
        let context = format!("{point} {scenario}");
        let clean = sandbox.data().join("clean_shutdown").exists();
        // Twice in a row: a crash during a recovery that follows a crash during recovery.
        for attempt in 0..2 {
            let output = sandbox.aerodb_env(&["query"], &read_all_requests(), &[(CRASH, point)]);
            assert!(aborted(&output.status), "{context} (attempt {attempt}): expected death by SIGABRT, got {}", describe(&output));
            assert!(reached_crash_point(&output, point), "{context}: crash point not logged: {}", describe(&output));
            assert!(output.stdout.is_empty(), "{context}: a crashed boot answered requests: {}", describe(&output));
        }
        let restart = sandbox.aerodb(&["query"], &read_all_requests());
        assert_eq!(restart.status.code(), Some(0), "{context}: restart failed: {}", describe(&restart));
        let report = recovery_report(&restart).unwrap_or_else(|| panic!("{context}: no recovery report"));
        assert_eq!(report["clean_shutdown"], clean, "{context}: a crashed boot must leave the shutdown state as it was: {report}");
        if !clean && point == "recovery_mid_replay" {
            // The crashed replays rewrote the first page only; the rest were still torn.
            assert!(report["pages_rewritten"].as_u64().unwrap_or(0) >= 1, "{context}: {report}");
        }
        let served = parse_read_all(&aerodb_tests::responses(&restart)).unwrap_or_else(|error| panic!("{context}: {error}"));
        model.check(&served).unwrap_or_else(|error| panic!("{context}: {error}"));
        check_after_restart(&sandbox, &mut model, absent, &context);
    }
}

#[test]
fn crash_at_recovery_mid_replay_then_recover() {
    recovery_point("recovery_mid_replay");
}

#[test]
fn crash_at_recovery_mid_rebuild_then_recover() {
    recovery_point("recovery_mid_rebuild");
}

/// `metadata_before_rename`, inside every atomic metadata write (state
/// file, schema hashes, schema files, index directory): the first one a
/// boot makes is the index directory's, after the rebuild. The crash leaves
/// the new content under its temporary name and the old one in place; the
/// next boot empties the index folder (the leftover with it) and serves.
#[test]
fn crash_at_metadata_before_rename_then_recover() {
    recovery_point("metadata_before_rename");
}

/// `shutdown_before_marker`: the writes of the run were acknowledged, the
/// shutdown wrote `state.json` and died before the marker: the next boot is
/// a crash recovery that serves every acknowledged write.
#[test]
fn crash_at_shutdown_before_marker_keeps_every_acknowledged_write() {
    for ending in ["EOF of aerodb start", "SIGTERM to aerodb start", "EOF of aerodb query"] {
        let (sandbox, mut model, absent) = base();
        let writes =
            [Op::insert("user", user_doc("u7", "gus", 33)), Op::update("note", note_doc("n1", "first", 5, 3000)), Op::delete("user", "u1")];
        let output = if ending == "EOF of aerodb query" {
            let stdin: String = writes.iter().map(|write| write.request() + "\n").collect();
            let output = sandbox.aerodb_env(&["query"], &stdin, &[(CRASH, SHUTDOWN_POINT)]);
            let responses = aerodb_tests::responses(&output);
            assert_eq!(responses.len(), writes.len(), "{ending}: {}", describe(&output));
            for (write, response) in writes.iter().zip(&responses) {
                assert!(model.acknowledge(write, response).unwrap_or_else(|error| panic!("{ending}: {error}")));
            }
            output
        } else {
            let mut server = sandbox.start(&[(CRASH, SHUTDOWN_POINT)]);
            for write in &writes {
                let response = server.request(&write.request()).unwrap_or_else(|| panic!("{ending}: no response"));
                assert!(model.acknowledge(write, &response).unwrap_or_else(|error| panic!("{ending}: {error}")));
            }
            if ending.starts_with("SIGTERM") {
                server.signal(libc::SIGTERM);
                server.wait_exit(Duration::from_secs(30))
            } else {
                server.finish()
            }
        };
        assert!(aborted(&output.status), "{ending}: expected death by SIGABRT, got {}", describe(&output));
        assert!(reached_crash_point(&output, SHUTDOWN_POINT), "{ending}: crash point not logged: {}", describe(&output));
        assert!(sandbox.data().join("metadata/state.json").exists(), "{ending}: state.json is written before the crash point");
        assert!(!sandbox.data().join("clean_shutdown").exists(), "{ending}: the marker must not exist");

        let restart = sandbox.aerodb(&["query"], &read_all_requests());
        assert_eq!(restart.status.code(), Some(0), "{ending}: restart failed: {}", describe(&restart));
        let report = recovery_report(&restart).expect("recovery report");
        assert_eq!(report["clean_shutdown"], false, "{ending}: {report}");
        let served = parse_read_all(&aerodb_tests::responses(&restart)).unwrap_or_else(|error| panic!("{ending}: {error}"));
        model.check(&served).unwrap_or_else(|error| panic!("{ending}: {error}"));
        let mut absent = absent;
        absent.push(("user".into(), "u1".into()));
        check_after_restart(&sandbox, &mut model, absent, ending);
    }
}

/// The variable only arms the named point: an unknown name or an empty
/// value changes nothing (the database serves and shuts down cleanly).
#[test]
fn unarmed_crash_point_values_change_nothing() {
    let (sandbox, mut model, absent) = base();
    for value in ["", "no_such_point"] {
        let write = Op::insert("user", user_doc(&format!("x{}", value.len()), "xena", 60));
        let output = sandbox.aerodb_env(&["query"], &(write.request() + "\n"), &[(CRASH, value)]);
        assert_eq!(output.status.code(), Some(0), "{value:?}: {}", describe(&output));
        let responses: Vec<Value> = aerodb_tests::responses(&output);
        assert!(model.acknowledge(&write, &responses[0]).expect("ok"));
    }
    assert_serves(&sandbox, &model, &absent);
}

/// `init_before_rename`: `aerodb init` dies with the whole tree built and
/// synced under its staging name, before the rename to `data_dir`. Nothing
/// is at `data_dir`, so the database does not exist (a start says so), and
/// `init` run again succeeds; the staging folder is left behind under its
/// hidden name and never taken for a database.
#[test]
fn crash_at_init_before_rename_leaves_no_database_and_init_can_run_again() {
    let sandbox = aerodb_tests::Sandbox::new();
    let output = sandbox.aerodb_env(&["init"], "", &[(CRASH, INIT_POINT)]);
    assert!(!output.status.success(), "init must die at the crash point");
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"crash_point\""), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!sandbox.data().exists(), "nothing may be at data_dir after the crash");
    let leftovers: Vec<String> = std::fs::read_dir(sandbox.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".data.init-"))
        .collect();
    assert_eq!(leftovers.len(), 1, "the staging tree stays under its hidden name: {leftovers:?}");
    // It was complete when the process died: every file of a new database.
    let staging = sandbox.path().join(&leftovers[0]);
    for file in ["MANIFEST", "LOCK", "wal/wal.log", "metadata/config.json", "metadata/schema_hashes.json"] {
        assert!(staging.join(file).is_file(), "the staging tree lacks {file}");
    }
    let refused = sandbox.aerodb(&["query"], &find_user("u1"));
    assert_eq!(aerodb_tests::fatal_error(&refused)["code"], "AERO_STORAGE_UNINITIALIZED");
    let again = sandbox.aerodb(&["init"], "");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    sandbox.write_schema("user_v1.json", aerodb_tests::USER_SCHEMA);
    let inserted = sandbox.aerodb(&["query"], &insert_user("u1", "Ann", 30));
    assert_eq!(aerodb_tests::responses(&inserted)[0]["status"], "ok");
    assert_eq!(sandbox.query(&find_user("u1"))[0]["data"][0]["name"], "Ann");
}
