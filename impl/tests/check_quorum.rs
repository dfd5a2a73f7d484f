//! CheckQuorum, the leader lease and leadership transfer, on in the default configuration: a leader that has
//! not heard from a quorum within an election timeout steps down; a server that hears from its leader ignores
//! vote requests of higher terms until its election timer runs out; a leader hands over with TimeoutNow.

mod common;

use common::Cluster;
use raft::{
    Config, ConfigError, Envelope, Message, Node, NotLeader, RequestVote, Role, TimeoutNow,
    TransferRefused,
};

fn cluster(n: usize) -> Cluster {
    let config = Config::default();
    assert!(
        config.pre_vote && config.check_quorum,
        "PreVote and CheckQuorum are on by default"
    );
    Cluster::with_config(n, config)
}

/// Node `i`'s election timer fires and every message is delivered: it must win.
fn elect(c: &mut Cluster, i: usize) {
    for _ in 0..c.config.election_ticks_max {
        c.nodes[i].tick();
        if c.nodes[i].role() != Role::Follower {
            let asks = c.ready(i);
            c.deliver_all(asks);
            assert!(c.nodes[i].is_leader(), "node {i} was not elected");
            return;
        }
    }
    panic!("node {i}'s election timer did not fire");
}

/// The ticks between two quorum checks (`Config::check_quorum_ticks`).
const CHECK: u32 = 60;

/// Ticks the leader `ticks` times, delivering what it sends only to the servers `reach` allows.
fn tick_leader(c: &mut Cluster, leader: usize, ticks: u32, reach: impl Fn(u64) -> bool) {
    assert_eq!(c.config.check_quorum_ticks, CHECK);
    for _ in 0..ticks {
        c.nodes[leader].tick();
        let sent = c.ready(leader);
        c.deliver_all_where(sent, |m| reach(m.to) && reach(m.from));
    }
}

fn vote_request(from: u64, to: u64, term: u64, last_log_index: u64, transfer: bool) -> Envelope {
    Envelope {
        from,
        to,
        seq: 1000,
        message: Message::RequestVote(RequestVote {
            term,
            candidate_id: from,
            last_log_index,
            last_log_term: if last_log_index == 0 { 0 } else { term - 1 },
            transfer,
        }),
    }
}

#[test]
fn a_leader_that_hears_from_a_quorum_keeps_leading() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    // Node 2 is cut off; node 1 answers: with the leader, a quorum of 3.
    tick_leader(&mut c, 0, 10 * CHECK, |id| id != 2);
    assert!(c.nodes[0].is_leader());
}

#[test]
fn a_leader_cut_off_from_a_quorum_steps_down_at_its_next_check() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    let term = c.nodes[0].term();
    // Both followers answered the announcement, so the first check holds; nothing is heard after it.
    tick_leader(&mut c, 0, CHECK, |id| id == 0);
    assert!(c.nodes[0].is_leader(), "the first check found a quorum");
    tick_leader(&mut c, 0, CHECK - 1, |id| id == 0);
    assert!(c.nodes[0].is_leader(), "no check yet");
    tick_leader(&mut c, 0, 1, |id| id == 0);
    assert_eq!(
        (c.nodes[0].role(), c.nodes[0].term()),
        (Role::Follower, term),
        "the check found no quorum: a follower of the same term"
    );
    assert_eq!(
        c.nodes[0].propose(b"x".to_vec()),
        Err(NotLeader { leader: None })
    );
}

#[test]
fn a_quorum_check_more_often_than_the_shortest_election_timeout_is_refused() {
    let config = Config {
        check_quorum_ticks: 29,
        ..Config::default()
    };
    assert_eq!(config.election_ticks_min, 30);
    assert_eq!(
        Node::new(0, &[0, 1, 2], config.clone(), None, None, 0).err(),
        Some(ConfigError::CheckQuorumInterval { check: 29, min: 30 })
    );
    // Without CheckQuorum the interval is not used.
    let config = Config {
        check_quorum: false,
        ..config
    };
    assert!(Node::new(0, &[0, 1, 2], config, None, None, 0).is_ok());
}

