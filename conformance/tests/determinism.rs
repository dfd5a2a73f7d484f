//! The simulator is deterministic: one seed gives the same run, event for event; another seed
//! gives a different run.

use conformance::lab::{find, run};

fn check(name: &str) {
    let test = find(name).expect("registered test");
    let a = run(test, 7, true);
    let b = run(test, 7, true);
    assert_eq!(a.failure, None, "{name} seed 7 failed");
    assert_eq!(
        a.fingerprint, b.fingerprint,
        "{name}: same seed, different event streams"
    );
    assert_eq!(a.events, b.events);
    assert_eq!(a.sim_secs, b.sim_secs);
    let c = run(test, 8, true);
    assert_ne!(
        a.fingerprint, c.fingerprint,
        "{name}: different seeds, same event stream"
    );
}

#[test]
fn same_seed_same_events_reliable() {
    check("initial_election_2a");
    check("figure8_2c");
}

#[test]
fn same_seed_same_events_with_snapshots() {
    check("snapshot_install_crash_2d");
    check("snapshot_install_unreliable_2d");
}

#[test]
fn same_seed_same_events_unreliable() {
    check("unreliable_churn_2c");
    check("unreliable_agree_2c");
}
