//! A hand-driven cluster for the unit tests: no simulator, no clock. Tests tick nodes, pick which messages to
//! deliver, and assert on roles, terms, logs and commits. The harness enforces persist-before-send: every
//! `Ready`'s state is written to `disk` before its messages are released, and it checks that the released
//! messages never depend on state that was not written. Each node's state machine is the list of commands it
//! applied; its snapshots are that list, encoded.
#![allow(dead_code)]

use raft::{Apply, Config, Entry, Envelope, Index, Message, Node, NodeId, PersistentState, Term};

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub disk: Vec<Option<PersistentState>>,
    /// The snapshot saved with `disk` (atomically with it).
    pub snapshots: Vec<Option<Vec<u8>>>,
    /// Every command each node instance applied: (index, term, command).
    pub applied: Vec<Vec<(Index, Term, Vec<u8>)>>,
    /// Every snapshot handed to each node instance's service: (index, term).
    pub installed: Vec<Vec<(Index, Term)>>,
    /// Each node instance's state machine: the commands at indexes `1..=len`.
    pub state_machine: Vec<Vec<Vec<u8>>>,
    pub config: Config,
    pub ids: Vec<NodeId>,
    /// The `peers` each node was created with: the first cluster's ids, or none for a node that joined.
    pub seeds: Vec<Vec<NodeId>>,
}

pub fn entry(term: Term, command: &str) -> Entry {
    Entry::command(term, command.as_bytes().to_vec())
}

/// The default configuration without PreVote and CheckQuorum: Figure 2's election.
pub fn figure2_config() -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..Config::default()
    }
}

pub fn log_terms(node: &Node) -> Vec<Term> {
    node.log().iter().map(|e| e.term).collect()
}

impl Cluster {
    /// `n` nodes of the default configuration without PreVote: these tests drive Figure 2's election, where
    /// the election timer's firing starts the election (`tests/pre_vote.rs` has PreVote's).
    pub fn new(n: usize) -> Self {
        Self::with_config(n, figure2_config())
    }

    pub fn with_config(n: usize, config: Config) -> Self {
        Self::with_state(config, vec![None; n])
    }

