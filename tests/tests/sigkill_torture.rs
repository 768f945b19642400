//! SIGKILL at random moments under a write load (SPEC section 12), through
//! the real `aerodb start`.
//!
//! Each round boots the database (a crash recovery, since the previous
//! round was killed), reads every document through every index and checks
//! it against a model of what was acknowledged, then streams random
//! inserts, updates, deletes, failing writes and reads, and SIGKILLs the
//! process: either between requests or right after a burst of requests was
//! sent (after a random delay, so the kill lands inside a write). A response
//! line with status ok is an acknowledgement. Answers are written in
//! batches (before the server waits for input), so several writes of a burst
//! may have run without their answers reaching the client: after the
//! restart the writes present must be a prefix of the unanswered ones, in
//! order, with nothing half-present. Now and then a round ends with a
//! clean shutdown instead, so clean boots follow crash recoveries too.
//!
//! Short by default (40 rounds, a few seconds). Long run:
//!
//! ```text
//! AERODB_TORTURE_ROUNDS=1000 cargo test --release -p aerodb-tests --test sigkill_torture -- --nocapture
//! ```
//!
//! (`AERODB_TORTURE_SEED=<n>` replays another seed; the seed is printed in
//! every failure and in the totals.)

use std::time::Duration;

use aerodb_tests::reliability::*;
use aerodb_tests::Server;
use serde_json::{json, Value};

const DEFAULT_ROUNDS: usize = 40;
const DEFAULT_SEED: u64 = 0xAE20_DB5E_ED01;
/// Above this many documents the load deletes more than it inserts.
const TARGET_DOCUMENTS: usize = 250;
const NOTES_MAX: usize = 40;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        let value = value.trim();
        let parsed = match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => value.parse(),
        };
        parsed.unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}"))
    })
}

/// One request of the load.
#[derive(Clone, Debug)]
enum Step {
    Write(Op),
    /// A query by `_id` that must see the model's document (read-after-write).
    Read(DocKey),
}

impl Step {
    fn request(&self) -> String {
        match self {
            Step::Write(write) => write.request(),
            Step::Read((collection, id)) => {
                json!({"op": "query", "schema_id": collection, "schema_version": "v1", "filter": {"_id": id}, "limit": 1}).to_string()
            }
        }
    }
}

struct Load {
    rng: fastrand::Rng,
    next_id: usize,
}

impl Load {
    fn body_chars(&mut self) -> usize {
        [0, 40, 700, 1900, 2100, 6000, 9000][self.rng.usize(0..7)]
    }

    fn existing(&mut self, model: &Model, collection: Option<&str>) -> Option<DocKey> {
        let keys: Vec<&DocKey> = model.docs.keys().filter(|(name, _)| collection.is_none_or(|wanted| name == wanted)).collect();
        (!keys.is_empty()).then(|| keys[self.rng.usize(0..keys.len())].clone())
    }

    fn user(&mut self, id: &str) -> Value {
        let name = format!("n{}", self.rng.usize(0..40));
        user_doc(id, &name, self.rng.i64(0..90))
    }

