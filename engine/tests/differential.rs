//! Differential test: long seeded random request streams run through the
//! request reader and the `Database` facade, every response compared with
//! an oracle written from docs/QUERY.md and docs/SCHEMA.md that shares no
//! code with the planner or the executor.
//!
//! The oracle keeps the documents of two collections (int and string
//! `_id`) in ordered maps and answers each request from the documented
//! rules alone: validation (which error, in the documented order), the
//! planner's choice of index by exact counts with its tie rules, `max_scan`,
//! `memory_bytes_max` (from the encoded document sizes), the Q3 refusal, the
//! explain document, and the results in their exact order, with exact field
//! order and types. Clean restarts and crashes (the database dropped without
//! a shutdown) happen in the middle of every stream.
//!
//! Size: `AERODB_DIFF_SEEDS` seeds (default 4) of `AERODB_DIFF_OPS`
//! requests each (default 2500). The long run is in docs/TESTING.md.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;

use aerodb_engine::requests::{Item, RequestReader};
use aerodb_engine::{Database, Mode};
use serde_json::{json, Map, Value};

const SORT_ENTRY_BYTES: u64 = 1104;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Int,
    Float,
    Str,
    Bool,
    Object,
    Array,
}

struct Field {
    name: &'static str,
    ty: Ty,
    indexed: bool,
    required: bool,
}

/// One collection of the oracle: its schema as plain data and its documents.
struct Collection {
    schema_id: &'static str,
    id_ty: Ty,
    fields: Vec<Field>,
    /// Index order: `_id`, then the schema's `indexes` list.
    index_order: Vec<&'static str>,
    documents: BTreeMap<Id, Map<String, Value>>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Id {
    Int(i64),
    Str(String),
}

/// A scalar as the oracle compares it: floats with -0.0 equal to 0.0.
#[derive(Clone, Debug)]
enum Scalar {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
}

fn compare(left: &Scalar, right: &Scalar) -> Ordering {
    match (left, right) {
        (Scalar::Int(a), Scalar::Int(b)) => a.cmp(b),
        (Scalar::Float(a), Scalar::Float(b)) => {
            let (a, b) = (if *a == 0.0 { 0.0 } else { *a }, if *b == 0.0 { 0.0 } else { *b });
            a.partial_cmp(&b).expect("no NaN")
        }
        (Scalar::Str(a), Scalar::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
        _ => panic!("compared {left:?} with {right:?}"),
    }
}

fn scalar_json(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Int(int) => json!(int),
        Scalar::Float(float) => json!(float),
        Scalar::Str(text) => json!(text),
        Scalar::Bool(flag) => json!(flag),
    }
}

/// A literal as a client writes it (its JSON text is what is sent).
#[derive(Clone, Debug)]
enum Literal {
    Int(i64),
    BigUnsigned(u64),
    Float(f64),
    Str(String),
    Bool(bool),
}

impl Literal {
    fn text(&self) -> String {
        match self {
            Literal::Int(int) => int.to_string(),
            Literal::BigUnsigned(int) => int.to_string(),
            // Rust's Debug form is the shortest text that reads back exactly.
            Literal::Float(float) => format!("{float:?}"),
            Literal::Str(text) => serde_json::to_string(text).unwrap(),
            Literal::Bool(flag) => flag.to_string(),
        }
    }

    /// The value a field of type `ty` takes from this literal (SCHEMA.md,
    /// QUERY.md), or `None` when the field refuses it.
    fn as_field(&self, ty: Ty) -> Option<Scalar> {
        match (ty, self) {
            (Ty::Int, Literal::Int(int)) => Some(Scalar::Int(*int)),
            (Ty::Float, Literal::Float(float)) => Some(Scalar::Float(*float)),
            // An integer for a float field only when an f64 holds it exactly.
            (Ty::Float, Literal::Int(int)) => {
                let float = *int as f64;
                ((-9223372036854775808.0..9223372036854775808.0).contains(&float) && float as i64 == *int).then_some(Scalar::Float(float))
            }
            (Ty::Float, Literal::BigUnsigned(int)) => {
                let float = *int as f64;
                (float < 18446744073709551616.0 && float as u64 == *int).then_some(Scalar::Float(float))
            }
            (Ty::Str, Literal::Str(text)) if text.len() <= 256 => Some(Scalar::Str(text.clone())),
            (Ty::Bool, Literal::Bool(flag)) => Some(Scalar::Bool(*flag)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Gt => "$gt",
            Op::Gte => "$gte",
            Op::Lt => "$lt",
            Op::Lte => "$lte",
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
        }
    }
    fn is_lower(self) -> bool {
        matches!(self, Op::Gt | Op::Gte)
    }
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Gt => ordering.is_gt(),
            Op::Gte => ordering.is_ge(),
            Op::Lt => ordering.is_lt(),
            Op::Lte => ordering.is_le(),
        }
    }
}

