//! Part 2A of the Lab 2 tester, one `#[test]` per Go test. The bodies live in
//! `conformance::lab::tests_2a`; `LAB_SEED=n` replays one seed, `LAB_SEEDS=k` runs k seeds.

use conformance::lab::run_from_env;

#[test]
fn initial_election_2a() {
    run_from_env("initial_election_2a");
}

#[test]
fn re_election_2a() {
    run_from_env("re_election_2a");
}

#[test]
fn many_elections_2a() {
    run_from_env("many_elections_2a");
}
