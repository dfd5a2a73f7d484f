//! Part 2D of the Lab 2 tester, one `#[test]` per Go test. The bodies live in
//! `conformance::lab::tests_2d`; `LAB_SEED=n` replays one seed, `LAB_SEEDS=k` runs k seeds.

use conformance::lab::run_from_env;

#[test]
fn snapshot_basic_2d() {
    run_from_env("snapshot_basic_2d");
}

#[test]
fn snapshot_install_2d() {
    run_from_env("snapshot_install_2d");
}

#[test]
fn snapshot_install_unreliable_2d() {
    run_from_env("snapshot_install_unreliable_2d");
}

#[test]
fn snapshot_install_crash_2d() {
    run_from_env("snapshot_install_crash_2d");
}

#[test]
fn snapshot_install_uncrash_2d() {
    run_from_env("snapshot_install_uncrash_2d");
}

#[test]
fn snapshot_all_crash_2d() {
    run_from_env("snapshot_all_crash_2d");
}

#[test]
fn snapshot_init_2d() {
    run_from_env("snapshot_init_2d");
}
