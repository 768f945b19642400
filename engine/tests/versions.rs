//! Schema versions: a collection is a schema_id; documents carry the
//! version they were written with; `_id` is unique across versions; an
//! update may move a document to another version; queries see only the
//! version they name.

mod common;

use common::*;
use serde_json::json;

const V2: &str = r#"{"schema_id": "user", "schema_version": "v2",
 "fields": {"_id": {"type": "string"}, "name": {"type": "string"}, "age": {"type": "int"},
            "email": {"type": "string", "required": false}},
 "indexes": ["name", "email"]}"#;

#[test]
fn versions_share_ids_but_not_queries() {
    let test = TestDb::new(&[("user_v1.json", USER_SCHEMA), ("user_v2.json", V2)]);
    let mut db = test.open();
    ok(&mut db, &user("a", "alice", 30));
    ok(&mut db, &user("b", "bob", 40));
    // The same _id under another version is a duplicate in the collection.
    let duplicate = r#"{"op":"insert","schema_id":"user","schema_version":"v2","document":{"_id":"a","name":"x","age":1}}"#;
    assert_eq!(code(&mut db, duplicate), "AERO_WRITE_DUPLICATE_ID");
    // An explicit per-document upgrade: update under v2.
    ok(&mut db, r#"{"op":"update","schema_id":"user","schema_version":"v2","document":{"_id":"a","name":"alice","age":31,"email":"a@x"}}"#);
    let v1 = ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"name":"alice"},"limit":5}"#);
    assert_eq!(v1, json!([]));
    let v2 = ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v2","filter":{"name":"alice"},"limit":5}"#);
    assert_eq!(v2, json!([{"_id": "a", "name": "alice", "age": 31, "email": "a@x"}]));
    // age is not indexed in v2.
    assert_eq!(
        code(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v2","filter":{"age":31},"limit":5}"#),
        "AERO_QUERY_UNINDEXED_FIELD"
    );
    // A _id lookup names a version: the document is found only under its own.
    assert_eq!(ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":"a"},"limit":1}"#), json!([]));
    // Delete finds the document in the collection whatever its version.
    ok(&mut db, r#"{"op":"delete","schema_id":"user","schema_version":"v1","_id":"a"}"#);
    assert_eq!(ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v2","filter":{"_id":"a"},"limit":1}"#), json!([]));
    drop(db);
    let mut db = test.open();
    assert_eq!(db.documents(), 1);
    assert_eq!(
        ok(&mut db, r#"{"op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":"b"},"limit":1}"#),
        json!([{"_id": "b", "name": "bob", "age": 40}])
    );
    assert_eq!(db.check_indexes().unwrap(), 3);
}

#[test]
fn a_missing_schema_file_for_stored_data_is_fatal() {
    let test = TestDb::new(&[("user_v1.json", USER_SCHEMA), ("user_v2.json", V2)]);
    let mut db = test.open();
    ok(&mut db, r#"{"op":"insert","schema_id":"user","schema_version":"v2","document":{"_id":"z","name":"zed","age":5}}"#);
    db.shutdown().unwrap();
    std::fs::remove_file(test.path("metadata/schemas/user_v2.json")).unwrap();
    let error = aerodb_engine::Database::open(&test.config).err().unwrap();
    assert_eq!(error.code.as_str(), "AERO_RECOVERY_SCHEMA_MISSING");
}
