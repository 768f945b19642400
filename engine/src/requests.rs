//! The request stream: a sequence of JSON values separated by whitespace,
//! each possibly spanning several lines (docs/API_SPEC.md).
//!
//! Input is read a line at a time, never more than `REQUEST_SIZE_MAX_BYTES`
//! of one request. A value that does not parse is answered with
//! `AERO_QUERY_INVALID` and the reader skips to the end of the line where
//! the error was found, then carries on. Nothing malformed reaches the
//! engine.

use std::io::BufRead;

use serde_json::Value;

use crate::error::{AeroError, ErrorCode};

/// Largest request accepted, in bytes of JSON text.
pub const REQUEST_SIZE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// One item of the stream.
#[derive(Debug)]
pub enum Item {
    Request(Value),
    Malformed(AeroError),
}

/// Reads requests from `input`.
pub struct RequestReader<R> {
    input: R,
    pending: Vec<u8>,
    /// Bytes at the front of `pending` already handed out: values that
    /// share a line are consumed by moving this offset, so a line of many
    /// values is parsed in time linear in its length.
    consumed: usize,
    at_end: bool,
}

enum Line {
    Read,
    TooLong,
    End,
}

fn malformed(message: String) -> Item {
    Item::Malformed(AeroError::new(ErrorCode::QueryInvalid, message))
}

impl<R: BufRead> RequestReader<R> {
    pub fn new(input: R) -> RequestReader<R> {
        RequestReader { input, pending: Vec::new(), consumed: 0, at_end: false }
    }

    /// Forgets every buffered byte.
    fn discard(&mut self) {
        self.pending.clear();
        self.consumed = 0;
    }

    /// Appends one line (with its newline) to `pending`, refusing to hold
    /// more than the size cap: the rest of a too-long line is skipped.
    fn read_line(&mut self) -> std::io::Result<Line> {
        if self.at_end {
            return Ok(Line::End);
        }
        // Drop what was consumed before growing the buffer (amortised: each
        // byte is moved at most once per line read).
        self.pending.drain(..self.consumed);
        self.consumed = 0;
        let mut read_any = false;
        let mut too_long = false;
        loop {
            let buffer = self.input.fill_buf()?;
            if buffer.is_empty() {
                self.at_end = true;
                return Ok(if too_long {
                    Line::TooLong
                } else if read_any {
                    Line::Read
                } else {
                    Line::End
                });
            }
            read_any = true;
            let (chunk, done) = match buffer.iter().position(|&byte| byte == b'\n') {
                Some(position) => (&buffer[..=position], true),
                None => (buffer, false),
            };
            let length = chunk.len();
            if !too_long && self.pending.len() - self.consumed + length <= REQUEST_SIZE_MAX_BYTES {
                self.pending.extend_from_slice(chunk);
            } else {
                too_long = true;
            }
            self.input.consume(length);
            if done {
                return Ok(if too_long { Line::TooLong } else { Line::Read });
            }
        }
    }

    /// The next request or malformed item; `None` at the end of input.
    pub fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        loop {
            let rest = &self.pending[self.consumed..];
            self.consumed += rest.iter().position(|byte| !byte.is_ascii_whitespace()).unwrap_or(rest.len());
            if self.consumed == self.pending.len() {
                self.discard();
                match self.read_line()? {
                    Line::Read => continue,
                    Line::TooLong => {
                        self.discard();
                        return Ok(Some(malformed(format!("request larger than {REQUEST_SIZE_MAX_BYTES} bytes"))));
                    }
                    Line::End => return Ok(None),
                }
            }
            let mut stream = serde_json::Deserializer::from_slice(&self.pending[self.consumed..]).into_iter::<Value>();
            match stream.next() {
                Some(Ok(value)) => {
                    self.consumed += stream.byte_offset();
                    return Ok(Some(Item::Request(value)));
                }
                Some(Err(error)) if error.is_eof() => match self.read_line()? {
                    Line::Read => continue,
                    Line::TooLong => {
                        self.discard();
                        return Ok(Some(malformed(format!("request larger than {REQUEST_SIZE_MAX_BYTES} bytes"))));
                    }
                    Line::End => {
                        self.discard();
                        return Ok(Some(malformed(format!("malformed JSON: {error}"))));
                    }
                },
                Some(Err(error)) => {
                    // Skip to the end of the line the error is on.
                    let mut lines_left = error.line().max(1);
                    let mut cut = self.pending.len();
                    for (position, byte) in self.pending.iter().enumerate().skip(self.consumed) {
                        if *byte == b'\n' {
                            lines_left -= 1;
                            if lines_left == 0 {
                                cut = position + 1;
                                break;
                            }
                        }
                    }
                    self.consumed = cut;
                    return Ok(Some(malformed(format!("malformed JSON: {error}"))));
                }
                None => {
                    self.discard();
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
    fn oversized_requests_are_refused_without_buffering_them() {
        let mut input = String::from("{\"a\":\"");
        input.push_str(&"x".repeat(REQUEST_SIZE_MAX_BYTES + 10));
        input.push_str("\"}\n{}\n");
        assert_eq!(items(&input), vec!["ERR AERO_QUERY_INVALID", "{}"]);
    }
}
