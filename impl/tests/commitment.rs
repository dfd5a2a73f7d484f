//! §5.3-5.4.2 Commitment: majority counting, the Figure 8 rule, and how followers learn the commit index.

mod common;

use common::{entry, log_terms, Cluster};
use raft::{Message, PersistentState, Role};

fn state(terms: &[u64], current_term: u64) -> Option<PersistentState> {
    Some(PersistentState {
        current_term,
        voted_for: None,
        last_included_index: 0,
        last_included_term: 0,
        membership: Default::default(),
        log: terms.iter().map(|&t| entry(t, &format!("t{t}"))).collect(),
    })
}

#[test]
fn an_entry_commits_once_a_majority_stores_it() {
    let mut c = Cluster::new(5);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    // Only node 1 answers: two of five is not a majority.
    c.deliver_all_where(msgs.clone(), |m| m.to == 1 || m.from == 1);
    assert_eq!(c.node(0).commit_index(), 0);
    // Node 2 answers too: three of five.
    c.deliver_all_where(msgs, |m| m.to == 2 || m.from == 2);
    assert_eq!(c.node(0).commit_index(), 1);
}

#[test]
fn no_commit_without_a_majority() {
    // The lab's TestFailNoAgree2B in miniature: a leader cut off from most of the cluster commits nothing.
    let mut c = Cluster::new(5);
    c.elect(0);
    let (_, msgs) = c.propose(0, "a");
    c.deliver_all_where(msgs, |m| m.to <= 1 && m.from <= 1);
    for _ in 0..5 {
        let hb = c.heartbeat(0);
        c.deliver_all_where(hb, |m| m.to <= 1 && m.from <= 1);
    }
    assert_eq!(c.node(0).commit_index(), 0);
    assert!(c.applied[0].is_empty());
}

/// Figure 8: a leader must not commit an entry of an earlier term by counting replicas. Here (five servers, ids
/// 0-4 for S1-S5) S1 led term 2 and stored index 2 on S1 and S2 only; S5 then led term 3 and stored its own
/// index 2; now S1 leads term 4 and copies its term-2 entry to S3. That entry is on a majority, yet S5 (whose
/// last entry has term 3) could still be elected by S3, S4 and itself and overwrite it, so S1 must not commit
/// it. Once S1 replicates an entry of term 4 to a majority, both commit.
#[test]
fn figure8_leader_commits_only_entries_of_its_own_term_by_counting() {
    let mut c = Cluster::with_state(
        common::figure2_config(),
        vec![
            state(&[1, 2], 3),
            state(&[1, 2], 3),
            state(&[1], 3),
            state(&[1], 3),
            state(&[1, 3], 3),
        ],
    );
    // S1 is elected in term 4 by S2 and S3.
    let votes = c.campaign(0);
    assert_eq!(c.node(0).term(), 4);
    c.deliver_all_where(votes, |m| {
        [1, 2].contains(&m.to) || [1, 2].contains(&m.from)
    });
    assert!(c.node(0).is_leader());
    // Its term-2 entry reaches S2 and S3 (S4 and S5 are cut off).
    for _ in 0..3 {
        let hb = c.heartbeat(0);
        c.deliver_all_where(hb, |m| [1, 2].contains(&m.to) || [1, 2].contains(&m.from));
    }
    assert_eq!(log_terms(c.node(2)), vec![1, 2]);
    assert_eq!(c.node(0).progress(2), Some((3, 2)));
    assert_eq!(
        c.node(0).commit_index(),
        0,
        "index 2 (term 2) is on a majority but must not be committed by counting"
    );
    // Had S1 crashed now, S5 could still win term 5 with S4's vote and S3's (S3's log [1,2] is not more
    // up to date than S5's [1,3]) and overwrite index 2: that is why it was not committed.
    assert!(c.node(4).log().last().unwrap().term > c.node(2).log().last().unwrap().term);

    // S1 proposes in term 4 and replicates to S2 and S3: index 3 commits, and index 2 with it.
    let (_, msgs) = c.propose(0, "t4");
    c.deliver_all_where(msgs, |m| [1, 2].contains(&m.to) || [1, 2].contains(&m.from));
    assert_eq!(c.node(0).commit_index(), 3);
    assert_eq!(
        c.applied[0].iter().map(|a| (a.0, a.1)).collect::<Vec<_>>(),
        vec![(1, 1), (2, 2), (3, 4)]
    );
    // Now S5 can no longer win: S2 and S3 hold a term-4 entry and refuse it, so it has at most S4's vote.
    let votes = c.campaign(4);
    c.deliver_all_where(votes, |m| m.to != 0 && m.from != 0);
    assert_ne!(c.node(4).role(), Role::Leader);
}

#[test]
fn follower_commit_is_bounded_by_the_last_entry_the_request_proved() {
    // Node 1 holds stale term-2 entries at 3..4. A heartbeat that proves only index 2 and says leader_commit 4
    // must commit up to 2 and not the stale entries (Figure 2, AppendEntries step 5).
    let mut node = raft::Node::new(
        1,
        &[0, 1, 2],
        common::figure2_config(),
        state(&[1, 1, 2, 2], 3),
        None,
        0,
    )
    .unwrap();
    let append = |prev_log_index, prev_log_term, entries: Vec<raft::Entry>| raft::Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::AppendEntries(raft::AppendEntries {
            term: 3,
            leader_id: 0,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: 4,
            read_round: 0,
        }),
    };
    node.step(append(2, 1, vec![])).unwrap();
    assert_eq!(node.commit_index(), 2);
    assert_eq!(
        log_terms(&node),
        vec![1, 1, 2, 2],
        "a heartbeat does not truncate"
    );
    node.step(append(2, 1, vec![entry(3, "x")])).unwrap();
    assert_eq!(log_terms(&node), vec![1, 1, 3]);
    assert_eq!(node.commit_index(), 3);
    let released = node.ready().persisted();
    assert_eq!(released.messages.len(), 2);
    assert_eq!(released.applies.len(), 3);
}

#[test]
fn followers_learn_the_commit_index_from_the_next_append() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let (_, a) = c.propose(0, "a");
    c.deliver_all(a);
    assert_eq!(c.node(1).commit_index(), 0);
    let (_, b) = c.propose(0, "b");
    c.deliver_all(b);
    assert_eq!(
        c.node(1).commit_index(),
        1,
        "the append for index 2 carries commit index 1"
    );
    assert_eq!(c.node(0).commit_index(), 2);
}

#[test]
fn applies_come_out_in_order_exactly_once() {
    let mut c = Cluster::new(3);
    c.elect(0);
    let mut pending = Vec::new();
    for i in 0..20 {
        let (_, msgs) = c.propose(0, &format!("{i}"));
        pending.extend(msgs);
        if i % 7 == 6 {
            c.deliver_all(std::mem::take(&mut pending));
        }
    }
    c.deliver_all(pending);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    for i in 0..3 {
        let indexes: Vec<u64> = c.applied[i].iter().map(|a| a.0).collect();
        assert_eq!(indexes, (1..=20).collect::<Vec<_>>(), "node {i}");
        for (k, a) in c.applied[i].iter().enumerate() {
            assert_eq!(a.2, format!("{k}").into_bytes());
        }
    }
}
