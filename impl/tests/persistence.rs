//! §5.1/Figure 2 persistence: current_term, voted_for and the log are made durable before any message that
//! depends on them is released, and a restarted server resumes from exactly that state.

mod common;

use common::{entry, log_terms, Cluster};
use raft::{
    Config, ConfigError, Envelope, Membership, Message, Node, PersistentState, RequestVote, Role,
};

#[test]
fn a_new_term_and_vote_are_persisted_with_the_request_votes() {
    let mut node = Node::new(0, &[0, 1, 2], common::figure2_config(), None, None, 3).unwrap();
    while node.role() == Role::Follower {
        node.tick();
    }
    assert!(node.has_ready());
    let ready = node.ready();
    let state = ready.persist().expect("term and vote changed");
    assert_eq!((state.current_term, state.voted_for), (1, Some(0)));
    let released = ready.persisted();
    assert_eq!(released.messages.len(), 2);
    assert!(!node.has_ready());
}

#[test]
fn granting_a_vote_is_persisted_before_the_reply() {
    let mut node = Node::new(1, &[0, 1, 2], common::figure2_config(), None, None, 3).unwrap();
    let request = Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::RequestVote(RequestVote {
            term: 5,
            candidate_id: 0,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        }),
    };
    node.step(request.clone()).unwrap();
    let ready = node.ready();
    assert_eq!(
        ready.persist(),
        Some(&PersistentState {
            current_term: 5,
            voted_for: Some(0),
            last_included_index: 0,
            last_included_term: 0,
            membership: Membership::of_voters([0, 1, 2]),
            log: vec![]
        })
    );
    assert_eq!(ready.persisted().messages.len(), 1);
    // The same request again: the vote is repeated, nothing new to persist.
    node.step(request).unwrap();
    let ready = node.ready();
    assert!(ready.persist().is_none());
    assert_eq!(ready.persisted().messages.len(), 1);
}

#[test]
fn appended_entries_are_persisted_before_the_acknowledgement() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    // The leader persists its own entry before sending it (checked by the harness on every release).
    assert_eq!(c.disk[0].as_ref().unwrap().log, vec![entry(1, "a")]);
    let to1 = msgs.into_iter().find(|m| m.to == 1).unwrap();
    c.nodes[1].step(to1).unwrap();
    let ready = c.nodes[1].ready();
    assert_eq!(ready.persist().unwrap().log, vec![entry(1, "a")]);
}

#[test]
fn heartbeats_without_changes_persist_nothing() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let hb = c.heartbeat(0);
    for m in hb {
        let to = m.to as usize;
        c.nodes[to].step(m).unwrap();
        let ready = c.nodes[to].ready();
        assert!(
            ready.persist().is_none(),
            "a heartbeat changed nothing durable"
        );
        let _ = ready.persisted();
    }
}

#[test]
fn a_restarted_server_keeps_its_vote() {
    let mut c = Cluster::new(3);
    let votes0 = c.campaign(0);
    let votes1 = c.campaign(1);
    c.deliver(votes0.into_iter().find(|m| m.to == 2).unwrap());
    c.restart(2);
    assert_eq!((c.node(2).term(), c.node(2).voted_for()), (1, Some(0)));
    let reply = c.deliver(votes1.into_iter().find(|m| m.to == 2).unwrap());
    match &reply[0].message {
        Message::RequestVoteReply(r) => {
            assert!(!r.vote_granted, "voted twice in term 1 after a restart")
        }
        m => panic!("unexpected {m:?}"),
    }
}

#[test]
fn a_restarted_server_keeps_its_log_and_applies_again_from_index_one() {
    let mut c = Cluster::new(3);
    c.elect(0);
    for i in 0..3 {
        let (_, msgs) = c.propose(0, &format!("{i}"));
        c.deliver_all(msgs);
    }
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.applied[1].len(), 3);
    c.restart(1);
    assert_eq!(log_terms(c.node(1)), vec![1, 1, 1]);
    assert_eq!(c.node(1).term(), 1);
    assert_eq!((c.node(1).commit_index(), c.node(1).last_applied()), (0, 0));
    assert_eq!(c.node(1).role(), Role::Follower);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.node(1).commit_index(), 3);
    assert_eq!(
        c.applied[1].iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn a_restarted_leader_comes_back_as_a_follower_and_a_new_leader_takes_over() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    c.deliver_all(msgs);
    c.restart(0);
    assert_eq!(c.node(0).role(), Role::Follower);
    assert_eq!(c.node(0).voted_for(), Some(0));
    c.elect(1);
    let (idx, msgs) = c.propose(1, "b");
    assert_eq!(idx, (2, 2));
    c.deliver_all(msgs);
    assert_eq!(c.node(1).commit_index(), 2);
    assert_eq!(log_terms(c.node(0)), vec![1, 2]);
}

