//! Membership changes on the simulator, in the lab tester's style (this port's own tests; no Go test
//! changes the configuration): servers join as learners, are promoted, are removed (the leader too) and are
//! replaced, on unreliable networks and through crashes; a learner neither votes nor counts; joint consensus
//! needs both majorities; a leader takes one change at a time, and only once it has committed in its term;
//! an uncommitted change that is truncated is undone; the leadership moves where it is asked. The tester's
//! applier records each configuration entry at its index beside the commands, so that every server must
//! apply the same configuration there. `tests/lab_membership.rs` runs each on several seeds, trace-validated
//! against the model.

use std::collections::BTreeSet;

use raft::{ConfChange, ConfChangeRefused};

use super::config::{fatal, Config};
use super::runner::LabTest;
use crate::sim::Sim;

/// Two servers join a cluster of three on an unreliable network, each as a learner that catches up and is
/// then promoted; with five voters, two crashed servers do not stop the cluster, and they catch up when
/// they come back.
async fn join_and_promote(sim: Sim) {
    let cfg = Config::make_members(&sim, 5, 3, true, false, raft::Config::default());
    cfg.begin("membership: two servers join as learners and are promoted (unreliable)");
    cfg.one(cfg.rand_int(), 3, true).await;
    for id in [3, 4] {
        cfg.change_membership(ConfChange::AddLearner(id as u64), id)
            .await;
        // The learner holds every entry: all members apply the next command.
        cfg.one(cfg.rand_int(), id + 1, true).await;
        cfg.change_membership(ConfChange::Promote(id as u64), id + 1)
            .await;
    }
    let (membership, committed) = cfg.membership(cfg.check_one_leader().await);
    assert_eq!(membership.voters, (0..5).collect::<BTreeSet<u64>>());
    assert!(committed);
    cfg.crash1(0);
    cfg.crash1(1);
    cfg.one(cfg.rand_int(), 3, true).await;
    for i in [0, 1] {
        cfg.start1(i);
        cfg.connect(i);
    }
    cfg.one(cfg.rand_int(), 5, true).await;
    cfg.end();
    cfg.cleanup();
}

/// The leader of five is removed and its server stopped; a new leader takes over. Then a crashed server is
/// removed too: the majority is now of four, and after one more crash, of three. (A removed leader steps
/// down once the change commits, before its followers learn that it did: they apply it once the next
/// leader commits an entry of its own term, here the next command.)
async fn remove_the_leader_and_shrink(sim: Sim) {
    let cfg = Config::make_members(&sim, 5, 5, false, false, raft::Config::default());
    cfg.begin("membership: the leader is removed, then a crashed server");
    cfg.one(cfg.rand_int(), 5, true).await;
    let leader = cfg.check_one_leader().await;
    cfg.change_membership(ConfChange::Remove(leader as u64), 1)
        .await;
    cfg.crash1(leader);
    let next = cfg.check_one_leader().await;
    assert_ne!(next, leader);
    cfg.one(cfg.rand_int(), 4, true).await;
    let crashed = (next + 1..next + 5)
        .map(|k| k % 5)
        .find(|&i| i != leader)
        .expect("another server");
    cfg.crash1(crashed);
    cfg.one(cfg.rand_int(), 3, true).await;
    cfg.change_membership(ConfChange::Remove(crashed as u64), 3)
        .await;
    // Three voters left, and two of them make a majority.
    let third = (0..5)
        .find(|&i| i != leader && i != crashed && !cfg.get_state(i).1)
        .expect("a follower");
    cfg.crash1(third);
    cfg.one(cfg.rand_int(), 2, true).await;
    cfg.end();
    cfg.cleanup();
}

