//! Queries: validation, the deterministic rule-based planner, the executor
//! and explain (docs/QUERY.md).
//!
//! A query is checked and planned before anything is read: the planner
//! picks one index by fixed rules, computes `max_scan` — the exact number of
//! index entries in the scanned key range, from the B-tree's counts — and
//! the memory the result and any in-memory sort could need, and rejects the
//! plan with `AERO_QUERY_UNBOUNDED` if either bound is over its limit. The
//! executor then walks exactly that range and never visits more than
//! `max_scan` entries.

use std::cmp::Ordering;
use std::ops::Bound;

use aerodb_format::btree::{Locator, KEY_BYTES_MAX};
use aerodb_format::document::decode_record;
use aerodb_format::key::{self, KeyValue};
use aerodb_format::schema::{FieldType, Schema};
use aerodb_format::INDEXED_STRING_MAX_BYTES;
use serde_json::{json, Map, Value};

use crate::btree::{Indexes, TreeId};
use crate::error::{AeroError, ErrorCode, Result};
use crate::heap::Heap;

/// Largest `limit` a query may ask for.
pub const QUERY_LIMIT_MAX: u64 = 10_000;
/// Largest number of index entries a plan may visit.
pub const QUERY_SCAN_MAX: u64 = 1_000_000;
/// Bytes of bookkeeping per buffered document at most (sort key, `_id` key).
pub const SORT_ENTRY_BYTES_MAX: u64 = KEY_BYTES_MAX as u64 + 64;

fn invalid(message: impl Into<String>) -> AeroError {
    AeroError::new(ErrorCode::QueryInvalid, message)
}

/// One comparison of a predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Equal => "=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Equal => ordering == Ordering::Equal,
            Comparison::Greater => ordering == Ordering::Greater,
            Comparison::GreaterOrEqual => ordering != Ordering::Less,
            Comparison::Less => ordering == Ordering::Less,
            Comparison::LessOrEqual => ordering != Ordering::Greater,
        }
    }
}

/// A predicate on one top-level indexed field: equality, or a range of one
/// or two bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicate {
    pub field: String,
    pub bounds: Vec<(Comparison, KeyValue)>,
}

impl Predicate {
    fn is_equality(&self) -> bool {
        matches!(self.bounds.as_slice(), [(Comparison::Equal, _)])
    }

    fn texts(&self) -> Vec<String> {
        self.bounds.iter().map(|(comparison, value)| format!("{} {} {}", self.field, comparison.symbol(), value.to_json())).collect()
    }

    /// The key range of the predicate in this field's tree.
    fn key_range(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let mut low = Bound::Unbounded;
        let mut high = Bound::Unbounded;
        for (comparison, value) in &self.bounds {
            let encoded = key::encode_to_vec(value);
            match comparison {
                Comparison::Equal => {
                    high = Bound::Excluded(key::prefix_successor(&encoded));
                    low = Bound::Included(encoded);
                }
                Comparison::Greater => low = Bound::Included(key::prefix_successor(&encoded)),
                Comparison::GreaterOrEqual => low = Bound::Included(encoded),
                Comparison::Less => high = Bound::Excluded(encoded),
                Comparison::LessOrEqual => high = Bound::Excluded(key::prefix_successor(&encoded)),
            }
        }
        (low, high)
    }

    /// True if the document's value satisfies every bound.
    fn matches(&self, document: &Map<String, Value>, field_type: &FieldType) -> bool {
        let Some(value) = document.get(&self.field).and_then(|value| KeyValue::from_json(value, *field_type == FieldType::Float)) else {
            return false;
        };
        self.bounds.iter().all(|(comparison, bound)| comparison.holds(compare_keys(&value, bound)))
    }
}

