//! Membership changes in the core: configuration entries take effect when appended, learners get the log but
//! neither vote nor count, one change at a time and only after a commit in the leader's term, joint consensus,
//! a removed leader steps down, and the configuration survives truncation, restarts and snapshots.

mod common;

use common::Cluster;
use raft::{ConfChange, ConfChangeRefused, Membership, MembershipError, Message, NotLeader, Role};

/// A cluster of three in which node 0 leads and has committed an entry of its term.
fn led_by_0() -> Cluster {
    let mut c = Cluster::new(3);
    for i in 0..3 {
        c.ready(i);
    }
    c.elect(0);
    let (_, sent) = c.propose(0, "a");
    c.deliver_all(sent);
    assert!(c.node(0).committed_in_term());
    c
}

/// Node 0 proposes `change`, and the change and every message it causes (heartbeats included) are delivered.
fn change(c: &mut Cluster, change: ConfChange) {
    c.nodes[0].propose_conf_change(change).unwrap();
    let sent = c.ready(0);
    c.deliver_all(sent);
    let sent = c.heartbeat(0);
    c.deliver_all(sent);
}

fn voters(ids: &[u64]) -> Membership {
    Membership::of_voters(ids.iter().copied())
}

#[test]
fn a_learner_gets_the_log_but_neither_votes_nor_counts() {
    let mut c = led_by_0();
    let learner = c.join();
    assert_eq!(c.node(learner).membership(), &Membership::default());
    assert_eq!(
        c.nodes[0].propose_conf_change(ConfChange::AddLearner(3)),
        Ok((2, 1))
    );
    // In force on the leader at once, before it commits.
    assert!(c.node(0).membership().learners.contains(&3));
    assert_eq!(c.node(0).commit_index(), 1);
    let sent = c.ready(0);
    c.deliver_all(sent);
    let sent = c.heartbeat(0);
    c.deliver_all(sent);
    assert_eq!(c.node(0).commit_index(), 2);
    assert_eq!(c.node(learner).last_index(), 2, "the learner has the log");
    assert_eq!(c.node(learner).membership(), c.node(0).membership());
    assert_eq!(c.node(learner).peers(), &[0, 1, 2, 3]);

    // It never stands for election.
    for _ in 0..10 * c.config.election_ticks_max {
        c.nodes[learner].tick();
    }
    assert_eq!(c.node(learner).role(), Role::Follower);
    assert!(c.ready(learner).is_empty());

    // Nor is it asked for its vote, nor counted for a commit.
    let votes = c.campaign(1);
    assert_eq!(
        votes.iter().map(|m| m.to).collect::<Vec<_>>(),
        vec![0, 2],
        "only voters are asked"
    );
    c.deliver_all(votes);
    assert!(c.node(1).is_leader());
    let (_, sent) = c.propose(1, "b");
    c.deliver_all_where(sent, |m| m.to != 2 && m.from != 2);
    assert_eq!(c.node(1).commit_index(), 3, "1 and 0 hold entry 3");
    let ((index, _), sent) = c.propose(1, "c");
    c.deliver_all_where(sent, |m| m.to == 3 || m.from == 3);
    assert!(
        c.node(1).commit_index() < index,
        "the learner's copy does not count"
    );
}

#[test]
fn a_promoted_learner_counts_towards_the_majority() {
    let mut c = led_by_0();
    c.join();
    change(&mut c, ConfChange::AddLearner(3));
    change(&mut c, ConfChange::Promote(3));
    assert_eq!(c.node(3).membership(), &voters(&[0, 1, 2, 3]));
    assert_eq!(c.node(0).commit_index(), 3);
    // Four voters: 0 and 3 are not a majority; 0, 1 and 3 are.
    let ((index, _), sent) = c.propose(0, "b");
    c.deliver_all_where(sent.clone(), |m| m.to == 3 || m.from == 3);
    assert!(c.node(0).commit_index() < index);
    c.deliver_all_where(sent, |m| m.to == 1 || m.from == 1);
    assert_eq!(c.node(0).commit_index(), index);
}

