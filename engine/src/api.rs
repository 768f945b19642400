//! The typed embedding API: schemas, collections, writes of any
//! `serde::Serialize` value, a query builder returning
//! `serde::Deserialize` values, typed plans and batches.
//!
//! Every call here is a thin translation to the JSON request of
//! docs/API_SPEC.md, run through the one request path of
//! [`Database::execute_batch`]: the typed and the JSON paths share the
//! validation, the planner, the executor and the error codes, and store the
//! same bytes (`engine/tests/typed.rs` checks both).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::db::{Database, Mode, OpenOptions};
use crate::error::{AeroError, ErrorCode, Result};

/// The limits of a database named by its folder (the values of a config
/// file other than `data_dir`; docs/CONFIG.md). Frozen at creation: opening
/// with other values is `AERO_CONFIG_IMMUTABLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Past this many WAL bytes every start and every write logs a warning.
    pub max_wal_size_bytes: u64,
    /// The memory bound of queries (and of their sort buffers).
    pub max_memory_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_wal_size_bytes: aerodb_format::config::DEFAULT_MAX_WAL_SIZE_BYTES,
            max_memory_bytes: aerodb_format::config::DEFAULT_MAX_MEMORY_BYTES,
        }
    }
}

/// A schema version, the handle every typed write and query names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Collection {
    schema_id: String,
    schema_version: String,
}

impl Collection {
    /// The collection of schema `schema_id`, version `schema_version`.
    pub fn new(schema_id: impl Into<String>, schema_version: impl Into<String>) -> Collection {
        Collection { schema_id: schema_id.into(), schema_version: schema_version.into() }
    }

    /// The schema id.
    pub fn schema_id(&self) -> &str {
        &self.schema_id
    }

    /// The schema version.
    pub fn schema_version(&self) -> &str {
        &self.schema_version
    }

    fn request(&self, op: &str) -> Map<String, Value> {
        let mut request = Map::with_capacity(4);
        request.insert("op".into(), Value::from(op));
        request.insert("schema_id".into(), Value::from(self.schema_id.as_str()));
        request.insert("schema_version".into(), Value::from(self.schema_version.as_str()));
        request
    }

    fn write(&self, op: &str, document: &impl Serialize) -> Result<Value> {
        let mut request = self.request(op);
        request.insert("document".into(), to_json(document, "document")?);
        Ok(Value::Object(request))
    }

    fn delete_request(&self, id: &impl Serialize) -> Result<Value> {
        let mut request = self.request("delete");
        request.insert("_id".into(), to_json(id, "_id")?);
        Ok(Value::Object(request))
    }
}

/// A value as JSON. A value JSON cannot hold (a map with non-string keys)
/// is refused with the code its place would get. serde_json writes a NaN or
/// an infinity as `null`, and the schema check refuses `null` everywhere,
/// so such a float is refused with its field's path; likewise an `Option`
/// that is `None` must be skipped (`#[serde(skip_serializing_if =
/// "Option::is_none")]`) to leave an optional field out.
fn to_json(value: &impl Serialize, place: &str) -> Result<Value> {
    let code = if place == "document" { ErrorCode::SchemaValidationFailed } else { ErrorCode::QueryInvalid };
    serde_json::to_value(value).map_err(|error| AeroError::new(code, format!("{place} cannot be written as JSON: {error}")))
}

/// The type of a schema field (docs/SCHEMA.md).
#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    /// A UTF-8 string.
    String,
    /// A signed 64-bit integer.
    Int,
    /// A double.
    Float,
    /// `true` or `false`.
    Bool,
    /// A nested object with its own fields, in order.
    Object(Vec<(String, Field)>),
    /// An array whose elements all have one type.
    Array(Box<Field>),
}

/// A schema field: its type, whether it is required, a description.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    field_type: FieldType,
    required: bool,
    description: Option<String>,
}

impl Field {
    /// A required field of `field_type`.
    pub fn new(field_type: FieldType) -> Field {
        Field { field_type, required: true, description: None }
    }

    /// A required string field.
    pub fn string() -> Field {
        Field::new(FieldType::String)
    }

