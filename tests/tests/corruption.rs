//! Single-byte corruption of every file kind but the derived index segments
//! (SPEC section 8: "after any single-byte change to any file but the
//! derived index segments, a start either fails with a fatal code or serves
//! exactly the data that was acknowledged"), through the real binary.
//!
//! A small database (a few dozen documents; one note with a ~6000-character
//! body stored in an overflow chain; a deleted big note whose chain became
//! free pages) is damaged one byte at a time, and `aerodb query` reads every
//! document through every index. Each try must end in either exit 2 with a
//! fatal `AERO_` code on stderr and nothing served (refused), or exit 0
//! serving exactly the acknowledged documents (served-original). A wrong
//! answer, exit 1, a panic or a signal fails the test. A refused boot must
//! also leave the WAL, MANIFEST and metadata exactly as it found them.
//!
//! After a clean shutdown every change to the MANIFEST, the WAL, a schema
//! file, the frozen config or any byte of the document segment must be
//! refused. After a SIGKILL (no clean shutdown) a damaged byte in a segment
//! page the WAL logged is repaired by replay (served-original, and the
//! report counts the rewritten page); damage anywhere else is refused.
//!
//! The sample keeps this file near a minute in debug builds on two cores.
//! `AERODB_FLIP_ALL=1` flips every byte of every file instead (long).
//! When `target/<profile>/aerodb-verify` exists, every try is also checked
//! with it, and the two must agree: a refused boot
//! ⇔ verify reports a problem (exit 1); a served database ⇔ verify exit 0.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aerodb_tests::reliability::*;
use aerodb_tests::{fatal_error, Sandbox};

const PAGE: u64 = 4096;
const SEGMENT: &str = "data/segment-000000.seg";

fn flip_all() -> bool {
    std::env::var("AERODB_FLIP_ALL").is_ok_and(|value| value == "1")
}

/// How one try damages a file.
#[derive(Clone, Debug)]
enum Damage {
    Xor {
        offset: u64,
        mask: u8,
    },
    /// Writes a byte into an empty file (the `clean_shutdown` marker).
    WriteByte(u8),
}

#[derive(Clone, Debug)]
struct Try {
    /// A label for the tallies, e.g. "segment: overflow page".
    kind: String,
    file: PathBuf,
    damage: Damage,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Must be refused.
    Refused,
    /// Must be served (repaired by replay).
    Served,
    /// Either outcome, as long as nothing wrong is served.
    Either,
}

#[derive(Default)]
struct Tally {
    tried: usize,
    served: usize,
    refused: BTreeMap<String, usize>,
    verify_checked: usize,
    /// The damage of the first tries that were served (for the notes).
    served_examples: Vec<String>,
}

/// The database every try damages, with what it must serve.
struct Fixture {
    sandbox: Sandbox,
    model: Model,
    pristine: Snapshot,
}

/// A few dozen documents after a clean shutdown: users (some updated, some
/// deleted), notes with one ~6000-character body (an overflow chain) and a
/// deleted big note (its chain became free pages).
fn clean_fixture() -> Fixture {
    let sandbox = sandbox_with_schemas();
    let mut model = Model::default();
    let mut writes = Vec::new();
    for index in 0..30 {
        writes.push(Op::insert("user", user_doc(&format!("u{index:02}"), &format!("name{:02}", index % 17), 18 + (index * 7) % 50)));
    }
    writes.push(Op::insert("note", note_doc("n1", "small", 1, 120)));
    writes.push(Op::insert("note", note_doc("n2", "big", 1, 6000)));
    writes.push(Op::insert("note", note_doc("n3", "doomed", 1, 6000)));
    writes.push(Op::insert("note", note_doc("n4", "plain", 2, 0)));
    for index in [3, 9, 21] {
        writes.push(Op::update("user", user_doc(&format!("u{index:02}"), "renamed", 99)));
    }
    writes.push(Op::delete("user", "u05"));
    writes.push(Op::delete("user", "u17"));
    writes.push(Op::delete("note", "n3"));
    run_writes(&sandbox, &mut model, &writes);
    assert!(sandbox.data().join("clean_shutdown").exists());
    let pristine = Snapshot::capture(&sandbox.data());
    Fixture { sandbox, model, pristine }
}