#[derive(Clone, Debug)]
enum Condition {
    Equal(Literal),
    Range(Vec<(Op, Literal)>),
}

#[derive(Clone, Debug)]
struct QuerySpec {
    explain: bool,
    filter: Vec<(String, Condition)>,
    limit: i64,
    sort: Option<(String, bool)>,
}

impl QuerySpec {
    fn request(&self, schema_id: &str) -> String {
        let mut filter = Vec::new();
        for (field, condition) in &self.filter {
            let text = match condition {
                Condition::Equal(literal) => literal.text(),
                Condition::Range(bounds) => {
                    let parts: Vec<String> = bounds.iter().map(|(op, literal)| format!("\"{}\":{}", op.name(), literal.text())).collect();
                    format!("{{{}}}", parts.join(","))
                }
            };
            filter.push(format!("{}:{text}", serde_json::to_string(field).unwrap()));
        }
        let sort = match &self.sort {
            None => String::new(),
            Some((field, descending)) => {
                format!(r#","sort":{{"field":"{field}","order":"{}"}}"#, if *descending { "desc" } else { "asc" })
            }
        };
        let op = if self.explain { "explain" } else { "query" };
        format!(
            r#"{{"op":"{op}","schema_id":"{schema_id}","schema_version":"v1","filter":{{{}}},"limit":{}{sort}}}"#,
            filter.join(","),
            self.limit
        )
    }
}

/// A predicate the oracle accepted: field, its type and its bounds.
struct Checked {
    field: String,
    bounds: Vec<(Option<Op>, Scalar)>,
}

impl Checked {
    fn is_equality(&self) -> bool {
        self.bounds.len() == 1 && self.bounds[0].0.is_none()
    }
    fn matches(&self, value: &Scalar) -> bool {
        self.bounds.iter().all(|(op, bound)| match op {
            None => compare(value, bound).is_eq(),
            Some(op) => op.holds(compare(value, bound)),
        })
    }
    fn texts(&self) -> Vec<String> {
        self.bounds
            .iter()
            .map(|(op, bound)| format!("{} {} {}", self.field, op.map(Op::symbol).unwrap_or("="), scalar_json(bound)))
            .collect()
    }
}

fn error(code: &str) -> Value {
    json!({"status": "error", "code": code})
}

impl Collection {
    fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    fn value_of(&self, document: &Map<String, Value>, name: &str) -> Option<Scalar> {
        let ty = self.field(name)?.ty;
        let value = document.get(name)?;
        Some(match ty {
            Ty::Int => Scalar::Int(value.as_i64().unwrap()),
            Ty::Float => Scalar::Float(value.as_f64().unwrap()),
            Ty::Str => Scalar::Str(value.as_str().unwrap().to_string()),
            Ty::Bool => Scalar::Bool(value.as_bool().unwrap()),
            _ => return None,
        })
    }

    fn largest_document(&self) -> u64 {
        self.documents
            .values()
            .map(|body| aerodb_format::document::encode_record(self.schema_id, "v1", body).unwrap().len() as u64)
            .max()
            .unwrap_or(0)
    }

