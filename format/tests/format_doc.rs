//! Keeps the worked examples of `FORMAT.md` identical to what the encoder
//! writes. Each example is a fenced block with a fixed info string:
//!
//! - `hex example-document-page`, `hex example-wal-record`,
//!   `hex example-manifest`, `hex example-wal-header`: hex dumps, one line
//!   `OFFSET: xx xx ...` per 16 bytes (OFFSET in hex, 4 digits, equal to
//!   the number of bytes before the line), and runs of zero bytes written
//!   as one line `... zero bytes up to OFFSET ...` (the bytes from the
//!   current position up to OFFSET, exclusive, are all zero);
//! - `text example-values`: lines `JSON -> hex` with the document value
//!   encoding of the JSON value;
//! - `text example-index-keys`: lines `JSON -> hex` with the index key
//!   encoding of a scalar, or of the concatenation of the encodings of the
//!   items of a JSON array (an index entry key).
//!
//! When an example is stale, the failure message prints the block the
//! encoder produces, ready to paste into `FORMAT.md`. Setting
//! `AERODB_PRINT_FORMAT_EXAMPLES=1` prints every block.

use aerodb_format::document::{decode_value, encode_record, encode_value};
use aerodb_format::key::{self, KeyValue};
use aerodb_format::manifest::Manifest;
use aerodb_format::page::{self, PageBytes, PageKind};
use aerodb_format::slotted;
use aerodb_format::wal::{self, RecordHeader, WalHeader, WalOp};
use aerodb_format::{PageNo, SeqNo};
use serde_json::{json, Value};

/// Longest buffer the 4-digit offsets of a hex dump can describe.
const HEX_DUMP_BYTES_MAX: usize = 0x10000;
const HEX_LINE_BYTES: usize = 16;

/// The database id used by the MANIFEST and WAL header examples.
const EXAMPLE_DATABASE_ID: [u8; 16] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];

fn format_md() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../FORMAT.md");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read FORMAT.md: {error}"))
}

/// The body of the one fenced block whose info string is exactly `info`.
fn fenced_block(markdown: &str, info: &str) -> String {
    let opening = format!("```{info}");
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() != opening {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|line| line.trim_end() != "```").collect();
        blocks.push(body.join("\n"));
    }
    assert_eq!(blocks.len(), 1, "FORMAT.md must hold exactly one block opened by {opening}");
    blocks.remove(0)
}

fn parse_hex_byte(token: &str, context: &str) -> u8 {
    assert_eq!(token.len(), 2, "{context}: '{token}' is not two hex digits");
    u8::from_str_radix(token, 16).unwrap_or_else(|_| panic!("{context}: '{token}' is not hex"))
}

fn parse_hex_bytes(text: &str, context: &str) -> Vec<u8> {
    text.split_whitespace().map(|token| parse_hex_byte(token, context)).collect()
}

fn parse_offset(text: &str, context: &str) -> usize {
    assert_eq!(text.len(), 4, "{context}: offset '{text}' is not 4 hex digits");
    usize::from_str_radix(text, 16).unwrap_or_else(|_| panic!("{context}: offset '{text}' is not hex"))
}

