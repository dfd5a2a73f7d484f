//! §5.3 Log replication: proposals, batching, pipelining, and the message counts the lab tester bounds.

mod common;

use common::{appended_entries, count_appends, log_terms, Cluster};
use raft::{Config, Message, NotLeader};

#[test]
fn propose_on_a_follower_is_refused_with_a_leader_hint() {
    let mut c = Cluster::new(3);
    assert_eq!(
        c.nodes[1].propose(b"x".to_vec()),
        Err(NotLeader { leader: None })
    );
    c.elect(0);
    assert_eq!(
        c.nodes[1].propose(b"x".to_vec()),
        Err(NotLeader { leader: Some(0) })
    );
    assert!(c.node(1).log().is_empty());
}

#[test]
fn first_command_gets_index_one_and_no_noop_is_appended() {
    let mut c = Cluster::new(3);
    c.elect(0);
    assert!(
        c.node(0).log().is_empty(),
        "a new leader must not append a no-op"
    );
    let ((index, term), _) = c.propose(0, "a");
    assert_eq!((index, term), (1, 1));
    let ((index, _), _) = c.propose(0, "b");
    assert_eq!(index, 2);
}

#[test]
fn entry_replicates_commits_and_applies_everywhere() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    assert_eq!(
        count_appends(&msgs),
        2,
        "the entry goes out at once to caught-up followers"
    );
    c.deliver_all(msgs);
    assert_eq!(c.node(0).commit_index(), 1);
    assert_eq!(c.applied[0], vec![(1, 1, b"a".to_vec())]);
    for i in 1..3 {
        assert_eq!(log_terms(c.node(i)), vec![1]);
        assert_eq!(
            c.node(i).commit_index(),
            0,
            "followers learn the commit later"
        );
    }
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    for i in 0..3 {
        assert_eq!(c.node(i).commit_index(), 1);
        assert_eq!(c.applied[i], vec![(1, 1, b"a".to_vec())], "node {i}");
    }
    // Applies are handed out exactly once.
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.applied[1].len(), 1);
}

#[test]
fn twelve_proposals_cost_one_append_per_follower_each() {
    // The lab's TestCount2B: 12 Starts on 3 servers must take at most ~42 RPCs. Replies must not trigger
    // extra AppendEntries in steady state.
    let mut c = Cluster::new(3);
    c.elect(0);
    let mut requests = 0;
    for i in 0..12 {
        let (_, msgs) = c.propose(0, &format!("cmd{i}"));
        let mut queue = msgs;
        while let Some(m) = queue.pop() {
            requests += usize::from(m.message.is_request());
            queue.extend(c.deliver(m));
        }
    }
    assert_eq!(requests, 24);
    assert_eq!(c.node(0).commit_index(), 12);
}

#[test]
fn pipelined_proposals_are_sent_before_replies_arrive() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let mut all = Vec::new();
    for i in 0..5 {
        let (_, msgs) = c.propose(0, &format!("{i}"));
        assert_eq!(count_appends(&msgs), 2);
        assert_eq!(
            appended_entries(&msgs),
            2,
            "each message carries only the new entry"
        );
        all.extend(msgs);
    }
    let delivered = c.deliver_all(all);
    assert_eq!(delivered, 20, "10 requests and 10 replies, nothing more");
    assert_eq!(c.node(0).commit_index(), 5);
}

#[test]
fn heartbeats_carry_no_entries_once_followers_have_them() {
    // The lab's TestRPCBytes2B: each entry should cross the wire about once per follower.
    let mut c = Cluster::new(3);
    c.elect(0);
    for i in 0..10 {
        let (_, msgs) = c.propose(0, &format!("{i}"));
        c.deliver_all(msgs);
    }
    for _ in 0..5 {
        let hb = c.heartbeat(0);
        assert_eq!(count_appends(&hb), 2);
        assert_eq!(appended_entries(&hb), 0);
        c.deliver_all(hb);
    }
}

#[test]
fn a_lagging_follower_is_caught_up_in_batches() {
    let config = Config {
        max_entries_per_message: 4,
        ..common::figure2_config()
    };
    let mut c = Cluster::with_config(3, config);
    c.elect(0);
    // Node 2 is unreachable while ten entries commit.
    for i in 0..10 {
        let (_, msgs) = c.propose(0, &format!("{i}"));
        c.deliver_all_where(msgs, |m| m.to != 2 && m.from != 2);
    }
    assert_eq!(c.node(0).commit_index(), 10);
    assert!(c.node(2).log().is_empty());
    // One heartbeat round: rejection, then batches of at most four until node 2 has everything.
    let hb = c.heartbeat(0);
    let mut queue = hb;
    let mut batches = Vec::new();
    while !queue.is_empty() {
        let m = queue.remove(0);
        if let Message::AppendEntries(a) = &m.message {
            if m.to == 2 && !a.entries.is_empty() {
                assert!(a.entries.len() <= 4);
                batches.push(a.entries.len());
            }
        }
        queue.extend(c.deliver(m));
    }
    assert_eq!(batches, vec![4, 4, 2]);
    assert_eq!(c.node(2).log(), c.node(0).log());
}

#[test]
fn a_lost_append_is_repaired_by_the_next_message() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, lost) = c.propose(0, "a");
    c.deliver_all_where(lost, |m| m.to != 2);
    // Node 2 missed index 1; the append for index 2 is rejected and the leader backs up at once.
    let (_, msgs) = c.propose(0, "b");
    c.deliver_all(msgs);
    assert_eq!(log_terms(c.node(2)), vec![1, 1]);
    // The same holds when the last append is lost and nothing else is proposed: the heartbeat repairs it.
    let (_, lost) = c.propose(0, "c");
    c.deliver_all_where(lost, |m| m.to != 2);
    assert_eq!(c.node(2).last_index(), 2);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.node(2).last_index(), 3);
}

#[test]
fn a_lost_reply_does_not_cause_a_resend() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    // Replies from node 2 are lost.
    c.deliver_all_where(msgs, |m| m.from != 2);
    assert_eq!(c.node(0).progress(2), Some((2, 0)));
    let hb = c.heartbeat(0);
    assert_eq!(
        appended_entries(&hb),
        0,
        "the entry is not resent while it may be in flight"
    );
    c.deliver_all(hb);
    assert_eq!(
        c.node(0).progress(2),
        Some((2, 1)),
        "the heartbeat's reply acknowledges it"
    );
}

#[test]
fn replies_late_duplicated_or_from_old_terms_are_harmless() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    let reply = c.deliver(msgs.iter().find(|m| m.to == 1).unwrap().clone());
    c.deliver(reply[0].clone());
    assert_eq!(c.node(0).commit_index(), 1);
    let (_, msgs2) = c.propose(0, "b");
    c.deliver_all(msgs2);
    // The old reply, delivered twice more, changes nothing and sends nothing.
    assert!(c.deliver(reply[0].clone()).is_empty());
    assert!(c.deliver(reply[0].clone()).is_empty());
    assert_eq!(c.node(0).progress(1), Some((3, 2)));
    // A new leader ignores replies addressed to its predecessor's term.
    c.elect(1);
    let old = reply[0].clone();
    let stale = raft::Envelope {
        from: 1,
        to: 0,
        seq: 0,
        message: old.message,
    };
    assert!(c.deliver(stale).is_empty());
}
