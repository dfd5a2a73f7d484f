#!/usr/bin/env bash
# raft-node against etcd on this machine, in one sitting, runs alternated (not run by CI).
#
# For each number of clients (1, 64 and 1024 unless given), ROUNDS times in turn:
#   * raft-bench --tier 2: three raft-node processes on loopback, file storage, fsync on;
#   * etcd 3.4 (Debian's etcd-server): three members on loopback, each with its own data directory, fsync on
#     (etcd's default), loaded by etcd-load (beside this script): the same number of closed-loop writers, one
#     put each outstanding, from one client thread, 8-byte values. raft-bench's writers share one connection
#     to the leader; etcd-load's share one gRPC connection per 100 writers (over one, 1,024 had it reset).
# Each run starts a fresh cluster. Prints every run's line, then a Markdown table of the medians.
#
# Usage: impl/node/bench/etcd-vs-raft-node.sh [SECS [ROUNDS [CLIENTS...]]]   (defaults: 5 2 1 64 1024)
# Needs root for apt-get, or etcd, etcdctl and protoc already installed.
set -euo pipefail
cd "$(dirname "$0")/../../.."
# shellcheck source=medians.sh
. impl/node/bench/medians.sh
secs=${1:-5}
rounds=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(1 64 1024)

if ! command -v etcd > /dev/null || ! command -v etcdctl > /dev/null || ! command -v protoc > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client protobuf-compiler > /dev/null
fi
# sed reads the whole output: head would stop etcd with SIGPIPE, which pipefail makes fatal.
etcd --version | sed -n 1p
cargo build --release -q -p raft-node
cargo build --release -q --manifest-path impl/node/bench/etcd-load/Cargo.toml --target-dir target/etcd-load
load=target/etcd-load/release/etcd-load

work=$(mktemp -d)
pids=()
stop_etcd() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
    pids=()
    # KEEP_LOGS=DIR keeps the members' logs of the last etcd run there (etcd reads ETCD_* variables as
    # flags: the name must not start so).
    [ -z "${KEEP_LOGS:-}" ] || cp "$work"/m*.log "$KEEP_LOGS"/ 2> /dev/null || true
}
trap 'stop_etcd; rm -rf "$work"' EXIT

client_port() { echo $((23790 + $1)); }
peer_port() { echo $((23800 + $1)); }

# Starts three fresh members and sets `leader` to the leader's client address. (Not to be called in a
# subshell: `pids` must reach stop_etcd.)
start_etcd() {
    rm -rf "$work/etcd"
    local cluster="" i
    for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:$(peer_port $i)"; done
    for i in 1 2 3; do
        etcd --name "m$i" --data-dir "$work/etcd/m$i" \
            --listen-client-urls "http://127.0.0.1:$(client_port $i)" \
            --advertise-client-urls "http://127.0.0.1:$(client_port $i)" \
            --listen-peer-urls "http://127.0.0.1:$(peer_port $i)" \
            --initial-advertise-peer-urls "http://127.0.0.1:$(peer_port $i)" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token etcd-vs-raft-node --log-level warn > "$work/m$i.log" 2>&1 &
        pids+=($!)
    done
    local tries status member lead
    for tries in $(seq 100); do
        for i in 1 2 3; do
            status=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$(client_port $i)" --command-timeout=1s \
                endpoint status -w json 2> /dev/null) || continue
            member=$(grep -o '"member_id":[0-9]*' <<< "$status" | cut -d: -f2)
            lead=$(grep -o '"leader":[0-9]*' <<< "$status" | cut -d: -f2)
            if [ -n "$member" ] && [ "$member" = "$lead" ]; then
                leader="127.0.0.1:$(client_port $i)"
                return 0
            fi
        done
        sleep 0.1
    done
    echo "etcd elected no leader within 10 s" >&2
    return 1
}

results="$work/results"
for c in "${clients[@]}"; do
    for r in $(seq "$rounds"); do
        line=$(./target/release/raft-bench --tier 2 --clients "$c" --secs "$secs")
        echo "$line"
        echo "raft-node $c $line" >> "$results"
        start_etcd
        line=$("$load" --endpoint "$leader" --clients "$c" --secs "$secs") || { stop_etcd; exit 1; }
        stop_etcd
        echo "$line"
        echo "etcd $c $line" >> "$results"
    done
done

medians_table "$results" "raft-node etcd" no
