//! The names of the files and folders of a data directory, relative to it
//! (FORMAT.md section 2). The engine builds its paths from these and the
//! tools read through them, so the layout is written down once.

pub const MANIFEST_FILE: &str = "MANIFEST";
pub const LOCK_FILE: &str = "LOCK";
pub const WAL_DIR: &str = "wal";
pub const WAL_FILE: &str = "wal/wal.log";
pub const DATA_DIR: &str = "data";
pub const INDEXES_DIR: &str = "indexes";
pub const INDEX_DIRECTORY_FILE: &str = "indexes/directory.json";
pub const METADATA_DIR: &str = "metadata";
pub const SCHEMAS_DIR: &str = "metadata/schemas";
pub const FROZEN_CONFIG_FILE: &str = "metadata/config.json";
pub const SCHEMA_HASHES_FILE: &str = "metadata/schema_hashes.json";
pub const STATE_FILE: &str = "metadata/state.json";
pub const CLEAN_SHUTDOWN_FILE: &str = "clean_shutdown";
