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

    /// True when the clean-shutdown marker exists (as the engine tests it).
    pub fn has_clean_shutdown(&self) -> bool {
        // As the boot judges it: anything at the name, a dangling link too.
        std::fs::symlink_metadata(self.path(CLEAN_SHUTDOWN_FILE)).is_ok()
    }

    /// Takes a shared lock on the data directory for as long as the
    /// returned handle lives, so no server can open the database (it takes
    /// an exclusive lock) while the files are read: the answer cannot go
    /// stale between the check and the reads. `(Some(handle), true)`: held,
    /// files may be mapped. `(None, false)`: a running process holds the
    /// database; a warning is printed and files are read, not mapped (a
    /// server may grow or write them meanwhile). `(None, true)`: no lock
    /// could be taken nor is one held (no directory handle).
    pub fn lock_for_reading(&self, tool: &str) -> (Option<(File, Option<File>)>, bool) {
        // The engine locks the data directory itself, then LOCK: a process
        // holding either (or a LOCK deleted under a running server) is seen.
        let shared = |file: &File| match file.try_lock_shared() {
            Ok(()) => Some(true),
            Err(TryLockError::WouldBlock) => Some(false),
            Err(TryLockError::Error(_)) => None,
        };
        let directory = File::open(&self.root).ok();
        let directory_lock = directory.as_ref().and_then(|directory| shared(directory));
        // Without blocking (a FIFO named LOCK is not waited on), and only a
        // regular file (verify reports anything else in its place).
        let lock_file = match crate::files::open_nonblocking(&self.path(LOCK_FILE)) {
            Ok(file) if file.metadata().is_ok_and(|metadata| metadata.is_file()) => Some(file),
            Ok(_) => None,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                crate::cli::write_stderr(&format!(
                    "{tool}: warning: {} cannot be opened ({error}): no shared lock is held on it, so a server could open \
                     the database while it is read\n",
                    self.path(LOCK_FILE).display()
                ));
                None
            }
        };
        let file_lock = lock_file.as_ref().and_then(|file| shared(file));
        if directory_lock == Some(false) || file_lock == Some(false) {
            self.warn_in_use(tool);
            return (None, false);
        }
        match (directory, directory_lock) {
            (Some(directory), Some(true)) => (Some((directory, lock_file.filter(|_| file_lock == Some(true)))), true),
            _ => (None, true),
        }
    }

    fn warn_in_use(&self, tool: &str) {
        crate::cli::write_stderr(&format!(
            "{tool}: warning: the database in {} is open in a running process (LOCK is held); \
             files may change while they are read, so results may be inconsistent\n",
            self.root.display()
        ));
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
