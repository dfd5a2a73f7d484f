//! Part 2C of the Lab 2 tester, one `#[test]` per Go test. The bodies live in
//! `conformance::lab::tests_2c`; `LAB_SEED=n` replays one seed, `LAB_SEEDS=k` runs k seeds.

use conformance::lab::run_from_env;

#[test]
fn persist1_2c() {
    run_from_env("persist1_2c");
}

#[test]
fn persist2_2c() {
    run_from_env("persist2_2c");
}

#[test]
fn persist3_2c() {
    run_from_env("persist3_2c");
}

#[test]
fn figure8_2c() {
    run_from_env("figure8_2c");
}

#[test]
fn unreliable_agree_2c() {
    run_from_env("unreliable_agree_2c");
}

#[test]
fn figure8_unreliable_2c() {
    run_from_env("figure8_unreliable_2c");
}

#[test]
fn reliable_churn_2c() {
    run_from_env("reliable_churn_2c");
}

#[test]
fn unreliable_churn_2c() {
    run_from_env("unreliable_churn_2c");
}
