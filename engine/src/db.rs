//! The `Database` facade: init, open (the boot sequence), execute one
//! request, and graceful shutdown. It is the library API for embedding and
//! what the `aerodb` binary drives.
//!
//! Writes run under `&mut self`, which is the one global execution lock:
//! validate → plan the page images → append one WAL record → fdatasync →
//! apply the images to the segments → update the B-trees → respond.
//! After a fatal error the database refuses every further request.

use std::collections::BTreeMap;
use std::path::Path;

use aerodb_format::document::encode_record;
use aerodb_format::key::{self, KeyValue};
use aerodb_format::manifest::Manifest;
use aerodb_format::schema::{FieldType, Schema};
use aerodb_format::wal::{encode_changes, PageWrite, RecordHeader, WalHeader, WalOp};
use aerodb_format::{config::Config, SeqNo, DOC_SIZE_MAX_BYTES};
use serde_json::{json, Map, Value};

use crate::btree::{Indexes, TreeId};
use crate::catalog::Catalog;
use crate::config::{self, EngineConfig, Paths};
use crate::crash;
use crate::error::{io_error, AeroError, ErrorCode, Result};
use crate::heap::Heap;
use crate::io::{OsFile, WalFile};
use crate::lifecycle::{Lifecycle, State};
use crate::log;
use crate::pager::Pager;
use crate::query::{self, Plan};
use crate::recovery::{self, index_keys, RecoveryReport};
use crate::vfs::{Access, FileHandle};
use crate::wal::Wal;

/// How `op: "query"` requests are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run queries.
    Query,
    /// Answer queries with their plans (`aerodb explain`).
    Explain,
}

/// Test hooks for opening a database.
#[derive(Default)]
pub struct OpenOptions {
    /// A WAL file to use instead of `wal/wal.log` (the in-memory file of
    /// the fault tests). It must hold the same bytes the real file would.
    pub wal_file: Option<Box<dyn WalFile>>,
    /// Planned failures of document segment allocation (ENOSPC, EIO).
    pub segment_allocation_faults: Option<crate::io::AllocationFaults>,
    /// The file system to reach the data directory through instead of the
    /// real one (the simulator of the power-loss tests).
    pub file_system: Option<std::sync::Arc<dyn crate::vfs::FileSystem>>,
}

/// An open database, serving requests.
pub struct Database {
    config: EngineConfig,
    lifecycle: Lifecycle,
    catalog: Catalog,
    wal: Wal,
    heap: Heap,
    indexes: Indexes,
    /// The data directory and `LOCK`, both flock'ed (see `take_lock`).
    _lock: (Box<dyn FileHandle>, Box<dyn FileHandle>),
    documents: u64,
    /// Encoded sizes of the stored documents per (schema_id, schema_version),
    /// size → count: the planner's per-document memory bound is the largest
    /// size stored now, so it depends on the data only, never on the history
    /// of the process (deterministic plans across restarts).
    document_sizes: BTreeMap<(String, String), BTreeMap<u64, u64>>,
    report: RecoveryReport,
    fatal: Option<AeroError>,
    /// The `_id` → location changes of the writes staged in the open group
    /// (`None`: deleted), seen by `find` before the indexes have them.
    group_ids: std::collections::HashMap<(String, Vec<u8>), Option<(std::sync::Arc<Schema>, aerodb_format::btree::Locator)>>,
}

/// Most writes committed as one group (one append, one fdatasync).
pub const GROUP_WRITES_MAX: usize = 1024;

/// Most WAL bytes in one group: a group closes once its records reach this
/// size (the write that crosses it is the group's last). This also bounds
/// the staged page images a group holds in memory.
pub const GROUP_WAL_BYTES_MAX: usize = 8 * 1024 * 1024;

/// A write that is planned, logged in memory and staged, waiting for its
/// group's fdatasync.
struct StagedWrite {
    /// Position of the request in the batch.
    position: usize,
    seq: SeqNo,
    record: Vec<u8>,
    /// Index changes, applied in order once the record is durable.
    index_changes: Vec<IndexChange>,
    /// Change in the number of documents (+1 insert, -1 delete).
    documents_delta: i64,
    /// Encoded document sizes counted out (`false`) and in (`true`).
    size_notes: Vec<(std::sync::Arc<Schema>, usize, bool)>,
}

enum IndexChange {
    Insert {
        schema: std::sync::Arc<Schema>,
        keys: Vec<(String, Vec<u8>)>,
        locator: aerodb_format::btree::Locator,
    },
    /// `locator`: where the removed document was; every removed entry must point there.
    Remove {
        schema: std::sync::Arc<Schema>,
        keys: Vec<(String, Vec<u8>)>,
        locator: aerodb_format::btree::Locator,
    },
}

/// Creates a new database at the config file's `data_dir` (which must not
/// exist), as `aerodb init` does.
pub fn init(config_path: &Path) -> Result<()> {
    init_config(&config::load(config_path)?)
}

/// Creates a new database for a validated config.
pub(crate) fn init_config(config: &EngineConfig) -> Result<()> {
    let root = &config.paths.root;
    let exists = || {
        AeroError::new(ErrorCode::StorageExists, format!("{} already exists; init never touches an existing directory", root.display()))
            .detail("data_dir", root.display().to_string())
    };
    let fs = &*config.paths.fs;
    if fs.exists(root) {
        return Err(exists());
    }
    // Build the tree beside its final place under a name no other process
    // uses (so concurrent inits never share or delete each other's tree, and
    // nothing that already exists is ever removed), then rename it into
    // place in one step that refuses to replace anything: of several
    // concurrent inits exactly one succeeds.
    let io = |path: &Path, error: std::io::Error| io_error(ErrorCode::StorageIoError, "cannot create", path, &error);
    let database_id = random_database_id(fs).map_err(|error| io(Path::new("/dev/urandom"), error))?;
    let (staging, parent) = crate::vfs::staging_path(fs, root, "init").map_err(|error| io(Path::new("/dev/urandom"), error))?;
    let parent = parent.as_path();
    let paths = Paths::with_fs(staging.clone(), config.paths.fs.clone());
    let result = build_database_tree(&paths, config, database_id).and_then(|()| {
        // The whole tree is durable under its staging name; nothing is at DATA_DIR yet.
        crash::reach("init_before_rename");
        fs.rename_no_replace(&staging, root).map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => exists(),
            _ => io(root, error),
        })
    });
    if let Err(error) = result {
        // Only the tree this process made is removed.
        fs.remove_tree(&staging);
        return Err(error);
    }
    fs.sync_dir(parent).map_err(|error| io(parent, error))?;
    log::info("lifecycle", "initialized", &[("data_dir", root.display().to_string().into())]);
    Ok(())
}

