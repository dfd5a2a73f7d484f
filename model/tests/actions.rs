//! Each action's guard and effect on hand-built states, in the order of Figure 2.

use model::bounds::{preset, Bug};
use model::raft::{is_dead, Action, RaftModel};
use model::state::{flags, AppendOutcome, Body, Config, Entry, Log, Message, Role, State};

fn model() -> RaftModel {
    RaftModel::new(preset("default").unwrap().bounds)
}

fn log(terms: &[u32]) -> Log {
    terms.iter().map(|&term| Entry::client(term, 1)).collect()
}

/// Server 0 is leader of `term` with `terms` as its log; the others are followers in `term`.
fn with_leader(m: &RaftModel, term: u32, terms: &[u32]) -> State {
    let mut s = m.init_state();
    for srv in &mut s.servers {
        srv.current_term = term;
    }
    let l = &mut s.servers[0];
    l.role = Role::Leader;
    l.voted_for = Some(0);
    l.log = log(terms);
    for j in 0..3 {
        l.next_index[j] = terms.len() as u32 + 1;
    }
    s
}

fn msg(from: u8, to: u8, term: u32, body: Body) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

fn append(prev: u32, prev_term: u32, entries: &[u32], commit: u32) -> Body {
    Body::AppendEntries {
        prev_log_index: prev,
        prev_log_term: prev_term,
        entries: log(entries),
        leader_commit: commit,
        read_round: 0,
    }
}

/// Puts `m` in flight and delivers it.
fn deliver(model: &RaftModel, s: &State, m: Message) -> State {
    let mut s = s.clone();
    s.network.send(m.clone());
    model
        .step(&s, &Action::Receive(m))
        .expect("a message in flight can be received")
}

fn reply_to(s: &State, to: u8) -> Message {
    s.network
        .distinct()
        .find(|m| m.to == to && !m.is_request())
        .cloned()
        .expect("a reply was sent")
}

#[test]
fn timeout_starts_an_election_from_follower_or_candidate_only() {
    let m = model();
    let s = m.init_state();
    assert!(m.can_timeout(&s, 1));
    let t = m.step(&s, &Action::Timeout(1)).unwrap();
    let c = t.server(1);
    assert_eq!(
        (c.current_term, c.role, c.voted_for),
        (1, Role::Candidate, Some(1))
    );
    assert_eq!(c.votes_granted, 0b010);
    let requests: Vec<_> = t.network.distinct().collect();
    assert_eq!(requests.len(), 2, "RequestVote to every peer");
    assert!(requests
        .iter()
        .all(|r| r.from == 1 && r.term == 1 && r.is_request()));
    // A candidate may time out again, into the next term.
    assert!(m.can_timeout(&t, 1));
    assert_eq!(
        m.step(&t, &Action::Timeout(1))
            .unwrap()
            .server(1)
            .current_term,
        2
    );
    // A leader never times out.
    let l = with_leader(&m, 1, &[]);
    assert!(!m.can_timeout(&l, 0));
    assert!(m.step(&l, &Action::Timeout(0)).is_none());
    assert!(!m.can_timeout(&s, 7), "no such server");
}

#[test]
fn only_a_leader_takes_client_requests() {
    let m = model();
    let s = with_leader(&m, 2, &[1]);
    assert!(!m.can_client_request(&s, 1));
    let t = m.step(&s, &Action::ClientRequest(0, 1)).unwrap();
    assert_eq!(t.server(0).log.as_slice(), log(&[1, 2]).as_slice());
}

#[test]
fn votes_need_a_current_term_a_free_vote_and_an_up_to_date_log() {
    let m = model();
    let mut s = m.init_state();
    s.servers[1].log = log(&[1, 1]);
    s.servers[1].current_term = 1;
    // A candidate in term 2 whose log is shorter in the same last term: denied, but the
    // receiver still adopts term 2 (step-down folded into the same action).
    let rv = |last_log_index, last_log_term| Body::RequestVote {
        last_log_index,
        last_log_term,
        transfer: false,
    };
    let t = deliver(&m, &s, msg(0, 1, 2, rv(1, 1)));
    assert_eq!(t.server(1).current_term, 2);
    assert_eq!(t.server(1).voted_for, None);
    let r = reply_to(&t, 0);
    assert_eq!(
        r.body,
        Body::RequestVoteReply {
            vote_granted: false
        }
    );
    // A log as long: granted, and the vote is remembered.
    let t = deliver(&m, &s, msg(0, 1, 2, rv(2, 1)));
    assert_eq!(t.server(1).voted_for, Some(0));
    assert_eq!(
        reply_to(&t, 0).body,
        Body::RequestVoteReply { vote_granted: true }
    );
    // A second candidate of the same term is denied...
    let u = deliver(&m, &t, msg(2, 1, 2, rv(5, 2)));
    assert_eq!(
        reply_to(&u, 2).body,
        Body::RequestVoteReply {
            vote_granted: false
        }
    );
    // ...but the same candidate asking again is granted again.
    let u = deliver(&m, &t, msg(0, 1, 2, rv(2, 1)));
    assert!(u
        .network
        .distinct()
        .all(|r| r.body == Body::RequestVoteReply { vote_granted: true }));
    // A stale candidate is denied and told the newer term.
    let u = deliver(&m, &t, msg(2, 1, 1, rv(9, 9)));
    let r = reply_to(&u, 2);
    assert_eq!(
        (r.term, r.body.clone()),
        (
            2,
            Body::RequestVoteReply {
                vote_granted: false
            }
        )
    );
    // With the bug, the log comparison is skipped.
    let buggy = RaftModel::with_bug(m.bounds, Some(Bug::NoUpToDateCheck));
    let t = deliver(&buggy, &s, msg(0, 1, 2, rv(0, 0)));
    assert_eq!(t.server(1).voted_for, Some(0));
}

