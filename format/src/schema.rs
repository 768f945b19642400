//! Schema definition files (`metadata/schemas/<schema_id>_<schema_version>.json`)
//! and validation of documents against one schema version.
//!
//! A schema is strict: every declared field is required unless it says
//! `"required": false`, no undeclared field is accepted at any depth, null is
//! never accepted, and types are exact (see `docs/SCHEMA.md`). Validation
//! returns the document as it will be stored: ints given for float fields
//! become floats; field order is kept.

use serde_json::{Map, Number, Value};

use crate::config::type_name;
use crate::key::{self, KeyValue};
use crate::{IDENTIFIER_LEN_MAX, INDEXED_STRING_MAX_BYTES, JSON_DEPTH_MAX};

/// The type of a field or array item.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    String,
    Int,
    Float,
    Bool,
    Object(Vec<(String, FieldDef)>),
    Array(Box<FieldDef>),
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Object(_) => "object",
            FieldType::Array(_) => "array",
        }
    }

    pub fn is_scalar(&self) -> bool {
        matches!(self, FieldType::String | FieldType::Int | FieldType::Float | FieldType::Bool)
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, FieldType::Int | FieldType::Float)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub field_type: FieldType,
    pub required: bool,
}

/// A parsed schema version.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub schema_id: String,
    pub schema_version: String,
    pub description: Option<String>,
    /// Top-level fields in declaration order.
    pub fields: Vec<(String, FieldDef)>,
    /// Indexed fields: `_id` first, then the `indexes` list in its order.
    pub indexes: Vec<String>,
    /// For each entry of `indexes`, its position in `fields`.
    index_positions: Vec<usize>,
}

/// A schema file that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document that breaks its schema: where, what was expected, what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub expected: String,
    pub got: String,
}

/// True for 1-64 characters of `[A-Za-z0-9_]`.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.len() <= IDENTIFIER_LEN_MAX && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The file name a schema version lives in.
pub fn file_name(schema_id: &str, schema_version: &str) -> String {
    format!("{schema_id}_{schema_version}.json")
}

fn error<T>(message: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError(message.into()))
}

fn check_keys(object: &Map<String, Value>, allowed: &[&str], context: &str) -> Result<(), SchemaError> {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            return error(format!("{context}: unknown key '{key}'"));
        }
    }
    Ok(())
}

fn parse_type(object: &Map<String, Value>, context: &str, depth: usize) -> Result<FieldType, SchemaError> {
    if depth > JSON_DEPTH_MAX {
        return error(format!("{context}: nesting deeper than {JSON_DEPTH_MAX}"));
    }
    let Some(Value::String(name)) = object.get("type") else {
        return error(format!("{context}: 'type' must be one of string, int, float, bool, object, array"));
    };
    let field_type = match name.as_str() {
        "string" => FieldType::String,
        "int" => FieldType::Int,
        "float" => FieldType::Float,
        "bool" => FieldType::Bool,
        "object" => match object.get("fields") {
            Some(Value::Object(fields)) => FieldType::Object(parse_fields(fields, context, depth + 1)?),
            _ => return error(format!("{context}: an object field needs 'fields', an object")),
        },
        "array" => match object.get("items") {
            Some(Value::Object(items)) => {
                let item_context = format!("{context}[]");
                check_keys(items, &["type", "fields", "items", "description"], &item_context)?;
                check_description(items, &item_context)?;
                FieldType::Array(Box::new(FieldDef { field_type: parse_type(items, &item_context, depth + 1)?, required: true }))
            }
            _ => return error(format!("{context}: an array field needs 'items', an object with a 'type'")),
        },
        other => return error(format!("{context}: unknown type '{other}'")),
    };
    if !matches!(field_type, FieldType::Object(_)) && object.contains_key("fields") {
        return error(format!("{context}: 'fields' is only for type object"));
    }
    if !matches!(field_type, FieldType::Array(_)) && object.contains_key("items") {
        return error(format!("{context}: 'items' is only for type array"));
    }
    Ok(field_type)
}

