//! `schema add` and a boot share the schema folder's lock: the second
//! writer of the hashes file waits for the first, so neither loses the
//! other's hash.

mod common;

use std::time::{Duration, Instant};

use aerodb_engine::catalog;
use aerodb_engine::vfs::{Access, FileSystem, OsFs};
use common::*;

const NOTE_SCHEMA: &str = r#"{"schema_id": "note", "schema_version": "v1",
 "fields": {"_id": {"type": "int"}, "text": {"type": "string"}}, "indexes": []}"#;

#[test]
fn schema_add_waits_for_the_schema_folder_lock_and_records_its_hash() {
    let test = TestDb::with_user_schema();
    let paths = aerodb_engine::config::load(&test.config).unwrap().paths;
    // Another writer (as a boot recording a hash would) takes the lock,
    // reads the hashes file, and 300 ms later writes it back with an entry
    // of its own. Without the lock, `schema add` would write its hash in
    // between and that write would be lost.
    let holder = OsFs.open(&paths.schemas, Access::Read).unwrap();
    assert!(holder.try_lock(true).unwrap());
    let hashes_path = paths.schema_hashes.clone();
    let other = std::thread::spawn(move || {
        let text = std::fs::read_to_string(&hashes_path).unwrap();
        let mut hashes: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        hashes.insert("other_v1.json".into(), serde_json::Value::String("0".repeat(64)));
        std::fs::write(&hashes_path, serde_json::to_string_pretty(&hashes).unwrap()).unwrap();
        drop(holder);
    });
    let started = Instant::now();
    let (schema, installed) = catalog::install_bytes(&paths, NOTE_SCHEMA.as_bytes(), std::path::Path::new("note.json")).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250), "schema add did not wait for the lock");
    assert!(installed && schema.schema_id == "note");
    other.join().unwrap();
    let hashes = std::fs::read_to_string(&paths.schema_hashes).unwrap();
    assert!(hashes.contains("note_v1.json") && hashes.contains("other_v1.json"), "a hash was lost: {hashes}");
}

#[test]
fn a_boot_waits_for_a_schema_add_holding_the_lock() {
    let test = TestDb::with_user_schema();
    let paths = aerodb_engine::config::load(&test.config).unwrap().paths;
    let holder = OsFs.open(&paths.schemas, Access::Read).unwrap();
    assert!(holder.try_lock(true).unwrap());
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(holder);
    });
    let started = Instant::now();
    let db = test.open();
    assert!(started.elapsed() >= Duration::from_millis(250), "the boot did not wait for the lock");
    release.join().unwrap();
    drop(db);
}

#[test]
fn a_schema_folder_lock_held_too_long_is_storage_locked() {
    let test = TestDb::with_user_schema();
    let paths = aerodb_engine::config::load(&test.config).unwrap().paths;
    let holder = OsFs.open(&paths.schemas, Access::Read).unwrap();
    assert!(holder.try_lock(true).unwrap());
    let started = Instant::now();
    let error = catalog::install_bytes(&paths, NOTE_SCHEMA.as_bytes(), std::path::Path::new("note.json")).unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(5), "gave up after {:?}", started.elapsed());
    assert_eq!(error.code, aerodb_engine::ErrorCode::StorageLocked);
    assert_eq!(error.detail_str("file"), Some(paths.schemas.display().to_string().as_str()));
    drop(holder);
    // Nothing was written: the schema file is not there.
    assert!(!paths.schemas.join("note_v1.json").exists());
}