#[test]
fn a_removed_leader_leads_until_the_change_commits_then_steps_down() {
    let mut c = led_by_0();
    let (index, term) = c.nodes[0]
        .propose_conf_change(ConfChange::Remove(0))
        .unwrap();
    assert_eq!((index, term), (2, 1));
    assert!(c.node(0).is_leader(), "it keeps leading meanwhile");
    let sent = c.ready(0);
    // Without counting itself: one of {1, 2} is not a majority of them.
    c.deliver_all_where(sent.clone(), |m| m.to == 1 || m.from == 1);
    assert!(c.node(0).is_leader() && c.node(0).commit_index() < index);
    c.deliver_all_where(sent, |m| m.to == 2 || m.from == 2);
    assert_eq!(c.node(0).commit_index(), index);
    assert_eq!(c.node(0).role(), Role::Follower, "it handed over");
    // It no longer votes, so it never stands again; 1 and 2 elect a leader between them.
    for _ in 0..10 * c.config.election_ticks_max {
        c.nodes[0].tick();
    }
    assert!(c.ready(0).is_empty());
    let sent = c.heartbeat(0);
    assert!(sent.is_empty());
    c.elect(1);
    let (_, sent) = c.propose(1, "b");
    c.deliver_all(sent);
    assert_eq!(c.node(1).commit_index(), 3);
}

#[test]
fn changes_are_refused_one_at_a_time_and_before_a_commit_in_the_term() {
    let mut c = Cluster::new(3);
    c.elect(0);
    assert_eq!(
        c.nodes[0].propose_conf_change(ConfChange::AddLearner(3)),
        Err(ConfChangeRefused::NoCommitInTerm)
    );
    let (_, sent) = c.propose(0, "a");
    c.deliver_all(sent);
    assert_eq!(
        c.nodes[1].propose_conf_change(ConfChange::AddLearner(3)),
        Err(ConfChangeRefused::NotLeader(NotLeader { leader: Some(0) }))
    );
    assert_eq!(
        c.nodes[0].propose_conf_change(ConfChange::AddVoter(1)),
        Err(ConfChangeRefused::Invalid(MembershipError::NotApplicable(
            1
        )))
    );
    assert_eq!(
        c.nodes[0].propose_conf_change(ConfChange::LeaveJoint),
        Err(ConfChangeRefused::Invalid(MembershipError::NotOneStep))
    );
    c.nodes[0]
        .propose_conf_change(ConfChange::AddLearner(3))
        .unwrap();
    assert_eq!(
        c.nodes[0].propose_conf_change(ConfChange::AddLearner(4)),
        Err(ConfChangeRefused::ChangePending)
    );
    assert!(
        c.node(0).log().len() == 2,
        "refusals append nothing: {:?}",
        c.node(0).log()
    );
}

#[test]
fn while_joint_both_majorities_are_needed_and_the_old_leader_leaves_with_c_old() {
    let mut c = led_by_0();
    c.join();
    c.nodes[0]
        .propose_conf_change(ConfChange::EnterJoint {
            voters: [1, 2, 3].into(),
            learners: Default::default(),
        })
        .unwrap();
    assert!(c.node(0).membership().is_joint());
    let sent = c.ready(0);
    c.deliver_all(sent);
    let sent = c.heartbeat(0);
    c.deliver_all(sent);
    assert_eq!(c.node(0).commit_index(), 2, "C_old,new committed");
    // Acknowledged by 0 and 3: C_old has only 0, C_new only 3.
    let ((index, _), sent) = c.propose(0, "b");
    c.deliver_all_where(sent.clone(), |m| m.to == 3 || m.from == 3);
    assert!(c.node(0).commit_index() < index);
    // And 1: a majority of each ({0, 1} of C_old, {1, 3} of C_new).
    c.deliver_all_where(sent, |m| m.to == 1 || m.from == 1);
    assert_eq!(c.node(0).commit_index(), index);
    // Out of the joint configuration: 0 is not in C_new, so it steps down once C_new commits.
    change(&mut c, ConfChange::LeaveJoint);
    assert_eq!(c.node(3).membership(), &voters(&[1, 2, 3]));
    assert_eq!(c.node(0).role(), Role::Follower);
}

