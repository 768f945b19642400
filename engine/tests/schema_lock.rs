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
    // Another writer holds the lock for 300 ms.
    let holder = OsFs.open(&paths.schemas, Access::Read).unwrap();
    assert!(holder.try_lock(true).unwrap());
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(holder);
    });
    let started = Instant::now();
    let (schema, installed) = catalog::install_bytes(&paths, NOTE_SCHEMA.as_bytes(), std::path::Path::new("note.json")).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250), "schema add did not wait for the lock");
    assert!(installed && schema.schema_id == "note");
    release.join().unwrap();
    // Both hashes are recorded: the user schema's (at the first boot) and this one.
    drop(test.open());
    let hashes = std::fs::read_to_string(&paths.schema_hashes).unwrap();
    assert!(hashes.contains("note_v1.json") && hashes.contains("user_v1.json"), "{hashes}");
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
