//! Helpers for the reliability tests (crash points, SIGKILL torture, WAL
//! damage, single-byte corruption, determinism): a second schema with a
//! large unindexed field, a model of the acknowledged documents, a
//! "read everything through every index" request set with its checks,
//! WAL record boundaries, and snapshots of a data directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write as _};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};

use serde_json::{json, Value};

use crate::{Sandbox, Server};

/// A second collection: an indexed title and revision, and an optional
/// unindexed body long enough to need overflow pages (a string of ~6000
/// characters encodes past the 2000-byte inline limit).
pub const NOTE_SCHEMA: &str = r#"{
"schema_id": "note",
"schema_version": "v1",
"fields": {
"_id": { "type": "string" },
"title": { "type": "string" },
"rev": { "type": "int" },
"body": { "type": "string", "required": false }
},
"indexes": ["_id", "title", "rev"]
}
"#;

/// Upper bound on the documents of one collection a test may hold: the
/// read-all queries use this limit (the largest the spec allows).
pub const READ_LIMIT: usize = 10_000;

/// `(collection, _id)`.
pub type DocKey = (String, String);

/// An initialised sandbox with the install guide's `user` schema and [`NOTE_SCHEMA`].
pub fn sandbox_with_schemas() -> Sandbox {
    let sandbox = Sandbox::with_user_schema();
    std::fs::write(sandbox.data().join("metadata/schemas/note_v1.json"), NOTE_SCHEMA).expect("write note schema");
    sandbox
}

/// A user document, fields in the order `_id`, `name`, `age`.
pub fn user_doc(id: &str, name: &str, age: i64) -> Value {
    json!({"_id": id, "name": name, "age": age})
}

/// A note document; `body_chars` of 0 leaves the optional body out.
pub fn note_doc(id: &str, title: &str, rev: i64, body_chars: usize) -> Value {
    let mut document = json!({"_id": id, "title": title, "rev": rev});
    if body_chars > 0 {
        // Deterministic, varied text (not one repeated byte).
        let body: String = (0..body_chars).map(|index| (b'a' + ((index * 7 + rev as usize) % 26) as u8) as char).collect();
        document["body"] = Value::String(body);
    }
    document
}

fn write_request(op: &str, collection: &str, document: &Value) -> String {
    json!({"op": op, "schema_id": collection, "schema_version": "v1", "document": document}).to_string()
}

pub fn insert_request(collection: &str, document: &Value) -> String {
    write_request("insert", collection, document)
}

pub fn update_request(collection: &str, document: &Value) -> String {
    write_request("update", collection, document)
}

pub fn delete_request(collection: &str, id: &str) -> String {
    json!({"op": "delete", "schema_id": collection, "schema_version": "v1", "_id": id}).to_string()
}

/// A write and what it does to the model when acknowledged.
#[derive(Clone, Debug)]
pub enum Op {
    Insert { collection: String, document: Value },
    Update { collection: String, document: Value },
    Delete { collection: String, id: String },
}

impl Op {
    pub fn insert(collection: &str, document: Value) -> Op {
        Op::Insert { collection: collection.into(), document }
    }

    pub fn update(collection: &str, document: Value) -> Op {
        Op::Update { collection: collection.into(), document }
    }

    pub fn delete(collection: &str, id: &str) -> Op {
        Op::Delete { collection: collection.into(), id: id.into() }
    }

    pub fn request(&self) -> String {
        match self {
            Op::Insert { collection, document } => insert_request(collection, document),
            Op::Update { collection, document } => update_request(collection, document),
            Op::Delete { collection, id } => delete_request(collection, id),
        }
    }

    pub fn key(&self) -> DocKey {
        match self {
            Op::Insert { collection, document } | Op::Update { collection, document } => {
                (collection.clone(), document["_id"].as_str().expect("string _id").to_string())
            }
            Op::Delete { collection, id } => (collection.clone(), id.clone()),
        }
    }
}

/// The documents that must be stored: every acknowledged write applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    pub docs: BTreeMap<DocKey, Value>,
}