#[test]
fn without_check_quorum_an_isolated_leader_keeps_leading() {
    let mut c = Cluster::with_config(
        3,
        Config {
            check_quorum: false,
            ..Config::default()
        },
    );
    elect(&mut c, 0);
    tick_leader(&mut c, 0, 10 * CHECK, |id| id == 0);
    assert!(c.nodes[0].is_leader());
}

#[test]
fn a_follower_in_its_lease_ignores_vote_requests_of_higher_terms_but_not_a_transfers() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    let term = c.nodes[0].term();
    let last = c.nodes[0].last_index();
    assert_eq!(c.nodes[1].leader_id(), Some(0));
    // A RequestVote and a PreVote of a higher term, from a server with an up-to-date log: no answer, and
    // nothing changes.
    let ignored = c.deliver(vote_request(2, 1, term + 1, last, false));
    assert!(ignored.is_empty());
    let pre_vote = Envelope {
        message: Message::PreVote(RequestVote {
            term: term + 1,
            candidate_id: 2,
            last_log_index: last,
            last_log_term: 0,
            transfer: false,
        }),
        ..vote_request(2, 1, term + 1, last, false)
    };
    assert!(c.deliver(pre_vote).is_empty());
    assert_eq!((c.nodes[1].term(), c.nodes[1].voted_for()), (term, Some(0)));
    // The leader ignores them too.
    assert!(c
        .deliver(vote_request(2, 0, term + 1, last, false))
        .is_empty());
    assert!(c.nodes[0].is_leader());
    // A transfer's RequestVote is answered: granted, in its term.
    let granted = c.deliver(vote_request(2, 1, term + 1, last, true));
    assert_eq!(granted.len(), 1);
    assert_eq!(
        (c.nodes[1].term(), c.nodes[1].voted_for()),
        (term + 1, Some(2))
    );
}

#[test]
fn a_follower_whose_timer_ran_out_answers_vote_requests_again() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    let term = c.nodes[0].term();
    // Node 1 hears nothing more: its timer runs out, it becomes a pre-candidate and leaves its lease.
    for _ in 0..c.config.election_ticks_max {
        c.nodes[1].tick();
    }
    assert_eq!(c.nodes[1].role(), Role::PreCandidate);
    let _ = c.ready(1);
    let answered = c.deliver(vote_request(2, 1, term + 1, c.nodes[1].last_index(), false));
    assert_eq!(answered.len(), 1);
    assert_eq!(c.nodes[1].term(), term + 1);
}

#[test]
fn without_check_quorum_a_follower_answers_at_once() {
    let mut c = Cluster::with_config(
        3,
        Config {
            check_quorum: false,
            ..Config::default()
        },
    );
    elect(&mut c, 0);
    let term = c.nodes[0].term();
    let answered = c.deliver(vote_request(2, 1, term + 1, 0, false));
    assert_eq!(answered.len(), 1);
}

#[test]
fn a_leader_hands_over_to_an_up_to_date_follower() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    let (_, sent) = c.propose(0, "a");
    c.deliver_all(sent);
    let term = c.nodes[0].term();
    c.nodes[0].transfer_leader(2).unwrap();
    let sent = c.ready(0);
    assert_eq!(
        sent.iter().map(|m| &m.message).collect::<Vec<_>>(),
        vec![&Message::TimeoutNow(TimeoutNow { term, leader_id: 0 })]
    );
    assert_eq!(sent[0].to, 2);
    // From now on the leader refuses proposals and names the target.
    assert_eq!(
        c.nodes[0].propose(b"b".to_vec()),
        Err(NotLeader { leader: Some(2) })
    );
    // The target stands at once, in the next term, without PreVote; servers in their lease answer it.
    let asks = c.deliver(sent[0].clone());
    assert_eq!(
        (c.nodes[2].role(), c.nodes[2].term()),
        (Role::Candidate, term + 1)
    );
    assert!(asks
        .iter()
        .all(|m| matches!(&m.message, Message::RequestVote(r) if r.transfer)));
    c.deliver_all(asks);
    assert!(c.nodes[2].is_leader());
    assert_eq!(c.nodes[0].role(), Role::Follower);
    assert_eq!(c.nodes[0].transfer_target(), None);
}

