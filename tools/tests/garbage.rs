//! Neither tool panics on any file content, and verify notices every
//! single-byte change to any file but the derived index files.

mod common;

use std::path::Path;

use aerodb_format::btree;
use aerodb_format::page::{self, PageHeader, HEADER_BYTES};
use aerodb_format::wal::{encode_record, RecordHeader, WalHeader, WalOp};
use aerodb_format::{PageNo, SeqNo, PAGE_SIZE_BYTES};
use serde_json::json;

use aerodb_tools::database::Database;
use aerodb_tools::inspect;
use aerodb_tools::output::Output;
use aerodb_tools::verify;
use common::Builder;

/// xorshift64: deterministic bytes without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let value = self.next().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }

    fn bytes(&mut self, length: usize) -> Vec<u8> {
        let mut out = vec![0u8; length];
        self.fill(&mut out);
        out
    }
}

/// Verify in-process with a small memory bound, so the external sorts spill.
fn verify_run(database: &Database) -> verify::report::Report {
    let limits = verify::Limits::new(1024 * 1024, std::env::temp_dir());
    verify::run(database, &limits).expect("verify runs")
}

/// Runs every subcommand of both tools in-process, as the binaries do.
fn run_everything(config: &Path) -> verify::report::Report {
    let database = Database::open(config).expect("database opens");
    let report = verify_run(&database);
    let _ = report.to_json();
    let _ = report.render_human();
    for as_json in [false, true] {
        let mut out = Output::memory();
        let _ = inspect::wal::run(&database, &inspect::wal::WalFilter::default(), as_json, &mut out);
        let _ =
            inspect::wal::run(&database, &inspect::wal::WalFilter { stats: true, page: Some(0), ..Default::default() }, as_json, &mut out);
        let _ = inspect::pages::run(&database, false, as_json, &mut out);
        let _ = inspect::pages::run(&database, true, as_json, &mut out);
    }
    let _ = inspect::summary::run(&database);
    for number in 0..8 {
        let _ = inspect::page::run(&database, number, false, true);
        let _ = inspect::page::run(&database, number, true, true);
    }
    report
}

fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn pure_garbage_never_panics() {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::write(dir.path().join("aerodb.json"), "{\"data_dir\": \"data\"}").unwrap();
        let segment_bytes = [4 * 1024 * 1024, 4096 * 3 + 17, 0, 100][round];
        write(&root, "MANIFEST", &random.bytes([48, 47, 0, 4096][round]));
        write(&root, "wal/wal.log", &random.bytes([10_000, 40, 3, 0][round]));
        write(&root, "data/segment-000000.seg", &random.bytes(segment_bytes));
        write(&root, "data/segment-000003.seg", &random.bytes(4096 * 2));
        write(&root, "data/stray.txt", b"hello");
        write(&root, "indexes/segment-000000.seg", &random.bytes(segment_bytes));
        write(&root, "indexes/directory.json", &random.bytes(64));
        write(&root, "metadata/config.json", &random.bytes(30));
        write(&root, "metadata/schemas/user_v1.json", &random.bytes(200));
        write(&root, "metadata/schema_hashes.json", b"{\"user_v1.json\": 5, \"x\": \"00\"}");
        write(&root, "metadata/state.json", b"[1,2");
        write(&root, "clean_shutdown", b"");
        let report = run_everything(&dir.path().join("aerodb.json"));
        assert!(!report.is_clean());
    }
}