impl Model {
    /// The response code the engine must give `write` against this model:
    /// `None` for ok, else the error code.
    pub fn expected_code(&self, write: &Op) -> Option<&'static str> {
        let exists = self.docs.contains_key(&write.key());
        match write {
            Op::Insert { .. } if exists => Some("AERO_WRITE_DUPLICATE_ID"),
            Op::Update { .. } if !exists => Some("AERO_WRITE_NOT_FOUND"),
            _ => None,
        }
    }

    /// The state of `write`'s document after it is applied.
    pub fn after(&self, write: &Op) -> Option<Value> {
        match (write, self.expected_code(write)) {
            (_, Some(_)) => self.docs.get(&write.key()).cloned(),
            (Op::Insert { document, .. } | Op::Update { document, .. }, None) => Some(document.clone()),
            (Op::Delete { .. }, None) => None,
        }
    }

    /// Applies an acknowledged write.
    pub fn apply(&mut self, write: &Op) {
        match self.after(write) {
            Some(document) => self.docs.insert(write.key(), document),
            None => self.docs.remove(&write.key()),
        };
    }

    /// Checks a response against the model's expectation, then applies the write if it was ok.
    pub fn acknowledge(&mut self, write: &Op, response: &Value) -> Result<bool, String> {
        let expected = self.expected_code(write);
        let ok = response["status"] == "ok";
        match expected {
            None if ok => {
                if response["data"] != json!([]) {
                    return Err(format!("write {} answered ok with data {}", write.request(), response["data"]));
                }
                self.apply(write);
                Ok(true)
            }
            Some(code) if !ok && response["code"] == code => Ok(false),
            _ => Err(format!("write {} expected {} but got {response}", write.request(), expected.unwrap_or("ok"))),
        }
    }

    pub fn collection(&self, collection: &str) -> Vec<&Value> {
        self.docs.iter().filter(|((name, _), _)| name == collection).map(|(_, document)| document).collect()
    }

    /// Compares what a database serves with the model. `uncertain` names
    /// documents whose write was in flight at a crash, with the states each
    /// may be in; the model takes the state found.
    pub fn reconcile(&mut self, served: &BTreeMap<DocKey, Value>, uncertain: &[(DocKey, Vec<Option<Value>>)]) -> Result<(), String> {
        let uncertain_keys: BTreeSet<&DocKey> = uncertain.iter().map(|(key, _)| key).collect();
        for (key, document) in &self.docs {
            if uncertain_keys.contains(key) {
                continue;
            }
            match served.get(key) {
                None => return Err(format!("acknowledged document {key:?} is missing (expected {})", text(document))),
                Some(found) if text(found) != text(document) => {
                    return Err(format!("document {key:?} is {} but the acknowledged content is {}", text(found), text(document)))
                }
                Some(_) => {}
            }
        }
        for (key, found) in served {
            if !uncertain_keys.contains(key) && !self.docs.contains_key(key) {
                return Err(format!("document {key:?} is served ({}) but no acknowledged write left it there", text(found)));
            }
        }
        for (key, states) in uncertain {
            let found = served.get(key).cloned();
            let found_text = found.as_ref().map(text);
            if !states.iter().any(|state| state.as_ref().map(text) == found_text) {
                return Err(format!(
                    "in-flight document {key:?} is {found_text:?}, expected one of {:?}",
                    states.iter().map(|state| state.as_ref().map(text)).collect::<Vec<_>>()
                ));
            }
            match found {
                Some(document) => self.docs.insert(key.clone(), document),
                None => self.docs.remove(key),
            };
        }
        Ok(())
    }

    /// After a crash with writes sent but not answered: `prefixes[p]` is the
    /// model after the first `p` unanswered writes (`prefixes[0]` is `self`).
    /// The served documents must equal one of them exactly — the writes
    /// present are a prefix of the unanswered ones, nothing half-present —
    /// and the model becomes that one. Returns `p`.
    pub fn reconcile_prefix(&mut self, served: &BTreeMap<DocKey, Value>, prefixes: &[Model]) -> Result<usize, String> {
        if prefixes.is_empty() {
            self.check(served)?;
            return Ok(0);
        }
        let mut errors = Vec::new();
        for (length, candidate) in prefixes.iter().enumerate() {
            match candidate.check(served) {
                Ok(()) => {
                    *self = candidate.clone();
                    return Ok(length);
                }
                Err(error) => errors.push(format!("after {length} of the unanswered writes: {error}")),
            }
        }
        Err(format!("what is served is no prefix of the unanswered writes: {}", errors.join("; ")))
    }

    /// Requires the served documents to equal the model exactly.
    pub fn check(&self, served: &BTreeMap<DocKey, Value>) -> Result<(), String> {
        self.clone().reconcile(served, &[])
    }
}