#[test]
fn only_the_server_that_persisted_the_last_commit_can_win() {
    // The lab's TestPersist32C in miniature: node 0 restarts with entry 2 from disk; node 2 never got it.
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    c.deliver_all(msgs);
    let (_, msgs) = c.propose(0, "b");
    c.deliver_all_where(msgs, |m| m.to != 2 && m.from != 2);
    assert_eq!(c.node(0).commit_index(), 2);
    c.restart(0);
    c.restart(1);
    let votes = c.campaign(2);
    c.deliver_all(votes);
    assert!(!c.node(2).is_leader(), "node 2 lacks a committed entry");
    c.elect(0);
    assert_eq!(c.node(0).last_index(), 2);
}

#[test]
fn invalid_persisted_state_is_refused() {
    let config = common::figure2_config();
    // A server that both votes and learns.
    let bad_membership = PersistentState {
        current_term: 1,
        membership: Membership {
            learners: [1].into(),
            ..Membership::of_voters([0, 1])
        },
        ..PersistentState::default()
    };
    assert!(matches!(
        Node::new(0, &[0, 1], config.clone(), Some(bad_membership), None, 0),
        Err(ConfigError::InvalidPersistedState(_))
    ));
    let bad_config_entry = PersistentState {
        current_term: 1,
        log: vec![raft::Entry::config(1, Membership::default())],
        ..PersistentState::default()
    };
    assert!(matches!(
        Node::new(0, &[0, 1], config.clone(), Some(bad_config_entry), None, 0),
        Err(ConfigError::InvalidPersistedState(_))
    ));
    let future_entry = PersistentState {
        current_term: 1,
        voted_for: None,
        last_included_index: 0,
        last_included_term: 0,
        membership: Membership::default(),
        log: vec![entry(2, "")],
    };
    assert!(Node::new(0, &[0, 1], config.clone(), Some(future_entry), None, 0).is_err());
    let decreasing = PersistentState {
        current_term: 3,
        voted_for: None,
        last_included_index: 0,
        last_included_term: 0,
        membership: Membership::default(),
        log: vec![entry(3, ""), entry(2, "")],
    };
    assert!(Node::new(0, &[0, 1], config.clone(), Some(decreasing), None, 0).is_err());
    assert_eq!(
        Node::new(5, &[0, 1], config.clone(), None, None, 0).err(),
        Some(ConfigError::SelfNotInPeers(5))
    );
    assert_eq!(
        Node::new(0, &[0, 1, 1], config.clone(), None, None, 0).err(),
        Some(ConfigError::DuplicatePeer(1))
    );
    let bad_timing = Config {
        election_ticks_min: 10,
        election_ticks_max: 10,
        ..config
    };
    assert!(Node::new(0, &[0, 1], bad_timing, None, None, 0).is_err());
}

#[test]
fn ready_says_where_the_log_changed_for_incremental_persistence() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let ready = |node: &mut Node| {
        let ready = node.ready();
        let from = ready.log_changed_from();
        let _ = ready.persisted();
        from
    };
    assert_eq!(
        ready(&mut c.nodes[0]),
        None,
        "an election does not touch the log"
    );
    c.nodes[0].propose(b"a".to_vec()).unwrap();
    c.nodes[0].propose(b"b".to_vec()).unwrap();
    assert_eq!(ready(&mut c.nodes[0]), Some(1));
    c.nodes[0].propose(b"c".to_vec()).unwrap();
    assert_eq!(ready(&mut c.nodes[0]), Some(3));
    assert_eq!(ready(&mut c.nodes[0]), None);

    // A follower overwriting a conflicting suffix reports the first overwritten index.
    let state = PersistentState {
        current_term: 2,
        voted_for: None,
        last_included_index: 0,
        last_included_term: 0,
        membership: Membership::default(),
        log: vec![entry(1, ""), entry(2, ""), entry(2, "")],
    };
    let mut follower =
        Node::new(1, &[0, 1], common::figure2_config(), Some(state), None, 0).unwrap();
    let append = Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::AppendEntries(raft::AppendEntries {
            term: 3,
            leader_id: 0,
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![entry(2, ""), entry(3, "")],
            leader_commit: 0,
            read_round: 0,
        }),
    };
    follower.step(append.clone()).unwrap();
    assert_eq!(ready(&mut follower), Some(3));
    follower.step(append).unwrap();
    assert_eq!(ready(&mut follower), None, "a duplicate changes nothing");
}