    /// The documented checks of one predicate, in the documented order.
    fn check_predicate(&self, field_name: &str, condition: &Condition) -> Result<Checked, Value> {
        let Some(field) = self.field(field_name) else { return Err(error("AERO_QUERY_INVALID")) };
        if matches!(field.ty, Ty::Object | Ty::Array) {
            return Err(error("AERO_QUERY_INVALID"));
        }
        let bounds = match condition {
            Condition::Equal(literal) => vec![(None, literal.as_field(field.ty).ok_or_else(|| error("AERO_QUERY_INVALID"))?)],
            Condition::Range(bounds) => {
                let mut checked: Vec<(Option<Op>, Scalar)> = Vec::new();
                for (op, literal) in bounds {
                    if checked.iter().any(|(other, _)| other.unwrap().is_lower() == op.is_lower()) {
                        return Err(error("AERO_QUERY_INVALID"));
                    }
                    if !matches!(field.ty, Ty::Int | Ty::Float) {
                        return Err(error("AERO_QUERY_INVALID"));
                    }
                    checked.push((Some(*op), literal.as_field(field.ty).ok_or_else(|| error("AERO_QUERY_INVALID"))?));
                }
                checked.sort_by_key(|(op, _)| !op.unwrap().is_lower());
                if let [(Some(low_op), low), (Some(high_op), high)] = checked.as_slice() {
                    let ordering = compare(low, high);
                    if ordering.is_gt() || (ordering.is_eq() && (*low_op == Op::Gt || *high_op == Op::Lt)) {
                        return Err(error("AERO_QUERY_INVALID"));
                    }
                }
                checked
            }
        };
        if !field.indexed {
            return Err(error("AERO_QUERY_UNINDEXED_FIELD"));
        }
        Ok(Checked { field: field_name.to_string(), bounds })
    }

    /// The response docs/QUERY.md promises for a query or explain.
    fn answer(&self, query: &QuerySpec, memory_limit: u64) -> Value {
        if !(1..=10_000).contains(&query.limit) {
            return error("AERO_QUERY_LIMIT_REQUIRED");
        }
        let limit = query.limit as u64;
        let mut predicates = Vec::new();
        for (field, condition) in &query.filter {
            match self.check_predicate(field, condition) {
                Ok(checked) => predicates.push(checked),
                Err(response) => return response,
            }
        }
        if let Some((field, _)) = &query.sort {
            match self.field(field) {
                None => return error("AERO_QUERY_INVALID"),
                Some(definition) if !definition.indexed => return error("AERO_QUERY_SORT_NOT_INDEXED"),
                Some(_) => {}
            }
        }
        if predicates.is_empty() && query.sort.is_none() {
            return error("AERO_QUERY_UNBOUNDED");
        }
        let count = |predicate: &Checked| {
            self.documents
                .values()
                .filter(|document| self.value_of(document, &predicate.field).is_some_and(|v| predicate.matches(&v)))
                .count() as u64
        };
        let rank = |field: &str| self.index_order.iter().position(|name| *name == field).unwrap();
        let sort_field = query.sort.as_ref().map(|(field, _)| field.as_str());
        // The planner's rules, in order.
        let mut driving: Option<usize> = predicates.iter().position(|p| p.field == "_id" && p.is_equality());
        let mut scan_type = "PK_LOOKUP";
        for (name, equality) in [("INDEX_EQ", true), ("INDEX_RANGE", false)] {
            if driving.is_some() {
                break;
            }
            let candidates = (0..predicates.len()).filter(|position| predicates[*position].is_equality() == equality);
            driving = candidates.min_by_key(|position| {
                let predicate = &predicates[*position];
                (count(predicate), Some(predicate.field.as_str()) != sort_field, rank(&predicate.field))
            });
            scan_type = name;
        }
        let (index, max_scan_full) = match driving {
            Some(position) => (predicates[position].field.clone(), count(&predicates[position])),
            None => {
                scan_type = "INDEX_SCAN";
                let field = sort_field.unwrap().to_string();
                let entries = self.documents.values().filter(|document| self.value_of(document, &field).is_some()).count() as u64;
                (field, entries)
            }
        };
        let descending_sort = query.sort.as_ref().is_some_and(|(_, descending)| *descending);
        let index_order = sort_field.is_none_or(|field| field == index);
        let equality_driven = driving.is_some_and(|position| predicates[position].is_equality());
        let descending = index_order && !equality_driven && descending_sort;
        let max_scan = if scan_type == "INDEX_SCAN" && (!descending || index == "_id") { max_scan_full.min(limit) } else { max_scan_full };
        let buffered = if query.sort.is_some() { max_scan.min(2 * limit) } else { max_scan.min(limit) };
        let memory_bytes_max = buffered * (self.largest_document() + SORT_ENTRY_BYTES);
        if memory_bytes_max > memory_limit {
            return json!({"status": "error", "code": "AERO_QUERY_UNBOUNDED", "invariant": "Q3"});
        }
        if query.explain {
            let mut texts: Vec<String> = driving.map(|position| predicates[position].texts()).unwrap_or_default();
            let residual: Vec<String> = (0..predicates.len())
                .filter(|position| Some(*position) != driving)
                .flat_map(|position| predicates[position].texts())
                .collect();
            texts.extend(residual.iter().cloned());
            let sort =
                query.sort.as_ref().map(|(field, descending)| json!({"field": field, "order": if *descending { "desc" } else { "asc" }}));
            return json!({"status": "ok", "data": {
                "schema_id": self.schema_id, "schema_version": "v1", "chosen_index": index, "scan_type": scan_type,
                "scan_direction": if descending { "desc" } else { "asc" }, "predicates": texts, "residual": residual,
                "sort": sort, "sort_mode": if index_order { "index_order" } else { "in_memory" }, "limit": limit,
                "max_scan": max_scan, "memory_bytes_max": memory_bytes_max, "bounded": true,
            }});
        }
        // Results: every match (holding the sort field, if sorted), ordered by
        // the sort (or the chosen index), ties by _id ascending; `limit` of them.
        let mut hits: Vec<(&Id, &Map<String, Value>)> = self
            .documents
            .iter()
            .filter(|(_, document)| predicates.iter().all(|p| self.value_of(document, &p.field).is_some_and(|v| p.matches(&v))))
            .filter(|(_, document)| sort_field.is_none_or(|field| self.value_of(document, field).is_some()))
            .collect();
        let order_field = sort_field.map(str::to_string).unwrap_or(index);
        hits.sort_by(|(left_id, left), (right_id, right)| {
            let by_value = match (self.value_of(left, &order_field), self.value_of(right, &order_field)) {
                (Some(a), Some(b)) => compare(&a, &b),
                _ => Ordering::Equal,
            };
            let by_value = if sort_field.is_some() && descending_sort { by_value.reverse() } else { by_value };
            by_value.then_with(|| left_id.cmp(right_id))
        });
        let data: Vec<Value> = hits.into_iter().take(limit as usize).map(|(_, document)| Value::Object(document.clone())).collect();
        json!({"status": "ok", "data": data})
    }