/// Compact JSON text: field order matters (documents come back as written).
pub fn text(value: &Value) -> String {
    serde_json::to_string(value).expect("JSON text")
}

/// Read-all requests: each collection through each of its indexes. User:
/// `_id` order, `name` order, an `age` range; note: `_id` order, `title`
/// order, a `rev` range. [`parse_read_all`] checks the answers.
pub fn read_all_requests() -> String {
    let query = |collection: &str, filter: Value, sort: Option<&str>| {
        let mut request = json!({"op": "query", "schema_id": collection, "schema_version": "v1", "filter": filter, "limit": READ_LIMIT});
        if let Some(sort) = sort {
            request["sort"] = Value::String(sort.into());
        }
        request.to_string() + "\n"
    };
    [
        query("user", json!({}), Some("_id")),
        query("user", json!({}), Some("name")),
        query("user", json!({"age": {"$gte": i64::MIN / 2}}), None),
        query("note", json!({}), Some("_id")),
        query("note", json!({}), Some("title")),
        query("note", json!({"rev": {"$gte": i64::MIN / 2}}), None),
    ]
    .concat()
}

/// Number of responses [`read_all_requests`] produces.
pub const READ_ALL_RESPONSES: usize = 6;

fn ordered_by<'a>(documents: &[&'a Value], field: &str) -> Vec<&'a Value> {
    let mut sorted = documents.to_vec();
    // Index order: the field's value (strings bytewise, ints numerically), ties by _id.
    sorted.sort_by(|left, right| {
        let by_field = match (&left[field], &right[field]) {
            (Value::Number(a), Value::Number(b)) => a.as_i64().cmp(&b.as_i64()),
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => panic!("cannot order {a} and {b}"),
        };
        by_field.then_with(|| left["_id"].as_str().cmp(&right["_id"].as_str()))
    });
    sorted
}

/// Checks the answers to [`read_all_requests`]: each ok, each index giving
/// the same documents in its own order, and no answer at the limit. Returns
/// the documents served.
pub fn parse_read_all(responses: &[Value]) -> Result<BTreeMap<DocKey, Value>, String> {
    if responses.len() != READ_ALL_RESPONSES {
        return Err(format!("expected {READ_ALL_RESPONSES} responses to the read-all queries, got {}: {responses:?}", responses.len()));
    }
    let mut served = BTreeMap::new();
    for (collection, group, fields) in
        [("user", &responses[0..3], ["_id", "name", "age"]), ("note", &responses[3..6], ["_id", "title", "rev"])]
    {
        let mut lists = Vec::new();
        for response in group {
            if response["status"] != "ok" {
                return Err(format!("read-all query of {collection} failed: {response}"));
            }
            let documents: Vec<&Value> =
                response["data"].as_array().ok_or_else(|| format!("data is not an array: {response}"))?.iter().collect();
            if documents.len() >= READ_LIMIT {
                return Err(format!("{collection} holds {} documents, at the read limit", documents.len()));
            }
            lists.push(documents);
        }
        let by_id = &lists[0];
        for (position, field) in fields.iter().enumerate() {
            let expected: Vec<String> = ordered_by(by_id, field).into_iter().map(text).collect();
            let found: Vec<String> = lists[position].iter().map(|document| text(document)).collect();
            if expected != found {
                return Err(format!(
                    "{collection} through index '{field}' disagrees with the _id index:\n  by {field}: {found:?}\n  expected: {expected:?}"
                ));
            }
        }
        for document in by_id {
            let id = document["_id"].as_str().ok_or_else(|| format!("_id is not a string: {document}"))?.to_string();
            if served.insert((collection.to_string(), id.clone()), (*document).clone()).is_some() {
                return Err(format!("{collection} serves _id {id} twice"));
            }
        }
    }
    Ok(served)
}

