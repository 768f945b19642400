//! Writes the standard test database into a folder you name, for trying the
//! tools by hand and for the examples in docs/TOOLS.md:
//!
//! ```text
//! sample="$(mktemp -d)/sample"
//! AERODB_TOOLS_SAMPLE_DIR="$sample" cargo test -p aerodb-tools --test sample -- --ignored
//! cd "$sample" && aerodb-verify --config aerodb.json
//! ```
//!
//! The folder must not exist yet. Set `AERODB_TOOLS_SAMPLE_CRASHED=1` to
//! write it as after a crash instead (no clean shutdown, the last two writes
//! in the WAL but not applied to the segments).

mod common;

use serde_json::json;

#[test]
#[ignore = "writes into the folder named by AERODB_TOOLS_SAMPLE_DIR"]
fn write_sample_database() {
    let folder = std::env::var_os("AERODB_TOOLS_SAMPLE_DIR").expect("set AERODB_TOOLS_SAMPLE_DIR to a folder to create");
    let folder = std::path::PathBuf::from(folder);
    assert!(!folder.exists(), "{} already exists", folder.display());
    std::fs::create_dir_all(&folder).unwrap();
    let crashed = std::env::var_os("AERODB_TOOLS_SAMPLE_CRASHED").is_some();
    let mut builder = common::Builder::standard();
    if crashed {
        builder.stop_applying();
        builder.update("user", "v1", json!({"_id": "u1", "name": "alice", "age": 31}));
        builder.insert("user", "v1", json!({"_id": "u13", "name": "max", "age": 27}));
    }
    let db = builder.finish_into(&folder, !crashed);
    eprintln!("sample database written; config file {}", db.config.display());
}
