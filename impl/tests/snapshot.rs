//! §7 Log compaction (Figure 13): the service's snapshots, InstallSnapshot for followers that fell behind the
//! leader's snapshot, the order in which snapshots and commands reach the service, and restarts from a snapshot
//! plus the persisted log tail.

mod common;

use common::{entry, log_terms, Cluster};
use raft::{
    AppendEntries, Apply, Config, ConfigError, Envelope, InstallSnapshot, InstallSnapshotReply,
    Message, Node, PersistentState, SnapshotError,
};

/// A cluster of three with `n` entries committed and applied everywhere (node 0 leads term 1).
fn committed(n: usize) -> Cluster {
    let mut c = Cluster::new(3);
    c.elect(0);
    for k in 0..n {
        let (_, msgs) = c.propose(0, &format!("{}", k + 1));
        c.deliver_all(msgs);
    }
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    for i in 0..3 {
        assert_eq!(c.node(i).last_applied(), n as u64);
    }
    c
}

/// A follower (id 1 of 0, 1, 2) restored from a log of `terms` in `current_term`, with nothing committed.
fn follower(terms: &[u64], current_term: u64) -> Node {
    let state = PersistentState {
        current_term,
        voted_for: None,
        last_included_index: 0,
        last_included_term: 0,
        membership: raft::Membership::of_voters([0, 1, 2]),
        log: terms.iter().map(|&t| entry(t, "f")).collect(),
    };
    Node::new(1, &[0, 1, 2], Config::default(), Some(state), None, 0).unwrap()
}

fn install(term: u64, index: u64, index_term: u64, data: &[u8]) -> Envelope {
    Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::InstallSnapshot(InstallSnapshot {
            term,
            leader_id: 0,
            last_included_index: index,
            last_included_term: index_term,
            membership: Box::new(raft::Membership::of_voters([0, 1, 2])),
            data: data.into(),
        }),
    }
}

fn append(term: u64, prev: u64, prev_term: u64, terms: &[u64], commit: u64) -> Envelope {
    Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::AppendEntries(AppendEntries {
            term,
            leader_id: 0,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries: terms.iter().map(|&t| entry(t, "l")).collect(),
            leader_commit: commit,
            read_round: 0,
        }),
    }
}

fn indexes(applies: &[Apply]) -> Vec<(&'static str, u64)> {
    applies
        .iter()
        .map(|a| match a {
            Apply::Command { index, .. } => ("command", *index),
            Apply::Config { index, .. } => ("config", *index),
            Apply::Snapshot { index, .. } => ("snapshot", *index),
        })
        .collect()
}

#[test]
fn a_snapshot_discards_the_log_through_its_index_and_is_persisted_with_the_state() {
    let mut c = committed(12);
    c.nodes[1].snapshot(9, b"nine".to_vec()).unwrap();
    let ready = c.nodes[1].ready();
    let state = ready.persist().expect("the log changed").clone();
    assert_eq!(
        (state.last_included_index, state.last_included_term),
        (9, 1)
    );
    assert_eq!(
        state.log.len(),
        3,
        "only the tail after the snapshot is persisted"
    );
    assert_eq!(
        ready.snapshot(),
        Some(&b"nine"[..]),
        "saved together with the state"
    );
    c.disk[1] = Some(state.clone());
    c.snapshots[1] = ready.snapshot().map(<[u8]>::to_vec);
    let released = ready.persisted();
    assert!(
        released.applies.is_empty(),
        "the service's own snapshot is not handed back"
    );
    let node = c.node(1);
    assert_eq!((node.last_index(), node.last_term()), (12, 1));
    assert_eq!(node.last_included_index(), 9);
    assert_eq!(node.snapshot_data(), b"nine");
    // The persisted state stays small however long the history: the snapshot is not part of it.
    assert!(raft::encode(&state).len() < 40);

    // Stale snapshots are ignored; snapshots of what was not applied are refused.
    c.nodes[1].snapshot(5, b"five".to_vec()).unwrap();
    c.nodes[1].snapshot(9, b"nine again".to_vec()).unwrap();
    assert!(!c.nodes[1].has_ready());
    assert_eq!(c.node(1).snapshot_data(), b"nine");
    assert_eq!(
        c.nodes[1].snapshot(13, vec![]),
        Err(SnapshotError {
            index: 13,
            last_applied: 12
        })
    );
    // Replication goes on after the snapshot, with absolute indexes.
    let (_, msgs) = c.propose(0, "13");
    c.deliver_all(msgs);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.node(1).last_applied(), 13);
    assert_eq!(c.node(1).log().len(), 4);
}

