//! The config file, the data directory it names, and the LOCK probe.
//!
//! The config is parsed with `aerodb_format::config::Config::parse`, exactly
//! as the engine parses it; a relative `data_dir` is resolved against the
//! config file's folder. Paths inside the data directory follow FORMAT.md
//! ("Files"); reports name files relative to the data directory.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use aerodb_format::config::Config;

/// Where `--config` points when it is not given.
pub const DEFAULT_CONFIG_PATH: &str = "./aerodb.json";

/// File names inside the data directory, relative to it (as reports show
/// them): the format crate's layout, the one the engine uses.
pub use aerodb_format::layout::{
    CLEAN_SHUTDOWN_FILE, DATA_DIR, FROZEN_CONFIG_FILE, INDEXES_DIR, INDEX_DIRECTORY_FILE, LOCK_FILE, MANIFEST_FILE, SCHEMAS_DIR,
    SCHEMA_HASHES_FILE, STATE_FILE, WAL_FILE,
};

/// A database located through its config file.
#[derive(Clone, Debug)]
pub struct Database {
    pub config: Config,
    pub config_path: PathBuf,
    /// The data directory, as resolved (relative to the working directory
    /// when the config path was relative).
    pub root: PathBuf,
}

/// Why a tool cannot start at all (exit code 2).
#[derive(Clone, Debug)]
pub struct CannotRun(pub String);

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Database {
    /// Reads the config file and checks that its data directory exists.
    pub fn open(config_path: &Path) -> Result<Database, CannotRun> {
        let bytes = crate::files::read_small(config_path)
            .map_err(|error| CannotRun(format!("cannot read config file {}: {error}", config_path.display())))?;
        let config = Config::parse(&bytes).map_err(|error| {
            let field = if error.field.is_empty() { String::new() } else { format!(" (field {})", error.field) };
            CannotRun(format!("config file {} is not valid{field}: {}", config_path.display(), error.message))
        })?;
        let root = resolve_data_dir(config_path, &config.data_dir);
        match std::fs::metadata(&root) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(CannotRun(format!("data directory {} is not a directory", root.display()))),
            Err(error) => return Err(CannotRun(format!("data directory {} cannot be opened: {error}", root.display()))),
        }
        Ok(Database { config, config_path: config_path.to_path_buf(), root })
    }

    /// Absolute-or-relative path of a file named relative to the data directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// True when the clean-shutdown marker exists.
    pub fn has_clean_shutdown(&self) -> bool {
        self.path(CLEAN_SHUTDOWN_FILE).exists()
    }

    /// Probes the LOCK: `Some(true)` if a process holds it, `Some(false)` if
    /// not, `None` when it cannot tell (no LOCK file, or the probe failed).
    /// Takes a shared lock on a read-only handle for an instant.
    pub fn lock_is_held(&self) -> Option<bool> {
        // The engine locks the data directory itself (and LOCK): a deleted
        // LOCK file does not hide a running server.
        if let Ok(directory) = File::open(&self.root) {
            match directory.try_lock_shared() {
                Ok(()) => {
                    let _ = directory.unlock();
                }
                Err(TryLockError::WouldBlock) => return Some(true),
                Err(TryLockError::Error(_)) => {}
            }
        }
        let file = File::open(self.path(LOCK_FILE)).ok()?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                Some(false)
            }
            Err(TryLockError::WouldBlock) => Some(true),
            Err(TryLockError::Error(_)) => None,
        }
    }

    /// Prints a warning on stderr when a running process holds the LOCK;
    /// returns whether it does (files are then read, not mapped).
    pub fn warn_if_locked(&self, tool: &str) -> bool {
        let held = self.lock_is_held() == Some(true);
        if held {
            crate::cli::write_stderr(&format!(
                "{tool}: warning: the database in {} is open in a running process (LOCK is held); \
                 files may change while they are read, so results may be inconsistent\n",
                self.root.display()
            ));
        }
        held
    }
}

/// Resolves `data_dir` against the config file's folder.
pub fn resolve_data_dir(config_path: &Path, data_dir: &str) -> PathBuf {
    let data_dir = Path::new(data_dir);
    if data_dir.is_absolute() {
        return data_dir.to_path_buf();
    }
    match config_path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
        Some(folder) => folder.join(data_dir),
        None => data_dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_data_dir_resolves_against_the_config_folder() {
        assert_eq!(resolve_data_dir(Path::new("aerodb.json"), "./data"), PathBuf::from("./data"));
        assert_eq!(resolve_data_dir(Path::new("conf/aerodb.json"), "data"), PathBuf::from("conf/data"));
        assert_eq!(resolve_data_dir(Path::new("conf/aerodb.json"), "/srv/db"), PathBuf::from("/srv/db"));
    }
}