/// Orders two key values of one field by their key encodings.
fn compare_keys(left: &KeyValue, right: &KeyValue) -> Ordering {
    key::encode_to_vec(left).cmp(&key::encode_to_vec(right))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort {
    pub field: String,
    pub order: SortOrder,
}

/// A validated query.
#[derive(Clone, Debug)]
pub struct Query {
    pub predicates: Vec<Predicate>,
    pub limit: u64,
    pub sort: Option<Sort>,
}

fn key_value_for(field: &str, field_type: &FieldType, value: &Value, numeric_only: bool) -> Result<KeyValue> {
    let wrong = || {
        invalid(format!("value {value} does not match field '{field}' of type {}", field_type.name())).detail("field", field.to_string())
    };
    if numeric_only && !field_type.is_numeric() {
        return Err(
            invalid(format!("range operators need a numeric field; '{field}' is {}", field_type.name())).detail("field", field.to_string())
        );
    }
    match (field_type, value) {
        (FieldType::Int, Value::Number(number)) if number.is_i64() => Ok(KeyValue::Int(number.as_i64().unwrap_or_default())),
        // An integer for a float field must be exactly representable, as in documents.
        // One exactness rule for documents and filters (aerodb_format::json::exact_f64).
        (FieldType::Float, Value::Number(number)) => aerodb_format::json::exact_f64(number).map(KeyValue::Float).ok_or_else(wrong),
        // Filters are on indexed fields only, whose strings are capped: a
        // longer value could never match, so it is refused, not answered [].
        (FieldType::String, Value::String(text)) if text.len() > INDEXED_STRING_MAX_BYTES => Err(invalid(format!(
            "value for '{field}' is {} bytes; an indexed string holds at most {INDEXED_STRING_MAX_BYTES}, so nothing can match",
            text.len()
        ))
        .detail("field", field.to_string())
        .detail("size_max", INDEXED_STRING_MAX_BYTES as u64)),
        (FieldType::String, Value::String(text)) => Ok(KeyValue::String(text.clone())),
        (FieldType::Bool, Value::Bool(flag)) => Ok(KeyValue::Bool(*flag)),
        _ => Err(wrong()),
    }
}

fn parse_predicate(schema: &Schema, field: &str, condition: &Value) -> Result<Predicate> {
    if field.starts_with('$') {
        return Err(invalid(format!("operator '{field}' is not supported: a filter is an AND of field predicates"))
            .detail("field", field.to_string()));
    }
    let Some(definition) = schema.field(field) else {
        return Err(invalid(format!("unknown field '{field}' in filter")).detail("field", field.to_string()));
    };
    let field_type = &definition.field_type;
    if !field_type.is_scalar() {
        return Err(
            invalid(format!("field '{field}' is of type {} and cannot be filtered", field_type.name())).detail("field", field.to_string())
        );
    }
    let bounds = match condition {
        Value::Object(operators) => {
            if operators.is_empty() {
                return Err(
                    invalid(format!("range on '{field}' needs at least one of $gt, $gte, $lt, $lte")).detail("field", field.to_string())
                );
            }
            let mut bounds = Vec::with_capacity(2);
            for (operator, bound) in operators {
                let comparison = match operator.as_str() {
                    "$gt" => Comparison::Greater,
                    "$gte" => Comparison::GreaterOrEqual,
                    "$lt" => Comparison::Less,
                    "$lte" => Comparison::LessOrEqual,
                    _ => {
                        return Err(invalid(format!("unknown operator '{operator}' on field '{field}'")).detail("field", field.to_string()))
                    }
                };
                let lower = matches!(comparison, Comparison::Greater | Comparison::GreaterOrEqual);
                if bounds
                    .iter()
                    .any(|(other, _): &(Comparison, KeyValue)| matches!(other, Comparison::Greater | Comparison::GreaterOrEqual) == lower)
                {
                    return Err(invalid(format!("field '{field}' has two {} bounds", if lower { "lower" } else { "upper" }))
                        .detail("field", field.to_string()));
                }
                bounds.push((comparison, key_value_for(field, field_type, bound, true)?));
            }
            bounds.sort_by_key(|(comparison, _)| !matches!(comparison, Comparison::Greater | Comparison::GreaterOrEqual));
            if let [(lower, low), (upper, high)] = bounds.as_slice() {
                let ordering = compare_keys(low, high);
                let empty = ordering == Ordering::Greater
                    || (ordering == Ordering::Equal && (*lower == Comparison::Greater || *upper == Comparison::Less));
                if empty {
                    return Err(invalid(format!("the range on '{field}' is empty")).detail("field", field.to_string()));
                }
            }
            bounds
        }
        Value::Array(_) | Value::Null => {
            return Err(invalid(format!("field '{field}' must be compared with a scalar value or a range object"))
                .detail("field", field.to_string()))
        }
        scalar => vec![(Comparison::Equal, key_value_for(field, field_type, scalar, false)?)],
    };
    if !schema.is_indexed(field) {
        return Err(AeroError::new(
            ErrorCode::QueryUnindexedField,
            format!("field '{field}' is not indexed; every filtered field must be indexed"),
        )
        .detail("field", field.to_string()));
    }
    Ok(Predicate { field: field.to_string(), bounds })
}

fn parse_sort(schema: &Schema, sort: &Value) -> Result<Sort> {
    let (field, order) = match sort {
        Value::String(field) => (field.clone(), SortOrder::Ascending),
        Value::Object(object) => parse_sort_object(object)?,
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::Object(object) => parse_sort_object(object)?,
            _ => return Err(invalid("a sort array holds one {\"field\", \"order\"} object")),
        },
        _ => return Err(invalid("sort must be a field name, a {\"field\", \"order\"} object, or a one-element array of that object")),
    };
    match schema.field(&field) {
        None => Err(invalid(format!("unknown sort field '{field}'")).detail("field", field)),
        Some(_) if !schema.is_indexed(&field) => {
            Err(AeroError::new(ErrorCode::QuerySortNotIndexed, format!("sort field '{field}' is not indexed")).detail("field", field))
        }
        Some(_) => Ok(Sort { field, order }),
    }
}

