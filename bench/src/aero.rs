//! AeroDB's side: fresh databases, the library API, the `aerodb` binary,
//! data-set loading and the boot probe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aerodb_engine::{Database, Mode};
use serde_json::{json, Value};

use crate::util::{self, err, Res};
use crate::workload::{self, Param, USER_SCHEMA};

/// The install guide's config.
pub const GUIDE_CONFIG: &str = r#"{ "data_dir": "./data", "wal_sync_mode": "fsync", "max_wal_size_bytes": 1073741824, "max_memory_bytes": 536870912 }
"#;

/// The config of the large boot data sets: the install guide's, with a WAL
/// limit above the 1,000,000-document log so that no write logs the
/// over-limit warning. max_memory_bytes stays at its 512 MiB default.
pub const DATASET_CONFIG: &str = r#"{ "data_dir": "./data", "wal_sync_mode": "fsync", "max_wal_size_bytes": 68719476736, "max_memory_bytes": 536870912 }
"#;

/// A folder holding `aerodb.json` and `data/`.
pub struct Place {
    pub folder: PathBuf,
}

impl Place {
    pub fn config(&self) -> PathBuf {
        self.folder.join("aerodb.json")
    }
    pub fn wal(&self) -> PathBuf {
        self.folder.join("data/wal/wal.log")
    }
    pub fn data(&self) -> PathBuf {
        self.folder.join("data")
    }
    /// The WAL's logical end (its records; the file is longer by its
    /// preallocated zeros): `wal_bytes` of `metadata/state.json`, written by
    /// the last clean shutdown; the file's size when there is none.
    pub fn wal_len(&self) -> u64 {
        let state = std::fs::read(self.data().join("metadata/state.json")).ok();
        let recorded = state.and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok()).and_then(|state| state["wal_bytes"].as_u64());
        recorded.unwrap_or_else(|| std::fs::metadata(self.wal()).map(|meta| meta.len()).unwrap_or(0))
    }
}

/// `aerodb init` through the library, then the schema written by hand as
/// the install guide does.
pub fn fresh(folder: &Path, config: &str) -> Res<Place> {
    let _ = std::fs::remove_dir_all(folder);
    std::fs::create_dir_all(folder).map_err(err("create folder"))?;
    let place = Place { folder: folder.to_path_buf() };
    std::fs::write(place.config(), config).map_err(err("write config"))?;
    aerodb_engine::init(&place.config()).map_err(|error| format!("init: {}", error.to_json()))?;
    std::fs::write(place.data().join("metadata/schemas/user_v1.json"), USER_SCHEMA).map_err(err("write schema"))?;
    Ok(place)
}

pub fn open(place: &Place) -> Res<Database> {
    Database::open(&place.config()).map_err(|error| format!("open: {}", error.to_json()))
}

fn check_ok(response: &Value) -> Res<()> {
    if response["status"] == "ok" {
        Ok(())
    } else {
        Err(format!("request failed: {response}"))
    }
}