/// Point queries for every document of the model (and the extra `_id`s in
/// `absent`): `_id` equality, equality on the name/title index, a
/// one-value range on the age/rev index. [`check_point_queries`] checks them.
pub fn point_query_requests(model: &Model, absent: &[DocKey]) -> String {
    let mut out = String::new();
    let query = |collection: &str, filter: Value| {
        json!({"op": "query", "schema_id": collection, "schema_version": "v1", "filter": filter, "limit": READ_LIMIT}).to_string() + "\n"
    };
    for ((collection, id), document) in &model.docs {
        let (equal_field, range_field) = if collection == "user" { ("name", "age") } else { ("title", "rev") };
        out += &query(collection, json!({"_id": id}));
        out += &query(collection, json!({equal_field: document[equal_field]}));
        out += &query(collection, json!({range_field: {"$gte": document[range_field], "$lte": document[range_field]}}));
    }
    for (collection, id) in absent {
        out += &query(collection, json!({"_id": id}));
    }
    out
}

/// Checks the answers to [`point_query_requests`] against the model.
pub fn check_point_queries(model: &Model, absent: &[DocKey], responses: &[Value]) -> Result<(), String> {
    let expected_count = model.docs.len() * 3 + absent.len();
    if responses.len() != expected_count {
        return Err(format!("expected {expected_count} point-query responses, got {}", responses.len()));
    }
    let mut answers = responses.iter();
    let mut next = |what: String| -> Result<Vec<String>, String> {
        let response = answers.next().ok_or("too few responses")?;
        if response["status"] != "ok" {
            return Err(format!("{what}: {response}"));
        }
        Ok(response["data"].as_array().ok_or_else(|| format!("{what}: data is not an array"))?.iter().map(text).collect())
    };
    for ((collection, id), document) in &model.docs {
        let (equal_field, range_field) = if collection == "user" { ("name", "age") } else { ("title", "rev") };
        let same = |field: &str| -> Vec<String> {
            let mut matching: Vec<&Value> =
                model.collection(collection).into_iter().filter(|other| other[field] == document[field]).collect();
            matching.sort_by(|a, b| a["_id"].as_str().cmp(&b["_id"].as_str()));
            matching.into_iter().map(text).collect()
        };
        let by_id = next(format!("{collection} _id = {id}"))?;
        if by_id != vec![text(document)] {
            return Err(format!("{collection} _id = {id} answered {by_id:?}, expected {}", text(document)));
        }
        for field in [equal_field, range_field] {
            let found = next(format!("{collection} {field} = {}", document[field]))?;
            if found != same(field) {
                return Err(format!("{collection} {field} = {} answered {found:?}, expected {:?}", document[field], same(field)));
            }
        }
    }
    for (collection, id) in absent {
        let found = next(format!("{collection} _id = {id}"))?;
        if !found.is_empty() {
            return Err(format!("{collection} _id = {id} should be absent, answered {found:?}"));
        }
    }
    Ok(())
}

/// Boots the database with `aerodb query`, reads everything through every
/// index, and returns what it serves; panics unless the run exits 0.
pub fn served_documents(sandbox: &Sandbox) -> BTreeMap<DocKey, Value> {
    let output = sandbox.aerodb(&["query"], &read_all_requests());
    assert_eq!(output.status.code(), Some(0), "read-all run failed: {}", describe(&output));
    parse_read_all(&crate::responses(&output)).unwrap_or_else(|error| panic!("{error}\n{}", describe(&output)))
}

