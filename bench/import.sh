#!/usr/bin/env bash
# Bulk writes side by side, in interleaved rounds: `aerodb import` of
# N lines (100,000 unless given), `aerodb start` with the same N inserts piped, and the sqlite3
# CLI with 10,000 inserts in autocommit (one transaction per insert, WAL
# mode, synchronous=FULL, the same table and indexes as bench/). Documents
# are the harness's (~100 bytes). Each run starts from an empty database.
#   cargo build --release -p aerodb-cli
#   bench/import.sh 3            # 100,000 documents
#   bench/import.sh 1 1000000    # 1,000,000 documents
#   AERODB_BIN_DIR=/other/target/release bench/import.sh 3   # another build
set -uo pipefail
rounds=${1:-3}
docs=${2:-100000}
bin=${AERODB_BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" "$docs" <<'PY'
import sys
work = sys.argv[1]
count = int(sys.argv[2])
PAD = "abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwx"
def splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)
docs = []
for i in range(count):
    mixed = splitmix(i)
    docs.append((f"u{i:09}", f"name-{mixed % 1000:04}-{PAD}", (mixed >> 32) % 100))
with open(f"{work}/docs.ndjson", "w") as f:
    for id_, name, age in docs:
        f.write(f'{{"_id":"{id_}","name":"{name}","age":{age}}}\n')
with open(f"{work}/inserts.txt", "w") as f:
    for id_, name, age in docs:
        f.write(f'{{"op":"insert","schema_id":"user","schema_version":"v1","document":{{"_id":"{id_}","name":"{name}","age":{age}}}}}\n')
with open(f"{work}/sqlite.sql", "w") as f:
    f.write("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n")
    f.write("CREATE TABLE user(_id TEXT PRIMARY KEY, name TEXT, age INTEGER);\nCREATE INDEX user_name ON user(name);\nCREATE INDEX user_age ON user(age);\n")
    for id_, name, age in docs[:10_000]:
        f.write(f"INSERT INTO user(_id, name, age) VALUES('{id_}', '{name}', {age});\n")
PY
schema='{"schema_id":"user","schema_version":"v1","fields":{"_id":{"type":"string"},"name":{"type":"string"},"age":{"type":"int"}},"indexes":["_id","name","age"]}'
fresh() { # a new empty database in $work/db
  rm -rf "$work/db"; mkdir -p "$work/db"
  echo '{ "data_dir": "./data" }' > "$work/db/aerodb.json"
  (cd "$work/db" && "$bin/aerodb" init --config aerodb.json > /dev/null 2>&1 && echo "$schema" > data/metadata/schemas/user_v1.json)
}
timed() { local start; start=$(date +%s.%N); "$@" > /dev/null 2>&1; echo "$(date +%s.%N) - $start" | bc; }
for round in $(seq 1 "$rounds"); do
  fresh; import_s=$(cd "$work/db" && timed "$bin/aerodb" import --config aerodb.json --schema user --version v1 "$work/docs.ndjson")
  fresh; start_s=$(cd "$work/db" && timed bash -c "'$bin/aerodb' start --config aerodb.json < '$work/inserts.txt'")
  rm -f "$work"/s.db*; sqlite_s=$(timed bash -c "sqlite3 '$work/s.db' < '$work/sqlite.sql'")
  echo "round $round: import $docs ${import_s} s ($(echo "$docs / $import_s" | bc)/s); start $docs piped ${start_s} s ($(echo "$docs / $start_s" | bc)/s); sqlite3 10,000 autocommit ${sqlite_s} s ($(echo "10000 / $sqlite_s" | bc)/s); import / sqlite = $(echo "scale=1; ($docs / $import_s) / (10000 / $sqlite_s)" | bc)x, start / sqlite = $(echo "scale=1; ($docs / $start_s) / (10000 / $sqlite_s)" | bc)x"
done
