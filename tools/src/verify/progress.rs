//! Progress on stderr for long runs (indicatif), shown only when stderr is a
//! terminal and the work is large; silent otherwise, so output that is
//! piped or captured never carries it. A bar is a shared handle: clones
//! (one per thread) advance the same bar.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Below this many steps no progress is shown.
pub const PROGRESS_STEPS_MIN: u64 = 16 * 1024;

#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar of `total` steps labelled `label` (for example "WAL" or "index pages").
    pub fn new(label: &'static str, total: u64) -> Progress {
        if total < PROGRESS_STEPS_MIN || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix} {msg:<14} [{bar:30}] {percent:>3}% {pos}/{len} {elapsed} (eta {eta})")
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(crate::cli::tool_name());
        bar.set_message(label);
        Progress { bar: Some(bar) }
    }

    pub fn tick(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Sets the position (for work measured in bytes).
    pub fn set(&mut self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
    }

    /// Clears the bar from the terminal.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
