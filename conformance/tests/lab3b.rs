//! Part 3B of the Lab 3 tester, one `#[test]` per Go test. The bodies live in
//! `conformance::lab::tests_3b`; `LAB_SEED=n` replays one seed, `LAB_SEEDS=k` runs k seeds (3 by
//! default).

use conformance::lab::run_from_env_or;

/// Seeds each test runs when `LAB_SEEDS` is not set.
const SEEDS: u64 = 3;

#[test]
fn snapshot_rpc_3b() {
    run_from_env_or("snapshot_rpc_3b", SEEDS);
}

#[test]
fn snapshot_size_3b() {
    run_from_env_or("snapshot_size_3b", SEEDS);
}

#[test]
fn speed_3b() {
    run_from_env_or("speed_3b", SEEDS);
}

#[test]
fn snapshot_recover_3b() {
    run_from_env_or("snapshot_recover_3b", SEEDS);
}

#[test]
fn snapshot_recover_many_clients_3b() {
    run_from_env_or("snapshot_recover_many_clients_3b", SEEDS);
}

#[test]
fn snapshot_unreliable_3b() {
    run_from_env_or("snapshot_unreliable_3b", SEEDS);
}

#[test]
fn snapshot_unreliable_recover_3b() {
    run_from_env_or("snapshot_unreliable_recover_3b", SEEDS);
}

#[test]
fn snapshot_unreliable_recover_concurrent_partition_3b() {
    run_from_env_or("snapshot_unreliable_recover_concurrent_partition_3b", SEEDS);
}

#[test]
fn snapshot_unreliable_recover_concurrent_partition_linearizable_3b() {
    run_from_env_or(
        "snapshot_unreliable_recover_concurrent_partition_linearizable_3b",
        SEEDS,
    );
}
