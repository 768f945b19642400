//! A progress line on stderr for long checks, shown only when stderr is a
//! terminal and the work is large.

use std::io::{IsTerminal, Write};

/// Below this many steps no progress is shown.
pub const PROGRESS_STEPS_MIN: u64 = 16 * 1024;

pub struct Progress {
    enabled: bool,
    label: &'static str,
    total: u64,
    done: u64,
    step: u64,
}

impl Progress {
    pub fn new(label: &'static str, total: u64) -> Progress {
        let enabled = total >= PROGRESS_STEPS_MIN && std::io::stderr().is_terminal();
        Progress { enabled, label, total, done: 0, step: (total / 100).max(1) }
    }

    pub fn tick(&mut self) {
        self.done += 1;
        if self.enabled && self.done.is_multiple_of(self.step) {
            let percent = self.done * 100 / self.total.max(1);
            let _ = write!(std::io::stderr(), "\raerodb-verify: {} {}/{} ({percent}%)", self.label, self.done, self.total);
        }
    }

    pub fn finish(&mut self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(72));
            self.enabled = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