/// Boots the database and checks it serves exactly `model`, through every
/// index and by point queries (including `_id`s that must be absent).
pub fn assert_serves(sandbox: &Sandbox, model: &Model, absent: &[DocKey]) {
    let served = served_documents(sandbox);
    if let Err(error) = model.check(&served) {
        panic!("{error}");
    }
    let output = sandbox.aerodb(&["query"], &point_query_requests(model, absent));
    assert_eq!(output.status.code(), Some(0), "point queries failed: {}", describe(&output));
    if let Err(error) = check_point_queries(model, absent, &crate::responses(&output)) {
        panic!("{error}");
    }
}

/// Exit status, stdout and stderr of a run, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// True when the process was ended by SIGABRT (a crash point).
pub fn aborted(status: &ExitStatus) -> bool {
    status.signal() == Some(libc::SIGABRT)
}

/// The recovery report log line of a boot (`event: "report"`).
pub fn recovery_report(output: &Output) -> Option<Value> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value["event"] == "report" && value["component"] == "recovery")
}

/// True when stderr logs reaching crash point `name`.
pub fn reached_crash_point(output: &Output, name: &str) -> bool {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|value| value["event"] == "crash_point" && value["name"] == name)
}

/// Sends a request line without waiting for its response.
pub fn send(server: &mut Server, request: &str) -> bool {
    match server.stdin.as_mut() {
        Some(stdin) => writeln!(stdin, "{request}").and_then(|_| stdin.flush()).is_ok(),
        None => false,
    }
}

/// Reads one response line; `None` at end of output or on a partial line.
pub fn read_response(server: &mut Server) -> Option<Value> {
    let mut line = String::new();
    match server.stdout.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) if !line.ends_with('\n') => None,
        Ok(_) => serde_json::from_str(&line).ok(),
    }
}

/// SIGKILLs the server and returns every complete response line it had
/// written (those are acknowledged), plus its stderr.
pub fn kill_and_drain(mut server: Server) -> (Vec<Value>, Vec<u8>) {
    let _ = server.child.kill();
    let _ = server.child.wait();
    drop(server.stdin.take());
    let mut rest = Vec::new();
    let _ = server.stdout.read_to_end(&mut rest);
    let mut stderr = Vec::new();
    if let Some(mut pipe) = server.child.stderr.take() {
        let _ = pipe.read_to_end(&mut stderr);
    }
    let text = String::from_utf8_lossy(&rest);
    let mut responses = Vec::new();
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break; // a partial line: never acknowledged
        }
        match serde_json::from_str(line) {
            Ok(value) => responses.push(value),
            Err(_) => break,
        }
    }
    (responses, stderr)
}

