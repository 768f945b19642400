//! The schema catalog: every schema version under `metadata/schemas/`,
//! loaded at boot before any WAL or segment access.
//!
//! Each file must parse (`aerodb_format::schema`) and be named
//! `<schema_id>_<schema_version>.json` after its contents. Schema files are
//! immutable: the SHA-256 of each file is recorded in
//! `metadata/schema_hashes.json` the first time it loads, and a later
//! difference is fatal. Names starting with `.` are ignored (temporary files
//! of an interrupted install); any other unexpected file is an error.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aerodb_format::schema::{file_name, is_identifier, Schema};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::Paths;
use crate::error::{io_error, AeroError, ErrorCode, Result, Severity};
use crate::log;

/// Every loaded schema version, by schema_id then schema_version.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    schemas: BTreeMap<String, BTreeMap<String, Arc<Schema>>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn invalid(path: &Path, problem: impl std::fmt::Display) -> AeroError {
    AeroError::new(ErrorCode::SchemaInvalid, format!("schema file {}: {problem}", path.display()))
        .detail("file", path.display().to_string())
}

/// Parses a schema file and checks its name against its contents.
pub fn parse_schema_file(path: &Path, bytes: &[u8]) -> Result<Schema> {
    let schema = Schema::parse(bytes).map_err(|error| invalid(path, error))?;
    let expected = file_name(&schema.schema_id, &schema.schema_version);
    let actual = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    if actual != expected {
        return Err(invalid(
            path,
            format!("holds schema {} version {} and must be named {expected}", schema.schema_id, schema.schema_version),
        ));
    }
    Ok(schema)
}

/// The recorded hashes; `None` when the file is missing.
fn read_hashes(paths: &Paths) -> Result<Option<BTreeMap<String, String>>> {
    let bytes = match crate::vfs::read_json(&*paths.fs, &paths.schema_hashes) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(ErrorCode::StorageIoError, "cannot read", &paths.schema_hashes, &error)),
    };
    let corrupt = |reason: &str| {
        AeroError::new(ErrorCode::MetadataCorruption, format!("{}: {reason}", paths.schema_hashes.display()))
            .detail("file", paths.schema_hashes.display().to_string())
    };
    let Ok(Value::Object(object)) = aerodb_format::json::parse_file(&bytes) else {
        return Err(corrupt("not a JSON object"));
    };
    let mut hashes = BTreeMap::new();
    for (name, hash) in object {
        match hash {
            Value::String(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) => {
                hashes.insert(name, hash);
            }
            _ => return Err(corrupt("a hash is not 64 lowercase hex digits")),
        }
    }
    Ok(Some(hashes))
}

/// `init` writes the hashes file; without it an edited schema file would be
/// trusted again, so a missing file while schema files exist is corruption.
fn hashes_lost(paths: &Paths, schema_file_names: &[String]) -> Result<()> {
    if schema_file_names.iter().any(|name| !name.starts_with('.')) {
        return Err(AeroError::new(
            ErrorCode::MetadataCorruption,
            format!("{} is missing while schema files exist: their recorded hashes are lost", paths.schema_hashes.display()),
        )
        .detail("file", paths.schema_hashes.display().to_string()));
    }
    Ok(())
}

/// The bytes of `metadata/schema_hashes.json` for `hashes`.
pub fn hashes_json(hashes: &BTreeMap<String, String>) -> String {
    let object: Map<String, Value> = hashes.iter().map(|(name, hash)| (name.clone(), Value::String(hash.clone()))).collect();
    let mut text = serde_json::to_string_pretty(&Value::Object(object)).unwrap_or_default();
    text.push('\n');
    text
}