/// Creates every folder and file of a new database under `paths.root`
/// (which must not exist yet) and syncs them.
fn build_database_tree(paths: &Paths, config: &config::EngineConfig, database_id: [u8; 16]) -> Result<()> {
    let io = |path: &Path, error: std::io::Error| io_error(ErrorCode::StorageIoError, "cannot create", path, &error);
    for folder in [&paths.root, &paths.wal_dir, &paths.data, &paths.indexes, &paths.metadata, &paths.schemas] {
        paths.fs.create_dir(folder).map_err(|error| io(folder, error))?;
    }
    let files: [(&Path, Vec<u8>); 5] = [
        (&paths.manifest, Manifest::new(database_id).encode().to_vec()),
        (&paths.lock, Vec::new()),
        (&paths.wal, WalHeader::new(database_id).encode().to_vec()),
        (&paths.frozen_config, config.values.to_frozen_json().into_bytes()),
        (&paths.schema_hashes, b"{}\n".to_vec()),
    ];
    for (path, bytes) in files {
        crate::vfs::write_new(&*paths.fs, path, &bytes).map_err(|error| io(path, error))?;
    }
    for folder in [&paths.wal_dir, &paths.data, &paths.indexes, &paths.schemas, &paths.metadata, &paths.root] {
        paths.fs.sync_dir(folder).map_err(|error| io(folder, error))?;
    }
    Ok(())
}

/// Checks that `paths.root` holds a database: a missing folder or MANIFEST
/// is `AERO_STORAGE_UNINITIALIZED`; a folder the process may not read
/// (another owner's 0700 folder) is `AERO_STORAGE_IO_ERROR` naming the
/// permission problem, never "run aerodb init first".
pub fn check_initialized(paths: &Paths) -> Result<()> {
    let uninitialized = |why: &str| {
        AeroError::new(ErrorCode::StorageUninitialized, format!("no database at {} ({why}; run `aerodb init` first)", paths.root.display()))
            .detail("data_dir", paths.root.display().to_string())
    };
    for (path, is_folder) in [(&paths.root, true), (&paths.manifest, false)] {
        match paths.fs.kind(path) {
            Ok(kind) if (kind == crate::vfs::EntryKind::Dir) == is_folder => {}
            Ok(_) if is_folder => return Err(uninitialized("it is not a folder")),
            Ok(_) => return Err(uninitialized("MANIFEST is not a file")),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(uninitialized(if is_folder { "the folder does not exist" } else { "it has no MANIFEST" }))
            }
            Err(error) => return Err(io_error(ErrorCode::StorageIoError, "cannot access", path, &error)),
        }
    }
    // Listing the folder proves the process may enter it.
    paths.fs.list(&paths.root).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot read", &paths.root, &error))?;
    Ok(())
}

fn random_database_id(fs: &dyn crate::vfs::FileSystem) -> std::io::Result<[u8; 16]> {
    let mut id = [0u8; 16];
    fs.random_bytes(&mut id)?;
    Ok(id)
}

fn metadata_corruption(path: &Path, reason: impl std::fmt::Display) -> AeroError {
    AeroError::new(ErrorCode::MetadataCorruption, format!("{}: {reason}", path.display())).detail("file", path.display().to_string())
}

/// `metadata/state.json` (its encoding is `aerodb_format::state`).
type ShutdownState = aerodb_format::state::State;

/// Reads the state file, any failure as metadata corruption.
fn read_state(paths: &Paths) -> Result<ShutdownState> {
    let path = &paths.state;
    let bytes = crate::vfs::read_json(&*paths.fs, path)
        .map_err(|error| metadata_corruption(path, format!("a clean shutdown marker exists but the state file cannot be read: {error}")))?;
    ShutdownState::decode(&bytes).map_err(|reason| metadata_corruption(path, reason))
}

impl Database {
    /// Boots the database (docs/BOOT.md): config, lock, MANIFEST, schemas,
    /// WAL replay, verification, index rebuild.
    pub fn open(config_path: &Path) -> Result<Database> {
        Database::open_with(config_path, OpenOptions::default())
    }

    /// [`Database::open`] with test hooks (a WAL file of its own, planned
    /// allocation failures).
    pub fn open_with(config_path: &Path, options: OpenOptions) -> Result<Database> {
        let config = config::load(config_path)?;
        Database::open_config(config, options)
    }

    /// Boots the database of a validated config.
    pub(crate) fn open_config(config: EngineConfig, options: OpenOptions) -> Result<Database> {
        Database::boot(config, options, false)
    }

    /// The boot as a check of a database that will not serve (a backup's
    /// copy): every step that can refuse it runs (replay, every page and
    /// document verified, `_id` uniqueness), but the index trees are not
    /// built, since the copy's first real boot builds its own. The returned
    /// database answers no query; the caller records its state and drops it.
    pub(crate) fn open_to_check(config: EngineConfig) -> Result<Database> {
        Database::boot(config, OpenOptions::default(), true)
    }

