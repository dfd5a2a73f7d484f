//! Extreme terms and indexes, from the wire and from disk. Whatever a peer sends, to a node in whatever role,
//! nothing panics (the tests run with overflow checks and debug assertions on), the node's term and log stay
//! within [`MAX_TERM`] and [`MAX_INDEX`], it never sends a value beyond them, and every state it asks to
//! persist is one [`Node::new`] accepts, so a restart works.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use raft::{
    AppendEntries, AppendEntriesReply, Config, ConfigError, Entry, Envelope, Index,
    InstallSnapshot, InstallSnapshotReply, Message, Node, NodeId, NotLeader, PersistentState,
    RequestVote, RequestVoteReply, Role, StepError, Term, TimeoutNow, MAX_INDEX, MAX_TERM,
};

/// The first refused value, for terms and indexes alike.
const CEILING: u64 = MAX_TERM + 1;

fn entry(term: Term) -> Entry {
    Entry::command(term, b"e".to_vec())
}

/// A cluster driven by hand, with a network that is a plain list. Unlike the other tests' harness, it takes
/// any snapshot bytes (a forged InstallSnapshot carries arbitrary data).
struct World {
    ids: Vec<NodeId>,
    config: Config,
    nodes: Vec<Node>,
    disk: Vec<Option<PersistentState>>,
    snapshots: Vec<Option<Vec<u8>>>,
    network: Vec<Envelope>,
}

impl World {
    /// Nodes restored from `disk`, without PreVote: the setups below make candidates and leaders by
    /// Figure 2's election, where the election timer's firing starts the election.
    fn new(disk: Vec<Option<PersistentState>>, snapshots: Vec<Option<Vec<u8>>>) -> World {
        let config = Config {
            pre_vote: false,
            ..Config::default()
        };
        World::with_config(config, disk, snapshots)
    }

    fn with_config(
        config: Config,
        disk: Vec<Option<PersistentState>>,
        snapshots: Vec<Option<Vec<u8>>>,
    ) -> World {
        let ids: Vec<NodeId> = (0..disk.len() as NodeId).collect();
        let mut w = World {
            nodes: Vec::new(),
            config,
            ids,
            disk,
            snapshots,
            network: Vec::new(),
        };
        w.nodes = (0..w.ids.len())
            .map(|i| w.restored(i).expect("a valid setup"))
            .collect();
        for i in 0..w.nodes.len() {
            w.drain(i);
        }
        w
    }

    fn fresh(n: usize) -> World {
        World::new(vec![None; n], vec![None; n])
    }

    /// Node `i` as a restart would bring it back from its disk.
    fn restored(&self, i: usize) -> Result<Node, ConfigError> {
        let snapshot = self.disk[i]
            .as_ref()
            .filter(|d| d.last_included_index > 0)
            .and(self.snapshots[i].clone());
        Node::new(
            self.ids[i],
            &self.ids,
            self.config.clone(),
            self.disk[i].clone(),
            snapshot,
            11,
        )
    }

    /// Takes node `i`'s `Ready`: persists (and checks that what was persisted restarts the node), then
    /// releases its messages into the network.
    fn drain(&mut self, i: usize) {
        let ready = self.nodes[i].ready();
        if let Some(state) = ready.persist() {
            self.disk[i] = Some(state.clone());
            if let Some(snapshot) = ready.snapshot() {
                self.snapshots[i] = Some(snapshot.to_vec());
            }
            if let Err(e) = self.restored(i) {
                panic!("node {i} persisted a state it cannot restart from: {e}");
            }
        }
        let durable_term = self.disk[i].as_ref().map_or(0, |d| d.current_term);
        let released = ready.persisted();
        for m in &released.messages {
            assert!(
                m.message.sender_term().is_none_or(|t| t <= durable_term),
                "sent before persisted"
            );
            check_sent(m);
        }
        for apply in &released.applies {
            assert!(apply.index() <= MAX_INDEX);
        }
        self.network.extend(released.messages);
        let excess = self.network.len().saturating_sub(64);
        self.network.drain(..excess);
    }

    /// Delivers the network's messages in order, and what they cause, dropping those `keep` refuses.
    fn settle(&mut self, keep: impl Fn(&Envelope) -> bool) {
        let mut budget = 10_000;
        while !self.network.is_empty() && budget > 0 {
            budget -= 1;
            let m = self.network.remove(0);
            if keep(&m) {
                let to = m.to as usize;
                let _ = self.nodes[to].step(m);
                self.drain(to);
            }
        }
    }

