//! The JSON AeroDB accepts: a strict, incremental, linear-time parser.
//!
//! Every JSON text AeroDB reads — requests, config files, schema files —
//! goes through this parser, so one set of rules holds everywhere:
//!
//! - **Duplicate keys are refused** (JSON allows them; a strict database
//!   does not guess which one was meant).
//! - **Numbers keep their exact value or are refused.** An integer literal
//!   is an `i64` if it fits, else a `u64` if it fits, else a float if an
//!   f64 holds it exactly; an integer literal of any length that neither an
//!   i64, a u64 nor an f64 holds exactly is refused (no schema type could
//!   store it). `-0` is the integer 0. A literal with a fraction or an
//!   exponent is parsed correctly rounded to the nearest f64; one whose
//!   magnitude is beyond the f64 range (`1e400`) or that rounds to zero
//!   although its digits are not all zero (`1e-400`) is refused.
//! - **Nesting is bounded** (`depth_max`), and so is the number of values
//!   in one text (`values_max`), checked before anything is built: the
//!   memory one parse can take is bounded by the input's length and
//!   `values_max` (see docs/API_SPEC.md).
//!
//! The parser is a state machine fed any number of byte chunks; each byte
//! is looked at once, so the time is linear in the input whatever its line
//! structure. It never recurses. After a *semantic* error (a duplicate key,
//! a number out of range, too many values) it keeps reading to the end of
//! the value without building it, so that the error ends exactly one value;
//! after a *syntax* error the caller decides where to resume.

use serde_json::{Map, Number, Value};

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Not JSON (the byte at the error position cannot continue the text).
    Syntax,
    /// Objects and arrays nested deeper than allowed.
    TooDeep,
    /// The same key twice in one object.
    DuplicateKey,
    /// A number literal with no exact value in any type AeroDB stores.
    Number,
    /// More values in one text than allowed.
    TooManyValues,
    /// The text was larger than the caller's size bound.
    TooLarge,
}

impl JsonErrorKind {
    /// True for errors found in a well-formed text: the parser reads on to
    /// the end of the value.
    pub fn is_semantic(&self) -> bool {
        matches!(self, JsonErrorKind::DuplicateKey | JsonErrorKind::Number | JsonErrorKind::TooManyValues | JsonErrorKind::TooLarge)
    }
}

/// A parse failure, located in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub kind: JsonErrorKind,
    pub message: String,
    /// Byte offset in the value's text (from its first byte).
    pub offset: u64,
    /// Line (1-based) and column (1-based, in bytes) in the value's text.
    pub line: u64,
    pub column: u64,
    /// Keys and array positions (written `[N]`) from the top-level value to
    /// the error.
    pub path: Vec<String>,
    /// The error byte is the first non-blank byte of a line after the
    /// value's first line (the request reader resumes there).
    pub at_line_start: bool,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} at line {} column {}", self.message, self.line, self.column)
    }
}

impl std::error::Error for JsonError {}

/// Result of feeding a chunk.
#[derive(Debug)]
pub enum Step {
    /// The whole chunk was consumed and the value is not finished.
    NeedMore,
    /// A value is complete; `used` bytes of the chunk belong to it (or to
    /// the blanks before it).
    Done { value: Value, used: usize },
    /// A semantic error: the value ended after `used` bytes of the chunk.
    Rejected { error: JsonError, used: usize },
    /// A syntax error at byte `at` of the chunk (not consumed).
    Malformed { error: JsonError, at: usize },
}

enum Frame {
    Array(Vec<Value>),
    Object { map: Map<String, Value>, key: Option<String> },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Before the top-level value (blanks skipped, not counted).
    Idle,
    /// A value is expected.
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    After,
    /// Inside a string (a key when `key`).
    Str {
        key: bool,
    },
    /// After `\` in a string.
    Escape {
        key: bool,
    },
    /// Inside `\uXXXX`: `digits` read so far, `code` accumulated.
    Unicode {
        key: bool,
        digits: u8,
        code: u32,
    },
    /// After a high surrogate: expecting `\` then `u`.
    LowBackslash {
        key: bool,
        high: u32,
    },
    LowU {
        key: bool,
        high: u32,
    },
    LowUnicode {
        key: bool,
        high: u32,
        digits: u8,
        code: u32,
    },
    /// Inside a number literal (bytes in `scratch`).
    Number,
    /// Inside `true`, `false` or `null`: which, and bytes matched.
    Literal {
        which: u8,
        matched: u8,
    },
}