fn parse_sort_object(object: &Map<String, Value>) -> Result<(String, SortOrder)> {
    for key in object.keys() {
        if key != "field" && key != "order" {
            return Err(invalid(format!("unknown sort key '{key}'")));
        }
    }
    let Some(Value::String(field)) = object.get("field") else {
        return Err(invalid("sort needs a \"field\" string"));
    };
    let order = match object.get("order") {
        None => SortOrder::Ascending,
        Some(Value::String(order)) if order == "asc" => SortOrder::Ascending,
        Some(Value::String(order)) if order == "desc" => SortOrder::Descending,
        Some(_) => return Err(invalid("sort order must be \"asc\" or \"desc\"")),
    };
    Ok((field.clone(), order))
}

/// Checks a query request's filter, limit and sort against the schema.
pub fn parse_query(schema: &Schema, request: &Map<String, Value>) -> Result<Query> {
    let filter = match request.get("filter") {
        Some(Value::Object(filter)) => filter,
        Some(_) => return Err(invalid("filter must be an object (an AND of field predicates)")),
        None => return Err(invalid("filter is required (use {} with a sort to scan an index)")),
    };
    let limit = match request.get("limit") {
        Some(Value::Number(number)) => match number.as_u64() {
            Some(limit) if (1..=QUERY_LIMIT_MAX).contains(&limit) => limit,
            _ => {
                return Err(AeroError::new(
                    ErrorCode::QueryLimitRequired,
                    format!("limit must be an integer from 1 to {QUERY_LIMIT_MAX}, found {number}"),
                ))
            }
        },
        Some(_) => {
            return Err(AeroError::new(ErrorCode::QueryLimitRequired, format!("limit must be an integer from 1 to {QUERY_LIMIT_MAX}")))
        }
        None => {
            return Err(AeroError::new(
                ErrorCode::QueryLimitRequired,
                format!("limit is required (an integer from 1 to {QUERY_LIMIT_MAX})"),
            ))
        }
    };
    let mut predicates = Vec::with_capacity(filter.len());
    for (field, condition) in filter {
        predicates.push(parse_predicate(schema, field, condition)?);
    }
    let sort = match request.get("sort") {
        None => None,
        Some(sort) => Some(parse_sort(schema, sort)?),
    };
    if predicates.is_empty() && sort.is_none() {
        return Err(AeroError::new(
            ErrorCode::QueryUnbounded,
            "an empty filter needs a sort on an indexed field (an index-ordered scan bounded by the limit)",
        )
        .invariant("Q1"));
    }
    Ok(Query { predicates, limit, sort })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanType {
    PkLookup,
    IndexEq,
    IndexRange,
    IndexScan,
}

impl ScanType {
    fn name(self) -> &'static str {
        match self {
            ScanType::PkLookup => "PK_LOOKUP",
            ScanType::IndexEq => "INDEX_EQ",
            ScanType::IndexRange => "INDEX_RANGE",
            ScanType::IndexScan => "INDEX_SCAN",
        }
    }
}

