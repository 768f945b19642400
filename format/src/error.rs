//! The one error type of every decoder in this crate.

use std::fmt;

/// A structure failed to decode: which structure, which field, at which byte
/// offset (relative to the start of the buffer handed to the decoder), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub structure: &'static str,
    pub field: &'static str,
    pub offset: usize,
    pub reason: String,
}

impl DecodeError {
    pub fn new(structure: &'static str, field: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        DecodeError { structure, field, offset, reason: reason.into() }
    }

    /// The same error with its offset moved by `base` (for nested decoders).
    pub fn shifted(mut self, base: usize) -> Self {
        self.offset += base;
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} field '{}' at offset {}: {}", self.structure, self.field, self.offset, self.reason)
    }
}

impl std::error::Error for DecodeError {}