    fn tick_until(&mut self, i: usize, done: impl Fn(&Node) -> bool) {
        for _ in 0..1_000 {
            if done(&self.nodes[i]) {
                return;
            }
            self.nodes[i].tick();
            self.drain(i);
        }
        panic!("node {i} did not get there");
    }

    fn elect(&mut self, i: usize, keep: impl Fn(&Envelope) -> bool + Copy) {
        self.tick_until(i, |n| n.role() != Role::Follower);
        self.settle(keep);
        assert!(self.nodes[i].is_leader());
    }

    fn propose(&mut self, i: usize, k: usize, keep: impl Fn(&Envelope) -> bool + Copy) {
        for _ in 0..k {
            self.nodes[i].propose(b"p".to_vec()).unwrap();
            self.drain(i);
            self.settle(keep);
        }
    }

    /// The bounds every node keeps, whatever it was sent.
    fn check(&self) {
        for n in &self.nodes {
            assert!(n.term() <= MAX_TERM, "term {} beyond MAX_TERM", n.term());
            assert!(n.last_index() <= MAX_INDEX, "log beyond MAX_INDEX");
            assert!(n.commit_index() <= n.last_index());
            assert!(n.last_applied() <= n.commit_index());
            for &peer in n.peers() {
                if let Some((next, matched)) = n.progress(peer) {
                    assert!(matched < next && next <= n.last_index() + 1);
                }
            }
        }
    }
}

/// What a node sends stays within the ceilings (a conflict hint may name the index after a full log).
fn check_sent(m: &Envelope) {
    let term = m.message.term();
    assert!(term <= MAX_TERM, "sent term {term}");
    let indexes: Vec<Index> = match &m.message {
        Message::RequestVote(r) | Message::PreVote(r) => vec![r.last_log_index],
        Message::RequestVoteReply(_) | Message::PreVoteReply(_) => vec![],
        Message::AppendEntries(a) => {
            vec![a.prev_log_index + a.entries.len() as Index, a.leader_commit]
        }
        Message::AppendEntriesReply(r) => {
            vec![
                r.prev_log_index,
                r.match_index,
                r.conflict_index.saturating_sub(1),
            ]
        }
        Message::InstallSnapshot(s) => vec![s.last_included_index],
        Message::InstallSnapshotReply(r) => vec![r.match_index],
        Message::TimeoutNow(_) => vec![],
    };
    assert!(
        indexes.iter().all(|&i| i <= MAX_INDEX),
        "sent an index beyond MAX_INDEX: {m:?}"
    );
}

/// Node `i`'s disk: `current_term`, a snapshot through `snap` of term `snap_term` (none if `snap` is 0), and
/// log entries of `terms` after it.
fn disk(current_term: Term, snap: Index, snap_term: Term, terms: &[Term]) -> PersistentState {
    PersistentState {
        current_term,
        voted_for: None,
        last_included_index: snap,
        last_included_term: snap_term,
        membership: Default::default(),
        log: terms.iter().map(|&t| entry(t)).collect(),
    }
}

fn with_disks(disks: Vec<PersistentState>) -> World {
    let snapshots = disks
        .iter()
        .map(|d| (d.last_included_index > 0).then(|| b"snap".to_vec()))
        .collect();
    World::new(disks.into_iter().map(Some).collect(), snapshots)
}

const ALL: fn(&Envelope) -> bool = |_| true;

/// The starting points: followers, a candidate, leaders with logs and snapshots (one with a follower far
/// behind), a restored follower with a snapshot, single servers, and clusters next to both ceilings.
fn setup(kind: u8) -> World {
    match kind {
        // Three fresh followers.
        0 => World::fresh(3),
        // Node 0 is a candidate whose RequestVotes are in flight.
        1 => {
            let mut w = World::fresh(3);
            w.tick_until(0, |n| n.role() == Role::Candidate);
            w
        }
        // Node 0 leads term 1 with four entries committed everywhere.
        2 => {
            let mut w = World::fresh(3);
            w.elect(0, ALL);
            w.propose(0, 4, ALL);
            w
        }
        // Node 0 leads, has snapshotted, and node 2 never heard from it: it needs the snapshot.
        3 => {
            let mut w = World::fresh(3);
            let cut = |m: &Envelope| m.to != 2 && m.from != 2;
            w.elect(0, cut);
            w.propose(0, 5, cut);
            let applied = w.nodes[0].last_applied();
            w.nodes[0].snapshot(applied, b"state".to_vec()).unwrap();
            w.drain(0);
            w
        }
        // Node 1 restored with a snapshot through 10 and two entries after it.
        4 => with_disks(vec![
            disk(3, 0, 0, &[]),
            disk(3, 10, 2, &[3, 3]),
            disk(2, 0, 0, &[1]),
        ]),
        // A single server leading with a log.
        5 => {
            let mut w = World::fresh(1);
            w.elect(0, ALL);
            w.propose(0, 3, ALL);
            w
        }
        // Three servers one term below the ceiling, logs ending two entries below it; node 0 wins the last
        // term there is.
        6 => {
            let t = MAX_TERM - 1;
            let d = disk(t, MAX_INDEX - 3, t, &[t]);
            let mut w = with_disks(vec![d.clone(), d.clone(), d]);
            w.elect(0, ALL);
            w
        }
        // A single server one term below the ceiling whose log ends one entry below it.
        _ => {
            let t = MAX_TERM - 1;
            let mut w = with_disks(vec![disk(t, MAX_INDEX - 2, t - 1, &[t])]);
            w.elect(0, ALL);
            w
        }
    }
}