/// `[start, end)` of every record in a WAL file (40-byte header, then
/// records that start with their `u32` little-endian length), as far as
/// the lengths chain; stops at a length that does not fit.
pub fn wal_records(wal: &[u8]) -> Vec<(usize, usize)> {
    let mut records = Vec::new();
    let mut offset = 40;
    while offset + 4 <= wal.len() {
        let length = u32::from_le_bytes(wal[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        if length < 26 || offset + length > wal.len() {
            break;
        }
        records.push((offset, offset + length));
        offset += length;
    }
    records
}

/// The logical end of a WAL: where the chain of records ends (zeros after
/// it are preallocated space).
pub fn wal_logical_end(wal: &[u8]) -> usize {
    wal_records(wal).last().map_or(40.min(wal.len()), |(_, end)| *end)
}

/// Cuts a WAL file's preallocated zero tail off, leaving a log that ends at
/// its last record (the form a log had before preallocation; the engine
/// reads both).
pub fn strip_preallocation(path: &Path) {
    let wal = std::fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let end = wal_logical_end(&wal);
    assert!(wal[end..].iter().all(|&byte| byte == 0), "non-zero bytes after the last record");
    set_length(path, end as u64);
}

pub fn wal_path(sandbox: &Sandbox) -> PathBuf {
    sandbox.data().join("wal/wal.log")
}

/// Every file under a data directory, by relative path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

/// Files a snapshot skips: the lock (content never read) and the derived
/// index segments and directory (rebuilt at every start).
fn skipped(relative: &Path) -> bool {
    relative == Path::new("LOCK") || relative.starts_with("indexes")
}

fn walk(root: &Path, folder: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(folder)
        .unwrap_or_else(|error| panic!("list {}: {error}", folder.display()))
        .map(|entry| entry.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
}

impl Snapshot {
    /// Captures every file of `root` but the LOCK and the derived `indexes/`.
    pub fn capture(root: &Path) -> Snapshot {
        let mut paths = Vec::new();
        walk(root, root, &mut paths);
        let files = paths.into_iter().filter(|relative| !skipped(relative)).map(|relative| {
            let bytes = std::fs::read(root.join(&relative)).unwrap_or_else(|error| panic!("read {}: {error}", relative.display()));
            (relative, bytes)
        });
        Snapshot { files: files.collect() }
    }

    /// Puts `root` back to this snapshot: rewrites the pages of files that
    /// differ, removes files it did not hold (the derived `indexes/` and the
    /// LOCK are left alone).
    pub fn restore(&self, root: &Path) {
        let mut paths = Vec::new();
        walk(root, root, &mut paths);
        for relative in paths {
            if !skipped(&relative) && !self.files.contains_key(&relative) {
                std::fs::remove_file(root.join(&relative)).unwrap_or_else(|error| panic!("remove {}: {error}", relative.display()));
            }
        }
        for (relative, bytes) in &self.files {
            let path = root.join(relative);
            let current = std::fs::read(&path).ok();
            match current {
                Some(current) if current == *bytes => {}
                Some(current) if current.len() == bytes.len() => {
                    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open for restore");
                    for (index, (now, then)) in current.chunks(4096).zip(bytes.chunks(4096)).enumerate() {
                        if now != then {
                            file.write_all_at(then, (index * 4096) as u64).expect("restore page");
                        }
                    }
                }
                _ => std::fs::write(&path, bytes).unwrap_or_else(|error| panic!("restore {}: {error}", path.display())),
            }
        }
    }

    /// Relative paths whose content differs between two snapshots (or that only one holds).
    pub fn differences(&self, other: &Snapshot) -> Vec<PathBuf> {
        let names: BTreeSet<&PathBuf> = self.files.keys().chain(other.files.keys()).collect();
        names.into_iter().filter(|name| self.files.get(*name) != other.files.get(*name)).cloned().collect()
    }
}

/// Xors one byte of a file in place.
pub fn xor_byte(path: &Path, offset: u64, mask: u8) {
    let file =
        std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset).unwrap_or_else(|error| panic!("read {} at {offset}: {error}", path.display()));
    byte[0] ^= mask;
    file.write_all_at(&byte, offset).expect("write flipped byte");
}

/// Truncates (or extends with zeros) a file to `length` bytes.
pub fn set_length(path: &Path, length: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(length))
        .unwrap_or_else(|error| panic!("set_len {}: {error}", path.display()));
}

/// Appends bytes to a file.
pub fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    file.write_all(bytes).expect("append");
}

/// Runs `writes` in one `aerodb query` run, requires every one to be
/// acknowledged as the model predicts, and applies them to `model`.
pub fn run_writes(sandbox: &Sandbox, model: &mut Model, writes: &[Op]) {
    let stdin: String = writes.iter().map(|write| write.request() + "\n").collect();
    let output = sandbox.aerodb(&["query"], &stdin);
    let responses = crate::responses(&output);
    assert_eq!(responses.len(), writes.len(), "one response per write: {}", describe(&output));
    let mut failed = false;
    for (write, response) in writes.iter().zip(&responses) {
        let ok = model.acknowledge(write, response).unwrap_or_else(|error| panic!("{error}"));
        failed |= !ok;
    }
    assert_eq!(output.status.code(), Some(if failed { 1 } else { 0 }), "{}", describe(&output));
}

/// Path of a binary built by this workspace, if it exists (for optional checks).
pub fn optional_binary(name: &str) -> Option<PathBuf> {
    let mut folder = std::env::current_exe().ok()?;
    folder.pop();
    if folder.ends_with("deps") {
        folder.pop();
    }
    Some(folder.join(name)).filter(|path| path.is_file())
}
