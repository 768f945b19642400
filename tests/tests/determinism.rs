//! Determinism (SPEC section 12, FORMAT.md section 13): the same request
//! sequence on two fresh directories gives identical stdout bytes, and
//! files that are byte-identical apart from the database id and the CRCs
//! that cover it (MANIFEST `[24, 40)` and `[44, 48)`; WAL header `[16, 32)`
//! and `[36, 40)`). Explain output is identical across databases, across
//! restarts, and between `"op":"explain"` and `aerodb explain`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aerodb_tests::reliability::*;
use aerodb_tests::Sandbox;
use serde_json::json;

/// Byte ranges that may differ between two databases, per file.
fn allowed_differences(file: &Path) -> &'static [(usize, usize)] {
    if file == Path::new("MANIFEST") {
        &[(24, 40), (44, 48)]
    } else if file == Path::new("wal/wal.log") {
        &[(16, 32), (36, 40)]
    } else {
        &[]
    }
}

fn query(collection: &str, filter: serde_json::Value, limit: u64, sort: Option<serde_json::Value>) -> String {
    let mut request = json!({"op": "query", "schema_id": collection, "schema_version": "v1", "filter": filter, "limit": limit});
    if let Some(sort) = sort {
        request["sort"] = sort;
    }
    request.to_string()
}

/// Queries (and their explain twins) over the final data.
fn queries() -> Vec<String> {
    vec![
        query("user", json!({"_id": "u03"}), 1, None),
        query("user", json!({"name": "name2"}), 10, None),
        query("user", json!({"age": {"$gte": 20, "$lt": 40}}), 50, Some(json!("age"))),
        query("user", json!({"age": {"$gt": 10}, "name": "name1"}), 50, None),
        query("user", json!({}), 5, Some(json!({"field": "name", "order": "desc"}))),
        query("user", json!({"age": {"$lte": 60}}), 7, Some(json!([{"field": "name", "order": "asc"}]))),
        query("note", json!({}), 100, Some(json!("_id"))),
        query("note", json!({"rev": {"$gte": 2}}), 100, Some(json!("title"))),
        query("note", json!({"title": "big"}), 3, None),
    ]
}

fn explain_twin(query: &str) -> String {
    query.replacen("\"op\":\"query\"", "\"op\":\"explain\"", 1)
}

/// The request sequence, in parts (each part is one process run).
fn sequence() -> Vec<String> {
    let mut part1 = Vec::new();
    for index in 0..24 {
        part1.push(insert_request("user", &user_doc(&format!("u{index:02}"), &format!("name{}", index % 5), 15 + (index * 11) % 60)));
    }
    part1.push(insert_request("note", &note_doc("n1", "small", 1, 200)));
    part1.push(insert_request("note", &note_doc("n2", "big", 1, 6000)));
    part1.push(insert_request("note", &note_doc("n3", "bigger", 2, 9000)));
    part1.extend(queries());
    part1.extend(queries().iter().map(|query| explain_twin(query)));

    let mut part2 = vec![
        update_request("user", &user_doc("u03", "renamed", 33)),
        update_request("note", &note_doc("n1", "small", 3, 5000)),
        update_request("note", &note_doc("n2", "big", 4, 10)),
        delete_request("note", "n3"),
        delete_request("user", "u07"),
        delete_request("user", "nobody"),
        insert_request("note", &note_doc("n4", "reuse", 5, 7000)),
        insert_request("user", &user_doc("u07", "back", 70)),
        // Errors: duplicate, not found, validation, unbounded, unindexed, no limit, unknown op, malformed JSON.
        insert_request("user", &user_doc("u01", "dup", 1)),
        update_request("user", &user_doc("ghost", "x", 1)),
        json!({"op": "insert", "schema_id": "user", "schema_version": "v1", "document": {"_id": "bad", "name": "x", "age": "old"}})
            .to_string(),
        json!({"op": "query", "schema_id": "user", "schema_version": "v1", "filter": {}, "limit": 10}).to_string(),
        json!({"op": "query", "schema_id": "note", "schema_version": "v1", "filter": {"body": "x"}, "limit": 10}).to_string(),
        json!({"op": "query", "schema_id": "user", "schema_version": "v1", "filter": {"name": "x"}}).to_string(),
        json!({"op": "frobnicate"}).to_string(),
        "{\"op\": \"insert\", oops".to_string(),
        json!({"op": "query", "schema_id": "nope", "schema_version": "v1", "filter": {}, "limit": 1}).to_string(),
    ];
    part2.extend(queries());

    let mut part3 = Vec::new();
    for index in 24..40 {
        part3.push(insert_request("user", &user_doc(&format!("u{index:02}"), &format!("name{}", index % 7), (index * 13) % 80)));
    }
    for index in (0..40).step_by(3) {
        part3.push(delete_request("user", &format!("u{index:02}")));
    }
    part3.push(update_request("note", &note_doc("n4", "reuse", 6, 100)));
    part3.extend(queries());
    part3.extend(queries().iter().map(|query| explain_twin(query)));
    vec![part1.join("\n") + "\n", part2.join("\n") + "\n", part3.join("\n") + "\n"]
}

