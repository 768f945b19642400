//! Checks of the small files: MANIFEST, the frozen config, the schema files
//! against their recorded hashes, and `metadata/state.json`.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use aerodb_format::config::Config;
use aerodb_format::manifest::Manifest;
use aerodb_format::schema::Schema;

use crate::database::{
    Database, CLEAN_SHUTDOWN_FILE, FROZEN_CONFIG_FILE, LOCK_FILE, MANIFEST_FILE, SCHEMAS_DIR, SCHEMA_HASHES_FILE, STATE_FILE, WAL_FILE,
};
use crate::files::{read_small, SmallFileError};
use crate::verify::report::{Location, Report};

/// Schemas by `(schema_id, schema_version)`.
pub type Schemas = BTreeMap<(String, String), Schema>;

/// MANIFEST decodes. Returns it when it does.
/// `LOCK` and the clean-shutdown marker are what the boot can open and
/// remove: a folder (or, for `LOCK`, anything but a file) in their place
/// makes it fail.
pub fn check_marker_files(database: &Database, report: &mut Report) {
    match std::fs::metadata(database.path(LOCK_FILE)) {
        Ok(metadata) if !metadata.is_file() => report.problem(
            Location::file(LOCK_FILE),
            "LOCK is not a regular file: the engine cannot open it to lock the database (AERO_STORAGE_IO_ERROR)",
        ),
        Ok(_) => {}
        // A missing LOCK is made again by the boot; a link to nothing cannot be.
        Err(_) if std::fs::symlink_metadata(database.path(LOCK_FILE)).is_ok() => report.problem(
            Location::file(LOCK_FILE),
            "LOCK is a symbolic link to nothing: the engine cannot open or make it (AERO_STORAGE_IO_ERROR)",
        ),
        Err(_) => {}
    }
    if std::fs::metadata(database.path(CLEAN_SHUTDOWN_FILE)).is_ok_and(|metadata| metadata.is_dir()) {
        report.problem(
            Location::file(CLEAN_SHUTDOWN_FILE),
            "the clean_shutdown marker is a folder: the engine cannot remove it when it starts (AERO_STORAGE_IO_ERROR)",
        );
    }
}

pub fn check_manifest(database: &Database, report: &mut Report) -> Option<Manifest> {
    report.count("manifest", 1);
    let bytes = match read_small(&database.path(MANIFEST_FILE)) {
        Ok(bytes) => bytes,
        Err(SmallFileError::Missing) => {
            report.problem(Location::file(MANIFEST_FILE), "MANIFEST is missing (not an initialised data directory)");
            return None;
        }
        Err(error) => {
            report.problem(Location::file(MANIFEST_FILE), format!("MANIFEST {error}"));
            return None;
        }
    };
    match Manifest::decode(&bytes) {
        Ok(manifest) => Some(manifest),
        Err(error) => {
            report.problem(Location::at(MANIFEST_FILE, error.offset as u64), format!("MANIFEST does not decode: {error}"));
            None
        }
    }
}

