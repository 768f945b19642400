//! `aerodb-bench`: AeroDB beside SQLite and the disk's raw fdatasync
//! limit, in one run (docs/BENCHMARKS.md).
//!
//! ```text
//! cd bench && cargo run --release -- all            # the whole comparison, markdown on stdout
//! cd bench && cargo run --release -- all --quick    # a smoke run at a small scale
//! cargo run --release -- inserts|queries|boot|wal-bytes|raw-fsync [--quick]
//! ```
//!
//! A plain runner rather than criterion: durable inserts and whole-process
//! runs are seconds long and dominated by fdatasync and process startup,
//! so each figure is the median of several interleaved runs (the systems
//! take turns in a rotating order, so a burst of load from elsewhere on
//! the machine hits them alike), each after an untimed warm-up where a
//! warm-up makes sense. Library-level query loops time thousands of
//! queries per run, far above timer resolution.

mod aero;
mod sqlite;
mod util;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use util::{err, fmt_rate, fmt_ratio, median, Res};
use workload::Kind;

/// How much work each part does.
#[derive(Clone, Debug)]
struct Scale {
    /// Durable inserts per timed run, per system.
    insert_count: u64,
    /// Untimed inserts before the timed ones (library runs only).
    insert_warmup: u64,
    /// Interleaved runs per figure (the median is reported).
    rounds: usize,
    /// 4 KiB append + fdatasync iterations per raw-limit run.
    raw_writes: u64,
    /// Documents in the query data set.
    query_docs: u64,
    /// Queries per library-level run, per kind.
    api_queries: usize,
    /// Queries piped into one process, per kind.
    process_queries: usize,
    /// Data-set sizes for boot.
    boot_sizes: Vec<u64>,
    /// Inserts for the WAL-bytes figure.
    wal_inserts: u64,
}

impl Scale {
    fn full() -> Scale {
        Scale {
            insert_count: 2000,
            insert_warmup: 100,
            rounds: 5,
            raw_writes: 2000,
            query_docs: 100_000,
            api_queries: 20_000,
            process_queries: 10_000,
            boot_sizes: vec![100_000, 200_000, 1_000_000],
            wal_inserts: 5000,
        }
    }
    fn quick() -> Scale {
        Scale {
            insert_count: 200,
            insert_warmup: 20,
            rounds: 1,
            raw_writes: 200,
            query_docs: 10_000,
            api_queries: 2000,
            process_queries: 1000,
            boot_sizes: vec![10_000, 20_000],
            wal_inserts: 500,
        }
    }
}

struct Opts {
    part: String,
    scale: Scale,
    dir: PathBuf,
    aerodb: PathBuf,
    sqlite3: PathBuf,
    build: bool,
}

const USAGE: &str = "usage: aerodb-bench <all|inserts|queries|boot|wal-bytes|raw-fsync> [--quick] [--rounds N] [--boot-sizes 100000,200000,1000000] [--dir DIR] [--aerodb PATH] [--sqlite3 PATH] [--no-build]";

fn parse_args() -> Res<Opts> {
    let mut args = std::env::args().skip(1);
    let part = args.next().ok_or(USAGE)?;
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut quick = false;
    let mut rounds = None;
    let mut boot_sizes = None;
    let mut opts = Opts {
        part,
        scale: Scale::full(),
        dir: manifest_dir.join("target/bench-data"),
        aerodb: manifest_dir.join("../target/release/aerodb"),
        sqlite3: PathBuf::from("sqlite3"),
        build: true,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--rounds" => rounds = Some(value()?.parse::<usize>().map_err(err("--rounds"))?),
            "--boot-sizes" => {
                boot_sizes = Some(
                    value()?
                        .split(',')
                        .map(|n| n.trim().replace('_', "").parse::<u64>().map_err(err("--boot-sizes")))
                        .collect::<Res<Vec<_>>>()?,
                )
            }
            "--dir" => opts.dir = PathBuf::from(value()?),
            "--aerodb" => opts.aerodb = PathBuf::from(value()?),
            "--sqlite3" => opts.sqlite3 = PathBuf::from(value()?),
            "--no-build" => opts.build = false,
            _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
        }
    }
    if quick {
        opts.scale = Scale::quick();
    }
    if let Some(rounds) = rounds {
        opts.scale.rounds = rounds.max(1);
    }
    if let Some(sizes) = boot_sizes {
        opts.scale.boot_sizes = sizes;
    }
    Ok(opts)
}

