//! The config file (`aerodb.json`) and its frozen copy
//! (`metadata/config.json`): parsing and every validation rule.
//!
//! Fields: `data_dir` (required, non-empty string), `wal_sync_mode`
//! (optional, only `"fsync"`), `max_wal_size_bytes` and `max_memory_bytes`
//! (optional positive integers). Anything else is rejected.

use serde_json::{Map, Value};

pub const DEFAULT_MAX_WAL_SIZE_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 512 * 1024 * 1024;

/// Validated config values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// As written in the file (relative paths are resolved by the engine
    /// against the config file's folder).
    pub data_dir: String,
    pub wal_sync_mode: String,
    pub max_wal_size_bytes: u64,
    pub max_memory_bytes: u64,
}

/// Which rule a config broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// Malformed JSON, unknown field, wrong type, zero or negative value.
    Invalid,
    /// A valid value that would weaken durability (`wal_sync_mode`).
    Unsafe,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub kind: ConfigErrorKind,
    /// The field at fault, or empty for the document as a whole.
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { kind: ConfigErrorKind::Invalid, field: field.to_string(), message: message.into() }
}

fn positive(object: &Map<String, Value>, field: &str, default: u64) -> Result<u64, ConfigError> {
    match object.get(field) {
        None => Ok(default),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(value) if value > 0 && !number.is_f64() => Ok(value),
            _ => Err(invalid(field, format!("{field} must be a positive integer, found {number}"))),
        },
        Some(other) => Err(invalid(field, format!("{field} must be a positive integer, found {}", type_name(other)))),
    }
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Config {
    /// Parses and validates a config file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        Config::parse_with(bytes, true)
    }

    /// Parses the frozen copy `metadata/config.json`: the config file's
    /// rules, except that `data_dir` may be absent (it is not frozen; a
    /// frozen copy from before that rule still holds one, accepted and
    /// ignored). An absent `data_dir` reads as the empty string.
    pub fn parse_frozen(bytes: &[u8]) -> Result<Config, ConfigError> {
        Config::parse_with(bytes, false)
    }

    fn parse_with(bytes: &[u8], data_dir_required: bool) -> Result<Config, ConfigError> {
        let value: Value = crate::json::parse_file(bytes).map_err(|error| invalid("", format!("config is not valid JSON: {error}")))?;
        let Value::Object(object) = value else {
            return Err(invalid("", "config must be a JSON object"));
        };
        for key in object.keys() {
            if !matches!(key.as_str(), "data_dir" | "wal_sync_mode" | "max_wal_size_bytes" | "max_memory_bytes") {
                return Err(invalid(key, format!("unknown config field '{key}'")));
            }
        }
        let data_dir = match object.get("data_dir") {
            Some(Value::String(path)) if !path.trim().is_empty() && path.trim() == path && !path.contains('\0') => path.clone(),
            // A blank or whitespace-padded path is almost surely a typo, and
            // would make a folder named by blanks: refused.
            Some(Value::String(path)) if path.trim().is_empty() => {
                return Err(invalid("data_dir", "data_dir must be a non-empty path (not only blanks)"))
            }
            Some(Value::String(path)) if path.trim() != path => {
                return Err(invalid("data_dir", "data_dir must not begin or end with blanks"))
            }
            Some(Value::String(_)) => return Err(invalid("data_dir", "data_dir must be a non-empty path")),
            Some(other) => return Err(invalid("data_dir", format!("data_dir must be a string, found {}", type_name(other)))),
            None if !data_dir_required => String::new(),
            None => return Err(invalid("data_dir", "data_dir is required")),
        };
        let wal_sync_mode = match object.get("wal_sync_mode") {
            None => "fsync".to_string(),
            Some(Value::String(mode)) if mode == "fsync" => mode.clone(),
            Some(Value::String(mode)) => {
                return Err(ConfigError {
                    kind: ConfigErrorKind::Unsafe,
                    field: "wal_sync_mode".into(),
                    message: format!("wal_sync_mode '{mode}' is not allowed: only \"fsync\" keeps acknowledged writes durable"),
                })
            }
            Some(other) => return Err(invalid("wal_sync_mode", format!("wal_sync_mode must be a string, found {}", type_name(other)))),
        };
        Ok(Config {
            data_dir,
            wal_sync_mode,
            max_wal_size_bytes: positive(&object, "max_wal_size_bytes", DEFAULT_MAX_WAL_SIZE_BYTES)?,
            max_memory_bytes: positive(&object, "max_memory_bytes", DEFAULT_MAX_MEMORY_BYTES)?,
        })
    }

    /// The frozen form written to `metadata/config.json` (fields in a fixed
    /// order; `data_dir` is not frozen, so it is not written: every byte of
    /// the file is one the engine checks).
    pub fn to_frozen_json(&self) -> String {
        let mut object = Map::new();
        object.insert("wal_sync_mode".into(), Value::String(self.wal_sync_mode.clone()));
        object.insert("max_wal_size_bytes".into(), Value::from(self.max_wal_size_bytes));
        object.insert("max_memory_bytes".into(), Value::from(self.max_memory_bytes));
        let mut text = serde_json::to_string_pretty(&Value::Object(object)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The first frozen field whose value differs from `frozen`:
    /// `(field, old, new)`. `data_dir` is not compared: it says where the
    /// database lives, not what it is (a database moved or restored to
    /// another folder opens as before; its identity is the MANIFEST's
    /// database id). The frozen copy keeps the `data_dir` of `init` as a record.
    pub fn first_difference(&self, frozen: &Config) -> Option<(&'static str, String, String)> {
        if self.wal_sync_mode != frozen.wal_sync_mode {
            return Some(("wal_sync_mode", frozen.wal_sync_mode.clone(), self.wal_sync_mode.clone()));
        }
        if self.max_wal_size_bytes != frozen.max_wal_size_bytes {
            return Some(("max_wal_size_bytes", frozen.max_wal_size_bytes.to_string(), self.max_wal_size_bytes.to_string()));
        }
        if self.max_memory_bytes != frozen.max_memory_bytes {
            return Some(("max_memory_bytes", frozen.max_memory_bytes.to_string(), self.max_memory_bytes.to_string()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_guide_config_parses() {
        let config = Config::parse(
            br#"{"data_dir": "./data", "wal_sync_mode": "fsync", "max_wal_size_bytes": 1073741824, "max_memory_bytes": 536870912}"#,
        )
        .unwrap();
        assert_eq!(config.data_dir, "./data");
        assert_eq!(Config::parse_frozen(config.to_frozen_json().as_bytes()).unwrap(), Config { data_dir: String::new(), ..config.clone() });
        assert!(!config.to_frozen_json().contains("data_dir"));
        // A frozen copy written before data_dir stopped being frozen still parses.
        assert_eq!(Config::parse_frozen(br#"{"data_dir": "old", "max_memory_bytes": 5}"#).unwrap().max_memory_bytes, 5);
        let minimal = Config::parse(br#"{"data_dir": "d"}"#).unwrap();
        assert_eq!(minimal.max_memory_bytes, DEFAULT_MAX_MEMORY_BYTES);
    }

    #[test]
    fn every_rule() {
        let cases: &[(&str, ConfigErrorKind, &str)] = &[
            ("{", ConfigErrorKind::Invalid, ""),
            (r#"{"data_dir": "./a", "data_dir": "./b"}"#, ConfigErrorKind::Invalid, ""),
            ("[]", ConfigErrorKind::Invalid, ""),
            ("{}", ConfigErrorKind::Invalid, "data_dir"),
            (r#"{"data_dir": 5}"#, ConfigErrorKind::Invalid, "data_dir"),
            (r#"{"data_dir": ""}"#, ConfigErrorKind::Invalid, "data_dir"),
            (r#"{"data_dir": "   "}"#, ConfigErrorKind::Invalid, "data_dir"),
            (r#"{"data_dir": " ./data"}"#, ConfigErrorKind::Invalid, "data_dir"),
            (r#"{"data_dir": "./data\n"}"#, ConfigErrorKind::Invalid, "data_dir"),
            (r#"{"data_dir": "d", "extra": 1}"#, ConfigErrorKind::Invalid, "extra"),
            (r#"{"data_dir": "d", "wal_sync_mode": "none"}"#, ConfigErrorKind::Unsafe, "wal_sync_mode"),
            (r#"{"data_dir": "d", "wal_sync_mode": 1}"#, ConfigErrorKind::Invalid, "wal_sync_mode"),
            (r#"{"data_dir": "d", "max_wal_size_bytes": 0}"#, ConfigErrorKind::Invalid, "max_wal_size_bytes"),
            (r#"{"data_dir": "d", "max_wal_size_bytes": -1}"#, ConfigErrorKind::Invalid, "max_wal_size_bytes"),
            (r#"{"data_dir": "d", "max_memory_bytes": 1.5}"#, ConfigErrorKind::Invalid, "max_memory_bytes"),
            (r#"{"data_dir": "d", "max_memory_bytes": "1"}"#, ConfigErrorKind::Invalid, "max_memory_bytes"),
        ];
        for (text, kind, field) in cases {
            let error = Config::parse(text.as_bytes()).unwrap_err();
            assert_eq!((error.kind, error.field.as_str()), (*kind, *field), "{text}");
        }
    }
}