/// `metadata/config.json` parses and holds the config file's values.
pub fn check_frozen_config(database: &Database, report: &mut Report) {
    let location = Location::file(FROZEN_CONFIG_FILE);
    let bytes = match read_small(&database.path(FROZEN_CONFIG_FILE)) {
        Ok(bytes) => bytes,
        Err(error) => {
            report.problem(location, format!("frozen config: {error}"));
            return;
        }
    };
    let frozen = match Config::parse_frozen(&bytes) {
        Ok(frozen) => frozen,
        Err(error) => {
            report.problem(location, format!("frozen config does not parse: {}", error.message));
            return;
        }
    };
    let current = &database.config;
    // data_dir is not frozen (the folder a database lives in may change).
    let differences = [
        ("wal_sync_mode", frozen.wal_sync_mode.clone(), current.wal_sync_mode.clone()),
        ("max_wal_size_bytes", frozen.max_wal_size_bytes.to_string(), current.max_wal_size_bytes.to_string()),
        ("max_memory_bytes", frozen.max_memory_bytes.to_string(), current.max_memory_bytes.to_string()),
    ];
    for (field, old, new) in differences {
        if old != new {
            report.problem(
                location.clone(),
                format!(
                    "config field {field} differs from its frozen value: frozen {old}, config file {new} \
                     (a start fails with AERO_CONFIG_IMMUTABLE)"
                ),
            );
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reads `metadata/schema_hashes.json`: `None` when it is missing.
fn read_hashes(database: &Database, report: &mut Report) -> Option<BTreeMap<String, String>> {
    let location = Location::file(SCHEMA_HASHES_FILE);
    let bytes = match read_small(&database.path(SCHEMA_HASHES_FILE)) {
        Ok(bytes) => bytes,
        Err(SmallFileError::Missing) => return None,
        Err(error) => {
            report.problem(location, format!("schema hashes: {error}"));
            return Some(BTreeMap::new());
        }
    };
    // The strict parser the engine uses: a duplicate key is refused, not
    // resolved to its last value.
    let Ok(Value::Object(object)) = aerodb_format::json::parse_file(&bytes) else {
        report.problem(location, "schema hashes file is not a JSON object (or repeats a key) (AERO_METADATA_CORRUPTION)");
        return Some(BTreeMap::new());
    };
    let mut hashes = BTreeMap::new();
    for (name, hash) in object {
        match hash {
            Value::String(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                hashes.insert(name, hash);
            }
            other => report.problem(location.clone(), format!("entry {name:?} is not a lowercase SHA-256 hex string: {other}")),
        }
    }
    Some(hashes)
}

/// Every schema file parses, is named `<schema_id>_<schema_version>.json`
/// and matches its recorded hash; every recorded hash has its file.
pub fn check_schemas(database: &Database, report: &mut Report) -> Schemas {
    let mut schemas = Schemas::new();
    let hashes = read_hashes(database, report);
    let names: Vec<String> = match std::fs::read_dir(database.path(SCHEMAS_DIR)) {
        Ok(listing) => {
            let mut names: Vec<String> = Vec::new();
            for raw in listing.filter_map(|entry| entry.ok()).map(|entry| entry.file_name()) {
                match raw.into_string() {
                    Ok(name) => names.push(name),
                    Err(raw) if raw.as_encoded_bytes().first() == Some(&b'.') => {}
                    Err(raw) => report.problem(
                        Location::file(&format!("{SCHEMAS_DIR}/{}", raw.to_string_lossy())),
                        "schema file name is not UTF-8, so it is not a schema file name (AERO_SCHEMA_INVALID)",
                    ),
                }
            }
            names.sort();
            names
        }
        Err(error) => {
            report.problem(Location::file(SCHEMAS_DIR), format!("schema folder cannot be read: {error}"));
            Vec::new()
        }
    };
    // Hidden files (a leftover temporary file of an atomic write) are
    // ignored, as the engine ignores them.
    let names: Vec<String> = names.into_iter().filter(|name| !name.starts_with('.')).collect();
    if hashes.is_none() && !names.is_empty() {
        report.problem(Location::file(SCHEMA_HASHES_FILE), "schema hashes file is missing while schema files exist");
    }
    let hashes = hashes.unwrap_or_default();
    for name in &names {
        let relative = format!("{SCHEMAS_DIR}/{name}");
        let location = Location::file(&relative);
        if !name.ends_with(".json") {
            report.problem(location, "not a .json schema file: the engine refuses a schema folder holding it (AERO_SCHEMA_INVALID)");
            continue;
        }
        report.count("schema_files", 1);
        let bytes = match read_small(&database.path(&relative)) {
            Ok(bytes) => bytes,
            Err(error) => {
                report.problem(location, format!("schema file {error}"));
                continue;
            }
        };
        let hash = sha256_hex(&bytes);
        match hashes.get(name) {
            // A schema file dropped into the folder: the next boot records its hash.
            None => report.note(
                location.clone(),
                format!("no hash is recorded for this schema file in {SCHEMA_HASHES_FILE} yet; the next boot records it"),
            ),
            Some(recorded) if *recorded != hash => report.problem(
                location.clone(),
                format!("content hash {hash} differs from the recorded {recorded}: the file was changed (AERO_SCHEMA_IMMUTABLE)"),
            ),
            Some(_) => {}
        }
        let schema = match Schema::parse(&bytes) {
            Ok(schema) => schema,
            Err(error) => {
                report.problem(location, format!("schema file does not parse: {error} (AERO_SCHEMA_INVALID)"));
                continue;
            }
        };
        let expected_name = format!("{}_{}.json", schema.schema_id, schema.schema_version);
        if *name != expected_name {
            report.problem(location.clone(), format!("file name should be {expected_name} (its schema_id and schema_version)"));
        }
        let key = (schema.schema_id.clone(), schema.schema_version.clone());
        if schemas.contains_key(&key) {
            report.problem(location, format!("a second file defines schema {}/{}", key.0, key.1));
            continue;
        }
        schemas.insert(key, schema);
    }
    for name in hashes.keys() {
        if !names.contains(name) {
            report
                .problem(Location::file(SCHEMA_HASHES_FILE), format!("a hash is recorded for {name}, but {SCHEMAS_DIR}/{name} is missing"));
        }
    }
    schemas
}

/// What `metadata/state.json` is compared with.
pub struct StateExpectations {
    pub last_seq: u64,
    pub wal_bytes: u64,
    pub documents: u64,
    /// Size of the document space: highest page the WAL wrote, plus one.
    pub document_pages: u64,
}

/// `metadata/state.json` agrees with the WAL and the documents (after a
/// clean shutdown); without the marker, a state file that decodes must not
/// record more log than the valid records hold (as the engine reads it).
pub fn check_state(database: &Database, clean: bool, expected: &StateExpectations, report: &mut Report) {
    let location = Location::file(STATE_FILE);
    let bytes = match read_small(&database.path(STATE_FILE)) {
        Ok(bytes) => bytes,
        Err(SmallFileError::Missing) if !clean => return,
        // After a crash the boot does not read the state file (BOOT.md), so a
        // damaged one is worth a warning, not a problem: the engine serves.
        Err(error) if !clean => {
            report.warning(
                location,
                format!("state file cannot be read ({error}); unused after a crash, rewritten at the next clean shutdown"),
            );
            return;
        }
        Err(error) => {
            report.problem(location, format!("state file (needed after a clean shutdown): {error}"));
            return;
        }
    };
    if !clean {
        // After a crash the engine reads the state file only for how far the
        // log reached at the last clean shutdown, and only when it decodes
        // strictly; records missing before that point are corruption.
        match aerodb_format::state::State::decode(&bytes) {
            Ok(state) if state.wal_bytes > expected.wal_bytes => report.problem(
                location,
                format!(
                    "wal_bytes {} (the log's length at the last clean shutdown) is past the end of the valid records of {WAL_FILE}, \
                     {} bytes: acknowledged records are damaged or missing (AERO_WAL_CORRUPTION)",
                    state.wal_bytes, expected.wal_bytes
                ),
            ),
            Ok(_) => {}
            Err(reason) => report.warning(
                location,
                format!("state file does not decode ({reason}); unused after a crash, rewritten at the next clean shutdown"),
            ),
        }
        return;
    }
    let Ok(Value::Object(state)) = aerodb_format::json::parse_file(&bytes) else {
        report.problem(location, "state file is not a JSON object (or repeats a key)");
        return;
    };
    for key in state.keys() {
        if !aerodb_format::state::STATE_FIELDS.contains(&key.as_str()) {
            report.problem(location.clone(), format!("unknown field {key:?}"));
        }
    }
    let field = |name: &str, report: &mut Report| -> Option<u64> {
        match state.get(name) {
            Some(value) => match value.as_u64() {
                Some(number) => Some(number),
                None => {
                    report.problem(location.clone(), format!("{name} is not a non-negative integer: {value}"));
                    None
                }
            },
            None => {
                report.problem(location.clone(), format!("{name} is missing"));
                None
            }
        }
    };
    let last_seq = field("last_seq", report);
    if let Some(last_seq) = last_seq.filter(|&seq| seq != expected.last_seq) {
        report.problem(
            location.clone(),
            format!("last_seq {last_seq} does not match the WAL's last sequence number {} (clean shutdown)", expected.last_seq),
        );
    }
    if let Some(wal_bytes) = field("wal_bytes", report).filter(|&bytes| bytes != expected.wal_bytes) {
        report.problem(
            location.clone(),
            format!(
                "wal_bytes {wal_bytes} does not match the end of the records of {WAL_FILE}, {} bytes (clean shutdown)",
                expected.wal_bytes
            ),
        );
    }
    if let Some(documents) = field("documents", report).filter(|&count| count != expected.documents) {
        report.problem(location.clone(), format!("documents {documents} does not match the {} live documents found", expected.documents));
    }
    if let Some(pages) = field("document_pages", report).filter(|&pages| pages != expected.document_pages) {
        report.problem(
            location,
            format!(
                "document_pages {pages} does not match the size of the document space, {} pages (the highest page the WAL wrote, plus one)",
                expected.document_pages
            ),
        );
    }
}
