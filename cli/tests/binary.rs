//! The `aerodb` binary answers --version, --help and bad usage. (This test
//! also makes `cargo test` build the binary for the end-to-end tests.)

use std::process::Command;

#[test]
fn version_help_and_usage_exit_codes() {
    let binary = env!("CARGO_BIN_EXE_aerodb");
    let version = Command::new(binary).arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("aerodb "));
    let help = Command::new(binary).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("schema"));
    let usage = Command::new(binary).arg("frobnicate").output().unwrap();
    assert_eq!(usage.status.code(), Some(64));
    let missing = Command::new(binary).output().unwrap();
    assert_eq!(missing.status.code(), Some(64));
}