fn check_description(object: &Map<String, Value>, context: &str) -> Result<(), SchemaError> {
    match object.get("description") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => error(format!("{context}: 'description' must be a string")),
    }
}

fn parse_fields(fields: &Map<String, Value>, context: &str, depth: usize) -> Result<Vec<(String, FieldDef)>, SchemaError> {
    let mut parsed = Vec::with_capacity(fields.len());
    for (name, definition) in fields {
        let field_context = if context.is_empty() { name.clone() } else { format!("{context}.{name}") };
        if !is_identifier(name) {
            return error(format!("field name '{field_context}' must be 1-64 characters of [A-Za-z0-9_]"));
        }
        let Value::Object(definition) = definition else {
            return error(format!("{field_context}: a field definition must be an object"));
        };
        check_keys(definition, &["type", "required", "fields", "items", "description"], &field_context)?;
        check_description(definition, &field_context)?;
        let required = match definition.get("required") {
            None => true,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => return error(format!("{field_context}: 'required' must be true or false")),
        };
        parsed.push((name.clone(), FieldDef { field_type: parse_type(definition, &field_context, depth)?, required }));
    }
    Ok(parsed)
}

impl Schema {
    /// Parses and checks a schema file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Schema, SchemaError> {
        let value: Value = match crate::json::parse_file(bytes) {
            Ok(value) => value,
            Err(parse_error) => return error(format!("not valid JSON: {parse_error}")),
        };
        let Value::Object(object) = value else { return error("a schema must be a JSON object") };
        check_keys(&object, &["schema_id", "schema_version", "description", "fields", "indexes"], "schema")?;
        let mut names = Vec::with_capacity(2);
        for key in ["schema_id", "schema_version"] {
            match object.get(key) {
                Some(Value::String(text)) if is_identifier(text) => names.push(text.clone()),
                Some(_) => return error(format!("{key} must be 1-64 characters of [A-Za-z0-9_]")),
                None => return error(format!("{key} is required")),
            }
        }
        check_description(&object, "schema")?;
        let description = object.get("description").and_then(Value::as_str).map(str::to_owned);
        let fields = match object.get("fields") {
            Some(Value::Object(fields)) => parse_fields(fields, "", 1)?,
            _ => return error("'fields' is required and must be an object"),
        };
        match fields.iter().find(|(name, _)| name == "_id") {
            None => return error("_id must be declared"),
            Some((_, definition)) => {
                if !definition.required {
                    return error("_id must be required");
                }
                if !matches!(definition.field_type, FieldType::String | FieldType::Int) {
                    return error(format!("_id must be of type string or int, not {}", definition.field_type.name()));
                }
            }
        }
        let mut indexes = vec!["_id".to_string()];
        match object.get("indexes") {
            None => {}
            Some(Value::Array(listed)) => {
                for entry in listed {
                    let Value::String(name) = entry else { return error("indexes must list field names (strings)") };
                    let Some((_, definition)) = fields.iter().find(|(field, _)| field == name) else {
                        return error(format!("indexed field '{name}' is not declared"));
                    };
                    if !definition.field_type.is_scalar() {
                        return error(format!(
                            "indexed field '{name}' is of type {}; only string, int, float and bool fields can be indexed",
                            definition.field_type.name()
                        ));
                    }
                    if listed.iter().filter(|other| other.as_str() == Some(name)).count() > 1 {
                        return error(format!("field '{name}' is listed twice in indexes"));
                    }
                    if name == "_id" {
                        continue;
                    }
                    if indexes.contains(name) {
                        return error(format!("field '{name}' is listed twice in indexes"));
                    }
                    indexes.push(name.clone());
                }
            }
            Some(_) => return error("indexes must be an array of field names"),
        }
        let [schema_id, schema_version]: [String; 2] = match names.try_into() {
            Ok(pair) => pair,
            Err(_) => return error("schema_id and schema_version are required"),
        };
        let index_positions = indexes.iter().filter_map(|index| fields.iter().position(|(name, _)| name == index)).collect::<Vec<_>>();
        if index_positions.len() != indexes.len() {
            return error("an indexed field is not declared");
        }
        Ok(Schema { schema_id, schema_version, description, fields, indexes, index_positions })
    }

    /// For each entry of `indexes`, its position in `fields`.
    pub fn index_positions(&self) -> &[usize] {
        &self.index_positions
    }

    /// Calls `visit(position, key)` with the index entry key of every index
    /// of this schema (in `indexes` order) that holds an entry for
    /// `document`: the field's key encoding followed by the `_id`'s, or the
    /// `_id`'s alone for the `_id` index (FORMAT.md, "Index keys"). An absent
    /// optional field has no entry. Fails on a document without a string or
    /// int `_id` or with a non-scalar indexed value (validation rules both out).
    pub fn for_each_index_key(&self, document: &Map<String, Value>, mut visit: impl FnMut(usize, &[u8])) -> Result<(), String> {
        let id = document
            .get("_id")
            .and_then(|id| KeyValue::from_json(id, false))
            .filter(|id| matches!(id, KeyValue::Int(_) | KeyValue::String(_)));
        let Some(id) = id else {
            return Err("document has no string or int _id".into());
        };
        let mut id_key = Vec::with_capacity(16);
        key::encode(&mut id_key, &id);
        let mut entry = Vec::with_capacity(64);
        for (position, field) in self.indexes.iter().enumerate() {
            entry.clear();
            if field != "_id" {
                let Some(value) = document.get(field) else { continue };
                let as_float = self.field(field).is_some_and(|definition| definition.field_type == FieldType::Float);
                let Some(value) = KeyValue::from_json(value, as_float) else {
                    return Err(format!("indexed field '{field}' holds a non-scalar value"));
                };
                key::encode(&mut entry, &value);
            }
            entry.extend_from_slice(&id_key);
            visit(position, &entry);
        }
        Ok(())
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|(field, _)| field == name).map(|(_, definition)| definition)
    }

    pub fn is_indexed(&self, name: &str) -> bool {
        self.indexes.iter().any(|index| index == name)
    }

    /// Validates a document; returns it as it will be stored.
    /// Checks a document as stored (already validated and normalized: float
    /// fields hold floats) without copying it; the same rules as
    /// [`Schema::validate`]. Used by recovery on every stored document.
    pub fn check_stored(&self, document: &Map<String, Value>) -> Result<(), ValidationError> {
        check_object(&self.fields, document, 1)?;
        self.check_indexed_strings(document)
    }

    fn check_indexed_strings(&self, document: &Map<String, Value>) -> Result<(), ValidationError> {
        for name in &self.indexes {
            if let Some(Value::String(text)) = document.get(name) {
                if text.len() > INDEXED_STRING_MAX_BYTES {
                    return Err(ValidationError {
                        path: name.clone(),
                        expected: format!("string of at most {INDEXED_STRING_MAX_BYTES} bytes (indexed field)"),
                        got: format!("string of {} bytes", text.len()),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn validate(&self, document: &Value) -> Result<Map<String, Value>, ValidationError> {
        let Value::Object(members) = document else {
            return Err(ValidationError { path: String::new(), expected: "object".into(), got: type_name(document).into() });
        };
        let normalized = validate_object(&self.fields, members, "", 1)?;
        self.check_indexed_strings(&normalized)?;
        Ok(normalized)
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Puts `name` in front of an error path found below it.
fn under(name: &str, mut error: ValidationError) -> ValidationError {
    error.path = if error.path.is_empty() {
        name.to_string()
    } else if error.path.starts_with('[') {
        format!("{name}{}", error.path)
    } else {
        format!("{name}.{}", error.path)
    };
    error
}

fn check_object(fields: &[(String, FieldDef)], members: &Map<String, Value>, depth: usize) -> Result<(), ValidationError> {
    for (name, value) in members {
        let Some((_, definition)) = fields.iter().find(|(field, _)| field == name) else {
            return Err(ValidationError {
                path: name.clone(),
                expected: "no such field (undeclared)".into(),
                got: type_name(value).into(),
            });
        };
        check_value(&definition.field_type, value, depth).map_err(|error| under(name, error))?;
    }
    for (name, definition) in fields {
        if definition.required && !members.contains_key(name) {
            return Err(ValidationError { path: name.clone(), expected: definition.field_type.name().into(), got: "missing".into() });
        }
    }
    Ok(())
}

fn check_value(field_type: &FieldType, value: &Value, depth: usize) -> Result<(), ValidationError> {
    if depth > JSON_DEPTH_MAX {
        return Err(ValidationError {
            path: String::new(),
            expected: "shallower nesting".into(),
            got: format!("nesting deeper than {JSON_DEPTH_MAX}"),
        });
    }
    match (field_type, value) {
        (FieldType::String, Value::String(_)) | (FieldType::Bool, Value::Bool(_)) => Ok(()),
        (FieldType::Int, Value::Number(number)) if number.is_i64() => Ok(()),
        (FieldType::Float, Value::Number(number)) if number.is_f64() => Ok(()),
        (FieldType::Object(fields), Value::Object(members)) => check_object(fields, members, depth + 1),
        (FieldType::Array(item), Value::Array(items)) => {
            for (index, element) in items.iter().enumerate() {
                check_value(&item.field_type, element, depth + 1).map_err(|mut error| {
                    error.path = if error.path.is_empty() || error.path.starts_with('[') {
                        format!("[{index}]{}", error.path)
                    } else {
                        format!("[{index}].{}", error.path)
                    };
                    error
                })?;
            }
            Ok(())
        }
        (expected, got) => Err(ValidationError { path: String::new(), expected: expected.name().into(), got: type_name(got).into() }),
    }
}

fn validate_object(
    fields: &[(String, FieldDef)],
    members: &Map<String, Value>,
    path: &str,
    depth: usize,
) -> Result<Map<String, Value>, ValidationError> {
    let mut normalized = Map::with_capacity(members.len());
    for (name, value) in members {
        let member_path = join(path, name);
        let Some((_, definition)) = fields.iter().find(|(field, _)| field == name) else {
            return Err(ValidationError { path: member_path, expected: "no such field (undeclared)".into(), got: type_name(value).into() });
        };
        normalized.insert(name.clone(), validate_value(&definition.field_type, value, &member_path, depth)?);
    }
    for (name, definition) in fields {
        if definition.required && !members.contains_key(name) {
            return Err(ValidationError { path: join(path, name), expected: definition.field_type.name().into(), got: "missing".into() });
        }
    }
    Ok(normalized)
}

fn validate_value(field_type: &FieldType, value: &Value, path: &str, depth: usize) -> Result<Value, ValidationError> {
    let mismatch = |expected: &str, got: String| Err(ValidationError { path: path.to_string(), expected: expected.to_string(), got });
    if depth > JSON_DEPTH_MAX {
        return mismatch("shallower nesting", format!("nesting deeper than {JSON_DEPTH_MAX}"));
    }
    match (field_type, value) {
        (FieldType::String, Value::String(_)) | (FieldType::Bool, Value::Bool(_)) => Ok(value.clone()),
        (FieldType::Int, Value::Number(number)) => {
            if number.is_i64() {
                Ok(value.clone())
            } else if number.is_u64() {
                mismatch("int", format!("integer {number} outside the i64 range"))
            } else {
                mismatch("int", format!("float {number}"))
            }
        }
        (FieldType::Float, Value::Number(number)) => {
            if number.is_f64() {
                return Ok(value.clone());
            }
            match crate::json::exact_f64(number).and_then(Number::from_f64) {
                Some(float) => Ok(Value::Number(float)),
                None => mismatch("float", format!("integer {number} not exactly representable as a float")),
            }
        }
        (FieldType::Object(fields), Value::Object(members)) => Ok(Value::Object(validate_object(fields, members, path, depth + 1)?)),
        (FieldType::Array(item), Value::Array(items)) => {
            let mut normalized = Vec::with_capacity(items.len());
            for (index, element) in items.iter().enumerate() {
                normalized.push(validate_value(&item.field_type, element, &format!("{path}[{index}]"), depth + 1)?);
            }
            Ok(Value::Array(normalized))
        }
        (expected, got) => mismatch(expected.name(), type_name(got).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INSTALL_GUIDE_SCHEMA: &str = include_str!("../../tests/fixtures/user_v1.json");

    fn parse(value: Value) -> Result<Schema, SchemaError> {
        Schema::parse(value.to_string().as_bytes())
    }

    #[test]
    fn install_guide_schema_loads() {
        let schema = Schema::parse(INSTALL_GUIDE_SCHEMA.as_bytes()).unwrap();
        assert_eq!(schema.indexes, vec!["_id", "name", "age"]);
        assert!(schema.fields.iter().all(|(_, field)| field.required));
        let stored = schema.validate(&json!({"_id": "1", "name": "alice", "age": 30})).unwrap();
        assert_eq!(Value::Object(stored).to_string(), r#"{"_id":"1","name":"alice","age":30}"#);
    }

    #[test]
    fn schema_rules() {
        let base = |fields: Value, indexes: Value| json!({"schema_id": "s", "schema_version": "v1", "fields": fields, "indexes": indexes});
        let bad = [
            base(json!({"name": {"type": "string"}}), json!([])),
            base(json!({"_id": {"type": "string", "required": false}}), json!([])),
            base(json!({"_id": {"type": "float"}}), json!([])),
            base(json!({"_id": {"type": "int"}, "x": {"type": "date"}}), json!([])),
            base(json!({"_id": {"type": "int"}}), json!(["missing"])),
            base(json!({"_id": {"type": "int"}, "o": {"type": "object", "fields": {}}}), json!(["o"])),
            base(json!({"_id": {"type": "int"}, "x": {"type": "int"}}), json!(["x", "x"])),
            base(json!({"_id": {"type": "int"}}), json!(["_id", "_id"])),
            base(json!({"_id": {"type": "int"}, "a": {"type": "array"}}), json!([])),
            base(json!({"_id": {"type": "int"}, "o": {"type": "object"}}), json!([])),
            base(json!({"_id": {"type": "int"}, "x": {"type": "int", "extra": 1}}), json!([])),
            base(json!({"_id": {"type": "int"}, "../x": {"type": "int"}}), json!([])),
            base(json!({"_id": {"type": "int"}, "x": {"type": "int", "required": "yes"}}), json!([])),
            json!({"schema_id": "../etc", "schema_version": "v1", "fields": {"_id": {"type": "int"}}}),
            json!({"schema_id": "", "schema_version": "v1", "fields": {"_id": {"type": "int"}}}),
            json!({"schema_id": "a".repeat(65), "schema_version": "v1", "fields": {"_id": {"type": "int"}}}),
            json!({"schema_id": "é", "schema_version": "v1", "fields": {"_id": {"type": "int"}}}),
            json!({"schema_id": "s", "schema_version": "v1", "fields": {"_id": {"type": "int"}}, "unknown": 1}),
        ];
        for schema in bad {
            assert!(parse(schema.clone()).is_err(), "accepted {schema}");
        }
        assert!(parse(json!({"schema_id": "a".repeat(64), "schema_version": "v_1", "fields": {"_id": {"type": "int"}}})).is_ok());
    }

    #[test]
    fn validation_rules() {
        let schema = parse(json!({"schema_id": "s", "schema_version": "v1", "fields": {
            "_id": {"type": "int"},
            "score": {"type": "float"},
            "tags": {"type": "array", "items": {"type": "string"}, "required": false},
            "address": {"type": "object", "required": false, "fields": {"city": {"type": "string"}, "zip": {"type": "int", "required": false}}}
        }, "indexes": ["score"]}))
        .unwrap();
        let stored = schema.validate(&json!({"_id": 1, "score": 10})).unwrap();
        assert_eq!(Value::Object(stored).to_string(), r#"{"_id":1,"score":10.0}"#);
        let failures = [
            (json!({"_id": 1}), "score", "missing"),
            (json!({"_id": 1.0, "score": 1}), "_id", "float 1.0"),
            (json!({"_id": 1, "score": null}), "score", "null"),
            (json!({"_id": 1, "score": 1, "extra": true}), "extra", "bool"),
            (json!({"_id": 1, "score": 1, "tags": ["a", 2]}), "tags[1]", "int"),
            (json!({"_id": 1, "score": 1, "address": {"city": "x", "planet": "earth"}}), "address.planet", "string"),
            (json!({"_id": 1, "score": 1, "address": {}}), "address.city", "missing"),
            (json!({"_id": 18446744073709551615u64, "score": 1}), "_id", "integer 18446744073709551615 outside the i64 range"),
            (json!({"_id": 1, "score": 9007199254740993i64}), "score", "integer 9007199254740993 not exactly representable as a float"),
            (json!("not an object"), "", "string"),
        ];
        for (document, path, got) in failures {
            let error = schema.validate(&document).unwrap_err();
            assert_eq!((error.path.as_str(), error.got.as_str()), (path, got), "{document}");
        }
    }

    #[test]
    fn check_stored_agrees_with_validate() {
        let schema = parse(json!({"schema_id": "s", "schema_version": "v1", "fields": {
            "_id": {"type": "int"}, "score": {"type": "float"},
            "tags": {"type": "array", "items": {"type": "object", "fields": {"k": {"type": "int"}}}, "required": false}
        }, "indexes": ["score"]}))
        .unwrap();
        let stored = schema.validate(&json!({"_id": 1, "score": 2, "tags": [{"k": 1}]})).unwrap();
        schema.check_stored(&stored).unwrap();
        // An int where a float is stored is not the stored form.
        let raw = json!({"_id": 1, "score": 2}).as_object().unwrap().clone();
        assert_eq!(schema.check_stored(&raw).unwrap_err().path, "score");
        let bad = json!({"_id": 1, "score": 2.0, "tags": [{"k": 1}, {"k": "x"}]}).as_object().unwrap().clone();
        let error = schema.check_stored(&bad).unwrap_err();
        assert_eq!((error.path.as_str(), error.got.as_str()), ("tags[1].k", "string"));
        assert_eq!(schema.validate(&Value::Object(bad)).unwrap_err().path, "tags[1].k");
    }

    #[test]
    fn duplicate_keys_in_a_schema_file_are_refused() {
        let text = r#"{"schema_id":"s","schema_version":"v1","fields":{"_id":{"type":"int"},"_id":{"type":"string"}},"indexes":["_id"]}"#;
        let error = Schema::parse(text.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("duplicate key '_id'"), "{error}");
    }

    #[test]
    fn long_indexed_strings_are_rejected() {
        let schema = Schema::parse(INSTALL_GUIDE_SCHEMA.as_bytes()).unwrap();
        let long = "x".repeat(INDEXED_STRING_MAX_BYTES + 1);
        assert_eq!(schema.validate(&json!({"_id": "1", "name": long, "age": 1})).unwrap_err().path, "name");
    }
}
