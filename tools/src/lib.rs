//! `aerodb-tools`: the offline tools `aerodb-inspect` and `aerodb-verify`.
//!
//! Both tools read a data directory through `aerodb-format` only, never through
//! the engine, so that `aerodb-verify` is an independent check of what the
//! engine wrote. Both are read-only: they never create, modify or lock a file
//! (the LOCK probe takes a shared lock for an instant and releases it).
//!
//! Layers, from the bottom:
//! - [`files`]: reading a file into memory (or mapping a large one read-only);
//! - [`database`]: the config file, the data directory's paths, the LOCK probe;
//! - [`space`]: a page space (`data/` or `indexes/`) as segment files and pages;
//! - [`walscan`]: the WAL as a sequence of records, damaged records and a torn tail;
//! - [`describe`]: human and JSON renderings of pages, keys and documents;
//! - [`table`]: plain-text tables;
//! - [`inspect`] and [`verify`]: the two tools;
//! - [`cli`]: what both binaries share (argument parsing, exit codes).
//!
//! Nothing here trusts a length read from a file: every access to file bytes
//! is bounds-checked, and the `aerodb-format` helpers that index a page
//! without checking are only called after the checks that make them safe.

pub mod cli;
pub mod database;
pub mod describe;
pub mod extsort;
pub mod files;
pub mod inspect;
pub mod output;
pub mod space;
pub mod table;
pub mod verify;
pub mod walscan;