#[test]
fn a_transfer_to_a_lagging_follower_waits_until_it_has_caught_up() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    // Node 2 misses an entry.
    let (_, sent) = c.propose(0, "a");
    c.deliver_all_where(sent, |m| m.to != 2 && m.from != 2);
    c.nodes[0].transfer_leader(2).unwrap();
    let sent = c.ready(0);
    assert!(
        sent.iter()
            .all(|m| matches!(m.message, Message::AppendEntries(_))),
        "the leader first sends what the target lacks: {sent:?}"
    );
    assert_eq!(c.nodes[0].transfer_target(), Some(2));
    // Proposals are still taken until TimeoutNow goes out.
    assert!(c.nodes[0].propose(b"b".to_vec()).is_ok());
    let more = c.ready(0);
    // Once the target holds everything, TimeoutNow follows, and the target wins.
    let mut queue = sent;
    queue.extend(more);
    c.deliver_all(queue);
    assert!(c.nodes[2].is_leader(), "node 2 took over");
    assert_eq!(c.nodes[2].last_index(), 2);
}

#[test]
fn a_transfer_that_does_not_complete_is_given_up() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    let term = c.nodes[0].term();
    c.nodes[0].transfer_leader(1).unwrap();
    // The TimeoutNow is lost.
    let sent = c.ready(0);
    assert!(matches!(sent[0].message, Message::TimeoutNow(_)));
    assert!(c.nodes[0].propose(b"x".to_vec()).is_err());
    // After an election timeout the leader takes proposals again, in the same term.
    tick_leader(&mut c, 0, CHECK, |_| true);
    assert_eq!(c.nodes[0].transfer_target(), None);
    assert_eq!(c.nodes[0].term(), term);
    assert!(c.nodes[0].propose(b"x".to_vec()).is_ok());
}

#[test]
fn transfers_are_refused_off_the_leader_and_to_strangers() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    assert_eq!(
        c.nodes[1].transfer_leader(2),
        Err(TransferRefused::NotLeader(NotLeader { leader: Some(0) }))
    );
    assert_eq!(
        c.nodes[0].transfer_leader(7),
        Err(TransferRefused::UnknownPeer(7))
    );
    // To itself: nothing to do.
    assert_eq!(c.nodes[0].transfer_leader(0), Ok(()));
    assert!(c.ready(0).is_empty());
    assert!(c.nodes[0].propose(b"x".to_vec()).is_ok());
}

#[test]
fn a_stale_timeout_now_or_one_at_a_candidate_starts_nothing() {
    let mut c = cluster(3);
    elect(&mut c, 0);
    let term = c.nodes[0].term();
    let stale = Envelope {
        from: 0,
        to: 1,
        seq: 1000,
        message: Message::TimeoutNow(TimeoutNow {
            term: term - 1,
            leader_id: 0,
        }),
    };
    assert!(c.deliver(stale).is_empty());
    assert_eq!(
        (c.nodes[1].role(), c.nodes[1].term()),
        (Role::Follower, term)
    );
    // Node 2's timer runs out (a pre-candidate): a TimeoutNow of its term does not make it stand.
    for _ in 0..c.config.election_ticks_max {
        c.nodes[2].tick();
    }
    let _ = c.ready(2);
    assert_eq!(c.nodes[2].role(), Role::PreCandidate);
    let now = Envelope {
        from: 0,
        to: 2,
        seq: 1001,
        message: Message::TimeoutNow(TimeoutNow { term, leader_id: 0 }),
    };
    assert!(c.deliver(now).is_empty());
    assert_eq!(
        (c.nodes[2].role(), c.nodes[2].term()),
        (Role::PreCandidate, term)
    );
}