/// A chosen plan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub schema_id: String,
    pub schema_version: String,
    pub index: String,
    pub scan_type: ScanType,
    /// Position in `query.predicates` of the predicate the index serves.
    pub driving: Option<usize>,
    pub low: Bound<Vec<u8>>,
    pub high: Bound<Vec<u8>>,
    pub descending: bool,
    pub index_order: bool,
    pub max_scan: u64,
    pub memory_bytes_max: u64,
    pub query: Query,
}

/// Plans a query (rules in docs/QUERY.md). Fails with
/// `AERO_QUERY_UNBOUNDED` before any execution when a bound is exceeded.
pub fn plan(schema: &Schema, query: Query, indexes: &Indexes, document_bytes_max: u64, memory_bytes_limit: u64) -> Result<Plan> {
    let tree = |field: &str| TreeId::new(&schema.schema_id, &schema.schema_version, field);
    let index_rank = |field: &str| schema.indexes.iter().position(|index| index == field).unwrap_or(usize::MAX);
    let serves_sort = |field: &str| query.sort.as_ref().is_some_and(|sort| sort.field == field);
    let count = |predicate: &Predicate| -> Result<u64> {
        let (low, high) = predicate.key_range();
        indexes.count_range(&tree(&predicate.field), as_ref(&low), as_ref(&high))
    };
    let mut chosen: Option<(ScanType, usize, u64)> = None;
    if let Some(position) = query.predicates.iter().position(|predicate| predicate.field == "_id" && predicate.is_equality()) {
        chosen = Some((ScanType::PkLookup, position, count(&query.predicates[position])?));
    }
    for (scan_type, equality) in [(ScanType::IndexEq, true), (ScanType::IndexRange, false)] {
        if chosen.is_some() {
            break;
        }
        let mut best: Option<(u64, bool, usize, usize)> = None;
        for (position, predicate) in query.predicates.iter().enumerate() {
            if predicate.is_equality() != equality {
                continue;
            }
            // Fewest entries, then the index that serves the sort, then the schema's index order.
            let candidate = (count(predicate)?, !serves_sort(&predicate.field), index_rank(&predicate.field), position);
            if best.is_none_or(|best| (candidate.0, candidate.1, candidate.2) < (best.0, best.1, best.2)) {
                best = Some(candidate);
            }
        }
        if let Some((entries, _, _, position)) = best {
            chosen = Some((scan_type, position, entries));
        }
    }
    let (scan_type, driving, index, low, high, range_entries) = match chosen {
        Some((scan_type, position, entries)) => {
            let predicate = &query.predicates[position];
            let (low, high) = predicate.key_range();
            (scan_type, Some(position), predicate.field.clone(), low, high, entries)
        }
        None => {
            let Some(sort) = &query.sort else {
                return Err(AeroError::invariant_broken("a query with no predicate and no sort reached the planner"));
            };
            let entries = indexes.tree(&tree(&sort.field)).map(|tree| tree.entries).unwrap_or(0);
            (ScanType::IndexScan, None, sort.field.clone(), Bound::Unbounded, Bound::Unbounded, entries)
        }
    };
    let equality_driven = driving.is_some_and(|position| query.predicates[position].is_equality());
    let index_order = match &query.sort {
        None => true,
        Some(sort) => sort.field == index,
    };
    // Equal values are already in _id order, so an equality scan serves either direction ascending.
    let descending = index_order && !equality_driven && query.sort.as_ref().is_some_and(|sort| sort.order == SortOrder::Descending);
    let has_residual = query.predicates.len() > usize::from(driving.is_some());
    // An ascending index scan with nothing to filter stops at the limit; so
    // does a descending one on `_id`, whose values never tie.
    let stops_at_limit = scan_type == ScanType::IndexScan && !has_residual && (!descending || index == "_id");
    let max_scan = if stops_at_limit { range_entries.min(query.limit) } else { range_entries };
    // The executor holds at most 2 x limit documents while it sorts (it
    // sorts and cuts whenever the buffer fills), and `limit` otherwise.
    let results_max = max_scan.min(query.limit);
    let buffered_max = if query.sort.is_some() { max_scan.min(2 * query.limit) } else { results_max };
    let memory_bytes_max = buffered_max.saturating_mul(document_bytes_max.saturating_add(SORT_ENTRY_BYTES_MAX));
    if max_scan > QUERY_SCAN_MAX {
        return Err(AeroError::new(
            ErrorCode::QueryUnbounded,
            format!("the plan could visit {max_scan} index entries, over the limit of {QUERY_SCAN_MAX}"),
        )
        .invariant("Q2")
        .detail("max_scan", max_scan)
        .detail("scan_max", QUERY_SCAN_MAX)
        .detail("chosen_index", index));
    }
    if memory_bytes_max > memory_bytes_limit {
        return Err(AeroError::new(
            ErrorCode::QueryUnbounded,
            format!("the plan could need {memory_bytes_max} bytes of memory, over max_memory_bytes {memory_bytes_limit}"),
        )
        .invariant("Q3")
        .detail("memory_bytes_max", memory_bytes_max)
        .detail("max_memory_bytes", memory_bytes_limit)
        .detail("chosen_index", index));
    }
    Ok(Plan {
        schema_id: schema.schema_id.clone(),
        schema_version: schema.schema_version.clone(),
        index,
        scan_type,
        driving,
        low,
        high,
        descending,
        index_order,
        max_scan,
        memory_bytes_max,
        query,
    })
}

