//! The request stream: a sequence of JSON values separated by whitespace,
//! each possibly spanning several lines (docs/API_SPEC.md).
//!
//! Input is parsed as it arrives by `aerodb_format::json::Parser`, one
//! byte at a time, so the time is linear in the input whatever its line
//! structure. The limits are per request, not per line: a request (one JSON
//! value) may hold at most `REQUEST_SIZE_MAX_BYTES` bytes of text and
//! `REQUEST_VALUES_MAX` values, nested at most `REQUEST_DEPTH_MAX` deep.
//! An oversized request is read to its end without being built and
//! answered with one error; the requests around it are answered as usual.
//!
//! Errors and where reading resumes:
//! - a request that is well-formed JSON but breaks a rule (a duplicate key,
//!   a number with no exact value, a size or value-count limit) ends where
//!   its value ends: one error, and the next request starts right after it;
//! - a syntax error (the first byte that cannot continue the value) is
//!   answered with one error, and reading resumes at the start of the next
//!   line — except when the error byte is a `{` that is the first non-blank
//!   byte of a line after the request's first line: a value left open at
//!   the end of a line is then taken to have been abandoned, and that line
//!   is read as the start of the next request.
//!
//! Nothing malformed reaches the engine.

use std::io::BufRead;

use aerodb_format::json::{JsonError, JsonErrorKind, Parser, Step};
use aerodb_format::DOC_SIZE_MAX_BYTES;
use serde_json::Value;

use crate::error::{AeroError, ErrorCode};

/// Largest request accepted, in bytes of JSON text.
pub const REQUEST_SIZE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Most values (objects, arrays, strings, numbers, literals) in one request.
/// Every value of a document costs at least one byte of its encoded record,
/// so no request over this count could hold a document under the size cap;
/// it is refused before anything more is built. This bounds the memory a
/// request can take (docs/API_SPEC.md).
pub const REQUEST_VALUES_MAX: u64 = DOC_SIZE_MAX_BYTES as u64 + 1024;

/// Deepest nesting of objects and arrays in a request.
pub const REQUEST_DEPTH_MAX: usize = 128;

/// One item of the stream.
#[derive(Debug)]
pub enum Item {
    Request(Value),
    Malformed(AeroError),
}

/// Reads requests from `input`.
pub struct RequestReader<R> {
    input: R,
    parser: Parser,
    /// After a syntax error: the rest of the line is being skipped.
    skipping_line: bool,
    at_end: bool,
}

/// The response error for a JSON error. A duplicate key or an inexact
/// number inside a request's `document` is a schema violation, named by its
/// field path; everything else is `AERO_QUERY_INVALID`.
fn request_error(error: JsonError) -> AeroError {
    let in_document = error.path.first().is_some_and(|first| first == "document") && error.path.len() > 1;
    match error.kind {
        JsonErrorKind::DuplicateKey | JsonErrorKind::Number if in_document => {
            let field = field_path(&error.path[1..]);
            let expected = if error.kind == JsonErrorKind::DuplicateKey { "each key at most once" } else { "a number with an exact value" };
            AeroError::new(ErrorCode::SchemaValidationFailed, format!("document field '{field}': {}", error.message))
                .detail("path", field)
                .detail("expected", expected)
                .detail("got", error.message)
        }
        // A `limit` no integer type holds is out of the limit's range.
        JsonErrorKind::Number if error.path == ["limit"] => AeroError::new(
            ErrorCode::QueryLimitRequired,
            format!("limit must be an integer from 1 to {}, found {}", crate::query::QUERY_LIMIT_MAX, error.message),
        ),
        JsonErrorKind::Syntax | JsonErrorKind::TooDeep => AeroError::new(ErrorCode::QueryInvalid, format!("malformed JSON: {error}"))
            .detail("line", error.line)
            .detail("column", error.column),
        _ => {
            let mut built = AeroError::new(ErrorCode::QueryInvalid, error.message.clone());
            if !error.path.is_empty() {
                built = built.detail("path", field_path(&error.path));
            }
            built
        }
    }
}

/// `["address", "city"]` as `address.city`, `["tags", "[1]"]` as `tags[1]`
/// (the form of schema validation paths).
fn field_path(elements: &[String]) -> String {
    let mut path = String::new();
    for element in elements {
        if !path.is_empty() && !element.starts_with('[') {
            path.push('.');
        }
        path.push_str(element);
    }
    path
}