/// A server replaces another on an unreliable network with the snapshot applier: it joins as a learner
/// (catching up by snapshot), is promoted, and the server it replaces is removed and stopped for good; then
/// the others crash and restart one at a time while commands keep committing.
async fn replace_under_loss_and_crashes(sim: Sim) {
    let cfg = Config::make_members(&sim, 4, 3, true, true, raft::Config::default());
    cfg.begin("membership: a server is replaced, with loss and crashes (snapshots)");
    for _ in 0..25 {
        cfg.one(cfg.rand_int(), 3, true).await;
    }
    cfg.change_membership(ConfChange::AddLearner(3), 3).await;
    cfg.one(cfg.rand_int(), 4, true).await;
    cfg.change_membership(ConfChange::Promote(3), 4).await;
    // Server 0 may lead: then it alone applies the change before it steps down.
    cfg.change_membership(ConfChange::Remove(0), 1).await;
    cfg.crash1(0);
    for _ in 0..6 {
        let victim = 1 + (cfg.rand_int() % 3) as usize;
        cfg.crash1(victim);
        for _ in 0..5 {
            cfg.one(cfg.rand_int(), 2, true).await;
        }
        cfg.start1(victim);
        cfg.connect(victim);
    }
    cfg.one(cfg.rand_int(), 3, true).await;
    cfg.end();
    cfg.cleanup();
}

/// A learner gets the log but is never counted: a leader that reaches only the learner commits nothing,
/// and a learner cut off from every voter never stands for election.
async fn a_learner_neither_votes_nor_counts(sim: Sim) {
    let cfg = Config::make_members(&sim, 4, 3, false, false, raft::Config::default());
    cfg.begin("membership: a learner neither votes nor counts");
    cfg.one(cfg.rand_int(), 3, true).await;
    cfg.change_membership(ConfChange::AddLearner(3), 3).await;
    cfg.one(cfg.rand_int(), 4, true).await;
    let leader = cfg.check_one_leader().await;
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &others {
        cfg.disconnect(i);
    }
    let (index, _, ok) = cfg.start(leader, &cfg.rand_int().into());
    assert!(ok, "the leader takes the command");
    cfg.sleep_ms(2000).await;
    let (n, _) = cfg.n_committed(index);
    if n > 0 {
        fatal(format!(
            "{n} committed index {index} with only the leader and a learner"
        ));
    }
    for &i in &others {
        cfg.connect(i);
    }
    cfg.one(cfg.rand_int(), 4, true).await;
    // Alone, the learner never times out.
    let (term, _) = cfg.get_state(3);
    for i in 0..3 {
        cfg.disconnect(i);
    }
    cfg.sleep_ms(3000).await;
    assert_eq!(
        cfg.get_state(3),
        (term, false),
        "the learner stood for election"
    );
    for i in 0..3 {
        cfg.connect(i);
    }
    cfg.one(cfg.rand_int(), 4, true).await;
    cfg.end();
    cfg.cleanup();
}

