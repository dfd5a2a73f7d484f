//! `cargo test conformance`: every Lab 2 test run with its trace validated against the model, event by event.
//! Each test runs a few seeds (`LAB_SEED` is the first, `LAB_SEEDS` how many; by default 3 from seed 1); a run
//! must pass the lab's own checks and its trace must match the model.

use conformance::lab::{find, run_traced, seeds_from_env_or};
use conformance::trace::check;

fn validate(name: &str) {
    let test = find(name).expect("a lab test");
    for seed in seeds_from_env_or(3) {
        let (outcome, trace) = run_traced(test, seed, true);
        if let Some(failure) = outcome.failure {
            panic!("{} failed with seed {seed}: {failure}", test.go_name);
        }
        assert!(
            trace.records.len() > 100,
            "{} seed {seed}: only {} events recorded",
            test.go_name,
            trace.records.len()
        );
        if let Err(mismatch) = check(&trace) {
            panic!(
                "{} seed {seed}: the trace leaves the model ({} events)\n{mismatch}\n(replay: LAB_SEED={seed} LAB_SEEDS=1 cargo test --release -p conformance --test conformance conformance_{})",
                test.go_name,
                trace.records.len(),
                test.name
            );
        }
    }
}

macro_rules! validated {
    ($($name:ident => $lab:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                validate($lab);
            }
        )*
    };
}

validated! {
    conformance_initial_election_2a => "initial_election_2a",
    conformance_re_election_2a => "re_election_2a",
    conformance_many_elections_2a => "many_elections_2a",
    conformance_basic_agree_2b => "basic_agree_2b",
    conformance_rpc_bytes_2b => "rpc_bytes_2b",
    conformance_follower_failure_2b => "follower_failure_2b",
    conformance_leader_failure_2b => "leader_failure_2b",
    conformance_fail_agree_2b => "fail_agree_2b",
    conformance_fail_no_agree_2b => "fail_no_agree_2b",
    conformance_concurrent_starts_2b => "concurrent_starts_2b",
    conformance_rejoin_2b => "rejoin_2b",
    conformance_backup_2b => "backup_2b",
    conformance_count_2b => "count_2b",
    conformance_persist1_2c => "persist1_2c",
    conformance_persist2_2c => "persist2_2c",
    conformance_persist3_2c => "persist3_2c",
    conformance_figure8_2c => "figure8_2c",
    conformance_unreliable_agree_2c => "unreliable_agree_2c",
    conformance_figure8_unreliable_2c => "figure8_unreliable_2c",
    conformance_reliable_churn_2c => "reliable_churn_2c",
    conformance_unreliable_churn_2c => "unreliable_churn_2c",
    conformance_snapshot_basic_2d => "snapshot_basic_2d",
    conformance_snapshot_install_2d => "snapshot_install_2d",
    conformance_snapshot_install_unreliable_2d => "snapshot_install_unreliable_2d",
    conformance_snapshot_install_crash_2d => "snapshot_install_crash_2d",
    conformance_snapshot_install_uncrash_2d => "snapshot_install_uncrash_2d",
    conformance_snapshot_all_crash_2d => "snapshot_all_crash_2d",
    conformance_snapshot_init_2d => "snapshot_init_2d",
}
