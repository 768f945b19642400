//! aerodb-verify on hand-built databases: clean, then damaged in targeted
//! ways; each damage must be named precisely (file, page, offset) and make
//! verify exit 1, except a torn WAL tail (a warning, exit 0).

mod common;

use serde_json::{json, Value};

use aerodb_format::btree;
use aerodb_format::page::{self, PageHeader};
use aerodb_format::PageNo;
use common::{matching, show, Builder, TestDb};

const SEGMENT: &str = "data/segment-000000.seg";
const INDEX_SEGMENT: &str = "indexes/segment-000000.seg";

fn assert_problem<'a>(problems: &'a [Value], needle: &str) -> &'a Value {
    let found = matching(problems, needle);
    assert!(!found.is_empty(), "no problem mentions {needle:?}; problems:\n{}", show(problems));
    found[0]
}

fn assert_at(problem: &Value, file: &str, page: Option<u64>, offset: Option<u64>) {
    assert_eq!(problem["file"], json!(file), "{problem}");
    assert_eq!(problem["page"], json!(page), "{problem}");
    if offset.is_some() {
        assert_eq!(problem["offset"], json!(offset), "{problem}");
    }
}

fn clean_db() -> TestDb {
    Builder::standard().finish(true)
}

#[test]
fn clean_database_verifies() {
    let db = clean_db();
    let output = db.verify();
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    assert!(output.problems().is_empty(), "{}", show(&output.problems()));
    assert!(output.notes().is_empty(), "{}", show(&output.notes()));
    let checked = &output.json()["checked"];
    assert_eq!(checked["documents"], json!(13));
    assert_eq!(checked["wal_records"], json!(19));
    assert_eq!(checked["index_trees"], json!(8));
    let human = db.run(env!("CARGO_BIN_EXE_aerodb-verify"), &[]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.starts_with("CLEAN: 0 problem(s)"), "{}", human.stdout);
}

#[test]
fn flipped_byte_in_a_document_page_is_named() {
    let db = clean_db();
    let locator = db.document("user", "u1").locator;
    let (file, base) = db.page_file("data", locator.page.0);
    db.flip_byte(&file, base + db.slot_offset(locator) + 5);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    let problem = assert_problem(&problems, "checksum");
    assert_at(problem, SEGMENT, Some(locator.page.0), Some(base));
}

#[test]
fn flipped_byte_in_an_overflow_page_is_named() {
    let db = clean_db();
    let overflow = db.document("user", "u4").overflow_pages[1];
    let (file, base) = db.page_file("data", overflow);
    db.flip_byte(&file, base + 300);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_at(assert_problem(&problems, "checksum"), SEGMENT, Some(overflow), Some(base));
}