impl Catalog {
    /// Loads every schema file, checking and recording content hashes.
    pub fn load(paths: &Paths) -> Result<Catalog> {
        let _writers = lock_schemas(paths)?;
        let recorded = read_hashes(paths)?;
        let mut changed = false;
        let mut catalog = Catalog::default();
        let mut names = Vec::new();
        for raw in
            paths.fs.list_raw(&paths.schemas).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", &paths.schemas, &error))?
        {
            match raw.into_string() {
                Ok(name) => names.push(name),
                // Not UTF-8: it cannot be `<schema_id>_<schema_version>.json`.
                Err(raw) if raw.as_encoded_bytes().first() == Some(&b'.') => {}
                Err(raw) => {
                    return Err(invalid(&paths.schemas.join(raw), "has a file name that is not UTF-8, so it is not a schema file name"))
                }
            }
        }
        names.sort();
        let mut hashes = match recorded {
            Some(hashes) => hashes,
            None => {
                hashes_lost(paths, &names)?;
                changed = true;
                BTreeMap::new()
            }
        };
        for name in names.iter().filter(|name| !name.starts_with('.')) {
            let path = paths.schemas.join(name);
            if !name.ends_with(".json") {
                return Err(invalid(&path, "is not a .json schema file"));
            }
            let bytes = crate::vfs::read_json(&*paths.fs, &path).map_err(|error| {
                // Too large, or not a regular file: the schema file is invalid.
                if error.kind() == std::io::ErrorKind::InvalidData {
                    invalid(&path, error)
                } else {
                    io_error(ErrorCode::StorageIoError, "cannot read", &path, &error)
                }
            })?;
            let schema = parse_schema_file(&path, &bytes)?;
            let hash = sha256_hex(&bytes);
            match hashes.get(name) {
                Some(recorded) if *recorded != hash => {
                    return Err(AeroError::new(
                        ErrorCode::SchemaImmutable,
                        format!(
                            "schema file {} changed after it was first loaded (recorded sha256 {recorded}, now {hash})",
                            path.display()
                        ),
                    )
                    .detail("file", path.display().to_string()));
                }
                Some(_) => {}
                None => {
                    hashes.insert(name.clone(), hash);
                    changed = true;
                    log::info(
                        "catalog",
                        "schema_recorded",
                        &[("schema_id", schema.schema_id.clone().into()), ("schema_version", schema.schema_version.clone().into())],
                    );
                }
            }
            catalog.schemas.entry(schema.schema_id.clone()).or_default().insert(schema.schema_version.clone(), Arc::new(schema));
        }
        // A schema version, once recorded, never goes away: a recorded hash
        // whose file is missing means the file was deleted (or the hashes
        // file damaged), and the boot refuses rather than guess (verify
        // reports the same problem).
        if let Some(name) = hashes.keys().find(|name| !names.contains(name)) {
            let path = paths.schemas.join(name);
            return Err(AeroError::new(
                ErrorCode::RecoverySchemaMissing,
                format!("schema file {} is missing, but {} records its hash", path.display(), paths.schema_hashes.display()),
            )
            .detail("file", path.display().to_string()));
        }
        if changed {
            crate::vfs::write_atomic(&*paths.fs, &paths.schema_hashes, hashes_json(&hashes).as_bytes())
                .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", &paths.schema_hashes, &error))?;
        }
        Ok(catalog)
    }

    /// Adds a schema version installed while the database is open.
    pub fn add(&mut self, schema: Schema) {
        self.schemas.entry(schema.schema_id.clone()).or_default().insert(schema.schema_version.clone(), Arc::new(schema));
    }

    /// The schema a request names, with the request-level error codes.
    pub fn resolve(&self, schema_id: Option<&Value>, schema_version: Option<&Value>) -> Result<&Arc<Schema>> {
        let (Some(schema_id), Some(schema_version)) = (schema_id, schema_version) else {
            return Err(AeroError::new(ErrorCode::SchemaRequired, "the request must name schema_id and schema_version"));
        };
        let (Value::String(schema_id), Value::String(schema_version)) = (schema_id, schema_version) else {
            return Err(AeroError::new(ErrorCode::SchemaRequired, "schema_id and schema_version must be strings"));
        };
        let Some(versions) = self.schemas.get(schema_id.as_str()) else {
            return Err(AeroError::new(ErrorCode::UnknownSchema, format!("unknown schema '{}'", printable(schema_id)))
                .detail("schema_id", printable(schema_id)));
        };
        versions.get(schema_version.as_str()).ok_or_else(|| {
            AeroError::new(ErrorCode::UnknownSchemaVersion, format!("schema '{schema_id}' has no version '{}'", printable(schema_version)))
                .detail("schema_id", schema_id.clone())
                .detail("schema_version", printable(schema_version))
        })
    }

    pub fn get(&self, schema_id: &str, schema_version: &str) -> Option<&Arc<Schema>> {
        self.schemas.get(schema_id)?.get(schema_version)
    }

