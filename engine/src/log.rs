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
    // One formatted line, newline included: one write. A stderr that cannot
    // be written (closed, full) loses the line and nothing else: logging
    // never panics and never cuts a shutdown short (eprint! would panic).
    let mut line = Value::Object(object).to_string();
    line.push('\n');
    write_stderr(&line);
}

/// Writes `text` to stderr, ignoring every error (see [`log`]).
pub fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

pub fn info(component: &str, event: &str, fields: &[(&str, Value)]) {
    log("info", component, event, fields);
}

pub fn warn(component: &str, event: &str, fields: &[(&str, Value)]) {
    log("warn", component, event, fields);
}

/// Progress of a long phase, shown on stderr only when stderr is a terminal
/// and the phase is large: one log line per tenth of the work.
pub struct Progress {
    phase: &'static str,
    total: u64,
    next_report: u64,
    enabled: bool,
}

impl Progress {
    /// A phase of `total` units that reports only if `total >= units_min`.
    pub fn new(phase: &'static str, total: u64, units_min: u64) -> Progress {
        use std::io::IsTerminal;
        let enabled = total >= units_min && std::io::stderr().is_terminal();
        Progress { phase, total, next_report: total / 10, enabled }
    }

    pub fn update(&mut self, done: u64) {
        if self.enabled && done >= self.next_report {
            info("recovery", "progress", &[("phase", self.phase.into()), ("done", done.into()), ("total", self.total.into())]);
            self.next_report = done + self.total / 10;
        }
    }
}