fn main() {
    let outcome = run();
    if let Err(message) = outcome {
        eprintln!("aerodb-bench: {message}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let first = std::env::args().nth(1).unwrap_or_default();
    // Internal subcommands run in child processes.
    if first == "api-queries" {
        // For profiling: `aerodb-bench api-queries CONFIG id|eq|range COUNT DOCUMENTS`.
        let args: Vec<String> = std::env::args().skip(2).collect();
        let place =
            aero::Place { folder: PathBuf::from(args.first().ok_or("missing config")?).parent().unwrap_or(Path::new(".")).to_path_buf() };
        let kind = Kind::ALL.into_iter().find(|kind| Some(kind.key()) == args.get(1).map(String::as_str)).ok_or("kind: id, eq or range")?;
        let count: usize = args.get(2).and_then(|n| n.parse().ok()).ok_or("missing count")?;
        let documents: u64 = args.get(3).and_then(|n| n.parse().ok()).ok_or("missing documents")?;
        let mut db = aero::open(&place)?;
        let requests: Vec<Value> = workload::params(kind, count, documents, 1).iter().map(|param| param.request_value()).collect();
        let started = Instant::now();
        for request in &requests {
            std::hint::black_box(db.respond(request, aerodb_engine::Mode::Query));
        }
        println!("{:.0} queries/s", count as f64 / started.elapsed().as_secs_f64());
        return db.shutdown().map_err(|error| format!("shutdown: {}", error.to_json()));
    }
    if first == "load" || first == "boot-probe" {
        let args: Vec<String> = std::env::args().skip(2).collect();
        let config = PathBuf::from(args.first().ok_or("missing config")?);
        return if first == "load" {
            let from = args.get(1).and_then(|n| n.parse().ok()).ok_or("missing from")?;
            let to = args.get(2).and_then(|n| n.parse().ok()).ok_or("missing to")?;
            aero::load(&config, from, to)
        } else {
            aero::boot_probe(&config)
        };
    }
    let mut opts = parse_args()?;
    std::fs::create_dir_all(&opts.dir).map_err(err("create --dir"))?;
    let needs_binaries = matches!(opts.part.as_str(), "all" | "inserts" | "queries" | "boot");
    if needs_binaries {
        prepare_binaries(&mut opts)?;
    }
    let mut results = json!({"scale": format!("{:?}", opts.scale)});
    let mut out = String::new();
    out.push_str(&machine_section(&opts));
    match opts.part.as_str() {
        "all" => {
            out.push_str(&raw_and_inserts(&opts, &mut results)?);
            out.push_str(&queries(&opts, &mut results)?);
            out.push_str(&boot(&opts, &mut results)?);
            out.push_str(&wal_bytes(&opts, &mut results)?);
            out.push_str(&targets(&results));
        }
        "inserts" => out.push_str(&raw_and_inserts(&opts, &mut results)?),
        "raw-fsync" => out.push_str(&raw_only(&opts, &mut results)?),
        "wal-bytes" => out.push_str(&wal_bytes(&opts, &mut results)?),
        "queries" => out.push_str(&queries(&opts, &mut results)?),
        "boot" => out.push_str(&boot(&opts, &mut results)?),
        other => return Err(format!("unknown part {other}\n{USAGE}")),
    }
    if opts.part != "all" {
        out.push_str(&targets(&results));
    }
    let results_path = opts.dir.join(format!("results-{}.json", opts.part));
    let _ = std::fs::write(&results_path, serde_json::to_string_pretty(&results).unwrap_or_default());
    println!("{out}");
    eprintln!("raw figures: {}", results_path.display());
    Ok(())
}

fn prepare_binaries(opts: &mut Opts) -> Res<()> {
    if opts.build {
        eprintln!("building the aerodb binary (cargo build --release -p aerodb-cli in the main workspace)");
        let status = Command::new("cargo")
            .args(["build", "--release", "-p", "aerodb-cli", "--manifest-path"])
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .status()
            .map_err(err("cargo build"))?;
        if !status.success() {
            return Err("building the aerodb binary failed".into());
        }
    }
    if !opts.aerodb.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release -p aerodb-cli` in the repository root",
            opts.aerodb.display()
        ));
    }
    // Run a private copy, so a rebuild of the workspace during the run
    // (other work on the same tree) cannot swap the binary under test.
    let snapshot = opts.dir.join("aerodb-under-test");
    std::fs::copy(&opts.aerodb, &snapshot).map_err(err("copy the aerodb binary"))?;
    opts.aerodb = snapshot;
    let version = Command::new(&opts.sqlite3)
        .arg("--version")
        .output()
        .map_err(|error| format!("the sqlite3 CLI ({}) cannot run: {error}", opts.sqlite3.display()))?;
    if !version.status.success() {
        return Err("sqlite3 --version failed".into());
    }
    Ok(())
}

fn shell(command: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine_section(opts: &Opts) -> String {
    let cpu = shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
    let memory = shell("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo");
    let fs = shell(&format!("df -T '{}' | awk 'NR==2 {{print $2}}'", opts.dir.display()));
    let sqlite_cli = shell(&format!("'{}' --version | cut -d' ' -f1", opts.sqlite3.display()));
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let commit = shell(&format!("git -C '{}' rev-parse --short HEAD", repo.display()));
    let dirty = shell(&format!("git -C '{}' status --porcelain -- engine format cli | wc -l", repo.display()));
    let code = if dirty.trim() == "0" {
        format!("commit {commit}")
    } else {
        format!("commit {commit} plus uncommitted changes to {} files of engine/format/cli", dirty.trim())
    };
    format!(
        "## Machine\n\n| | |\n|---|---|\n| cores (nproc) | {} |\n| CPU | {} |\n| memory | {} |\n| filesystem of the data (df -T) | {} |\n| kernel (uname -r) | {} |\n| sqlite3 CLI | {} |\n| rusqlite's bundled SQLite | {} |\n| AeroDB code measured | {} |\n| scale | {} |\n\n",
        shell("nproc"),
        cpu.trim(),
        memory,
        fs,
        shell("uname -r"),
        sqlite_cli,
        sqlite::version(),
        code,
        if opts.scale.query_docs < 100_000 { "--quick" } else { "full" }
    )
}

/// Appends 4 KiB and fdatasyncs it, `writes` times, to a new file in the
/// folder where the databases live. Returns fdatasyncs/s.
fn raw_fsync(folder: &Path, writes: u64) -> Res<f64> {
    use std::io::Write;
    let path = folder.join("raw-fsync.bin");
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new().create_new(true).append(true).open(&path).map_err(err("raw file"))?;
    let block = vec![0xA5u8; 4096];
    let started = Instant::now();
    for _ in 0..writes {
        file.write_all(&block).map_err(err("write"))?;
        file.sync_data().map_err(err("fdatasync"))?;
    }
    let rate = writes as f64 / started.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// The same loop overwriting 4 KiB blocks of a file written and synced
/// beforehand: no block allocation and no file-size change per
/// fdatasync, as in a log that is preallocated or recycled (SQLite's WAL
/// after its first checkpoint). Informational, not a target.
fn raw_overwrite_fsync(folder: &Path, writes: u64) -> Res<f64> {
    use std::os::unix::fs::FileExt;
    let path = folder.join("raw-overwrite.bin");
    let _ = std::fs::remove_file(&path);
    let file = std::fs::OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(err("raw file"))?;
    let block = vec![0xA5u8; 4096];
    for i in 0..writes {
        file.write_all_at(&block, i * 4096).map_err(err("write"))?;
    }
    file.sync_all().map_err(err("fsync"))?;
    let started = Instant::now();
    for i in 0..writes {
        file.write_all_at(&block, i * 4096).map_err(err("write"))?;
        file.sync_data().map_err(err("fdatasync"))?;
    }
    let rate = writes as f64 / started.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

fn raw_only(opts: &Opts, results: &mut Value) -> Res<String> {
    let mut append = Vec::new();
    let mut overwrite = Vec::new();
    for _ in 0..opts.scale.rounds {
        append.push(raw_fsync(&opts.dir, opts.scale.raw_writes)?);
        overwrite.push(raw_overwrite_fsync(&opts.dir, opts.scale.raw_writes)?);
    }
    results["inserts"]["raw"] = json!({"median_per_s": median(&append), "runs_per_s": append});
    results["inserts"]["raw_overwrite"] = json!({"median_per_s": median(&overwrite), "runs_per_s": overwrite});
    let show = |runs: &[f64]| runs.iter().map(|rate| fmt_rate(*rate)).collect::<Vec<_>>().join(", ");
    Ok(format!(
        "## Raw disk limit\n\n| loop ({} iterations, median of {}) | per s | runs |\n|---|---:|---|\n| 4 KiB append + fdatasync (the raw limit) | {} | {} |\n| 4 KiB overwrite of a pre-written file + fdatasync (informational) | {} | {} |\n\n",
        opts.scale.raw_writes, opts.scale.rounds, fmt_rate(median(&append)), show(&append), fmt_rate(median(&overwrite)), show(&overwrite)
    ))
}

const INSERT_SYSTEMS: [(&str, &str); 6] = [
    ("raw", "raw limit: 4 KiB append + fdatasync"),
    ("raw_overwrite", "informational: 4 KiB overwrite of a pre-written file + fdatasync"),
    ("aerodb_api", "AeroDB, Database API"),
    ("rusqlite", "SQLite, rusqlite (prepared)"),
    ("aerodb_start", "AeroDB, `aerodb start` (piped, startup incl.)"),
    ("sqlite_cli", "SQLite, sqlite3 CLI (piped, startup incl.)"),
];

fn raw_and_inserts(opts: &Opts, results: &mut Value) -> Res<String> {
    let scale = &opts.scale;
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); INSERT_SYSTEMS.len()];
    let mut wal_bytes = Vec::new();
    for round in 0..scale.rounds {
        for step in 0..INSERT_SYSTEMS.len() {
            let index = (step + round) % INSERT_SYSTEMS.len();
            let (key, _) = INSERT_SYSTEMS[index];
            eprintln!("inserts: round {} {key}", round + 1);
            let rate = match key {
                "raw" => raw_fsync(&opts.dir, scale.raw_writes)?,
                "raw_overwrite" => raw_overwrite_fsync(&opts.dir, scale.raw_writes)?,
                "aerodb_api" => {
                    let (rate, bytes) = aero::api_inserts(&opts.dir.join("ins-api"), scale.insert_warmup, scale.insert_count)?;
                    wal_bytes.push(bytes);
                    rate
                }
                "rusqlite" => sqlite::rusqlite_inserts(&opts.dir.join("ins-rusqlite.db"), scale.insert_warmup, scale.insert_count)?,
                "aerodb_start" => aero::start_inserts(&opts.aerodb, &opts.dir.join("ins-start"), scale.insert_count)?,
                _ => sqlite::cli_inserts(&opts.sqlite3, &opts.dir.join("ins-cli.db"), scale.insert_count)?,
            };
            runs[index].push(rate);
        }
    }
    let medians: Vec<f64> = runs.iter().map(|values| median(values)).collect();
    for (index, (key, _)) in INSERT_SYSTEMS.iter().enumerate() {
        results["inserts"][key] = json!({"median_per_s": medians[index], "runs_per_s": runs[index]});
    }
    results["inserts"]["aerodb_api_wal_bytes_per_insert"] = json!(median(&wal_bytes));
    let raw = medians[0];
    let mut text = format!(
        "## Durable single-document inserts\n\n{} inserts per run ({} untimed first for the library runs), median of {} interleaved runs; SQLite: WAL mode, synchronous=FULL, one transaction per insert.\n\n| system | inserts/s | runs | vs SQLite, same interface | vs raw fdatasync |\n|---|---:|---|---:|---:|\n",
        scale.insert_count, scale.insert_warmup, scale.rounds
    );
    for (index, (key, label)) in INSERT_SYSTEMS.iter().enumerate() {
        let versus_sqlite = match *key {
            "aerodb_api" => fmt_ratio(medians[2] / medians[3]),
            "aerodb_start" => fmt_ratio(medians[4] / medians[5]),
            _ => "—".into(),
        };
        let runs_text = runs[index].iter().map(|rate| fmt_rate(*rate)).collect::<Vec<_>>().join(", ");
        text.push_str(&format!(
            "| {label} | {} | {runs_text} | {versus_sqlite} | {} |\n",
            fmt_rate(medians[index]),
            fmt_ratio(medians[index] / raw)
        ));
    }
    text.push('\n');
    Ok(text)
}

fn wal_bytes(opts: &Opts, results: &mut Value) -> Res<String> {
    let scale = &opts.scale;
    eprintln!("wal-bytes: {} durable inserts through the API and through rusqlite", scale.wal_inserts);
    let (_, aerodb) = aero::api_inserts(&opts.dir.join("wal-api"), 0, scale.wal_inserts)?;
    let sqlite = sqlite::wal_bytes_per_insert(&opts.dir.join("wal-sqlite.db"), 0, scale.wal_inserts)?;
    let average_doc = (0..scale.wal_inserts).map(|i| workload::doc(i).json().len() as f64).sum::<f64>() / scale.wal_inserts as f64;
    results["wal_bytes"] =
        json!({"aerodb_per_insert": aerodb, "sqlite_per_insert": sqlite, "inserts": scale.wal_inserts, "document_json_bytes": average_doc});
    let mut text = format!(
        "## WAL bytes per insert\n\n{} inserts into a fresh database, documents of {:.1} JSON bytes on average. SQLite's figure: growth of its -wal file with automatic checkpoints off.\n\n| system | WAL bytes per insert |\n|---|---:|\n| AeroDB | {:.0} |\n| SQLite (WAL mode) | {:.0} |\n",
        scale.wal_inserts, average_doc, aerodb, sqlite
    );
    let mut datasets = Vec::new();
    for size in &scale.boot_sizes {
        let place = aero::Place { folder: opts.dir.join(format!("ds-{size}")) };
        if dataset_loaded(&place.folder) == Some(*size) {
            let per = (place.wal_len() - 40) as f64 / *size as f64;
            datasets.push(json!({"documents": size, "wal_bytes": place.wal_len(), "per_insert": per}));
            text.push_str(&format!("| AeroDB, whole log of the {size}-document boot data set | {per:.0} |\n"));
        }
    }
    results["wal_bytes"]["datasets"] = json!(datasets);
    text.push('\n');
    Ok(text)
}

/// A data set counts as loaded only if this very build of the harness
/// (and so of the engine) loaded it: the marker holds the count and a
/// hash of the harness executable.
fn dataset_loaded(folder: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(folder.join("loaded")).ok()?;
    let mut lines = text.lines();
    let count = lines.next()?.trim().parse().ok()?;
    (lines.next()?.trim() == build_stamp()).then_some(count)
}

fn build_stamp() -> String {
    use std::hash::{Hash, Hasher};
    static STAMP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STAMP
        .get_or_init(|| {
            let bytes = std::env::current_exe().and_then(std::fs::read).unwrap_or_default();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .clone()
}

/// The AeroDB data set of `documents` documents in `dir/ds-N`, loaded
/// through the engine (the `load` subcommand, under eatmydata when it is
/// installed: only boot and queries are measured on it), on top of the
/// largest smaller data set already built. Cached across runs.
fn ensure_aero_dataset(opts: &Opts, documents: u64) -> Res<aero::Place> {
    let folder = opts.dir.join(format!("ds-{documents}"));
    if dataset_loaded(&folder) == Some(documents) {
        return Ok(aero::Place { folder });
    }
    let _ = std::fs::remove_dir_all(&folder);
    let mut base: Option<u64> = None;
    for entry in std::fs::read_dir(&opts.dir).map_err(err("list --dir"))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(size) = name.strip_prefix("ds-").and_then(|size| size.parse::<u64>().ok()) {
            if size < documents && dataset_loaded(&entry.path()) == Some(size) && base.is_none_or(|best| size > best) {
                base = Some(size);
            }
        }
    }
    let building = opts.dir.join(format!("ds-{documents}.building"));
    let _ = std::fs::remove_dir_all(&building);
    let from = match base {
        Some(size) => {
            let status =
                Command::new("cp").arg("-a").arg(opts.dir.join(format!("ds-{size}"))).arg(&building).status().map_err(err("cp"))?;
            if !status.success() {
                return Err("copying a data set failed".into());
            }
            let _ = std::fs::remove_file(building.join("loaded"));
            size
        }
        None => {
            aero::fresh(&building, aero::DATASET_CONFIG)?;
            0
        }
    };
    let eatmydata = util::have_program("eatmydata");
    eprintln!(
        "loading AeroDB data set: documents {from}..{documents}{}",
        if eatmydata { " (under eatmydata)" } else { " (eatmydata not installed: durable, slow)" }
    );
    let exe = std::env::current_exe().map_err(err("current_exe"))?;
    let mut command = if eatmydata {
        let mut command = Command::new("eatmydata");
        command.arg(exe);
        command
    } else {
        Command::new(exe)
    };
    let place = aero::Place { folder: building.clone() };
    let started = Instant::now();
    let status = command
        .arg("load")
        .arg(place.config())
        .arg(from.to_string())
        .arg(documents.to_string())
        .stderr(std::fs::File::create(building.join("load.stderr")).map_err(err("stderr file"))?)
        .status()
        .map_err(err("load"))?;
    if !status.success() {
        return Err(format!("loading failed: see {}", building.join("load.stderr").display()));
    }
    eprintln!("  loaded in {:.1} s", started.elapsed().as_secs_f64());
    std::fs::write(building.join("loaded"), format!("{documents}\n{}\n", build_stamp())).map_err(err("marker"))?;
    std::fs::rename(&building, &folder).map_err(err("rename"))?;
    Ok(aero::Place { folder })
}

fn ensure_sqlite_dataset(opts: &Opts, documents: u64) -> Res<PathBuf> {
    let path = opts.dir.join(format!("sq-{documents}.db"));
    let marker = opts.dir.join(format!("sq-{documents}.loaded"));
    if std::fs::read_to_string(&marker).ok().and_then(|text| text.trim().parse::<u64>().ok()) == Some(documents) {
        return Ok(path);
    }
    eprintln!("loading SQLite data set: {documents} rows");
    sqlite::load(&path, documents)?;
    std::fs::write(&marker, documents.to_string()).map_err(err("marker"))?;
    Ok(path)
}

fn queries(opts: &Opts, results: &mut Value) -> Res<String> {
    let scale = &opts.scale;
    let documents = scale.query_docs;
    let place = ensure_aero_dataset(opts, documents)?;
    let sqlite_path = ensure_sqlite_dataset(opts, documents)?;

    // Library level: the Database API beside rusqlite's prepared statements.
    let mut db = aero::open(&place)?;
    let conn = sqlite::connect(&sqlite_path)?;
    let mut prepared = sqlite::Queries::new(&conn)?;
    let mut checked = 0;
    for kind in Kind::ALL {
        for param in workload::params(kind, 200, documents, 7) {
            let ours = aero::api_ids(&mut db, &param)?;
            let theirs: Vec<String> = prepared.run(&param)?.into_iter().map(|row| row.0).collect();
            if ours != theirs || ours.is_empty() {
                return Err(format!("AeroDB and SQLite disagree on {param:?}: {ours:?} vs {theirs:?}"));
            }
            checked += 1;
        }
    }
    eprintln!("queries: {checked} queries return the same documents in the same order in both");
    let mut api: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut rusqlite: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for (k, kind) in Kind::ALL.iter().enumerate() {
        let params = workload::params(*kind, scale.api_queries, documents, 1);
        let requests: Vec<Value> = params.iter().map(|param| param.request_value()).collect();
        for request in requests.iter().take(1000) {
            std::hint::black_box(db.respond(request, aerodb_engine::Mode::Query));
        }
        for param in params.iter().take(1000) {
            std::hint::black_box(prepared.run(param)?);
        }
        for round in 0..scale.rounds {
            for side in 0..2 {
                if (side + round) % 2 == 0 {
                    let started = Instant::now();
                    let mut rows = 0usize;
                    for request in &requests {
                        let response = db.respond(request, aerodb_engine::Mode::Query);
                        rows += response["data"].as_array().map(Vec::len).unwrap_or(0);
                    }
                    api[k].push(requests.len() as f64 / started.elapsed().as_secs_f64());
                    std::hint::black_box(rows);
                } else {
                    let started = Instant::now();
                    let mut rows = 0usize;
                    for param in &params {
                        rows += prepared.run(param)?.len();
                    }
                    rusqlite[k].push(params.len() as f64 / started.elapsed().as_secs_f64());
                    std::hint::black_box(rows);
                }
            }
        }
        eprintln!("queries: library {} done", kind.key());
    }
    drop(prepared);
    drop(conn);
    db.shutdown().map_err(|error| format!("shutdown: {}", error.to_json()))?;

    // Whole process: `aerodb start` and the sqlite3 CLI, queries piped in,
    // wall time from spawn to exit.
    let mut start_only = Vec::new();
    let mut cli_only = Vec::new();
    for _ in 0..scale.rounds {
        start_only.push(aero::start_piped(&opts.aerodb, &place, Vec::new(), 0)?.0);
        cli_only.push(sqlite::cli_piped(&opts.sqlite3, &sqlite_path, b".mode json\n".to_vec())?.0);
    }
    let mut start: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut cli: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for (k, kind) in Kind::ALL.iter().enumerate() {
        let params = workload::params(*kind, scale.process_queries, documents, 2);
        let mut requests = String::new();
        let mut script = String::from(".mode json\n");
        for param in &params {
            requests.push_str(&param.request());
            requests.push('\n');
            script.push_str(&param.sql());
            script.push('\n');
        }
        for round in 0..scale.rounds {
            let mut rows = [0usize; 2];
            for side in 0..2 {
                if (side + round) % 2 == 0 {
                    let (wall, stdout) = aero::start_piped(&opts.aerodb, &place, requests.clone().into_bytes(), params.len())?;
                    start[k].push(params.len() as f64 / wall);
                    rows[0] = util::count(&stdout, br#""_id":"#);
                } else {
                    let (wall, stdout) = sqlite::cli_piped(&opts.sqlite3, &sqlite_path, script.clone().into_bytes())?;
                    cli[k].push(params.len() as f64 / wall);
                    rows[1] = util::count(&stdout, br#""_id":"#);
                }
            }
            if rows[0] != rows[1] {
                return Err(format!("{}: aerodb start returned {} documents, the sqlite3 CLI {} rows", kind.key(), rows[0], rows[1]));
            }
        }
        eprintln!("queries: whole-process {} done", kind.key());
    }

    let mut text = format!(
        "## Queries on {documents} documents\n\nLibrary level: {} queries per run and kind (1000 untimed first), requests built before timing (AeroDB: the request `Value`; SQLite: prepared statements, rows read into Strings/i64), median of {} runs. Whole process: {} queries piped into one `aerodb start` / one `sqlite3` (`.mode json`), wall time from spawn to exit, startup (AeroDB: the full boot) and shutdown included, median of {} runs. {checked} sample queries were checked to return the same documents in the same order on both.\n\n| query | AeroDB API q/s | rusqlite q/s | ratio | `aerodb start` q/s | sqlite3 CLI q/s | ratio |\n|---|---:|---:|---:|---:|---:|---:|\n",
        scale.api_queries, scale.rounds, scale.process_queries, scale.rounds
    );
    for (k, kind) in Kind::ALL.iter().enumerate() {
        let (a, r, s, c) = (median(&api[k]), median(&rusqlite[k]), median(&start[k]), median(&cli[k]));
        results["queries"][kind.key()] = json!({
            "api_per_s": a, "rusqlite_per_s": r, "start_per_s": s, "cli_per_s": c,
            "api_runs": api[k], "rusqlite_runs": rusqlite[k], "start_runs": start[k], "cli_runs": cli[k],
        });
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            kind.label(),
            fmt_rate(a),
            fmt_rate(r),
            fmt_ratio(a / r),
            fmt_rate(s),
            fmt_rate(c),
            fmt_ratio(s / c)
        ));
    }
    let (so, co) = (median(&start_only) * 1000.0, median(&cli_only) * 1000.0);
    results["queries"]["startup_only_ms"] =
        json!({"aerodb_start": so, "sqlite_cli": co, "aerodb_runs_s": start_only, "cli_runs_s": cli_only});
    text.push_str(&format!("\nStartup and shutdown alone (no query piped in): `aerodb start` {so:.0} ms (boot of {documents} documents included), sqlite3 CLI {co:.1} ms.\n\n"));
    Ok(text)
}

fn boot(opts: &Opts, results: &mut Value) -> Res<String> {
    let scale = &opts.scale;
    let exe = std::env::current_exe().map_err(err("current_exe"))?;
    let time_v = Path::new("/usr/bin/time").exists();
    let mut rows = Vec::new();
    let mut text = format!(
        "## Boot (replay + verify + rebuild)\n\nEach data set was loaded through the engine (under eatmydata: loading is not measured) and shut down cleanly; every boot replays the whole WAL, verifies every page and rebuilds every index. Warm: the files in the page cache (one untimed boot first), median of {r} boots, each in a fresh process. Cold: the data set's files evicted from the page cache (posix_fadvise DONTNEED) before each of {r} boots. Peak RSS: VmHWM of the booting process; in brackets the largest anonymous and file-backed (mmap'd segment) resident sizes seen by a 10 ms sampler thread during the boot. Whole process: `aerodb query` with one `_id` lookup piped in (boot, query, shutdown) under /usr/bin/time -v, beside the sqlite3 CLI doing the same lookup on a SQLite file with the same rows.\n\n| documents | WAL MiB | boot ms, warm | replay / verify / rebuild ms | boot ms, cold | peak RSS MiB | `aerodb query` 1 lookup: wall ms / max RSS MiB | sqlite3 CLI 1 lookup ms |\n|---:|---:|---:|---|---:|---:|---|---:|\n",
        r = scale.rounds
    );
    for size in &scale.boot_sizes {
        let place = ensure_aero_dataset(opts, *size)?;
        let sqlite_path = ensure_sqlite_dataset(opts, *size)?;
        let probe = |cold: bool| -> Res<Value> {
            if cold {
                util::evict_from_page_cache(&place.folder)?;
            }
            let output = Command::new(&exe)
                .arg("boot-probe")
                .arg(place.config())
                .stderr(std::process::Stdio::null())
                .output()
                .map_err(err("boot-probe"))?;
            if !output.status.success() {
                return Err(format!("boot-probe failed on {size} documents"));
            }
            serde_json::from_slice(&output.stdout).map_err(err("boot-probe output"))
        };
        eprintln!("boot: {size} documents");
        probe(false)?;
        let warm = (0..scale.rounds).map(|_| probe(false)).collect::<Res<Vec<_>>>()?;
        let cold = (0..scale.rounds).map(|_| probe(true)).collect::<Res<Vec<_>>>()?;
        let field = |runs: &[Value], pointer: &str| {
            median(&runs.iter().map(|run| run.pointer(pointer).and_then(Value::as_f64).unwrap_or(f64::NAN)).collect::<Vec<_>>())
        };
        let peak_kib =
            warm.iter().chain(cold.iter()).filter_map(|run| run.pointer("/memory_kib/VmHWM").and_then(Value::as_f64)).fold(0.0, f64::max);
        // Whole process, with the real binary.
        let lookup = workload::params(Kind::Id, 1, *size, 3).remove(0);
        let mut whole = Vec::new();
        let mut whole_rss = 0.0f64;
        for _ in 0..scale.rounds {
            let mut command = if time_v {
                let mut command = Command::new("/usr/bin/time");
                command.arg("-v").arg(&opts.aerodb);
                command
            } else {
                Command::new(&opts.aerodb)
            };
            command.arg("query").arg("--config").arg(place.config()).current_dir(&place.folder);
            let stderr_file = place.folder.join("aerodb-query.stderr");
            let piped = util::run_piped(command, format!("{}\n", lookup.request()).into_bytes(), &stderr_file)?;
            if !piped.status.success() || util::count(&piped.stdout, br#""_id":"#) != 1 {
                return Err(format!("aerodb query on {size} documents failed"));
            }
            whole.push(piped.wall.as_secs_f64() * 1000.0);
            let log = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            if let Some(kib) = log
                .lines()
                .find_map(|line| line.trim().strip_prefix("Maximum resident set size (kbytes):"))
                .and_then(|kib| kib.trim().parse::<f64>().ok())
            {
                whole_rss = whole_rss.max(kib);
            }
        }
        let mut sqlite_runs = Vec::new();
        for _ in 0..scale.rounds {
            let (wall, stdout) = sqlite::cli_piped(&opts.sqlite3, &sqlite_path, format!(".mode json\n{}\n", lookup.sql()).into_bytes())?;
            if util::count(&stdout, br#""_id":"#) != 1 {
                return Err("sqlite3 lookup returned no row".into());
            }
            sqlite_runs.push(wall * 1000.0);
        }
        let row = json!({
            "documents": size,
            "wal_bytes": place.wal_len(),
            "warm_open_ms": field(&warm, "/open_ms"),
            "replay_ms": field(&warm, "/report/replay_ms"),
            "verify_ms": field(&warm, "/report/verify_ms"),
            "rebuild_ms": field(&warm, "/report/rebuild_ms"),
            "cold_open_ms": field(&cold, "/open_ms"),
            "cold_replay_ms": field(&cold, "/report/replay_ms"),
            "cold_verify_ms": field(&cold, "/report/verify_ms"),
            "cold_rebuild_ms": field(&cold, "/report/rebuild_ms"),
            "peak_rss_kib": peak_kib,
            "rss_anon_kib_after_boot": field(&warm, "/memory_kib/RssAnon"),
            "rss_anon_kib_max_sampled": field(&warm, "/memory_kib/RssAnon_max_sampled"),
            "rss_file_kib_max_sampled": field(&warm, "/memory_kib/RssFile_max_sampled"),
            "rss_file_kib_after_boot": field(&warm, "/memory_kib/RssFile"),
            "aerodb_query_wall_ms": median(&whole),
            "aerodb_query_max_rss_kib": whole_rss,
            "sqlite_cli_lookup_ms": median(&sqlite_runs),
            "warm_runs": warm, "cold_runs": cold,
        });
        text.push_str(&format!(
            "| {size} | {:.0} | {:.0} | {:.0} / {:.0} / {:.0} | {:.0} | {:.0} (anon ≤ {:.0}, file ≤ {:.0}) | {:.0} / {} | {:.1} |\n",
            place.wal_len() as f64 / 1048576.0,
            row["warm_open_ms"].as_f64().unwrap_or(f64::NAN),
            row["replay_ms"].as_f64().unwrap_or(f64::NAN),
            row["verify_ms"].as_f64().unwrap_or(f64::NAN),
            row["rebuild_ms"].as_f64().unwrap_or(f64::NAN),
            row["cold_open_ms"].as_f64().unwrap_or(f64::NAN),
            peak_kib / 1024.0,
            row["rss_anon_kib_max_sampled"].as_f64().unwrap_or(f64::NAN) / 1024.0,
            row["rss_file_kib_max_sampled"].as_f64().unwrap_or(f64::NAN) / 1024.0,
            median(&whole),
            if whole_rss > 0.0 { format!("{:.0}", whole_rss / 1024.0) } else { "n/a".into() },
            median(&sqlite_runs),
        ));
        rows.push(row);
    }
    // Growth per doubling between every pair of sizes, from the first.
    let mut growth = Vec::new();
    if let Some(first) = rows.first() {
        for row in rows.iter().skip(1) {
            let (n0, n1) = (first["documents"].as_f64().unwrap_or(1.0), row["documents"].as_f64().unwrap_or(1.0));
            let doublings = (n1 / n0).log2();
            let per = |key: &str| (row[key].as_f64().unwrap_or(f64::NAN) / first[key].as_f64().unwrap_or(f64::NAN)).powf(1.0 / doublings);
            growth.push(json!({"from": n0 as u64, "to": n1 as u64, "warm": per("warm_open_ms"), "cold": per("cold_open_ms")}));
        }
    }
    if !growth.is_empty() {
        text.push_str("\nGrowth of boot time per doubling of the document count ((t₂/t₁)^(1/log₂(n₂/n₁))):\n\n| from → to | warm | cold |\n|---|---:|---:|\n");
        for entry in &growth {
            text.push_str(&format!(
                "| {} → {} | {} | {} |\n",
                entry["from"],
                entry["to"],
                fmt_ratio(entry["warm"].as_f64().unwrap_or(f64::NAN)),
                fmt_ratio(entry["cold"].as_f64().unwrap_or(f64::NAN))
            ));
        }
    }
    text.push('\n');
    results["boot"] = json!({"rows": rows, "growth_per_doubling": growth});
    Ok(text)
}

/// The issue's targets, each with its figure and met/missed.
fn targets(results: &Value) -> String {
    let mut lines = Vec::new();
    let mut add = |target: &str, figure: String, met: Option<bool>| {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        lines.push(format!("| {target} | {figure} | {verdict} |"));
    };
    let num = |pointer: &str| results.pointer(pointer).and_then(Value::as_f64);
    if let (Some(api), Some(rusq), Some(start), Some(cli), Some(raw)) = (
        num("/inserts/aerodb_api/median_per_s"),
        num("/inserts/rusqlite/median_per_s"),
        num("/inserts/aerodb_start/median_per_s"),
        num("/inserts/sqlite_cli/median_per_s"),
        num("/inserts/raw/median_per_s"),
    ) {
        add(
            "durable inserts/s, API ≥ 1.0 × rusqlite",
            format!("{} vs {} = {}", fmt_rate(api), fmt_rate(rusq), fmt_ratio(api / rusq)),
            Some(api >= rusq),
        );
        add(
            "durable inserts/s, `aerodb start` ≥ 1.0 × sqlite3 CLI",
            format!("{} vs {} = {}", fmt_rate(start), fmt_rate(cli), fmt_ratio(start / cli)),
            Some(start >= cli),
        );
        add(
            "durable inserts/s, API ≥ 0.9 × raw fdatasync",
            format!("{} vs {} = {}", fmt_rate(api), fmt_rate(raw), fmt_ratio(api / raw)),
            Some(api >= 0.9 * raw),
        );
        add(
            "durable inserts/s, `aerodb start` ≥ 0.9 × raw fdatasync",
            format!("{} vs {} = {}", fmt_rate(start), fmt_rate(raw), fmt_ratio(start / raw)),
            Some(start >= 0.9 * raw),
        );
    }
    for kind in Kind::ALL {
        let key = kind.key();
        if let (Some(api), Some(rusq), Some(start), Some(cli)) = (
            num(&format!("/queries/{key}/api_per_s")),
            num(&format!("/queries/{key}/rusqlite_per_s")),
            num(&format!("/queries/{key}/start_per_s")),
            num(&format!("/queries/{key}/cli_per_s")),
        ) {
            add(
                &format!("{}: API ≥ 1.0 × rusqlite", kind.label()),
                format!("{} vs {} q/s = {}", fmt_rate(api), fmt_rate(rusq), fmt_ratio(api / rusq)),
                Some(api >= rusq),
            );
            add(
                &format!("{}: `aerodb start` ≥ 1.0 × sqlite3 CLI", kind.label()),
                format!("{} vs {} q/s = {}", fmt_rate(start), fmt_rate(cli), fmt_ratio(start / cli)),
                Some(start >= cli),
            );
        }
    }
    if let Some(rows) = results.pointer("/boot/rows").and_then(Value::as_array) {
        if let Some(largest) = rows.iter().max_by_key(|row| row["documents"].as_u64().unwrap_or(0)) {
            let n = largest["documents"].as_u64().unwrap_or(0);
            let (warm, cold) = (largest["warm_open_ms"].as_f64().unwrap_or(f64::NAN), largest["cold_open_ms"].as_f64().unwrap_or(f64::NAN));
            let at_million = n >= 1_000_000;
            add(
                &format!("boot of 1,000,000 documents ≤ 3 s on 2 cores{}", if at_million { "" } else { " (largest measured shown)" }),
                format!("{n} documents: warm {:.2} s, cold {:.2} s", warm / 1000.0, cold / 1000.0),
                if at_million { Some(warm <= 3000.0 && cold <= 3000.0) } else { None },
            );
            let peak = largest["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) * 1024.0;
            add(
                "peak RSS during the 1,000,000-document boot ≤ 512 MiB",
                format!("{n} documents: {:.0} MiB", peak / 1048576.0),
                if at_million { Some(peak <= 536870912.0) } else { None },
            );
        }
        if let Some(growth) = results.pointer("/boot/growth_per_doubling").and_then(Value::as_array) {
            for entry in growth {
                let (warm, cold) = (entry["warm"].as_f64().unwrap_or(f64::NAN), entry["cold"].as_f64().unwrap_or(f64::NAN));
                add(
                    &format!("boot growth per doubling ≤ 2.2×, {} → {}", entry["from"], entry["to"]),
                    format!("warm {}, cold {}", fmt_ratio(warm), fmt_ratio(cold)),
                    Some(warm <= 2.2 && cold <= 2.2),
                );
            }
        }
    }
    if let Some(bytes) = num("/wal_bytes/aerodb_per_insert") {
        add("WAL bytes per ~100-byte insert ≤ 2,048", format!("{bytes:.0}"), Some(bytes <= 2048.0));
    }
    if lines.is_empty() {
        return String::new();
    }
    format!("## Targets\n\n| target | figure | verdict |\n|---|---|---|\n{}\n\n", lines.join("\n"))
}
