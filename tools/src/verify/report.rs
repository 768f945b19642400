//! The verify report: every finding with its place, and what was checked.
//!
//! A finding is a problem (the database is not consistent: exit 1), a
//! warning (worth knowing, not wrong: a torn WAL tail) or a note (context: a
//! page replay will rewrite, checks that were skipped). Each names the file
//! (relative to the data directory), the page when one is concerned, and a
//! byte offset in that file when one is known.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Problem,
    Warning,
    Note,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Problem => "problem",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// Where a finding is: a file, and optionally a page and a byte offset in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub page: Option<u64>,
    pub offset: Option<u64>,
}

impl Location {
    pub fn file(file: &str) -> Location {
        Location { file: file.to_string(), page: None, offset: None }
    }

    pub fn at(file: &str, offset: u64) -> Location {
        Location { file: file.to_string(), page: None, offset: Some(offset) }
    }

    pub fn page(file: &str, page: u64, offset: u64) -> Location {
        Location { file: file.to_string(), page: Some(page), offset: Some(offset) }
    }

    /// `file[ page P][ offset O]`.
    pub fn render(&self) -> String {
        let mut text = self.file.clone();
        if let Some(page) = self.page {
            text.push_str(&format!(" page {page}"));
        }
        if let Some(offset) = self.offset {
            text.push_str(&format!(" offset {offset}"));
        }
        text
    }
}

/// One thing verify found.
#[derive(Clone, Debug)]
pub struct Finding {
    pub level: Level,
    pub location: Location,
    pub message: String,
}

impl Finding {
    pub fn to_json(&self) -> Value {
        json!({
            "level": self.level.name(),
            "file": self.location.file,
            "page": self.location.page,
            "offset": self.location.offset,
            "message": self.message,
        })
    }
}

/// Findings kept with their text; past this many, findings are only counted
/// (a database damaged everywhere must not make the report itself unbounded).
pub const FINDINGS_KEPT_MAX: usize = 10_000;

/// Everything verify found, in the order it was found, and the counts of
/// what it checked.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub checked: BTreeMap<&'static str, u64>,
    /// Findings past [`FINDINGS_KEPT_MAX`], counted by level.
    pub omitted: BTreeMap<Level, u64>,
}

impl Report {
    pub fn problem(&mut self, location: Location, message: impl Into<String>) {
        self.push(Level::Problem, location, message.into());
    }

    pub fn warning(&mut self, location: Location, message: impl Into<String>) {
        self.push(Level::Warning, location, message.into());
    }

    pub fn note(&mut self, location: Location, message: impl Into<String>) {
        self.push(Level::Note, location, message.into());
    }

    fn push(&mut self, level: Level, location: Location, message: String) {
        if self.findings.len() >= FINDINGS_KEPT_MAX {
            *self.omitted.entry(level).or_insert(0) += 1;
            return;
        }
        self.findings.push(Finding { level, location, message });
    }

    /// Appends `other`'s findings (after this report's) and adds its counts.
    pub fn append(&mut self, other: Report) {
        for finding in other.findings {
            self.push(finding.level, finding.location, finding.message);
        }
        for (level, count) in other.omitted {
            *self.omitted.entry(level).or_insert(0) += count;
        }
        for (name, count) in other.checked {
            self.count(name, count);
        }
    }

    /// Adds `amount` to the counter `name`.
    pub fn count(&mut self, name: &'static str, amount: u64) {
        *self.checked.entry(name).or_insert(0) += amount;
    }

    pub fn count_of(&self, level: Level) -> usize {
        let omitted = self.omitted.get(&level).copied().unwrap_or(0) as usize;
        self.findings.iter().filter(|finding| finding.level == level).count() + omitted
    }

    pub fn problems(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|finding| finding.level == Level::Problem)
    }

    pub fn is_clean(&self) -> bool {
        self.count_of(Level::Problem) == 0
    }

    /// `{"problems": [...], "notes": [...], "checked": {...}, "summary": {...}}`;
    /// warnings go with the notes, marked by their `level`.
    pub fn to_json(&self) -> Value {
        let problems: Vec<Value> = self.problems().map(Finding::to_json).collect();
        let notes: Vec<Value> = self.findings.iter().filter(|finding| finding.level != Level::Problem).map(Finding::to_json).collect();
        json!({
            "problems": problems,
            "notes": notes,
            "checked": self.checked,
            "summary": {
                "problems": self.count_of(Level::Problem),
                "warnings": self.count_of(Level::Warning),
                "notes": self.count_of(Level::Note),
                "clean": self.is_clean(),
            },
        })
    }

    /// One line per finding, then a summary line.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            let label = match finding.level {
                Level::Problem => "PROBLEM",
                Level::Warning => "WARNING",
                Level::Note => "NOTE",
            };
            out.push_str(&format!("{label} {}: {}\n", finding.location.render(), finding.message));
        }
        let omitted: u64 = self.omitted.values().sum();
        if omitted > 0 {
            out.push_str(&format!(
                "... and {omitted} more finding(s), counted below but not listed (only the first {FINDINGS_KEPT_MAX} are kept)\n"
            ));
        }
        let checked: Vec<String> = self.checked.iter().map(|(name, count)| format!("{name}={count}")).collect();
        out.push_str(&format!(
            "{}: {} problem(s), {} warning(s), {} note(s); checked {}\n",
            if self.is_clean() { "CLEAN" } else { "PROBLEMS FOUND" },
            self.count_of(Level::Problem),
            self.count_of(Level::Warning),
            self.count_of(Level::Note),
            checked.join(" ")
        ));
        out
    }
}
