//! `aerodb-inspect`: dumps of the WAL and of pages, read-only.
//!
//! Each subcommand returns a [`Rendered`] output: a human text (tables) and
//! one JSON document; the binary prints one of them. Inspect shows files as
//! they are: segment pages are shown as they sit in their segment (no WAL
//! image applied), damaged bytes are shown as damaged, and nothing stops the
//! dump but a file that cannot be read at all.

pub mod page;
pub mod pages;
pub mod summary;
pub mod wal;

use serde_json::Value;

/// One subcommand's output in both forms.
pub struct Rendered {
    pub text: String,
    pub json: Value,
}