    fn boot(mut config: EngineConfig, options: OpenOptions, check_only: bool) -> Result<Database> {
        if let Some(fs) = options.file_system {
            config.paths = Paths::with_fs(config.paths.root.clone(), fs);
        }
        let mut lifecycle = Lifecycle::new();
        lifecycle.enter(State::Initializing);
        let paths = config.paths.clone();
        check_initialized(&paths)?;
        let lock = take_lock(&paths)?;
        check_frozen_config(&paths, &config.values)?;
        let manifest_bytes = crate::vfs::read_bounded(&*paths.fs, &paths.manifest, aerodb_format::PAGE_SIZE_BYTES as u64)
            .map_err(|error| metadata_corruption(&paths.manifest, error))?;
        let manifest = Manifest::decode(&manifest_bytes)
            .map_err(|error| metadata_corruption(&paths.manifest, &error).detail("offset", error.offset as u64))?;
        let catalog = Catalog::load(&paths)?;
        // Whatever is at the marker's name counts, a dangling link too: the
        // marker is never read, and the boot removes the name itself.
        let marker = match paths.fs.kind_no_follow(&paths.clean_shutdown) {
            Ok(_) => true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => return Err(io_error(ErrorCode::StorageIoError, "cannot access", &paths.clean_shutdown, &error)),
        };
        let clean_state = if marker { Some(read_state(&paths)?) } else { None };
        // Without the marker, an older state file still proves how far the
        // log reached at that clean shutdown: a "torn tail" before that point
        // is a damaged acknowledged record, not an interrupted write. A
        // missing or invalid file proves nothing (0); a file that cannot be
        // read refuses the boot, since guessing 0 could cut an acknowledged
        // record as a torn tail.
        let acknowledged_wal_bytes = match clean_state {
            Some(state) => state.wal_bytes,
            None => match crate::vfs::read_json(&*paths.fs, &paths.state) {
                Ok(bytes) => ShutdownState::decode(&bytes).map(|state| state.wal_bytes).unwrap_or(0),
                Err(error) if matches!(error.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData) => 0,
                Err(error) => return Err(io_error(ErrorCode::StorageIoError, "cannot read", &paths.state, &error)),
            },
        };

        lifecycle.enter(State::Recovering);
        let mut report = RecoveryReport { clean_shutdown: clean_state.is_some(), ..RecoveryReport::default() };
        let wal_file: Box<dyn WalFile> = match options.wal_file {
            Some(file) => file,
            None => Box::new(
                OsFile::open_in(&*paths.fs, &paths.wal)
                    .map_err(|error| io_error(ErrorCode::WalCorruption, "cannot open WAL", &paths.wal, &error))?,
            ),
        };
        let mut wal = Wal::new(wal_file, &paths.wal, 0, SeqNo(0));
        // Before replay touches a segment: the log must belong to this database.
        check_wal_identity(&wal, &paths, &manifest)?;
        let mut data_pager = Pager::open_durable(paths.fs.clone(), &paths.data, ErrorCode::DataCorruption)?;
        data_pager.set_allocation_faults(options.segment_allocation_faults);
        let mut heap = Heap::new(data_pager, 0);
        recovery::replay(&mut wal, &mut heap, &catalog, clean_state.map(|state| state.last_seq), acknowledged_wal_bytes, &mut report)?;
        if let Some(state) = clean_state {
            // Every figure a clean shutdown recorded must hold, or a damaged
            // state file would mislead a later crash recovery.
            if state.wal_bytes != wal.length_bytes() || state.document_pages != heap.page_count() {
                return Err(metadata_corruption(&paths.state, format!("the last clean shutdown recorded {} WAL bytes and {} document pages; the WAL's records end at byte {} and the logged pages at page count {}", state.wal_bytes, state.document_pages, wal.length_bytes(), heap.page_count())));
            }
        }

        lifecycle.enter(State::Verifying);
        let mut verified = recovery::verify(&mut heap, &catalog, wal.last_seq(), &mut report)?;
        // Every page below the page count passed page::verify just now.
        heap.mark_pages_verified();
        if let Some(state) = clean_state {
            if state.documents != verified.documents {
                return Err(metadata_corruption(
                    &paths.state,
                    format!("the last clean shutdown recorded {} documents, the pages hold {}", state.documents, verified.documents),
                ));
            }
        }
        let mut indexes = open_empty_indexes(&paths)?;
        indexes.set_lsn(wal.last_seq());
        if check_only {
            recovery::check_unique_ids(&mut verified, &mut report)?;
        } else {
            recovery::rebuild(&mut indexes, &mut verified, &mut report)?;
        }
        if report.torn_bytes_discarded > 0 {
            // Only now that every check passed: a refused boot never changes the log.
            wal.cut_tail(wal.length_bytes(), report.torn_bytes_discarded)?;
        }
        if !check_only {
            write_index_directory(&paths, &indexes)?;
        }
        if clean_state.is_some() {
            paths
                .fs
                .remove_file(&paths.clean_shutdown)
                .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot remove", &paths.clean_shutdown, &error))?;
            paths.fs.sync_dir(&paths.root).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", &paths.root, &error))?;
        }
        log::info("recovery", "report", &report_fields(&report));
        let database = Database {
            documents: verified.documents,
            document_sizes: std::mem::take(&mut verified.document_sizes),
            config,
            lifecycle,
            catalog,
            wal,
            heap,
            indexes,
            _lock: lock,
            report,
            fatal: None,
            group_ids: std::collections::HashMap::new(),
        };
        database.warn_if_wal_large();
        let mut database = database;
        database.lifecycle.enter(State::Serving);
        Ok(database)
    }

    /// The paths of this database's files.
    pub(crate) fn paths(&self) -> &Paths {
        &self.config.paths
    }

    pub(crate) fn catalog_get(&self, schema_id: &str, schema_version: &str) -> Option<&std::sync::Arc<Schema>> {
        self.catalog.get(schema_id, schema_version)
    }