/// Joint consensus replaces two of three voters at once: while joint, a majority of C_new alone commits
/// nothing; once C_new is in force, the two servers it left out can crash.
async fn joint_consensus_replaces_two(sim: Sim) {
    let cfg = Config::make_members(&sim, 5, 3, false, false, raft::Config::default());
    cfg.begin("membership: joint consensus replaces two servers at once");
    cfg.one(cfg.rand_int(), 3, true).await;
    cfg.change_membership(ConfChange::AddLearner(3), 3).await;
    cfg.change_membership(ConfChange::AddLearner(4), 4).await;
    cfg.one(cfg.rand_int(), 5, true).await;
    let c_new: BTreeSet<u64> = [0, 3, 4].into();
    cfg.change_membership(
        ConfChange::EnterJoint {
            voters: c_new.clone(),
            learners: BTreeSet::new(),
        },
        5,
    )
    .await;
    // C_new without 3 and 4 has no majority, though C_old has all three: nothing commits, and (with
    // CheckQuorum) the leader steps down, and no one is elected.
    let leader = cfg.check_one_leader().await;
    cfg.crash1(3);
    cfg.crash1(4);
    let (index, _, ok) = cfg.start(leader, &cfg.rand_int().into());
    assert!(ok, "the leader takes the command");
    cfg.sleep_ms(3000).await;
    let (n, _) = cfg.n_committed(index);
    if n > 0 {
        fatal(format!(
            "{n} committed index {index} while joint without a majority of C_new"
        ));
    }
    cfg.check_no_leader();
    for i in [3, 4] {
        cfg.start1(i);
        cfg.connect(i);
    }
    cfg.one(cfg.rand_int(), 5, true).await;
    // Nor does a majority of C_new without one of C_old: with 1 and 2 down, only 0 of C_old is up. (The
    // leadership goes to 0 first, which both halves keep.)
    cfg.transfer_leader(0).await;
    cfg.crash1(1);
    cfg.crash1(2);
    let (index, _, ok) = cfg.start(0, &cfg.rand_int().into());
    assert!(ok, "the leader takes the command");
    cfg.sleep_ms(3000).await;
    let (n, _) = cfg.n_committed(index);
    if n > 0 {
        fatal(format!(
            "{n} committed index {index} while joint without a majority of C_old"
        ));
    }
    for i in [1, 2] {
        cfg.start1(i);
        cfg.connect(i);
    }
    cfg.one(cfg.rand_int(), 5, true).await;
    // The leader may be one that C_new leaves out: then it alone applies C_new before it steps down.
    cfg.change_membership(ConfChange::LeaveJoint, 1).await;
    cfg.crash1(1);
    cfg.crash1(2);
    cfg.one(cfg.rand_int(), 3, true).await;
    let leader = cfg.check_one_leader().await;
    assert!(!cfg.membership(leader).0.is_joint());
    assert!(c_new.contains(&(leader as u64)));
    cfg.end();
    cfg.cleanup();
}

/// The leadership moves to each server in turn on an unreliable network, and commands commit after each
/// hand-over.
async fn transfer_leadership(sim: Sim) {
    let cfg = Config::make_members(&sim, 3, 3, true, false, raft::Config::default());
    cfg.begin("leadership transfer, on an unreliable network");
    for _ in 0..4 {
        let leader = cfg.check_one_leader().await;
        let target = (leader + 1) % 3;
        cfg.transfer_leader(target).await;
        cfg.one(cfg.rand_int(), 3, true).await;
    }
    cfg.end();
    cfg.cleanup();
}

/// A leader takes one membership change at a time: a second one before the first commits is refused.
async fn one_change_at_a_time(sim: Sim) {
    let cfg = Config::make_members(&sim, 5, 3, false, false, raft::Config::default());
    cfg.begin("membership: one change at a time");
    cfg.one(cfg.rand_int(), 3, true).await;
    let leader = cfg.check_one_leader().await;
    cfg.start_change(leader, ConfChange::AddLearner(3))
        .unwrap_or_else(|e| fatal(format!("the first change was refused: {e}")));
    match cfg.start_change(leader, ConfChange::AddLearner(4)) {
        Err(ConfChangeRefused::ChangePending) => {}
        other => fatal(format!(
            "a second change before the first committed: {other:?}"
        )),
    }
    cfg.one(cfg.rand_int(), 4, true).await;
    cfg.change_membership(ConfChange::AddLearner(4), 5).await;
    cfg.end();
    cfg.cleanup();
}

/// A new leader changes the configuration only once it has committed an entry of its term (Ongaro's fix of
/// the single-server change bug, raft-dev 2015); before that, it refuses.
async fn no_change_before_a_commit_in_the_term(sim: Sim) {
    let cfg = Config::make_members(&sim, 4, 3, false, false, raft::Config::default());
    cfg.begin("membership: no change before a commit in the leader's term");
    cfg.one(cfg.rand_int(), 3, true).await;
    let old = cfg.check_one_leader().await;
    cfg.crash1(old);
    let leader = cfg.check_one_leader().await;
    // The lab's leaders append no empty entry: nothing of the new term commits before a command does.
    match cfg.start_change(leader, ConfChange::AddLearner(3)) {
        Err(ConfChangeRefused::NoCommitInTerm) => {}
        other => fatal(format!(
            "a change before the leader committed in its term: {other:?}"
        )),
    }
    cfg.one(cfg.rand_int(), 2, true).await;
    cfg.change_membership(ConfChange::AddLearner(3), 2).await;
    cfg.start1(old);
    cfg.connect(old);
    cfg.one(cfg.rand_int(), 4, true).await;
    cfg.end();
    cfg.cleanup();
}