#[test]
fn a_leader_sends_its_snapshot_to_a_follower_behind_it_then_appends_from_there() {
    let mut c = committed(2);
    // Node 2 misses entries 3..=12, which the leader and node 1 commit, apply and compact.
    for k in 3..=12 {
        let (_, msgs) = c.propose(0, &format!("{k}"));
        c.deliver_all_where(msgs, |m| m.to != 2 && m.from != 2);
    }
    let hb = c.heartbeat(0);
    c.deliver_all_where(hb, |m| m.to != 2 && m.from != 2);
    c.snapshot(0);
    c.ready(0);
    assert_eq!(c.node(0).last_included_index(), 12);

    // A proposal is not sent to a follower that is being probed; the heartbeat finds where it is.
    let (_, msgs) = c.propose(0, "13");
    c.deliver_all_where(msgs, |m| m.to != 2 && m.from != 2);
    let hb = c.heartbeat(0);
    let to2: Vec<Envelope> = hb.into_iter().filter(|m| m.to == 2).collect();
    let rejection = c.deliver(to2[0].clone());
    let after_rejection = c.deliver(rejection[0].clone());
    let snapshot = match &after_rejection[..] {
        [Envelope {
            message: Message::InstallSnapshot(m),
            ..
        }] => m.clone(),
        other => panic!("expected one InstallSnapshot, got {other:?}"),
    };
    assert_eq!(
        (snapshot.last_included_index, snapshot.last_included_term),
        (12, 1)
    );
    assert_eq!(&*snapshot.data, c.node(0).snapshot_data());

    let reply = c.deliver(after_rejection[0].clone());
    assert_eq!(
        reply[0].message,
        Message::InstallSnapshotReply(InstallSnapshotReply {
            term: 1,
            match_index: 12
        })
    );
    assert_eq!(
        c.installed[2],
        vec![(12, 1)],
        "the service got the snapshot"
    );
    assert_eq!(c.disk[2].as_ref().unwrap().last_included_index, 12);
    assert_eq!(c.snapshots[2].as_deref(), Some(c.node(0).snapshot_data()));
    // The leader resumes AppendEntries right after the snapshot and the follower catches up.
    let next = c.deliver(reply[0].clone());
    assert!(matches!(&next[0].message, Message::AppendEntries(a) if a.prev_log_index == 12));
    c.deliver_all(next);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.node(2).last_applied(), 13);
    assert_eq!(c.state_machine[2], c.state_machine[0]);
    assert_eq!(c.node(0).progress(2), Some((14, 13)));
}

#[test]
fn a_snapshot_not_newer_than_the_commit_index_is_ignored_but_acknowledged() {
    let mut n = follower(&[1, 1, 1, 1, 1], 1);
    n.step(append(1, 5, 1, &[], 5)).unwrap();
    let applied = n.ready().persisted().applies;
    assert_eq!(applied.len(), 5);
    n.step(install(1, 4, 1, b"old")).unwrap();
    let ready = n.ready();
    assert!(ready.persist().is_none(), "nothing changed");
    let released = ready.persisted();
    assert!(released.applies.is_empty(), "the service never goes back");
    assert_eq!(
        released.messages[0].message,
        Message::InstallSnapshotReply(InstallSnapshotReply {
            term: 1,
            match_index: 4
        })
    );
    assert_eq!((n.last_included_index(), n.last_index()), (0, 5));
}