/// Parses a hex dump back to bytes, checking every offset.
fn parse_hex_dump(block: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (number, raw_line) in block.lines().enumerate() {
        let line = raw_line.trim();
        let context = format!("line {} '{line}'", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("... zero bytes up to ") {
            let end_text = rest.strip_suffix(" ...").unwrap_or_else(|| panic!("{context}: elision line must end with ' ...'"));
            let end = parse_offset(end_text, &context);
            assert!(end > bytes.len(), "{context}: elision must move forward from {:#06x}", bytes.len());
            bytes.resize(end, 0);
            continue;
        }
        let (offset_text, data) = line.split_once(": ").unwrap_or_else(|| panic!("{context}: expected 'OFFSET: bytes'"));
        assert_eq!(parse_offset(offset_text, &context), bytes.len(), "{context}: offset does not match the bytes before it");
        let data = parse_hex_bytes(data, &context);
        assert!(!data.is_empty() && data.len() <= HEX_LINE_BYTES, "{context}: a line holds 1 to 16 bytes");
        bytes.extend_from_slice(&data);
    }
    bytes
}

/// Renders bytes as a hex dump; runs of two or more all-zero lines become
/// one elision line.
fn render_hex_dump(bytes: &[u8]) -> String {
    assert!(bytes.len() <= HEX_DUMP_BYTES_MAX);
    let lines: Vec<&[u8]> = bytes.chunks(HEX_LINE_BYTES).collect();
    let is_zero_line = |chunk: &[u8]| chunk.len() == HEX_LINE_BYTES && chunk.iter().all(|&byte| byte == 0);
    let mut out = String::new();
    let mut index = 0;
    while index < lines.len() {
        let run = lines[index..].iter().take_while(|chunk| is_zero_line(chunk)).count();
        if run >= 2 {
            index += run;
            out.push_str(&format!("... zero bytes up to {:04x} ...\n", index * HEX_LINE_BYTES));
            continue;
        }
        let hex: Vec<String> = lines[index].iter().map(|byte| format!("{byte:02x}")).collect();
        out.push_str(&format!("{:04x}: {}\n", index * HEX_LINE_BYTES, hex.join(" ")));
        index += 1;
    }
    out
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(" ")
}

fn example_document() -> Value {
    json!({"_id": "1", "name": "alice", "age": 30})
}

/// Page 0 after the first write: the example document of `user`/`v1` in slot 0, LSN 1.
fn example_document_page() -> Box<PageBytes> {
    let document = example_document();
    let record = encode_record("user", "v1", document.as_object().unwrap()).unwrap();
    let mut page = page::new_page(PageKind::Document, PageNo(0));
    assert_eq!(slotted::insert(&mut page, &slotted::encode_inline(&record)), Some(0));
    page::seal(&mut page, SeqNo(1));
    page
}

/// The WAL record that logs the example insert (a new page: its whole image).
fn example_wal_record() -> Vec<u8> {
    let page = example_document_page();
    let id = json!("1");
    let header = RecordHeader { seq: SeqNo(1), op: WalOp::Insert, schema_id: "user", schema_version: "v1", id: &id };
    wal::encode_changes(&header, &[wal::PageWrite { page: &page, before: None }])
}

/// Page 0 after a second insert, `{"_id": "2", "name": "bob", "age": 25}`, LSN 2.
fn example_second_page() -> Box<PageBytes> {
    let document = json!({"_id": "2", "name": "bob", "age": 25});
    let record = encode_record("user", "v1", document.as_object().unwrap()).unwrap();
    let mut page = example_document_page();
    assert_eq!(slotted::insert(&mut page, &slotted::encode_inline(&record)), Some(1));
    page::seal(&mut page, SeqNo(2));
    page
}

/// The WAL record of the second insert: a delta of page 0.
fn example_delta_record() -> Vec<u8> {
    let before = example_document_page();
    let after = example_second_page();
    let id = json!("2");
    let header = RecordHeader { seq: SeqNo(2), op: WalOp::Insert, schema_id: "user", schema_version: "v1", id: &id };
    wal::encode_changes(&header, &[wal::PageWrite { page: &after, before: Some(&before) }])
}

/// Examples of the document value encoding.
const VALUE_EXAMPLES: &[&str] = &[
    "false",
    "true",
    "0",
    "30",
    "-3",
    "300",
    "-9223372036854775808",
    "2.5",
    "10.0",
    "-0.0",
    r#""""#,
    r#""alice""#,
    r#""é""#,
    "[]",
    r#"[1, "a"]"#,
    "{}",
    r#"{"b": true, "a": [false]}"#,
];

/// Examples of the index key encoding.
const KEY_EXAMPLES: &[&str] = &[
    "-1",
    "0",
    "30",
    "-2.5",
    "0.0",
    "-0.0",
    "2.5",
    "30.0",
    r#""""#,
    r#""1""#,
    r#""alice""#,
    r#""a\u0000b""#,
    "false",
    "true",
    r#"[30, "1"]"#,
    r#"["alice", "1"]"#,
    r#"[2.5, 7]"#,
];

fn encode_value_example(text: &str) -> Vec<u8> {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|error| panic!("{text}: {error}"));
    let mut out = Vec::new();
    encode_value(&mut out, &value).unwrap_or_else(|error| panic!("{text}: {error:?}"));
    let mut pos = 0;
    let decoded = decode_value(&out, &mut pos).unwrap();
    assert_eq!(pos, out.len());
    assert_eq!(decoded.to_string(), value.to_string(), "{text} does not survive a round trip");
    out
}

fn key_of(value: &Value, text: &str) -> KeyValue {
    KeyValue::from_json(value, false).unwrap_or_else(|| panic!("{text}: not a key value"))
}

fn encode_key_example(text: &str) -> Vec<u8> {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|error| panic!("{text}: {error}"));
    let parts: Vec<KeyValue> = match &value {
        Value::Array(items) => items.iter().map(|item| key_of(item, text)).collect(),
        scalar => vec![key_of(scalar, text)],
    };
    let mut out = Vec::new();
    for part in &parts {
        key::encode(&mut out, part);
    }
    let mut pos = 0;
    for part in &parts {
        let decoded = key::decode(&out, &mut pos).unwrap();
        let expected = match part {
            KeyValue::Float(float) if *float == 0.0 => KeyValue::Float(0.0),
            other => other.clone(),
        };
        assert_eq!(decoded, expected, "{text}");
    }
    assert_eq!(pos, out.len());
    out
}