    /// A required integer field.
    pub fn int() -> Field {
        Field::new(FieldType::Int)
    }

    /// A required float field.
    pub fn float() -> Field {
        Field::new(FieldType::Float)
    }

    /// A required boolean field.
    pub fn bool() -> Field {
        Field::new(FieldType::Bool)
    }

    /// A required object field with these nested fields.
    pub fn object<N: Into<String>>(fields: impl IntoIterator<Item = (N, Field)>) -> Field {
        Field::new(FieldType::Object(fields.into_iter().map(|(name, field)| (name.into(), field)).collect()))
    }

    /// A required array field whose elements are `items`.
    pub fn array(items: Field) -> Field {
        Field::new(FieldType::Array(Box::new(items)))
    }

    /// Makes the field optional (it may be absent from a document).
    pub fn optional(mut self) -> Field {
        self.required = false;
        self
    }

    /// Adds a description.
    pub fn description(mut self, text: impl Into<String>) -> Field {
        self.description = Some(text.into());
        self
    }

    fn to_json(&self, element: bool) -> Value {
        let mut object = Map::new();
        let type_name = match &self.field_type {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Object(_) => "object",
            FieldType::Array(_) => "array",
        };
        object.insert("type".into(), Value::from(type_name));
        // An array's element has no `required` key (docs/SCHEMA.md).
        if !self.required && !element {
            object.insert("required".into(), Value::from(false));
        }
        if let Some(description) = &self.description {
            object.insert("description".into(), Value::from(description.as_str()));
        }
        match &self.field_type {
            FieldType::Object(fields) => {
                object.insert("fields".into(), fields_json(fields));
            }
            FieldType::Array(items) => {
                object.insert("items".into(), items.to_json(true));
            }
            _ => {}
        }
        Value::Object(object)
    }
}

fn fields_json(fields: &[(String, Field)]) -> Value {
    Value::Object(fields.iter().map(|(name, field)| (name.clone(), field.to_json(false))).collect())
}

/// A schema version described in code: the same content as a schema file
/// (docs/SCHEMA.md), installed with [`Database::install_schema_def`].
#[derive(Clone, Debug, PartialEq)]
pub struct SchemaDef {
    schema_id: String,
    schema_version: String,
    description: Option<String>,
    fields: Vec<(String, Field)>,
    indexes: Vec<String>,
}

