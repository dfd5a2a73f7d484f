//! §5.3 Log replication: proposals, batching, pipelining, and the message counts the lab tester bounds.

mod common;

use common::{appended_entries, count_appends, log_terms, Cluster};
use raft::{Config, ConfigError, Envelope, Message, Node, NotLeader};

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

/// The entries each AppendEntries to `to` among `messages` carries, in order (heartbeats included, as 0).
fn entries_to(messages: &[Envelope], to: u64) -> Vec<usize> {
    messages
        .iter()
        .filter(|m| m.to == to)
        .filter_map(|m| match &m.message {
            Message::AppendEntries(a) => Some(a.entries.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_batch_of_proposals_goes_to_each_follower_in_one_append() {
    let mut c = Cluster::new(3);
    c.elect(0);
    c.propose(0, "a");
    let commands: Vec<Vec<u8>> = (0..5).map(|i| format!("b{i}").into_bytes()).collect();
    let first = c.nodes[0].propose_batch(commands.clone()).unwrap();
    assert_eq!(first, (2, 1), "the batch follows the entry before it");
    let msgs = c.ready(0);
    // The first proposal's append is still unanswered: the batch is a second message in flight.
    assert_eq!(entries_to(&msgs, 1), vec![5]);
    assert_eq!(entries_to(&msgs, 2), vec![5]);
    c.deliver_all(msgs);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    for i in 0..3 {
        assert_eq!(c.node(i).commit_index(), 6);
        let logged: Vec<Vec<u8>> = c.node(i).log()[1..]
            .iter()
            .map(|e| match &e.payload {
                raft::Payload::Command(c) => c.clone(),
                raft::Payload::Config(_) => panic!("a configuration entry"),
            })
            .collect();
        assert_eq!(logged, commands, "node {i} holds the batch in order");
    }
    // An empty batch appends nothing and names the next index.
    assert_eq!(c.nodes[0].propose_batch(Vec::new()), Ok((7, 1)));
    assert_eq!(c.node(0).last_index(), 6);
}

#[test]
fn a_batch_is_refused_whole_by_a_follower() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let refused = c.nodes[1].propose_batch(vec![b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(refused, Err(NotLeader { leader: Some(0) }));
    assert!(c.node(1).log().is_empty());
    assert!(c.ready(1).is_empty());
}

#[test]
fn flow_control_holds_entries_back_while_the_window_is_full() {
    let config = Config {
        max_inflight_messages: 2,
        ..common::figure2_config()
    };
    let mut c = Cluster::with_config(3, config);
    c.elect(0);
    // Node 2 receives nothing for now: its messages are held.
    let mut held = Vec::new();
    for i in 0..6 {
        let (_, msgs) = c.propose(0, &format!("{i}"));
        let (to_2, rest): (Vec<_>, Vec<_>) = msgs.into_iter().partition(|m| m.to == 2);
        held.extend(to_2);
        c.deliver_all(rest);
    }
    assert_eq!(c.node(0).commit_index(), 6, "node 1 acknowledged them all");
    assert_eq!(
        entries_to(&held, 2),
        vec![1, 1],
        "two messages of entries in flight to node 2, and no more"
    );
    // The heartbeat still goes to node 2, without entries, after the last entry sent to it.
    let hb = c.heartbeat(0);
    assert_eq!(entries_to(&hb, 2), vec![0]);
    let (to_2, rest): (Vec<_>, Vec<_>) = hb.into_iter().partition(|m| m.to == 2);
    c.deliver_all(rest);
    // Node 2 gets the held messages and the heartbeat: the first answer frees a place in the window, and
    // the four entries held back go out together, in one message.
    held.extend(to_2);
    let mut sent_to_2 = Vec::new();
    let mut queue = held;
    while !queue.is_empty() {
        let m = queue.remove(0);
        let more = c.deliver(m);
        sent_to_2.extend(entries_to(&more, 2));
        queue.extend(more);
    }
    assert_eq!(sent_to_2, vec![4]);
    assert_eq!(c.node(2).log(), c.node(0).log());
}

/// A leader (node 0) with a window of one message in flight per follower commits three entries with node
/// 1 while node 2 receives nothing.
fn window_of_one_while_node_2_is_cut_off() -> Cluster {
    let config = Config {
        max_inflight_messages: 1,
        ..common::figure2_config()
    };
    let mut c = Cluster::with_config(3, config);
    c.elect(0);
    for i in 0..3 {
        let (_, msgs) = c.propose(0, &format!("{i}"));
        c.deliver_all_where(msgs, |m| m.to != 2);
    }
    c
}

#[test]
fn a_lost_message_in_a_full_window_is_repaired_by_the_heartbeat() {
    // The one message in flight to node 2 is lost; later entries wait for it.
    let mut c = window_of_one_while_node_2_is_cut_off();
    assert!(c.node(2).log().is_empty());
    // The heartbeat (after index 1) is refused, and the probe that follows brings node 2 up to date.
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.node(2).log(), c.node(0).log());
}

#[test]
fn an_append_carries_at_most_max_bytes_per_message_of_commands() {
    let config = Config {
        max_bytes_per_message: 250,
        ..common::figure2_config()
    };
    let mut c = Cluster::with_config(3, config);
    c.elect(0);
    let commands = vec![vec![7u8; 100]; 5];
    c.nodes[0].propose_batch(commands).unwrap();
    let msgs = c.ready(0);
    assert_eq!(entries_to(&msgs, 1), vec![2, 2, 1]);
    c.deliver_all(msgs);
    // A command larger than the limit still goes, alone.
    c.nodes[0]
        .propose_batch(vec![vec![7u8; 300], vec![7u8; 1]])
        .unwrap();
    let msgs = c.ready(0);
    assert_eq!(entries_to(&msgs, 1), vec![1, 1]);
    c.deliver_all(msgs);
    assert_eq!(c.node(1).log(), c.node(0).log());
}

#[test]
fn a_zero_window_or_byte_limit_is_refused() {
    for (config, error) in [
        (
            Config {
                max_inflight_messages: 0,
                ..Config::default()
            },
            ConfigError::ZeroInflight,
        ),
        (
            Config {
                max_bytes_per_message: 0,
                ..Config::default()
            },
            ConfigError::ZeroBatch,
        ),
    ] {
        assert_eq!(
            Node::new(0, &[0, 1, 2], config, None, None, 0).err(),
            Some(error)
        );
    }
}

#[test]
fn a_full_window_whose_entries_were_compacted_gets_the_snapshot() {
    // Node 2 hears nothing while three entries commit; then the leader compacts them.
    let mut c = window_of_one_while_node_2_is_cut_off();
    c.snapshot(0);
    assert_eq!(c.node(0).last_included_index(), 3);
    // The entry after which a heartbeat would go is gone: node 2 is sent the snapshot.
    let hb = c.heartbeat(0);
    assert!(hb
        .iter()
        .any(|m| m.to == 2 && matches!(m.message, Message::InstallSnapshot(_))));
    c.deliver_all(hb);
    assert_eq!(c.node(2).last_included_index(), 3);
}
