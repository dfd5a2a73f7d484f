//! One node run for real, without threads or sockets: the core, its storage, the state machine, and the
//! clients waiting for their commands to commit. A runtime feeds it ticks, messages and proposals and sends
//! what it releases; the order of work it keeps is the one that makes Raft safe: a `Ready`'s state is saved
//! (and synced) before its messages leave and before anything is applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft::{
    Apply, ConfChange, ConfChangeRefused, Config, ConfigError, Envelope, Index, Membership,
    Message, Node, NodeId, NotLeader, Role, StepError, Term,
};

use crate::storage::{Recovered, Storage, StorageError};
use crate::trace::Tracer;

/// The replicated service: what committed commands are applied to. Each new leader's empty command (see
/// [`Host::flush`]) is applied too, as an empty command.
pub trait StateMachine {
    /// Applies the command committed at `index`; returns the answer for the client that proposed it.
    fn apply(&mut self, index: Index, command: &[u8]) -> Vec<u8>;
    /// The whole state, for a snapshot.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with a snapshot's (one this node took, or its leader's). Bytes that are no snapshot
    /// of this machine are refused.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
    /// Whether [`restore`](StateMachine::restore) would accept `snapshot`, without changing the state. A
    /// leader's snapshot is checked before the node takes it: one refused here is refused as a malformed
    /// message is, so that no snapshot the service cannot load is ever made durable.
    fn check(&self, snapshot: &[u8]) -> Result<(), String>;
    /// Answers a read of this node's state as applied so far. Alone it is not linearizable (a follower may
    /// lag); [`Host::read`] makes it so, by answering only once the read's ReadIndex was confirmed and
    /// applied.
    fn query(&self, request: &[u8]) -> Vec<u8>;
}

/// What became of a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It committed at `index` and was applied; `response` is the state machine's answer.
    Committed {
        /// Its index.
        index: Index,
        /// The state machine's answer.
        response: Vec<u8>,
    },
    /// Another entry committed at its index: it will never commit (propose it again).
    Lost,
    /// A snapshot from the leader covered its index: it may or may not have committed.
    Unknown,
    /// A read's answer ([`Host::read`]): the state machine's, as of a state that includes every write
    /// committed before the read began.
    Read(Vec<u8>),
    /// A read that this node began as leader, which stopped leading before a majority confirmed it: ask
    /// again (the leader it knows of, if any).
    ReadAborted(NotLeader),
}

/// A node's metrics (also what a client's status request gets).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its current term.
    pub term: Term,
    /// Its role.
    pub role: Role,
    /// The leader it knows of in its term.
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit_index: Index,
    /// The last index applied to the state machine.
    pub last_applied: Index,
    /// Its last log index.
    pub last_index: Index,
    /// The last index its snapshot covers.
    pub snapshot_index: Index,
    /// Syncs made by the node's storage since it started.
    pub syncs: u64,
    /// Ticks of the node's clock since it started.
    pub ticks: u64,
    /// For a leader: each follower and how many entries it is behind (the leader's last index less the
    /// follower's known match index).
    pub lag: Vec<(NodeId, Index)>,
    /// The configuration in force on this node (empty on a server that has yet to join).
    pub membership: Membership,
    /// The index of the entry it comes from: committed once `commit_index` reaches it.
    pub membership_index: Index,
}

/// Why a host stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The configuration or the recovered state is unusable.
    #[error("cannot start the node: {0}")]
    Config(#[from] ConfigError),
    /// Storage failed: nothing after the failure was acknowledged.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A snapshot could not be restored into the state machine.
    #[error("snapshot through index {index} cannot be restored: {reason}")]
    Snapshot {
        /// The snapshot's last index.
        index: Index,
        /// The state machine's reason.
        reason: String,
    },
}

/// Why a host refused a message.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The core refused it.
    #[error(transparent)]
    Message(#[from] StepError),
    /// A snapshot that the state machine cannot load.
    #[error("node {from}'s snapshot through index {index} cannot be loaded: {reason}")]
    Snapshot {
        /// The sender.
        from: NodeId,
        /// The snapshot's last index.
        index: Index,
        /// The state machine's reason.
        reason: String,
    },
}

/// Who a node is and how it runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This node's id.
    pub id: NodeId,
    /// Every node of the cluster, this one included.
    pub peers: Vec<NodeId>,
    /// The core's timing and batching.
    pub config: Config,
    /// Seeds the node's randomized election timeouts (give each node its own).
    pub seed: u64,
    /// The service snapshots once this many entries were applied since its last snapshot (0: never).
    pub snapshot_every: u64,
}