impl SchemaDef {
    /// An empty schema `schema_id` version `schema_version` (add an `_id`
    /// field: every schema needs one).
    pub fn new(schema_id: impl Into<String>, schema_version: impl Into<String>) -> SchemaDef {
        SchemaDef {
            schema_id: schema_id.into(),
            schema_version: schema_version.into(),
            description: None,
            fields: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// Adds a top-level field (fields keep the order they are added in).
    pub fn field(mut self, name: impl Into<String>, field: Field) -> SchemaDef {
        self.fields.push((name.into(), field));
        self
    }

    /// Indexes a top-level field (`_id` is always indexed).
    pub fn index(mut self, name: impl Into<String>) -> SchemaDef {
        self.indexes.push(name.into());
        self
    }

    /// Adds a description.
    pub fn description(mut self, text: impl Into<String>) -> SchemaDef {
        self.description = Some(text.into());
        self
    }

    /// The collection this schema version defines.
    pub fn collection(&self) -> Collection {
        Collection::new(self.schema_id.clone(), self.schema_version.clone())
    }

    /// The schema file's text, as [`Database::install_schema_def`] installs it.
    pub fn to_json_text(&self) -> String {
        let mut object = Map::new();
        object.insert("schema_id".into(), Value::from(self.schema_id.as_str()));
        object.insert("schema_version".into(), Value::from(self.schema_version.as_str()));
        if let Some(description) = &self.description {
            object.insert("description".into(), Value::from(description.as_str()));
        }
        object.insert("fields".into(), fields_json(&self.fields));
        object.insert("indexes".into(), Value::from(self.indexes.clone()));
        let mut text = serde_json::to_string_pretty(&Value::Object(object)).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// What [`Database::install_schema`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaInstalled {
    /// The collection the schema defines.
    pub collection: Collection,
    /// `false` when this exact schema was already installed (a no-op).
    pub installed: bool,
}

/// Sort order of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A query, built without writing JSON (docs/QUERY.md has the rules: a
/// limit is required, filters name indexed fields, every query is bounded).
///
/// Predicates on one field are combined (`gte` and `lt` on `age` make one
/// range). A value that cannot be written as JSON makes the query fail with
/// `AERO_QUERY_INVALID` when it runs.
#[derive(Clone, Debug)]
pub struct Query {
    collection: Collection,
    filter: Map<String, Value>,
    sort: Option<(String, Order)>,
    limit: Option<u64>,
    error: Option<AeroError>,
}

impl Query {
    /// A query of `collection` with an empty filter and no limit yet.
    pub fn new(collection: &Collection) -> Query {
        Query { collection: collection.clone(), filter: Map::new(), sort: None, limit: None, error: None }
    }

    fn predicate(mut self, field: &str, operator: Option<&str>, value: &impl Serialize) -> Query {
        let value = match to_json(value, "filter value") {
            Ok(value) => value,
            Err(error) => {
                self.error.get_or_insert(error);
                return self;
            }
        };
        match operator {
            None => {
                self.filter.insert(field.to_string(), value);
            }
            Some(operator) => {
                let entry = self.filter.entry(field.to_string()).or_insert_with(|| Value::Object(Map::new()));
                match entry {
                    Value::Object(range) => {
                        range.insert(operator.to_string(), value);
                    }
                    _ => {
                        // Equality and a range on one field: the request says both, the planner refuses it.
                        *entry = json!({ operator: value });
                    }
                }
            }
        }
        self
    }

    /// `field` equals `value`.
    pub fn eq(self, field: &str, value: impl Serialize) -> Query {
        self.predicate(field, None, &value)
    }

    /// `field` > `value`.
    pub fn gt(self, field: &str, value: impl Serialize) -> Query {
        self.predicate(field, Some("$gt"), &value)
    }

    /// `field` ≥ `value`.
    pub fn gte(self, field: &str, value: impl Serialize) -> Query {
        self.predicate(field, Some("$gte"), &value)
    }

    /// `field` < `value`.
    pub fn lt(self, field: &str, value: impl Serialize) -> Query {
        self.predicate(field, Some("$lt"), &value)
    }

    /// `field` ≤ `value`.
    pub fn lte(self, field: &str, value: impl Serialize) -> Query {
        self.predicate(field, Some("$lte"), &value)
    }

    /// Sorts by an indexed field.
    pub fn sort(mut self, field: &str, order: Order) -> Query {
        self.sort = Some((field.to_string(), order));
        self
    }

    /// At most `limit` documents (required; 1 to 10,000).
    pub fn limit(mut self, limit: u64) -> Query {
        self.limit = Some(limit);
        self
    }

    /// The JSON request this query is (`op` is `query` or `explain`).
    pub fn to_request(&self, op: &str) -> Result<Value> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let mut request = self.collection.request(op);
        request.insert("filter".into(), Value::Object(self.filter.clone()));
        if let Some(limit) = self.limit {
            request.insert("limit".into(), Value::from(limit));
        }
        if let Some((field, order)) = &self.sort {
            let order = if *order == Order::Asc { "asc" } else { "desc" };
            request.insert("sort".into(), json!({"field": field, "order": order}));
        }
        Ok(Value::Object(request))
    }
}

/// The sort of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PlanSort {
    /// The sort field.
    pub field: String,
    /// Its order.
    pub order: Order,
}

/// A query plan, as `explain` gives it (docs/QUERY.md defines each field).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Explain {
    /// The schema id queried.
    pub schema_id: String,
    /// The schema version queried.
    pub schema_version: String,
    /// The index the scan walks.
    pub chosen_index: String,
    /// `PK_LOOKUP`, `INDEX_EQ`, `INDEX_RANGE` or `INDEX_SCAN`.
    pub scan_type: String,
    /// `asc` or `desc`.
    pub scan_direction: String,
    /// Every predicate, the driving one first, as text.
    pub predicates: Vec<String>,
    /// The predicates checked on each fetched document.
    pub residual: Vec<String>,
    /// The requested sort.
    pub sort: Option<PlanSort>,
    /// `index_order` or `in_memory`.
    pub sort_mode: String,
    /// The query's limit.
    pub limit: u64,
    /// The proven bound on index entries visited.
    pub max_scan: u64,
    /// The proven bound on the memory the query holds.
    pub memory_bytes_max: u64,
    /// Always `true`: every plan is bounded before it runs.
    pub bounded: bool,
}

