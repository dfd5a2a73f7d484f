//! §5.3 The log matching property: the consistency check, conflict hints, truncation only on conflict, and
//! convergence of divergent logs (Figure 7).

mod common;

use common::{entry, log_terms, Cluster};
use raft::{
    AppendEntries, AppendEntriesReply, Entry, Envelope, Message, Node, PersistentState, StepError,
    MAX_INDEX,
};

fn follower(log_terms: &[u64], current_term: u64) -> Node {
    let log = log_terms.iter().map(|&t| entry(t, "f")).collect();
    let state = PersistentState {
        current_term,
        voted_for: None,
        last_included_index: 0,
        last_included_term: 0,
        membership: Default::default(),
        log,
    };
    Node::new(
        1,
        &[0, 1, 2],
        common::figure2_config(),
        Some(state),
        None,
        0,
    )
    .unwrap()
}

fn append(
    term: u64,
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<Entry>,
    leader_commit: u64,
) -> Envelope {
    Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::AppendEntries(AppendEntries {
            term,
            leader_id: 0,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            read_round: 0,
        }),
    }
}

fn reply(node: &mut Node) -> AppendEntriesReply {
    let released = node.ready().persisted();
    assert_eq!(released.messages.len(), 1, "exactly one reply per request");
    match released.messages.into_iter().next().unwrap().message {
        Message::AppendEntriesReply(r) => r,
        m => panic!("unexpected {m:?}"),
    }
}

fn terms(node: &Node) -> Vec<u64> {
    log_terms(node)
}

#[test]
fn rejects_when_prev_log_index_is_beyond_the_log() {
    let mut n = follower(&[1, 1], 2);
    n.step(append(2, 5, 2, vec![entry(2, "x")], 5)).unwrap();
    let r = reply(&mut n);
    assert!(!r.success);
    assert_eq!(
        (r.conflict_term, r.conflict_index, r.prev_log_index),
        (None, 3, 5)
    );
    assert_eq!(terms(&n), vec![1, 1]);
    assert_eq!(
        n.commit_index(),
        0,
        "a rejected request never advances the commit index"
    );
}

#[test]
fn rejects_a_term_mismatch_with_the_first_index_of_the_conflicting_term() {
    let mut n = follower(&[1, 2, 2, 2], 3);
    n.step(append(3, 4, 3, vec![], 0)).unwrap();
    let r = reply(&mut n);
    assert!(!r.success);
    assert_eq!((r.conflict_term, r.conflict_index), (Some(2), 2));
}

#[test]
fn accepts_matching_prev_and_appends() {
    let mut n = follower(&[1, 1], 2);
    n.step(append(2, 2, 1, vec![entry(2, "a"), entry(2, "b")], 0))
        .unwrap();
    let r = reply(&mut n);
    assert!(r.success);
    assert_eq!(r.match_index, 4);
    assert_eq!(terms(&n), vec![1, 1, 2, 2]);
}

#[test]
fn a_shorter_matching_append_never_truncates() {
    let mut n = follower(&[1, 1, 1, 1], 1);
    // A late, duplicated AppendEntries that covers only index 2.
    n.step(append(1, 1, 1, vec![entry(1, "f")], 0)).unwrap();
    let r = reply(&mut n);
    assert!(r.success);
    assert_eq!(
        r.match_index, 2,
        "match_index covers only what this request proved"
    );
    assert_eq!(terms(&n), vec![1, 1, 1, 1]);
    // Nothing changed, so nothing needs persisting.
    n.step(append(1, 1, 1, vec![entry(1, "f")], 0)).unwrap();
    assert!(n.ready().persist().is_none());
}

#[test]
fn a_conflict_truncates_the_entry_and_all_that_follow() {
    let mut n = follower(&[1, 1, 2, 2, 2], 3);
    n.step(append(3, 2, 1, vec![entry(1, "f"), entry(3, "new")], 0))
        .unwrap();
    assert!(reply(&mut n).success);
    assert_eq!(terms(&n), vec![1, 1, 1, 3]);
}

