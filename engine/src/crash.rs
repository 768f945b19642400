//! Crash points for tests: with `AERODB_CRASH_POINT=<name>` set, the process
//! aborts (no cleanup, like SIGKILL) the first time it reaches that point.
//! The names are listed in docs/TESTING.md.

use std::sync::OnceLock;

/// Every crash point the engine defines.
pub const CRASH_POINTS: &[&str] = &[
    "wal_before_append",
    "wal_grow",
    "wal_mid_group",
    "wal_after_append",
    "wal_after_fsync",
    "storage_mid_apply",
    "storage_after_apply",
    "index_mid_update",
    "recovery_mid_replay",
    "recovery_mid_rebuild",
    "shutdown_before_marker",
    "segment_create",
    "metadata_before_rename",
    "backup_mid_copy",
    "init_before_rename",
];

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var("AERODB_CRASH_POINT").ok()).as_deref()
}

/// Aborts the process if `name` is the armed crash point.
pub fn reach(name: &'static str) {
    debug_assert!(CRASH_POINTS.contains(&name), "unknown crash point {name}");
    if armed() == Some(name) {
        crate::log::write_stderr(&format!(
            "{{\"level\":\"error\",\"component\":\"crash\",\"event\":\"crash_point\",\"name\":\"{name}\"}}\n"
        ));
        std::process::abort();
    }
}