/// A node with its storage `S`, its state machine `M`, and clients waiting, each known by a ticket `T`.
pub struct Host<S, M, T> {
    node: Node,
    storage: S,
    machine: M,
    /// Proposals not yet applied: index -> (term, ticket) of each proposal made at that index. A leader
    /// that lost its entries to another leader's and was elected again proposes anew at indexes where
    /// tickets still wait; the entry that commits there decides each one.
    waiting: BTreeMap<Index, Vec<(Term, T)>>,
    /// Ticks of the logical clock since the host started.
    ticks: u64,
    /// The service snapshots once this many entries were applied since its last snapshot (0: never).
    snapshot_every: u64,
    /// The last term in which this node, as leader, appended its no-op entry.
    noop_term: Term,
    /// Reads not yet begun: the leader has not yet committed an entry of its term.
    reads_waiting: Vec<(Vec<u8>, T)>,
    /// Reads begun (ReadIndex), by context: the term they began in, the request, the ticket.
    reads_begun: BTreeMap<u64, (Term, Vec<u8>, T)>,
    /// Reads confirmed, waiting for their read index to be applied: by (read index, context).
    reads_ready: BTreeMap<(Index, u64), (Vec<u8>, T)>,
    /// The context of the next read.
    next_read: u64,
    /// A deliberate bug, for showing that tests notice (none in normal use).
    test_bug: Option<TestBug>,
    /// Where the node's trace goes, if it is traced.
    tracer: Option<Arc<Tracer>>,
    /// The storage reports its saves to the tracer itself ([`Storage::report_saves`]).
    storage_reports: bool,
    /// This node's own addresses of servers (its command line's), which take precedence over the
    /// configuration's.
    seed_addresses: BTreeMap<NodeId, String>,
}

/// Deliberate bugs a host can be told to have ([`Host::set_test_bug`]), so that a test of the whole system
/// (`raft-chaos`) can show that it notices each. Never for normal use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBug {
    /// A leader answers a read at once from its own state, without ReadIndex: a leader that was deposed
    /// without knowing it answers from a stale state.
    LocalReads,
    /// The host sends a round's messages before its save is durable: the storage's save returns before
    /// the sync, which comes at the start of the next round (the storage reports the save to the node's
    /// trace only then).
    SendBeforeSave,
}

impl<S: Storage, M: StateMachine, T> Host<S, M, T> {
    /// Starts the node `settings` describe from what its storage recovered.
    pub fn new(
        settings: &Settings,
        storage: S,
        recovered: Recovered,
        machine: M,
    ) -> Result<Self, HostError> {
        let node = Node::new(
            settings.id,
            &settings.peers,
            settings.config.clone(),
            recovered.state,
            recovered.snapshot,
            settings.seed,
        )?;
        Ok(Host {
            node,
            storage,
            machine,
            waiting: BTreeMap::new(),
            ticks: 0,
            snapshot_every: settings.snapshot_every,
            noop_term: 0,
            reads_waiting: Vec::new(),
            reads_begun: BTreeMap::new(),
            reads_ready: BTreeMap::new(),
            next_read: 0,
            test_bug: None,
            tracer: None,
            storage_reports: false,
            seed_addresses: BTreeMap::new(),
        })
    }

    /// Traces the node into `tracer` from now on (its start first), numbering its messages from `next_seq`
    /// (see [`Tracer::open`]).
    pub fn trace(&mut self, tracer: Arc<Tracer>, next_seq: u64) {
        self.node.set_next_seq(next_seq);
        self.node.set_observer(tracer.clone());
        let (reporter, id) = (tracer.clone(), self.node.id());
        self.storage_reports = self
            .storage
            .report_saves(Box::new(move |saved| reporter.saved(id, saved)));
        self.tracer = Some(tracer);
    }

    /// This node's own addresses of servers (from its command line): they take precedence over the
    /// configuration's ([`Membership::addresses`]), which reach the servers they do not name (those that
    /// joined later). A change made through [`change_membership`](Host::change_membership) records these
    /// in the configuration for every member it gives no address, so that servers that join later reach
    /// the first ones.
    pub fn seed_addresses(&mut self, addresses: BTreeMap<NodeId, String>) {
        self.seed_addresses = addresses;
    }

    /// Where to reach each server this node knows of: its own addresses ([`Host::seed_addresses`]), and
    /// the configuration's for the servers they do not name.
    pub fn addresses(&self) -> BTreeMap<NodeId, String> {
        let mut all = self.node.membership().addresses.clone();
        all.extend(self.seed_addresses.iter().map(|(&id, a)| (id, a.clone())));
        all
    }