/// A term or index for a message to node `n`: the extremes, the ceiling and its neighbours, and values next
/// to the node's own term, last index, commit index and snapshot.
fn value(sel: u8, n: &Node) -> u64 {
    let (t, l, c, s) = (
        n.term(),
        n.last_index(),
        n.commit_index(),
        n.last_included_index(),
    );
    match sel % 20 {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - 1,
        4 => CEILING - 1,
        5 => CEILING,
        6 => CEILING + 1,
        7 => t.saturating_sub(1),
        8 => t,
        9 => t.saturating_add(1),
        10 => l.saturating_sub(1),
        11 => l,
        12 => l.saturating_add(1),
        13 => c.saturating_sub(1),
        14 => c,
        15 => c.saturating_add(1),
        16 => s,
        17 => s.saturating_add(1),
        18 => CEILING - 2,
        _ => 2,
    }
}

#[derive(Clone, Debug)]
enum Op {
    Tick {
        node: usize,
        times: u8,
    },
    Propose {
        node: usize,
    },
    /// A host asks the node to hand its leadership over to server `to` (an id, possibly a stranger's).
    Transfer {
        node: usize,
        to: u64,
    },
    /// The service snapshots everything it applied.
    Snapshot {
        node: usize,
    },
    /// One message from the network, delivered.
    Deliver {
        pick: usize,
    },
    /// A crash and a restart from the disk.
    Restart {
        node: usize,
    },
    /// A message of kind `kind` from a peer, its terms and indexes chosen by `v` (see [`value`]).
    Forge {
        node: usize,
        from: usize,
        kind: u8,
        v: [u8; 5],
        flag: bool,
        entries: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0usize..3, 1u8..70).prop_map(|(node, times)| Op::Tick { node, times }),
        1 => (0usize..3).prop_map(|node| Op::Propose { node }),
        1 => (0usize..3, 0u64..4).prop_map(|(node, to)| Op::Transfer { node, to }),
        1 => (0usize..3).prop_map(|node| Op::Snapshot { node }),
        3 => any::<usize>().prop_map(|pick| Op::Deliver { pick }),
        1 => (0usize..3).prop_map(|node| Op::Restart { node }),
        8 => (0usize..3, 0usize..2, 0u8..9, any::<[u8; 5]>(), any::<bool>(), 0u8..3).prop_map(
            |(node, from, kind, v, flag, entries)| Op::Forge { node, from, kind, v, flag, entries }
        ),
    ]
}