    /// The documented answer to an insert or update of `spec`, applied to
    /// the oracle when it succeeds: validation first, then the `_id` check
    /// (an insert needs a new `_id`, an update an existing one).
    fn write(&mut self, op: &str, spec: &DocumentSpec) -> Value {
        let Some(body) = spec.stored(self) else { return error("AERO_SCHEMA_VALIDATION_FAILED") };
        let id = self.id_of(&body);
        match (op, self.documents.contains_key(&id)) {
            ("insert", true) => error("AERO_WRITE_DUPLICATE_ID"),
            ("update", false) => error("AERO_WRITE_NOT_FOUND"),
            _ => {
                self.documents.insert(id, body);
                json!({"status": "ok", "data": []})
            }
        }
    }

    fn id_of(&self, document: &Map<String, Value>) -> Id {
        match (self.id_ty, document.get("_id")) {
            (Ty::Int, Some(Value::Number(number))) => Id::Int(number.as_i64().unwrap()),
            (Ty::Str, Some(Value::String(text))) => Id::Str(text.clone()),
            _ => unreachable!("documents always carry a valid _id here"),
        }
    }
}

/// A document as generated: its field literals in order (an `Err` field is
/// one that makes the document invalid).
struct DocumentSpec {
    fields: Vec<(String, DocValue)>,
}

#[derive(Clone, Debug)]
enum DocValue {
    Scalar(Literal),
    Nested(Vec<(String, Literal)>),
    Tags(Vec<String>),
}

impl DocumentSpec {
    fn text(&self) -> String {
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    DocValue::Scalar(literal) => literal.text(),
                    DocValue::Nested(members) => {
                        let inner: Vec<String> = members.iter().map(|(key, literal)| format!("\"{key}\":{}", literal.text())).collect();
                        format!("{{{}}}", inner.join(","))
                    }
                    DocValue::Tags(tags) => serde_json::to_string(tags).unwrap(),
                };
                format!("\"{name}\":{value}")
            })
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    /// The stored document (floats normalised), or `None` if SCHEMA.md says
    /// the document is refused.
    fn stored(&self, collection: &Collection) -> Option<Map<String, Value>> {
        let mut body = Map::new();
        for (name, value) in &self.fields {
            let field = collection.field(name)?;
            let stored = match (field.ty, value) {
                (Ty::Object, DocValue::Nested(members)) => {
                    let mut inner = Map::new();
                    for (key, literal) in members {
                        let ty = match key.as_str() {
                            "x" => Ty::Int,
                            "y" => Ty::Float,
                            _ => return None,
                        };
                        inner.insert(key.clone(), scalar_json(&literal.as_field(ty)?));
                    }
                    if !inner.contains_key("x") {
                        return None;
                    }
                    Value::Object(inner)
                }
                (Ty::Array, DocValue::Tags(tags)) => json!(tags),
                (ty, DocValue::Scalar(literal)) if !matches!(ty, Ty::Object | Ty::Array) => {
                    let scalar = literal.as_field(ty)?;
                    if name == "_id" {
                        if let Scalar::Str(text) = &scalar {
                            if text.len() > 256 {
                                return None;
                            }
                        }
                    }
                    scalar_json(&scalar)
                }
                _ => return None,
            };
            body.insert(name.clone(), stored);
        }
        for field in &collection.fields {
            if field.required && !body.contains_key(field.name) {
                return None;
            }
        }
        Some(body)
    }
}