#[test]
fn broken_overflow_chain_is_named() {
    let db = clean_db();
    let place = db.document("user", "u4").clone();
    let first = place.overflow_pages[0];
    let mut page = db.read_page("data", first);
    page[32..40].copy_from_slice(&PageNo::NONE.0.to_le_bytes());
    db.write_page_resealed("data", first, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    let (_, base) = db.page_file("data", first);
    assert_at(assert_problem(&problems, "differs from its last WAL image"), SEGMENT, Some(first), Some(base + 32));
    let short = assert_problem(&problems, "holds 4048 bytes, its stub says");
    assert_at(short, SEGMENT, Some(place.locator.page.0), None);
    assert_at(assert_problem(&problems, "belongs to no chain"), SEGMENT, Some(place.overflow_pages[1]), None);
}

#[test]
fn damaged_wal_record_in_the_middle_is_corruption() {
    let db = clean_db();
    let offset = db.record_offset(5) as u64;
    db.flip_byte("wal/wal.log", offset + 40);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    let problem = assert_problem(&problems, "corruption, not a torn tail");
    assert_at(problem, "wal/wal.log", None, Some(offset));
}

#[test]
fn sequence_gap_is_corruption() {
    let db = clean_db();
    // Rewrite record 3's sequence number field and fix its CRC: a gap.
    let offset = db.record_offset(3);
    let path = db.path("wal/wal.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let length = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
    let mut record = bytes[offset..offset + length].to_vec();
    let parsed = aerodb_format::wal::decode_record(&record).unwrap();
    assert_eq!(parsed.seq.0, 3);
    drop(parsed);
    record[8..16].copy_from_slice(&7u64.to_le_bytes());
    // The page images carry the LSN too; they must agree with the record.
    let mut pos = 16;
    pos += 1 + record[pos] as usize;
    pos += 1 + record[pos] as usize;
    let mut id_end = pos;
    aerodb_format::document::decode_value(&record, &mut id_end).unwrap();
    let mut at = id_end;
    let pages = u16::from_le_bytes([record[6], record[7]]);
    for _ in 0..pages {
        let lower = u16::from_le_bytes([record[at + 8], record[at + 9]]) as usize;
        let upper = u16::from_le_bytes([record[at + 10], record[at + 11]]) as usize;
        let image = at + 12;
        record[image + 24..image + 32].copy_from_slice(&7u64.to_le_bytes());
        at = image + lower + 4096 - upper;
    }
    let crc = crc32c(&record[..length - 4]);
    record[length - 4..].copy_from_slice(&crc.to_le_bytes());
    bytes[offset..offset + length].copy_from_slice(&record);
    std::fs::write(&path, bytes).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_at(assert_problem(&problems, "leaves a gap (expected 3)"), "wal/wal.log", None, Some(offset as u64));
    assert_problem(&problems, "repeats or goes back (expected 8)");
}

/// CRC32C (Castagnoli), bitwise: enough for a test.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn flipped_byte_in_manifest_is_named() {
    let db = clean_db();
    db.flip_byte("MANIFEST", 30);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_at(assert_problem(&problems, "MANIFEST does not decode"), "MANIFEST", None, Some(44));
}

#[test]
fn torn_wal_tail_is_a_warning_not_a_failure() {
    let mut builder = Builder::standard();
    builder.stop_applying();
    builder.insert("user", "v1", json!({"_id": "u50", "name": "torn", "age": 1}));
    let db = builder.finish(false);
    let offset = db.record_offset(db.last_seq) as u64;
    db.truncate("wal/wal.log", offset + 20);
    let output = db.verify();
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert!(output.problems().is_empty(), "{}", show(&output.problems()));
    let notes = output.notes();
    let warning = matching(&notes, &format!("torn tail of 20 bytes at offset {offset} (a write that was never acknowledged)"));
    assert_eq!(warning.len(), 1, "{}", show(&notes));
    assert_eq!(warning[0]["level"], json!("warning"));
    assert_at(warning[0], "wal/wal.log", None, Some(offset));
    assert_eq!(matching(&notes, "index checks skipped").len(), 1, "{}", show(&notes));
}

#[test]
fn pages_replay_would_rewrite_are_notes_after_a_crash() {
    let mut builder = Builder::standard();
    builder.stop_applying();
    builder.update("user", "v1", json!({"_id": "u1", "name": "alice", "age": 31}));
    builder.insert("user", "v1", json!({"_id": "u51", "name": "new", "age": 2, "bio": "q".repeat(3000)}));
    let db = builder.finish(false);
    let output = db.verify();
    assert_eq!(output.code, 0, "{}", output.stdout);
    let notes = output.notes();
    let page = db.document("user", "u1").locator.page.0;
    let rewrite = matching(&notes, &format!("page {page} would be rewritten by replay"));
    assert_eq!(rewrite.len(), 1, "{}", show(&notes));
    assert_eq!(rewrite[0]["level"], json!("note"));
    // The new overflow page is all zero in its segment: replay writes it too.
    let overflow = db.document("user", "u51").overflow_pages[0];
    assert_eq!(matching(&notes, &format!("page {overflow} would be rewritten by replay")).len(), 1, "{}", show(&notes));
}

#[test]
fn clean_shutdown_with_a_stale_page_is_a_problem() {
    let db = clean_db();
    // Put back an older version of u1's page (as if the last write never reached it).
    let page_no = db.document("user", "u1").locator.page.0;
    let mut page = db.read_page("data", page_no);
    let count = PageHeader::read(&page).item_count.get();
    aerodb_format::slotted::delete(&mut page, count - 1);
    db.write_page_resealed("data", page_no, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_at(assert_problem(&problems, "differs from its last WAL image"), SEGMENT, Some(page_no), None);
}

#[test]
fn written_page_never_logged_is_a_problem() {
    let db = clean_db();
    let mut page = page::new_page(page::PageKind::Document, PageNo(200));
    aerodb_format::slotted::insert(&mut page, b"\x01junk").unwrap();
    page::seal(&mut page, aerodb_format::SeqNo(1));
    db.write_page_resealed("data", 200, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_at(assert_problem(&problems, "no WAL record logged it"), SEGMENT, Some(200), Some(200 * 4096));
}

#[test]
fn page_lsn_past_the_wal_is_a_problem() {
    let db = clean_db();
    let page_no = db.document("user", "u2").locator.page.0;
    let mut page = db.read_page("data", page_no);
    page::seal(&mut page, aerodb_format::SeqNo(db.last_seq + 5));
    db.write_page_resealed("data", page_no, &mut page);
    let output = db.verify();
    let problems = output.problems();
    assert_eq!(output.code, 1);
    assert_at(assert_problem(&problems, "past the WAL's last sequence number"), SEGMENT, Some(page_no), Some(page_no * 4096 + 24));
}

#[test]
fn dropped_index_entry_is_named() {
    let db = clean_db();
    let tree = db.tree("user/v1/name").clone();
    let leaf = tree.leaves[0];
    let mut page = db.read_page("indexes", leaf);
    btree::remove_entry(&mut page, 0);
    db.write_page_resealed("indexes", leaf, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    // The first name in key order is alice (u1).
    let missing = assert_problem(&problems, "tree user/v1/name has no entry for document _id \"u1\"");
    assert_at(missing, SEGMENT, Some(db.document("user", "u1").locator.page.0), None);
    assert_problem(&problems, "holds 2 entries; it holds 1");
    assert_problem(&problems, "the directory says");
}

#[test]
fn swapped_keys_are_named() {
    let db = clean_db();
    let tree = db.tree("user/v1/age").clone();
    let leaf = tree.leaves[0];
    let mut page = db.read_page("indexes", leaf);
    let entries = btree::entries(&page);
    assert_eq!(entries.len(), 2);
    // Swap the two cell offsets in the directory: keys now run backwards.
    page.swap(48, 50);
    page.swap(49, 51);
    db.write_page_resealed("indexes", leaf, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    let problem = assert_problem(&problems, "key order");
    assert_at(problem, INDEX_SEGMENT, Some(leaf), None);
}

#[test]
fn swapped_locators_are_named() {
    let db = clean_db();
    let tree = db.tree("user/v1/_id").clone();
    let leaf = tree.leaves[0];
    let mut page = db.read_page("indexes", leaf);
    let entries = btree::entries(&page);
    btree::init_node(&mut page, PageNo(leaf), 0);
    let values = [entries[1].1.clone(), entries[0].1.clone()];
    for (index, (key, _)) in entries.iter().enumerate() {
        assert!(btree::insert_entry(&mut page, index, key, &values[index]));
    }
    let original = db.read_page("indexes", leaf);
    let header = PageHeader::read(&original);
    btree::set_links(&mut page, header.prev(), header.next());
    page[24..32].copy_from_slice(&original[24..32]);
    db.write_page_resealed("indexes", leaf, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    let problem = assert_problem(&problems, "tree user/v1/_id: leaf page");
    assert!(problem["message"].as_str().unwrap().contains("but that document is at"), "{problem}");
    assert_at(problem, INDEX_SEGMENT, Some(leaf), None);
    assert_eq!(problems.len(), 2, "{}", show(&problems));
}

#[test]
fn broken_sibling_link_is_named() {
    let db = clean_db();
    let tree = db.tree("user/v1/_id").clone();
    assert!(tree.leaves.len() >= 3);
    let leaf = tree.leaves[1];
    let mut page = db.read_page("indexes", leaf);
    let header = PageHeader::read(&page);
    btree::set_links(&mut page, header.prev(), PageNo(tree.leaves[1]));
    db.write_page_resealed("indexes", leaf, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    let problem = assert_problem(&problems, &format!("leaf page {leaf} has next {leaf}, expected {}", tree.leaves[2]));
    assert_at(problem, INDEX_SEGMENT, Some(leaf), Some(leaf * 4096 + 32));
}

#[test]
fn wrong_child_count_is_named() {
    let db = clean_db();
    let tree = db.tree("user/v1/_id").clone();
    assert!(tree.height >= 2);
    let root = tree.root;
    let mut page = db.read_page("indexes", root);
    let (child, count) = btree::internal_child(&page, 0);
    btree::set_internal_count(&mut page, 0, count + 1);
    db.write_page_resealed("indexes", root, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    let problem = assert_problem(&problems, &format!("entry 0 says child page {child} holds {} entries; it holds {count}", count + 1));
    assert_at(problem, INDEX_SEGMENT, Some(root), None);
}

#[test]
fn duplicate_id_is_named() {
    let mut builder = Builder::standard();
    builder.insert("user", "v2", json!({"_id": "u1", "name": "again"}));
    let db = builder.finish(true);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    let duplicate = db.document("user", "u1").locator;
    let problem = assert_problem(&problems, "duplicate _id \"u1\" in collection user");
    assert_at(problem, SEGMENT, Some(duplicate.page.0), None);
    assert_eq!(matching(&problems, "duplicate _id").len(), 1, "{}", show(&problems));
}

#[test]
fn invalid_documents_are_named() {
    let mut builder = Builder::standard();
    builder.insert_raw("user", "v1", json!({"_id": "u60", "name": "x", "age": "old"}));
    builder.insert_raw("user", "v1", json!({"_id": "u61", "name": "y", "age": 3, "score": 5}));
    builder.insert_raw("user", "v9", json!({"_id": "u62"}));
    let db = builder.finish(true);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_problem(&problems, "document _id \"u60\"");
    assert!(matching(&problems, "field 'age' expected int, got string").len() == 1, "{}", show(&problems));
    assert_problem(&problems, "document _id \"u61\" at page");
    assert_problem(&problems, "is not stored as its schema returns it");
    assert_problem(&problems, "references schema user/v9, which has no schema file");
}

#[test]
fn changed_schema_file_is_named() {
    let db = clean_db();
    let path = db.path("metadata/schemas/user_v1.json");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push(' ');
    std::fs::write(&path, text).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_at(assert_problem(&problems, "differs from the recorded"), "metadata/schemas/user_v1.json", None, None);
}

#[test]
fn schema_files_and_hashes_must_match_both_ways() {
    let db = clean_db();
    std::fs::remove_file(db.path("metadata/schemas/item_v1.json")).unwrap();
    std::fs::write(db.path("metadata/schemas/extra_v1.json"), common::USER_V2).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_problem(&problems, "a hash is recorded for item_v1.json, but metadata/schemas/item_v1.json is missing");
    assert_problem(&problems, "references schema item/v1, which has no schema file");
    // A schema file with no recorded hash is one the next boot records (the
    // engine boots on it): a note, not a problem.
    assert!(matching(&problems, "no hash is recorded").is_empty(), "{}", show(&problems));
    assert_eq!(matching(&output.notes(), "no hash is recorded for this schema file").len(), 1, "{}", show(&output.notes()));
    assert_problem(&problems, "file name should be user_v2.json");
}

/// What the engine's boot refuses, verify reports as a problem, and what the
/// boot accepts it does not: the catalog's and the state file's rules.
#[test]
fn verify_follows_the_boot_on_schema_folders_and_the_state_file() {
    // A file without the .json suffix is refused by the boot; a hidden file is ignored by both.
    let db = clean_db();
    std::fs::write(db.path("metadata/schemas/README.txt"), b"notes").unwrap();
    std::fs::write(db.path("metadata/schemas/.user_v1.json.tmp-1"), b"{").unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_at(assert_problem(&problems, "not a .json schema file"), "metadata/schemas/README.txt", None, None);

    // A repeated key in the hashes file is refused by the strict parser.
    let db = clean_db();
    let hashes = std::fs::read_to_string(db.path("metadata/schema_hashes.json")).unwrap();
    let first_entry = hashes.trim_start_matches('{').split(',').next().unwrap().trim().to_string();
    std::fs::write(db.path("metadata/schema_hashes.json"), hashes.replacen('{', &format!("{{{first_entry},"), 1)).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    assert_problem(&output.problems(), "repeats a key");

    // After a crash (a state file from the last clean shutdown, no marker),
    // a state file that decodes and records more log than the valid records
    // hold means acknowledged records are gone.
    let db = clean_db();
    std::fs::remove_file(db.path("clean_shutdown")).unwrap();
    let state = std::fs::read_to_string(db.path("metadata/state.json")).unwrap();
    let mut value: Value = serde_json::from_str(&state).unwrap();
    value["wal_bytes"] = json!(value["wal_bytes"].as_u64().unwrap() + 1_000_000);
    std::fs::write(db.path("metadata/state.json"), value.to_string()).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1, "{}", output.stdout);
    assert_problem(&output.problems(), "is past the end of the valid records");
    // One it cannot decode is unused after a crash: a warning only.
    std::fs::write(db.path("metadata/state.json"), br#"{"last_seq": 1, "extra": true}"#).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert_eq!(matching(&output.notes(), "state file does not decode").len(), 1, "{}", show(&output.notes()));

    // A WAL record naming a schema version whose file and hash are gone
    // (with no live document of it left) stops replay.
    let mut builder = Builder::standard();
    for id in 1..=3 {
        builder.delete("item", &json!(id));
    }
    let db = builder.finish(true);
    std::fs::remove_file(db.path("metadata/schemas/item_v1.json")).unwrap();
    let hashes: Value = serde_json::from_slice(&std::fs::read(db.path("metadata/schema_hashes.json")).unwrap()).unwrap();
    let mut hashes = hashes;
    hashes.as_object_mut().unwrap().remove("item_v1.json");
    std::fs::write(db.path("metadata/schema_hashes.json"), hashes.to_string()).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1, "{}", output.stdout);
    let problems = output.problems();
    let missing = matching(&problems, "references schema item/v1, which has no schema file");
    assert_eq!(missing.len(), 1, "reported once, for the first record: {}", show(&problems));
    assert_eq!(missing[0]["file"], json!("wal/wal.log"));

    // A folder inside indexes/ is removed by the next boot with the index
    // files: a note, and the boot agrees (it boots and the folder is gone).
    let db = Builder::standard().finish(false);
    std::fs::create_dir_all(db.path("indexes/leftover/inner")).unwrap();
    std::fs::write(db.path("indexes/leftover/inner/x"), b"x").unwrap();
    let output = db.verify();
    assert!(
        output.notes().iter().any(|note| note["message"].as_str().is_some_and(|m| m.contains("a folder inside the index folder"))),
        "{}",
        output.stdout
    );
    assert!(
        !output.problems().iter().any(|problem| problem["message"].as_str().is_some_and(|m| m.contains("index folder"))),
        "{}",
        output.stdout
    );
    // The boot's side: tests/tests/hostile_env.rs, what_is_at_a_name_is_judged_alike_by_the_boot_and_verify.
}

#[test]
fn config_change_is_named_with_old_and_new_values() {
    let mut builder = Builder::standard();
    builder.set_config_text("{\"data_dir\": \"./data\", \"max_memory_bytes\": 1000}");
    let db = builder.finish(true);
    std::fs::write(&db.config, "{\"data_dir\": \"./data\", \"max_memory_bytes\": 2000}").unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    let problem = assert_problem(&problems, "config field max_memory_bytes differs from its frozen value: frozen 1000, config file 2000");
    assert_at(problem, "metadata/config.json", None, None);
}

#[test]
fn state_file_must_agree_after_a_clean_shutdown() {
    let db = clean_db();
    let path = db.path("metadata/state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state["last_seq"] = json!(db.last_seq + 1);
    state["wal_bytes"] = json!(5);
    state["document_pages"] = json!(1000);
    std::fs::write(&path, state.to_string()).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_problem(&problems, &format!("last_seq {} does not match the WAL's last sequence number {}", db.last_seq + 1, db.last_seq));
    assert_problem(&problems, "wal_bytes 5 does not match");
    assert_problem(&problems, "document_pages 1000 does not match the size of the document space");
    assert_eq!(problems.len(), 3, "{}", show(&problems));
}

#[test]
fn stale_index_directory_is_named() {
    let db = clean_db();
    let path = db.path("indexes/directory.json");
    let mut directory: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    directory["lsn"] = json!(3);
    std::fs::write(&path, directory.to_string()).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_at(assert_problem(&problems, "the indexes are stale"), "indexes/directory.json", None, None);
}

#[test]
fn missing_manifest_and_wal_are_problems_not_failures_to_run() {
    let db = clean_db();
    std::fs::remove_file(db.path("MANIFEST")).unwrap();
    std::fs::remove_file(db.path("wal/wal.log")).unwrap();
    let output = db.verify();
    assert_eq!(output.code, 1, "{}", output.stderr);
    let problems = output.problems();
    assert_problem(&problems, "MANIFEST is missing");
    assert_problem(&problems, "the WAL cannot be read");
}

#[test]
fn cannot_run_usage_help_and_version() {
    let verify = env!("CARGO_BIN_EXE_aerodb-verify");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(verify).args(args).current_dir(dir.path()).output().unwrap();
        (output.status.code().unwrap(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    assert_eq!(run(&[]).0, 2, "no ./aerodb.json");
    std::fs::write(dir.path().join("aerodb.json"), "{\"data_dir\": \"./nowhere\"}").unwrap();
    assert_eq!(run(&[]).0, 2, "no data directory");
    std::fs::write(dir.path().join("bad.json"), "{\"data_dir\": 5}").unwrap();
    assert_eq!(run(&["--config", "bad.json"]).0, 2, "invalid config");
    assert_eq!(run(&["--bogus"]).0, 64);
    assert_eq!(run(&["--config"]).0, 64);
    let (code, stdout) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--config"), "{stdout}");
    let (code, stdout) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("aerodb-verify"), "{stdout}");
}

#[test]
fn verify_creates_and_changes_nothing() {
    let db = clean_db();
    let before = snapshot(&db.root);
    assert_eq!(db.verify().code, 0);
    assert_eq!(db.inspect(&["summary"]).code, 0);
    assert_eq!(snapshot(&db.root), before);
}

fn snapshot(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
                out.push((path.display().to_string(), Vec::new()));
            } else {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn torn_tail_after_a_clean_shutdown_is_corruption() {
    let db = clean_db();
    let offset = db.record_offset(db.last_seq) as u64;
    db.truncate("wal/wal.log", offset + 20);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    let problem = assert_problem(&problems, "torn tail of 20 bytes at offset");
    assert!(problem["message"].as_str().unwrap().contains("after a clean shutdown: corruption"), "{problem}");
    assert_at(problem, "wal/wal.log", None, Some(offset));
}

#[test]
fn free_page_with_used_header_fields_is_named() {
    let mut builder = Builder::standard();
    let mut page = page::new_page(page::PageKind::Free, PageNo(9));
    page[10..12].copy_from_slice(&3u16.to_le_bytes());
    builder.log_raw_page(page);
    let db = builder.finish(true);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_at(assert_problem(&problems, "free page 9 has header fields of a used page"), SEGMENT, Some(9), Some(9 * 4096 + 6));
}

#[test]
fn index_node_lsn_past_the_wal_is_named() {
    let db = clean_db();
    let leaf = db.tree("item/v1/_id").leaves[0];
    let mut page = db.read_page("indexes", leaf);
    page::seal(&mut page, aerodb_format::SeqNo(db.last_seq + 1));
    db.write_page_resealed("indexes", leaf, &mut page);
    let output = db.verify();
    assert_eq!(output.code, 1);
    let problems = output.problems();
    assert_eq!(problems.len(), 1, "{}", show(&problems));
    assert_at(assert_problem(&problems, "past the WAL's last sequence number"), INDEX_SEGMENT, Some(leaf), Some(leaf * 4096 + 24));
}

/// Runs a tool with a deadline: a FIFO where a file belongs must be refused,
/// never waited on.
fn run_with_deadline(db: &common::TestDb, binary: &str, args: &[&str]) -> (i32, String) {
    let mut child = std::process::Command::new(binary)
        .arg("--config")
        .arg(&db.config)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            return (status.code().unwrap_or(-1), text);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{binary} {args:?} did not finish: it waits on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn fifos_and_folders_where_files_belong_are_refused_not_waited_on() {
    let verify = env!("CARGO_BIN_EXE_aerodb-verify");
    let inspect = env!("CARGO_BIN_EXE_aerodb-inspect");
    let make_fifo = |path: &std::path::Path| {
        std::fs::remove_file(path).unwrap();
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    };
    for relative in ["wal/wal.log", "data/segment-000000.seg", "indexes/segment-000000.seg", "LOCK"] {
        let db = clean_db();
        make_fifo(&db.path(relative));
        let (code, text) = run_with_deadline(&db, verify, &["--json"]);
        assert_eq!(code, 1, "{relative}: {text}");
        assert!(text.contains("not a regular file"), "{relative}: {text}");
        for args in [vec!["wal"], vec!["pages"], vec!["pages", "--index"], vec!["summary"], vec!["page", "0"]] {
            let (code, text) = run_with_deadline(&db, inspect, &args);
            assert!(code == 0 || code == 2, "{relative} {args:?}: {code} {text}");
        }
    }
    // A folder named LOCK or clean_shutdown stops the boot: a problem.
    for relative in ["LOCK", "clean_shutdown"] {
        let db = clean_db();
        std::fs::remove_file(db.path(relative)).unwrap();
        std::fs::create_dir(db.path(relative)).unwrap();
        let output = db.verify();
        assert_eq!(output.code, 1, "{relative}: {}", output.stdout);
        assert_problem(&output.problems(), "AERO_STORAGE_IO_ERROR");
    }
    // An unusable spill folder is refused at once, before any check.
    let db = clean_db();
    let output = db.run(verify, &["--spill-dir", "/nonexistent/spill"]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("cannot make temporary files"), "{}", output.stderr);
}
