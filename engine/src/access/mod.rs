//! The access layer: documents in slotted pages (`heap`) and counted
//! B-trees over index pages (`btree`), both on pages the storage layer
//! provides. README.md in this folder gives the algorithms and invariants.

pub mod btree;
pub mod heap;