/// Pages with right checksums and page numbers but random content, B-tree
/// nodes whose cells point anywhere, a directory with absurd roots and
/// heights, and WAL records holding such pages.
#[test]
fn sealed_garbage_never_panics() {
    let mut random = Random(0xDEAD_BEEF_1234_5678);
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::write(dir.path().join("aerodb.json"), "{\"data_dir\": \"data\"}").unwrap();
        let mut data = vec![0u8; 4 * 1024 * 1024];
        let mut index = vec![0u8; 4 * 1024 * 1024];
        let mut wal = WalHeader::new([1; 16]).encode().to_vec();
        for page_no in 0..48u64 {
            for (space, kinds) in [(&mut data, [1u8, 2, 5, 1]), (&mut index, [3u8, 4, 3, 4])] {
                let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
                random.fill(&mut page[..]);
                let kind = kinds[random.below(4) as usize];
                page[4] = kind;
                page[5] = 0;
                let lower = HEADER_BYTES as u64 + random.below(200);
                let upper = if random.below(3) == 0 { 4096 } else { lower + random.below(4096 - lower + 1) };
                page[6..8].copy_from_slice(&(lower as u16).to_le_bytes());
                page[8..10].copy_from_slice(&(upper as u16).to_le_bytes());
                page[10..12].copy_from_slice(&((lower as u16 - HEADER_BYTES as u16) / [4, 2][random.below(2) as usize]).to_le_bytes());
                page[12..16].copy_from_slice(&(if kind == 4 { random.below(3) as u32 + 1 } else { 0 }).to_le_bytes());
                page[16..24].copy_from_slice(&page_no.to_le_bytes());
                for link in [32, 40] {
                    let target = if random.below(2) == 0 { u64::MAX } else { random.below(64) };
                    page[link..link + 8].copy_from_slice(&target.to_le_bytes());
                }
                if random.below(2) == 0 {
                    page[lower as usize..upper as usize].fill(0);
                }
                page::seal(&mut page, SeqNo(random.below(5)));
                let at = page_no as usize * PAGE_SIZE_BYTES;
                space[at..at + PAGE_SIZE_BYTES].copy_from_slice(&page[..]);
            }
        }
        // Well-formed B-tree nodes pointing at random children and documents.
        for page_no in 48..64u64 {
            let mut page = Box::new([0u8; PAGE_SIZE_BYTES]);
            let level = random.below(3) as u32;
            btree::init_node(&mut page, PageNo(page_no), level);
            for _ in 0..random.below(6) {
                let key_length = random.below(12) as usize;
                let key = random.bytes(key_length);
                let value = if level == 0 {
                    btree::Locator { page: PageNo(random.below(70)), slot: random.below(4) as u16 }.to_bytes().to_vec()
                } else {
                    btree::internal_value_bytes(PageNo(random.below(70)), random.below(9)).to_vec()
                };
                if let Err(position) = btree::search(&page, &key) {
                    btree::insert_entry(&mut page, position, &key, &value);
                }
            }
            page::seal(&mut page, SeqNo(1));
            let at = page_no as usize * PAGE_SIZE_BYTES;
            index[at..at + PAGE_SIZE_BYTES].copy_from_slice(&page[..]);
        }
        for seq in 1..6u64 {
            let page_no = random.below(60);
            let at = page_no as usize * PAGE_SIZE_BYTES;
            let mut page: Box<[u8; PAGE_SIZE_BYTES]> = Box::new(data[at..at + PAGE_SIZE_BYTES].try_into().unwrap());
            page::seal(&mut page, SeqNo(seq));
            let header = PageHeader::read(&page);
            if header.lower() > header.upper() || header.upper() > PAGE_SIZE_BYTES {
                continue;
            }
            let id = json!(seq as i64);
            let record = encode_record(
                &RecordHeader { seq: SeqNo(seq + round as u64 % 2), op: WalOp::Update, schema_id: "user", schema_version: "v1", id: &id },
                &[&page],
            );
            wal.extend_from_slice(&record);
        }
        let tail_length = random.below(50) as usize;
        wal.extend_from_slice(&random.bytes(tail_length));
        let mut trees = Vec::new();
        for tree in 0..4 {
            let field = ["_id", "name", "age", "zz"][tree];
            trees.push(json!({"schema_id": "user", "schema_version": "v1", "field": field,
                              "root": 40 + random.below(30), "height": random.below(5), "entries": random.below(10)}));
        }
        write(&root, "indexes/directory.json", json!({"lsn": 3, "trees": trees}).to_string().as_bytes());
        write(&root, "MANIFEST", &aerodb_format::manifest::Manifest::new([1; 16]).encode());
        write(&root, "wal/wal.log", &wal);
        write(&root, "data/segment-000000.seg", &data);
        write(&root, "indexes/segment-000000.seg", &index);
        write(&root, "metadata/config.json", b"{\"data_dir\": \"data\"}");
        write(&root, "metadata/schemas/user_v1.json", common::USER_V1.as_bytes());
        write(&root, "clean_shutdown", b"");
        let report = run_everything(&dir.path().join("aerodb.json"));
        assert!(!report.is_clean());
    }
}

/// Every single-byte change to any file but the derived index files makes
/// verify report a problem; changes to the index files never make it panic.
#[test]
fn every_single_byte_change_is_detected() {
    let db = Builder::standard().finish(true);
    let config = db.config.clone();
    let baseline = run_everything(&config);
    assert!(baseline.is_clean(), "{}", baseline.render_human());
    let mut random = Random(42);
    let mut files: Vec<(String, Vec<u64>)> = Vec::new();
    // (file, step between changed bytes): every byte of the small files,
    // a sample of the larger ones (the whole run stays within seconds).
    for (relative, step) in [
        ("MANIFEST", 1),
        ("metadata/config.json", 1),
        ("metadata/state.json", 1),
        ("metadata/schema_hashes.json", 3),
        ("metadata/schemas/user_v1.json", 4),
        ("metadata/schemas/item_v1.json", 4),
        ("wal/wal.log", 151),
    ] {
        let length = std::fs::metadata(db.path(relative)).unwrap().len();
        files.push((relative.into(), (0..length).step_by(step).chain([length - 1]).collect()));
    }
    let data_positions: Vec<u64> = (0..6 * 4096).step_by(127).chain((0..20).map(|_| random.below(4 * 1024 * 1024))).collect();
    files.push(("data/segment-000000.seg".into(), data_positions));
    let mut undetected = Vec::new();
    for (relative, positions) in &files {
        let path = db.path(relative);
        let original = std::fs::read(&path).unwrap();
        for &position in positions {
            let mut changed = original.clone();
            changed[position as usize] ^= 1 << random.below(8);
            std::fs::write(&path, &changed).unwrap();
            let report = verify_run(&Database::open(&config).unwrap());
            if report.is_clean() {
                undetected.push(format!("{relative} byte {position}: {}", report.render_human()));
            }
        }
        std::fs::write(&path, &original).unwrap();
    }
    assert!(undetected.is_empty(), "{} undetected changes:\n{}", undetected.len(), undetected.join("\n"));
    // The derived index files: any change is survived (most are reported).
    for relative in ["indexes/segment-000000.seg", "indexes/directory.json"] {
        let path = db.path(relative);
        let original = std::fs::read(&path).unwrap();
        let (length, step) = if relative.ends_with(".seg") { (32 * 4096, 1999) } else { (original.len() as u64, 17) };
        for position in (0..length).step_by(step) {
            let mut changed = original.clone();
            changed[position as usize] ^= 0xFF;
            std::fs::write(&path, &changed).unwrap();
            let database = Database::open(&config).unwrap();
            let _ = verify_run(&database).render_human();
            for number in 0..8 {
                let _ = inspect::page::run(&database, number, true, true);
            }
        }
        std::fs::write(&path, &original).unwrap();
    }
}