/// The clean fixture, then a run with more acknowledged writes that is SIGKILLed.
fn killed_fixture() -> Fixture {
    let Fixture { sandbox, mut model, .. } = clean_fixture();
    let mut server = sandbox.start(&[]);
    for write in [
        Op::insert("user", user_doc("u30", "late", 30)),
        Op::update("note", note_doc("n2", "big", 2, 6500)),
        Op::delete("user", "u01"),
        Op::insert("note", note_doc("n5", "last", 5, 2500)),
        Op::update("user", user_doc("u02", "moved", 31)),
    ] {
        let response = server.request(&write.request()).expect("response");
        assert!(model.acknowledge(&write, &response).expect("expected response"));
    }
    server.kill();
    assert!(!sandbox.data().join("clean_shutdown").exists());
    let pristine = Snapshot::capture(&sandbox.data());
    Fixture { sandbox, model, pristine }
}

/// A deterministic sample of `count` offsets in `[from, to)`.
fn sample(rng: &mut fastrand::Rng, from: u64, to: u64, count: usize) -> Vec<u64> {
    if to <= from {
        return Vec::new();
    }
    if flip_all() || (to - from) as usize <= count {
        return (from..to).collect();
    }
    let mut offsets: Vec<u64> = (0..count).map(|_| rng.u64(from..to)).collect();
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

fn xor_tries(kind: &str, file: &str, offsets: impl IntoIterator<Item = u64>) -> Vec<Try> {
    offsets
        .into_iter()
        .enumerate()
        .map(|(index, offset)| Try {
            kind: kind.into(),
            file: file.into(),
            damage: Damage::Xor { offset, mask: if index % 3 == 2 { 0xFF } else { 0x01 } },
        })
        .collect()
}

/// Written pages of the segment: `(page number, kind byte, lower, upper)`.
fn written_pages(segment: &[u8]) -> Vec<(u64, u8, u64, u64)> {
    segment
        .chunks(PAGE as usize)
        .enumerate()
        .filter(|(_, page)| page.iter().any(|&byte| byte != 0))
        .map(|(number, page)| {
            (number as u64, page[4], u16::from_le_bytes([page[6], page[7]]) as u64, u16::from_le_bytes([page[8], page[9]]) as u64)
        })
        .collect()
}

/// Offsets across every written page (header fields, slot directory,
/// records or overflow data, the hole) and a few in never-written pages.
fn segment_tries(segment: &[u8], rng: &mut fastrand::Rng) -> (Vec<Try>, Vec<Try>) {
    let pages = written_pages(segment);
    assert!(pages.len() >= 4, "expected document, overflow and free pages, found {pages:?}");
    let kinds: Vec<u8> = pages.iter().map(|page| page.1).collect();
    for kind in [1u8, 2, 5] {
        assert!(kinds.contains(&kind), "the fixture must hold a page of kind {kind}: {kinds:?}");
    }
    let mut written = Vec::new();
    for (number, kind, lower, upper) in &pages {
        let base = number * PAGE;
        let kind_name = match kind {
            1 => "document page",
            2 => "overflow page",
            5 => "free page",
            _ => "page of another kind",
        };
        let header: Vec<u64> =
            if flip_all() { (0..48).collect() } else { vec![0, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 23, 24, 31, 32, 40, 47] };
        let mut offsets: Vec<u64> = header;
        // Document pages get the most: slot directory, records and hole.
        let (front, hole, back) = match kind {
            1 => (24, 12, 40),
            2 => (16, 6, 10),
            _ => (6, 6, 10),
        };
        offsets.extend(sample(rng, 48, *lower, front));
        offsets.extend(sample(rng, *lower, *upper, hole));
        offsets.extend(sample(rng, *upper, PAGE, back));
        written.extend(xor_tries(&format!("segment: {kind_name}"), SEGMENT, offsets.into_iter().map(|offset| base + offset)));
    }
    let first_unwritten = pages.last().map(|page| page.0 + 1).unwrap_or(0);
    let unwritten_offsets = [
        first_unwritten * PAGE,
        first_unwritten * PAGE + 100,
        first_unwritten * PAGE + 4095,
        (first_unwritten + 1) * PAGE + 48,
        500 * PAGE + 7,
        1023 * PAGE,
        1023 * PAGE + 4095,
    ];
    let unwritten = xor_tries("segment: never-written page", SEGMENT, unwritten_offsets);
    (written, unwritten)
}

/// The WAL: every header byte, the first and last byte of every record, and
/// a sample of the records' other bytes.
fn wal_tries(wal: &[u8], rng: &mut fastrand::Rng, extra: usize) -> Vec<Try> {
    let mut offsets: Vec<u64> = (0..40).collect();
    for (start, end) in wal_records(wal) {
        offsets.push(start as u64);
        offsets.push(end as u64 - 1);
    }
    let end = wal_logical_end(wal);
    offsets.extend(sample(rng, 40, end as u64, if end <= 2048 { usize::MAX } else { extra }));
    offsets.sort_unstable();
    offsets.dedup();
    xor_tries("wal/wal.log", "wal/wal.log", offsets)
}

/// The WAL's preallocated zero tail: its first bytes, its last byte, and a sample.
fn wal_tail_tries(wal: &[u8], rng: &mut fastrand::Rng, count: usize) -> Vec<Try> {
    let end = wal_logical_end(wal) as u64;
    assert!(wal.len() as u64 > end + 16, "the WAL is preallocated");
    let mut offsets: Vec<u64> = (end..end + 16).chain([wal.len() as u64 - 1]).collect();
    offsets.extend(sample(rng, end, wal.len() as u64, count));
    offsets.sort_unstable();
    offsets.dedup();
    xor_tries("wal/wal.log", "wal/wal.log", offsets)
}

fn small_file_tries(root: &Path, file: &str, step: usize) -> Vec<Try> {
    let length = std::fs::metadata(root.join(file)).unwrap_or_else(|error| panic!("{file}: {error}")).len();
    let step = if flip_all() { 1 } else { step };
    xor_tries(file, file, (0..length).step_by(step))
}

/// Files a refused boot must leave as it found them (the segments are
/// rewritten by replay after a crash, which is recovery, not repair).
fn evidence(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut files: Vec<PathBuf> = vec![
        "MANIFEST".into(),
        "wal/wal.log".into(),
        "metadata/config.json".into(),
        "metadata/state.json".into(),
        "metadata/schema_hashes.json".into(),
        "clean_shutdown".into(),
    ];
    for entry in std::fs::read_dir(root.join("metadata/schemas")).expect("schemas") {
        files.push(Path::new("metadata/schemas").join(entry.expect("entry").file_name()));
    }
    files
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(root.join(&file)).ok();
            (file, bytes)
        })
        .collect()
}