    /// Calls `visit(schema, document)` for every stored document of one
    /// schema version (`only`) or of every version (by schema id, then
    /// version), each version's documents in `_id` order, exactly as stored.
    /// Returns the number of documents visited.
    pub fn export(&self, only: Option<(&str, &str)>, mut visit: impl FnMut(&Schema, &Map<String, Value>) -> Result<()>) -> Result<u64> {
        if let Some(fatal) = &self.fatal {
            return Err(fatal.clone());
        }
        let schemas: Vec<std::sync::Arc<Schema>> = match only {
            Some((schema_id, schema_version)) => {
                vec![self.catalog.resolve(Some(&Value::from(schema_id)), Some(&Value::from(schema_version)))?.clone()]
            }
            None => self.catalog.all().cloned().collect(),
        };
        let mut count = 0;
        for schema in schemas {
            let tree = TreeId::new(&schema.schema_id, &schema.schema_version, "_id");
            let mut cursor = self.indexes.cursor(&tree, None, false)?;
            while let Some((_, locator)) = self.indexes.next(&mut cursor)? {
                let document = query::fetch(&self.heap, locator, &schema.schema_id, &schema.schema_version)?;
                visit(&schema, &document)?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Writes `metadata/state.json` for the database as it stands, with no
    /// `clean_shutdown` marker: a later boot runs the crash rules, and the
    /// file proves how far the log reached (a torn tail before that point
    /// is refused). The clean shutdown writes the marker after it; a backup,
    /// whose copy keeps no segments, does not.
    pub(crate) fn write_state_without_marker(&self) -> Result<()> {
        let paths = &self.config.paths;
        let state = ShutdownState {
            last_seq: self.wal.last_seq().0,
            wal_bytes: self.wal.length_bytes(),
            documents: self.documents,
            document_pages: self.heap.page_count(),
        };
        crate::vfs::write_atomic(&*paths.fs, &paths.state, state.encode().as_bytes())
            .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", &paths.state, &error))
    }

    /// Serves a schema version installed while the database is open: an
    /// empty B-tree for each of its indexes, then the catalog entry.
    pub(crate) fn add_schema(&mut self, schema: Schema) -> Result<()> {
        for field in &schema.indexes {
            let tree = TreeId::new(&schema.schema_id, &schema.schema_version, field);
            if self.indexes.tree(&tree).is_none() {
                self.indexes.bulk_load(&tree, std::iter::empty())?;
            }
        }
        self.catalog.add(schema);
        Ok(())
    }

    /// What the boot did (the recovery report line's figures).
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The lifecycle state (`Serving` once open).
    pub fn state(&self) -> State {
        self.lifecycle.state()
    }

    /// Number of stored documents, of every schema.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// The WAL's logical end: the bytes of its header and records (the file
    /// is longer by its zero-filled preallocated space).
    pub fn wal_bytes(&self) -> u64 {
        self.wal.length_bytes()
    }

    /// The sequence number of the last durable WAL record.
    pub fn last_seq(&self) -> SeqNo {
        self.wal.last_seq()
    }

    /// Checks the invariants of every B-tree (key order, equal leaf depth,
    /// counts, sibling links); returns the total number of entries.
    pub fn check_indexes(&self) -> Result<u64> {
        let mut total = 0;
        for id in self.indexes.trees().keys() {
            total += self.indexes.check(id)?;
        }
        Ok(total)
    }

    /// The fatal error that stopped this database, if any.
    pub fn fatal_error(&self) -> Option<&AeroError> {
        self.fatal.as_ref()
    }

    /// Runs one request and returns its response object.
    pub fn respond(&mut self, request: &Value, mode: Mode) -> Value {
        response_object(self.execute(request, mode))
    }

    /// Runs one request; `Ok` holds the response's `data`.
    pub fn execute(&mut self, request: &Value, mode: Mode) -> Result<Value> {
        let mut results = self.execute_batch(std::slice::from_ref(request), mode);
        results.pop().unwrap_or_else(|| Err(AeroError::invariant_broken("a batch of one request gave no answer")))
    }

    /// Runs a batch of requests in order and returns one response object
    /// each (see [`Database::execute_batch`]).
    pub fn respond_batch(&mut self, requests: &[Value], mode: Mode) -> Vec<Value> {
        self.execute_batch(requests, mode).into_iter().map(response_object).collect()
    }

    /// Runs a batch of requests in order; the result of each, in order.
    ///
    /// Consecutive writes are committed as groups (group commit): each keeps
    /// its own WAL record, byte for byte the record it would have alone,
    /// and the group shares one append and one fdatasync. Every request sees
    /// every write before it; a read closes the open group first, so it is
    /// answered from durable state. A rejected write changes nothing and
    /// does not affect the others; a failed append answers every write of
    /// its group with `AERO_WAL_APPEND_FAILED` and changes nothing; a failed
    /// fdatasync is fatal and acknowledges none of them. A group holds at
    /// most [`GROUP_WRITES_MAX`] writes and closes once its records reach
    /// [`GROUP_WAL_BYTES_MAX`] bytes.
    pub fn execute_batch(&mut self, requests: &[Value], mode: Mode) -> Vec<Result<Value>> {
        self.run_batch(requests, mode, false)
    }

    /// [`Database::execute_batch`] that stops at the first request answered
    /// with an error: the results end with that error, and no request after
    /// it runs (the writes before it are committed).
    pub fn execute_batch_until_error(&mut self, requests: &[Value], mode: Mode) -> Vec<Result<Value>> {
        self.run_batch(requests, mode, true)
    }

    fn run_batch(&mut self, requests: &[Value], mode: Mode, stop_at_error: bool) -> Vec<Result<Value>> {
        let mut stopped_at = None;
        let mut results: Vec<Option<Result<Value>>> = Vec::with_capacity(requests.len());
        results.resize_with(requests.len(), || None);
        let mut group: Vec<StagedWrite> = Vec::new();
        let mut group_bytes = 0usize;
        for (position, request) in requests.iter().enumerate() {
            if stopped_at.is_some() {
                break;
            }
            if let Some(fatal) = &self.fatal {
                results[position] = Some(Err(fatal.clone()));
                continue;
            }
            if !is_write(request) {
                self.commit_group(&mut group, &mut results);
                group_bytes = 0;
                let result = self.dispatch(request, mode);
                results[position] = Some(self.note_fatal(result));
                continue;
            }
            let seq = SeqNo(self.wal.last_seq().0 + 1 + group.len() as u64);
            match self.stage_write(request, position, seq) {
                Ok(Some(staged)) => {
                    group_bytes += staged.record.len();
                    group.push(staged);
                    if group.len() >= GROUP_WRITES_MAX || group_bytes >= GROUP_WAL_BYTES_MAX {
                        self.commit_group(&mut group, &mut results);
                        group_bytes = 0;
                    }
                }
                Ok(None) => results[position] = Some(Ok(json!([]))),
                Err(error) if error.is_fatal() => {
                    // Nothing of the group was logged: none of it is acknowledged.
                    self.discard_group(&mut group, &mut results, &error);
                    results[position] = Some(self.note_fatal(Err(error)));
                }
                Err(error) => {
                    results[position] = Some(Err(error));
                    if stop_at_error {
                        stopped_at = Some(position);
                    }
                }
            }
            if stop_at_error && stopped_at.is_none() && matches!(results[position], Some(Err(_))) {
                stopped_at = Some(position);
            }
        }
        self.commit_group(&mut group, &mut results);
        if let Some(position) = stopped_at {
            // A write of the group before the error may still have failed at commit: the results end at the first error.
            let first_error = results.iter().position(|result| matches!(result, Some(Err(_)))).unwrap_or(position);
            results.truncate(first_error + 1);
        }
        results.into_iter().map(|result| result.unwrap_or_else(|| Err(AeroError::invariant_broken("a request got no answer")))).collect()
    }

    /// Records a fatal error: the database refuses every later request.
    fn note_fatal(&mut self, result: Result<Value>) -> Result<Value> {
        if let Err(error) = &result {
            if error.is_fatal() && self.fatal.is_none() {
                log::log("error", "engine", "fatal", &[("code", error.code.as_str().into()), ("message", error.message.clone().into())]);
                self.fatal = Some(error.clone());
            }
        }
        result
    }

    /// Runs a read (query or explain) request.
    fn dispatch(&mut self, request: &Value, mode: Mode) -> Result<Value> {
        // A read is answered from durable state only: the open group was committed first.
        if self.heap.has_staged() || !self.group_ids.is_empty() {
            return Err(AeroError::invariant_broken("a read ran while writes were staged and not yet durable"));
        }
        let (request, op) = Self::request_shape(request)?;
        let schema = self.catalog.resolve(request.get("schema_id"), request.get("schema_version"))?.clone();
        match op {
            "insert" | "update" | "delete" => Err(AeroError::invariant_broken("a write reached the read path")),
            _ => {
                let plan = self.plan(&schema, request)?;
                if op == "explain" || mode == Mode::Explain {
                    Ok(plan.explain())
                } else {
                    Ok(Value::Array(plan.execute(&schema, &self.indexes, &self.heap)?))
                }
            }
        }
    }

    /// Checks a request's shape: an object with a known `op` and only the
    /// fields that op allows. Returns the op.
    fn request_shape(request: &Value) -> Result<(&Map<String, Value>, &str)> {
        let Value::Object(request) = request else {
            return Err(AeroError::new(ErrorCode::QueryInvalid, "a request must be a JSON object"));
        };
        let op = match request.get("op") {
            Some(Value::String(op)) => op.as_str(),
            Some(_) => return Err(AeroError::new(ErrorCode::QueryInvalid, "op must be a string")),
            None => return Err(AeroError::new(ErrorCode::QueryInvalid, "op is required (insert, update, delete, query, explain)")),
        };
        let allowed: &[&str] = match op {
            "insert" | "update" => &["op", "schema_id", "schema_version", "document"],
            "delete" => &["op", "schema_id", "schema_version", "_id"],
            "query" | "explain" => &["op", "schema_id", "schema_version", "filter", "limit", "sort"],
            _ => {
                let shown: String = op.chars().take(64).collect();
                return Err(AeroError::new(ErrorCode::QueryInvalid, format!("unknown op '{shown}'")).detail("op", shown));
            }
        };
        if let Some(field) = request.keys().find(|key| !allowed.contains(&key.as_str())) {
            let shown: String = field.chars().take(64).collect();
            return Err(AeroError::new(ErrorCode::QueryInvalid, format!("field '{shown}' is not allowed in a request of op {op}"))
                .detail("field", shown));
        }
        Ok((request, op))
    }

    /// Validates and plans one write request and stages it for the open
    /// group as record `seq`. `None`: the write changes nothing (a delete of
    /// a missing `_id`).
    fn stage_write(&mut self, request: &Value, position: usize, seq: SeqNo) -> Result<Option<StagedWrite>> {
        let (request, op) = Self::request_shape(request)?;
        let schema = self.catalog.resolve(request.get("schema_id"), request.get("schema_version"))?.clone();
        let mut staged =
            StagedWrite { position, seq, record: Vec::new(), index_changes: Vec::new(), documents_delta: 0, size_notes: Vec::new() };
        let (plan, wal_op, id, id_key, group_entry) = match op {
            "insert" | "update" => {
                let Some(document) = request.get("document") else {
                    return Err(AeroError::new(ErrorCode::QueryInvalid, format!("a request of op {op} needs a document")));
                };
                let (body, record, id) = Self::prepare_document(&schema, document)?;
                let id_key = Self::id_key(&schema, &id)?;
                let found = self.locate(&schema.schema_id, &id_key)?;
                let new_keys = index_keys(&schema, &body)?;
                let mut plan = self.heap.new_plan();
                let locator = if op == "insert" {
                    if found.is_some() {
                        return Err(AeroError::new(
                            ErrorCode::WriteDuplicateId,
                            format!("a document with _id {id} already exists in {}", schema.schema_id),
                        )
                        .detail("_id", id));
                    }
                    staged.documents_delta = 1;
                    self.heap.plan_insert(&mut plan, &record)?
                } else {
                    let Some((old_schema, old_locator)) = found else {
                        return Err(AeroError::new(ErrorCode::WriteNotFound, format!("no document with _id {id} in {}", schema.schema_id))
                            .detail("_id", id));
                    };
                    let old_body = query::fetch(&self.heap, old_locator, &old_schema.schema_id, &old_schema.schema_version)?;
                    let old_size = self.heap.read_record(old_locator)?.len();
                    let old_keys = index_keys(&old_schema, &old_body)?;
                    staged.size_notes.push((old_schema.clone(), old_size, false));
                    staged.index_changes.push(IndexChange::Remove { schema: old_schema, keys: old_keys, locator: old_locator });
                    self.heap.plan_update(&mut plan, old_locator, &record)?
                };
                staged.size_notes.push((schema.clone(), record.len(), true));
                staged.index_changes.push(IndexChange::Insert { schema: schema.clone(), keys: new_keys, locator });
                let wal_op = if op == "insert" { WalOp::Insert } else { WalOp::Update };
                (plan, wal_op, id, id_key, Some((schema.clone(), locator)))
            }
            _ => {
                let Some(id) = request.get("_id") else {
                    return Err(AeroError::new(ErrorCode::QueryInvalid, "a delete request needs an _id"));
                };
                let id_key = Self::id_key(&schema, id)?;
                let Some((old_schema, old_locator)) = self.locate(&schema.schema_id, &id_key)? else {
                    return Ok(None);
                };
                let old_body = query::fetch(&self.heap, old_locator, &old_schema.schema_id, &old_schema.schema_version)?;
                let old_size = self.heap.read_record(old_locator)?.len();
                let old_keys = index_keys(&old_schema, &old_body)?;
                let mut plan = self.heap.new_plan();
                self.heap.plan_delete(&mut plan, old_locator)?;
                staged.documents_delta = -1;
                staged.size_notes.push((old_schema.clone(), old_size, false));
                staged.index_changes.push(IndexChange::Remove { schema: old_schema, keys: old_keys, locator: old_locator });
                (plan, WalOp::Delete, id.clone(), id_key, None)
            }
        };
        let mut plan = plan;
        // The last check that can refuse the write: space for new pages.
        self.heap.prepare(&plan)?;
        self.group_ids.insert((schema.schema_id.clone(), id_key), group_entry);
        let pages = plan.seal(seq);
        // A page the log already holds (below the page count before this
        // write) is logged as a delta against its content now; a new page
        // as its whole image.
        let writes: Vec<PageWrite<'_>> = pages
            .iter()
            .map(|page| {
                let page_no = aerodb_format::page::PageHeader::read(page).page_no();
                // Checked again: a delta against a page damaged behind the
                // engine's back would not rebuild the new page at replay.
                let before = if page_no.0 < self.heap.page_count() { self.heap.checked_page(page_no).ok() } else { None };
                PageWrite { page, before }
            })
            .collect();
        let header = RecordHeader { seq, op: wal_op, schema_id: &schema.schema_id, schema_version: &schema.schema_version, id: &id };
        staged.record = encode_changes(&header, &writes);
        drop(writes);
        self.heap.stage(plan);
        Ok(Some(staged))
    }

    /// Commits the open group: one append and one fdatasync for every
    /// staged record, then the segments, then the indexes. Fills in the
    /// answer of every write of the group.
    fn commit_group(&mut self, group: &mut Vec<StagedWrite>, results: &mut [Option<Result<Value>>]) {
        if group.is_empty() {
            return;
        }
        let records: Vec<&[u8]> = group.iter().map(|staged| staged.record.as_slice()).collect();
        let first_seq = group[0].seq;
        let start = self.wal.length_bytes();
        let lengths: Vec<u64> = records.iter().map(|record| record.len() as u64).collect();
        if let Err(error) = self.wal.append_group(&records, first_seq) {
            let error = self.note_fatal(Err(error)).err().unwrap_or_else(|| AeroError::invariant_broken("append error lost"));
            self.discard_group(group, results, &error);
            return;
        }
        // The records are durable: from here on a failure leaves memory and
        // segments behind the log, so it is fatal (a restart replays it).
        let outcome = self.apply_group(group);
        let outcome = self.note_fatal(outcome.map(|()| Value::Null));
        for staged in group.drain(..) {
            results[staged.position] = Some(outcome.clone().map(|_| json!([])));
        }
        self.group_ids.clear();
        // One warning per write past the limit, as without grouping.
        let limit = self.config.values.max_wal_size_bytes;
        let mut end = start;
        for length in lengths {
            end += length;
            if end > limit {
                log::warn("wal", "wal_over_limit", &[("wal_bytes", end.into()), ("max_wal_size_bytes", limit.into())]);
            }
        }
    }

    /// Applies a durable group to the segments and the indexes.
    fn apply_group(&mut self, group: &[StagedWrite]) -> Result<()> {
        let fatal = |error: AeroError| if error.is_fatal() { error } else { error.with_severity(crate::error::Severity::Fatal) };
        self.heap.apply_staged(self.wal.last_seq()).map_err(fatal)?;
        crash::reach("storage_after_apply");
        for staged in group {
            self.indexes.set_lsn(staged.seq);
            for change in &staged.index_changes {
                match change {
                    IndexChange::Insert { schema, keys, locator } => {
                        insert_keys(&mut self.indexes, schema, keys, *locator).map_err(fatal)?
                    }
                    IndexChange::Remove { schema, keys, locator } => {
                        remove_keys(&mut self.indexes, schema, keys, *locator).map_err(fatal)?
                    }
                }
            }
            self.documents = self.documents.wrapping_add_signed(staged.documents_delta);
            for (schema, bytes, added) in &staged.size_notes {
                self.note_document_size(&schema.schema_id, &schema.schema_version, *bytes, *added);
            }
        }
        Ok(())
    }

    /// Drops the open group: nothing of it was logged, every write of it is
    /// answered with `error`.
    fn discard_group(&mut self, group: &mut Vec<StagedWrite>, results: &mut [Option<Result<Value>>], error: &AeroError) {
        self.heap.discard_staged();
        self.group_ids.clear();
        for staged in group.drain(..) {
            results[staged.position] = Some(Err(error.clone()));
        }
    }

    fn plan(&self, schema: &Schema, request: &Map<String, Value>) -> Result<Plan> {
        let parsed = query::parse_query(schema, request)?;
        let document_bytes_max = self
            .document_sizes
            .get(&(schema.schema_id.clone(), schema.schema_version.clone()))
            .and_then(|sizes| sizes.keys().next_back())
            .copied()
            .unwrap_or(0);
        query::plan(schema, parsed, &self.indexes, document_bytes_max, self.config.values.max_memory_bytes)
    }

    /// Validates and encodes a document; returns `(stored body, record bytes, _id)`.
    fn prepare_document(schema: &Schema, document: &Value) -> Result<(Map<String, Value>, Vec<u8>, Value)> {
        let body = schema.validate(document).map_err(|error| {
            AeroError::new(
                ErrorCode::SchemaValidationFailed,
                format!(
                    "document does not match schema {} version {}: field '{}' expected {}, found {}",
                    schema.schema_id, schema.schema_version, error.path, error.expected, error.got
                ),
            )
            .detail("path", error.path)
            .detail("expected", error.expected)
            .detail("got", error.got)
        })?;
        let record = encode_record(&schema.schema_id, &schema.schema_version, &body)
            .map_err(|error| AeroError::new(ErrorCode::SchemaValidationFailed, format!("document cannot be stored: {}", error.0)))?;
        if record.len() > DOC_SIZE_MAX_BYTES {
            return Err(AeroError::new(
                ErrorCode::SchemaValidationFailed,
                format!("document encodes to {} bytes, over the cap of {DOC_SIZE_MAX_BYTES}", record.len()),
            )
            .detail("size", record.len() as u64)
            .detail("size_max", DOC_SIZE_MAX_BYTES as u64));
        }
        let id = body.get("_id").cloned().unwrap_or(Value::Null);
        Ok((body, record, id))
    }

    /// Finds a document of the collection by `_id`, in any version.
    fn locate(&self, schema_id: &str, id_key: &[u8]) -> Result<Option<(std::sync::Arc<Schema>, aerodb_format::btree::Locator)>> {
        if !self.group_ids.is_empty() {
            if let Some(staged) = self.group_ids.get(&(schema_id.to_string(), id_key.to_vec())) {
                return Ok(staged.clone());
            }
        }
        for version in self.catalog.versions(schema_id) {
            if let Some(locator) = self.indexes.get(&TreeId::new(schema_id, &version.schema_version, "_id"), id_key)? {
                return Ok(Some((version.clone(), locator)));
            }
        }
        Ok(None)
    }

    fn id_key(schema: &Schema, id: &Value) -> Result<Vec<u8>> {
        let id_type = schema.field("_id").map(|field| field.field_type.clone());
        let key_value = match (id_type, id) {
            // No stored _id is longer: refused, as in queries (docs/QUERY.md).
            (Some(FieldType::String), Value::String(text)) if text.len() > aerodb_format::INDEXED_STRING_MAX_BYTES => {
                return Err(AeroError::new(
                    ErrorCode::QueryInvalid,
                    format!(
                        "_id is {} bytes; an _id holds at most {} bytes, so no document has it",
                        text.len(),
                        aerodb_format::INDEXED_STRING_MAX_BYTES
                    ),
                )
                .detail("field", "_id")
                .detail("size_max", aerodb_format::INDEXED_STRING_MAX_BYTES as u64));
            }
            (Some(FieldType::String), Value::String(text)) => KeyValue::String(text.clone()),
            (Some(FieldType::Int), Value::Number(number)) if number.is_i64() => KeyValue::Int(number.as_i64().unwrap_or_default()),
            (id_type, _) => {
                let expected = id_type.map(|field_type| field_type.name()).unwrap_or("?");
                return Err(AeroError::new(
                    ErrorCode::QueryInvalid,
                    format!("_id must be of type {expected} for schema {}", schema.schema_id),
                )
                .detail("field", "_id"));
            }
        };
        Ok(key::encode_to_vec(&key_value))
    }

    /// Counts a stored document's encoded size in (`added`) or out.
    fn note_document_size(&mut self, schema_id: &str, schema_version: &str, bytes: usize, added: bool) {
        let key = (schema_id.to_string(), schema_version.to_string());
        let sizes = self.document_sizes.entry(key.clone()).or_default();
        let count = sizes.entry(bytes as u64).or_default();
        if added {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                sizes.remove(&(bytes as u64));
            }
            if sizes.is_empty() {
                self.document_sizes.remove(&key);
            }
        }
    }

    fn warn_if_wal_large(&self) {
        let limit = self.config.values.max_wal_size_bytes;
        if self.wal.length_bytes() > limit {
            log::warn("wal", "wal_over_limit", &[("wal_bytes", self.wal.length_bytes().into()), ("max_wal_size_bytes", limit.into())]);
        }
    }

    /// Graceful shutdown: flush segments, write `state.json` and the
    /// `clean_shutdown` marker (both fsync'ed), release the lock.
    pub fn shutdown(mut self) -> Result<()> {
        self.lifecycle.enter(State::ShuttingDown);
        if let Some(fatal) = self.fatal.take() {
            // Never mark a database clean after a fatal error.
            return Err(fatal);
        }
        let paths = self.config.paths.clone();
        self.heap.flush()?;
        // Index segments are derived (rebuilt at every start); they are
        // flushed so that aerodb-verify can check them after a clean shutdown.
        self.indexes.flush()?;
        write_index_directory(&paths, &self.indexes)?;
        self.write_state_without_marker()?;
        crash::reach("shutdown_before_marker");
        crate::vfs::write_new(&*paths.fs, &paths.clean_shutdown, b"")
            .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", &paths.clean_shutdown, &error))?;
        paths.fs.sync_dir(&paths.root).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot sync", &paths.root, &error))?;
        self.lifecycle.enter(State::Terminated);
        Ok(())
    }
}

/// Whether a request asks for a write (its other checks come later).
fn is_write(request: &Value) -> bool {
    matches!(request.get("op").and_then(Value::as_str), Some("insert" | "update" | "delete"))
}

/// The response object for a request's result.
fn response_object(result: Result<Value>) -> Value {
    match result {
        Ok(data) => {
            // Built by hand: json! would deep-copy `data`.
            let mut response = Map::with_capacity(2);
            response.insert("status".into(), Value::from("ok"));
            response.insert("data".into(), data);
            Value::Object(response)
        }
        Err(error) => error.to_json(),
    }
}

fn insert_keys(indexes: &mut Indexes, schema: &Schema, keys: &[(String, Vec<u8>)], locator: aerodb_format::btree::Locator) -> Result<()> {
    for (position, (field, key_bytes)) in keys.iter().enumerate() {
        indexes.insert(&TreeId::new(&schema.schema_id, &schema.schema_version, field), key_bytes, locator)?;
        if position == 0 {
            crash::reach("index_mid_update");
        }
    }
    Ok(())
}

fn remove_keys(indexes: &mut Indexes, schema: &Schema, keys: &[(String, Vec<u8>)], expected: aerodb_format::btree::Locator) -> Result<()> {
    for (position, (field, key_bytes)) in keys.iter().enumerate() {
        let removed = indexes.remove(&TreeId::new(&schema.schema_id, &schema.schema_version, field), key_bytes)?;
        if removed != expected {
            // The entry named another document: the index and the heap disagree.
            return Err(AeroError::new(
                ErrorCode::IndexCorruption,
                format!(
                    "index {}.{} entry pointed at page {} slot {}, the document is at page {} slot {}",
                    schema.schema_id, field, removed.page, removed.slot, expected.page, expected.slot
                ),
            )
            .invariant("I1"));
        }
        if position == 0 {
            // Deletes (and the removal half of updates) change the B-trees too.
            crash::reach("index_mid_update");
        }
    }
    Ok(())
}

/// Takes the database's lock: an exclusive `flock` on the data directory
/// itself, then on `LOCK`. The directory lock is the one that counts: a
/// directory with files in it cannot be unlinked from under a running
/// process, so deleting `LOCK` (or replacing it) never lets a second process
/// in. `LOCK` is kept locked as well for tools that look at it. Both locks
/// go with the process (SIGKILL leaves no stale lock).
fn take_lock(paths: &Paths) -> Result<(Box<dyn FileHandle>, Box<dyn FileHandle>)> {
    let locked = || {
        AeroError::new(ErrorCode::StorageLocked, format!("the database at {} is in use by another process", paths.root.display()))
            .detail("data_dir", paths.root.display().to_string())
    };
    let fs = &*paths.fs;
    let directory =
        fs.open(&paths.root, Access::Read).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot open", &paths.root, &error))?;
    if !directory.try_lock(true).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot lock", &paths.root, &error))? {
        return Err(locked());
    }
    // A deleted LOCK is made again (the folder lock above already excludes
    // every other engine); a LOCK made by another process between the two
    // calls is opened.
    let file = match fs.open(&paths.lock, Access::ReadWrite) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => match fs.open(&paths.lock, Access::CreateNew) {
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => fs.open(&paths.lock, Access::ReadWrite),
            other => other,
        },
        other => other,
    }
    .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot open", &paths.lock, &error))?;
    if !file.is_regular().map_err(|error| io_error(ErrorCode::StorageIoError, "cannot stat", &paths.lock, &error))? {
        // A FIFO or a device in LOCK's place (aerodb-verify reports it too).
        return Err(AeroError::new(ErrorCode::StorageIoError, format!("{} is not a regular file", paths.lock.display()))
            .detail("file", paths.lock.display().to_string()));
    }
    if !file.try_lock(true).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot lock", &paths.lock, &error))? {
        return Err(locked());
    }
    Ok((directory, file))
}