#[test]
fn a_majority_of_votes_makes_a_leader_and_is_recorded() {
    let m = model();
    let s = m.step(&m.init_state(), &Action::Timeout(0)).unwrap();
    let granted = Body::RequestVoteReply { vote_granted: true };
    let denied = Body::RequestVoteReply {
        vote_granted: false,
    };
    let t = deliver(&m, &s, msg(1, 0, 1, denied));
    assert_eq!(t.server(0).role, Role::Candidate);
    let t = deliver(&m, &t, msg(2, 0, 1, granted.clone()));
    let l = t.server(0);
    assert_eq!(l.role, Role::Leader);
    assert_eq!(&l.next_index[..3], &[1, 1, 1]);
    assert_eq!(t.elections.as_slice(), &[(1, 0)]);
    // Votes from another term do not count.
    let t = deliver(&m, &s, msg(2, 0, 0, granted));
    assert_eq!(t.server(0).role, Role::Candidate);
}

#[test]
fn append_entries_may_carry_any_range_the_leader_holds() {
    let m = model();
    let s = with_leader(&m, 2, &[1, 2, 2]);
    for (prev, count) in [(0, 0), (0, 3), (1, 2), (3, 0), (2, 1)] {
        assert!(
            m.can_append_entries(&s, 0, 1, prev, count),
            "{prev} {count}"
        );
    }
    assert!(
        !m.can_append_entries(&s, 0, 1, 2, 2),
        "past the end of the log"
    );
    assert!(!m.can_append_entries(&s, 0, 0, 0, 0), "not to itself");
    assert!(!m.can_append_entries(&s, 1, 0, 0, 0), "not from a follower");
    let t = m
        .step(
            &s,
            &Action::AppendEntries {
                leader: 0,
                peer: 2,
                prev_log_index: 1,
                count: 2,
            },
        )
        .unwrap();
    let sent: Vec<_> = t.network.distinct().cloned().collect();
    assert_eq!(sent, vec![msg(0, 2, 2, append(1, 1, &[2, 2], 0))]);
}

#[test]
fn followers_check_consistency_and_hint_at_conflicts() {
    let m = model();
    let mut s = m.init_state();
    s.servers[1].current_term = 3;
    s.servers[1].log = log(&[1, 1, 2, 2]);
    // Stale term: rejected, with the newer term in the reply.
    let t = deliver(&m, &s, msg(0, 1, 2, append(4, 2, &[], 0)));
    let r = reply_to(&t, 0);
    assert_eq!(
        (r.term, r.body),
        (
            3,
            Body::AppendEntriesReply {
                outcome: AppendOutcome::StaleTerm,
                read_round: 0
            }
        )
    );
    // Too short: the hint is the log length + 1.
    let t = deliver(&m, &s, msg(0, 1, 3, append(6, 3, &[], 0)));
    assert_eq!(
        reply_to(&t, 0).body,
        Body::AppendEntriesReply {
            outcome: AppendOutcome::Conflict {
                conflict_term: 0,
                conflict_index: 5
            },
            read_round: 0
        }
    );
    // Term mismatch at prev: the follower's term there and its first index of that term.
    let t = deliver(&m, &s, msg(0, 1, 3, append(4, 3, &[], 0)));
    assert_eq!(
        reply_to(&t, 0).body,
        Body::AppendEntriesReply {
            outcome: AppendOutcome::Conflict {
                conflict_term: 2,
                conflict_index: 3
            },
            read_round: 0
        }
    );
    assert_eq!(t.server(1).log.len(), 4, "a rejection changes no log");
}

