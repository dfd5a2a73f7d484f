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

/// Every 3B test with seed `LAB_SEED` (default 1), the traces of the Raft instances under the key-value
/// servers validated against the model event by event, as `labtest --check` does.
#[test]
fn traces_match_the_model() {
    use conformance::lab::{run_checked, seeds_from_env, Verdict, TESTS};
    let seed = seeds_from_env().start;
    for test in TESTS.iter().filter(|t| t.part == "3B") {
        let (outcome, verdict) = run_checked(test, seed, true);
        assert_eq!(outcome.failure, None, "{} seed {seed} failed", test.go_name);
        match verdict {
            Verdict::Checked(summary) => assert!(
                summary.events > 100,
                "{}: {} events",
                test.go_name,
                summary.events
            ),
            Verdict::Unchecked(why) => panic!("{} seed {seed}: not checked: {why}", test.go_name),
            Verdict::Invalid(mismatch) => panic!(
                "{} seed {seed}: the trace leaves the model\n{mismatch}",
                test.go_name
            ),
        }
    }
}
