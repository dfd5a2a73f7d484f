//! PreVote (§9.6 of Ongaro's dissertation), on in the default configuration: a server whose election timer
//! fires asks whether a quorum would vote for it before it raises its term, and no one changes term or vote
//! for a pre-vote.

mod common;

use common::Cluster;
use raft::{Config, Envelope, Message, Node, RequestVote, RequestVoteReply, Role};

/// PreVote alone: CheckQuorum's lease would ignore some of these pre-votes (`check_quorum.rs` tests it).
fn pre_vote_cluster(n: usize) -> Cluster {
    let config = Config::default();
    assert!(config.pre_vote, "PreVote is on by default");
    Cluster::with_config(
        n,
        Config {
            check_quorum: false,
            ..config
        },
    )
}

/// Ticks node `i` until its election timer fires; returns what it sent.
fn fire(c: &mut Cluster, i: usize) -> Vec<Envelope> {
    for _ in 0..c.config.election_ticks_max {
        c.nodes[i].tick();
        if c.nodes[i].role() != Role::Follower {
            return c.ready(i);
        }
    }
    panic!("node {i}'s election timer did not fire");
}

/// Node `i`'s timer fires and every message is delivered: it must win.
fn elect(c: &mut Cluster, i: usize) {
    let asks = fire(c, i);
    c.deliver_all(asks);
    assert!(c.nodes[i].is_leader(), "node {i} was not elected");
}

#[test]
fn a_fired_timer_asks_for_pre_votes_and_changes_no_term_or_vote() {
    let mut c = pre_vote_cluster(3);
    let asks = fire(&mut c, 0);
    let n = &c.nodes[0];
    assert_eq!(
        (n.role(), n.term(), n.voted_for()),
        (Role::PreCandidate, 0, None)
    );
    let mut to: Vec<_> = asks.iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(to, vec![1, 2]);
    for m in &asks {
        assert_eq!(
            m.message,
            Message::PreVote(RequestVote {
                term: 1,
                candidate_id: 0,
                last_log_index: 0,
                last_log_term: 0,
                transfer: false,
            })
        );
    }
    // Nothing made durable moved: a pre-candidacy changes no persistent state.
    assert!(c.disk[0]
        .as_ref()
        .is_none_or(|d| d.current_term == 0 && d.voted_for.is_none()));
}

#[test]
fn a_pre_vote_is_granted_without_adopting_its_term_and_refused_for_term_or_log() {
    let mut c = pre_vote_cluster(3);
    let asks = fire(&mut c, 0);
    // Granted in the pre-vote's term; the voter's term, vote and durable state are untouched.
    let replies = c.deliver(asks[0].clone());
    assert_eq!(
        replies[0].message,
        Message::PreVoteReply(RequestVoteReply {
            term: 1,
            vote_granted: true,
        })
    );
    let v = &c.nodes[asks[0].to as usize];
    assert_eq!(
        (v.term(), v.voted_for(), v.role()),
        (0, None, Role::Follower)
    );
    // A voter already in term 1 refuses a pre-vote for term 1, in its own term.
    let mut c = pre_vote_cluster(3);
    elect(&mut c, 1);
    let ask = Envelope {
        from: 0,
        to: 2,
        seq: 99,
        message: Message::PreVote(RequestVote {
            term: 1,
            candidate_id: 0,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        }),
    };
    let replies = c.deliver(ask.clone());
    assert_eq!(
        replies[0].message,
        Message::PreVoteReply(RequestVoteReply {
            term: 1,
            vote_granted: false,
        })
    );
    // A log behind the voter's is refused, however high the pre-vote's term.
    let (_, sent) = c.propose(1, "x");
    c.deliver_all(sent);
    let behind = Envelope {
        message: Message::PreVote(RequestVote {
            term: 5,
            candidate_id: 0,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        }),
        ..ask
    };
    let replies = c.deliver(behind);
    assert_eq!(
        replies[0].message,
        Message::PreVoteReply(RequestVoteReply {
            term: 1,
            vote_granted: false,
        })
    );
    assert_eq!(c.nodes[2].term(), 1);
}

#[test]
fn a_quorum_of_pre_votes_starts_the_election_and_the_candidate_wins() {
    let mut c = pre_vote_cluster(3);
    let asks = fire(&mut c, 0);
    c.deliver_all(asks);
    assert!(c.nodes[0].is_leader());
    assert_eq!(c.nodes[0].term(), 1);
}

#[test]
fn a_pre_candidate_counts_only_grants_for_the_term_it_would_stand_in() {
    let mut c = pre_vote_cluster(5);
    let _ = fire(&mut c, 0);
    // A grant of the wrong term (an answer to an older pre-candidacy) is not counted.
    for from in [1, 2, 3] {
        let stale = Envelope {
            from,
            to: 0,
            seq: 99,
            message: Message::PreVoteReply(RequestVoteReply {
                term: 0,
                vote_granted: true,
            }),
        };
        c.deliver(stale);
    }
    assert_eq!(c.nodes[0].role(), Role::PreCandidate);
    assert_eq!(c.nodes[0].votes().unwrap().iter().flatten().count(), 1);
}

#[test]
fn a_pre_candidate_follows_a_leader_of_its_term() {
    let mut c = pre_vote_cluster(3);
    elect(&mut c, 1);
    // Node 0 misses the leader's heartbeats and asks for pre-votes; then a heartbeat arrives.
    let _ = fire(&mut c, 0);
    assert_eq!(c.nodes[0].role(), Role::PreCandidate);
    let beats = c.heartbeat(1);
    c.deliver_all(beats);
    assert_eq!(c.nodes[0].role(), Role::Follower);
    assert_eq!(c.nodes[0].leader_id(), Some(1));
    assert_eq!(c.nodes[0].term(), 1);
}

/// A server cut off from the others keeps asking, but its term does not move, and when it comes back it
/// does not depose the leader; without PreVote its term runs ahead and its return forces an election.
#[test]
fn an_isolated_server_does_not_raise_its_term() {
    for pre_vote in [true, false] {
        let config = Config {
            pre_vote,
            ..Config::default()
        };
        let mut c = Cluster::with_config(3, config.clone());
        if pre_vote {
            elect(&mut c, 1);
        } else {
            c.elect(1);
        }
        for _ in 0..10 * config.election_ticks_max {
            c.nodes[0].tick();
            let _ = c.ready(0); // lost: node 0 is cut off
        }
        if pre_vote {
            assert_eq!(c.nodes[0].term(), 1, "PreVote keeps the term");
        } else {
            assert!(c.nodes[0].term() > 3, "without PreVote the term runs ahead");
        }
        // Node 0 comes back: one more round of its asking, and the leader's heartbeats.
        let asks = fire(&mut c, 0);
        c.deliver_all(asks);
        let beats = c.heartbeat(1);
        c.deliver_all(beats);
        assert_eq!(c.nodes[1].is_leader(), pre_vote, "pre_vote = {pre_vote}");
    }
}

#[test]
fn a_single_server_elects_itself_at_once() {
    let mut node = Node::new(7, &[7], Config::default(), None, None, 0).unwrap();
    for _ in 0..Config::default().election_ticks_max {
        node.tick();
    }
    assert!(node.is_leader());
    assert_eq!(node.term(), 1);
}
