//! Part 2B of the Lab 2 tester, one `#[test]` per Go test. The bodies live in
//! `conformance::lab::tests_2b`; `LAB_SEED=n` replays one seed, `LAB_SEEDS=k` runs k seeds.

use conformance::lab::run_from_env;

#[test]
fn basic_agree_2b() {
    run_from_env("basic_agree_2b");
}

#[test]
fn rpc_bytes_2b() {
    run_from_env("rpc_bytes_2b");
}

#[test]
fn follower_failure_2b() {
    run_from_env("follower_failure_2b");
}

#[test]
fn leader_failure_2b() {
    run_from_env("leader_failure_2b");
}

#[test]
fn fail_agree_2b() {
    run_from_env("fail_agree_2b");
}

#[test]
fn fail_no_agree_2b() {
    run_from_env("fail_no_agree_2b");
}

#[test]
fn concurrent_starts_2b() {
    run_from_env("concurrent_starts_2b");
}

#[test]
fn rejoin_2b() {
    run_from_env("rejoin_2b");
}

#[test]
fn backup_2b() {
    run_from_env("backup_2b");
}

#[test]
fn count_2b() {
    run_from_env("count_2b");
}