struct Pools {
    ints: Vec<i64>,
    floats: Vec<f64>,
    strings: Vec<String>,
}

impl Pools {
    fn new() -> Pools {
        Pools {
            ints: vec![i64::MIN, i64::MIN + 1, -1000, -3, -1, 0, 1, 2, 3, 7, 1000, i64::MAX - 1, i64::MAX],
            floats: vec![
                -0.0,
                0.0,
                0.5,
                -0.5,
                1.5,
                -1.25,
                2.0,
                3.0,
                1e300,
                -1e300,
                5e-324,
                -5e-324,
                1000000000000000.5,
                0.1,
                0.30000000000000004,
                -9.223372036854776e18,
            ],
            strings: ["", "a", "a\u{0}", "a\u{0}b", "ab", "b", "é", "z", "\u{1F600}", "\"q\"", "A"].map(String::from).to_vec(),
        }
    }

    fn int(&self, rng: &mut fastrand::Rng) -> i64 {
        if rng.bool() {
            rng.i64(-4..5)
        } else {
            self.ints[rng.usize(..self.ints.len())]
        }
    }

    fn float_literal(&self, rng: &mut fastrand::Rng) -> Literal {
        match rng.u8(0..10) {
            0 => Literal::Int(self.int(rng)),
            1 => Literal::Int([9007199254740992, 9007199254740993, -9007199254740993, 4][rng.usize(..4)]),
            2 => Literal::BigUnsigned([9223372036854775808, 18446744073709551615, 18446744073709549568][rng.usize(..3)]),
            3..=5 => Literal::Float(rng.i64(-8..9) as f64 / 4.0),
            _ => Literal::Float(self.floats[rng.usize(..self.floats.len())]),
        }
    }

    fn string(&self, rng: &mut fastrand::Rng) -> String {
        self.strings[rng.usize(..self.strings.len())].clone()
    }

    /// Any literal, for a field of `ty` (mostly of the right type).
    fn literal(&self, rng: &mut fastrand::Rng, ty: Ty) -> Literal {
        if rng.u8(0..25) == 0 {
            // The wrong type now and then.
            return match rng.u8(0..4) {
                0 => Literal::Str("x".into()),
                1 => Literal::Bool(true),
                2 => Literal::Float(1.5),
                _ => Literal::Int(1),
            };
        }
        match ty {
            Ty::Int => Literal::Int(self.int(rng)),
            Ty::Float => self.float_literal(rng),
            Ty::Str => Literal::Str(if rng.u8(0..60) == 0 { "s".repeat(257) } else { self.string(rng) }),
            _ => Literal::Bool(rng.bool()),
        }
    }
}