fn check_frozen_config(paths: &Paths, values: &Config) -> Result<()> {
    let bytes =
        crate::vfs::read_json(&*paths.fs, &paths.frozen_config).map_err(|error| metadata_corruption(&paths.frozen_config, error))?;
    let frozen = Config::parse_frozen(&bytes).map_err(|error| metadata_corruption(&paths.frozen_config, error.message))?;
    if let Some((field, old, new)) = values.first_difference(&frozen) {
        return Err(AeroError::new(
            ErrorCode::ConfigImmutable,
            format!("config field {field} changed from {old} to {new}; config values are frozen at init"),
        )
        .detail("field", field)
        .detail("old", old)
        .detail("new", new));
    }
    Ok(())
}

fn check_wal_identity(wal: &Wal, paths: &Paths, manifest: &Manifest) -> Result<()> {
    let length = wal.file().len().unwrap_or(0).min(aerodb_format::wal::WAL_HEADER_BYTES as u64);
    let mut header = vec![0u8; length as usize];
    wal.read_at(0, &mut header)?;
    let decoded = WalHeader::decode(&header).map_err(|error| {
        AeroError::new(ErrorCode::WalCorruption, format!("{}: bad WAL header: {error}", paths.wal.display()))
            .detail("file", paths.wal.display().to_string())
            .detail("offset", error.offset as u64)
            .detail("seq", 0)
    })?;
    if decoded.database_id != manifest.database_id {
        return Err(AeroError::new(
            ErrorCode::WalCorruption,
            format!("{} belongs to another database (its database id differs from MANIFEST's)", paths.wal.display()),
        )
        .detail("file", paths.wal.display().to_string())
        .detail("offset", aerodb_format::wal::DATABASE_ID_OFFSET as u64));
    }
    Ok(())
}