/// A change that a cut-off leader appended, and that never committed, is undone when the next leader's
/// entries replace it: the server goes back to the configuration before it.
async fn an_uncommitted_change_is_undone(sim: Sim) {
    let cfg = Config::make_members(&sim, 4, 3, false, false, raft::Config::default());
    cfg.begin("membership: an uncommitted change is truncated and undone");
    cfg.one(cfg.rand_int(), 3, true).await;
    let old = cfg.check_one_leader().await;
    let before = cfg.membership(old).0;
    cfg.disconnect(old);
    cfg.start_change(old, ConfChange::AddLearner(3))
        .unwrap_or_else(|e| fatal(format!("the cut-off leader refused the change: {e}")));
    assert_ne!(cfg.membership(old).0, before, "in force once appended");
    cfg.check_one_leader().await;
    cfg.one(cfg.rand_int(), 2, true).await;
    cfg.connect(old);
    cfg.one(cfg.rand_int(), 3, true).await;
    let (now, committed) = cfg.membership(old);
    if now != before || !committed {
        fatal(format!(
            "server {old} kept the truncated change: {} (committed: {committed})",
            super::cmd::Cmd::config(&now)
        ));
    }
    cfg.end();
    cfg.cleanup();
}

/// The membership tests, and the leadership transfer's.
pub const TESTS: [LabTest; 9] = [
    LabTest {
        go_name: "MembershipJoinAndPromote",
        name: "membership_join_and_promote",
        part: "ext",
        body: |sim| Box::pin(join_and_promote(sim)),
    },
    LabTest {
        go_name: "MembershipRemoveTheLeader",
        name: "membership_remove_the_leader_and_shrink",
        part: "ext",
        body: |sim| Box::pin(remove_the_leader_and_shrink(sim)),
    },
    LabTest {
        go_name: "MembershipReplace",
        name: "membership_replace_under_loss_and_crashes",
        part: "ext",
        body: |sim| Box::pin(replace_under_loss_and_crashes(sim)),
    },
    LabTest {
        go_name: "MembershipLearner",
        name: "membership_a_learner_neither_votes_nor_counts",
        part: "ext",
        body: |sim| Box::pin(a_learner_neither_votes_nor_counts(sim)),
    },
    LabTest {
        go_name: "MembershipJoint",
        name: "membership_joint_consensus_replaces_two",
        part: "ext",
        body: |sim| Box::pin(joint_consensus_replaces_two(sim)),
    },
    LabTest {
        go_name: "MembershipOneAtATime",
        name: "membership_one_change_at_a_time",
        part: "ext",
        body: |sim| Box::pin(one_change_at_a_time(sim)),
    },
    LabTest {
        go_name: "MembershipNoChangeBeforeCommitInTerm",
        name: "membership_no_change_before_a_commit_in_the_term",
        part: "ext",
        body: |sim| Box::pin(no_change_before_a_commit_in_the_term(sim)),
    },
    LabTest {
        go_name: "MembershipUncommittedChangeUndone",
        name: "membership_an_uncommitted_change_is_undone",
        part: "ext",
        body: |sim| Box::pin(an_uncommitted_change_is_undone(sim)),
    },
    LabTest {
        go_name: "TransferLeadership",
        name: "transfer_leadership",
        part: "ext",
        body: |sim| Box::pin(transfer_leadership(sim)),
    },
];