fn collections() -> Vec<Collection> {
    let field = |name, ty, indexed, required| Field { name, ty, indexed, required };
    vec![
        Collection {
            schema_id: "c",
            id_ty: Ty::Int,
            fields: vec![
                field("_id", Ty::Int, true, true),
                field("s", Ty::Str, true, true),
                field("i", Ty::Int, true, true),
                field("f", Ty::Float, true, true),
                field("b", Ty::Bool, true, true),
                field("o", Ty::Int, true, false),
                field("u", Ty::Int, false, false),
                field("nested", Ty::Object, false, false),
                field("tags", Ty::Array, false, false),
            ],
            index_order: vec!["_id", "s", "i", "f", "b", "o"],
            documents: BTreeMap::new(),
        },
        Collection {
            schema_id: "d",
            id_ty: Ty::Str,
            fields: vec![
                field("_id", Ty::Str, true, true),
                field("f", Ty::Float, true, true),
                field("i", Ty::Int, true, false),
                field("s", Ty::Str, true, false),
            ],
            index_order: vec!["_id", "f", "i", "s"],
            documents: BTreeMap::new(),
        },
    ]
}

const SCHEMA_C: &str = r#"{"schema_id":"c","schema_version":"v1","fields":{
  "_id":{"type":"int"},"s":{"type":"string"},"i":{"type":"int"},"f":{"type":"float"},"b":{"type":"bool"},
  "o":{"type":"int","required":false},"u":{"type":"int","required":false},
  "nested":{"type":"object","required":false,"fields":{"x":{"type":"int"},"y":{"type":"float","required":false}}},
  "tags":{"type":"array","required":false,"items":{"type":"string"}}},
  "indexes":["s","i","f","b","o"]}"#;
const SCHEMA_D: &str = r#"{"schema_id":"d","schema_version":"v1","fields":{
  "_id":{"type":"string"},"f":{"type":"float"},"i":{"type":"int","required":false},"s":{"type":"string","required":false}},
  "indexes":["f","i","s"]}"#;

fn random_id(rng: &mut fastrand::Rng, collection: &Collection, pools: &Pools) -> Literal {
    match collection.id_ty {
        Ty::Int if rng.u8(0..15) == 0 => Literal::Int(pools.ints[rng.usize(..pools.ints.len())]),
        Ty::Int => Literal::Int(rng.i64(0..40)),
        _ if rng.u8(0..10) == 0 => Literal::Str(pools.string(rng)),
        _ => Literal::Str(format!("k{}", rng.u8(0..40))),
    }
}

fn random_document(rng: &mut fastrand::Rng, collection: &Collection, pools: &Pools, id: Literal) -> DocumentSpec {
    let mut fields = vec![("_id".to_string(), DocValue::Scalar(id))];
    for field in &collection.fields[1..] {
        if !field.required && rng.bool() {
            continue;
        }
        if field.required && rng.u8(0..80) == 0 {
            continue; // a missing required field: refused
        }
        let value = match field.ty {
            Ty::Object => {
                let mut members = vec![("x".to_string(), Literal::Int(pools.int(rng)))];
                if rng.bool() {
                    members.push(("y".to_string(), pools.float_literal(rng)));
                }
                DocValue::Nested(members)
            }
            Ty::Array => DocValue::Tags((0..rng.usize(0..4)).map(|_| pools.string(rng)).collect()),
            ty => DocValue::Scalar(pools.literal(rng, ty)),
        };
        fields.push((field.name.to_string(), value));
    }
    if rng.u8(0..80) == 0 {
        fields.push(("undeclared".to_string(), DocValue::Scalar(Literal::Int(1))));
    }
    // Field order is part of what is stored: shuffle it now and then.
    if rng.u8(0..4) == 0 {
        rng.shuffle(&mut fields[1..]);
    }
    DocumentSpec { fields }
}

fn random_condition(rng: &mut fastrand::Rng, ty: Ty, pools: &Pools) -> Condition {
    if rng.u8(0..3) == 0 || !matches!(ty, Ty::Int | Ty::Float) && rng.u8(0..10) != 0 {
        return Condition::Equal(pools.literal(rng, ty));
    }
    let ops = match rng.u8(0..7) {
        0 => vec![Op::Gt],
        1 => vec![Op::Gte],
        2 => vec![Op::Lt],
        3 => vec![Op::Lte],
        4 => vec![[Op::Gt, Op::Gte][rng.usize(..2)], [Op::Lt, Op::Lte][rng.usize(..2)]],
        5 => vec![[Op::Lt, Op::Lte][rng.usize(..2)], [Op::Gt, Op::Gte][rng.usize(..2)]],
        _ => vec![Op::Gt, Op::Gte], // two lower bounds: refused
    };
    Condition::Range(ops.into_iter().map(|op| (op, pools.literal(rng, ty))).collect())
}