#[test]
fn a_newer_snapshot_keeps_the_log_suffix_after_a_matching_entry() {
    let mut n = follower(&[1, 1, 1, 2, 2, 2, 2, 3], 3);
    n.step(append(3, 2, 1, &[], 2)).unwrap();
    let _ = n.ready().persisted();
    n.step(install(3, 5, 2, b"through 5")).unwrap();
    assert_eq!(log_terms(&n), vec![2, 2, 3], "entries 6..=8 survive");
    assert_eq!((n.last_index(), n.commit_index()), (8, 5));
    let ready = n.ready();
    assert_eq!(
        ready.log_changed_from(),
        None,
        "only the prefix went, no entry changed"
    );
    assert_eq!(ready.persist().unwrap().last_included_index, 5);
    assert_eq!(ready.snapshot(), Some(&b"through 5"[..]));
    let released = ready.persisted();
    assert_eq!(indexes(&released.applies), vec![("snapshot", 5)]);
}

#[test]
fn a_newer_snapshot_the_log_does_not_match_discards_the_whole_log() {
    let mut n = follower(&[1, 1, 1, 2, 2], 3);
    n.step(install(3, 4, 3, b"s")).unwrap();
    assert!(n.log().is_empty());
    assert_eq!((n.last_index(), n.last_term()), (4, 3));
    let ready = n.ready();
    assert_eq!(ready.log_changed_from(), Some(5));
    assert!(ready.persist().unwrap().log.is_empty());
    let _ = ready.persisted();
    // A snapshot beyond the log altogether.
    let mut n = follower(&[1], 1);
    n.step(install(2, 10, 2, b"s")).unwrap();
    assert_eq!((n.last_index(), n.commit_index(), n.term()), (10, 10, 2));
}

#[test]
fn an_installed_snapshot_reaches_the_service_before_any_later_command_and_never_after_one() {
    let mut n = follower(&[1, 1, 1], 1);
    n.step(append(1, 3, 1, &[], 2)).unwrap();
    assert_eq!(
        indexes(&n.ready().persisted().applies),
        vec![("command", 1), ("command", 2)]
    );
    // Snapshot through 6, then entries 7 and 8 commit, before the service looks again: one batch, in order.
    n.step(install(1, 6, 1, b"s")).unwrap();
    n.step(append(1, 6, 1, &[1, 1], 8)).unwrap();
    let applies = n.ready().persisted().applies;
    assert_eq!(
        indexes(&applies),
        vec![("snapshot", 6), ("command", 7), ("command", 8)]
    );
    assert_eq!(
        applies[0],
        Apply::Snapshot {
            index: 6,
            term: 1,
            data: b"s".to_vec()
        }
    );
    assert_eq!(n.last_applied(), 8);
    // Two snapshots before the service looks: only the newest is handed out.
    n.step(install(1, 12, 1, b"a")).unwrap();
    n.step(install(1, 15, 1, b"b")).unwrap();
    assert_eq!(
        indexes(&n.ready().persisted().applies),
        vec![("snapshot", 15)]
    );
}

#[test]
fn append_entries_reaching_into_the_snapshot_are_accepted_after_it() {
    let mut n = follower(&[], 1);
    n.step(install(1, 10, 1, b"s")).unwrap();
    let _ = n.ready().persisted();
    // prev_log_index 5 is compacted here, but everything through 10 is committed and so matches the leader.
    n.step(append(1, 5, 1, &[1, 1, 1, 1, 1, 1, 1], 12)).unwrap();
    let released = n.ready().persisted();
    match &released.messages[0].message {
        Message::AppendEntriesReply(r) => assert!(r.success && r.match_index == 12, "{r:?}"),
        m => panic!("unexpected {m:?}"),
    }
    assert_eq!(
        (n.last_index(), n.log().len(), n.commit_index()),
        (12, 2, 12)
    );
    // Entirely inside the snapshot: a success that acknowledges what was asked (prev_log_index plus the
    // entries, as Figure 2 and the model say), nothing more.
    n.step(append(1, 2, 1, &[1, 1], 12)).unwrap();
    let released = n.ready().persisted();
    match &released.messages[0].message {
        Message::AppendEntriesReply(r) => assert!(r.success && r.match_index == 4, "{r:?}"),
        m => panic!("unexpected {m:?}"),
    }
    assert_eq!(n.last_index(), 12);
}

