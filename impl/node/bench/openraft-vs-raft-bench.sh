#!/usr/bin/env bash
# raft-bench's tier 1 against openraft on this machine, in one sitting, runs alternated (not run by CI).
#
# For each number of clients (1, 64 and 1024 unless given), ROUNDS times in turn:
#   * raft-bench --tier 1: three raft-node event loops on threads over in-memory channels, every message
#     encoded and decoded, storage that keeps nothing;
#   * openraft-load (beside this script): three openraft 0.9 nodes as tasks of one tokio runtime with
#     WORKERS worker threads (2 unless set), the network a function call into the target node (nothing
#     encoded), log and state machine in memory (entries kept as values).
# Both with the same number of closed-loop writers, one 8-byte write each outstanding, measured for SECS.
# Prints every run's line, then a Markdown table of the medians.
#
# Usage: impl/node/bench/openraft-vs-raft-bench.sh [SECS [ROUNDS [CLIENTS...]]]   (defaults: 3 3 1 64 1024)
set -euo pipefail
cd "$(dirname "$0")/../../.."
secs=${1:-3}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(1 64 1024)
workers=${WORKERS:-2}

cargo build --release -q -p raft-node
cargo build --release -q --manifest-path impl/node/bench/openraft-load/Cargo.toml --target-dir target/openraft-load
load=target/openraft-load/release/openraft-load

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for c in "${clients[@]}"; do
    for r in $(seq "$rounds"); do
        line=$(./target/release/raft-bench --tier 1 --clients "$c" --secs "$secs")
        echo "$line"
        echo "raft-node $c $line" >> "$results"
        line=$("$load" --clients "$c" --secs "$secs" --workers "$workers")
        echo "$line"
        echo "openraft $c $line" >> "$results"
    done
done

field() { grep -o "$1=[0-9.]*" | cut -d= -f2; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "| clients | system | writes/s | p50 (µs) | p99 (µs) | messages per write | runs |"
echo "|---|---|---|---|---|---|---|"
for c in "${clients[@]}"; do
    for system in raft-node openraft; do
        rows=$(grep "^$system $c " "$results")
        printf '| %s | %s | %.0f | %.0f | %.0f | %.2f | %s |\n' "$c" "$system" \
            "$(field ops_per_sec <<< "$rows" | median)" "$(field p50_us <<< "$rows" | median)" \
            "$(field p99_us <<< "$rows" | median)" "$(field msgs_per_op <<< "$rows" | median)" \
            "$(wc -l <<< "$rows")"
    done
done
