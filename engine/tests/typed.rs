//! The typed API (`aerodb_engine::api`) against the JSON API: the same
//! writes through both store byte-identical WAL records and segments and
//! get identical answers; schemas installed through the API follow the
//! rules of `aerodb schema add`; errors are matched by code.

use aerodb_engine::{Batch, Collection, Database, ErrorCode, Field, Mode, Options, Order, Query, SchemaDef, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    _id: i64,
    name: String,
    price: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    dims: Dims,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Dims {
    w: i64,
    h: i64,
}

fn schema() -> SchemaDef {
    SchemaDef::new("item", "v1")
        .description("things for sale")
        .field("_id", Field::int())
        .field("name", Field::string())
        .field("price", Field::float())
        .field("tags", Field::array(Field::string()).optional())
        .field("dims", Field::object([("w", Field::int()), ("h", Field::int())]))
        .index("name")
        .index("price")
}

fn item(id: i64) -> Item {
    Item {
        _id: id,
        name: format!("name{}", id % 7),
        price: id as f64 * 0.25 + 0.1,
        tags: if id % 3 == 0 { Some(vec!["a".into(), format!("t{id}")]) } else { None },
        dims: Dims { w: id, h: -id },
    }
}

fn fresh() -> (tempfile::TempDir, Database) {
    let folder = tempfile::tempdir().unwrap();
    let db = Database::create(&folder.path().join("data"), Options::default()).unwrap();
    (folder, db)
}

fn stored_bytes(folder: &tempfile::TempDir) -> Vec<Vec<u8>> {
    let data = folder.path().join("data");
    let wal = std::fs::read(data.join("wal/wal.log")).unwrap();
    let mut out = vec![wal[aerodb_format::wal::WAL_HEADER_BYTES..].to_vec()];
    let mut segments: Vec<_> = std::fs::read_dir(data.join("data")).unwrap().map(|entry| entry.unwrap().path()).collect();
    segments.sort();
    out.extend(segments.iter().map(|path| std::fs::read(path).unwrap()));
    out.push(std::fs::read(data.join("metadata/schemas/item_v1.json")).unwrap());
    out.push(std::fs::read(data.join("metadata/schema_hashes.json")).unwrap());
    out
}

#[test]
fn typed_and_json_writes_store_the_same_bytes_and_answer_the_same() {
    let (typed_folder, mut typed) = fresh();
    let (json_folder, mut untyped) = fresh();
    let items = typed.install_schema_def(&schema()).unwrap().collection;
    assert_eq!(items, Collection::new("item", "v1"));
    // The JSON side installs the same text as `aerodb schema add` would a file.
    let installed = untyped.install_schema(&schema().to_json_text()).unwrap();
    assert!(installed.installed);

    let mut typed_answers = Vec::new();
    let mut json_answers = Vec::new();
    let to_answer = |result: aerodb_engine::Result<()>| match result {
        Ok(()) => json!({"status": "ok", "data": []}),
        Err(error) => error.to_json(),
    };
    for id in 0..60 {
        let document = item(id);
        typed_answers.push(to_answer(typed.insert(&items, &document)));
        let request =
            json!({"op": "insert", "schema_id": "item", "schema_version": "v1", "document": serde_json::to_value(&document).unwrap()});
        json_answers.push(untyped.respond(&request, Mode::Query));
    }
    // Updates, deletes, a duplicate, a missing update, a schema violation.
    let mut changed = item(5);
    changed.name = "renamed".into();
    typed_answers.push(to_answer(typed.update(&items, &changed)));
    json_answers.push(untyped.respond(
        &json!({"op": "update", "schema_id": "item", "schema_version": "v1", "document": serde_json::to_value(&changed).unwrap()}),
        Mode::Query,
    ));
    typed_answers.push(to_answer(typed.delete(&items, &7)));
    json_answers.push(untyped.respond(&json!({"op": "delete", "schema_id": "item", "schema_version": "v1", "_id": 7}), Mode::Query));
    typed_answers.push(to_answer(typed.insert(&items, &item(3))));
    json_answers.push(untyped.respond(
        &json!({"op": "insert", "schema_id": "item", "schema_version": "v1", "document": serde_json::to_value(item(3)).unwrap()}),
        Mode::Query,
    ));
    typed_answers.push(to_answer(typed.update(&items, &item(1000))));
    json_answers.push(untyped.respond(
        &json!({"op": "update", "schema_id": "item", "schema_version": "v1", "document": serde_json::to_value(item(1000)).unwrap()}),
        Mode::Query,
    ));
    let bad = json!({"_id": 1001, "name": "x", "price": "cheap", "dims": {"w": 1, "h": 1}});
    typed_answers.push(to_answer(typed.insert(&items, &bad)));
    json_answers.push(untyped.respond(&json!({"op": "insert", "schema_id": "item", "schema_version": "v1", "document": bad}), Mode::Query));
    let mut batch = Batch::new();
    for id in 60..80 {
        batch.insert(&items, &item(id));
        json_answers.push(untyped.respond(
            &json!({"op": "insert", "schema_id": "item", "schema_version": "v1", "document": serde_json::to_value(item(id)).unwrap()}),
            Mode::Query,
        ));
    }
    typed_answers.extend(typed.write_batch(&batch).into_iter().map(to_answer));
    assert_eq!(typed_answers, json_answers);
    let codes: Vec<&str> = typed_answers.iter().filter_map(|answer| answer["code"].as_str()).collect();
    assert_eq!(codes, ["AERO_WRITE_DUPLICATE_ID", "AERO_WRITE_NOT_FOUND", "AERO_SCHEMA_VALIDATION_FAILED"]);

    // Queries: typed results equal the JSON answers, deserialised.
    let queries = [
        Query::new(&items).eq("name", "name3").limit(20),
        Query::new(&items).gte("price", 2.0).lt("price", 9.5).sort("price", Order::Desc).limit(15),
        Query::new(&items).eq("_id", 5).limit(1),
        Query::new(&items).gt("_id", 10).sort("_id", Order::Asc).limit(5),
    ];
    for query in &queries {
        let found: Vec<Item> = typed.find(query).unwrap();
        let answer = untyped.respond(&query.to_request("query").unwrap(), Mode::Query);
        let expected: Vec<Item> = serde_json::from_value(answer["data"].clone()).unwrap();
        assert_eq!(found, expected, "{:?}", query.to_request("query"));
        assert!(!found.is_empty());
        assert_eq!(typed.find_json(query).unwrap(), answer["data"].as_array().unwrap().clone());
        let plan = typed.explain(query).unwrap();
        let json_plan = untyped.respond(&query.to_request("explain").unwrap(), Mode::Query)["data"].clone();
        assert_eq!(serde_json::from_value::<aerodb_engine::Explain>(json_plan).unwrap(), plan);
    }
    let five: Option<Item> = typed.get(&items, 5).unwrap();
    assert_eq!(five.unwrap().name, "renamed");
    assert_eq!(typed.get::<Item>(&items, 7).unwrap(), None);

    typed.shutdown().unwrap();
    untyped.shutdown().unwrap();
    assert!(stored_bytes(&typed_folder) == stored_bytes(&json_folder), "typed and JSON writes stored different bytes");
}

#[test]
fn schemas_installed_through_the_api_follow_the_rules_of_schema_add() {
    let (folder, mut db) = fresh();
    let installed = db.install_schema_def(&schema()).unwrap();
    assert!(installed.installed);
    // The same schema again is a no-op; other content for the version is refused.
    assert!(!db.install_schema_def(&schema()).unwrap().installed);
    let changed = schema().field("extra", Field::bool().optional());
    let error = db.install_schema_def(&changed).unwrap_err();
    assert_eq!(error.code, ErrorCode::SchemaImmutable);
    assert!(!error.is_fatal());
    // Invalid schemas: no _id, an index on a missing field, not JSON.
    let error = db.install_schema_def(&SchemaDef::new("bad", "v1").field("name", Field::string())).unwrap_err();
    assert_eq!(error.code, ErrorCode::SchemaInvalid);
    let error = db.install_schema_def(&SchemaDef::new("bad", "v1").field("_id", Field::int()).index("nope")).unwrap_err();
    assert_eq!(error.code, ErrorCode::SchemaInvalid);
    assert_eq!(db.install_schema("{not json").unwrap_err().code, ErrorCode::SchemaInvalid);
    // The file and its hash are where `aerodb schema add` puts them.
    let data = folder.path().join("data");
    assert_eq!(std::fs::read_to_string(data.join("metadata/schemas/item_v1.json")).unwrap(), schema().to_json_text());
    let hashes: Value = serde_json::from_slice(&std::fs::read(data.join("metadata/schema_hashes.json")).unwrap()).unwrap();
    assert!(hashes["item_v1.json"].as_str().is_some_and(|hash| hash.len() == 64));
    // Usable at once, and after a restart.
    db.insert(&installed.collection, &item(1)).unwrap();
    db.shutdown().unwrap();
    let mut db = Database::open_dir(&data, Options::default()).unwrap();
    assert_eq!(db.state(), State::Serving);
    assert_eq!(db.get::<Item>(&installed.collection, 1).unwrap(), Some(item(1)));
    // A second open of the same folder is refused while the first is open.
    assert_eq!(Database::open_dir(&data, Options::default()).err().map(|error| error.code), Some(ErrorCode::StorageLocked));
    db.shutdown().unwrap();
}

#[test]
fn errors_are_typed_and_options_are_frozen() {
    let (folder, mut db) = fresh();
    let items = db.install_schema_def(&schema()).unwrap().collection;
    db.insert(&items, &item(1)).unwrap();
    let error = db.insert(&items, &item(1)).unwrap_err();
    assert_eq!(error.code, ErrorCode::WriteDuplicateId);
    assert_eq!(error.detail_text("_id").as_deref(), Some("1"));
    assert_eq!(error.to_string(), format!("AERO_WRITE_DUPLICATE_ID: {}", error.message));
    let error = db.insert(&items, &json!({"_id": 2, "name": "x", "price": 1.0, "dims": {"w": "wide", "h": 1}})).unwrap_err();
    assert_eq!(error.code, ErrorCode::SchemaValidationFailed);
    assert_eq!(error.detail_str("path"), Some("dims.w"));
    // A non-finite float is refused with its path (serde_json writes it as null).
    let mut nan = item(3);
    nan.price = f64::NAN;
    let error = db.insert(&items, &nan).unwrap_err();
    assert_eq!((error.code, error.detail_str("path")), (ErrorCode::SchemaValidationFailed, Some("price")));
    // Query rules: no limit, a filter on an array, an unknown collection, a type mismatch.
    assert_eq!(db.find_json(&Query::new(&items).eq("name", "x")).unwrap_err().code, ErrorCode::QueryLimitRequired);
    assert_eq!(db.find_json(&Query::new(&items).eq("tags", "a").limit(1)).unwrap_err().code, ErrorCode::QueryInvalid, "an array field");
    assert_eq!(db.find_json(&Query::new(&Collection::new("nope", "v1")).limit(1)).unwrap_err().code, ErrorCode::UnknownSchema);
    let error = db.find::<Dims>(&Query::new(&items).eq("_id", 1).limit(1)).unwrap_err();
    assert_eq!(error.code, ErrorCode::SchemaValidationFailed, "a type that does not match the documents");
    db.shutdown().unwrap();
    // The options are frozen like a config file's values.
    let data = folder.path().join("data");
    let other = Options { max_memory_bytes: 1 << 20, ..Options::default() };
    let error = Database::open_dir(&data, other).err().unwrap();
    assert_eq!((error.code, error.detail_str("field")), (ErrorCode::ConfigImmutable, Some("max_memory_bytes")));
    // `create` refuses an existing folder.
    assert_eq!(Database::create(&data, Options::default()).err().map(|error| error.code), Some(ErrorCode::StorageExists));
    // A database moved to another folder opens there (data_dir is not frozen).
    let moved = folder.path().join("moved");
    std::fs::rename(&data, &moved).unwrap();
    let db = Database::open_dir(&moved, Options::default()).unwrap();
    assert_eq!(db.documents(), 1);
    db.shutdown().unwrap();
}

#[test]
fn a_database_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Database>();
}
