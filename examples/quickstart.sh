#!/usr/bin/env bash
# The install guide's walkthrough, end to end, in a throwaway directory:
# init, a schema, an insert, a query, an explain, then a crash (SIGKILL of
# a running `aerodb start`) and a restart that shows the data recovered.
#
# Run from anywhere after `cargo build --release`:
#     bash examples/quickstart.sh
set -euo pipefail

repository_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
aerodb="$repository_root/target/release/aerodb"
if [[ ! -x "$aerodb" ]]; then
  echo "target/release/aerodb not found: run 'cargo build --release' first" >&2
  exit 2
fi

work_dir="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work_dir"
}
trap cleanup EXIT
cd "$work_dir"

step() { printf '\n== %s\n' "$*"; }

step "1. config (aerodb.json)"
cat > aerodb.json <<'JSON'
{
  "data_dir": "./data",
  "wal_sync_mode": "fsync",
  "max_wal_size_bytes": 1073741824,
  "max_memory_bytes": 536870912
}
JSON
cat aerodb.json

step "2. aerodb init"
"$aerodb" init --config aerodb.json 2>>aerodb.log

step "3. schema data/metadata/schemas/user_v1.json"
cat > data/metadata/schemas/user_v1.json <<'JSON'
{
  "schema_id": "user",
  "schema_version": "v1",
  "fields": {
    "_id": { "type": "string" },
    "name": { "type": "string" },
    "age": { "type": "int" }
  },
  "indexes": ["_id", "name", "age"]
}
JSON
cat data/metadata/schemas/user_v1.json

step "4. insert (echo | aerodb query)"
echo '{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"1","name":"alice","age":30}}' \
  | "$aerodb" query --config aerodb.json 2>>aerodb.log

step "5. query (a pretty-printed query.json)"
cat > query.json <<'JSON'
{
  "op": "query",
  "schema_id": "user",
  "schema_version": "v1",
  "filter": {
    "age": 30
  },
  "limit": 10
}
JSON
"$aerodb" query --config aerodb.json < query.json 2>>aerodb.log

step "6. explain (the same file)"
"$aerodb" explain --pretty --config aerodb.json < query.json 2>>aerodb.log

step "7. aerodb start in the background, fed by a fifo"
mkfifo requests.fifo
"$aerodb" start --config aerodb.json < requests.fifo > start.out 2> start.log &
server_pid=$!
disown "$server_pid" # no job-control chatter when it is killed below
exec 3> requests.fifo
echo '{"op":"insert","schema_id":"user","schema_version":"v1","document":{"_id":"2","name":"bob","age":41}}' >&3
for _ in $(seq 1 100); do
  [[ -s start.out ]] && break
  sleep 0.1
done
echo "response from the server: $(cat start.out)"

step "8. crash: SIGKILL (no shutdown, no clean_shutdown marker)"
kill -KILL "$server_pid"
for _ in $(seq 1 100); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
echo "aerodb start is gone (SIGKILL: none of its shutdown code ran)"
server_pid=""
exec 3>&-
ls data

step "9. restart: recovery replays the WAL, then the query sees both documents"
echo '{"op":"query","schema_id":"user","schema_version":"v1","filter":{},"sort":"_id","limit":10}' \
  | "$aerodb" query --config aerodb.json 2> restart.log
echo "recovery report (stderr):"
grep '"event":"report"' restart.log