/// Durable inserts through `Database::respond`: `warmup` untimed, then
/// `count` timed. Returns (inserts/s, WAL bytes per timed insert).
pub fn api_inserts(folder: &Path, warmup: u64, count: u64) -> Res<(f64, f64)> {
    let place = fresh(folder, GUIDE_CONFIG)?;
    let mut db = open(&place)?;
    let requests: Vec<Value> =
        (0..warmup + count).map(|i| serde_json::from_str(&workload::doc(i).insert_request()).expect("request")).collect();
    for request in &requests[..warmup as usize] {
        check_ok(&db.respond(request, Mode::Query))?;
    }
    let wal_before = db.wal_bytes();
    let started = Instant::now();
    for request in &requests[warmup as usize..] {
        check_ok(&db.respond(request, Mode::Query))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let wal_after = db.wal_bytes();
    db.shutdown().map_err(|error| format!("shutdown: {}", error.to_json()))?;
    let _ = std::fs::remove_dir_all(folder);
    Ok((count as f64 / elapsed, (wal_after - wal_before) as f64 / count as f64))
}

/// Runs `aerodb start` on `place` with `input` piped in; checks that every
/// response is ok. Returns (wall seconds, stdout).
pub fn start_piped(aerodb: &Path, place: &Place, input: Vec<u8>, expected_responses: usize) -> Res<(f64, Vec<u8>)> {
    let mut command = Command::new(aerodb);
    command.arg("start").arg("--config").arg(place.config()).current_dir(&place.folder);
    let piped = util::run_piped(command, input, &place.folder.join("aerodb-start.stderr"))?;
    let responses = piped.stdout.iter().filter(|byte| **byte == b'\n').count();
    let ok = util::count(&piped.stdout, br#""status":"ok""#);
    if !piped.status.success() || responses != expected_responses || ok != expected_responses {
        let log = std::fs::read_to_string(place.folder.join("aerodb-start.stderr")).unwrap_or_default();
        return Err(format!(
            "aerodb start: {}, {responses} responses ({ok} ok) of {expected_responses}; stderr tail: {}",
            piped.status,
            log.chars().rev().take(600).collect::<String>().chars().rev().collect::<String>()
        ));
    }
    Ok((piped.wall.as_secs_f64(), piped.stdout))
}

/// Durable inserts through `aerodb start`, the requests piped in; wall
/// time from spawn to exit (boot and shutdown included).
pub fn start_inserts(aerodb: &Path, folder: &Path, count: u64) -> Res<f64> {
    let place = fresh(folder, GUIDE_CONFIG)?;
    let mut input = String::new();
    for i in 0..count {
        input.push_str(&workload::doc(i).insert_request());
        input.push('\n');
    }
    let (wall, _) = start_piped(aerodb, &place, input.into_bytes(), count as usize)?;
    let _ = std::fs::remove_dir_all(folder);
    Ok(count as f64 / wall)
}

/// The internal `load` subcommand: inserts documents `from..to` through
/// the API and shuts down cleanly. The harness runs it under eatmydata.
pub fn load(config: &Path, from: u64, to: u64) -> Res<()> {
    let mut db = Database::open(config).map_err(|error| format!("open: {}", error.to_json()))?;
    let started = Instant::now();
    for i in from..to {
        let request: Value = serde_json::from_str(&workload::doc(i).insert_request()).expect("request");
        check_ok(&db.respond(&request, Mode::Query))?;
        if (i + 1) % 100_000 == 0 {
            eprintln!("  loaded {} documents ({:.0} inserts/s)", i + 1, (i + 1 - from) as f64 / started.elapsed().as_secs_f64());
        }
    }
    db.shutdown().map_err(|error| format!("shutdown: {}", error.to_json()))
}

/// The internal `boot-probe` subcommand: one boot in a fresh process,
/// printed as one JSON line: wall time of `Database::open`, the recovery
/// report, and this process's memory (VmHWM = peak RSS) after the boot.
pub fn boot_probe(config: &Path) -> Res<()> {
    // A sampler thread reads /proc/self/status every 10 ms during the boot,
    // to split the peak between anonymous memory and mapped file pages.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut anon_max, mut file_max) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let status = util::proc_status_kib();
                anon_max = anon_max.max(status["RssAnon"].as_u64().unwrap_or(0));
                file_max = file_max.max(status["RssFile"].as_u64().unwrap_or(0));
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            (anon_max, file_max)
        })
    };
    let started = Instant::now();
    let db = Database::open(config).map_err(|error| format!("open: {}", error.to_json()))?;
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (anon_max, file_max) = sampler.join().unwrap_or((0, 0));
    let mut memory = util::proc_status_kib();
    memory["RssAnon_max_sampled"] = anon_max.into();
    memory["RssFile_max_sampled"] = file_max.into();
    let report = db.recovery_report().to_json();
    let started = Instant::now();
    db.shutdown().map_err(|error| format!("shutdown: {}", error.to_json()))?;
    let shutdown_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!("{}", json!({"open_ms": open_ms, "shutdown_ms": shutdown_ms, "report": report, "memory_kib": memory}));
    Ok(())
}

/// `_id`s of the documents a query returns through the API.
pub fn api_ids(db: &mut Database, param: &Param) -> Res<Vec<String>> {
    let response = db.respond(&param.request_value(), Mode::Query);
    check_ok(&response)?;
    Ok(response["data"]
        .as_array()
        .map(|docs| docs.iter().filter_map(|doc| doc["_id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}
