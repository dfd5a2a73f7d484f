//! Seeds on which a port test once failed, replayed on every run. Each was a bug; the comment says
//! which. A seed replays one exact run only while the core and the harness draw randomness the
//! same way, so these guard the fix loosely; the core's own unit tests pin the behaviour.

use conformance::lab::{find, run};

fn passes(name: &str, seeds: &[u64]) {
    let test = find(name).expect("registered test");
    for &seed in seeds {
        let out = run(test, seed, true);
        assert!(
            out.failure.is_none(),
            "{} failed with seed {seed}: {}",
            test.go_name,
            out.failure.map(|f| f.to_string()).unwrap_or_default()
        );
    }
}

/// The core restarted its election timer whenever it saw a higher term, so a stale candidate's
/// refused RequestVote pushed back the only server able to win (`raft` commit "seeing a higher
/// term does not restart the election timer").
#[test]
fn election_timer_kept_on_refused_votes() {
    passes("persist2_2c", &[13872]);
    passes(
        "figure8_unreliable_2c",
        &[
            1268, 5565, 6488, 10138, 10720, 10778, 11608, 11918, 12066, 12355, 13043, 13346, 13588,
            14005, 14227, 14715,
        ],
    );
}