fn damage(root: &Path, attempt: &Try) {
    let path = root.join(&attempt.file);
    match attempt.damage {
        Damage::Xor { offset, mask } => xor_byte(&path, offset, mask),
        Damage::WriteByte(byte) => std::fs::write(&path, [byte]).expect("write marker byte"),
    }
}

/// The engine and aerodb-verify agree: verify exits 0 when the boot served
/// (`served`), 1 when it refused.
fn verify_agrees(verify_output: Option<&std::process::Output>, served: bool, context: &str, tally: &mut Tally) {
    let Some(verify_output) = verify_output else { return };
    let expected = if served { 0 } else { 1 };
    assert_eq!(
        verify_output.status.code(),
        Some(expected),
        "{context} but aerodb-verify exited {:?} (expected {expected}): {}",
        verify_output.status.code(),
        describe(verify_output)
    );
    tally.verify_checked += 1;
}

/// Runs every try against the fixture; panics at the first wrong outcome.
fn run_tries(fixture: &Fixture, tries: &[Try], expect: Expect, scenario: &str, tallies: &mut BTreeMap<String, Tally>) {
    let root = fixture.sandbox.data();
    let verify = optional_binary("aerodb-verify");
    for attempt in tries {
        fixture.pristine.restore(&root);
        damage(&root, attempt);
        let context = format!("{scenario}: {} {:?} ({})", attempt.file.display(), attempt.damage, attempt.kind);
        let tally = tallies.entry(format!("{scenario}: {}", attempt.kind)).or_default();
        tally.tried += 1;
        let before = evidence(&root);
        // aerodb-verify reads the damaged files before any boot touches them.
        let verify_status = verify.as_ref().map(|binary| {
            Command::new(binary)
                .arg("--config")
                .arg(fixture.sandbox.config())
                .current_dir(fixture.sandbox.path())
                .output()
                .expect("run aerodb-verify")
        });
        let output = fixture.sandbox.aerodb(&["query"], &read_all_requests());
        match output.status.code() {
            Some(2) => {
                assert!(output.stdout.is_empty(), "{context}: a refused boot served answers: {}", describe(&output));
                let error = fatal_error(&output);
                let code = error["code"].as_str().unwrap_or_default().to_string();
                assert!(code.starts_with("AERO_") && error["severity"] == "FATAL", "{context}: not a fatal AERO_ code: {error}");
                assert!(expect != Expect::Served, "{context}: replay should have repaired this, but the boot refused with {error}");
                let after = evidence(&root);
                for (file, bytes) in &before {
                    assert!(after.get(file) == Some(bytes), "{context}: the refused boot changed {}", file.display());
                }
                verify_agrees(verify_status.as_ref(), false, &format!("{context}: the engine refused ({code})"), tally);
                *tally.refused.entry(code).or_default() += 1;
            }
            Some(0) => {
                let served = parse_read_all(&aerodb_tests::responses(&output))
                    .unwrap_or_else(|error| panic!("{context}: WRONG ANSWER: {error}\n{}", describe(&output)));
                if let Err(error) = fixture.model.check(&served) {
                    panic!("{context}: WRONG ANSWER: {error}");
                }
                assert!(
                    expect != Expect::Refused,
                    "{context}: this damage must be refused, but the boot served (the right data): {}",
                    describe(&output)
                );
                if expect == Expect::Served {
                    let report = recovery_report(&output).expect("report");
                    assert!(
                        report["pages_rewritten"].as_u64().unwrap_or(0) >= 1,
                        "{context}: the damaged page was not rewritten by replay: {report}"
                    );
                }
                // A database the boot serves has no problem in verify's
                // report (notes and warnings only).
                verify_agrees(verify_status.as_ref(), true, &format!("{context}: the engine served"), tally);
                tally.served += 1;
                if expect == Expect::Either && tally.served_examples.len() < 8 {
                    tally.served_examples.push(format!("{:?}", attempt.damage));
                }
            }
            _ => panic!("{context}: neither refused (exit 2) nor served (exit 0): {}", describe(&output)),
        }
    }
    fixture.pristine.restore(&root);
}

