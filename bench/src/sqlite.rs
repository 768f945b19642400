//! SQLite's side: WAL mode, synchronous=FULL, one transaction per insert,
//! the same documents and the same indexes; through rusqlite (bundled
//! SQLite) and through the sqlite3 CLI.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rusqlite::{params, Connection};

use crate::util::{self, err, Res};
use crate::workload::{self, Param, SQLITE_SCHEMA};

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Opens a connection in WAL mode with synchronous=FULL.
pub fn connect(path: &Path) -> Res<Connection> {
    let conn = Connection::open(path).map_err(err("sqlite open"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0)).map_err(err("journal_mode"))?;
    if mode != "wal" {
        return Err(format!("journal_mode is {mode}, not wal"));
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(err("synchronous"))?;
    Ok(conn)
}

/// A new database file with the table and its indexes.
pub fn fresh(path: &Path) -> Res<Connection> {
    remove_db(path);
    let conn = connect(path)?;
    conn.execute_batch(SQLITE_SCHEMA).map_err(err("create schema"))?;
    Ok(conn)
}

pub fn version() -> String {
    rusqlite::version().to_string()
}

/// Durable inserts through rusqlite with a prepared statement, autocommit
/// (one transaction per insert). Returns inserts/s.
pub fn rusqlite_inserts(path: &Path, warmup: u64, count: u64) -> Res<f64> {
    let conn = fresh(path)?;
    let docs: Vec<_> = (0..warmup + count).map(workload::doc).collect();
    let mut statement = conn.prepare("INSERT INTO user(_id, name, age) VALUES(?1, ?2, ?3)").map_err(err("prepare"))?;
    for doc in &docs[..warmup as usize] {
        statement.execute(params![doc.id, doc.name, doc.age]).map_err(err("insert"))?;
    }
    let started = Instant::now();
    for doc in &docs[warmup as usize..] {
        statement.execute(params![doc.id, doc.name, doc.age]).map_err(err("insert"))?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(statement);
    drop(conn);
    remove_db(path);
    Ok(rate)
}

/// Runs the sqlite3 CLI on `path` with `script` piped in.
pub fn cli_piped(sqlite3: &Path, path: &Path, script: Vec<u8>) -> Res<(f64, Vec<u8>)> {
    let mut command = Command::new(sqlite3);
    command.arg("-bail").arg(path);
    let stderr_file = std::path::PathBuf::from(format!("{}.stderr", path.display()));
    let piped = util::run_piped(command, script, &stderr_file)?;
    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_file);
    if !piped.status.success() || !stderr.trim().is_empty() {
        return Err(format!("sqlite3: {}: {}", piped.status, stderr.trim()));
    }
    Ok((piped.wall.as_secs_f64(), piped.stdout))
}

/// Durable inserts through the sqlite3 CLI: the table is created first
/// (untimed, by the CLI itself); then one process gets the pragmas and one
/// autocommitted INSERT per line, timed from spawn to exit.
pub fn cli_inserts(sqlite3: &Path, path: &Path, count: u64) -> Res<f64> {
    remove_db(path);
    cli_piped(sqlite3, path, format!("PRAGMA journal_mode=WAL;\n{SQLITE_SCHEMA}").into_bytes())?;
    let mut script = String::from("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n");
    for i in 0..count {
        script.push_str(&workload::doc(i).insert_sql());
        script.push('\n');
    }
    let (wall, _) = cli_piped(sqlite3, path, script.into_bytes())?;
    let conn = Connection::open(path).map_err(err("sqlite open"))?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM user", [], |row| row.get(0)).map_err(err("count"))?;
    drop(conn);
    remove_db(path);
    if rows != count as i64 {
        return Err(format!("sqlite3 CLI inserted {rows} rows, expected {count}"));
    }
    Ok(count as f64 / wall)
}

/// Bytes SQLite's WAL grows by per durable insert, with automatic
/// checkpoints off so that the log is never reset during the run.
pub fn wal_bytes_per_insert(path: &Path, warmup: u64, count: u64) -> Res<f64> {
    let conn = fresh(path)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(err("wal_autocheckpoint"))?;
    let mut statement = conn.prepare("INSERT INTO user(_id, name, age) VALUES(?1, ?2, ?3)").map_err(err("prepare"))?;
    for i in 0..warmup {
        let doc = workload::doc(i);
        statement.execute(params![doc.id, doc.name, doc.age]).map_err(err("insert"))?;
    }
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    let before = std::fs::metadata(&wal).map(|meta| meta.len()).unwrap_or(0);
    for i in warmup..warmup + count {
        let doc = workload::doc(i);
        statement.execute(params![doc.id, doc.name, doc.age]).map_err(err("insert"))?;
    }
    let after = std::fs::metadata(&wal).map(|meta| meta.len()).unwrap_or(0);
    drop(statement);
    drop(conn);
    remove_db(path);
    Ok((after - before) as f64 / count as f64)
}

/// A data set of `documents` rows (loading is not measured: one
/// transaction), left checkpointed in WAL mode.
pub fn load(path: &Path, documents: u64) -> Res<()> {
    let mut conn = fresh(path)?;
    let tx = conn.transaction().map_err(err("begin"))?;
    {
        let mut statement = tx.prepare("INSERT INTO user(_id, name, age) VALUES(?1, ?2, ?3)").map_err(err("prepare"))?;
        for i in 0..documents {
            let doc = workload::doc(i);
            statement.execute(params![doc.id, doc.name, doc.age]).map_err(err("insert"))?;
        }
    }
    tx.commit().map_err(err("commit"))?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(err("checkpoint"))?;
    Ok(())
}

/// Prepared statements for the three query kinds.
pub struct Queries<'c> {
    statements: Vec<rusqlite::CachedStatement<'c>>,
}

impl<'c> Queries<'c> {
    pub fn new(conn: &'c Connection) -> Res<Queries<'c>> {
        let statements =
            workload::Kind::ALL.iter().map(|kind| conn.prepare_cached(kind.sql()).map_err(err("prepare"))).collect::<Res<Vec<_>>>()?;
        Ok(Queries { statements })
    }

    /// Runs one query and materialises its rows (as the API returns documents).
    pub fn run(&mut self, param: &Param) -> Res<Vec<(String, String, i64)>> {
        let map = |row: &rusqlite::Row<'_>| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?));
        let rows = match param {
            Param::Id(id) => self.statements[0].query_map(params![id], map),
            Param::Eq(name) => self.statements[1].query_map(params![name], map),
            Param::Range(low, high) => self.statements[2].query_map(params![low, high], map),
        }
        .map_err(err("query"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err("row"))
    }
}
