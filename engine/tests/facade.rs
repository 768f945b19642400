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