const LITERALS: [&[u8]; 3] = [b"true", b"false", b"null"];

/// An incremental parser of one JSON value at a time.
pub struct Parser {
    depth_max: usize,
    values_max: u64,
    size_max: u64,
    stack: Vec<Frame>,
    state: State,
    scratch: Vec<u8>,
    /// Values started in the current text.
    values: u64,
    /// Bytes of the current value so far.
    size: u64,
    line: u64,
    column: u64,
    line_blank: bool,
    /// A semantic error found; the rest of the value is skipped.
    poisoned: Option<JsonError>,
    /// The finished top-level value, if a scalar completed by a delimiter.
    done: Option<Value>,
}

impl Parser {
    /// A parser allowing `depth_max` nested containers, `values_max` values
    /// and `size_max` bytes per value.
    pub fn new(depth_max: usize, values_max: u64, size_max: u64) -> Parser {
        Parser {
            depth_max,
            values_max,
            size_max,
            stack: Vec::new(),
            state: State::Idle,
            scratch: Vec::new(),
            values: 0,
            size: 0,
            line: 1,
            column: 0,
            line_blank: true,
            poisoned: None,
            done: None,
        }
    }

    /// True when no value has been started.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.state = State::Idle;
        self.scratch.clear();
        self.values = 0;
        self.size = 0;
        self.line = 1;
        self.column = 0;
        self.line_blank = true;
        self.poisoned = None;
        self.done = None;
    }

    fn building(&self) -> bool {
        self.poisoned.is_none()
    }

    fn path(&self) -> Vec<String> {
        self.stack
            .iter()
            .map(|frame| match frame {
                Frame::Array(items) => format!("[{}]", items.len()),
                Frame::Object { key, .. } => key.clone().unwrap_or_default(),
            })
            .collect()
    }

    fn error(&self, kind: JsonErrorKind, message: impl Into<String>) -> JsonError {
        JsonError {
            kind,
            message: message.into(),
            offset: self.size.saturating_sub(1),
            line: self.line,
            column: self.column,
            path: self.path(),
            at_line_start: self.line_blank && self.line > 1,
        }
    }

    fn poison(&mut self, error: JsonError) {
        if self.poisoned.is_none() {
            self.poisoned = Some(error);
            // Nothing more is built: free what was.
            for frame in &mut self.stack {
                match frame {
                    Frame::Array(items) => *items = Vec::new(),
                    Frame::Object { map, .. } => *map = Map::new(),
                }
            }
        }
    }

    /// Feeds `input`; see [`Step`].
    pub fn feed(&mut self, input: &[u8]) -> Step {
        for (at, &byte) in input.iter().enumerate() {
            if self.state == State::Idle {
                if byte.is_ascii_whitespace() {
                    continue;
                }
                self.state = State::Value;
            }
            self.size += 1;
            if byte == b'\n' {
                self.line += 1;
                self.column = 0;
            } else {
                self.column += 1;
            }
            if self.size > self.size_max && self.poisoned.is_none() {
                let error = self.error(JsonErrorKind::TooLarge, format!("request larger than {} bytes", self.size_max));
                self.poison(error);
            }
            match self.byte(byte) {
                Ok(()) => {}
                Err(error) if error.kind.is_semantic() => self.poison(error),
                Err(error) => {
                    self.reset();
                    return Step::Malformed { error, at };
                }
            }
            if byte != b'\n' && !byte.is_ascii_whitespace() {
                self.line_blank = false;
            } else if byte == b'\n' {
                self.line_blank = true;
            }
            if let Some(step) = self.take_finished(at + 1) {
                return step;
            }
        }
        Step::NeedMore
    }

    fn take_finished(&mut self, used: usize) -> Option<Step> {
        let value = self.done.take()?;
        let poisoned = self.poisoned.take();
        self.reset();
        Some(match poisoned {
            Some(error) => Step::Rejected { error, used },
            None => Step::Done { value, used },
        })
    }

    /// Ends the input: completes a pending top-level number, or reports an
    /// incomplete value. `Ok(None)` when nothing was started.
    pub fn finish(&mut self) -> Result<Option<Value>, JsonError> {
        match self.state {
            State::Idle => return Ok(None),
            State::Number if self.stack.is_empty() => {
                if let Err(error) = self.end_number() {
                    self.reset();
                    return Err(error);
                }
            }
            _ => {}
        }
        let result = match (self.done.take(), self.poisoned.take()) {
            (_, Some(error)) => Err(error),
            (Some(value), None) => Ok(Some(value)),
            (None, None) => Err(self.error(JsonErrorKind::Syntax, "unexpected end of input")),
        };
        self.reset();
        result
    }

    fn byte(&mut self, byte: u8) -> Result<(), JsonError> {
        match self.state {
            State::Idle => unreachable!("blanks before a value are skipped in feed"),
            State::Value => self.value_start(byte),
            State::ArrayFirst => {
                if byte.is_ascii_whitespace() {
                    Ok(())
                } else if byte == b']' {
                    self.close(b']')
                } else {
                    self.value_start(byte)
                }
            }
            State::ObjectFirst | State::Key => match byte {
                _ if byte.is_ascii_whitespace() => Ok(()),
                b'}' if self.state == State::ObjectFirst => self.close(b'}'),
                b'"' => {
                    self.scratch.clear();
                    self.state = State::Str { key: true };
                    Ok(())
                }
                _ => Err(self.error(JsonErrorKind::Syntax, "expected a string key")),
            },
            State::Colon => match byte {
                _ if byte.is_ascii_whitespace() => Ok(()),
                b':' => {
                    self.state = State::Value;
                    Ok(())
                }
                _ => Err(self.error(JsonErrorKind::Syntax, "expected ':' after a key")),
            },
            State::After => match byte {
                _ if byte.is_ascii_whitespace() => Ok(()),
                b',' => {
                    self.state = match self.stack.last() {
                        Some(Frame::Object { .. }) => State::Key,
                        _ => State::Value,
                    };
                    Ok(())
                }
                b']' | b'}' => self.close(byte),
                _ => Err(self.error(JsonErrorKind::Syntax, "expected ',' or a closing bracket")),
            },
            State::Str { key } => match byte {
                b'"' => self.end_string(key),
                b'\\' => {
                    self.state = State::Escape { key };
                    Ok(())
                }
                0x00..=0x1F => Err(self.error(JsonErrorKind::Syntax, "control character in a string")),
                _ => {
                    if self.building() {
                        self.scratch.push(byte);
                    }
                    Ok(())
                }
            },
            State::Escape { key } => {
                let decoded = match byte {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0C,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        self.state = State::Unicode { key, digits: 0, code: 0 };
                        return Ok(());
                    }
                    _ => return Err(self.error(JsonErrorKind::Syntax, "invalid escape in a string")),
                };
                if self.building() {
                    self.scratch.push(decoded);
                }
                self.state = State::Str { key };
                Ok(())
            }
            State::Unicode { key, digits, code } => {
                let code = code * 16 + self.hex(byte)?;
                if digits < 3 {
                    self.state = State::Unicode { key, digits: digits + 1, code };
                    return Ok(());
                }
                match code {
                    0xD800..=0xDBFF => {
                        self.state = State::LowBackslash { key, high: code };
                        Ok(())
                    }
                    0xDC00..=0xDFFF => Err(self.error(JsonErrorKind::Syntax, "lone low surrogate in a string")),
                    _ => self.push_char(key, code),
                }
            }
            State::LowBackslash { key, high } => match byte {
                b'\\' => {
                    self.state = State::LowU { key, high };
                    Ok(())
                }
                _ => Err(self.error(JsonErrorKind::Syntax, "lone high surrogate in a string")),
            },
            State::LowU { key, high } => match byte {
                b'u' => {
                    self.state = State::LowUnicode { key, high, digits: 0, code: 0 };
                    Ok(())
                }
                _ => Err(self.error(JsonErrorKind::Syntax, "lone high surrogate in a string")),
            },
            State::LowUnicode { key, high, digits, code } => {
                let code = code * 16 + self.hex(byte)?;
                if digits < 3 {
                    self.state = State::LowUnicode { key, high, digits: digits + 1, code };
                    return Ok(());
                }
                if !(0xDC00..=0xDFFF).contains(&code) {
                    return Err(self.error(JsonErrorKind::Syntax, "high surrogate not followed by a low surrogate"));
                }
                self.push_char(key, 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00))
            }
            State::Number => {
                if matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    // A literal past the cap is refused in end_number; its
                    // tail is not kept.
                    if self.scratch.len() <= NUMBER_TEXT_MAX_BYTES {
                        self.scratch.push(byte);
                    }
                    return Ok(());
                }
                self.end_number()?;
                if self.stack.is_empty() {
                    // A top-level number ends at this byte, which must be a blank.
                    if byte.is_ascii_whitespace() {
                        return Ok(());
                    }
                    return Err(self.error(JsonErrorKind::Syntax, "unexpected character after a number"));
                }
                self.byte(byte)
            }
            State::Literal { which, matched } => {
                let text = LITERALS[usize::from(which)];
                if text.get(usize::from(matched)) != Some(&byte) {
                    return Err(self.error(JsonErrorKind::Syntax, "invalid literal"));
                }
                if usize::from(matched) + 1 < text.len() {
                    self.state = State::Literal { which, matched: matched + 1 };
                    return Ok(());
                }
                let value = match which {
                    0 => Value::Bool(true),
                    1 => Value::Bool(false),
                    _ => Value::Null,
                };
                self.push_value(value)
            }
        }
    }

    fn hex(&self, byte: u8) -> Result<u32, JsonError> {
        (byte as char).to_digit(16).ok_or_else(|| self.error(JsonErrorKind::Syntax, "invalid \\u escape"))
    }

    fn push_char(&mut self, key: bool, code: u32) -> Result<(), JsonError> {
        let character = char::from_u32(code).ok_or_else(|| self.error(JsonErrorKind::Syntax, "invalid \\u escape"))?;
        if self.building() {
            let mut buffer = [0u8; 4];
            self.scratch.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
        }
        self.state = State::Str { key };
        Ok(())
    }

    /// Counts a value start; past `values_max` the text is poisoned (read
    /// to its end, nothing more built).
    fn count_value(&mut self) {
        self.values += 1;
        if self.values > self.values_max && self.poisoned.is_none() {
            let error = self.error(JsonErrorKind::TooManyValues, format!("more than {} values in one text", self.values_max));
            self.poison(error);
        }
    }

    fn value_start(&mut self, byte: u8) -> Result<(), JsonError> {
        if byte.is_ascii_whitespace() {
            return Ok(());
        }
        match byte {
            b'{' | b'[' => {
                if self.stack.len() >= self.depth_max {
                    return Err(self.error(JsonErrorKind::TooDeep, format!("nesting deeper than {}", self.depth_max)));
                }
                self.count_value();
                if byte == b'{' {
                    self.stack.push(Frame::Object { map: Map::new(), key: None });
                    self.state = State::ObjectFirst;
                } else {
                    self.stack.push(Frame::Array(Vec::new()));
                    self.state = State::ArrayFirst;
                }
                Ok(())
            }
            b'"' => {
                self.count_value();
                self.scratch.clear();
                self.state = State::Str { key: false };
                Ok(())
            }
            b'-' | b'0'..=b'9' => {
                self.count_value();
                self.scratch.clear();
                self.scratch.push(byte);
                self.state = State::Number;
                Ok(())
            }
            b't' | b'f' | b'n' => {
                self.count_value();
                let which = match byte {
                    b't' => 0,
                    b'f' => 1,
                    _ => 2,
                };
                self.state = State::Literal { which, matched: 1 };
                Ok(())
            }
            _ => Err(self.error(JsonErrorKind::Syntax, "expected a value")),
        }
    }

    fn end_string(&mut self, key: bool) -> Result<(), JsonError> {
        let text = if self.building() {
            let bytes = std::mem::take(&mut self.scratch);
            match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => return Err(self.error(JsonErrorKind::Syntax, "string is not valid UTF-8")),
            }
        } else {
            // Skipping: only the structure matters, but invalid UTF-8 is
            // still not JSON; bytes are not kept, so it is not checked here.
            self.scratch.clear();
            String::new()
        };
        if key {
            if self.building() {
                if let Some(Frame::Object { map, .. }) = self.stack.last() {
                    if map.contains_key(&text) {
                        let mut error = self.error(JsonErrorKind::DuplicateKey, format!("duplicate key '{text}'"));
                        error.path.pop();
                        error.path.push(text.clone());
                        if let Some(Frame::Object { key, .. }) = self.stack.last_mut() {
                            *key = Some(text);
                        }
                        self.state = State::Colon;
                        return Err(error);
                    }
                }
            }
            if let Some(Frame::Object { key, .. }) = self.stack.last_mut() {
                *key = Some(text);
            }
            self.state = State::Colon;
            Ok(())
        } else {
            self.push_value(Value::String(text))
        }
    }

    fn end_number(&mut self) -> Result<(), JsonError> {
        let text = std::mem::take(&mut self.scratch);
        let value = match number_value(&text) {
            Ok(number) => Value::Number(number),
            Err(NumberError::Syntax) => return Err(self.error(JsonErrorKind::Syntax, "invalid number")),
            Err(NumberError::Inexact(message)) => {
                let error = self.error(JsonErrorKind::Number, message);
                self.poison(error);
                Value::Null
            }
        };
        self.push_value(value)
    }

    /// Puts a finished value into its container (or finishes the text).
    fn push_value(&mut self, value: Value) -> Result<(), JsonError> {
        let building = self.building();
        match self.stack.last_mut() {
            None => {
                self.done = Some(value);
                self.state = State::Idle;
            }
            Some(Frame::Array(items)) => {
                if building {
                    items.push(value);
                } else {
                    // Still count positions for error paths: nothing kept.
                }
                self.state = State::After;
            }
            Some(Frame::Object { map, key }) => {
                if building {
                    map.insert(key.take().unwrap_or_default(), value);
                }
                self.state = State::After;
            }
        }
        Ok(())
    }

    fn close(&mut self, byte: u8) -> Result<(), JsonError> {
        let value = match (self.stack.pop(), byte) {
            (Some(Frame::Array(items)), b']') => Value::Array(items),
            (Some(Frame::Object { map, .. }), b'}') => Value::Object(map),
            (Some(frame), _) => {
                self.stack.push(frame);
                return Err(self.error(JsonErrorKind::Syntax, "mismatched closing bracket"));
            }
            (None, _) => return Err(self.error(JsonErrorKind::Syntax, "unexpected closing bracket")),
        };
        self.push_value(value)
    }
}