/// Runs the sequence, one `aerodb query` per part; returns all stdout bytes.
fn run_sequence(sandbox: &Sandbox) -> Vec<u8> {
    let mut stdout = Vec::new();
    for (index, part) in sequence().iter().enumerate() {
        let output = sandbox.aerodb(&["query"], part);
        let expected_exit = if index == 1 { 1 } else { 0 };
        assert_eq!(output.status.code(), Some(expected_exit), "part {index}: {}", describe(&output));
        stdout.extend_from_slice(&output.stdout);
    }
    stdout
}

/// Every file of a data directory (the LOCK aside), derived ones included.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, folder: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(folder).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                if relative != Path::new("LOCK") {
                    out.insert(relative, std::fs::read(&path).expect("read"));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Requires two databases' files to be identical outside the allowed ranges,
/// and (when `ids_differ`) different inside them.
fn assert_same_files(left: &Path, right: &Path, only: Option<&[&str]>, ids_differ: bool) {
    let left_files = files(left);
    let right_files = files(right);
    let keep = |name: &PathBuf| only.is_none_or(|prefixes| prefixes.iter().any(|prefix| name.starts_with(prefix)));
    let left_names: Vec<&PathBuf> = left_files.keys().filter(|name| keep(name)).collect();
    let right_names: Vec<&PathBuf> = right_files.keys().filter(|name| keep(name)).collect();
    assert_eq!(left_names, right_names, "the two databases hold different files");
    for name in left_names {
        let (a, b) = (&left_files[name], &right_files[name]);
        assert_eq!(a.len(), b.len(), "{} differs in length", name.display());
        let allowed = allowed_differences(name);
        if let Some(position) = a.iter().zip(b.iter()).position(|(x, y)| x != y) {
            let inside = |at: usize| allowed.iter().any(|(from, to)| (*from..*to).contains(&at));
            let outside: Vec<usize> = (position..a.len()).filter(|&at| a[at] != b[at] && !inside(at)).take(8).collect();
            assert!(outside.is_empty(), "{} differs at bytes {outside:?} (only {allowed:?} may differ)", name.display());
        }
        if ids_differ {
            for (from, to) in allowed {
                assert_ne!(
                    a[*from..*to],
                    b[*from..*to],
                    "{} bytes [{from}, {to}) should hold each database's own id (or its CRC)",
                    name.display()
                );
            }
        }
    }
}

#[test]
fn same_requests_give_identical_responses_and_files() {
    let (left, right) = (sandbox_with_schemas(), sandbox_with_schemas());
    let left_stdout = run_sequence(&left);
    let right_stdout = run_sequence(&right);
    assert!(
        left_stdout == right_stdout,
        "stdout differs:\n{}\n---\n{}",
        String::from_utf8_lossy(&left_stdout),
        String::from_utf8_lossy(&right_stdout)
    );
    let text = String::from_utf8(left_stdout).expect("UTF-8");
    assert!(
        text.contains("AERO_WRITE_DUPLICATE_ID") && text.contains("AERO_QUERY_UNBOUNDED") && text.contains("\"scan_type\""),
        "the sequence covers errors and explains"
    );
    let names = files(&left.data());
    for required in [
        "MANIFEST",
        "wal/wal.log",
        "data/segment-000000.seg",
        "indexes/segment-000000.seg",
        "indexes/directory.json",
        "metadata/state.json",
        "metadata/schema_hashes.json",
        "metadata/config.json",
    ] {
        assert!(names.contains_key(Path::new(required)), "{required} missing");
    }
    assert_same_files(&left.data(), &right.data(), None, true);
}

#[test]
fn op_explain_equals_aerodb_explain_across_databases_and_restarts() {
    let (left, right) = (sandbox_with_schemas(), sandbox_with_schemas());
    run_sequence(&left);
    run_sequence(&right);
    let plans = |sandbox: &Sandbox, mode: &str, requests: &[String]| {
        let output = sandbox.aerodb(&[mode], &(requests.join("\n") + "\n"));
        assert_eq!(output.status.code(), Some(0), "{mode}: {}", describe(&output));
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    let explained = plans(&left, "explain", &queries());
    assert_eq!(explained.lines().count(), queries().len());
    for line in explained.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(value["data"]["bounded"], true, "{line}");
    }
    // Across a restart (each run is a boot), across databases, and as "op":"explain".
    assert_eq!(plans(&left, "explain", &queries()), explained, "explain changed across a restart");
    assert_eq!(plans(&right, "explain", &queries()), explained, "explain differs between two databases");
    let twins: Vec<String> = queries().iter().map(|query| explain_twin(query)).collect();
    assert_eq!(plans(&left, "query", &twins), explained, "\"op\":\"explain\" differs from aerodb explain");
    // A SIGKILLed run between: the recovered database explains the same way.
    let server = right.start(&[]);
    server.kill();
    assert_eq!(plans(&right, "explain", &queries()), explained, "explain changed after crash recovery");
}

