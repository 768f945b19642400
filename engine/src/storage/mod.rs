//! The storage layer: files and their bytes. `vfs` (the file-system
//! interface every file goes through, the real one and the simulator),
//! `io` (the WAL's file over it, the in-memory faulty WAL file), `pager`
//! (segment files as page spaces), `wal` (the log writer and scanner). It
//! knows pages and records as bytes and nothing of documents or trees.
//! README.md in this folder gives the rules.

pub mod io;
pub mod pager;
pub mod vfs;
pub mod wal;