/// Writes to run together with [`Database::write_batch`]: one group commit
/// (one WAL append and one fdatasync) for all of them.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    requests: Vec<std::result::Result<Value, AeroError>>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds an insert.
    pub fn insert(&mut self, collection: &Collection, document: &impl Serialize) -> &mut Batch {
        self.requests.push(collection.write("insert", document));
        self
    }

    /// Adds an update (a whole-document replace).
    pub fn update(&mut self, collection: &Collection, document: &impl Serialize) -> &mut Batch {
        self.requests.push(collection.write("update", document));
        self
    }

    /// Adds a delete by `_id`.
    pub fn delete(&mut self, collection: &Collection, id: &impl Serialize) -> &mut Batch {
        self.requests.push(collection.delete_request(id));
        self
    }

    /// Number of writes in the batch.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

impl Database {
    /// Creates a new database in the folder `data_dir` (which must not
    /// exist) and opens it: `aerodb init` then a boot, with no config file.
    pub fn create(data_dir: &Path, options: Options) -> Result<Database> {
        let config = crate::config::for_data_dir(data_dir, options.max_wal_size_bytes, options.max_memory_bytes)?;
        crate::db::init_config(&config)?;
        Database::open_config(config, OpenOptions::default())
    }

    /// Opens the database in the folder `data_dir` (the boot of
    /// docs/BOOT.md), with the options it was created with.
    pub fn open_dir(data_dir: &Path, options: Options) -> Result<Database> {
        let config = crate::config::for_data_dir(data_dir, options.max_wal_size_bytes, options.max_memory_bytes)?;
        Database::open_config(config, OpenOptions::default())
    }

    /// Installs a schema version from its JSON text (a schema file's
    /// content), with the validation, hashing and immutability of `aerodb
    /// schema add`, under this database's lock. The same content again is a
    /// no-op (`installed: false`); other content for an existing version is
    /// `AERO_SCHEMA_IMMUTABLE`; an invalid schema is `AERO_SCHEMA_INVALID`.
    /// The version can be used at once.
    pub fn install_schema(&mut self, schema_json: &str) -> Result<SchemaInstalled> {
        if let Some(fatal) = self.fatal_error() {
            return Err(fatal.clone());
        }
        let paths = self.paths().clone();
        let source = paths.schemas.join("(install_schema)");
        let (schema, installed) = crate::catalog::install_bytes(&paths, schema_json.as_bytes(), &source)?;
        let collection = Collection::new(schema.schema_id.clone(), schema.schema_version.clone());
        if installed || self.catalog_get(&schema.schema_id, &schema.schema_version).is_none() {
            self.add_schema(schema)?;
        }
        Ok(SchemaInstalled { collection, installed })
    }

    /// Installs a schema described in code (see [`SchemaDef`]).
    pub fn install_schema_def(&mut self, schema: &SchemaDef) -> Result<SchemaInstalled> {
        self.install_schema(&schema.to_json_text())
    }

    /// Inserts `document` (its serialisation must be a JSON object that
    /// matches the schema; its field order is the order stored). Returns
    /// once the write is durable. A document with an `_id` already stored is
    /// `AERO_WRITE_DUPLICATE_ID`.
    pub fn insert(&mut self, collection: &Collection, document: &impl Serialize) -> Result<()> {
        let request = collection.write("insert", document)?;
        self.execute(&request, Mode::Query).map(drop)
    }

