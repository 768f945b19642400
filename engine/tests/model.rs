//! Model-based test: random request sequences run through the `Database`
//! facade and through a naive in-memory model; every response is compared,
//! with restarts (clean and crash) at random points. Query results must
//! match the model exactly, in order.

mod common;

use std::collections::BTreeMap;

use aerodb_engine::{Database, Mode};
use common::*;
use serde_json::{json, Value};

const PEOPLE_SCHEMA: &str = r#"{"schema_id": "people", "schema_version": "v1",
 "fields": {"_id": {"type": "int"}, "name": {"type": "string"}, "age": {"type": "int"},
            "score": {"type": "float", "required": false}, "active": {"type": "bool"},
            "note": {"type": "string", "required": false}},
 "indexes": ["name", "age", "score", "active"]}"#;

/// The model: documents by `_id`.
#[derive(Default, Clone)]
struct Model {
    documents: BTreeMap<i64, Value>,
}

fn random_document(rng: &mut fastrand::Rng, id: i64) -> Value {
    let mut document = json!({"_id": id, "name": format!("n{}", rng.u8(0..12)), "age": rng.i64(-5..40), "active": rng.bool()});
    if rng.bool() {
        document["score"] = json!((rng.i64(-100..100) as f64) / 4.0);
    }
    if rng.u8(0..10) == 0 {
        // Large enough for an overflow chain now and then.
        document["note"] = json!("x".repeat(rng.usize(1..9000)));
    }
    document
}

fn key_order(value: Option<&Value>) -> (u8, f64, String) {
    match value {
        None => (0, 0.0, String::new()),
        Some(Value::Bool(flag)) => (1, f64::from(u8::from(*flag)), String::new()),
        Some(Value::Number(number)) => (1, number.as_f64().unwrap(), String::new()),
        Some(Value::String(text)) => (1, 0.0, text.clone()),
        Some(other) => panic!("unexpected sort value {other}"),
    }
}

fn compare(left: Option<&Value>, right: Option<&Value>) -> std::cmp::Ordering {
    let (left, right) = (key_order(left), key_order(right));
    left.0.cmp(&right.0).then(left.1.partial_cmp(&right.1).unwrap()).then(left.2.cmp(&right.2))
}

impl Model {
    fn query(&self, filter: &[(String, Value)], limit: usize, sort: Option<(&str, bool)>) -> Vec<Value> {
        let mut hits: Vec<&Value> = self
            .documents
            .values()
            .filter(|document| {
                filter.iter().all(|(field, condition)| {
                    let value = document.get(field);
                    match condition {
                        Value::Object(range) => range.iter().all(|(operator, bound)| {
                            value.is_some_and(|value| {
                                let ordering = compare(Some(value), Some(bound));
                                match operator.as_str() {
                                    "$gt" => ordering.is_gt(),
                                    "$gte" => ordering.is_ge(),
                                    "$lt" => ordering.is_lt(),
                                    _ => ordering.is_le(),
                                }
                            })
                        }),
                        scalar => value.is_some_and(|value| compare(Some(value), Some(scalar)).is_eq()),
                    }
                })
            })
            .collect();
        // Ties (and unsorted results of one index) order by _id ascending:
        // documents are visited in _id order already.
        if let Some((field, _)) = sort {
            // Documents lacking the sort field are not in a sorted result.
            hits.retain(|document| document.get(field).is_some());
        }
        match sort {
            Some((field, descending)) => hits.sort_by(|a, b| {
                let ordering = compare(a.get(field), b.get(field));
                if descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            }),
            None => {
                // Unsorted: the chosen index's order. The test only sends
                // unsorted queries whose chosen index is the first predicate
                // and orders by that field.
                if let Some((field, _)) = filter.first() {
                    hits.sort_by(|a, b| compare(a.get(field.as_str()), b.get(field.as_str())));
                }
            }
        }
        hits.into_iter().take(limit).cloned().collect()
    }
}