#[test]
fn restarts_and_crashes_do_not_change_the_bytes_written() {
    // Left: the sequence as it is. Right: each part split in two runs, the
    // first of which is SIGKILLed after its last answer. The WAL and the
    // document segment must come out the same (the free-space maps rebuilt
    // at boot choose the same pages as the ones kept in memory).
    let (left, right) = (sandbox_with_schemas(), sandbox_with_schemas());
    let left_stdout = run_sequence(&left);
    let mut right_stdout = Vec::new();
    for part in sequence() {
        let lines: Vec<&str> = part.lines().collect();
        let middle = lines.len() / 2;
        let mut server = right.start(&[]);
        for line in &lines[..middle] {
            let response = server.request(line).expect("response");
            right_stdout.extend_from_slice((serde_json::to_string(&response).expect("JSON") + "\n").as_bytes());
        }
        server.kill();
        let output = right.aerodb(&["query"], &(lines[middle..].join("\n") + "\n"));
        assert!(matches!(output.status.code(), Some(0 | 1)), "{}", describe(&output));
        right_stdout.extend_from_slice(&output.stdout);
    }
    assert!(
        left_stdout == right_stdout,
        "responses differ after restarts:\n{}\n---\n{}",
        String::from_utf8_lossy(&left_stdout),
        String::from_utf8_lossy(&right_stdout)
    );
    assert_same_files(&left.data(), &right.data(), Some(&["wal", "data", "MANIFEST"]), true);
}

#[test]
fn plans_depend_on_the_stored_data_not_on_the_process_history() {
    // The planner bounds memory by the largest stored document: once the
    // largest is deleted, the running process must plan exactly as a fresh
    // boot of the same data does.
    let sandbox = sandbox_with_schemas();
    let sorted_in_memory = query("note", json!({"rev": {"$gte": 0}}), 100, Some(json!("title")));
    let stdin = [
        insert_request("note", &note_doc("n1", "huge", 1, 9000)),
        insert_request("note", &note_doc("n2", "tiny", 2, 10)),
        explain_twin(&sorted_in_memory),
        delete_request("note", "n1"),
        explain_twin(&sorted_in_memory),
    ]
    .join("\n");
    let output = sandbox.aerodb(&["query"], &stdin);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let responses = aerodb_tests::responses(&output);
    let (with_huge, without_huge) = (&responses[2], &responses[4]);
    assert_eq!(with_huge["data"]["sort_mode"], "in_memory", "{with_huge}");
    assert_ne!(
        with_huge["data"]["memory_bytes_max"], without_huge["data"]["memory_bytes_max"],
        "the bound follows the largest stored document"
    );
    let fresh = aerodb_tests::responses(&sandbox.aerodb(&["explain"], &(sorted_in_memory + "\n")));
    assert_eq!(text(without_huge), text(&fresh[0]), "the running process and a fresh boot plan differently for the same data");
}

/// Group commit changes no byte (SPEC section 8): the sequence piped into
/// `aerodb query` (the writes waiting in the stream are group-committed)
/// and sent one request at a time to `aerodb start` (the client waits for
/// each answer, so every group holds one write) give the same answers and
/// byte-identical WAL records and document segments.
#[test]
fn pipelined_and_lockstep_streams_write_the_same_bytes() {
    let (piped, lockstep) = (sandbox_with_schemas(), sandbox_with_schemas());
    let piped_stdout = run_sequence(&piped);
    let mut lockstep_stdout = Vec::new();
    for part in sequence() {
        let mut server = lockstep.start(&[]);
        for line in part.lines() {
            let response = server.request(line).unwrap_or_else(|| panic!("no answer to {line}"));
            lockstep_stdout.extend_from_slice(serde_json::to_string(&response).expect("JSON").as_bytes());
            lockstep_stdout.push(b'\n');
        }
        let output = server.finish();
        assert!(output.status.code().is_some_and(|code| code <= 1), "{}", describe(&output));
    }
    assert!(piped_stdout == lockstep_stdout, "answers differ between pipelined and lockstep streams");
    assert_same_files(&piped.data(), &lockstep.data(), Some(&["wal", "data"]), true);
}