/// Empties `indexes/` for the rebuild. The folder holds derived data only:
/// if it is missing it is made again (and the boot says so), never a
/// reason to refuse the database.
fn open_empty_indexes(paths: &Paths) -> Result<Indexes> {
    let fs = &*paths.fs;
    if fs.exists(&paths.indexes)
        && fs.kind(&paths.indexes).is_err()
        && fs.kind_no_follow(&paths.indexes).ok() == Some(crate::vfs::EntryKind::Other)
    {
        // A symbolic link to nothing: derived data, so the link goes and a
        // folder is made in its place.
        fs.remove_file(&paths.indexes).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot remove", &paths.indexes, &error))?;
    }
    if !fs.exists(&paths.indexes) {
        fs.create_dir(&paths.indexes)
            .and_then(|()| fs.sync_dir(&paths.root))
            .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot create", &paths.indexes, &error))?;
        log::warn("recovery", "index_folder_recreated", &[("folder", paths.indexes.display().to_string().into())]);
    }
    // Names as the file system gives them (not made UTF-8), so any file can be removed.
    let names = fs.list_raw(&paths.indexes).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", &paths.indexes, &error))?;
    for name in names {
        let path = paths.indexes.join(name);
        if fs.kind_no_follow(&path).ok() == Some(crate::vfs::EntryKind::Dir) {
            // Whatever the folder holds is derived or stray: removed whole.
            fs.remove_tree(&path);
            continue;
        }
        fs.remove_file(&path).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot remove", &path, &error))?;
    }
    Ok(Indexes::new(Pager::open(paths.fs.clone(), &paths.indexes, ErrorCode::IndexCorruption)?))
}

fn write_index_directory(paths: &Paths, indexes: &Indexes) -> Result<()> {
    crate::vfs::write_atomic(&*paths.fs, &paths.index_directory, indexes.directory_text().as_bytes())
        .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", &paths.index_directory, &error))
}

fn report_fields(report: &RecoveryReport) -> Vec<(&'static str, Value)> {
    match report.to_json() {
        Value::Object(object) => {
            let names = [
                "clean_shutdown",
                "records_replayed",
                "last_seq",
                "pages_replayed",
                "pages_rewritten",
                "torn_bytes_discarded",
                "documents",
                "index_entries",
                "replay_ms",
                "verify_ms",
                "rebuild_ms",
            ];
            names.iter().filter_map(|name| object.get(*name).map(|value| (*name, value.clone()))).collect()
        }
        _ => Vec::new(),
    }
}