    /// Every version of one collection, in version order.
    pub fn versions(&self, schema_id: &str) -> impl Iterator<Item = &Arc<Schema>> {
        self.schemas.get(schema_id).into_iter().flat_map(|versions| versions.values())
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Schema>> {
        self.schemas.values().flat_map(|versions| versions.values())
    }
}

/// An identifier from a request, shortened for messages if it is hostile.
fn printable(text: &str) -> String {
    if is_identifier(text) {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(64).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        short
    }
}

/// How long a writer of the schema folder waits for another one.
const SCHEMA_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes the schema folder's exclusive lock, held while the hashes file is
/// read, changed and written (a boot recording hashes, `schema add`), so
/// that two of them never lose each other's hash. Each holds it for a few
/// file writes; a writer waits up to `SCHEMA_LOCK_WAIT`, then gives up with
/// `AERO_STORAGE_LOCKED`.
fn lock_schemas(paths: &Paths) -> Result<Box<dyn crate::vfs::FileHandle>> {
    let folder = paths
        .fs
        .open(&paths.schemas, crate::vfs::Access::Read)
        .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot open", &paths.schemas, &error))?;
    let started = std::time::Instant::now();
    loop {
        if folder.try_lock(true).map_err(|error| io_error(ErrorCode::StorageIoError, "cannot lock", &paths.schemas, &error))? {
            return Ok(folder);
        }
        if started.elapsed() > SCHEMA_LOCK_WAIT {
            return Err(AeroError::new(
                ErrorCode::StorageLocked,
                format!("{} stayed locked by another writer of schemas for {} s", paths.schemas.display(), SCHEMA_LOCK_WAIT.as_secs()),
            )
            .detail("file", paths.schemas.display().to_string()));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// `aerodb schema add`: validates a schema file, installs it under its
/// canonical name and records its hash. The same content again is a no-op
/// (returns false); a different content for an existing or recorded
/// version is `AERO_SCHEMA_IMMUTABLE`.
pub fn install(paths: &Paths, source: &Path) -> Result<(Schema, bool)> {
    let reject = |error: AeroError| error.with_severity(Severity::Reject);
    let bytes = crate::io::read_json_file(source)
        .map_err(|error| reject(io_error(ErrorCode::SchemaInvalid, "cannot read schema file", source, &error)))?;
    install_bytes(paths, &bytes, source)
}

/// [`install`] for a schema file's bytes (`source` names them in errors).
pub fn install_bytes(paths: &Paths, bytes: &[u8], source: &Path) -> Result<(Schema, bool)> {
    let reject = |error: AeroError| error.with_severity(Severity::Reject);
    if bytes.len() as u64 > aerodb_format::JSON_FILE_SIZE_MAX_BYTES {
        return Err(reject(invalid(source, format!("is over {} bytes", aerodb_format::JSON_FILE_SIZE_MAX_BYTES))));
    }
    let schema = Schema::parse(bytes).map_err(|error| reject(invalid(source, error)))?;
    let name = file_name(&schema.schema_id, &schema.schema_version);
    let target = paths.schemas.join(&name);
    let _writers = lock_schemas(paths)?;
    let mut hashes = match read_hashes(paths)? {
        Some(hashes) => hashes,
        None => {
            let names = paths
                .fs
                .list(&paths.schemas)
                .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot list", &paths.schemas, &error))?;
            hashes_lost(paths, &names)?;
            BTreeMap::new()
        }
    };
    let hash = sha256_hex(bytes);
    if hashes.get(&name).is_some_and(|recorded| *recorded != hash) {
        return Err(reject(
            AeroError::new(
                ErrorCode::SchemaImmutable,
                format!(
                    "schema {} version {} was recorded with different content (sha256 {}); schema versions are immutable",
                    schema.schema_id, schema.schema_version, hashes[&name]
                ),
            )
            .detail("file", target.display().to_string()),
        ));
    }
    match crate::vfs::read_json(&*paths.fs, &target) {
        Ok(existing) if existing == bytes => return Ok((schema, false)),
        Ok(_) => {
            return Err(reject(
                AeroError::new(
                    ErrorCode::SchemaImmutable,
                    format!(
                        "schema {} version {} already exists with different content ({}); schema versions are immutable",
                        schema.schema_id,
                        schema.schema_version,
                        target.display()
                    ),
                )
                .detail("file", target.display().to_string()),
            ));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(ErrorCode::StorageIoError, "cannot read", &target, &error)),
    }
    crate::vfs::write_atomic(&*paths.fs, &target, bytes)
        .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", &target, &error))?;
    // Record the content hash now, so an edit before the next start is caught.
    hashes.insert(name, hash);
    crate::vfs::write_atomic(&*paths.fs, &paths.schema_hashes, hashes_json(&hashes).as_bytes())
        .map_err(|error| io_error(ErrorCode::StorageIoError, "cannot write", &paths.schema_hashes, &error))?;
    Ok((schema, true))
}