#[test]
fn a_restart_resumes_from_the_snapshot_and_the_persisted_tail() {
    let mut c = committed(12);
    c.snapshot(1);
    c.ready(1);
    c.restart(1);
    let node = c.node(1);
    assert_eq!(
        (
            node.last_included_index(),
            node.last_index(),
            node.commit_index()
        ),
        (12, 12, 12)
    );
    assert!(node.log().is_empty());
    // The first Ready hands the service its snapshot; commands continue after it.
    c.ready(1);
    assert_eq!(c.installed[1], vec![(12, 1)]);
    assert_eq!(c.state_machine[1], c.state_machine[0]);
    let (_, msgs) = c.propose(0, "13");
    c.deliver_all(msgs);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(
        c.applied[1].iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![13]
    );

    // A snapshot, then more entries: a restart keeps both (the snapshot is saved again with every state).
    c.snapshot(2);
    c.ready(2);
    let (_, msgs) = c.propose(0, "14");
    c.deliver_all(msgs);
    c.restart(2);
    assert_eq!(
        (c.node(2).last_included_index(), c.node(2).last_index()),
        (13, 14)
    );
    assert_eq!(
        c.node(2).snapshot_data(),
        c.snapshots[2].as_deref().unwrap()
    );
    // A restarted leader-to-be with a snapshot still wins elections and replicates.
    c.restart(0);
    c.elect(2);
    let (_, msgs) = c.propose(2, "15");
    c.deliver_all(msgs);
    let hb = c.heartbeat(2);
    c.deliver_all(hb);
    for i in 0..3 {
        assert_eq!(c.node(i).commit_index(), 15, "node {i}");
    }
}

#[test]
fn persisted_snapshot_metadata_is_checked_on_restart() {
    let config = Config::default();
    let state = |index, term, current_term| PersistentState {
        current_term,
        voted_for: None,
        last_included_index: index,
        last_included_term: term,
        membership: raft::Membership::of_voters([0, 1]),
        log: vec![entry(2, "")],
    };
    let new = |state, snapshot: Option<&[u8]>| {
        Node::new(
            0,
            &[0, 1],
            config.clone(),
            Some(state),
            snapshot.map(<[u8]>::to_vec),
            0,
        )
    };
    assert!(new(state(5, 2, 2), Some(b"s")).is_ok());
    let invalid =
        |r: Result<Node, ConfigError>| matches!(r, Err(ConfigError::InvalidPersistedState(_)));
    assert!(
        invalid(new(state(5, 2, 2), None)),
        "the snapshot is missing"
    );
    assert!(
        invalid(new(state(0, 0, 2), Some(b"s"))),
        "a snapshot without an index"
    );
    assert!(
        invalid(new(state(0, 1, 2), None)),
        "a term without an index"
    );
    assert!(
        invalid(new(state(5, 3, 3), Some(b"s"))),
        "log terms below the snapshot's"
    );
    assert!(invalid(new(state(5, 0, 2), Some(b"s"))), "snapshot term 0");
    assert!(
        invalid(new(state(5, 4, 2), Some(b"s"))),
        "snapshot term above current_term"
    );
    assert!(
        invalid(new(state(u64::MAX, 2, 2), Some(b"s"))),
        "indexes overflow"
    );
}