fn render_examples(examples: &[&str], encode: fn(&str) -> Vec<u8>) -> String {
    examples.iter().map(|text| format!("{text} -> {}\n", hex_string(&encode(text)))).collect()
}

fn check_hex_block(info: &str, expected: &[u8]) {
    let block = fenced_block(&format_md(), info);
    let documented = parse_hex_dump(&block);
    assert!(
        documented == expected,
        "FORMAT.md block `{info}` differs from the encoder; the encoder writes:\n```{info}\n{}```",
        render_hex_dump(expected)
    );
}

fn check_example_lines(info: &str, examples: &[&str], encode: fn(&str) -> Vec<u8>) {
    let block = fenced_block(&format_md(), info);
    let documented: Vec<(String, Vec<u8>)> = block
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (text, hex) = line.split_once(" -> ").unwrap_or_else(|| panic!("'{line}': expected 'JSON -> hex'"));
            (text.trim().to_string(), parse_hex_bytes(hex, line))
        })
        .collect();
    for (text, bytes) in &documented {
        assert_eq!(&encode(text), bytes, "FORMAT.md block `{info}`, line for {text}");
    }
    let expected: Vec<&str> = examples.to_vec();
    let listed: Vec<&str> = documented.iter().map(|(text, _)| text.as_str()).collect();
    assert!(
        listed == expected,
        "FORMAT.md block `{info}` lists other values; the encoder writes:\n```{info}\n{}```",
        render_examples(examples, encode)
    );
}

#[test]
fn hex_dump_text_round_trips() {
    let mut bytes = vec![0u8; 100];
    bytes[3] = 7;
    bytes[99] = 1;
    assert_eq!(parse_hex_dump(&render_hex_dump(&bytes)), bytes);
    let zeros = vec![0u8; 64];
    assert_eq!(render_hex_dump(&zeros), "... zero bytes up to 0040 ...\n");
    assert_eq!(parse_hex_dump(&render_hex_dump(&zeros)), zeros);
}

#[test]
fn crc32c_is_castagnoli() {
    // The check value FORMAT.md quotes.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn document_page_example_matches_the_encoder() {
    let page = example_document_page();
    page::verify(&page, PageNo(0)).unwrap();
    check_hex_block("hex example-document-page", &page[..]);
}

#[test]
fn wal_record_example_matches_the_encoder() {
    let bytes = example_wal_record();
    let record = wal::decode_record(&bytes).unwrap();
    assert_eq!(record.length, bytes.len());
    assert_eq!(*record.pages[0].image().unwrap().to_page().unwrap(), *example_document_page());
    check_hex_block("hex example-wal-record", &bytes);
}

#[test]
fn wal_delta_record_example_matches_the_encoder() {
    let bytes = example_delta_record();
    let record = wal::decode_record(&bytes).unwrap();
    let wal::PageChange::Delta(delta) = &record.pages[0] else { panic!("the second insert logs a delta") };
    let mut page = example_document_page();
    delta.apply(&mut page);
    assert!(*page == *example_second_page());
    check_hex_block("hex example-wal-delta-record", &bytes);
}

#[test]
fn manifest_example_matches_the_encoder() {
    check_hex_block("hex example-manifest", &Manifest::new(EXAMPLE_DATABASE_ID).encode());
}

#[test]
fn wal_header_example_matches_the_encoder() {
    check_hex_block("hex example-wal-header", &WalHeader::new(EXAMPLE_DATABASE_ID).encode());
}

#[test]
fn value_examples_match_the_encoder() {
    check_example_lines("text example-values", VALUE_EXAMPLES, encode_value_example);
}

#[test]
fn index_key_examples_match_the_encoder() {
    check_example_lines("text example-index-keys", KEY_EXAMPLES, encode_key_example);
}

#[test]
fn print_examples_on_request() {
    if std::env::var_os("AERODB_PRINT_FORMAT_EXAMPLES").is_none() {
        return;
    }
    let blocks = [
        ("hex example-document-page", render_hex_dump(&example_document_page()[..])),
        ("hex example-wal-record", render_hex_dump(&example_wal_record())),
        ("hex example-wal-delta-record", render_hex_dump(&example_delta_record())),
        ("hex example-manifest", render_hex_dump(&Manifest::new(EXAMPLE_DATABASE_ID).encode())),
        ("hex example-wal-header", render_hex_dump(&WalHeader::new(EXAMPLE_DATABASE_ID).encode())),
        ("text example-values", render_examples(VALUE_EXAMPLES, encode_value_example)),
        ("text example-index-keys", render_examples(KEY_EXAMPLES, encode_key_example)),
    ];
    for (info, body) in blocks {
        println!("```{info}\n{body}```\n");
    }
}