#[test]
fn followers_truncate_only_on_a_real_conflict() {
    let m = model();
    let mut s = m.init_state();
    s.servers[1].current_term = 2;
    s.servers[1].log = log(&[1, 1, 1]);
    // A shorter, matching AppendEntries (a reordered older one) deletes nothing.
    let t = deliver(&m, &s, msg(0, 1, 2, append(0, 0, &[1], 0)));
    assert_eq!(t.server(1).log.len(), 3);
    assert!(!t.has(flags::TRUNCATED));
    assert_eq!(
        reply_to(&t, 0).body,
        Body::AppendEntriesReply {
            outcome: AppendOutcome::Success { match_index: 1 },
            read_round: 0
        }
    );
    // A conflicting entry deletes it and everything after it.
    let t = deliver(&m, &s, msg(0, 1, 2, append(1, 1, &[2], 0)));
    assert_eq!(t.server(1).log.as_slice(), log(&[1, 2]).as_slice());
    assert!(t.has(flags::TRUNCATED));
    // The bug truncates even on a match.
    let buggy = RaftModel::with_bug(m.bounds, Some(Bug::TruncateOnMatch));
    let t = deliver(&buggy, &s, msg(0, 1, 2, append(0, 0, &[1], 0)));
    assert_eq!(t.server(1).log.len(), 1);
}

#[test]
fn follower_commit_is_bounded_by_the_last_new_entry() {
    let m = model();
    let mut s = m.init_state();
    s.servers[1].current_term = 2;
    s.servers[1].log = log(&[1, 1, 1]);
    // leader_commit 3, but this message only vouches for index 1.
    let t = deliver(&m, &s, msg(0, 1, 2, append(0, 0, &[1], 3)));
    assert_eq!(t.server(1).commit_index, 1);
    assert_eq!(t.committed.len(), 1);
    // A candidate of the same term returns to follower on AppendEntries.
    let mut c = s.clone();
    c.servers[1].role = Role::Candidate;
    let t = deliver(&m, &c, msg(0, 1, 2, append(3, 1, &[], 0)));
    assert_eq!(t.server(1).role, Role::Follower);
}

#[test]
fn leaders_learn_from_replies() {
    let m = model();
    let s = with_leader(&m, 3, &[1, 1, 3]);
    let ok = |match_index| Body::AppendEntriesReply {
        outcome: AppendOutcome::Success { match_index },
        read_round: 0,
    };
    let t = deliver(&m, &s, msg(1, 0, 3, ok(3)));
    assert_eq!(
        (t.server(0).match_index[1], t.server(0).next_index[1]),
        (3, 4)
    );
    // A late, smaller acknowledgement does not move match_index back.
    let u = deliver(&m, &t, msg(1, 0, 3, ok(1)));
    assert_eq!(u.server(0).match_index[1], 3);
    // Conflict with a term the leader has: just past its last entry of that term.
    let conflict = |conflict_term, conflict_index| Body::AppendEntriesReply {
        outcome: AppendOutcome::Conflict {
            conflict_term,
            conflict_index,
        },
        read_round: 0,
    };
    let t = deliver(&m, &s, msg(2, 0, 3, conflict(1, 1)));
    assert_eq!(t.server(0).next_index[2], 3);
    // A term it does not have: the follower's first index of it.
    let t = deliver(&m, &s, msg(2, 0, 3, conflict(2, 2)));
    assert_eq!(t.server(0).next_index[2], 2);
    // A short log: its length + 1.
    let t = deliver(&m, &s, msg(2, 0, 3, conflict(0, 1)));
    assert_eq!(t.server(0).next_index[2], 1);
    // A reply of a higher term makes the leader step down.
    let t = deliver(
        &m,
        &s,
        msg(
            2,
            0,
            4,
            Body::AppendEntriesReply {
                outcome: AppendOutcome::StaleTerm,
                read_round: 0,
            },
        ),
    );
    assert_eq!(
        (t.server(0).role, t.server(0).current_term),
        (Role::Follower, 4)
    );
}

#[test]
fn commit_needs_a_majority_and_an_entry_of_the_current_term() {
    let m = model();
    let mut s = with_leader(&m, 3, &[1, 3]);
    assert!(!m.can_advance_commit_index(&s, 0, 1), "no replica yet");
    s.servers[0].match_index[1] = 1;
    // Index 1 is on a majority but of term 1: Figure 8 forbids committing it by counting.
    assert!(!m.can_advance_commit_index(&s, 0, 1));
    let buggy = RaftModel::with_bug(m.bounds, Some(Bug::Figure8Commit));
    assert!(buggy.can_advance_commit_index(&s, 0, 1));
    s.servers[0].match_index[1] = 2;
    assert!(m.can_advance_commit_index(&s, 0, 2));
    assert!(!m.can_advance_commit_index(&s, 0, 3), "past the log");
    let t = m.step(&s, &Action::AdvanceCommitIndex(0, 2)).unwrap();
    assert_eq!(t.server(0).commit_index, 2);
    assert_eq!(t.committed.len(), 2);
    assert!(t.has(flags::OLD_TERM_COMMITTED_THROUGH_NEW));
    assert!(!m.can_advance_commit_index(&t, 0, 2), "only forward");
}

