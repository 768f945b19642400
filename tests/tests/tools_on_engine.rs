//! `aerodb-verify` and `aerodb-inspect` on databases the engine wrote:
//! clean after a clean shutdown, notes only after SIGKILL, and a precise
//! problem for a damaged page; every inspect subcommand runs and its
//! `--json` parses.

use std::process::Command;

use aerodb_tests::reliability::{insert_request, note_doc, sandbox_with_schemas, update_request, user_doc};
use aerodb_tests::{binary, responses, Sandbox};
use serde_json::Value;

fn tool(sandbox: &Sandbox, name: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary(name)).args(args).arg("--config").arg(sandbox.config()).current_dir(sandbox.path()).output().expect("run tool")
}

fn workload() -> String {
    let mut requests = Vec::new();
    for index in 0..60 {
        requests.push(insert_request("user", &user_doc(&format!("u{index}"), &format!("name{}", index % 5), index % 30)));
    }
    requests.push(insert_request("note", &note_doc("big", "overflow", 1, 9000)));
    requests.push(insert_request("note", &note_doc("small", "inline", 1, 10)));
    requests.push(update_request("note", &note_doc("small", "inline", 2, 7000)));
    requests.push(r#"{"op":"delete","schema_id":"user","schema_version":"v1","_id":"u7"}"#.to_string());
    requests.join("\n")
}

#[test]
fn verify_is_clean_after_a_clean_shutdown_and_names_a_damaged_page() {
    let sandbox = sandbox_with_schemas();
    let output = sandbox.aerodb(&["query"], &workload());
    assert!(responses(&output).iter().all(|response| response["status"] == "ok"), "{}", String::from_utf8_lossy(&output.stdout));
    let clean = tool(&sandbox, "aerodb-verify", &["--json"]);
    let report: Value = serde_json::from_slice(&clean.stdout).expect("verify --json");
    assert_eq!(clean.status.code(), Some(0), "{report}");
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0));

    for args in [
        vec!["wal", "--json"],
        vec!["pages", "--json"],
        vec!["summary", "--json"],
        vec!["page", "0", "--json"],
        vec!["page", "0", "--index", "--json"],
    ] {
        let output = tool(&sandbox, "aerodb-inspect", &args);
        assert_eq!(output.status.code(), Some(0), "inspect {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).unwrap_or_else(|error| panic!("inspect {args:?} --json: {error}"));
    }
    let human = tool(&sandbox, "aerodb-inspect", &["summary"]);
    assert_eq!(human.status.code(), Some(0));
    assert!(!human.stdout.is_empty());

    // Flip one byte inside the record area of document page 0.
    let segment = sandbox.data().join("data/segment-000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[4000] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let damaged = tool(&sandbox, "aerodb-verify", &["--json"]);
    assert_eq!(damaged.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&damaged.stdout).expect("verify --json");
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .any(|problem| problem["page"] == 0 && problem["file"].as_str().is_some_and(|file| file.ends_with("segment-000000.seg"))),
        "{report}"
    );
    // The engine refuses the same damage.
    let refused = sandbox.aerodb(&["query"], "");
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn verify_after_sigkill_reports_notes_not_problems() {
    let sandbox = sandbox_with_schemas();
    let mut server = sandbox.start(&[]);
    for index in 0..20 {
        let response = server.request(&insert_request("user", &user_doc(&format!("k{index}"), "x", index))).expect("response");
        assert_eq!(response["status"], "ok");
    }
    server.kill();
    let output = tool(&sandbox, "aerodb-verify", &["--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("verify --json");
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report["notes"].as_array().is_some_and(|notes| !notes.is_empty()), "{report}");
}