fn random_query(rng: &mut fastrand::Rng) -> (Value, Vec<(String, Value)>, usize, Option<(&'static str, bool)>) {
    let mut filter = Vec::new();
    match rng.u8(0..6) {
        0 => filter.push(("age".to_string(), json!(rng.i64(-5..40)))),
        1 => {
            let low = rng.i64(-6..40);
            filter.push(("age".to_string(), json!({"$gte": low, "$lt": low + rng.i64(1..15)})));
        }
        2 => filter.push(("name".to_string(), json!(format!("n{}", rng.u8(0..12))))),
        3 => filter.push(("score".to_string(), json!({"$gt": (rng.i64(-100..100) as f64) / 4.0}))),
        4 => {
            filter.push(("active".to_string(), json!(rng.bool())));
            filter.push(("age".to_string(), json!({"$lte": rng.i64(-5..40)})));
        }
        _ => {}
    }
    let sort_field = ["age", "name", "_id", "score", "active"][rng.usize(0..5)];
    let sort = if filter.is_empty() || rng.bool() { Some((sort_field, rng.bool())) } else { None };
    if sort.is_none() && filter.len() > 1 {
        // Keep unsorted queries single-predicate so the model knows the index order.
        filter.truncate(1);
    }
    let limit = rng.usize(1..30);
    let mut request = json!({"op": "query", "schema_id": "people", "schema_version": "v1", "limit": limit});
    request["filter"] = Value::Object(filter.iter().cloned().collect());
    if let Some((field, descending)) = sort {
        request["sort"] = json!({"field": field, "order": if descending { "desc" } else { "asc" }});
    }
    (request, filter, limit, sort)
}

fn run_sequence(seed: u64, steps: usize) {
    let test = TestDb::new(&[("people_v1.json", PEOPLE_SCHEMA)]);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut model = Model::default();
    let mut db = test.open();
    for step in 0..steps {
        let context = format!("seed {seed} step {step}");
        match rng.u8(0..100) {
            0..=39 => {
                let id = rng.i64(0..120);
                let document = random_document(&mut rng, id);
                let response =
                    db.respond(&json!({"op": "insert", "schema_id": "people", "schema_version": "v1", "document": document}), Mode::Query);
                if model.documents.contains_key(&id) {
                    assert_eq!(response["code"], "AERO_WRITE_DUPLICATE_ID", "{context}");
                } else {
                    assert_eq!(response["status"], "ok", "{context}: {response}");
                    model.documents.insert(id, document);
                }
            }
            40..=54 => {
                let id = rng.i64(0..120);
                let document = random_document(&mut rng, id);
                let response =
                    db.respond(&json!({"op": "update", "schema_id": "people", "schema_version": "v1", "document": document}), Mode::Query);
                if model.documents.contains_key(&id) {
                    assert_eq!(response["status"], "ok", "{context}: {response}");
                    model.documents.insert(id, document);
                } else {
                    assert_eq!(response["code"], "AERO_WRITE_NOT_FOUND", "{context}");
                }
            }
            55..=64 => {
                let id = rng.i64(0..120);
                let response = db.respond(&json!({"op": "delete", "schema_id": "people", "schema_version": "v1", "_id": id}), Mode::Query);
                assert_eq!(response["status"], "ok", "{context}: {response}");
                model.documents.remove(&id);
            }
            65..=96 => {
                let (request, filter, limit, sort) = random_query(&mut rng);
                let response = db.respond(&request, Mode::Query);
                assert_eq!(response["status"], "ok", "{context}: {request} -> {response}");
                let expected = model.query(&filter, limit, sort);
                let got = response["data"].as_array().unwrap();
                let ids = |documents: &[Value]| documents.iter().map(|document| document["_id"].clone()).collect::<Vec<_>>();
                assert_eq!(ids(got), ids(&expected), "{context}: {request}");
                assert!(got == &expected, "{context}: {request}: same ids, different documents");
                // max_scan is the exact number of entries in the driving range.
                let plan = db.respond(&request, Mode::Explain)["data"].clone();
                assert_eq!(plan["bounded"], true);
                if plan["scan_type"] == "INDEX_EQ" || plan["scan_type"] == "INDEX_RANGE" {
                    let driving = plan["chosen_index"].as_str().unwrap();
                    let condition = &request["filter"][driving];
                    let single = vec![(driving.to_string(), condition.clone())];
                    assert_eq!(plan["max_scan"], model.query(&single, usize::MAX, None).len(), "{context}: {request} -> {plan}");
                }
            }
            97 => {
                db.shutdown().unwrap();
                db = Database::open(&test.config).unwrap();
            }
            _ => {
                drop(db);
                db = Database::open(&test.config).unwrap();
            }
        }
        assert_eq!(db.documents(), model.documents.len() as u64, "{context}");
        // Every tree's invariants hold after every step; the trees hold one
        // entry per document for _id, name, age, active, and one per score.
        let scores = model.documents.values().filter(|document| document.get("score").is_some()).count() as u64;
        assert_eq!(db.check_indexes().unwrap(), 4 * model.documents.len() as u64 + scores, "{context}");
    }
    db.shutdown().unwrap();
}

#[test]
fn random_sequences_match_the_model() {
    for seed in 1..=6 {
        run_sequence(seed, 700);
    }
}