impl<R: BufRead> RequestReader<R> {
    pub fn new(input: R) -> RequestReader<R> {
        RequestReader {
            input,
            parser: Parser::new(REQUEST_DEPTH_MAX, REQUEST_VALUES_MAX, REQUEST_SIZE_MAX_BYTES as u64),
            skipping_line: false,
            at_end: false,
        }
    }

    /// The input, for a caller that shares it with other work.
    pub fn input_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// The next request or malformed item; `None` at the end of input.
    pub fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        loop {
            if self.at_end {
                return Ok(None);
            }
            let buffer = self.input.fill_buf()?;
            if buffer.is_empty() {
                self.at_end = true;
                return Ok(match self.parser.finish() {
                    Ok(None) => None,
                    Ok(Some(value)) => Some(Item::Request(value)),
                    Err(error) => Some(Item::Malformed(request_error(error))),
                });
            }
            if self.skipping_line {
                match buffer.iter().position(|&byte| byte == b'\n') {
                    Some(position) => {
                        self.input.consume(position + 1);
                        self.skipping_line = false;
                    }
                    None => {
                        let length = buffer.len();
                        self.input.consume(length);
                    }
                }
                continue;
            }
            match self.parser.feed(buffer) {
                Step::NeedMore => {
                    let length = buffer.len();
                    self.input.consume(length);
                }
                Step::Done { value, used } => {
                    self.input.consume(used);
                    return Ok(Some(Item::Request(value)));
                }
                Step::Rejected { error, used } => {
                    self.input.consume(used);
                    return Ok(Some(Item::Malformed(request_error(error))));
                }
                Step::Malformed { error, at } => {
                    let restart_here = error.at_line_start && buffer[at] == b'{';
                    self.input.consume(at);
                    self.skipping_line = !restart_here;
                    return Ok(Some(Item::Malformed(request_error(error))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &str) -> Vec<String> {
        let mut reader = RequestReader::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some(item) = reader.next_item().unwrap() {
            out.push(match item {
                Item::Request(value) => value.to_string(),
                Item::Malformed(error) => format!("ERR {}", error.code.as_str()),
            });
        }
        out
    }

    #[test]
    fn values_span_lines_and_share_lines() {
        assert_eq!(items("{\n\"a\": 1\n}\n{\"b\":2} {\"c\":3}\n\n"), vec![r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
    }

    #[test]
    fn malformed_input_resynchronises_at_the_next_line() {
        assert_eq!(items("{\"a\": }\n{\"b\":1}\n"), vec!["ERR AERO_QUERY_INVALID", r#"{"b":1}"#]);
        assert_eq!(items("garbage here\n{\"b\":1}"), vec!["ERR AERO_QUERY_INVALID", r#"{"b":1}"#]);
        assert_eq!(items("{\"a\":\n"), vec!["ERR AERO_QUERY_INVALID"]);
        assert_eq!(items("\"\\ud800\"x\n{}"), vec!["ERR AERO_QUERY_INVALID", "{}"]);
    }

    #[test]
    fn deep_nesting_and_invalid_utf8_are_errors() {
        let deep = format!("{}{}\n{{}}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(items(&deep), vec!["ERR AERO_QUERY_INVALID", "{}"]);
        let mut reader = RequestReader::new(&b"{\"a\":\"\xff\"}\n{}\n"[..]);
        assert!(matches!(reader.next_item().unwrap(), Some(Item::Malformed(_))));
        assert!(matches!(reader.next_item().unwrap(), Some(Item::Request(_))));
    }

    #[test]
    fn many_values_on_one_line_parse_in_linear_time() {
        // 300,000 values on one line: quadratic buffer shifting would take
        // minutes here; linear parsing takes well under a second.
        let line = "{} ".repeat(300_000) + "\n";
        let mut reader = RequestReader::new(line.as_bytes());
        let mut count = 0;
        while let Some(item) = reader.next_item().unwrap() {
            assert!(matches!(item, Item::Request(_)));
            count += 1;
        }
        assert_eq!(count, 300_000);
    }

    #[test]
    fn the_size_limit_is_per_request_not_per_line() {
        // Many small requests on one line longer than the limit: each is answered.
        let line = "{} ".repeat(REQUEST_SIZE_MAX_BYTES / 3 + 1000) + "\n";
        assert!(line.len() > REQUEST_SIZE_MAX_BYTES);
        let mut reader = RequestReader::new(line.as_bytes());
        let mut count = 0;
        while let Some(item) = reader.next_item().unwrap() {
            assert!(matches!(item, Item::Request(_)));
            count += 1;
        }
        assert_eq!(count, REQUEST_SIZE_MAX_BYTES / 3 + 1000);
        // A small request, an oversized one and another small one on one line.
        let mut line = String::from("{\"a\":1} {\"big\":\"");
        line.push_str(&"x".repeat(REQUEST_SIZE_MAX_BYTES));
        line.push_str("\"} {\"b\":2}\n");
        assert_eq!(items(&line), vec![r#"{"a":1}"#, "ERR AERO_QUERY_INVALID", r#"{"b":2}"#]);
    }

    #[test]
    fn duplicate_keys_and_inexact_numbers_end_one_request() {
        assert_eq!(items("{\"op\":\"insert\",\"op\":\"query\"} {}\n"), vec!["ERR AERO_QUERY_INVALID", "{}"]);
        assert_eq!(items("{\"document\":{\"a\":{\"b\":1,\"b\":2}}}{}"), vec!["ERR AERO_SCHEMA_VALIDATION_FAILED", "{}"]);
        assert_eq!(items("{\"document\":{\"f\":1e-400}}\n{}"), vec!["ERR AERO_SCHEMA_VALIDATION_FAILED", "{}"]);
        assert_eq!(items("{\"limit\":123456789012345678901234567890}\n{}"), vec!["ERR AERO_QUERY_LIMIT_REQUIRED", "{}"]);
        assert_eq!(items("{\"filter\":{\"a\":1e999}}\n{}"), vec!["ERR AERO_QUERY_INVALID", "{}"]);
        let mut reader = RequestReader::new(&b"{\"document\":{\"a\":{\"b\":1,\"b\":2}}}"[..]);
        let Some(Item::Malformed(error)) = reader.next_item().unwrap() else { panic!() };
        assert_eq!(error.to_json()["details"]["path"], "a.b");
        let mut reader = RequestReader::new(&b"{\"document\":{\"t\":[1,{\"x\":1e999}]}}"[..]);
        let Some(Item::Malformed(error)) = reader.next_item().unwrap() else { panic!() };
        assert_eq!(error.to_json()["details"]["path"], "t[1].x");
    }

    #[test]
    fn a_value_left_open_gives_way_to_a_line_starting_with_a_brace() {
        // Line 2 continues the open value; line 3 cannot, and starts afresh.
        assert_eq!(items("{\"a\":\n{\"b\":1}\n{\"c\":2}\n{\"d\":3}\n"), vec!["ERR AERO_QUERY_INVALID", r#"{"c":2}"#, r#"{"d":3}"#]);
        // An error in the middle of a line skips the rest of that line only.
        assert_eq!(items("{\"a\": ] {\"x\":1}\n{\"b\":1}\n"), vec!["ERR AERO_QUERY_INVALID", r#"{"b":1}"#]);
        // A brace on the request's own first line does not restart.
        assert_eq!(items("{\"a\" {\"x\":1}\n{\"b\":1}\n"), vec!["ERR AERO_QUERY_INVALID", r#"{"b":1}"#]);
    }

    #[test]
    fn too_many_values_are_refused_before_they_are_built() {
        let request = format!("[{}0]\n{{}}\n", "0,".repeat(REQUEST_VALUES_MAX as usize + 10));
        assert_eq!(items(&request), vec!["ERR AERO_QUERY_INVALID", "{}"]);
    }

    #[test]
    fn oversized_requests_are_refused_without_buffering_them() {
        let mut input = String::from("{\"a\":\"");
        input.push_str(&"x".repeat(REQUEST_SIZE_MAX_BYTES + 10));
        input.push_str("\"}\n{}\n");
        assert_eq!(items(&input), vec!["ERR AERO_QUERY_INVALID", "{}"]);
    }
}
