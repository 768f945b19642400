//! `aerodb-engine`: the AeroDB storage engine and its `Database` facade.
//!
//! Layers, from the bottom (a module never calls one above it):
//! `io` (file trait, in-memory faulty file) → `wal`, `pager` (mmap
//! segments) → `heap` (slotted document pages), `btree` (counted B-trees)
//! → `catalog` (schemas) → `query` (planner, executor, explain) →
//! `recovery`, `lifecycle` → `db` (the facade). `config`, `error`, `log`
//! and `crash` serve every layer.

pub mod btree;
pub mod catalog;
pub mod config;
pub mod crash;
pub mod db;
pub mod error;
pub mod heap;
pub mod io;
pub mod lifecycle;
pub mod log;
pub mod pager;
pub mod query;
pub mod recovery;
pub mod requests;
pub mod wal;

pub use db::{init, Database, Mode, OpenOptions};
pub use error::{AeroError, ErrorCode, Result, Severity};
