//! Lifecycle states of a database process (docs/LIFECYCLE.md). Every
//! transition is logged as one JSON line on stderr.

use crate::log;

/// The state of a database in its lifecycle, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Nothing opened yet.
    Uninitialized,
    /// Config, lock, MANIFEST and schemas.
    Initializing,
    /// WAL replay.
    Recovering,
    /// Page verification and index rebuild.
    Verifying,
    /// Answering requests.
    Serving,
    /// Graceful shutdown in progress.
    ShuttingDown,
    /// Shut down cleanly.
    Terminated,
}

impl State {
    /// The state's name in logs (`SERVING`, …).
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
    /// A lifecycle in `Uninitialized`.
    pub fn new() -> Lifecycle {
        Lifecycle { state: State::Uninitialized }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Moves to `next` and logs the transition.
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