#[test]
fn impossible_install_snapshots_are_refused() {
    let mut n = follower(&[1], 1);
    for (index, term) in [(0, 1), (3, 0), (3, 5), (u64::MAX, 1)] {
        assert!(
            n.step(install(2, index, term, b"s")).is_err(),
            "{index}/{term}"
        );
    }
    let mut spoofed = install(2, 3, 1, b"s");
    spoofed.from = 2;
    assert!(n.step(spoofed).is_err());
    assert!(!n.has_ready(), "refused messages leave no trace");
    // A stale InstallSnapshot gets our term back, so that its sender steps down.
    n.step(install(3, 5, 3, b"s")).unwrap();
    let _ = n.ready().persisted();
    n.step(install(2, 7, 2, b"old")).unwrap();
    let released = n.ready().persisted();
    assert_eq!(
        released.messages[0].message,
        Message::InstallSnapshotReply(InstallSnapshotReply {
            term: 3,
            match_index: 0
        })
    );
    assert_eq!(n.last_included_index(), 5);
}

/// A cluster of three where node 2 heard nothing from the leader (node 0) while entries 1..=5 committed
/// and the leader compacted them, and entry 6 was appended after the snapshot: the leader's next heartbeat
/// sends node 2 the snapshot.
fn follower_far_behind() -> Cluster {
    let mut c = Cluster::new(3);
    c.elect(0);
    let cut = |m: &Envelope| m.to != 2 && m.from != 2;
    for k in 1..=5 {
        let (_, msgs) = c.propose(0, &format!("{k}"));
        c.deliver_all_where(msgs, cut);
    }
    let hb = c.heartbeat(0);
    c.deliver_all_where(hb, cut);
    c.snapshot(0);
    c.ready(0);
    let (_, msgs) = c.propose(0, "6");
    c.deliver_all_where(msgs, cut);
    assert_eq!(c.node(0).last_included_index(), 5);
    assert_eq!(c.node(2).last_index(), 0);
    c
}

fn is_install(m: &Envelope) -> bool {
    matches!(m.message, Message::InstallSnapshot(_))
}

/// Pacing: the leader sends a follower far behind one InstallSnapshot, and while no answer comes only
/// heartbeats, which keep the follower from starting an election; once `snapshot_resend_ticks` have passed
/// it sends the snapshot again (the first may have been lost); after the follower's answer it replicates
/// as usual and sends no more snapshots.
#[test]
fn a_leader_sends_a_snapshot_once_per_round_trip_and_heartbeats_meanwhile() {
    let mut c = follower_far_behind();
    let config = c.config.clone();
    let first = config.heartbeat_ticks;
    let resend = first
        + config
            .snapshot_resend_ticks
            .div_ceil(config.heartbeat_ticks)
            * config.heartbeat_ticks;
    let mut installs = Vec::new();
    let mut in_flight = Vec::new();
    for t in 1..=config.snapshot_resend_ticks + 2 * config.heartbeat_ticks {
        c.nodes[0].tick();
        c.nodes[2].tick();
        let mut queue = c.ready(0);
        queue.extend(c.ready(2));
        // Everything but the snapshot is delivered, and what it causes: heartbeats reach node 2, whose
        // refusals (its log is empty) reach the leader.
        while let Some(m) = queue.pop() {
            if is_install(&m) {
                assert!(
                    t == first || t == resend,
                    "an InstallSnapshot at tick {t}, after one at tick {first}"
                );
                installs.push(t);
                in_flight.push(m);
            } else {
                queue.extend(c.deliver(m));
            }
        }
        assert!(
            !c.node(2).is_leader() && c.node(2).term() == 1,
            "node 2 stays a follower"
        );
    }
    assert_eq!(
        installs,
        vec![first, resend],
        "one snapshot, then one resend after the timeout"
    );
    assert_eq!(c.node(0).progress(2), Some((1, 0)));

    // The resent snapshot arrives; the answer lets the leader go on with entry 6.
    let answer = c.deliver(in_flight.pop().unwrap());
    let next = c.deliver(answer[0].clone());
    assert!(
        matches!(&next[..], [m] if matches!(&m.message, Message::AppendEntries(a) if a.prev_log_index == 5 && a.entries.len() == 1))
    );
    c.deliver_all(next);
    assert_eq!(c.node(0).progress(2), Some((7, 6)));
    assert_eq!(c.node(0).replicating(2), Some(true));
    // The first copy, arriving late, is acknowledged without effect; no snapshot goes out any more.
    let late = c.deliver(in_flight.pop().unwrap());
    assert!(c.deliver(late[0].clone()).is_empty());
    for _ in 0..3 * config.snapshot_resend_ticks / config.heartbeat_ticks {
        let hb = c.heartbeat(0);
        assert!(!hb.iter().any(is_install));
        c.deliver_all(hb);
    }
    assert_eq!(c.node(2).last_applied(), 6);
    assert_eq!(c.state_machine[2], c.state_machine[0]);
    assert_eq!(c.installed[2], vec![(5, 1)]);
}

