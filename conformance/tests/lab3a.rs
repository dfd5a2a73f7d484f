//! Part 3A of the Lab 3 tester, one `#[test]` per Go test. The bodies live in
//! `conformance::lab::tests_3a`; `LAB_SEED=n` replays one seed, `LAB_SEEDS=k` runs k seeds (3 by
//! default).

use conformance::lab::run_from_env_or;

/// Seeds each test runs when `LAB_SEEDS` is not set.
const SEEDS: u64 = 3;

#[test]
fn basic_3a() {
    run_from_env_or("basic_3a", SEEDS);
}

#[test]
fn speed_3a() {
    run_from_env_or("speed_3a", SEEDS);
}

#[test]
fn concurrent_3a() {
    run_from_env_or("concurrent_3a", SEEDS);
}

#[test]
fn unreliable_3a() {
    run_from_env_or("unreliable_3a", SEEDS);
}

#[test]
fn unreliable_one_key_3a() {
    run_from_env_or("unreliable_one_key_3a", SEEDS);
}

#[test]
fn one_partition_3a() {
    run_from_env_or("one_partition_3a", SEEDS);
}

#[test]
fn many_partitions_one_client_3a() {
    run_from_env_or("many_partitions_one_client_3a", SEEDS);
}

#[test]
fn many_partitions_many_clients_3a() {
    run_from_env_or("many_partitions_many_clients_3a", SEEDS);
}

#[test]
fn persist_one_client_3a() {
    run_from_env_or("persist_one_client_3a", SEEDS);
}

#[test]
fn persist_concurrent_3a() {
    run_from_env_or("persist_concurrent_3a", SEEDS);
}

#[test]
fn persist_concurrent_unreliable_3a() {
    run_from_env_or("persist_concurrent_unreliable_3a", SEEDS);
}

#[test]
fn persist_partition_3a() {
    run_from_env_or("persist_partition_3a", SEEDS);
}

#[test]
fn persist_partition_unreliable_3a() {
    run_from_env_or("persist_partition_unreliable_3a", SEEDS);
}

#[test]
fn persist_partition_unreliable_linearizable_3a() {
    run_from_env_or("persist_partition_unreliable_linearizable_3a", SEEDS);
}

/// One seed gives one run, event for event, with clerks, key-value servers and the history check;
/// another seed gives another.
#[test]
fn same_seed_same_run() {
    use conformance::lab::{find, run};
    for name in [
        "persist_partition_unreliable_linearizable_3a",
        "one_partition_3a",
    ] {
        let test = find(name).expect("registered");
        let a = run(test, 7, true);
        let b = run(test, 7, true);
        assert_eq!(a.failure, None, "{name} seed 7 failed");
        assert_eq!(
            (a.fingerprint, a.events),
            (b.fingerprint, b.events),
            "{name}: same seed, different runs"
        );
        assert_ne!(
            a.fingerprint,
            run(test, 8, true).fingerprint,
            "{name}: different seeds, same run"
        );
    }
}

/// Every 3A test with seed `LAB_SEED` (default 1), the traces of the Raft instances under the key-value
/// servers validated against the model event by event, as `labtest --check` does.
#[test]
fn traces_match_the_model() {
    use conformance::lab::{run_checked, seeds_from_env, Verdict, TESTS};
    let seed = seeds_from_env().start;
    for test in TESTS.iter().filter(|t| t.part == "3A") {
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