#[test]
fn a_crash_keeps_exactly_the_persistent_state() {
    let m = model();
    let mut s = with_leader(&m, 2, &[1, 2]);
    s.servers[0].commit_index = 1;
    let t = m.step(&s, &Action::Crash(0)).unwrap();
    let r = t.server(0);
    assert_eq!((r.current_term, r.voted_for, r.log.len()), (2, Some(0), 2));
    assert_eq!((r.role, r.commit_index), (Role::Follower, 0));
    assert_eq!(r.next_index, [0; 7]);
    assert_eq!(t.crashes, 1);
    let buggy = RaftModel::with_bug(m.bounds, Some(Bug::ForgetVote));
    assert_eq!(
        buggy
            .step(&s, &Action::Crash(0))
            .unwrap()
            .server(0)
            .voted_for,
        None
    );
}

#[test]
fn the_network_loses_and_duplicates_only_messages_in_flight() {
    let m = model();
    let s = m.step(&m.init_state(), &Action::Timeout(0)).unwrap();
    let rv = s.network.distinct().next().unwrap().clone();
    let t = m.step(&s, &Action::Duplicate(rv.clone())).unwrap();
    assert_eq!((t.network.count(&rv), t.dups), (2, 1));
    let u = m.step(&t, &Action::Receive(rv.clone())).unwrap();
    assert!(u.has(flags::DUPLICATE_DELIVERED));
    let t = m.step(&s, &Action::Drop(rv.clone())).unwrap();
    assert_eq!((t.network.count(&rv), t.drops), (0, 1));
    assert!(m.step(&t, &Action::Drop(rv.clone())).is_none());
    assert!(m.step(&t, &Action::Receive(rv)).is_none());
}

#[test]
fn replies_that_can_no_longer_matter_are_dead() {
    let m = model();
    let s = with_leader(&m, 2, &[]);
    let ack = |term| {
        msg(
            1,
            0,
            term,
            Body::AppendEntriesReply {
                outcome: AppendOutcome::StaleTerm,
                read_round: 0,
            },
        )
    };
    assert!(!is_dead(&s, &ack(2)));
    assert!(is_dead(&s, &ack(1)), "older term");
    let vote = msg(1, 0, 2, Body::RequestVoteReply { vote_granted: true });
    assert!(is_dead(&s, &vote), "a leader needs no more votes");
    assert!(
        !is_dead(&s, &msg(1, 0, 1, append(0, 0, &[], 0))),
        "requests always matter"
    );
}

#[test]
fn the_enumerator_offers_only_enabled_actions() {
    let m = model();
    let mut s = with_leader(&m, 2, &[1, 2]);
    s.network
        .send(msg(1, 0, 2, Body::RequestVoteReply { vote_granted: true }));
    s.servers[0].match_index[1] = 2;
    assert!(model::check::actions_are_enabled(&m, &s));
    assert!(model::check::actions_are_enabled(&m, &m.init_state()));
}

#[test]
fn a_server_compacts_only_committed_entries() {
    let m = model();
    let mut s = with_leader(&m, 2, &[1, 2, 2]);
    s.servers[0].commit_index = 2;
    assert!(m.can_compact(&s, 0, 2));
    assert!(!m.can_compact(&s, 0, 3), "not committed");
    let t = m.step(&s, &Action::Compact(0, 2)).unwrap();
    assert_eq!(t.server(0).snapshot_index, 2);
    assert_eq!(
        t.server(0).log.len(),
        3,
        "the snapshot keeps its entries for the properties"
    );
    // The conformance checker counts on it: after a compaction it compares no log.
    assert_eq!(
        t.server(0).log,
        s.server(0).log,
        "a compaction writes nothing of the log"
    );
    assert!(!m.can_compact(&t, 0, 2), "only forward");
    // Entries in the snapshot can no longer go out as AppendEntries, only as the snapshot.
    assert!(!m.can_append_entries(&t, 0, 1, 1, 1));
    assert!(m.can_append_entries(&t, 0, 1, 2, 1));
    assert!(m.can_install_snapshot(&t, 0, 1));
    assert!(!m.can_install_snapshot(&s, 0, 1), "no snapshot yet");
    let u = m
        .step(&t, &Action::InstallSnapshot { leader: 0, peer: 1 })
        .unwrap();
    let sent: Vec<_> = u.network.distinct().cloned().collect();
    assert_eq!(
        sent,
        vec![msg(
            0,
            1,
            2,
            Body::InstallSnapshot {
                last_included_index: 2,
                last_included_term: 2,
                entries: log(&[1, 2]),
            }
        )]
    );
}

