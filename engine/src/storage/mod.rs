//! The storage layer: files and their bytes. `io` (the WAL's file
//! interface, the in-memory faulty file, atomic writes), `pager` (segment
//! files mapped as page spaces), `wal` (the log writer and scanner). It
//! knows pages and records as bytes and nothing of documents or trees.
//! README.md in this folder gives the rules.

pub mod io;
pub mod pager;
pub mod vfs;
pub mod wal;