    /// A cluster whose servers restart from the given persisted states.
    pub fn with_state(config: Config, disk: Vec<Option<PersistentState>>) -> Self {
        let n = disk.len();
        let ids: Vec<NodeId> = (0..n as NodeId).collect();
        let nodes = (0..n)
            .map(|i| {
                Node::new(i as NodeId, &ids, config.clone(), disk[i].clone(), None, 42).unwrap()
            })
            .collect();
        Cluster {
            nodes,
            disk,
            snapshots: vec![None; n],
            applied: vec![Vec::new(); n],
            installed: vec![Vec::new(); n],
            state_machine: vec![Vec::new(); n],
            config,
            seeds: vec![ids.clone(); n],
            ids,
        }
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Takes node `i`'s Ready: persists, then releases. Returns the released messages.
    pub fn ready(&mut self, i: usize) -> Vec<Envelope> {
        let ready = self.nodes[i].ready();
        if let Some(state) = ready.persist() {
            // One atomic save of the state and (if it changed) the snapshot.
            self.disk[i] = Some(state.clone());
            if let Some(snapshot) = ready.snapshot() {
                self.snapshots[i] = Some(snapshot.to_vec());
            }
        }
        // Nothing released may depend on state that is not on disk.
        let durable = self.disk[i].clone().unwrap_or_default();
        assert_eq!(
            durable,
            self.nodes[i].persistent_state(),
            "node {i} released before persisting"
        );
        if durable.last_included_index > 0 {
            assert_eq!(
                self.snapshots[i].as_deref(),
                Some(self.nodes[i].snapshot_data()),
                "node {i}'s snapshot is not durable with its state"
            );
        }
        let released = ready.persisted();
        for apply in released.applies {
            let sm = &mut self.state_machine[i];
            match apply {
                Apply::Command {
                    index,
                    term,
                    command,
                } => {
                    assert_eq!(
                        index,
                        sm.len() as Index + 1,
                        "node {i} applied out of order"
                    );
                    sm.push(command.clone());
                    self.applied[i].push((index, term, command));
                }
                // A configuration entry applies nothing; an empty command keeps the state machine's
                // positions equal to the log's indexes.
                Apply::Config { index, term, .. } => {
                    assert_eq!(
                        index,
                        sm.len() as Index + 1,
                        "node {i} applied out of order"
                    );
                    sm.push(Vec::new());
                    self.applied[i].push((index, term, Vec::new()));
                }
                Apply::Snapshot { index, term, data } => {
                    assert!(
                        index > sm.len() as Index,
                        "node {i} got a snapshot at {index} after applying {}",
                        sm.len()
                    );
                    let commands: Vec<Vec<u8>> = raft::decode(&data).expect("a harness snapshot");
                    assert_eq!(commands.len() as Index, index, "snapshot data and index");
                    *sm = commands;
                    self.installed[i].push((index, term));
                }
            }
        }
        for m in &released.messages {
            assert_eq!(m.from, i as NodeId);
            assert!(m
                .message
                .sender_term()
                .is_none_or(|t| t <= durable.current_term));
        }
        released.messages
    }

    /// Delivers one message and returns what the receiver sends as a consequence.
    pub fn deliver(&mut self, envelope: Envelope) -> Vec<Envelope> {
        let to = envelope.to as usize;
        self.nodes[to].step(envelope).unwrap();
        self.ready(to)
    }

    /// Delivers messages (and everything they cause) until none are left, dropping those `link` refuses.
    /// Returns how many messages were delivered.
    pub fn deliver_all_where(
        &mut self,
        mut queue: Vec<Envelope>,
        link: impl Fn(&Envelope) -> bool,
    ) -> usize {
        let mut delivered = 0;
        let mut next = 0;
        while next < queue.len() {
            let envelope = queue[next].clone();
            next += 1;
            if !link(&envelope) {
                continue;
            }
            delivered += 1;
            let more = self.deliver(envelope);
            queue.extend(more);
            assert!(delivered < 100_000, "message storm");
        }
        delivered
    }

    pub fn deliver_all(&mut self, queue: Vec<Envelope>) -> usize {
        self.deliver_all_where(queue, |_| true)
    }

    /// Ticks node `i` until it starts an election; returns its RequestVotes.
    pub fn campaign(&mut self, i: usize) -> Vec<Envelope> {
        let term = self.nodes[i].term();
        for _ in 0..self.config.election_ticks_max {
            self.nodes[i].tick();
            if self.nodes[i].term() > term {
                return self.ready(i);
            }
        }
        panic!("node {i} did not time out within election_ticks_max");
    }

    /// Node `i` campaigns and every message is delivered; it must win.
    pub fn elect(&mut self, i: usize) {
        let votes = self.campaign(i);
        self.deliver_all(votes);
        assert!(self.nodes[i].is_leader(), "node {i} was not elected");
    }

    /// Ticks the leader until it sends its next heartbeats; returns them.
    pub fn heartbeat(&mut self, leader: usize) -> Vec<Envelope> {
        for _ in 0..self.config.heartbeat_ticks {
            self.nodes[leader].tick();
        }
        self.ready(leader)
    }

    /// Proposes on `leader` and returns the (index, term) and the messages it sends.
    pub fn propose(&mut self, leader: usize, command: &str) -> ((Index, Term), Vec<Envelope>) {
        let result = self.nodes[leader]
            .propose(command.as_bytes().to_vec())
            .unwrap();
        (result, self.ready(leader))
    }

    /// The service of node `i` snapshots its whole state machine (what it applied so far).
    pub fn snapshot(&mut self, i: usize) {
        let sm = &self.state_machine[i];
        self.nodes[i]
            .snapshot(sm.len() as Index, raft::encode(sm))
            .unwrap();
    }

    /// Crashes node `i` and starts a new instance from what it persisted.
    pub fn restart(&mut self, i: usize) {
        let snapshot = self.disk[i]
            .as_ref()
            .filter(|d| d.last_included_index > 0)
            .and(self.snapshots[i].clone());
        self.nodes[i] = Node::new(
            i as NodeId,
            &self.seeds[i],
            self.config.clone(),
            self.disk[i].clone(),
            snapshot,
            7,
        )
        .unwrap();
        self.applied[i].clear();
        self.installed[i].clear();
        self.state_machine[i].clear();
    }
}

impl Cluster {
    /// Starts a new server, with the next id and no configuration, ready to be added; returns its index.
    pub fn join(&mut self) -> usize {
        let i = self.nodes.len();
        let node = Node::new(i as NodeId, &[], self.config.clone(), None, None, 42).unwrap();
        self.nodes.push(node);
        self.disk.push(None);
        self.snapshots.push(None);
        self.applied.push(Vec::new());
        self.installed.push(Vec::new());
        self.state_machine.push(Vec::new());
        self.seeds.push(Vec::new());
        i
    }
}

pub fn count_appends(messages: &[Envelope]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m.message, Message::AppendEntries(_)))
        .count()
}

pub fn appended_entries(messages: &[Envelope]) -> usize {
    messages
        .iter()
        .map(|m| match &m.message {
            Message::AppendEntries(a) => a.entries.len(),
            _ => 0,
        })
        .sum()
}
