#!/usr/bin/env bash
# aerodb-verify and aerodb-inspect beside a boot of the same database, in
# interleaved rounds (a burst of outside load hits every command alike).
# Prints one line per command and round: wall seconds and peak RSS (KiB),
# then the medians. Needs /usr/bin/time and release binaries:
#   cargo build --release -p aerodb-cli -p aerodb-tools
#   bench/tools.sh bench/target/bench-data/ds-1000000 5
set -uo pipefail
timing=$(mktemp)
folder=${1:?usage: bench/tools.sh DATA_SET_FOLDER [ROUNDS]}
rounds=${2:-5}
bin=$(cd "$(dirname "$0")/.." && pwd)/target/release
config="$folder/aerodb.json"
lookup='{"op":"query","schema_id":"user","schema_version":"v1","filter":{"_id":{"$eq":"u000000001"}},"limit":1}'
declare -A runs
measure() { # name, command...
  local name=$1; shift
  local line
  /usr/bin/time -o "$timing" -f "%e %M" "$@" > /dev/null 2>&1
  line=$(tail -1 "$timing")
  echo "$name round $round: ${line% *} s, ${line#* } KiB"
  runs[$name]+="${line% *}:${line#* } "
}
for round in $(seq 1 "$rounds"); do
  measure boot bash -c "echo '$lookup' | '$bin/aerodb' query --config '$config'"
  measure verify "$bin/aerodb-verify" --config "$config"
  measure inspect_wal "$bin/aerodb-inspect" --config "$config" wal
  measure inspect_wal_stats "$bin/aerodb-inspect" --config "$config" wal --stats
done
echo "medians over $rounds rounds:"
for name in boot verify inspect_wal inspect_wal_stats; do
  echo "${runs[$name]}" | tr ' ' '\n' | grep . | python3 -c "
import sys, statistics
rows = [line.split(':') for line in sys.stdin.read().split()]
wall = statistics.median(float(r[0]) for r in rows); rss = statistics.median(int(r[1]) for r in rows)
print(f'  $name: {wall:.2f} s, {rss/1024:.0f} MiB')"
done
