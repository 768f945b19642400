//! Human and JSON renderings shared by the tools: index keys, page headers,
//! hex dumps.

use serde_json::{json, Value};

use aerodb_format::key::{self, KeyValue};
use aerodb_format::page::{compute_checksum, PageBytes, PageHeader, PageKind};
use aerodb_format::PageNo;

/// The values an index key holds, in order, or None if it does not decode.
pub fn key_values(bytes: &[u8]) -> Option<Vec<KeyValue>> {
    let mut values = Vec::new();
    let mut position = 0;
    // Each value consumes at least two bytes, so this ends.
    while position < bytes.len() {
        values.push(key::decode(bytes, &mut position).ok()?);
    }
    Some(values)
}

/// `(30, "alice")`, `()` for the empty key, or `0x…` when it does not decode.
pub fn key_text(bytes: &[u8]) -> String {
    match key_values(bytes) {
        Some(values) => {
            let parts: Vec<String> = values.iter().map(|value| value.to_json().to_string()).collect();
            format!("({})", parts.join(", "))
        }
        None => format!("0x{}", hex(bytes)),
    }
}

/// The key as a JSON array of its values, or `{"undecodable": "<hex>"}`.
pub fn key_json(bytes: &[u8]) -> Value {
    match key_values(bytes) {
        Some(values) => Value::Array(values.iter().map(KeyValue::to_json).collect()),
        None => json!({ "undecodable": hex(bytes) }),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A page link for display: the number or "none".
pub fn link_text(page_no: PageNo) -> String {
    if page_no.is_none() {
        "none".into()
    } else {
        page_no.to_string()
    }
}

fn link_json(page_no: PageNo) -> Value {
    if page_no.is_none() {
        Value::Null
    } else {
        Value::from(page_no.0)
    }
}

/// Name of a page kind byte.
pub fn kind_name(kind: u8) -> String {
    match PageKind::from_byte(kind) {
        Some(kind) => kind.name().to_string(),
        None if kind == 0 => "unwritten".into(),
        None => format!("unknown({kind})"),
    }
}

/// Every header field, decoded, plus the computed checksum.
pub fn header_fields(page: &PageBytes) -> Vec<(&'static str, String, Value)> {
    let header = PageHeader::read(page);
    let stored = header.checksum.get();
    let computed = compute_checksum(page);
    vec![
        ("checksum", format!("{stored:#010x} (computed {computed:#010x})"), json!({"stored": stored, "computed": computed})),
        ("kind", format!("{} ({})", kind_name(header.kind), header.kind), Value::from(kind_name(header.kind))),
        ("flags", header.flags.to_string(), Value::from(header.flags)),
        ("lower", header.lower().to_string(), Value::from(header.lower())),
        ("upper", header.upper().to_string(), Value::from(header.upper())),
        ("item_count", header.item_count.get().to_string(), Value::from(header.item_count.get())),
        ("level", header.level.get().to_string(), Value::from(header.level.get())),
        ("page_no", header.page_no().to_string(), Value::from(header.page_no().0)),
        ("lsn", header.lsn().to_string(), Value::from(header.lsn().0)),
        ("next", link_text(header.next()), link_json(header.next())),
        ("prev", link_text(header.prev()), link_json(header.prev())),
    ]
}

/// Bytes of a page in use: everything but the hole, when the hole bounds are sane.
pub fn used_bytes(page: &PageBytes) -> Option<usize> {
    let header = PageHeader::read(page);
    let (lower, upper) = (header.lower(), header.upper());
    let size = aerodb_format::PAGE_SIZE_BYTES;
    if lower < aerodb_format::page::HEADER_BYTES || lower > upper || upper > size {
        return None;
    }
    Some(size - (upper - lower))
}

/// A hex dump, 16 bytes a line with offsets and ASCII; runs of identical
/// lines are folded into one `*` line, as hexdump does.
pub fn hex_dump(bytes: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut previous: Option<&[u8]> = None;
    let mut folded = false;
    for (index, chunk) in bytes.chunks(16).enumerate() {
        if previous == Some(chunk) && index * 16 + 16 < bytes.len() {
            if !folded {
                lines.push("*".to_string());
                folded = true;
            }
            continue;
        }
        folded = false;
        previous = Some(chunk);
        let hex_part: Vec<String> = chunk.iter().map(|byte| format!("{byte:02x}")).collect();
        let ascii: String = chunk.iter().map(|&byte| if byte.is_ascii_graphic() || byte == b' ' { byte as char } else { '.' }).collect();
        lines.push(format!("{:06x}  {:<47}  |{ascii}|", index * 16, hex_part.join(" ")));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_render() {
        let mut bytes = key::encode_to_vec(&KeyValue::Int(30));
        key::encode(&mut bytes, &KeyValue::String("a".into()));
        assert_eq!(key_text(&bytes), "(30, \"a\")");
        assert_eq!(key_text(&[]), "()");
        assert_eq!(key_text(&[0x99]), "0x99");
    }

    #[test]
    fn hex_dump_folds_repeats() {
        let lines = hex_dump(&[0u8; 64]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[1], "*");
    }
}