    /// Replaces the stored document with `document`'s `_id`
    /// (`AERO_WRITE_NOT_FOUND` if there is none).
    pub fn update(&mut self, collection: &Collection, document: &impl Serialize) -> Result<()> {
        let request = collection.write("update", document)?;
        self.execute(&request, Mode::Query).map(drop)
    }

    /// Deletes the document with this `_id` (a missing one is not an error).
    pub fn delete(&mut self, collection: &Collection, id: &impl Serialize) -> Result<()> {
        let request = collection.delete_request(id)?;
        self.execute(&request, Mode::Query).map(drop)
    }

    /// Runs the writes of `batch` in order as one group commit; the result
    /// of each, in order (see [`Database::execute_batch`] for the rules).
    pub fn write_batch(&mut self, batch: &Batch) -> Vec<Result<()>> {
        let mut results: Vec<Option<Result<()>>> = Vec::with_capacity(batch.requests.len());
        let mut requests = Vec::with_capacity(batch.requests.len());
        for request in &batch.requests {
            match request {
                Ok(request) => {
                    requests.push(request.clone());
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error.clone()))),
            }
        }
        let mut answers = self.execute_batch(&requests, Mode::Query).into_iter();
        results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| answers.next().map(|answer| answer.map(drop)).unwrap_or(Ok(()))))
            .collect()
    }

    /// Runs a query; the documents as JSON objects, exactly as stored.
    pub fn find_json(&mut self, query: &Query) -> Result<Vec<Value>> {
        match self.execute(&query.to_request("query")?, Mode::Query)? {
            Value::Array(documents) => Ok(documents),
            _ => Err(AeroError::invariant_broken("a query answered with something other than an array")),
        }
    }

    /// Runs a query; the documents deserialised as `T`. A document that
    /// does not deserialise is `AERO_SCHEMA_VALIDATION_FAILED` (the type
    /// does not match the schema).
    pub fn find<T: DeserializeOwned>(&mut self, query: &Query) -> Result<Vec<T>> {
        self.find_json(query)?.into_iter().map(from_document).collect()
    }

    /// The document with this `_id`, if any.
    pub fn get<T: DeserializeOwned>(&mut self, collection: &Collection, id: impl Serialize) -> Result<Option<T>> {
        let query = Query::new(collection).eq("_id", id).limit(1);
        Ok(self.find(&query)?.into_iter().next())
    }

    /// The plan of a query, without running it.
    pub fn explain(&mut self, query: &Query) -> Result<Explain> {
        let plan = self.execute(&query.to_request("explain")?, Mode::Query)?;
        serde_json::from_value(plan).map_err(|error| AeroError::invariant_broken(format!("a plan does not match `Explain`: {error}")))
    }
}

fn from_document<T: DeserializeOwned>(document: Value) -> Result<T> {
    serde_json::from_value(document).map_err(|error| {
        AeroError::new(ErrorCode::SchemaValidationFailed, format!("a stored document does not deserialise as the requested type: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_def_is_the_schema_file_text() {
        let schema = SchemaDef::new("user", "v1")
            .field("_id", Field::string())
            .field("tags", Field::array(Field::string()).optional())
            .field("dims", Field::object([("w", Field::int()), ("h", Field::float().optional())]).description("size"))
            .index("_id");
        let parsed = aerodb_format::schema::Schema::parse(schema.to_json_text().as_bytes()).unwrap();
        assert_eq!(parsed.schema_id, "user");
        assert_eq!(parsed.fields.len(), 3);
        assert!(!parsed.fields[1].1.required);
    }

    #[test]
    fn predicates_on_one_field_make_one_range() {
        let query = Query::new(&Collection::new("user", "v1")).gte("age", 20).lt("age", 30).limit(5).sort("age", Order::Desc);
        assert_eq!(
            query.to_request("query").unwrap(),
            json!({"op": "query", "schema_id": "user", "schema_version": "v1", "filter": {"age": {"$gte": 20, "$lt": 30}}, "limit": 5,
                "sort": {"field": "age", "order": "desc"}})
        );
    }
}
