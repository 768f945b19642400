//! `metadata/state.json` (FORMAT.md section 11.5): what the last clean
//! shutdown recorded, checked by the next boot.

use serde_json::{json, Map, Value};

/// The fields of the state file, in the order they are written.
pub const STATE_FIELDS: [&str; 4] = ["last_seq", "wal_bytes", "documents", "document_pages"];

/// The recorded figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// Sequence number of the last WAL record.
    pub last_seq: u64,
    /// The WAL's logical end (header and records).
    pub wal_bytes: u64,
    /// Live documents.
    pub documents: u64,
    /// Pages of the document space (one past the highest page logged).
    pub document_pages: u64,
}

impl State {
    /// The file's bytes: a JSON object of exactly the four fields, in order,
    /// indented by two spaces, with a final newline.
    pub fn encode(&self) -> String {
        let mut text = serde_json::to_string_pretty(&json!({
            "last_seq": self.last_seq, "wal_bytes": self.wal_bytes, "documents": self.documents, "document_pages": self.document_pages,
        }))
        .unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads the file strictly: JSON by the strict reader, an object of
    /// exactly the four fields, each a non-negative integer.
    pub fn decode(bytes: &[u8]) -> Result<State, String> {
        let value = crate::json::parse_file(bytes).map_err(|error| format!("not valid JSON: {error}"))?;
        let Value::Object(object) = value else {
            return Err("not a JSON object".into());
        };
        let field = |object: &Map<String, Value>, name: &str| {
            object.get(name).and_then(Value::as_u64).ok_or_else(|| format!("'{name}' is missing or not a non-negative integer"))
        };
        let state = State {
            last_seq: field(&object, "last_seq")?,
            wal_bytes: field(&object, "wal_bytes")?,
            documents: field(&object, "documents")?,
            document_pages: field(&object, "document_pages")?,
        };
        if object.len() != STATE_FIELDS.len() {
            return Err("unexpected fields".into());
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_shapes() {
        let state = State { last_seq: 5, wal_bytes: 554, documents: 2, document_pages: 1 };
        assert_eq!(State::decode(state.encode().as_bytes()).unwrap(), state);
        assert_eq!(state.encode(), "{\n  \"last_seq\": 5,\n  \"wal_bytes\": 554,\n  \"documents\": 2,\n  \"document_pages\": 1\n}\n");
        for bad in [
            r#"[]"#,
            r#"{"last_seq": 1}"#,
            r#"{"last_seq": -1, "wal_bytes": 1, "documents": 1, "document_pages": 1}"#,
            r#"{"last_seq": 1, "wal_bytes": 1, "documents": 1, "document_pages": 1, "extra": 0}"#,
            "{",
        ] {
            assert!(State::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
