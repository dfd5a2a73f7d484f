//! Part 2A: leader election (`specs/lab-tester.md`, `## 2A`).

use super::config::{fatal, Config, RAFT_ELECTION_TIMEOUT_MS};
use crate::sim::Sim;

/// TestInitialElection2A.
pub async fn initial_election_2a(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2A): initial election");

    // Is a leader elected?
    cfg.check_one_leader().await;

    // Sleep a bit to avoid racing with followers learning of the election, then check that all
    // peers agree on the term.
    cfg.sleep_ms(50).await;
    let term1 = cfg.check_terms();
    if term1 < 1 {
        fatal(format!("term is {term1}, but should be at least 1"));
    }

    // Does the leader+term stay the same if there is no network failure?
    cfg.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;
    let term2 = cfg.check_terms();
    if term1 != term2 && !super::runner::quiet() {
        println!("warning: term changed even though there were no failures");
    }

    // There should still be a leader.
    cfg.check_one_leader().await;

    cfg.end();
    cfg.cleanup();
}

/// TestReElection2A.
pub async fn re_election_2a(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2A): election after network failure");

    let leader1 = cfg.check_one_leader().await;

    // If the leader disconnects, a new one should be elected.
    cfg.disconnect(leader1);
    cfg.check_one_leader().await;

    // If the old leader rejoins, that shouldn't disturb the new leader, and the old leader
    // should switch to follower.
    cfg.connect(leader1);
    let leader2 = cfg.check_one_leader().await;

    // If there's no quorum, no new leader should be elected.
    cfg.disconnect(leader2);
    cfg.disconnect((leader2 + 1) % servers);
    cfg.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;

    // Check that the one connected server does not think it is the leader.
    cfg.check_no_leader();

    // If a quorum arises, it should elect a leader.
    cfg.connect((leader2 + 1) % servers);
    cfg.check_one_leader().await;

    // Re-join of the last node shouldn't prevent a leader from existing.
    cfg.connect(leader2);
    cfg.check_one_leader().await;

    cfg.end();
    cfg.cleanup();
}

/// TestManyElections2A.
pub async fn many_elections_2a(sim: Sim) {
    let servers = 7;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2A): multiple elections");

    cfg.check_one_leader().await;

    let iters = 10;
    for _ in 1..iters {
        // Disconnect three nodes (possibly the same one more than once).
        let i1 = cfg.rand_int() as usize % servers;
        let i2 = cfg.rand_int() as usize % servers;
        let i3 = cfg.rand_int() as usize % servers;
        cfg.disconnect(i1);
        cfg.disconnect(i2);
        cfg.disconnect(i3);

        // Either the current leader should still be alive, or the remaining four should elect a
        // new one.
        cfg.check_one_leader().await;

        cfg.connect(i1);
        cfg.connect(i2);
        cfg.connect(i3);
    }

    cfg.check_one_leader().await;

    cfg.end();
    cfg.cleanup();
}
