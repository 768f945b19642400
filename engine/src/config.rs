//! Loading the config file and naming every path of the data directory.
//!
//! The config is read and validated before any file of the database is
//! opened; a relative `data_dir` is resolved against the config file's folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aerodb_format::config::{Config, ConfigErrorKind};

use crate::error::{AeroError, ErrorCode, Result};
use crate::vfs::FileSystem;

/// A validated config and where it came from.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub values: Config,
    pub config_path: PathBuf,
    pub paths: Paths,
}

/// Every path inside a data directory (FORMAT.md, "Files").
#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
    pub manifest: PathBuf,
    pub lock: PathBuf,
    pub wal_dir: PathBuf,
    pub wal: PathBuf,
    pub data: PathBuf,
    pub indexes: PathBuf,
    pub index_directory: PathBuf,
    pub metadata: PathBuf,
    pub schemas: PathBuf,
    pub frozen_config: PathBuf,
    pub schema_hashes: PathBuf,
    pub state: PathBuf,
    pub clean_shutdown: PathBuf,
    /// The file system every one of these files is reached through.
    pub fs: Arc<dyn FileSystem>,
}

impl Paths {
    /// The paths of the data directory `root` on the real file system.
    pub fn new(root: PathBuf) -> Paths {
        Paths::with_fs(root, crate::vfs::os())
    }

    /// The paths of the data directory `root`, reached through `fs`.
    pub fn with_fs(root: PathBuf, fs: Arc<dyn FileSystem>) -> Paths {
        use aerodb_format::layout as names;
        Paths {
            fs,
            manifest: root.join(names::MANIFEST_FILE),
            lock: root.join(names::LOCK_FILE),
            wal_dir: root.join(names::WAL_DIR),
            wal: root.join(names::WAL_FILE),
            data: root.join(names::DATA_DIR),
            indexes: root.join(names::INDEXES_DIR),
            index_directory: root.join(names::INDEX_DIRECTORY_FILE),
            schemas: root.join(names::SCHEMAS_DIR),
            frozen_config: root.join(names::FROZEN_CONFIG_FILE),
            schema_hashes: root.join(names::SCHEMA_HASHES_FILE),
            state: root.join(names::STATE_FILE),
            clean_shutdown: root.join(names::CLEAN_SHUTDOWN_FILE),
            metadata: root.join(names::METADATA_DIR),
            root,
        }
    }
}

/// Drops `.` components (`././data` → `data`); `..` is kept as written.
fn without_current_dir(path: &Path) -> PathBuf {
    let cleaned: PathBuf = path.components().filter(|component| !matches!(component, std::path::Component::CurDir)).collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<EngineConfig> {
    let bytes = crate::io::read_json_file(path).map_err(|error| {
        AeroError::new(ErrorCode::ConfigInvalid, format!("cannot read config file {}: {error}", path.display()))
            .detail("file", path.display().to_string())
    })?;
    let values = Config::parse(&bytes).map_err(|error| {
        let code = match error.kind {
            ConfigErrorKind::Invalid => ErrorCode::ConfigInvalid,
            ConfigErrorKind::Unsafe => ErrorCode::ConfigUnsafe,
        };
        let mut out = AeroError::new(code, format!("{}: {}", path.display(), error.message)).detail("file", path.display().to_string());
        if !error.field.is_empty() {
            out = out.detail("field", error.field);
        }
        out
    })?;
    let folder = path.parent().filter(|folder| !folder.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let data_dir = Path::new(&values.data_dir);
    let root = if data_dir.is_absolute() { data_dir.to_path_buf() } else { without_current_dir(&folder.join(data_dir)) };
    Ok(EngineConfig { values, config_path: path.to_path_buf(), paths: Paths::new(root) })
}

/// A config for the database at `data_dir` with the given limits, validated
/// by the same rules as a config file (the library's way to name a database
/// without writing a config file).
pub fn for_data_dir(data_dir: &Path, max_wal_size_bytes: u64, max_memory_bytes: u64) -> Result<EngineConfig> {
    let Some(text) = data_dir.to_str() else {
        return Err(AeroError::new(ErrorCode::ConfigInvalid, format!("data_dir {} is not valid UTF-8", data_dir.display()))
            .detail("field", "data_dir"));
    };
    let object = serde_json::json!({
        "data_dir": text,
        "max_wal_size_bytes": max_wal_size_bytes,
        "max_memory_bytes": max_memory_bytes,
    });
    let values = Config::parse(object.to_string().as_bytes()).map_err(|error| {
        let code = match error.kind {
            ConfigErrorKind::Invalid => ErrorCode::ConfigInvalid,
            ConfigErrorKind::Unsafe => ErrorCode::ConfigUnsafe,
        };
        AeroError::new(code, error.message).detail("field", error.field)
    })?;
    Ok(EngineConfig { values, config_path: PathBuf::new(), paths: Paths::new(without_current_dir(data_dir)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_data_dir_resolves_against_config_folder() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("aerodb.json");
        std::fs::write(&path, r#"{"data_dir": "./data"}"#).unwrap();
        let config = load(&path).unwrap();
        assert_eq!(config.paths.root, folder.path().join("data"));
    }

    #[test]
    fn errors_carry_codes() {
        let folder = tempfile::tempdir().unwrap();
        let missing = load(&folder.path().join("none.json")).unwrap_err();
        assert_eq!(missing.code, ErrorCode::ConfigInvalid);
        let path = folder.path().join("c.json");
        std::fs::write(&path, r#"{"data_dir": "d", "wal_sync_mode": "async"}"#).unwrap();
        assert_eq!(load(&path).unwrap_err().code, ErrorCode::ConfigUnsafe);
        std::fs::write(&path, r#"{"data_dir": "d", "max_memory_bytes": 0}"#).unwrap();
        let error = load(&path).unwrap_err();
        assert_eq!(error.code, ErrorCode::ConfigInvalid);
        assert_eq!(error.details["field"], "max_memory_bytes");
    }
}