    fn note(&mut self, id: &str) -> Value {
        let title = format!("t{}", self.rng.usize(0..12));
        let rev = self.rng.i64(0..1000);
        let chars = self.body_chars();
        note_doc(id, &title, rev, chars)
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn step(&mut self, model: &Model) -> Step {
        let size = model.docs.len();
        let notes = model.collection("note").len();
        let roll = self.rng.u32(0..100);
        let insert_share = if size > TARGET_DOCUMENTS { 20 } else { 45 };
        if roll < insert_share {
            if self.rng.u32(0..100) < 15 && notes < NOTES_MAX {
                let id = self.new_id("n");
                return Step::Write(Op::insert("note", self.note(&id)));
            }
            let id = self.new_id("u");
            return Step::Write(Op::insert("user", self.user(&id)));
        }
        match roll {
            _ if roll < 65 => match self.existing(model, None) {
                Some((collection, id)) => {
                    let document = if collection == "user" { self.user(&id) } else { self.note(&id) };
                    Step::Write(Op::update(&collection, document))
                }
                None => Step::Write(Op::update("user", user_doc("missing", "x", 1))),
            },
            _ if roll < 85 => match self.existing(model, None) {
                Some((collection, id)) => Step::Write(Op::delete(&collection, &id)),
                None => Step::Write(Op::delete("user", "missing")),
            },
            _ if roll < 88 => Step::Write(Op::delete("note", "never-there")),
            _ if roll < 91 => Step::Write(Op::update("user", user_doc("never-there", "x", 1))),
            _ if roll < 94 => match self.existing(model, Some("user")) {
                Some((_, id)) => Step::Write(Op::insert("user", user_doc(&id, "dup", 5))),
                None => Step::Read(("user".into(), "none".into())),
            },
            _ => match self.existing(model, None) {
                Some(key) => Step::Read(key),
                None => Step::Read(("note".into(), "none".into())),
            },
        }
    }
}

#[derive(Default)]
struct Totals {
    rounds: usize,
    kills: usize,
    clean_shutdowns: usize,
    requests: usize,
    acknowledged_writes: usize,
    rejected_writes: usize,
    in_flight_applied: usize,
    in_flight_not_applied: usize,
    documents_checked: usize,
}

/// Checks one answered step against the model and applies it.
fn answered(model: &mut Model, step: &Step, response: &Value, totals: &mut Totals) -> Result<(), String> {
    match step {
        Step::Write(write) => {
            if model.acknowledge(write, response)? {
                totals.acknowledged_writes += 1;
            } else {
                totals.rejected_writes += 1;
            }
            Ok(())
        }
        Step::Read(key) => {
            let expected: Vec<String> = model.docs.get(key).map(text).into_iter().collect();
            let found: Vec<String> = response["data"].as_array().map(|documents| documents.iter().map(text).collect()).unwrap_or_default();
            if response["status"] != "ok" || found != expected {
                return Err(format!("read of {key:?} answered {response}, expected {expected:?}"));
            }
            Ok(())
        }
    }
}

/// Reads everything through `server` and reconciles the model with it.
fn check_through(server: &mut Server, model: &mut Model, prefixes: &[Model], totals: &mut Totals) -> Result<(), String> {
    let requests = read_all_requests();
    for line in requests.lines() {
        if !send(server, line) {
            return Err("cannot send the read-all queries (did the boot fail?)".into());
        }
    }
    let mut responses = Vec::new();
    for _ in 0..READ_ALL_RESPONSES {
        responses.push(read_response(server).ok_or("no answer to the read-all queries (did the boot fail?)")?);
    }
    let served = parse_read_all(&responses)?;
    totals.documents_checked += served.len();
    let applied = model.reconcile_prefix(&served, prefixes)?;
    if !prefixes.is_empty() {
        totals.in_flight_applied += applied;
        totals.in_flight_not_applied += prefixes.len() - 1 - applied;
    }
    Ok(())
}

fn torture(rounds: usize, seed: u64) -> Totals {
    let sandbox = sandbox_with_schemas();
    let mut load = Load { rng: fastrand::Rng::with_seed(seed), next_id: 0 };
    let mut model = Model::default();
    let mut totals = Totals::default();
    // The models after each prefix of the unanswered writes of the last kill.
    let mut prefixes: Vec<Model> = Vec::new();
    for round in 0..rounds {
        let context = format!("seed {seed:#x} (AERODB_TORTURE_SEED), round {round}");
        let mut server = sandbox.start(&[]);
        if let Err(error) = check_through(&mut server, &mut model, &prefixes, &mut totals) {
            let (_, stderr) = kill_and_drain(server);
            panic!("{context}: after the restart: {error}\nstderr: {}", String::from_utf8_lossy(&stderr));
        }
        prefixes.clear();
        // Requests answered one by one.
        for _ in 0..load.rng.usize(0..40) {
            let step = load.step(&model);
            totals.requests += 1;
            let response = server.request(&step.request()).unwrap_or_else(|| panic!("{context}: no response to {}", step.request()));
            answered(&mut model, &step, &response, &mut totals).unwrap_or_else(|error| panic!("{context}: {error}"));
        }
        if load.rng.u32(0..8) == 0 {
            // A clean shutdown now and then.
            let output = server.finish();
            assert!(matches!(output.status.code(), Some(0 | 1)), "{context}: clean shutdown failed: {}", describe(&output));
            assert!(sandbox.data().join("clean_shutdown").exists(), "{context}: no marker after a clean shutdown");
            totals.clean_shutdowns += 1;
            totals.rounds += 1;
            continue;
        }
        // A burst sent without waiting, then SIGKILL after a random delay.
        let burst: Vec<Step> = (0..load.rng.usize(0..5)).map(|_| load.step(&model)).collect();
        // The burst is generated against the model as it stands; steps run in order,
        // so later ones are judged against the model after the earlier ones.
        for step in &burst {
            totals.requests += 1;
            if !send(&mut server, &step.request()) {
                break;
            }
        }
        // Mostly short delays, so the kill often lands inside a write.
        let delay = match load.rng.u32(0..4) {
            0 => 0,
            1 => load.rng.u64(0..150),
            2 => load.rng.u64(0..700),
            _ => load.rng.u64(0..3000),
        };
        std::thread::sleep(Duration::from_micros(delay));
        let (responses, _) = kill_and_drain(server);
        totals.kills += 1;
        assert!(responses.len() <= burst.len(), "{context}: more responses than requests");
        for (step, response) in burst.iter().zip(&responses) {
            answered(&mut model, step, response, &mut totals).unwrap_or_else(|error| panic!("{context}: burst: {error}"));
        }
        // Any prefix of the unanswered writes may have become durable before the kill.
        let mut candidate = model.clone();
        prefixes.push(candidate.clone());
        for step in &burst[responses.len()..] {
            if let Step::Write(write) = step {
                candidate.apply(write);
                prefixes.push(candidate.clone());
            }
        }
        totals.rounds += 1;
    }
    // Final recovery through `aerodb query`, then every document by every index.
    let context = format!("seed {seed:#x}, final check");
    let output = sandbox.aerodb(&["query"], &read_all_requests());
    assert_eq!(output.status.code(), Some(0), "{context}: {}", describe(&output));
    let served = parse_read_all(&aerodb_tests::responses(&output)).unwrap_or_else(|error| panic!("{context}: {error}"));
    model.reconcile_prefix(&served, &prefixes).unwrap_or_else(|error| panic!("{context}: {error}"));
    totals.documents_checked += served.len();
    assert_serves(&sandbox, &model, &[("user".into(), "missing".into()), ("note".into(), "never-there".into())]);
    totals
}

#[test]
fn sigkill_under_write_load_loses_no_acknowledged_write() {
    let rounds = env_number("AERODB_TORTURE_ROUNDS").map(|rounds| rounds as usize).unwrap_or(DEFAULT_ROUNDS);
    let seed = env_number("AERODB_TORTURE_SEED").unwrap_or(DEFAULT_SEED);
    let totals = torture(rounds, seed);
    assert_eq!(totals.rounds, rounds);
    assert!(totals.kills > 0 && totals.acknowledged_writes > 0, "the load must write and kill");
    eprintln!(
        "sigkill torture: seed {seed:#x}, rounds {}, kills {}, clean shutdowns {}, requests {}, acknowledged writes checked {}, rejected writes {}, in-flight writes applied {} / not applied {}, documents compared {}, lost 0",
        totals.rounds, totals.kills, totals.clean_shutdowns, totals.requests, totals.acknowledged_writes, totals.rejected_writes, totals.in_flight_applied, totals.in_flight_not_applied, totals.documents_checked
    );
}
