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
# shellcheck source=medians.sh
. impl/node/bench/medians.sh
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

medians_table "$results" "raft-node openraft" yes