fn print_tallies(title: &str, tallies: &BTreeMap<String, Tally>) {
    let (mut tried, mut refused, mut served) = (0, 0, 0);
    eprintln!("{title}:");
    for (kind, tally) in tallies {
        let refusals: usize = tally.refused.values().sum();
        eprintln!(
            "  {kind}: tried {}, refused {refusals} {:?}, served-original {}, aerodb-verify checked {}",
            tally.tried, tally.refused, tally.served, tally.verify_checked
        );
        if !tally.served_examples.is_empty() {
            eprintln!("    served-original: {}", tally.served_examples.join(", "));
        }
        tried += tally.tried;
        refused += refusals;
        served += tally.served;
    }
    eprintln!("  total: tried {tried}, refused {refused}, served-original {served}, wrong answers 0");
}

#[test]
fn clean_database_manifest_and_wal_damage_is_refused() {
    let fixture = clean_fixture();
    let root = fixture.sandbox.data();
    let mut rng = fastrand::Rng::with_seed(0xC0FF_EE01);
    let mut tallies = BTreeMap::new();
    let manifest: Vec<Try> = (0..48u64)
        .flat_map(|offset| {
            [0x01u8, 0xFF].map(|mask| Try { kind: "MANIFEST".into(), file: "MANIFEST".into(), damage: Damage::Xor { offset, mask } })
        })
        .collect();
    run_tries(&fixture, &manifest, Expect::Refused, "clean", &mut tallies);
    let wal = std::fs::read(root.join("wal/wal.log")).expect("WAL");
    run_tries(&fixture, &wal_tries(&wal, &mut rng, 260), Expect::Refused, "clean", &mut tallies);
    // A clean shutdown leaves nothing after the last record but zeros: a
    // non-zero byte there is a torn tail where none can be, refused.
    run_tries(&fixture, &wal_tail_tries(&wal, &mut rng, 20), Expect::Refused, "clean", &mut tallies);
    print_tallies("single-byte damage, clean shutdown, MANIFEST and WAL", &tallies);
}