#[test]
fn while_joint_a_majority_of_c_new_alone_commits_nothing() {
    let mut c = led_by_0();
    c.join();
    c.join();
    let (index, _) = c.nodes[0]
        .propose_conf_change(ConfChange::EnterJoint {
            voters: [0, 3, 4].into(),
            learners: Default::default(),
        })
        .unwrap();
    let sent = c.ready(0);
    let sent = [sent, c.heartbeat(0)].concat();
    // 0, 3 and 4 hold C_old,new: all of C_new, one of C_old.
    c.deliver_all_where(sent.clone(), |m| m.to >= 3 || m.from >= 3);
    assert_eq!(c.node(3).last_index(), index);
    assert!(c.node(0).commit_index() < index);
    c.deliver_all_where(sent, |m| m.to == 1 || m.from == 1);
    assert_eq!(c.node(0).commit_index(), index);
}

#[test]
fn a_configuration_entry_truncated_from_the_log_gives_way_to_the_one_before() {
    let mut c = led_by_0();
    c.join();
    c.nodes[0]
        .propose_conf_change(ConfChange::AddLearner(3))
        .unwrap();
    let _lost = c.ready(0);
    assert_eq!(c.node(0).peers(), &[0, 1, 2, 3]);
    // Node 1 leads term 2 without the entry, and overwrites it on node 0.
    c.elect(1);
    assert_eq!(c.node(1).peers(), &[0, 1, 2]);
    let (_, sent) = c.propose(1, "b");
    c.deliver_all(sent);
    assert_eq!(c.node(0).log()[1], common::entry(2, "b"));
    assert_eq!(c.node(0).membership(), &voters(&[0, 1, 2]));
    assert_eq!(c.node(0).peers(), &[0, 1, 2]);
}

#[test]
fn the_configuration_survives_restarts_and_travels_in_snapshots() {
    let mut c = led_by_0();
    c.join();
    change(&mut c, ConfChange::AddLearner(3));
    let with_3 = c.node(0).membership().clone();
    c.restart(1);
    assert_eq!(c.node(1).membership(), &with_3, "from the log");
    let (_, sent) = c.propose(0, "b");
    c.deliver_all(sent);
    let sent = c.heartbeat(0);
    c.deliver_all(sent);
    for i in 0..4 {
        c.snapshot(i);
        c.ready(i);
    }
    c.restart(3);
    assert_eq!(c.node(3).last_included_index(), 3);
    assert_eq!(c.node(3).membership(), &with_3, "from the snapshot");

    // A new server gets the leader's snapshot, with the configuration at its index, then the entry that
    // added it.
    let joined = c.join();
    change(&mut c, ConfChange::AddLearner(4));
    assert_eq!(c.installed[joined], vec![(3, 1)]);
    assert_eq!(
        c.disk[joined].as_ref().map(|d| &d.membership),
        Some(&with_3)
    );
    assert_eq!(c.node(joined).membership(), c.node(0).membership());
    assert!(c.node(joined).membership().learners.contains(&4));
    c.restart(joined);
    assert_eq!(c.node(joined).membership(), c.node(0).membership());
}

#[test]
fn a_server_outside_the_configuration_is_answered() {
    let mut c = Cluster::new(3);
    c.ready(0);
    let request = raft::Envelope {
        from: 9,
        to: 0,
        seq: 0,
        message: Message::RequestVote(raft::RequestVote {
            term: 1,
            candidate_id: 9,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        }),
    };
    c.nodes[0].step(request).unwrap();
    let sent = c.ready(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, 9);
    assert_eq!(c.node(0).voted_for(), Some(9));
}