fn snapshot(last: u32, terms: &[u32]) -> Body {
    Body::InstallSnapshot {
        last_included_index: last,
        last_included_term: *terms.last().unwrap(),
        entries: log(terms),
    }
}

#[test]
fn install_snapshot_keeps_a_matching_suffix_and_ignores_old_snapshots() {
    let m = model();
    let mut s = m.init_state();
    s.servers[1].current_term = 2;
    s.servers[1].log = log(&[1, 2, 2]);
    // The follower has the snapshot's last entry: it keeps what follows.
    let t = deliver(&m, &s, msg(0, 1, 2, snapshot(2, &[1, 2])));
    let f = t.server(1);
    assert_eq!((f.snapshot_index, f.commit_index, f.log.len()), (2, 2, 3));
    assert!(t.has(flags::SNAPSHOT_INSTALLED));
    assert_eq!(t.committed.len(), 2);
    assert_eq!(
        reply_to(&t, 0).body,
        Body::InstallSnapshotReply { match_index: 2 }
    );
    // It does not: the log goes.
    let t = deliver(&m, &s, msg(0, 1, 2, snapshot(2, &[1, 1])));
    assert_eq!(t.server(1).log.as_slice(), log(&[1, 1]).as_slice());
    // Older than its commit index: ignored (with the bug: taken, rolling back).
    let mut c = s.clone();
    c.servers[1].commit_index = 3;
    let t = deliver(&m, &c, msg(0, 1, 2, snapshot(1, &[1])));
    assert_eq!((t.server(1).commit_index, t.server(1).log.len()), (3, 3));
    let buggy = RaftModel::with_bug(m.bounds, Some(Bug::SnapshotRegress));
    let t = deliver(&buggy, &c, msg(0, 1, 2, snapshot(1, &[1])));
    assert_eq!((t.server(1).commit_index, t.server(1).log.len()), (1, 1));
    // From a stale leader: nothing changes.
    let t = deliver(&m, &s, msg(0, 1, 1, snapshot(2, &[1, 1])));
    assert_eq!(t.server(1).log.as_slice(), log(&[1, 2, 2]).as_slice());
}

#[test]
fn a_restart_resumes_from_the_snapshot() {
    let m = model();
    let mut s = with_leader(&m, 2, &[1, 2]);
    s.servers[0].commit_index = 2;
    s.servers[0].snapshot_index = 1;
    let t = m.step(&s, &Action::Crash(0)).unwrap();
    let r = t.server(0);
    assert_eq!((r.commit_index, r.snapshot_index, r.log.len()), (1, 1, 2));
    assert!(t.has(flags::RESTARTED_FROM_SNAPSHOT));
}

/// The coverage branch `install-snapshot/keeps-suffix` counts only installs after which entries past the
/// snapshot survive; a log that ends at the snapshot's last entry comes out as the snapshot alone, as a
/// replaced one does.
#[test]
fn install_snapshot_keeps_suffix_is_counted_only_when_entries_survive() {
    use model::coverage::{Branch, Coverage};
    let counted = |follower_log: &[u32], terms: &[u32]| {
        let mut m = model();
        let coverage = std::sync::Arc::new(Coverage::default());
        m.coverage = Some(coverage.clone());
        let mut s = m.init_state();
        s.servers[1].current_term = 2;
        s.servers[1].log = log(follower_log);
        deliver(&m, &s, msg(0, 1, 2, snapshot(2, terms)));
        let count = |b: Branch| coverage.counts().iter().find(|(x, _)| *x == b).unwrap().1;
        (
            count(Branch::SnapshotKeepsSuffix),
            count(Branch::SnapshotReplacesLog),
        )
    };
    assert_eq!(
        counted(&[1, 2, 2], &[1, 2]),
        (1, 0),
        "the third entry survives"
    );
    assert_eq!(
        counted(&[1, 2], &[1, 2]),
        (0, 1),
        "nothing past the snapshot"
    );
    assert_eq!(
        counted(&[1, 1, 1], &[1, 2]),
        (0, 1),
        "no match at the snapshot"
    );
}

/// A model of four servers, three of them voting at first.
fn four_servers() -> RaftModel {
    RaftModel::new(preset("joint").unwrap().bounds)
}

fn cfg(voters: &[u8], old_voters: &[u8], learners: &[u8]) -> Config {
    let set = |ids: &[u8]| ids.iter().fold(0u8, |acc, i| acc | (1 << i));
    Config {
        voters: set(voters),
        old_voters: set(old_voters),
        learners: set(learners),
    }
}