/// Longest number literal kept; a longer one is refused (no f64 or i64
/// needs more digits than this to be written exactly).
pub const NUMBER_TEXT_MAX_BYTES: usize = 1100;

enum NumberError {
    Syntax,
    Inexact(String),
}

/// The exact value of a JSON number literal (rules in the module comment).
fn number_value(text: &[u8]) -> Result<Number, NumberError> {
    if text.len() > NUMBER_TEXT_MAX_BYTES {
        return Err(NumberError::Inexact(format!("number literal longer than {NUMBER_TEXT_MAX_BYTES} bytes")));
    }
    let literal = std::str::from_utf8(text).map_err(|_| NumberError::Syntax)?;
    let digits_and_rest = literal.strip_prefix('-').unwrap_or(literal);
    let bytes = digits_and_rest.as_bytes();
    let integer_len = bytes.iter().take_while(|byte| byte.is_ascii_digit()).count();
    if integer_len == 0 || (integer_len > 1 && bytes[0] == b'0') {
        return Err(NumberError::Syntax);
    }
    let mut at = integer_len;
    let mut is_integer = true;
    if bytes.get(at) == Some(&b'.') {
        let fraction_len = bytes[at + 1..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if fraction_len == 0 {
            return Err(NumberError::Syntax);
        }
        at += 1 + fraction_len;
        is_integer = false;
    }
    let mantissa_end = at;
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent_len = bytes[at..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if exponent_len == 0 {
            return Err(NumberError::Syntax);
        }
        at += exponent_len;
        is_integer = false;
    }
    if at != bytes.len() {
        return Err(NumberError::Syntax);
    }
    if is_integer {
        if let Ok(int) = literal.parse::<i64>() {
            return Ok(Number::from(int));
        }
        if let Ok(unsigned) = literal.parse::<u64>() {
            return Ok(Number::from(unsigned));
        }
        return match literal.parse::<f64>() {
            Ok(float) if float.is_finite() && format!("{:.0}", float.abs()) == digits_and_rest => {
                Number::from_f64(float).ok_or(NumberError::Syntax)
            }
            _ => Err(NumberError::Inexact(format!("integer {} has no exact i64, u64 or f64 value", abbreviate(literal)))),
        };
    }
    let float: f64 = literal.parse().map_err(|_| NumberError::Syntax)?;
    if !float.is_finite() {
        return Err(NumberError::Inexact(format!("number {} is beyond the f64 range", abbreviate(literal))));
    }
    let any_nonzero_digit = bytes[..mantissa_end].iter().any(|byte| matches!(byte, b'1'..=b'9'));
    if float == 0.0 && any_nonzero_digit {
        return Err(NumberError::Inexact(format!("number {} is too small for an f64 (it would become 0)", abbreviate(literal))));
    }
    Number::from_f64(float).ok_or(NumberError::Syntax)
}

fn abbreviate(literal: &str) -> String {
    if literal.len() <= 40 {
        literal.to_string()
    } else {
        format!("{}...({} digits)", &literal[..20], literal.len())
    }
}

/// The f64 a JSON number stands for when it is stored in, or compared
/// with, a float field: a float as parsed, or an integer (of either sign,
/// up to `u64::MAX`) only when an f64 holds it exactly. This is the one
/// exactness rule for documents, filters and range bounds alike; integers
/// past `u64::MAX` never reach it (the parser keeps them as floats when an
/// f64 holds them exactly, and refuses them otherwise).
pub fn exact_f64(number: &Number) -> Option<f64> {
    if let Some(int) = number.as_i64() {
        let float = int as f64;
        return (float as i128 == i128::from(int)).then_some(float);
    }
    if let Some(unsigned) = number.as_u64() {
        let float = unsigned as f64;
        return (float as u128 == u128::from(unsigned)).then_some(float);
    }
    number.as_f64().filter(|float| float.is_finite())
}

/// Deepest nesting accepted in a JSON file AeroDB reads (config, schemas,
/// metadata).
pub const FILE_DEPTH_MAX: usize = 128;
/// Most values accepted in one JSON file AeroDB reads.
pub const FILE_VALUES_MAX: u64 = 1 << 20;

/// Parses a JSON file's bytes with the file limits.
pub fn parse_file(bytes: &[u8]) -> Result<Value, JsonError> {
    parse_slice(bytes, FILE_DEPTH_MAX, FILE_VALUES_MAX)
}

/// Parses one whole JSON text (a file): exactly one value, blanks around it.
pub fn parse_slice(bytes: &[u8], depth_max: usize, values_max: u64) -> Result<Value, JsonError> {
    let mut parser = Parser::new(depth_max, values_max, u64::MAX);
    match parser.feed(bytes) {
        Step::Done { value, used } => {
            if let Some(extra) = bytes[used..].iter().position(|byte| !byte.is_ascii_whitespace()) {
                let mut error = parser.error(JsonErrorKind::Syntax, "trailing characters after the value");
                error.offset = (used + extra) as u64;
                return Err(error);
            }
            Ok(value)
        }
        Step::Rejected { error, .. } | Step::Malformed { error, .. } => Err(error),
        Step::NeedMore => match parser.finish() {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(parser.error(JsonErrorKind::Syntax, "empty input: expected a JSON value")),
            Err(error) => Err(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Value, JsonError> {
        parse_slice(text.as_bytes(), 64, 1_000_000)
    }

    #[test]
    fn agrees_with_serde_json_on_valid_texts() {
        for text in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e\n\u00e9\ud83d\ude00"},"f":-1.5e3,"g":[],"h":{}}"#,
            "  [1, 2 ,3]\n",
            r#""\"\\\/\b\f\n\r\t""#,
            "0",
            "-0.0",
            "123456789012345678",
            "18446744073709551615",
        ] {
            assert_eq!(parse(text).unwrap(), serde_json::from_str::<Value>(text).unwrap(), "{text}");
        }
    }

    #[test]
    fn refuses_duplicate_keys_with_their_path() {
        let error = parse(r#"{"a":{"b":1,"b":2}}"#).unwrap_err();
        assert_eq!(error.kind, JsonErrorKind::DuplicateKey);
        assert_eq!(error.path, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(parse(r#"{"op":"insert","op":"query"}"#).unwrap_err().kind, JsonErrorKind::DuplicateKey);
        assert!(parse(r#"[{"a":1},{"a":2}]"#).is_ok());
    }

    #[test]
    fn numbers_are_exact_or_refused() {
        assert_eq!(parse("-0").unwrap(), Value::from(0));
        assert_eq!(parse("9223372036854775808").unwrap(), Value::from(9223372036854775808u64));
        assert_eq!(parse("18446744073709551616").unwrap(), Value::from(18446744073709551616.0));
        for text in ["18446744073709551617", "123456789012345678901234567890", "-9223372036854775809", "1e400", "-1e400", "1e-400"] {
            assert_eq!(parse(text).unwrap_err().kind, JsonErrorKind::Number, "{text}");
        }
        assert_eq!(parse("1000000000000000.5").unwrap().as_f64(), Some(1000000000000000.5));
        assert_eq!(parse("5e-324").unwrap().as_f64(), Some(5e-324));
        assert_eq!(parse("0e-400").unwrap().as_f64(), Some(0.0));
        for text in ["01", "1.", ".5", "1e", "+1", "-", "1.5.5", "0x10", "1e+"] {
            assert_eq!(parse(text).unwrap_err().kind, JsonErrorKind::Syntax, "{text}");
        }
    }

    #[test]
    fn exact_f64_decides_for_every_integer() {
        let number = |text: &str| match parse(text).unwrap() {
            Value::Number(number) => number,
            other => panic!("{other}"),
        };
        for (text, expected) in [
            ("9007199254740992", Some(9007199254740992.0)),
            ("9007199254740993", None),
            ("-9007199254740993", None),
            ("9223372036854775807", None),
            ("-9223372036854775808", Some(-9223372036854775808.0)),
            ("9223372036854775808", Some(9223372036854775808.0)),
            ("18446744073709549568", Some(18446744073709549568.0)),
            ("18446744073709551615", None),
            ("18446744073709551616", Some(18446744073709551616.0)),
            ("0", Some(0.0)),
            ("-0", Some(0.0)),
            ("2.5", Some(2.5)),
        ] {
            assert_eq!(exact_f64(&number(text)), expected, "{text}");
        }
    }

    #[test]
    fn syntax_errors_and_limits() {
        for text in ["{", "[1,]", "{\"a\"}", "{\"a\":1,}", "tru", "nul", "\"\\x\"", "\"\\ud800\"", "[1}", "\"a\u{1}\"", "1 2"] {
            assert_eq!(parse(text).unwrap_err().kind, JsonErrorKind::Syntax, "{text:?}");
        }
        assert_eq!(parse_slice(b"[[[]]]", 2, 100).unwrap_err().kind, JsonErrorKind::TooDeep);
        assert_eq!(parse_slice(b"[1,2,3]", 8, 3).unwrap_err().kind, JsonErrorKind::TooManyValues);
        assert!(parse_slice(b"[1,2]", 8, 3).is_ok());
        assert!(parse_slice(b"\"\xff\"", 8, 3).is_err());
    }

    #[test]
    fn chunks_give_the_same_result_as_one_slice() {
        let text = br#"{"a": [1, 2.5, "x\u00e9y", {"b": null}], "c": -12e-3}   {"d":1}"#;
        for chunk in 1..text.len() {
            let mut parser = Parser::new(64, 1000, 1 << 20);
            let mut values = Vec::new();
            for piece in text.chunks(chunk) {
                let mut rest = piece;
                loop {
                    match parser.feed(rest) {
                        Step::Done { value, used } => {
                            values.push(value);
                            rest = &rest[used..];
                        }
                        Step::NeedMore => break,
                        other => panic!("{other:?}"),
                    }
                }
            }
            assert_eq!(values.len(), 2, "chunk {chunk}");
            assert_eq!(values[0]["c"].as_f64(), Some(-0.012));
        }
    }

    #[test]
    fn a_semantic_error_ends_exactly_one_value() {
        let text = br#"{"a":1,"a":[1,2,{"x":3}]} {"b":2}"#;
        let mut parser = Parser::new(64, 1000, 1 << 20);
        let Step::Rejected { error, used } = parser.feed(text) else { panic!() };
        assert_eq!(error.kind, JsonErrorKind::DuplicateKey);
        assert_eq!(&text[..used], br#"{"a":1,"a":[1,2,{"x":3}]}"#);
        let Step::Done { value, .. } = parser.feed(&text[used..]) else { panic!() };
        assert_eq!(value["b"], 2);
    }
}
