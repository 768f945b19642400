//! Helpers shared by the engine tests: a fresh database directory with the
//! install guide's schema.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aerodb_engine::{Database, Mode};
use serde_json::Value;

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