    /// Gives the host a deliberate bug (`None`: none). For tests only.
    pub fn set_test_bug(&mut self, bug: Option<TestBug>) {
        if let Some(bug) = bug {
            tracing::warn!("this node has a deliberate bug, for tests only: {bug:?}");
        }
        if bug == Some(TestBug::SendBeforeSave) && !self.storage.defer_syncs() {
            tracing::warn!("this storage cannot defer its syncs: the bug does nothing");
        }
        self.test_bug = bug;
    }

    /// One tick of the logical clock.
    pub fn tick(&mut self) {
        self.ticks += 1;
        self.node.tick();
    }

    /// A message from a peer. A refused one (misaddressed, from a stranger, malformed, or a snapshot the
    /// state machine cannot load) changes nothing.
    pub fn step(&mut self, envelope: Envelope) -> Result<(), Refused> {
        if let Message::InstallSnapshot(m) = &envelope.message {
            self.machine
                .check(&m.data)
                .map_err(|reason| Refused::Snapshot {
                    from: envelope.from,
                    index: m.last_included_index,
                    reason,
                })?;
        }
        Ok(self.node.step(envelope)?)
    }

    /// Proposes `command` for the client known by `ticket`; its [`Outcome`] comes out of a later
    /// [`flush`](Host::flush). Fails on a node that is not the leader (with the leader it knows of), and
    /// hands the ticket back.
    pub fn propose(&mut self, command: Vec<u8>, ticket: T) -> Result<Index, (NotLeader, T)> {
        match self.propose_to_core(command) {
            Ok((index, term)) => {
                self.waiting.entry(index).or_default().push((term, ticket));
                Ok(index)
            }
            Err(not_leader) => Err((not_leader, ticket)),
        }
    }

    /// Proposes each command of `batch` for the client known by its ticket, in order, as one
    /// [`Node::propose_batch`]: a follower gets them together, in one AppendEntries where the batch limits
    /// allow. Each [`Outcome`] comes out of a later [`flush`](Host::flush). All or none: a refusal hands
    /// every ticket back.
    pub fn propose_batch(&mut self, batch: Vec<(Vec<u8>, T)>) -> Result<(), (NotLeader, Vec<T>)> {
        let (commands, tickets): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        if let Some(tracer) = &self.tracer {
            for command in &commands {
                tracer.proposing(command);
            }
        }
        match self.node.propose_batch(commands) {
            Ok((first, term)) => {
                for (index, ticket) in (first..).zip(tickets) {
                    self.waiting.entry(index).or_default().push((term, ticket));
                }
                Ok(())
            }
            Err(not_leader) => Err((not_leader, tickets)),
        }
    }

    /// Proposes `command` to the core, telling the tracer first what is proposed.
    fn propose_to_core(&mut self, command: Vec<u8>) -> Result<(Index, Term), NotLeader> {
        if let Some(tracer) = &self.tracer {
            tracer.proposing(&command);
        }
        self.node.propose(command)
    }

    /// Proposes a membership change for the client known by `ticket` ([`Node::propose_conf_change`]),
    /// recording `addresses` in the new configuration, and the seeded address of each member that has
    /// none yet ([`Host::seed_addresses`]). Its [`Outcome::Committed`] comes out of a later
    /// [`flush`](Host::flush) once the change commits. A refusal hands the ticket back.
    pub fn change_membership(
        &mut self,
        change: ConfChange,
        mut addresses: BTreeMap<NodeId, String>,
        ticket: T,
    ) -> Result<Index, (ConfChangeRefused, T)> {
        let in_force = self.node.membership();
        if let Ok(next) = in_force.apply(&change) {
            for id in next.members() {
                if let Some(seed) = self.seed_addresses.get(&id) {
                    if !in_force.addresses.contains_key(&id) && !addresses.contains_key(&id) {
                        addresses.insert(id, seed.clone());
                    }
                }
            }
        }
        match self
            .node
            .propose_conf_change_with_addresses(change, &addresses)
        {
            Ok((index, term)) => {
                self.waiting.entry(index).or_default().push((term, ticket));
                Ok(index)
            }
            Err(refused) => Err((refused, ticket)),
        }
    }