fn random_query(rng: &mut fastrand::Rng, collection: &Collection, pools: &Pools) -> QuerySpec {
    let mut filter: Vec<(String, Condition)> = Vec::new();
    let predicates = [0, 1, 1, 1, 2, 2, 3][rng.usize(..7)];
    for _ in 0..predicates {
        // Mostly indexed scalar fields; now and then one the rules refuse.
        let field = if rng.u8(0..20) == 0 {
            &collection.fields[rng.usize(..collection.fields.len())]
        } else {
            let name = collection.index_order[rng.usize(..collection.index_order.len())];
            collection.field(name).unwrap()
        };
        if filter.iter().any(|(name, _)| name == field.name) {
            continue;
        }
        let condition = match field.ty {
            Ty::Object | Ty::Array => Condition::Equal(Literal::Int(1)),
            // Bounds on an int _id near the stored ids, so that they hit stored keys.
            Ty::Int if field.name == "_id" && rng.u8(0..4) != 0 => {
                let mut condition = random_condition(rng, Ty::Int, pools);
                match &mut condition {
                    Condition::Equal(literal) => *literal = Literal::Int(rng.i64(-2..42)),
                    Condition::Range(bounds) => bounds.iter_mut().for_each(|(_, literal)| *literal = Literal::Int(rng.i64(-2..42))),
                }
                condition
            }
            ty => random_condition(rng, ty, pools),
        };
        filter.push((field.name.to_string(), condition));
    }
    if rng.u8(0..60) == 0 {
        filter.push(("unknown".to_string(), Condition::Equal(Literal::Int(1))));
    }
    let sort = if filter.is_empty() && rng.u8(0..20) != 0 || rng.u8(0..3) == 0 {
        let field = if rng.u8(0..40) == 0 { "u" } else { collection.index_order[rng.usize(..collection.index_order.len())] };
        Some((field.to_string(), rng.bool()))
    } else {
        None
    };
    let limit = match rng.u8(0..60) {
        0 => 0,
        1 => 10_001,
        _ => rng.i64(1..45),
    };
    QuerySpec { explain: rng.u8(0..4) == 0, filter, limit, sort }
}

/// The part of a response the oracle predicts: for errors the status, code
/// and (for Q3) invariant; for successes everything.
fn comparable(response: &Value) -> Value {
    if response["status"] == "ok" {
        return response.clone();
    }
    let mut out = json!({"status": response["status"], "code": response["code"]});
    if response["code"] == "AERO_QUERY_UNBOUNDED" && response["invariant"] == "Q3" {
        out["invariant"] = json!("Q3");
    }
    out
}

struct Setup {
    _folder: tempfile::TempDir,
    config: PathBuf,
}