#[test]
fn a_configuration_changes_one_step_at_a_time_after_a_commit_of_the_leaders_term() {
    let m = four_servers();
    let mut s = with_leader(&m, 2, &[1, 2]);
    let remove = cfg(&[0, 1], &[], &[]);
    assert!(
        !m.can_change_config(&s, 0, remove),
        "nothing of term 2 committed"
    );
    let buggy = RaftModel::with_bug(m.bounds, Some(Bug::ChangeBeforeTermCommit));
    assert!(buggy.can_change_config(&s, 0, remove));
    s.servers[0].commit_index = 1;
    assert!(!m.can_change_config(&s, 0, remove), "index 1 is of term 1");
    s.servers[0].commit_index = 2;
    assert!(m.can_change_config(&s, 0, remove));
    assert!(!m.can_change_config(&s, 1, remove), "only a leader");
    // One voter at a time, or through a joint configuration; learners change freely.
    assert!(m.can_change_config(&s, 0, cfg(&[0, 1, 2, 3], &[], &[])));
    assert!(m.can_change_config(&s, 0, cfg(&[0, 1, 2], &[], &[3])));
    assert!(
        !m.can_change_config(&s, 0, cfg(&[0, 3], &[], &[])),
        "two at once"
    );
    assert!(!m.can_change_config(&s, 0, cfg(&[], &[], &[])), "no voter");
    assert!(
        !m.can_change_config(&s, 0, cfg(&[0, 1, 2], &[], &[2])),
        "votes and learns"
    );
    let joint = cfg(&[0, 1, 3], &[0, 1, 2], &[]);
    assert!(m.can_change_config(&s, 0, joint));
    assert!(
        !m.can_change_config(&s, 0, cfg(&[0, 1, 3], &[0, 1], &[])),
        "old != current"
    );
    // Appended, the joint configuration is the leader's at once; until it commits, nothing else
    // may follow it, and then only its C_new.
    let t = m.step(&s, &Action::ChangeConfig(0, joint)).unwrap();
    assert_eq!(t.config(0), joint);
    assert_eq!(
        t.config(1),
        cfg(&[0, 1, 2], &[], &[]),
        "a follower has not seen it"
    );
    let leave = cfg(&[0, 1, 3], &[], &[]);
    assert!(!m.can_change_config(&t, 0, leave));
    let early = RaftModel::with_bug(m.bounds, Some(Bug::LeaveJointEarly));
    assert!(early.can_change_config(&t, 0, leave));
    let mut u = t.clone();
    u.servers[0].commit_index = 3;
    assert!(m.can_change_config(&u, 0, leave));
    assert!(
        !m.can_change_config(&u, 0, cfg(&[0, 1], &[], &[])),
        "not its C_new"
    );
}

#[test]
fn a_joint_configuration_needs_both_majorities_and_learners_never_count() {
    let m = four_servers();
    let joint = cfg(&[0, 1, 3], &[0, 1, 2], &[]);
    let set = |ids: &[u8]| ids.iter().fold(0u8, |acc, i| acc | (1 << i));
    assert!(m.quorum_holds(joint, set(&[0, 1])), "a majority of each");
    assert!(!m.quorum_holds(joint, set(&[0, 3])), "C_new's alone");
    assert!(!m.quorum_holds(joint, set(&[0, 2])), "C_old's alone");
    let buggy = RaftModel::with_bug(m.bounds, Some(Bug::JointNewQuorumOnly));
    assert!(buggy.quorum_holds(joint, set(&[0, 3])));
    let with_learner = cfg(&[0, 1, 2], &[], &[3]);
    assert!(!m.quorum_holds(with_learner, set(&[0, 3])));
    // A learner does not time out, and a candidate does not ask it.
    let mut s = with_leader(&m, 2, &[1]);
    s.servers[0].log.push(Entry::configuration(2, with_learner));
    s.servers[1].log = s.servers[0].log.clone();
    s.servers[3].log = s.servers[0].log.clone();
    assert!(!m.can_timeout(&s, 3));
    assert!(m.can_timeout(&s, 1));
    let t = m.step(&s, &Action::Timeout(1)).unwrap();
    let asked: Vec<u8> = t.network.distinct().map(|m| m.to).collect();
    assert_eq!(asked, [0, 2]);
    // A server outside the configuration does not time out either.
    let u = m.init_state();
    assert!(!m.can_timeout(&u, 3));
    assert!(m.can_timeout(&u, 2));
}

#[test]
fn a_leader_that_commits_its_own_removal_steps_down() {
    let m = four_servers();
    let mut s = with_leader(&m, 2, &[2]);
    s.servers[0].commit_index = 1;
    let without_leader = cfg(&[1, 2], &[], &[]);
    s = m
        .step(&s, &Action::ChangeConfig(0, without_leader))
        .unwrap();
    assert_eq!(
        s.server(0).role,
        Role::Leader,
        "it leads until the change commits"
    );
    // The leader does not count itself: one of two remaining voters is not a majority.
    s.servers[0].match_index[1] = 2;
    assert!(!m.can_advance_commit_index(&s, 0, 2));
    s.servers[0].match_index[2] = 2;
    let t = m.step(&s, &Action::AdvanceCommitIndex(0, 2)).unwrap();
    assert_eq!(t.server(0).role, Role::Follower);
    assert!(!m.can_timeout(&t, 0), "no longer a voter");
}

