#![warn(missing_docs)]
//! `aerodb-engine`: AeroDB, a strict, deterministic, embedded document
//! database, as a library.
//!
//! Every collection has a mandatory, versioned schema; every write is in
//! the write-ahead log and fdatasync'ed before the call returns; every
//! start runs full crash recovery; every query is proven bounded before it
//! runs. This crate is the whole engine: the `aerodb` command is a thin
//! front over it.
//!
//! # A first program
//!
//! Create a database, install a schema, insert and query typed structs,
//! and handle a duplicate `_id`, without writing a file by hand or building
//! JSON:
//!
//! ```
//! use aerodb_engine::{Database, ErrorCode, Field, Options, Order, Query, SchemaDef};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct User {
//!     _id: String,
//!     name: String,
//!     age: i64,
//! }
//!
//! # fn main() -> Result<(), aerodb_engine::AeroError> {
//! # let folder = tempfile::tempdir().unwrap();
//! # let data_dir = folder.path().join("data");
//! // `data_dir` must not exist yet: `create` makes it (as `aerodb init`) and opens it.
//! let mut db = Database::create(&data_dir, Options::default())?;
//!
//! let schema = SchemaDef::new("user", "v1")
//!     .field("_id", Field::string())
//!     .field("name", Field::string())
//!     .field("age", Field::int())
//!     .index("name")
//!     .index("age");
//! let users = db.install_schema_def(&schema)?.collection;
//!
//! db.insert(&users, &User { _id: "u1".into(), name: "Ada".into(), age: 36 })?;
//! db.insert(&users, &User { _id: "u2".into(), name: "Alan".into(), age: 41 })?;
//!
//! // The same _id again is refused, with a code to match on.
//! let error = db.insert(&users, &User { _id: "u1".into(), name: "Eve".into(), age: 1 }).unwrap_err();
//! assert_eq!(error.code, ErrorCode::WriteDuplicateId);
//!
//! // Queries name indexed fields and always carry a limit.
//! let adults: Vec<User> = db.find(&Query::new(&users).gte("age", 18).sort("age", Order::Desc).limit(10))?;
//! assert_eq!(adults.iter().map(|user| user.name.as_str()).collect::<Vec<_>>(), ["Alan", "Ada"]);
//!
//! let ada: Option<User> = db.get(&users, "u1")?;
//! assert_eq!(ada.map(|user| user.age), Some(36));
//!
//! // A graceful shutdown marks the database clean (dropping it is a crash to the next boot).
//! db.shutdown()?;
//!
//! // Later, or in another process: open it again.
//! let mut db = Database::open_dir(&data_dir, Options::default())?;
//! assert_eq!(db.documents(), 2);
//! # db.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Batches: group commit
//!
//! [`Database::write_batch`] commits many writes with one WAL append and
//! one fdatasync, each write keeping its own result (a rejected one changes
//! nothing and does not affect the others):
//!
//! ```
//! # use aerodb_engine::{Batch, Database, ErrorCode, Field, Options, Query, SchemaDef};
//! # let folder = tempfile::tempdir().unwrap();
//! # let mut db = Database::create(&folder.path().join("data"), Options::default()).unwrap();
//! # let schema = SchemaDef::new("note", "v1").field("_id", Field::int()).field("text", Field::string());
//! let notes = db.install_schema_def(&schema)?.collection;
//! let mut batch = Batch::new();
//! for id in 0..100 {
//!     batch.insert(&notes, &serde_json::json!({"_id": id, "text": format!("note {id}")}));
//! }
//! batch.insert(&notes, &serde_json::json!({"_id": 7, "text": "again"}));
//! let results = db.write_batch(&batch);
//! assert!(results[..100].iter().all(Result::is_ok));
//! assert_eq!(results[100].as_ref().unwrap_err().code, ErrorCode::WriteDuplicateId);
//! assert_eq!(db.documents(), 100);
//! # Ok::<(), aerodb_engine::AeroError>(())
//! ```
//!
//! # Plans
//!
//! Every query is planned and bounded before it runs; [`Database::explain`]
//! returns the plan as an [`Explain`]:
//!
//! ```
//! # use aerodb_engine::{Database, Field, Options, Query, SchemaDef};
//! # let folder = tempfile::tempdir().unwrap();
//! # let mut db = Database::create(&folder.path().join("data"), Options::default()).unwrap();
//! # let schema = SchemaDef::new("user", "v1").field("_id", Field::string()).field("age", Field::int()).index("age");
//! let users = db.install_schema_def(&schema)?.collection;
//! let plan = db.explain(&Query::new(&users).gte("age", 20).lt("age", 30).limit(5))?;
//! assert_eq!(plan.chosen_index, "age");
//! assert_eq!(plan.scan_type, "INDEX_RANGE");
//! assert!(plan.bounded);
//! // A filter on a field without an index is refused before anything runs.
//! # let schema = SchemaDef::new("user", "v2").field("_id", Field::string()).field("age", Field::int());
//! # let unindexed = db.install_schema_def(&schema)?.collection;
//! let error = db.find_json(&Query::new(&unindexed).eq("age", 3).limit(5)).unwrap_err();
//! assert_eq!(error.code, aerodb_engine::ErrorCode::QueryUnindexedField);
//! # Ok::<(), aerodb_engine::AeroError>(())
//! ```
//!
//! # The JSON API
//!
//! The typed calls translate to the JSON requests of the `aerodb` command
//! (docs/API_SPEC.md) and run through the same path, so both give the same
//! answers and store the same bytes. [`Database::respond`] takes a request
//! as a `serde_json::Value` and returns the response object;
//! [`Database::respond_batch`] runs many with group commit:
//!
//! ```
//! # use aerodb_engine::{Database, Field, Mode, Options, SchemaDef};
//! # use serde_json::json;
//! # let folder = tempfile::tempdir().unwrap();
//! # let mut db = Database::create(&folder.path().join("data"), Options::default()).unwrap();
//! # db.install_schema_def(&SchemaDef::new("user", "v1").field("_id", Field::string())).unwrap();
//! let insert = json!({"op": "insert", "schema_id": "user", "schema_version": "v1", "document": {"_id": "u1"}});
//! assert_eq!(db.respond(&insert, Mode::Query), json!({"status": "ok", "data": []}));
//! let again = db.respond(&insert, Mode::Query);
//! assert_eq!(again["code"], "AERO_WRITE_DUPLICATE_ID");
//! ```
//!
//! # Errors
//!
//! Every failure is an [`AeroError`]: a stable [`ErrorCode`] to match on,
//! a [`Severity`], a message for people, and details read with
//! [`AeroError::detail_str`] and [`AeroError::detail_u64`]. A `FATAL` error
//! (corruption found, a failed fdatasync) stops the database: every later
//! call returns the same error and [`Database::shutdown`] refuses to mark
//! it clean. docs/ERRORS.md lists every code.
//!
//! # Threads
//!
//! [`Database`] is `Send`, not `Sync`: move it to the thread that uses it,
//! or share it behind a `Mutex`. Every call takes `&mut self`; that
//! exclusive borrow is the engine's one execution lock, so writes and reads
//! never interleave and a read always sees every write before it. A program
//! with many threads either locks a `Mutex<Database>` around each call or
//! gives the database to one thread and sends it requests over a channel
//! (which also lets it gather writes into [`Database::write_batch`] calls,
//! one fdatasync for many). One process at a time opens a database: a
//! second `open` is `AERO_STORAGE_LOCKED`.
//!
//! ```
//! # use aerodb_engine::{Database, Field, Options, SchemaDef, Collection};
//! # use std::sync::{Arc, Mutex};
//! # let folder = tempfile::tempdir().unwrap();
//! # let mut db = Database::create(&folder.path().join("data"), Options::default()).unwrap();
//! # db.install_schema_def(&SchemaDef::new("hit", "v1").field("_id", Field::int())).unwrap();
//! let db = Arc::new(Mutex::new(db));
//! let hits = Collection::new("hit", "v1");
//! let workers: Vec<_> = (0..4)
//!     .map(|worker| {
//!         let (db, hits) = (db.clone(), hits.clone());
//!         std::thread::spawn(move || {
//!             for n in 0..10 {
//!                 db.lock().unwrap().insert(&hits, &serde_json::json!({"_id": worker * 100 + n})).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! for worker in workers {
//!     worker.join().unwrap();
//! }
//! assert_eq!(db.lock().unwrap().documents(), 40);
//! ```
//!
//! # Inside
//!
//! The folders are the layers, from the bottom (a module never calls one
//! above it), each with a README of its rules: `storage/` (`vfs`: the
//! file-system interface and its simulator; `io`: the WAL's file and the
//! in-memory faulty file; `pager`: segment files;
//! `wal`: the log writer and scanner) → `access/` (`heap`: slotted document
//! pages; `btree`: counted B-trees) → `catalog/` (schemas) → `query/`
//! (planner, executor, explain) → `recovery/` (the boot), `lifecycle` →
//! `db` (the facade, the JSON API) → `api` (the typed API), `backup`.
//! `config`, `error`, `log` and `crash` serve every layer. The modules below
//! `db` are public for AeroDB's own command, tools and tests and are hidden
//! from these docs: they are not a stable API.

#[doc(hidden)]
pub mod access;
pub mod api;
#[doc(hidden)]
pub mod backup;
#[doc(hidden)]
pub mod catalog;
#[doc(hidden)]
pub mod config;
#[doc(hidden)]
pub mod crash;
pub mod db;
pub mod error;
#[doc(hidden)]
pub mod lifecycle;
#[doc(hidden)]
pub mod log;
#[doc(hidden)]
pub mod query;
#[doc(hidden)]
pub mod recovery;
#[doc(hidden)]
pub mod requests;
#[doc(hidden)]
pub mod storage;

// The layers' modules under their short names, for the command, the tools
// and the tests (and for the engine's own `crate::io` and the like).
#[doc(hidden)]
pub use access::{btree, heap};
#[doc(hidden)]
pub use storage::{io, pager, vfs, wal};

pub use aerodb_format::SeqNo;
pub use api::{Batch, Collection, Explain, Field, FieldType, Options, Order, PlanSort, Query, SchemaDef, SchemaInstalled};
pub use db::{init, Database, Mode, OpenOptions};
pub use error::{AeroError, ErrorCode, Result, Severity};
pub use lifecycle::State;
pub use recovery::RecoveryReport;