fn forge(w: &World, to: usize, from: usize, kind: u8, v: [u8; 5], flag: bool, k: u8) -> Envelope {
    let n = &w.nodes[to];
    let from = w.ids[(to + 1 + from) % w.ids.len()];
    let x = |i: usize| value(v[i], n);
    let message = match kind {
        0 => Message::RequestVote(RequestVote {
            term: x(0),
            candidate_id: from,
            last_log_index: x(1),
            last_log_term: x(2),
            transfer: flag,
        }),
        1 => Message::RequestVoteReply(RequestVoteReply {
            term: x(0),
            vote_granted: flag,
        }),
        2 => Message::AppendEntries(AppendEntries {
            term: x(0),
            leader_id: from,
            prev_log_index: x(1),
            prev_log_term: x(2),
            entries: (0..k).map(|_| entry(x(3))).collect(),
            leader_commit: x(4),
            read_round: 0,
        }),
        3 => Message::AppendEntriesReply(AppendEntriesReply {
            term: x(0),
            success: flag,
            prev_log_index: x(1),
            match_index: x(2),
            conflict_term: (k > 0).then(|| x(3)),
            conflict_index: x(4),
            read_round: 0,
        }),
        4 => Message::InstallSnapshot(InstallSnapshot {
            term: x(0),
            leader_id: from,
            last_included_index: x(1),
            last_included_term: x(2),
            membership: Box::new(raft::Membership::of_voters(0..3)),
            data: vec![k].into(),
        }),
        5 => Message::InstallSnapshotReply(InstallSnapshotReply {
            term: x(0),
            match_index: x(1),
        }),
        6 => Message::PreVote(RequestVote {
            term: x(0),
            candidate_id: from,
            last_log_index: x(1),
            last_log_term: x(2),
            transfer: false,
        }),
        7 => Message::PreVoteReply(RequestVoteReply {
            term: x(0),
            vote_granted: flag,
        }),
        _ => Message::TimeoutNow(TimeoutNow {
            term: x(0),
            leader_id: from,
        }),
    };
    Envelope {
        from,
        to: w.ids[to],
        seq: 0,
        message,
    }
}

fn run(w: &mut World, op: Op) {
    let size = w.nodes.len();
    match op {
        Op::Tick { node, times } => {
            let i = node % size;
            for _ in 0..times {
                w.nodes[i].tick();
            }
            w.drain(i);
        }
        Op::Propose { node } => {
            let i = node % size;
            let _ = w.nodes[i].propose(b"x".to_vec());
            w.drain(i);
        }
        Op::Transfer { node, to } => {
            let i = node % size;
            let _ = w.nodes[i].transfer_leader(to);
            w.drain(i);
        }
        Op::Snapshot { node } => {
            let i = node % size;
            let applied = w.nodes[i].last_applied();
            w.nodes[i].snapshot(applied, b"svc".to_vec()).unwrap();
            w.drain(i);
        }
        Op::Deliver { pick } => {
            if !w.network.is_empty() {
                let m = w.network.remove(pick % w.network.len());
                let to = m.to as usize;
                let _ = w.nodes[to].step(m);
                w.drain(to);
            }
        }
        Op::Restart { node } => {
            let i = node % size;
            w.nodes[i] = w.restored(i).expect("the disk restarts the node");
            w.drain(i);
        }
        Op::Forge {
            node,
            from,
            kind,
            v,
            flag,
            entries,
        } => {
            let i = node % size;
            let m = forge(w, i, from, kind, v, flag, entries);
            let _ = w.nodes[i].step(m);
            w.drain(i);
        }
    }
    w.check();
}

proptest! {
    // A fixed seed: the same cases on every run (PROPTEST_RNG_SEED does not override it).
    #![proptest_config(ProptestConfig {
        cases: 1_000,
        rng_seed: RngSeed::Fixed(20_261_129),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any role, any history, messages of every kind with extreme terms and indexes, ticks, proposals,
    /// snapshots, deliveries and restarts: no panic, no term or index past the ceilings, and every persisted
    /// state restarts the node.
    #[test]
    fn extreme_terms_and_indexes_never_panic_nor_pass_the_ceilings(
        kind in 0u8..8,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut w = setup(kind);
        w.check();
        for op in ops {
            run(&mut w, op);
        }
    }

    /// The same with PreVote (the default configuration), from fresh followers and from followers next to
    /// the term ceiling: pre-candidates, pre-votes of every term, forged ones included.
    #[test]
    fn extreme_terms_and_indexes_with_pre_vote_never_panic_nor_pass_the_ceilings(
        near_ceiling in any::<bool>(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let term = if near_ceiling { MAX_TERM - 1 } else { 0 };
        let disks: Vec<_> = (0..3).map(|_| Some(disk(term, 0, 0, &[]))).collect();
        let mut w = World::with_config(Config::default(), disks, vec![None; 3]);
        assert!(w.config.pre_vote);
        w.check();
        for op in ops {
            run(&mut w, op);
        }
    }
}

/// The case that overflowed: a RequestVote of term `u64::MAX` used to be adopted, and the node's next
/// election computed `u64::MAX + 1` (a panic with overflow checks; in release the term wrapped to 0 and was
/// persisted). It is refused as malformed, and the next election is an ordinary one.
#[test]
fn a_request_vote_of_term_u64_max_is_refused_and_the_next_election_is_ordinary() {
    let ids = [0, 1, 2];
    // Without PreVote, so that the election timer's firing starts the election itself.
    let config = Config {
        pre_vote: false,
        ..Config::default()
    };
    let mut node = Node::new(1, &ids, config.clone(), None, None, 3).unwrap();
    let vote = Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::RequestVote(RequestVote {
            term: u64::MAX,
            candidate_id: 0,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        }),
    };
    let result = node.step(vote);
    let _ = node.ready().persisted();
    while node.role() == Role::Follower {
        node.tick();
    }
    assert!(matches!(result, Err(StepError::Malformed(_))), "{result:?}");
    assert_eq!(node.term(), 1);
    let ready = node.ready();
    let state = ready.persist().cloned();
    assert_eq!(state.as_ref().map(|s| s.current_term), Some(1));
    assert!(Node::new(1, &ids, config, state, None, 3).is_ok());
    assert_eq!(ready.persisted().messages.len(), 2, "two RequestVotes");
}