fn pre_vote_model(check_quorum: bool) -> RaftModel {
    RaftModel::new(model::bounds::Bounds {
        pre_vote: true,
        check_quorum,
        max_transfers: 1,
        ..preset("default").unwrap().bounds
    })
}

fn pre_vote(last_index: u32, last_term: u32) -> Body {
    Body::PreVote {
        last_log_index: last_index,
        last_log_term: last_term,
    }
}

#[test]
fn a_pre_vote_raises_no_term_until_a_quorum_grants_it() {
    let m = pre_vote_model(false);
    let s = m.step(&m.init_state(), &Action::Timeout(0)).unwrap();
    let s0 = s.server(0);
    assert_eq!(
        (s0.role, s0.current_term, s0.voted_for),
        (Role::PreCandidate, 0, None)
    );
    let asks: Vec<_> = s.network.distinct().cloned().collect();
    assert_eq!(
        asks,
        vec![msg(0, 1, 1, pre_vote(0, 0)), msg(0, 2, 1, pre_vote(0, 0))]
    );
    // The receiver grants without adopting the term, and the reply carries the pre-vote's term.
    let t = m.step(&s, &Action::Receive(asks[0].clone())).unwrap();
    assert_eq!((t.server(1).current_term, t.server(1).voted_for), (0, None));
    let grant = reply_to(&t, 0);
    assert_eq!(grant, msg(1, 0, 1, Body::PreVoteReply { granted: true }));
    // A quorum (with its own) makes a candidate of term 1, which asks for real votes.
    let u = m.step(&t, &Action::Receive(grant)).unwrap();
    let s0 = u.server(0);
    assert_eq!(
        (s0.role, s0.current_term, s0.voted_for),
        (Role::Candidate, 1, Some(0))
    );
    assert!(u.has(flags::PRE_VOTE_WON));
    assert!(u.network.distinct().any(|x| matches!(
        x.body,
        Body::RequestVote {
            transfer: false,
            ..
        }
    ) && x.term == 1));
    // The pre-vote-raises-term bug adopts the pre-vote's term: a term no candidate began.
    let bug = RaftModel::with_bug(m.bounds, Some(Bug::PreVoteRaisesTerm));
    let v = bug.step(&s, &Action::Receive(asks[0].clone())).unwrap();
    assert_eq!(v.server(1).current_term, 1);
    assert!(v.has(flags::NEW_TERM_WITHOUT_CANDIDATE));
    assert!(!t.has(flags::NEW_TERM_WITHOUT_CANDIDATE));
}

#[test]
fn a_pre_vote_is_refused_for_its_term_or_its_log_and_a_higher_refusal_ends_it() {
    let m = pre_vote_model(false);
    let mut s = m.step(&m.init_state(), &Action::Timeout(0)).unwrap();
    // Server 1 is already in term 1: a pre-vote for term 1 is stale there.
    s.servers[1].current_term = 1;
    let t = deliver(&m, &s, msg(0, 1, 1, pre_vote(0, 0)));
    let refusal = reply_to(&t, 0);
    assert_eq!(refusal, msg(1, 0, 1, Body::PreVoteReply { granted: false }));
    // Server 2 holds an entry of term 1 that the pre-candidate lacks: it refuses in its own
    // term, no higher than the pre-candidate's, so the refusal is dead at once.
    s.servers[2].log = log(&[1]);
    let u = deliver(&m, &s, msg(0, 2, 1, pre_vote(0, 0)));
    assert_eq!(u.server(2), s.server(2));
    assert_eq!(u.network, s.network, "no reply left in flight");
    assert!(!u.has(flags::PRUNED_NOT_DEAD), "and rightly so");
    // A refusal of a higher term than the pre-candidate's own makes it a follower of that term.
    let w = m.step(&t, &Action::Receive(refusal)).unwrap();
    assert_eq!(
        (w.server(0).role, w.server(0).current_term),
        (Role::Follower, 1)
    );
    // A granted reply of the next term still counts for a server that may stand again in its
    // term; one of its own term or lower is dead.
    let late = msg(1, 0, 1, Body::PreVoteReply { granted: true });
    let mut follower = m.init_state();
    assert!(!is_dead(&follower, &late));
    follower.servers[0].current_term = 1;
    assert!(is_dead(&follower, &late));
}