#[test]
fn clean_database_segment_damage_is_refused() {
    let fixture = clean_fixture();
    let segment = std::fs::read(fixture.sandbox.data().join(SEGMENT)).expect("segment");
    let mut rng = fastrand::Rng::with_seed(0xC0FF_EE02);
    let mut tallies = BTreeMap::new();
    let (written, unwritten) = segment_tries(&segment, &mut rng);
    run_tries(&fixture, &written, Expect::Refused, "clean", &mut tallies);
    run_tries(&fixture, &unwritten, Expect::Refused, "clean", &mut tallies);
    print_tallies("single-byte damage, clean shutdown, document segment", &tallies);
}

#[test]
fn clean_database_metadata_damage_is_refused_or_harmless() {
    let fixture = clean_fixture();
    let root = fixture.sandbox.data();
    let mut tallies = BTreeMap::new();
    // The frozen config and the schema files: any change is a different
    // config or a changed schema file, both fatal.
    run_tries(&fixture, &small_file_tries(&root, "metadata/config.json", 1), Expect::Refused, "clean", &mut tallies);
    for schema in ["metadata/schemas/user_v1.json", "metadata/schemas/note_v1.json"] {
        run_tries(&fixture, &small_file_tries(&root, schema, 4), Expect::Refused, "clean", &mut tallies);
    }
    // state.json: every figure of the last clean shutdown is checked.
    run_tries(&fixture, &small_file_tries(&root, "metadata/state.json", 1), Expect::Refused, "clean", &mut tallies);
    // schema_hashes.json: a damaged file name leaves the real schema file
    // without a recorded hash (it is recorded again) and a stray entry:
    // either outcome, never a wrong answer.
    run_tries(&fixture, &small_file_tries(&root, "metadata/schema_hashes.json", 2), Expect::Either, "clean", &mut tallies);
    // The marker is an empty file whose presence is what counts.
    let marker: Vec<Try> = [b'x', 0]
        .iter()
        .map(|byte| Try { kind: "clean_shutdown marker".into(), file: "clean_shutdown".into(), damage: Damage::WriteByte(*byte) })
        .collect();
    run_tries(&fixture, &marker, Expect::Either, "clean", &mut tallies);
    print_tallies("single-byte damage, clean shutdown, metadata", &tallies);
}

#[test]
fn killed_database_segment_damage_is_replayed_or_refused_and_wal_damage_refused() {
    let fixture = killed_fixture();
    let root = fixture.sandbox.data();
    let segment = std::fs::read(root.join(SEGMENT)).expect("segment");
    let mut rng = fastrand::Rng::with_seed(0xC0FF_EE03);
    let mut tallies = BTreeMap::new();
    let (written, unwritten) = segment_tries(&segment, &mut rng);
    // Every written page is logged in the WAL: replay rewrites it.
    run_tries(&fixture, &written, Expect::Served, "after SIGKILL", &mut tallies);
    run_tries(&fixture, &unwritten, Expect::Refused, "after SIGKILL", &mut tallies);
    // WAL damage after a crash: the last records were acknowledged and
    // applied, and the earlier ones are covered by the old clean shutdown.
    let wal = std::fs::read(root.join("wal/wal.log")).expect("WAL");
    run_tries(&fixture, &wal_tries(&wal, &mut rng, 60), Expect::Refused, "after SIGKILL", &mut tallies);
    // After a crash, a non-zero byte in the zero tail reads as a torn tail
    // of an unacknowledged write: cut (zeroed), and the data served is exact.
    run_tries(&fixture, &wal_tail_tries(&wal, &mut rng, 20), Expect::Either, "after SIGKILL", &mut tallies);
    print_tallies("single-byte damage after SIGKILL (no clean shutdown)", &tallies);
}