/// A term or index past the ceiling, in any message, is refused before it touches the node; the ceiling
/// itself is accepted.
#[test]
fn terms_and_indexes_past_the_ceilings_are_malformed() {
    let t = CEILING;
    let messages = [
        Message::RequestVote(RequestVote {
            term: t,
            candidate_id: 0,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        }),
        Message::RequestVote(RequestVote {
            term: 1,
            candidate_id: 0,
            last_log_index: CEILING,
            last_log_term: 1,
            transfer: false,
        }),
        Message::RequestVoteReply(RequestVoteReply {
            term: t,
            vote_granted: true,
        }),
        Message::AppendEntries(AppendEntries {
            term: t,
            leader_id: 0,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round: 0,
        }),
        Message::AppendEntries(AppendEntries {
            term: 1,
            leader_id: 0,
            prev_log_index: MAX_INDEX,
            prev_log_term: 1,
            entries: vec![entry(1)],
            leader_commit: 0,
            read_round: 0,
        }),
        Message::AppendEntries(AppendEntries {
            term: 1,
            leader_id: 0,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: CEILING,
            read_round: 0,
        }),
        Message::AppendEntriesReply(AppendEntriesReply {
            term: t,
            success: true,
            prev_log_index: 0,
            match_index: 0,
            conflict_term: None,
            conflict_index: 0,
            read_round: 0,
        }),
        Message::AppendEntriesReply(AppendEntriesReply {
            term: 1,
            success: true,
            prev_log_index: CEILING,
            match_index: CEILING,
            conflict_term: None,
            conflict_index: 0,
            read_round: 0,
        }),
        Message::AppendEntriesReply(AppendEntriesReply {
            term: 1,
            success: false,
            prev_log_index: 0,
            match_index: 0,
            conflict_term: Some(2),
            conflict_index: CEILING + 1,
            read_round: 0,
        }),
        Message::InstallSnapshot(InstallSnapshot {
            term: t,
            leader_id: 0,
            last_included_index: 1,
            last_included_term: 1,
            membership: Box::new(raft::Membership::of_voters(0..3)),
            data: vec![].into(),
        }),
        Message::InstallSnapshot(InstallSnapshot {
            term: 1,
            leader_id: 0,
            last_included_index: CEILING,
            last_included_term: 1,
            membership: Box::new(raft::Membership::of_voters(0..3)),
            data: vec![].into(),
        }),
        Message::InstallSnapshotReply(InstallSnapshotReply {
            term: t,
            match_index: 0,
        }),
        Message::InstallSnapshotReply(InstallSnapshotReply {
            term: 1,
            match_index: CEILING,
        }),
    ];
    for message in messages {
        let mut w = World::fresh(3);
        let before = w.nodes[1].persistent_state();
        let m = Envelope {
            from: 0,
            to: 1,
            seq: 0,
            message: message.clone(),
        };
        assert!(
            matches!(w.nodes[1].step(m), Err(StepError::Malformed(_))),
            "{message:?}"
        );
        assert!(!w.nodes[1].has_ready(), "a refused message leaves no trace");
        assert_eq!(w.nodes[1].persistent_state(), before);
    }
    // At the ceilings themselves: accepted.
    let mut w = World::fresh(3);
    let at = Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::InstallSnapshot(InstallSnapshot {
            term: MAX_TERM,
            leader_id: 0,
            last_included_index: MAX_INDEX,
            last_included_term: MAX_TERM,
            membership: Box::new(raft::Membership::of_voters(0..3)),
            data: b"s".to_vec().into(),
        }),
    };
    w.nodes[1].step(at).unwrap();
    w.drain(1);
    assert_eq!(
        (w.nodes[1].term(), w.nodes[1].last_index()),
        (MAX_TERM, MAX_INDEX)
    );
    // Nothing fits after a log that ends at MAX_INDEX.
    let past = Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::AppendEntries(AppendEntries {
            term: MAX_TERM,
            leader_id: 0,
            prev_log_index: MAX_INDEX,
            prev_log_term: MAX_TERM,
            entries: vec![entry(MAX_TERM)],
            leader_commit: MAX_INDEX,
            read_round: 0,
        }),
    };
    assert!(matches!(
        w.nodes[1].step(past),
        Err(StepError::Malformed(_))
    ));
    w.check();
}

