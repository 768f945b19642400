//! Structured logs: one JSON object per line on stderr (level, component,
//! event, fields). Logs never go to stdout, which carries responses only.

use serde_json::{Map, Value};

/// Writes one log line. `fields` are appended in the given order.
pub fn log(level: &str, component: &str, event: &str, fields: &[(&str, Value)]) {
    let mut object = Map::new();
    object.insert("level".into(), Value::from(level));
    object.insert("component".into(), Value::from(component));
    object.insert("event".into(), Value::from(event));
    for (key, value) in fields {
        object.insert((*key).to_string(), value.clone());
    }
    // eprintln! (not a raw stderr handle) so test harnesses capture it.
    eprintln!("{}", Value::Object(object));
}

pub fn info(component: &str, event: &str, fields: &[(&str, Value)]) {
    log("info", component, event, fields);
}

pub fn warn(component: &str, event: &str, fields: &[(&str, Value)]) {
    log("warn", component, event, fields);
}