    /// Asks this node, as leader, to hand its leadership over to `target` ([`Node::transfer_leader`]): what it
    /// sends goes out with the next [`flush`](Host::flush).
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), raft::TransferRefused> {
        self.node.transfer_leader(target)
    }

    /// A linearizable read of the state machine ([`StateMachine::query`] with `request`) for the client known
    /// by `ticket`, without a log entry (ReadIndex): its [`Outcome::Read`] comes out of a later
    /// [`flush`](Host::flush), once a majority confirmed that this node still leads and the state machine
    /// applied every entry committed before the read began. Fails on a node that is not the leader (with the
    /// leader it knows of), and hands the ticket back.
    pub fn read(&mut self, request: Vec<u8>, ticket: T) -> Result<(), (NotLeader, T)> {
        if !self.node.is_leader() {
            return Err((
                NotLeader {
                    leader: self.node.leader_id(),
                },
                ticket,
            ));
        }
        if self.test_bug == Some(TestBug::LocalReads) {
            // The bug: served by the next flush from this node's state as applied, confirmed by no one.
            let context = self.next_read;
            self.next_read += 1;
            self.reads_ready.insert((0, context), (request, ticket));
            return Ok(());
        }
        // A leader that has not yet committed in its term waits (its empty entry commits within a round
        // trip); `flush` begins the read then.
        self.reads_waiting.push((request, ticket));
        self.begin_reads();
        Ok(())
    }

    /// Begins the waiting reads, if the leader may.
    fn begin_reads(&mut self) {
        if !self.node.committed_in_term() {
            return;
        }
        let term = self.node.term();
        for (request, ticket) in std::mem::take(&mut self.reads_waiting) {
            let context = self.next_read;
            self.next_read += 1;
            match self.node.read_index(context) {
                Ok(_) => {
                    self.reads_begun.insert(context, (term, request, ticket));
                }
                Err(refused) => {
                    unreachable!("a leader that committed in its term reads: {refused}")
                }
            }
        }
    }

    /// Saves what the node made durable-worthy, then sends (into `sent`), applies, answers clients (into
    /// `done`), and snapshots when due. An error leaves nothing of this round released: stop the node.
    pub fn flush(
        &mut self,
        sent: &mut Vec<Envelope>,
        done: &mut Vec<(T, Outcome)>,
    ) -> Result<(), HostError> {
        // A new leader appends an empty command at once (§8 of the Raft paper): a leader commits only
        // entries of its own term, so without it the entries of earlier terms that it holds would wait for
        // the next client's command. The core leaves this to its host, as the lab tester counts every entry.
        if self.node.is_leader() && self.noop_term != self.node.term() {
            self.noop_term = self.node.term();
            self.propose_to_core(Vec::new())
                .expect("a leader accepts commands");
        }
        self.begin_reads();
        if self.test_bug == Some(TestBug::SendBeforeSave) {
            // The bug: the previous round's save becomes durable only now, after its messages left.
            self.storage.sync_deferred()?;
        }
        while self.node.has_ready() {
            let ready = self.node.ready();
            self.storage.save(&ready)?;
            if let Some(tracer) = self.tracer.as_ref().filter(|_| !self.storage_reports) {
                tracer.persisted(self.node.id(), &ready);
            }
            let released = ready.persisted();
            sent.extend(released.messages);
            for apply in released.applies {
                self.apply(apply, done)?;
            }
            for read in released.reads {
                if let Some((_, request, ticket)) = self.reads_begun.remove(&read.context) {
                    self.reads_ready
                        .insert((read.index, read.context), (request, ticket));
                }
            }
            self.serve_reads(done);
            self.maybe_snapshot();
            // A commit of the leader's term lets the waiting reads begin.
            self.begin_reads();
        }
        self.serve_reads(done);
        self.abort_reads(done);
        Ok(())
    }

    /// Answers the confirmed reads whose read index is applied.
    fn serve_reads(&mut self, done: &mut Vec<(T, Outcome)>) {
        let applied = self.node.last_applied();
        while let Some(entry) = self.reads_ready.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            let (request, ticket) = entry.remove();
            done.push((ticket, Outcome::Read(self.machine.query(&request))));
        }
    }

    /// A node that stopped leading drops the reads it began and never confirms them: their clients are told
    /// to ask again, and so are those of reads still waiting for a commit of its term. A node elected again
    /// since begins them anew.
    fn abort_reads(&mut self, done: &mut Vec<(T, Outcome)>) {
        let (leading, term) = (self.node.is_leader(), self.node.term());
        let not_leader = NotLeader {
            leader: self.node.leader_id().filter(|_| !leading),
        };
        let stale: Vec<u64> = self
            .reads_begun
            .iter()
            .filter(|(_, (began, _, _))| !leading || *began != term)
            .map(|(&context, _)| context)
            .collect();
        for context in stale {
            let (_, request, ticket) = self.reads_begun.remove(&context).expect("listed");
            if leading {
                // Elected again since: the read begins anew in this term.
                self.reads_waiting.push((request, ticket));
            } else {
                done.push((ticket, Outcome::ReadAborted(not_leader)));
            }
        }
        if !leading {
            for (_, ticket) in std::mem::take(&mut self.reads_waiting) {
                done.push((ticket, Outcome::ReadAborted(not_leader)));
            }
        }
    }

    fn apply(&mut self, apply: Apply, done: &mut Vec<(T, Outcome)>) -> Result<(), HostError> {
        match apply {
            Apply::Command {
                index,
                term,
                command,
            } => {
                let response = self.machine.apply(index, &command);
                for (proposed, ticket) in self.waiting.remove(&index).unwrap_or_default() {
                    let outcome = if proposed == term {
                        Outcome::Committed {
                            index,
                            response: response.clone(),
                        }
                    } else {
                        Outcome::Lost
                    };
                    done.push((ticket, outcome));
                }
            }
            // The configuration has been in force since it was appended; the state machine has nothing
            // to do. Who waits on it learns that it committed.
            Apply::Config { index, term, .. } => {
                for (proposed, ticket) in self.waiting.remove(&index).unwrap_or_default() {
                    let outcome = if proposed == term {
                        Outcome::Committed {
                            index,
                            response: Vec::new(),
                        }
                    } else {
                        Outcome::Lost
                    };
                    done.push((ticket, outcome));
                }
            }
            Apply::Snapshot { index, data, .. } => {
                self.machine
                    .restore(&data)
                    .map_err(|reason| HostError::Snapshot { index, reason })?;
                let rest = self.waiting.split_off(&index.saturating_add(1));
                for (_, ticket) in std::mem::replace(&mut self.waiting, rest)
                    .into_values()
                    .flatten()
                {
                    done.push((ticket, Outcome::Unknown));
                }
            }
        }
        Ok(())
    }

    fn maybe_snapshot(&mut self) {
        let applied = self.node.last_applied();
        if self.snapshot_every > 0
            && applied >= self.node.last_included_index() + self.snapshot_every
        {
            self.node
                .snapshot(applied, self.machine.snapshot())
                .expect("the index was applied");
        }
    }

    /// The tickets of every proposal still waiting for its fate, which the caller answers (the loop is
    /// stopping): none is left waiting.
    pub fn abandon(&mut self) -> Vec<T> {
        let proposals = std::mem::take(&mut self.waiting)
            .into_values()
            .flatten()
            .map(|(_, ticket)| ticket);
        let waiting = std::mem::take(&mut self.reads_waiting)
            .into_iter()
            .map(|(_, ticket)| ticket);
        let begun = std::mem::take(&mut self.reads_begun)
            .into_values()
            .map(|(_, _, ticket)| ticket);
        let ready = std::mem::take(&mut self.reads_ready)
            .into_values()
            .map(|(_, ticket)| ticket);
        proposals.chain(waiting).chain(begun).chain(ready).collect()
    }

    /// How many proposals wait for their fate.
    pub fn waiting(&self) -> usize {
        self.waiting.values().map(Vec::len).sum()
    }

    /// How many reads wait for their answer.
    pub fn reads(&self) -> usize {
        self.reads_waiting.len() + self.reads_begun.len() + self.reads_ready.len()
    }

    /// The node's metrics.
    pub fn status(&self) -> Status {
        let last_index = self.node.last_index();
        let lag = if self.node.is_leader() {
            self.node
                .peers()
                .iter()
                .filter(|&&p| p != self.node.id())
                .filter_map(|&p| {
                    let (_, matched) = self.node.progress(p)?;
                    Some((p, last_index.saturating_sub(matched)))
                })
                .collect()
        } else {
            Vec::new()
        };
        Status {
            id: self.node.id(),
            term: self.node.term(),
            role: self.node.role(),
            leader: self.node.leader_id(),
            commit_index: self.node.commit_index(),
            last_applied: self.node.last_applied(),
            last_index,
            snapshot_index: self.node.last_included_index(),
            syncs: self.storage.syncs(),
            ticks: self.ticks,
            lag,
            membership: self.node.membership().clone(),
            membership_index: self.node.membership_index(),
        }
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, to change (tests that crash its disk).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The state machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The core.
    pub fn node(&self) -> &Node {
        &self.node
    }
}