/// A node at `MAX_TERM` has no next term: its election timer fires and restarts, and it keeps its role.
/// A candidate at `MAX_TERM` can still win with the votes of its term.
#[test]
fn at_max_term_no_election_starts() {
    let mut w = with_disks(vec![
        disk(MAX_TERM, 0, 0, &[]),
        disk(MAX_TERM - 1, 0, 0, &[]),
        disk(MAX_TERM - 1, 0, 0, &[]),
    ]);
    for _ in 0..10 * w.config.election_ticks_max {
        w.nodes[0].tick();
    }
    assert_eq!(w.nodes[0].role(), Role::Follower);
    assert_eq!(w.nodes[0].term(), MAX_TERM);
    assert!(
        !w.nodes[0].has_ready(),
        "no election, nothing to persist or send"
    );

    // Node 1 campaigns for the last term; nobody answers for a while, then node 2 does.
    w.tick_until(1, |n| n.role() == Role::Candidate);
    assert_eq!(w.nodes[1].term(), MAX_TERM);
    let requests = std::mem::take(&mut w.network);
    for _ in 0..10 * w.config.election_ticks_max {
        w.nodes[1].tick();
    }
    assert_eq!(w.nodes[1].role(), Role::Candidate);
    assert_eq!(w.nodes[1].term(), MAX_TERM);
    assert!(!w.nodes[1].has_ready());
    w.network = requests.into_iter().filter(|m| m.to == 2).collect();
    w.settle(ALL);
    assert!(w.nodes[1].is_leader());
    w.propose(1, 2, ALL);
    assert_eq!(w.nodes[1].commit_index(), 2);
    assert_eq!(w.nodes[0].last_index(), 2);
    w.check();
}

/// A persisted state past a ceiling is refused; one at the ceilings restarts the node.
#[test]
fn persisted_state_past_the_ceilings_is_refused() {
    let new = |state: PersistentState| {
        let snapshot = (state.last_included_index > 0).then(|| b"s".to_vec());
        Node::new(0, &[0, 1], Config::default(), Some(state), snapshot, 0)
    };
    let invalid =
        |r: Result<Node, ConfigError>| matches!(r, Err(ConfigError::InvalidPersistedState(_)));
    assert!(invalid(new(disk(CEILING, 0, 0, &[]))), "term");
    assert!(invalid(new(disk(u64::MAX, 0, 0, &[]))), "term");
    assert!(invalid(new(disk(3, CEILING, 1, &[]))), "snapshot index");
    assert!(
        invalid(new(disk(3, MAX_INDEX, 1, &[2]))),
        "log past the ceiling"
    );
    assert!(
        invalid(new(disk(3, MAX_INDEX - 1, 1, &[2, 2]))),
        "log past the ceiling"
    );
    assert!(new(disk(MAX_TERM, MAX_INDEX - 1, 1, &[2])).is_ok());
    assert!(new(disk(MAX_TERM, MAX_INDEX, 1, &[])).is_ok());
}

/// A leader whose log ends at `MAX_INDEX` appends nothing more: a proposal is refused, with no leader to
/// redirect to.
#[test]
fn a_full_log_refuses_proposals() {
    let mut w = with_disks(vec![disk(1, MAX_INDEX - 2, 1, &[1])]);
    w.elect(0, ALL);
    assert_eq!(w.nodes[0].propose(b"x".to_vec()), Ok((MAX_INDEX, 2)));
    w.drain(0);
    assert_eq!(
        w.nodes[0].propose(b"y".to_vec()),
        Err(NotLeader { leader: None })
    );
    w.drain(0);
    assert_eq!(w.nodes[0].commit_index(), MAX_INDEX);
    assert_eq!(w.nodes[0].last_applied(), MAX_INDEX);
    w.nodes[0] = w.restored(0).unwrap();
    w.check();
}
