#!/usr/bin/env bash
# `aerodb backup` beside `cp -r` of the same database, while a writer keeps
# inserting through `aerodb start`, in interleaved rounds. Works on a copy
# of the data set (the writer changes it). Needs release binaries:
#   cargo build --release -p aerodb-cli
#   bench/backup.sh bench/target/bench-data/ds-1000000 3
set -uo pipefail
source_set=${1:?usage: bench/backup.sh DATA_SET_FOLDER [ROUNDS]}
rounds=${2:-3}
bin=$(cd "$(dirname "$0")/.." && pwd)/target/release
scratch=$(mktemp -d "$(dirname "$source_set")/backup-bench.XXXXXX")
trap 'kill $writer 2>/dev/null; rm -rf "$scratch"' EXIT
cp -r "$source_set/data" "$scratch/data"
cp "$source_set/aerodb.json" "$scratch/aerodb.json"
config="$scratch/aerodb.json"
# The writer: one insert at a time, each waiting for its answer (a client
# that needs every write acknowledged), for as long as the bench runs.
python3 - "$bin/aerodb" "$config" > "$scratch/writer.log" 2>&1 <<'PY' &
import json, subprocess, sys, time
server = subprocess.Popen([sys.argv[1], "start", "--config", sys.argv[2]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
n = 0
started = time.time()
while True:
    doc = {"_id": "w%09d" % n, "name": "writer", "age": n % 90}
    server.stdin.write(json.dumps({"op": "insert", "schema_id": "user", "schema_version": "v1", "document": doc}) + "\n")
    server.stdin.flush()
    if '"ok"' not in server.stdout.readline():
        sys.exit("a write was not acknowledged")
    n += 1
    if n % 1000 == 0:
        print(f"{n} writes acknowledged, {n / (time.time() - started):.0f}/s", flush=True)
PY
writer=$!
sleep 3
bytes=$(du -sb "$scratch/data" | cut -f1)
for round in $(seq 1 "$rounds"); do
  rm -rf "$scratch/cp" "$scratch/bk"
  sync
  start=$(date +%s.%N); cp -r "$scratch/data" "$scratch/cp" && sync; cp_s=$(echo "$(date +%s.%N) - $start" | bc)
  rm -rf "$scratch/cp"; sync
  start=$(date +%s.%N); "$bin/aerodb" backup --config "$config" "$scratch/bk" > "$scratch/backup.out" 2>/dev/null; backup_s=$(echo "$(date +%s.%N) - $start" | bc)
  grep -q '"status":"ok"' "$scratch/backup.out" || { echo "backup failed"; cat "$scratch/backup.out"; exit 1; }
  echo "round $round: data $bytes bytes; cp -r + sync ${cp_s} s; aerodb backup ${backup_s} s; backup rate / cp rate = $(echo "scale=2; $cp_s / $backup_s" | bc)"
done
tail -1 "$scratch/writer.log"
kill $writer 2>/dev/null