/// A heartbeat sent while the snapshot travels starts from the snapshot's last entry: a follower that
/// already holds that entry answers it, and the leader replicates from there without waiting for the
/// snapshot's answer.
#[test]
fn a_heartbeat_that_finds_the_snapshots_entries_ends_the_wait() {
    let mut c = Cluster::new(3);
    // Node 2 gets everything but its answers are lost, so the leader keeps probing it from index 1.
    let deaf = |m: &Envelope| m.from != 2;
    let votes = c.campaign(0);
    c.deliver_all_where(votes, deaf);
    assert!(c.node(0).is_leader());
    for k in 1..=5 {
        let (_, msgs) = c.propose(0, &format!("{k}"));
        c.deliver_all_where(msgs, deaf);
    }
    let hb = c.heartbeat(0);
    c.deliver_all_where(hb, deaf);
    assert_eq!(c.node(2).last_index(), 5);
    assert_eq!(c.node(0).progress(2), Some((1, 0)));
    c.snapshot(0);
    c.ready(0);
    let hb = c.heartbeat(0);
    let install: Vec<Envelope> = hb.iter().filter(|m| m.to == 2).cloned().collect();
    assert!(matches!(&install[..], [m] if is_install(m)));
    c.deliver_all(hb.into_iter().filter(|m| m.to != 2).collect());
    // The snapshot is on its way (not delivered); the next heartbeat to node 2 is an AppendEntries from
    // index 5, which node 2 holds.
    let hb = c.heartbeat(0);
    let to2: Vec<Envelope> = hb.iter().filter(|m| m.to == 2).cloned().collect();
    assert!(
        matches!(&to2[..], [m] if matches!(&m.message, Message::AppendEntries(a) if a.prev_log_index == 5 && a.entries.is_empty()))
    );
    c.deliver_all(hb);
    assert_eq!(c.node(0).progress(2), Some((6, 5)));
    assert_eq!(c.node(0).replicating(2), Some(true));
    let (_, msgs) = c.propose(0, "6");
    assert!(
        msgs.iter().any(|m| m.to == 2),
        "node 2 gets new entries at once"
    );
    c.deliver_all(msgs);
    let hb = c.heartbeat(0);
    c.deliver_all(hb);
    assert_eq!(c.node(2).last_applied(), 6);
    assert!(
        c.installed[2].is_empty(),
        "node 2 never needed the snapshot"
    );
}

#[test]
fn a_resend_wait_shorter_than_a_heartbeat_is_refused() {
    let config = Config {
        snapshot_resend_ticks: 9,
        heartbeat_ticks: 10,
        ..Config::default()
    };
    assert_eq!(
        Node::new(0, &[0, 1], config, None, None, 0).err(),
        Some(ConfigError::SnapshotResend {
            resend: 9,
            heartbeat: 10
        })
    );
}