#[test]
fn absurd_indexes_do_not_panic() {
    let mut n = follower(&[1, 1], 2);
    n.step(append(2, MAX_INDEX - 1, 2, vec![entry(2, "x")], MAX_INDEX))
        .unwrap();
    assert!(!reply(&mut n).success);
    n.step(append(2, 2, 1, vec![], MAX_INDEX)).unwrap();
    assert!(reply(&mut n).success);
    assert_eq!(
        n.commit_index(),
        2,
        "leader_commit is capped by the last new entry"
    );
    // Indexes past MAX_INDEX (and so any overflowing index arithmetic) are refused outright.
    for overflow in [
        append(2, u64::MAX, 2, vec![entry(2, "x")], 0),
        append(2, MAX_INDEX, 2, vec![entry(2, "x")], 0),
        append(2, 2, 1, vec![], MAX_INDEX + 1),
        append(2, u64::MAX - 1, 2, vec![], 0),
    ] {
        assert!(matches!(n.step(overflow), Err(StepError::Malformed(_))));
    }
    // An entry whose term is above the sender's term is impossible.
    assert!(n.step(append(2, 2, 1, vec![entry(9, "x")], 0)).is_err());
    assert_eq!(terms(&n), vec![1, 1]);
}

#[test]
fn a_leader_ignores_absurd_replies() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    c.deliver_all(msgs);
    let before = c.node(0).progress(1);
    let reply = |success, match_index, prev_log_index, conflict_index| Envelope {
        from: 1,
        to: 0,
        seq: 0,
        message: Message::AppendEntriesReply(AppendEntriesReply {
            term: 1,
            success,
            prev_log_index,
            match_index,
            conflict_term: None,
            conflict_index,
            read_round: 0,
        }),
    };
    // Indexes no follower can hold are malformed.
    for (success, match_index, prev, conflict_index) in [
        (true, u64::MAX, 0, 0),
        (false, 0, u64::MAX, u64::MAX),
        (false, 0, 2, MAX_INDEX + 2),
    ] {
        assert!(matches!(
            c.nodes[0].step(reply(success, match_index, prev, conflict_index)),
            Err(StepError::Malformed(_))
        ));
    }
    // Indexes that fit but that this leader never sent are ignored.
    for (success, match_index, prev, conflict_index) in [
        (true, MAX_INDEX, 0, 0),
        (false, 0, MAX_INDEX, MAX_INDEX + 1),
        (false, 0, 1, 0),
        (false, 0, 2, MAX_INDEX + 1),
    ] {
        c.nodes[0]
            .step(reply(success, match_index, prev, conflict_index))
            .unwrap();
        let _ = c.nodes[0].ready();
        let (next, matched) = c.node(0).progress(1).unwrap();
        assert!(matched < next && next <= c.node(0).last_index() + 1);
    }
    assert_eq!(
        c.node(0).progress(1).unwrap().1,
        before.unwrap().1,
        "match_index never regresses"
    );
}

/// Figure 7: a new leader brings followers with missing and extra entries into line with its log.
#[test]
fn figure7_divergent_followers_converge_to_the_leaders_log() {
    let leader_log = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],          // (a) missing one
        &[1, 1, 1, 4],                         // (b) missing many
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],    // (c) an extra uncommitted entry
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], // (d) extra entries of a later term
        &[1, 1, 1, 4, 4, 4, 4],                // (e) conflicting term-4 entries
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],    // (f) a leader of terms 2 and 3 that never committed
    ];
    for (case, f) in followers.iter().enumerate() {
        let state = |terms: &[u64], current_term| {
            Some(PersistentState {
                current_term,
                voted_for: None,
                last_included_index: 0,
                last_included_term: 0,
                membership: Default::default(),
                log: terms.iter().map(|&t| entry(t, "")).collect(),
            })
        };
        // Node 0 will lead term 8 with node 2's vote (node 2 has the leader's log); node 1 is the follower.
        let config = common::figure2_config();
        let mut c = Cluster::with_state(
            config,
            vec![state(&leader_log, 7), state(f, 7), state(&leader_log, 7)],
        );
        let votes = c.campaign(0);
        c.deliver_all_where(votes, |m| m.to != 1 && m.from != 1);
        assert!(c.node(0).is_leader());
        let hb = c.heartbeat(0);
        let mut delivered = c.deliver_all(hb);
        // Extra entries that do not conflict with anything sent so far may stay until the leader writes over
        // them: a new entry of the leader's term does.
        let (_, msgs) = c.propose(0, "x");
        delivered += c.deliver_all(msgs);
        let mut expected = leader_log.to_vec();
        expected.push(8);
        assert_eq!(
            terms(c.node(1)),
            expected,
            "case ({})",
            (b'a' + case as u8) as char
        );
        assert_eq!(c.node(0).commit_index(), 11);
        // Conflict hints keep the round trips per term, not per entry.
        assert!(
            delivered <= 2 * 2 + 2 * 5,
            "case {case}: {delivered} messages"
        );
    }
}