fn as_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Plan {
    fn residual(&self) -> impl Iterator<Item = &Predicate> {
        self.query
            .predicates
            .iter()
            .enumerate()
            .filter(move |(position, _)| Some(*position) != self.driving)
            .map(|(_, predicate)| predicate)
    }

    /// The explain document (same inputs, same bytes).
    pub fn explain(&self) -> Value {
        let mut predicates: Vec<String> = self.driving.map(|position| self.query.predicates[position].texts()).unwrap_or_default();
        let residual: Vec<String> = self.residual().flat_map(Predicate::texts).collect();
        predicates.extend(residual.iter().cloned());
        let sort = self
            .query
            .sort
            .as_ref()
            .map(|sort| json!({"field": sort.field, "order": if sort.order == SortOrder::Ascending { "asc" } else { "desc" }}));
        json!({
            "schema_id": self.schema_id,
            "schema_version": self.schema_version,
            "chosen_index": self.index,
            "scan_type": self.scan_type.name(),
            "scan_direction": if self.descending { "desc" } else { "asc" },
            "predicates": predicates,
            "residual": residual,
            "sort": sort,
            "sort_mode": if self.index_order { "index_order" } else { "in_memory" },
            "limit": self.query.limit,
            "max_scan": self.max_scan,
            "memory_bytes_max": self.memory_bytes_max,
            "bounded": true,
        })
    }

    /// Runs the plan: walks the range, fetches and checks each document,
    /// sorts if needed, stops at the limit.
    pub fn execute(&self, schema: &Schema, indexes: &Indexes, heap: &Heap) -> Result<Vec<Value>> {
        let tree = TreeId::new(&self.schema_id, &self.schema_version, &self.index);
        let start = match (&self.low, &self.high, self.descending) {
            (Bound::Included(low), _, false) => Some(low.as_slice()),
            (_, Bound::Excluded(high), true) => Some(high.as_slice()),
            _ => None,
        };
        let mut cursor = indexes.cursor(&tree, start, self.descending)?;
        let limit = self.query.limit as usize;
        let sort_type = self.query.sort.as_ref().and_then(|sort| schema.field(&sort.field)).map(|field| field.field_type.clone());
        // (sort key, _id key, document) of every match kept.
        let mut matches: Vec<(Vec<u8>, Vec<u8>, Map<String, Value>)> = Vec::new();
        let mut visited = 0u64;
        let presorted = self.index_order && !self.descending;
        while let Some((entry_key, locator)) = indexes.next(&mut cursor)? {
            let inside = match (&self.low, &self.high) {
                (Bound::Included(low), _) if entry_key.as_slice() < low.as_slice() => false,
                (_, Bound::Excluded(high)) if entry_key.as_slice() >= high.as_slice() => false,
                _ => true,
            };
            if !inside {
                break;
            }
            visited += 1;
            if visited > self.max_scan {
                if self.max_scan < self.query.limit || self.scan_type != ScanType::IndexScan {
                    return Err(
                        AeroError::invariant_broken(format!("scan visited more than max_scan {} entries", self.max_scan)).invariant("Q2")
                    );
                }
                break;
            }
            let document = fetch(heap, locator, &self.schema_id, &self.schema_version)?;
            if !self.residual().all(|predicate| {
                schema.field(&predicate.field).is_some_and(|definition| predicate.matches(&document, &definition.field_type))
            }) {
                continue;
            }
            // A sorted query returns only documents that hold the sort
            // field: the sort index has no entry for a document lacking it.
            // An ascending scan of the sort field's own index meets the
            // documents in (value, _id) order already: no key to compute.
            let sort_key = match (&self.query.sort, &sort_type) {
                _ if presorted => Vec::new(),
                (Some(sort), Some(field_type)) => {
                    match document.get(&sort.field).and_then(|value| KeyValue::from_json(value, *field_type == FieldType::Float)) {
                        Some(value) => key::encode_to_vec(&value),
                        None => continue,
                    }
                }
                _ => Vec::new(),
            };
            // The _id key orders ties of a sort; without a sort nothing is ordered.
            let id_key = if self.query.sort.is_some() && !presorted {
                document.get("_id").and_then(|id| KeyValue::from_json(id, false)).map(|id| key::encode_to_vec(&id)).unwrap_or_default()
            } else {
                Vec::new()
            };
            // Keep at most 2 x limit documents: sort and cut when full.
            if self.query.sort.is_some() && !presorted && matches.len() >= 2 * limit {
                self.sort_and_cut(&mut matches, limit);
            }
            if self.index_order && matches.len() >= limit {
                // A descending scan keeps reading the last group of equal sort
                // values so that ties can be ordered by _id ascending.
                if !self.descending || matches.last().is_some_and(|last| last.0 != sort_key) {
                    break;
                }
            }
            matches.push((sort_key, id_key, document));
        }
        if presorted {
            matches.truncate(limit);
        } else {
            self.sort_and_cut(&mut matches, limit);
        }
        Ok(matches.into_iter().map(|(_, _, document)| Value::Object(document)).collect())
    }

    /// Orders matches by the sort (ties by `_id` ascending) and keeps `limit`.
    fn sort_and_cut(&self, matches: &mut Vec<(Vec<u8>, Vec<u8>, Map<String, Value>)>, limit: usize) {
        if let Some(sort) = &self.query.sort {
            matches.sort_by(|left, right| {
                let by_value = match sort.order {
                    SortOrder::Ascending => left.0.cmp(&right.0),
                    SortOrder::Descending => right.0.cmp(&left.0),
                };
                by_value.then_with(|| left.1.cmp(&right.1))
            });
        }
        matches.truncate(limit);
    }
}

/// Reads and decodes the document at `locator`, checking it belongs to the
/// expected schema version.
pub fn fetch(heap: &Heap, locator: Locator, schema_id: &str, schema_version: &str) -> Result<Map<String, Value>> {
    let bytes = heap.record_bytes(locator)?;
    let undecodable = |error: aerodb_format::DecodeError| {
        AeroError::new(
            ErrorCode::DataCorruption,
            format!("document at page {} slot {} does not decode: {error}", locator.page, locator.slot),
        )
        .detail("page", locator.page.0)
        .detail("slot", locator.slot)
    };
    match aerodb_format::document::decode_record_of(&bytes, schema_id, schema_version).map_err(undecodable)? {
        Some(body) => Ok(body),
        None => {
            let record = decode_record(&bytes).map_err(undecodable)?;
            Err(AeroError::new(
                ErrorCode::IndexCorruption,
                format!("index of {schema_id}/{schema_version} points at a document of {}/{}", record.schema_id, record.schema_version),
            ))
        }
    }
}