fn setup(memory_limit: u64) -> Setup {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("aerodb.json");
    std::fs::write(&config, format!(r#"{{"data_dir": "./data", "max_memory_bytes": {memory_limit}}}"#)).unwrap();
    aerodb_engine::init(&config).unwrap();
    let schemas = folder.path().join("data/metadata/schemas");
    std::fs::write(schemas.join("c_v1.json"), SCHEMA_C).unwrap();
    std::fs::write(schemas.join("d_v1.json"), SCHEMA_D).unwrap();
    Setup { _folder: folder, config }
}

/// Sends one request as text through the request reader, as the CLI does.
fn send(db: &mut Database, text: &str) -> Value {
    let mut reader = RequestReader::new(text.as_bytes());
    let response = match reader.next_item().unwrap() {
        Some(Item::Request(request)) => db.respond(&request, Mode::Query),
        Some(Item::Malformed(error)) => error.to_json(),
        None => panic!("no request in {text}"),
    };
    assert!(reader.next_item().unwrap().is_none(), "one request per text");
    response
}

#[derive(Default, Debug)]
struct Tally {
    operations: u64,
    queries_ok: u64,
    explains_ok: u64,
    refusals: BTreeMap<String, u64>,
    restarts: u64,
    crashes: u64,
}

fn run_stream(seed: u64, operations: u64, tally: &mut Tally) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let memory_limit = [536_870_912u64, 120_000, 40_000][(seed % 3) as usize];
    let setup = setup(memory_limit);
    let pools = Pools::new();
    let mut oracle = collections();
    let mut db = Database::open(&setup.config).unwrap();
    for step in 0..operations {
        let which = rng.usize(..oracle.len());
        let roll = rng.u16(0..1000);
        let (request, expected) = {
            let collection = &oracle[which];
            match roll {
                0..=479 => {
                    let op = if roll < 350 { "insert" } else { "update" };
                    let id = random_id(&mut rng, collection, &pools);
                    let spec = random_document(&mut rng, collection, &pools, id);
                    let request = format!(
                        r#"{{"op":"{op}","schema_id":"{}","schema_version":"v1","document":{}}}"#,
                        collection.schema_id,
                        spec.text()
                    );
                    (request, oracle[which].write(op, &spec))
                }
                480..=579 => {
                    let id = random_id(&mut rng, collection, &pools);
                    let request =
                        format!(r#"{{"op":"delete","schema_id":"{}","schema_version":"v1","_id":{}}}"#, collection.schema_id, id.text());
                    let key = match &id {
                        Literal::Int(int) => Id::Int(*int),
                        Literal::Str(text) => Id::Str(text.clone()),
                        _ => unreachable!(),
                    };
                    oracle[which].documents.remove(&key);
                    (request, json!({"status": "ok", "data": []}))
                }
                580..=993 => {
                    let query = random_query(&mut rng, collection, &pools);
                    (query.request(collection.schema_id), collection.answer(&query, memory_limit))
                }
                994..=996 => {
                    db.shutdown().unwrap();
                    db = Database::open(&setup.config).unwrap();
                    tally.restarts += 1;
                    continue;
                }
                _ => {
                    // A crash: no shutdown, nothing flushed but the WAL.
                    drop(db);
                    db = Database::open(&setup.config).unwrap();
                    tally.crashes += 1;
                    continue;
                }
            }
        };
        let response = send(&mut db, &request);
        let got = comparable(&response);
        if got != expected {
            panic!(
                "seed {seed} step {step}: mismatch\nrequest:  {request}\nexpected: {}\ngot:      {}\nfull:     {response}",
                serde_json::to_string(&expected).unwrap(),
                serde_json::to_string(&got).unwrap()
            );
        }
        // Exact bytes: field order and number forms, not just equal values.
        if response["status"] == "ok" {
            assert_eq!(
                serde_json::to_string(&response["data"]).unwrap(),
                serde_json::to_string(&expected["data"]).unwrap(),
                "seed {seed} step {step}: {request}"
            );
            if request.contains(r#""op":"explain""#) {
                tally.explains_ok += 1;
            } else if request.contains(r#""op":"query""#) {
                tally.queries_ok += 1;
            }
        } else {
            let key = format!("{}{}", response["code"].as_str().unwrap(), if got.get("invariant").is_some() { " Q3" } else { "" });
            *tally.refusals.entry(key).or_default() += 1;
        }
        tally.operations += 1;
    }
    db.shutdown().unwrap();
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

#[test]
fn random_streams_match_the_oracle() {
    let seeds = env_or("AERODB_DIFF_SEEDS", 4);
    let first = env_or("AERODB_DIFF_SEED_FIRST", 1);
    let operations = env_or("AERODB_DIFF_OPS", 2500);
    let mut tally = Tally::default();
    for seed in first..first + seeds {
        run_stream(seed, operations, &mut tally);
    }
    eprintln!("differential: {tally:?}");
    // The stream exercises what it claims to: successes and every refusal kind.
    assert!(tally.queries_ok > 0 && tally.explains_ok > 0);
    for code in ["AERO_QUERY_INVALID", "AERO_SCHEMA_VALIDATION_FAILED", "AERO_WRITE_DUPLICATE_ID", "AERO_QUERY_UNINDEXED_FIELD"] {
        assert!(tally.refusals.contains_key(code), "no {code} in {tally:?}");
    }
}
