//! aerodb-inspect on a hand-built database: every subcommand, human and JSON.

mod common;

use serde_json::json;

use common::Builder;

#[test]
fn wal_lists_every_record_with_totals() {
    let db = Builder::standard().finish(true);
    let output = db.inspect(&["wal", "--json"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let report = output.json();
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 19);
    assert_eq!(records[0]["seq"], json!(1));
    assert_eq!(records[0]["offset"], json!(40));
    assert_eq!(records[0]["op"], json!("insert"));
    assert_eq!(records[0]["_id"], json!("u1"));
    assert_eq!(records[0]["crc"], json!("ok"));
    let page = &records[0]["pages"][0];
    assert_eq!(page["image_bytes"].as_u64().unwrap() + page["hole_bytes"].as_u64().unwrap(), 4096);
    assert_eq!(report["totals"]["records"], json!(19));
    assert_eq!(report["last_seq"], json!(19));
    assert_eq!(report["torn_tail"], json!(null));
    let human = db.inspect(&["wal"]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.contains("totals: 19 records"), "{}", human.stdout);
    let filtered = db.inspect(&["wal", "--from", "3", "--to", "5", "--json"]).json();
    let seqs: Vec<_> = filtered["records"].as_array().unwrap().iter().map(|r| r["seq"].clone()).collect();
    assert_eq!(seqs, vec![json!(3), json!(4), json!(5)]);
}

/// `--page` and `--id` keep the records that touched that page or that
/// document (as pg_waldump filters by block); `--stats` sums records and
/// bytes by op and agrees with the full listing.
#[test]
fn wal_filters_by_page_and_id_and_sums_by_op() {
    let db = Builder::standard().finish(true);
    let all = db.inspect(&["wal", "--json"]).json();
    let records = all["records"].as_array().unwrap();
    let by_id = db.inspect(&["wal", "--id", "u1", "--json"]).json();
    let expected: Vec<_> = records.iter().filter(|record| record["_id"] == json!("u1")).map(|record| record["seq"].clone()).collect();
    let got: Vec<_> = by_id["records"].as_array().unwrap().iter().map(|record| record["seq"].clone()).collect();
    assert!(!got.is_empty());
    assert_eq!(got, expected);
    let page = records[0]["pages"][0]["page"].as_u64().unwrap();
    let by_page = db.inspect(&["wal", "--page", &page.to_string(), "--json"]).json();
    let expected: Vec<_> = records
        .iter()
        .filter(|record| record["pages"].as_array().unwrap().iter().any(|entry| entry["page"] == json!(page)))
        .map(|record| record["seq"].clone())
        .collect();
    let got: Vec<_> = by_page["records"].as_array().unwrap().iter().map(|record| record["seq"].clone()).collect();
    assert_eq!(got, expected);
    let stats = db.inspect(&["wal", "--stats", "--json"]).json();
    let records_by_stats: u64 = stats["by_op"].as_object().unwrap().values().map(|op| op["records"].as_u64().unwrap()).sum();
    let bytes_by_stats: u64 = stats["by_op"].as_object().unwrap().values().map(|op| op["bytes"].as_u64().unwrap()).sum();
    assert_eq!(records_by_stats, all["totals"]["records"].as_u64().unwrap());
    assert_eq!(bytes_by_stats, all["totals"]["bytes"].as_u64().unwrap());
    let human = db.inspect(&["wal", "--stats"]);
    assert!(human.stdout.contains("bytes/record"), "{}", human.stdout);
}

#[test]
fn wal_shows_torn_tail_and_corruption() {
    let db = Builder::standard().finish(true);
    let offset = db.record_offset(19) as u64;
    db.truncate("wal/wal.log", offset + 7);
    let report = db.inspect(&["wal", "--json"]).json();
    let last = report["records"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], json!("torn"));
    assert_eq!(last["offset"], json!(offset));
    assert_eq!(last["bytes"], json!(7));
    assert_eq!(report["torn_tail"], json!({"offset": offset, "bytes": 7}));
    let middle = db.record_offset(4) as u64;
    db.flip_byte("wal/wal.log", middle + 30);
    let report = db.inspect(&["wal", "--json"]).json();
    let corrupt: Vec<_> = report["records"].as_array().unwrap().iter().filter(|r| r["status"] == json!("corrupt")).collect();
    assert_eq!(corrupt.len(), 1);
    assert_eq!(corrupt[0]["offset"], json!(middle));
    let human = db.inspect(&["wal"]);
    assert!(human.stdout.contains("CORRUPT"), "{}", human.stdout);
    assert!(human.stdout.contains("TORN TAIL"), "{}", human.stdout);
}

