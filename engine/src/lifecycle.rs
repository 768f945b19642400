//! Lifecycle states of a database process (docs/LIFECYCLE.md). Every
//! transition is logged as one JSON line on stderr.

use crate::log;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Uninitialized,
    Initializing,
    Recovering,
    Verifying,
    Serving,
    ShuttingDown,
    Terminated,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Uninitialized => "UNINITIALIZED",
            State::Initializing => "INITIALIZING",
            State::Recovering => "RECOVERING",
            State::Verifying => "VERIFYING",
            State::Serving => "SERVING",
            State::ShuttingDown => "SHUTTING_DOWN",
            State::Terminated => "TERMINATED",
        }
    }
}

/// Tracks and logs the current state.
#[derive(Debug)]
pub struct Lifecycle {
    state: State,
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle { state: State::Uninitialized }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn enter(&mut self, next: State) {
        log::info("lifecycle", "transition", &[("from", self.state.name().into()), ("to", next.name().into())]);
        self.state = next;
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}
