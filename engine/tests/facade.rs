//! The `Database` facade end to end: writes, queries, restarts.

mod common;

use aerodb_engine::{Database, ErrorCode};
use common::*;
use serde_json::json;

#[test]
fn install_guide_flow_through_the_library() {
    let test = TestDb::with_user_schema();
    let mut db = test.open();
    assert_eq!(ok(&mut db, &user("1", "alice", 30)), json!([]));
    let found = ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":30},"limit":10}"#);
    assert_eq!(found.to_string(), r#"[{"_id":"1","name":"alice","age":30}]"#);
    db.shutdown().unwrap();
    assert!(test.path("clean_shutdown").exists());
    let mut db = test.open();
    assert!(db.recovery_report().clean_shutdown);
    assert!(!test.path("clean_shutdown").exists());
    let found = ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":"1"},"limit":1}"#);
    assert_eq!(found.to_string(), r#"[{"_id":"1","name":"alice","age":30}]"#);
}

#[test]
fn writes_survive_a_crash_without_shutdown() {
    let test = TestDb::with_user_schema();
    let mut db = test.open();
    for index in 0..500 {
        ok(&mut db, &user(&format!("u{index:04}"), &format!("name{}", index % 7), index % 50));
    }
    ok(&mut db, r#"{"op":"update","schema_id":"user","schema_version":"v1","document":{"_id":"u0003","name":"changed","age":99}}"#);
    ok(&mut db, r#"{"op":"delete","schema_id":"user","schema_version":"v1","_id":"u0004"}"#);
    drop(db); // no shutdown: a crash as far as the files are concerned
    let mut db = test.open();
    assert!(!db.recovery_report().clean_shutdown);
    assert_eq!(db.documents(), 499);
    let found = ok(
        &mut db,
        r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":{"$gte":49}},"limit":100,"sort":{"field":"age","order":"desc"}}"#,
    );
    let ids: Vec<&str> = found.as_array().unwrap().iter().map(|doc| doc["_id"].as_str().unwrap()).collect();
    assert_eq!(ids[0], "u0003");
    assert_eq!(ids.len(), 11);
    let gone = ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":"u0004"},"limit":1}"#);
    assert_eq!(gone, json!([]));
}

#[test]
fn request_errors_have_their_codes() {
    let test = TestDb::with_user_schema();
    let mut db = test.open();
    ok(&mut db, &user("1", "alice", 30));
    let cases = [
        (user("1", "again", 1), ErrorCode::WriteDuplicateId),
        (
            r#"{"op":"update","schema_id":"user","schema_version":"v1","document":{"_id":"9","name":"x","age":1}}"#.into(),
            ErrorCode::WriteNotFound,
        ),
        (
            r#"{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"2","name":"x","age":30.0}}"#.into(),
            ErrorCode::SchemaValidationFailed,
        ),
        (r#"{"op":"insert","document":{}}"#.into(), ErrorCode::SchemaRequired),
        (r#"{"op":"insert","schema_id":"nope","schema_version":"v1","document":{}}"#.into(), ErrorCode::UnknownSchema),
        (r#"{"op":"insert","schema_id":"user","schema_version":"v9","document":{}}"#.into(), ErrorCode::UnknownSchemaVersion),
        (r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":30}}"#.into(), ErrorCode::QueryLimitRequired),
        (r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{},"limit":5}"#.into(), ErrorCode::QueryUnbounded),
        (r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":"x"},"limit":5}"#.into(), ErrorCode::QueryInvalid),
        (
            r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"age":30},"limit":5,"extra":1}"#.into(),
            ErrorCode::QueryInvalid,
        ),
        (r#"{"op":"frobnicate"}"#.into(), ErrorCode::QueryInvalid),
    ];
    for (request, expected) in cases {
        assert_eq!(code(&mut db, &request), expected.as_str(), "{request}");
    }
    assert_eq!(db.documents(), 1);
}

#[test]
fn second_open_is_locked_out() {
    let test = TestDb::with_user_schema();
    let db = test.open();
    let error = Database::open(&test.config).err().unwrap();
    assert_eq!(error.code, ErrorCode::StorageLocked);
    drop(db);
    test.open();
}

/// Pages are checked in full once (docs/BOOT.md, "Pages checked once"):
/// after the boot, a read checks the page header only. A header damaged
/// behind the running engine is refused at the next read; damage to the
/// body is found by the next boot.
#[test]
fn pages_are_verified_in_full_at_boot_and_by_header_after() {
    let test = TestDb::with_user_schema();
    let mut db = test.open();
    ok(&mut db, &user("1", "alice", 30));
    db.shutdown().unwrap();
    let find = r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":"1"},"limit":1}"#;
    let segment = test.path("data/segment-000000.seg");
    let write_at = |offset: u64, bytes: &[u8]| {
        use std::os::unix::fs::FileExt;
        std::fs::OpenOptions::new().write(true).open(&segment).unwrap().write_all_at(bytes, offset).unwrap();
    };
    let original = std::fs::read(&segment).unwrap();

    // A byte of the document changed while the engine runs: reads trust the
    // boot's check (the answer shows the change), and the next boot refuses
    // (after a clean shutdown; after a crash replay would rewrite the page).
    let mut db = test.open();
    let at = original[..4096].windows(5).position(|window| window == b"alice").expect("the name is stored on page 0") as u64;
    write_at(at, b"A");
    let answer = run(&mut db, find);
    assert_eq!(answer["data"][0]["name"], "Alice", "{answer}");
    db.shutdown().unwrap();
    let refused = Database::open(&test.config).err().expect("the boot refuses the damaged page");
    assert_eq!(refused.code, ErrorCode::DataCorruption);

    // The page's own number changed while the engine runs: the next read refuses it.
    std::fs::write(&segment, &original).unwrap();
    let mut db = test.open();
    write_at(16, &7u64.to_le_bytes());
    assert_eq!(code(&mut db, find), "AERO_DATA_CORRUPTION");
}