#[test]
fn page_decodes_documents_overflow_and_nodes() {
    let db = Builder::standard().finish(true);
    let u1 = db.document("user", "u1").locator;
    let report = db.inspect(&["page", &u1.page.0.to_string(), "--json"]).json();
    assert_eq!(report["status"], json!("ok"));
    assert_eq!(report["header"]["kind"], json!("document"));
    let slot = &report["content"]["slots"][u1.slot as usize];
    assert_eq!(slot["record"]["document"], json!({"_id": "u1", "name": "alice", "age": 30, "score": 1.5}));
    let u4 = db.document("user", "u4").clone();
    let stub = db.inspect(&["page", &u4.locator.page.0.to_string(), "--json"]).json();
    let stub_slot = &stub["content"]["slots"][u4.locator.slot as usize]["record"];
    assert_eq!(stub_slot["kind"], json!("overflow"));
    assert_eq!(stub_slot["first_page"], json!(u4.overflow_pages[0]));
    let overflow = db.inspect(&["page", &u4.overflow_pages[0].to_string(), "--json"]).json();
    assert_eq!(overflow["content"]["data_bytes"], json!(4048));
    assert_eq!(overflow["content"]["next"], json!(u4.overflow_pages[1]));
    let tree = db.tree("user/v1/age").clone();
    let leaf = db.inspect(&["page", &tree.leaves[0].to_string(), "--index", "--json"]).json();
    assert_eq!(leaf["header"]["kind"], json!("btree_leaf"));
    assert_eq!(leaf["content"]["entries"][0]["key"], json!([19, "u11"]));
    let root = db.inspect(&["page", &tree.root.to_string(), "--index", "--json"]).json();
    assert_eq!(root["header"]["kind"], json!("btree_internal"));
    assert_eq!(root["content"]["entries"][0]["key"], json!([]));
    let hex = db.inspect(&["page", "0", "--hex"]);
    assert_eq!(hex.code, 0);
    assert!(hex.stdout.contains("000000  "), "{}", hex.stdout);
    assert_eq!(db.inspect(&["page", "5000"]).code, 2);
    let unwritten = db.inspect(&["page", "1000", "--json"]).json();
    assert_eq!(unwritten["status"], json!("unwritten"));
}

#[test]
fn pages_lists_every_page() {
    let db = Builder::standard().finish(true);
    let report = db.inspect(&["pages", "--json"]).json();
    let pages = report["pages"].as_array().unwrap();
    assert!(pages.iter().all(|p| p["checksum"] == json!("ok")), "{report}");
    assert_eq!(pages.len(), 6);
    assert_eq!(report["unwritten"][0]["last"], json!(1023));
    let u1 = db.document("user", "u1").locator.page.0;
    let (file, base) = db.page_file("data", u1);
    db.flip_byte(&file, base + 4000);
    let report = db.inspect(&["pages", "--json"]).json();
    let damaged = report["pages"].as_array().unwrap().iter().find(|p| p["page"] == json!(u1)).unwrap().clone();
    assert_eq!(damaged["checksum"], json!("BAD"));
    let index = db.inspect(&["pages", "--index"]);
    assert_eq!(index.code, 0);
    assert!(index.stdout.contains("btree_leaf"), "{}", index.stdout);
}

#[test]
fn summary_counts_pages_wal_and_documents() {
    let db = Builder::standard().finish(true);
    let report = db.inspect(&["summary", "--json"]).json();
    assert_eq!(report["clean_shutdown"], json!(true));
    assert_eq!(report["documents"]["by_schema_version"], json!({"item/v1": 3, "user/v1": 8, "user/v2": 2}));
    assert_eq!(report["wal"]["records"], json!(19));
    assert_eq!(report["wal"]["max_wal_size_bytes"], json!(1073741824u64));
    assert_eq!(report["document_space"]["by_kind"]["overflow"], json!(2));
    assert_eq!(report["document_space"]["by_kind"]["free"], json!(2));
    assert_eq!(report["index_trees"]["trees"].as_array().unwrap().len(), 8);
    let human = db.inspect(&["summary"]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.contains("user/v1: 8"), "{}", human.stdout);
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let db = Builder::standard().finish(true);
    assert_eq!(db.inspect(&[]).code, 64);
    assert_eq!(db.inspect(&["frobnicate"]).code, 64);
    assert_eq!(db.inspect(&["page"]).code, 64);
    assert_eq!(db.inspect(&["page", "x"]).code, 64);
    assert_eq!(db.inspect(&["--help"]).code, 0);
    assert_eq!(db.inspect(&["wal", "--help"]).code, 0);
    let version = db.inspect(&["--version"]);
    assert_eq!(version.code, 0);
    assert!(version.stdout.contains("aerodb-inspect"));
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_aerodb-inspect"))
        .args(["--config", "/nonexistent/aerodb.json", "summary"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn warns_when_the_lock_is_held() {
    let db = Builder::standard().finish(true);
    let lock = std::fs::File::open(db.path("LOCK")).unwrap();
    lock.lock().unwrap();
    let output = db.inspect(&["summary"]);
    assert_eq!(output.code, 0);
    assert!(output.stderr.contains("LOCK is held"), "{}", output.stderr);
    let output = db.verify();
    assert_eq!(output.code, 0);
    assert!(output.stderr.contains("LOCK is held"), "{}", output.stderr);
    lock.unlock().unwrap();
    let output = db.inspect(&["summary"]);
    assert!(output.stderr.is_empty(), "{}", output.stderr);
}

/// The lock the tools hold while they read (a shared `flock` on the data
/// directory, `Database::lock_for_reading`): it keeps the engine's exclusive
/// lock out for as long as it is held, and does not shut out or warn a
/// second reader (inspect beside verify). What this test cannot show is the
/// tool holding it for its whole run; the handle lives until `main` returns.
#[test]
fn the_read_lock_excludes_a_server_but_not_another_reader() {
    let db = Builder::standard().finish(true);
    let directory = std::fs::File::open(db.path("")).unwrap();
    // A verify-like reader holds the directory shared ...
    directory.lock_shared().unwrap();
    let other = std::fs::File::open(db.path("")).unwrap();
    assert!(matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)), "an exclusive lock must wait for the reader");
    // ... and a second reader (inspect beside verify) is not shut out, nor warned.
    let output = db.inspect(&["summary"]);
    assert_eq!(output.code, 0);
    assert!(!output.stderr.contains("LOCK is held"), "{}", output.stderr);
    directory.unlock().unwrap();
    assert!(other.try_lock().is_ok());
}
