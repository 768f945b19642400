//! Output written as it is produced: a buffered stdout that ends the
//! process cleanly when the reader goes away, and a JSON object written
//! field by field (with one array streamed item by item) in exactly the
//! layout `serde_json::to_string_pretty` gives the whole document.

use std::io::{BufWriter, Stdout, Write};

use serde_json::Value;

use crate::cli::{write_stderr, EXIT_OUTPUT_FAILED};

/// Buffered stdout. A closed pipe (`aerodb-inspect wal | head -1`) ends the
/// process quietly with the exit code the run would have had; any other
/// write error is reported and ends it with [`EXIT_OUTPUT_FAILED`].
pub struct Output {
    sink: Sink,
    exit_code: i32,
}

enum Sink {
    Stdout(BufWriter<Stdout>),
    Memory(Vec<u8>),
}

impl Output {
    pub fn stdout(exit_code: i32) -> Output {
        Output { sink: Sink::Stdout(BufWriter::with_capacity(64 * 1024, std::io::stdout())), exit_code }
    }

    /// Output kept in memory (for tests).
    pub fn memory() -> Output {
        Output { sink: Sink::Memory(Vec::new()), exit_code: 0 }
    }

    /// What a [`Output::memory`] output holds.
    pub fn into_text(self) -> String {
        match self.sink {
            Sink::Memory(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Sink::Stdout(_) => String::new(),
        }
    }

    fn fail(&self, error: std::io::Error) -> ! {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(self.exit_code);
        }
        write_stderr(&format!("cannot write the output: {error}\n"));
        std::process::exit(EXIT_OUTPUT_FAILED);
    }

    pub fn write(&mut self, text: &str) {
        let result = match &mut self.sink {
            Sink::Stdout(writer) => writer.write_all(text.as_bytes()),
            Sink::Memory(bytes) => {
                bytes.extend_from_slice(text.as_bytes());
                Ok(())
            }
        };
        if let Err(error) = result {
            self.fail(error);
        }
    }

    pub fn finish(mut self) {
        if let Sink::Stdout(writer) = &mut self.sink {
            if let Err(error) = writer.flush() {
                self.fail(error);
            }
        }
    }
}

/// One JSON object written field by field to an [`Output`].
pub struct JsonObject {
    fields: usize,
    items: Option<usize>,
}

/// `value` pretty-printed, every line after the first indented by `indent`.
fn pretty(value: &Value, indent: &str) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    text.replace('\n', &format!("\n{indent}"))
}

impl JsonObject {
    pub fn begin(out: &mut Output) -> JsonObject {
        out.write("{");
        JsonObject { fields: 0, items: None }
    }

    fn key(&mut self, out: &mut Output, key: &str) {
        let separator = if self.fields == 0 { "\n" } else { ",\n" };
        self.fields += 1;
        let key = Value::String(key.to_string()).to_string();
        out.write(&format!("{separator}  {key}: "));
    }

    pub fn field(&mut self, out: &mut Output, key: &str, value: &Value) {
        self.key(out, key);
        out.write(&pretty(value, "  "));
    }

    /// Starts an array field; [`JsonObject::item`] adds to it until [`JsonObject::end_array`].
    pub fn begin_array(&mut self, out: &mut Output, key: &str) {
        self.key(out, key);
        out.write("[");
        self.items = Some(0);
    }

    pub fn item(&mut self, out: &mut Output, value: &Value) {
        let items = self.items.get_or_insert(0);
        let separator = if *items == 0 { "\n    " } else { ",\n    " };
        *items += 1;
        out.write(separator);
        out.write(&pretty(value, "    "));
    }

    pub fn end_array(&mut self, out: &mut Output) {
        if self.items.take().unwrap_or(0) > 0 {
            out.write("\n  ]");
        } else {
            out.write("]");
        }
    }

    pub fn end(self, out: &mut Output) {
        out.write(if self.fields == 0 { "}\n" } else { "\n}\n" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_streamed_object_is_laid_out_as_serde_lays_out_the_whole() {
        for items in [vec![], vec![json!({"a": 1, "b": [1, 2]}), json!("x")]] {
            let mut out = Output::memory();
            let mut object = JsonObject::begin(&mut out);
            object.field(&mut out, "file", &json!("wal/wal.log"));
            object.field(&mut out, "header", &json!({"status": "ok", "nested": {"n": [1]}}));
            object.begin_array(&mut out, "records");
            for item in &items {
                object.item(&mut out, item);
            }
            object.end_array(&mut out);
            object.field(&mut out, "last", &json!(null));
            object.end(&mut out);
            let whole = json!({"file": "wal/wal.log", "header": {"status": "ok", "nested": {"n": [1]}}, "records": items, "last": null});
            assert_eq!(out.into_text(), serde_json::to_string_pretty(&whole).unwrap() + "\n");
        }
        let mut out = Output::memory();
        JsonObject::begin(&mut out).end(&mut out);
        assert_eq!(out.into_text(), "{}\n");
    }
}