#[test]
fn a_server_in_its_lease_ignores_higher_term_vote_requests_but_not_a_transfers() {
    let m = pre_vote_model(true);
    let s = with_leader(&m, 1, &[]);
    // Server 1 hears from the leader: its lease begins.
    let t = deliver(&m, &s, msg(0, 1, 1, append(0, 0, &[], 0)));
    assert!(t.server(1).lease);
    let ask = |transfer| Body::RequestVote {
        last_log_index: 0,
        last_log_term: 0,
        transfer,
    };
    for body in [pre_vote(0, 0), ask(false)] {
        let u = deliver(&m, &t, msg(2, 1, 2, body));
        assert_eq!(u.server(1), t.server(1), "ignored");
        assert_eq!(u.network, t.network, "unanswered");
        // The leader is in its lease too.
        let v = deliver(&m, &t, msg(2, 0, 2, pre_vote(0, 0)));
        assert_eq!(v.server(0).role, Role::Leader);
    }
    let u = deliver(&m, &t, msg(2, 1, 2, ask(true)));
    assert_eq!(u.server(1).current_term, 2, "a transfer's request is heard");
    assert_eq!(u.server(1).voted_for, Some(2));
    // Forced to treat a transfer's request as any other, the lease stops it too.
    let mut no_transfer = m.clone();
    no_transfer.stuck = Some((model::coverage::Condition::NotTransfer, true));
    let w = deliver(&no_transfer, &t, msg(2, 1, 2, ask(true)));
    assert_eq!(w.server(1), t.server(1));
    // Once its election timer runs out, it answers.
    let expired = m.step(&t, &Action::LeaseExpires(1)).unwrap();
    assert!(!expired.server(1).lease);
    let w = deliver(&m, &expired, msg(2, 1, 2, pre_vote(0, 0)));
    assert_eq!(reply_to(&w, 2).body, Body::PreVoteReply { granted: true });
    // Without CheckQuorum there is no lease.
    let plain = pre_vote_model(false);
    let x = deliver(&plain, &s, msg(0, 1, 1, append(0, 0, &[], 0)));
    assert!(!x.server(1).lease);
    assert!(!plain.enabled(&x, &Action::CheckQuorum(0)));
}

#[test]
fn a_leader_steps_down_at_a_quorum_check_unless_a_quorum_answered() {
    let m = pre_vote_model(true);
    let s = with_leader(&m, 1, &[]);
    let alone = m.step(&s, &Action::CheckQuorum(0)).unwrap();
    assert_eq!(
        (alone.server(0).role, alone.server(0).current_term),
        (Role::Follower, 1)
    );
    assert!(alone.has(flags::CHECK_QUORUM_STEPPED_DOWN));
    let ok = msg(
        1,
        0,
        1,
        Body::AppendEntriesReply {
            outcome: AppendOutcome::Success { match_index: 0 },
            read_round: 0,
        },
    );
    let t = deliver(&m, &s, ok);
    assert_eq!(t.server(0).recent, 1 << 1);
    let held = m.step(&t, &Action::CheckQuorum(0)).unwrap();
    assert_eq!(held.server(0).role, Role::Leader);
    assert_eq!(held.server(0).recent, 0, "the count starts again");
}

#[test]
fn a_leader_hands_over_to_an_up_to_date_voter_which_stands_at_once() {
    let m = pre_vote_model(true);
    let mut s = with_leader(&m, 1, &[1]);
    let to_1 = Action::TransferLeader {
        leader: 0,
        target: 1,
    };
    assert!(!m.enabled(&s, &to_1), "server 1 lacks the leader's entry");
    s.servers[0].match_index[1] = 1;
    s.servers[1].log = log(&[1]);
    let t = m.step(&s, &to_1).unwrap();
    let now = msg(0, 1, 1, Body::TimeoutNow);
    assert_eq!(t.network.count(&now), 1);
    // The target skips PreVote: a candidate of the next term, whose requests say so.
    let u = m.step(&t, &Action::Receive(now.clone())).unwrap();
    assert_eq!(
        (u.server(1).role, u.server(1).current_term),
        (Role::Candidate, 2)
    );
    assert!(u.has(flags::TRANSFER_STARTED));
    assert!(u
        .network
        .distinct()
        .all(|x| matches!(x.body, Body::RequestVote { transfer: true, .. })));
    // A TimeoutNow of an older term, or at a server that is not a follower, starts nothing.
    let mut moved_on = t.clone();
    moved_on.servers[1].current_term = 2;
    let v = m.step(&moved_on, &Action::Receive(now.clone())).unwrap();
    assert_eq!(v.server(1).role, Role::Follower);
    let mut standing = t.clone();
    standing.servers[1].role = Role::PreCandidate;
    let w = m.step(&standing, &Action::Receive(now)).unwrap();
    assert_eq!(w.server(1).role, Role::PreCandidate);
    assert_eq!(w.server(1).current_term, 1);
}
