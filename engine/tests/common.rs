//! Helpers shared by the engine tests: a fresh database directory with the
//! install guide's schema.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use aerodb_engine::io::MemFile;
use aerodb_engine::{Database, Mode, OpenOptions};
use serde_json::{json, Value};

pub const USER_SCHEMA: &str = include_str!("../../tests/fixtures/user_v1.json");

pub struct TestDb {
    pub folder: tempfile::TempDir,
    pub config: PathBuf,
}

impl TestDb {
    /// A fresh, initialised database with the given schema files.
    pub fn new(schemas: &[(&str, &str)]) -> TestDb {
        let folder = tempfile::tempdir().unwrap();
        let config = folder.path().join("aerodb.json");
        std::fs::write(&config, r#"{"data_dir": "./data"}"#).unwrap();
        aerodb_engine::init(&config).unwrap();
        for (name, text) in schemas {
            std::fs::write(folder.path().join("data/metadata/schemas").join(name), text).unwrap();
        }
        TestDb { folder, config }
    }

    pub fn with_user_schema() -> TestDb {
        TestDb::new(&[("user_v1.json", USER_SCHEMA)])
    }

    pub fn data(&self) -> PathBuf {
        self.folder.path().join("data")
    }

    pub fn open(&self) -> Database {
        Database::open(&self.config).unwrap()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.data().join(relative)
    }
}

pub fn run(db: &mut Database, request: &str) -> Value {
    let request: Value = serde_json::from_str(request).unwrap();
    db.respond(&request, Mode::Query)
}

pub fn ok(db: &mut Database, request: &str) -> Value {
    let response = run(db, request);
    assert_eq!(response["status"], "ok", "{request} -> {response}");
    response["data"].clone()
}

pub fn code(db: &mut Database, request: &str) -> String {
    let response = run(db, request);
    assert_eq!(response["status"], "error", "{request} -> {response}");
    response["code"].as_str().unwrap().to_string()
}

pub fn user(id: &str, name: &str, age: i64) -> String {
    format!(r#"{{"op":"insert","schema_id":"user","schema_version":"v1","document":{{"_id":"{id}","name":"{name}","age":{age}}}}}"#)
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// The document model of the write workloads: `_id` → document.
pub type Model = BTreeMap<String, Value>;

/// One request of a workload and the model change it makes if acknowledged.
pub fn workload(seed: u64, length: usize) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..length)
        .map(|_| {
            let id = format!("u{}", rng.u8(0..24));
            // Names up to 250 bytes (the indexed-string cap is 256) vary the record sizes.
            let name = if rng.u8(0..6) == 0 { "y".repeat(rng.usize(100..250)) } else { format!("n{}", rng.u8(0..5)) };
            let document = json!({"_id": id, "name": name, "age": rng.i64(0..60)});
            match rng.u8(0..10) {
                0..=5 => json!({"op": "insert", "schema_id": "user", "schema_version": "v1", "document": document}),
                6..=7 => json!({"op": "update", "schema_id": "user", "schema_version": "v1", "document": document}),
                _ => json!({"op": "delete", "schema_id": "user", "schema_version": "v1", "_id": id}),
            }
        })
        .collect()
}

pub fn apply(model: &mut Model, request: &Value) {
    let id = match request["op"].as_str() {
        Some("delete") => request["_id"].as_str().unwrap().to_string(),
        _ => request["document"]["_id"].as_str().unwrap().to_string(),
    };
    match request["op"].as_str() {
        Some("delete") => {
            model.remove(&id);
        }
        _ => {
            model.insert(id, request["document"].clone());
        }
    }
}

/// The response the model expects for a write, if it is not acknowledged.
pub fn expected_rejection(model: &Model, request: &Value) -> Option<&'static str> {
    match request["op"].as_str() {
        Some("insert") if model.contains_key(request["document"]["_id"].as_str().unwrap()) => Some("AERO_WRITE_DUPLICATE_ID"),
        Some("update") if !model.contains_key(request["document"]["_id"].as_str().unwrap()) => Some("AERO_WRITE_NOT_FOUND"),
        _ => None,
    }
}

pub fn check_against(db: &mut Database, model: &Model, context: &str) {
    for index in 0..24 {
        let id = format!("u{index}");
        let found = ok(db, &format!(r#"{{"op":"query","schema_id":"user","schema_version":"v1","filter":{{"_id":"{id}"}},"limit":1}}"#));
        let expected = model.get(&id).map(|document| vec![document.clone()]).unwrap_or_default();
        assert_eq!(found, Value::Array(expected), "{context}: document {id}");
    }
    assert_eq!(db.documents(), model.len() as u64, "{context}");
    assert_eq!(db.check_indexes().unwrap(), 3 * model.len() as u64, "{context}");
}

/// Opens the test database with `file` as its WAL.
pub fn open_mem(test: &TestDb, file: &MemFile) -> Database {
    Database::open_with(&test.config, OpenOptions { wal_file: Some(Box::new(file.clone())), ..OpenOptions::default() }).unwrap()
}
