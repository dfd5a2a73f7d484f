//! The trace format (`specs/trace-format.md`): the events, and reading and writing them as JSON Lines.
//!
//! A trace file is a header line, then one [`Record`] per line. Every field is a plain number, string or
//! list, so a trace can be written by hand or by another implementation.

use std::fmt;
use std::io::{BufRead, Write};
use std::ops::ControlFlow;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The format's name, in the header.
pub const FORMAT: &str = "raft-trace";
/// The first line of a binary trace ([`Trace::write_binary`]); a JSON trace starts with its header.
pub const BINARY_MAGIC: &[u8] = b"#raft-trace binary\n";
/// The version this code reads and writes.
pub const VERSION: u32 = 1;

/// A 64-bit digest of a command or a snapshot (FNV-1a), written as 16 hex digits. Two different byte strings
/// may share a digest; the checker then treats them as one value, which can hide a difference but never invent
/// one.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize,
)]
pub struct Digest(pub u64);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use std::hash::Hasher;
        let mut h = fnv::FnvHasher::default();
        h.write(bytes);
        Digest(h.finish())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than a `String` or `Cow<str>` (which serde always makes owned): a trace holds
        // a digest for every command it carries, and reading one then allocates nothing.
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = Digest;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest: 16 hex digits")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(E::custom(format!("a digest is 16 hex digits, got {s:?}")));
                }
                u64::from_str_radix(s, 16)
                    .map(Digest)
                    .map_err(|_| E::custom(format!("a digest is 16 hex digits, got {s:?}")))
            }
        }
        d.deserialize_str(Hex)
    }
}

/// What a log entry carries, as the trace writes it: a command's digest (a string), or a configuration
/// (an object).
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum Item {
    /// A client's command.
    Command(Digest),
    /// A configuration.
    Config(Conf),
}

/// A configuration, by server id.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Conf {
    /// The voters (of C_new, while joint).
    pub voters: Vec<u64>,
    /// While joint, the voters of C_old.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old: Vec<u64>,
    /// The learners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<u64>,
}

impl Conf {
    /// The configuration a core's membership is.
    pub fn of(m: &raft::Membership) -> Conf {
        Conf {
            voters: m.voters.iter().copied().collect(),
            old: m.old_voters.iter().copied().collect(),
            learners: m.learners.iter().copied().collect(),
        }
    }
}

impl Item {
    /// The item a core's log entry carries.
    pub fn of(payload: &raft::Payload) -> Item {
        match payload {
            raft::Payload::Command(c) => Item::Command(Digest::of(c)),
            raft::Payload::Config(m) => Item::Config(Conf::of(m)),
        }
    }
}

impl Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Command(d) => Serialize::serialize(d, s),
            Item::Config(c) => Serialize::serialize(c, s),
        }
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command's digest or a configuration")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Item, E> {
                <Digest as Deserialize>::deserialize(serde::de::value::StrDeserializer::new(v))
                    .map(Item::Command)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                <Conf as Deserialize>::deserialize(serde::de::value::MapAccessDeserializer::new(
                    map,
                ))
                .map(Item::Config)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The first line of a trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u32,
    /// The servers, numbered `0..nodes` (or `first_id..first_id + nodes`).
    pub nodes: u64,
    /// Where the trace comes from (a lab test and seed, a proptest case), for people.
    #[serde(default)]
    pub source: String,
    /// The first server's number: 0 (absent) in a trace the checker reads; 1 in the trace of one process of a
    /// `raft-node` cluster, whose nodes are numbered from 1 (`tracecheck` renumbers them as it merges).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_id: u64,
    /// The nodes were processes killed at any moment (merged traces of `raft-node`): a save may have been in
    /// flight at a crash, after its data reached the disk and before its `Persist` reached the trace, so a
    /// restart may load the state the node had after its last step as well as the durable one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub saves_in_flight: bool,
    /// The receivers' transports report what they decoded (`Decoded` events): the checker keeps the digest
    /// of each message sent, to compare.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoded: bool,
    /// The nodes run with PreVote (`raft::Config::pre_vote`): the checker's model does too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre_vote: bool,
    /// The nodes run with CheckQuorum and the leader lease (`raft::Config::check_quorum`): the checker's model
    /// does too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_quorum: bool,
    /// The servers `0..voters` vote in the first configuration, and the others start with none, to be
    /// added by configuration changes; 0 (absent): every server votes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub voters: u64,
}

/// The protocol extensions a cluster's nodes run with, which the checker's model must run with too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `raft::Config::pre_vote`.
    pub pre_vote: bool,
    /// `raft::Config::check_quorum`.
    pub check_quorum: bool,
    /// The first configuration's voters, `0..voters` (0: every server).
    pub voters: u64,
}

impl Features {
    /// The extensions `config` turns on.
    pub fn of(config: &raft::Config) -> Features {
        Features {
            pre_vote: config.pre_vote,
            check_quorum: config.check_quorum,
            voters: 0,
        }
    }
}

impl Header {
    /// The extensions the header says the nodes run with.
    pub fn features(&self) -> Features {
        Features {
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            voters: self.voters,
        }
    }

    /// Says that the nodes run with `features`.
    pub fn set_features(&mut self, features: Features) {
        self.pre_vote = features.pre_vote;
        self.check_quorum = features.check_quorum;
        self.voters = features.voters;
    }
}

/// One line of a trace: an event and the (virtual) time it happened, in microseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct Record {
    /// Time in microseconds (virtual time on the simulator); only for people and pictures.
    pub t: u64,
    /// The event.
    pub ev: Event,
}

/// A server's role.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize,
)]
pub enum Role {
    /// Follower.
    F,
    /// Candidate.
    C,
    /// Leader.
    L,
    /// Pre-candidate (PreVote).
    P,
}

/// Log entries written at `from, from + 1, ...`: everything at and after `from` is replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct LogDelta {
    /// The first index written.
    pub from: u64,
    /// `(term, what it carries)` of each entry from `from` on.
    pub entries: Vec<(u64, Item)>,
}

/// A node's state after a step. The log is given as what changed: the log after the step is the log before
/// it, truncated at the snapshot's index (entries at or below it leave the log) and at `log.from`, extended
/// with `log.entries`; `last` is its last index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct NodeState {
    /// `current_term`.
    pub term: u64,
    /// `voted_for`.
    pub vote: Option<u64>,
    /// The role.
    pub role: Role,
    /// `commit_index`.
    pub commit: u64,
    /// The snapshot's last included index and term (0, 0 without one).
    pub snap: (u64, u64),
    /// The last log index (counting the snapshot).
    pub last: u64,
    /// The entries this step wrote, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogDelta>,
    /// A candidate's granted votes, itself included (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<u64>,
    /// A leader's `(next_index, match_index)` for every server by id, `(0, 0)` for itself (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<(u64, u64)>,
    /// A leader's latest read round in its term (0 otherwise, and then absent).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_round: u64,
    /// A leader's reads begun and not yet confirmed, as `(round, read index)` in round order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<(u64, u64)>,
}

/// For `skip_serializing_if`: a field that is absent when it is 0.
fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A message a step produced: its addressee and sequence number (the sender is the stepping node) and what it
/// says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct Msg {
    /// The addressee.
    pub to: u64,
    /// The sender's sequence number.
    pub seq: u64,
    /// The message.
    pub m: Body,
}

/// What a message says: the fields of `raft::Message`, with commands and snapshots as digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[allow(missing_docs)]
pub enum Body {
    RequestVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        /// A leadership transfer's (TimeoutNow started the election).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        transfer: bool,
    },
    RequestVoteReply {
        term: u64,
        granted: bool,
    },
    AppendEntries {
        term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<(u64, Item)>,
        leader_commit: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        read_round: u64,
    },
    AppendEntriesReply {
        term: u64,
        success: bool,
        prev_log_index: u64,
        match_index: u64,
        conflict_term: Option<u64>,
        conflict_index: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        read_round: u64,
    },
    InstallSnapshot {
        term: u64,
        last_included_index: u64,
        last_included_term: u64,
        data: Digest,
    },
    InstallSnapshotReply {
        term: u64,
        match_index: u64,
    },
    /// Its term is the one the sender would stand in.
    PreVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    },
    /// Its term is the request's when granted, the receiver's when refused.
    PreVoteReply {
        term: u64,
        granted: bool,
    },
    /// A leader hands over to the addressee.
    TimeoutNow {
        term: u64,
    },
}

impl Body {
    /// The digest of the message as the trace writes it (its JSON), which a receiver's transport reports in
    /// `Decoded` and the checker compares with the message sent.
    pub fn digest(&self) -> Digest {
        Digest::of(&serde_json::to_vec(self).expect("a message always encodes"))
    }
}

/// Names one message: its sender and the sender's sequence number.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct MsgId {
    /// The sender.
    pub from: u64,
    /// The sender's sequence number.
    pub seq: u64,
}

impl MsgId {
    /// The name of the message an envelope carries.
    pub fn of(envelope: &raft::Envelope) -> MsgId {
        MsgId {
            from: envelope.from,
            seq: envelope.seq,
        }
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.from, self.seq)
    }
}

/// What an applied item is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub enum Applied {
    /// A committed command.
    Command(Digest),
    /// A snapshot.
    Snapshot(Digest),
    /// A committed configuration entry.
    Config(Conf),
}

/// One event. Node steps carry the node's state after the step and the messages the step produced; the
/// release of a node's output is `Persist`, then `Send` for each message, then `Apply` for each apply; the
/// network and the host add the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[allow(missing_docs)]
pub enum Event {
    /// A node instance starts: on first boot, or (`restart`) from what its previous instance made durable.
    /// `state.log` holds the whole log after the snapshot.
    Start {
        node: u64,
        restart: bool,
        state: NodeState,
        /// The digest of the snapshot it loaded, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<Digest>,
    },
    /// The election timer fired.
    Timeout {
        node: u64,
        state: NodeState,
        sent: Vec<Msg>,
    },
    /// A leader's heartbeat timer fired.
    Heartbeat {
        node: u64,
        state: NodeState,
        sent: Vec<Msg>,
    },
    /// A leader checked that a quorum answered it since its previous check (CheckQuorum); if none had, its
    /// state says it stepped down.
    CheckQuorum { node: u64, state: NodeState },
    /// A leader began handing over to `target`: it sent TimeoutNow, or what `target` lacks.
    Transfer {
        node: u64,
        target: u64,
        state: NodeState,
        sent: Vec<Msg>,
    },
    /// A client command was proposed; `accepted` is `(index, term)` or absent for a node that is not leader.
    Propose {
        node: u64,
        command: Digest,
        accepted: Option<(u64, u64)>,
        state: NodeState,
        sent: Vec<Msg>,
    },
    /// A host asked for a configuration change (`raft::Node::propose_conf_change`).
    ChangeConfig {
        node: u64,
        /// The configuration the change makes.
        conf: Conf,
        /// `[index, term]` of the entry appended, or `null` when the node refused.
        accepted: Option<(u64, u64)>,
        state: NodeState,
        sent: Vec<Msg>,
    },
    /// A node handled the message `id`; `refused` is the error if it refused it.
    Receive {
        node: u64,
        id: MsgId,
        refused: Option<String>,
        state: NodeState,
        sent: Vec<Msg>,
    },
    /// A read began (ReadIndex) with the host's `context`; `index` is the read index, or absent when the node
    /// refused the read.
    ReadIndex {
        node: u64,
        context: u64,
        index: Option<u64>,
        state: NodeState,
        sent: Vec<Msg>,
    },
    /// A node handed its host a read that a majority confirmed, to serve once `index` is applied.
    Read { node: u64, context: u64, index: u64 },
    /// The service snapshotted the node through `index`.
    Snapshot {
        node: u64,
        index: u64,
        data: Digest,
        state: NodeState,
    },
    /// A node's state became durable: term, vote, snapshot and the log, of which the entries from
    /// `log.from` on were written (the rest was durable already).
    Persist {
        node: u64,
        term: u64,
        vote: Option<u64>,
        snap: (u64, u64),
        last: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log: Option<LogDelta>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<Digest>,
    },
    /// A message left its sender (after `Persist`).
    Send { id: MsgId },
    /// The transport of `node` decoded the message `id` off its connection, to hand it to the node;
    /// `digest` is [`Body::digest`] of what it decoded, which must be what was sent.
    Decoded {
        node: u64,
        id: MsgId,
        digest: Digest,
    },
    /// A node handed its service an item to apply.
    Apply {
        node: u64,
        index: u64,
        term: u64,
        item: Applied,
    },
    /// The network lost a message.
    Drop { id: MsgId },
    /// The network made a second copy of a message.
    Duplicate { id: MsgId },
    /// The network holds a message back for `us` microseconds (information only: the model's network is
    /// unordered).
    Delay { id: MsgId, us: u64 },
    /// A node crashed: its instance is gone, only what it made durable remains.
    Crash { node: u64 },
    /// The host cut a node off the network (information only: what it loses shows as drops).
    Disconnect { node: u64 },
    /// The host connected a node again (information only).
    Connect { node: u64 },
}

impl Event {
    /// The node the event happens at, if it is one node's.
    pub fn node(&self) -> Option<u64> {
        match self {
            Event::Start { node, .. }
            | Event::Timeout { node, .. }
            | Event::Heartbeat { node, .. }
            | Event::CheckQuorum { node, .. }
            | Event::Transfer { node, .. }
            | Event::Propose { node, .. }
            | Event::ChangeConfig { node, .. }
            | Event::Receive { node, .. }
            | Event::ReadIndex { node, .. }
            | Event::Read { node, .. }
            | Event::Snapshot { node, .. }
            | Event::Persist { node, .. }
            | Event::Apply { node, .. }
            | Event::Decoded { node, .. }
            | Event::Crash { node }
            | Event::Disconnect { node }
            | Event::Connect { node } => Some(*node),
            Event::Send { id }
            | Event::Drop { id }
            | Event::Duplicate { id }
            | Event::Delay { id, .. } => Some(id.from),
        }
    }

    /// The messages the event produced: those of a node's step (none for other events).
    pub fn sent(&self) -> &[Msg] {
        match self {
            Event::Timeout { sent, .. }
            | Event::Heartbeat { sent, .. }
            | Event::Transfer { sent, .. }
            | Event::Propose { sent, .. }
            | Event::ChangeConfig { sent, .. }
            | Event::Receive { sent, .. }
            | Event::ReadIndex { sent, .. } => sent,
            _ => &[],
        }
    }

    /// The node's state after the event, for the events that are a node's steps.
    pub fn state(&self) -> Option<&NodeState> {
        match self {
            Event::Start { state, .. }
            | Event::Timeout { state, .. }
            | Event::Heartbeat { state, .. }
            | Event::CheckQuorum { state, .. }
            | Event::Transfer { state, .. }
            | Event::Propose { state, .. }
            | Event::Receive { state, .. }
            | Event::ReadIndex { state, .. }
            | Event::Snapshot { state, .. } => Some(state),
            _ => None,
        }
    }
}

/// The line of the file that holds event number `k` (0-based): the header is line 1.
pub fn line_of(k: usize) -> usize {
    k + 2
}

/// A whole trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The header.
    pub header: Header,
    /// The events in the order they happened.
    pub records: Vec<Record>,
}

/// Why a trace file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("line {line}: {source}")]
    Io {
        /// The line being read.
        line: usize,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("empty trace: the first line must be a header {{\"format\":\"{FORMAT}\",\"version\":{VERSION},...}}")]
    Empty,
    /// The first line is not a header of this format.
    #[error("header: not a {FORMAT} header: {0}")]
    Header(String),
    /// The header names another version.
    #[error("header: trace format version {found}, but this checker reads version {expected}")]
    Version {
        /// The file's version.
        found: u32,
        /// [`VERSION`].
        expected: u32,
    },
    /// A line is not a valid record.
    #[error("line {line}: {message}")]
    Record {
        /// The line number (1-based).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A record of a binary trace is not a valid one.
    #[error("event {event} (a record of the binary trace): {message}")]
    BinaryRecord {
        /// The event number (0-based: the first record after the header is event 0).
        event: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A binary trace could not be read.
    #[error("event {event} (a record of the binary trace): {source}")]
    BinaryIo {
        /// The event being read (0-based).
        event: usize,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Trace {
    /// A trace with no events yet.
    pub fn new(nodes: u64, source: impl Into<String>) -> Trace {
        Trace {
            header: Header {
                format: FORMAT.to_string(),
                version: VERSION,
                nodes,
                source: source.into(),
                first_id: 0,
                saves_in_flight: false,
                decoded: false,
                pre_vote: false,
                check_quorum: false,
                voters: 0,
            },
            records: Vec::new(),
        }
    }

    /// Writes the trace as JSON Lines.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, &self.header)?;
        out.write_all(b"\n")?;
        for r in &self.records {
            serde_json::to_writer(&mut *out, r)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// Writes the trace as JSON Lines to the file at `path`.
    pub fn write_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.write(&mut std::io::BufWriter::new(std::fs::File::create(path)?))
    }

    /// Writes the trace in the binary encoding: the line [`BINARY_MAGIC`], the header as a JSON line, then
    /// each record as its length in bytes (4 bytes, little-endian) and the record in Borsh
    /// (`specs/trace-format.md`). [`Trace::read`] reads both encodings; the binary one is several times
    /// faster to read.
    pub fn write_binary(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(BINARY_MAGIC)?;
        serde_json::to_writer(&mut *out, &self.header)?;
        out.write_all(b"\n")?;
        let mut bytes = Vec::new();
        for r in &self.records {
            bytes.clear();
            bytes.extend_from_slice(&[0; 4]);
            borsh::to_writer(&mut bytes, r)?;
            let len = u32::try_from(bytes.len() - 4)
                .map_err(|_| std::io::Error::other("a record of more than 4 GiB"))?;
            bytes[..4].copy_from_slice(&len.to_le_bytes());
            out.write_all(&bytes)?;
        }
        out.flush()
    }

    /// Writes the trace in the binary encoding ([`Trace::write_binary`]) to the file at `path`.
    pub fn write_binary_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.write_binary(&mut std::io::BufWriter::new(std::fs::File::create(path)?))
    }

    /// Reads a trace written by [`Trace::write`] (or by hand) or by [`Trace::write_binary`]: the first line
    /// tells which. Errors name the line (the event, in a binary trace). The events are parsed
    /// on as many threads as the machine has cores while the file is read, in chunks of [`CHUNK`] bytes,
    /// and put together in the file's order: an error names the first bad line, whatever the threads.
    pub fn read(input: impl BufRead) -> Result<Trace, ReadError> {
        let (header, records) = Trace::stream(
            input,
            |_| Vec::new(),
            |records, batch| {
                records.extend(batch);
                ControlFlow::Continue(())
            },
        )?;
        Ok(Trace { header, records })
    }

    /// Reads a trace as [`Trace::read`] does, without holding it whole: `start` is given the header and
    /// makes the reader's state, and `each` is handed the records batch by batch, in the file's order, as
    /// they are parsed (a batch is parsed while `each` works on the one before). `each` may stop the reading
    /// with `Break`. Returns the header and the state. An error names the first bad line before the stop.
    pub fn stream<S>(
        input: impl BufRead,
        start: impl FnOnce(&Header) -> S,
        mut each: impl FnMut(&mut S, Vec<Record>) -> ControlFlow<()>,
    ) -> Result<(Header, S), ReadError> {
        let mut input = input;
        // Read as bytes: a line that is not UTF-8 is refused by the parser, naming it.
        let mut header_line = Vec::new();
        match input.read_until(b'\n', &mut header_line) {
            Ok(0) => return Err(ReadError::Empty),
            Ok(_) => {}
            Err(source) => return Err(ReadError::Io { line: 1, source }),
        }
        let encoding = if header_line == BINARY_MAGIC {
            header_line.clear();
            match input.read_until(b'\n', &mut header_line) {
                Ok(0) => return Err(ReadError::Empty),
                Ok(_) => {}
                Err(source) => return Err(ReadError::Io { line: 2, source }),
            }
            Encoding::Binary
        } else {
            Encoding::Json
        };
        let header: Header = serde_json::from_slice(without_end(&header_line))
            .map_err(|e| ReadError::Header(e.to_string()))?;
        if header.format != FORMAT {
            return Err(ReadError::Header(format!(
                "format is {:?}, expected {FORMAT:?}",
                header.format
            )));
        }
        if header.version != VERSION {
            return Err(ReadError::Version {
                found: header.version,
                expected: VERSION,
            });
        }
        if header.nodes == 0 || header.nodes > 7 {
            return Err(ReadError::Header(format!(
                "nodes must be 1 to 7, got {}",
                header.nodes
            )));
        }
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let mut state = start(&header);
        read_records(input, encoding, threads, CHUNK, |batch| {
            each(&mut state, batch)
        })?;
        Ok((header, state))
    }
}

/// The bytes of whole lines a thread of [`Trace::read`] parses at a time (a chunk ends at the end of a
/// line, so it may be longer by one line).
pub const CHUNK: usize = 64 * 1024;

/// How the records of a trace file are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// One JSON object a line; the events start at line 2.
    Json,
    /// Each record its length (4 bytes, little-endian) and its Borsh bytes ([`Trace::write_binary`]).
    Binary,
}

impl Encoding {
    /// The error for record `k` (0-based) of the file.
    fn bad(self, k: usize, message: String) -> ReadError {
        match self {
            Encoding::Json => ReadError::Record {
                line: line_of(k),
                message,
            },
            Encoding::Binary => ReadError::BinaryRecord { event: k, message },
        }
    }

    /// The error for an input that could not be read at record `k` (0-based).
    fn unreadable(self, k: usize, source: std::io::Error) -> ReadError {
        match self {
            Encoding::Json => ReadError::Io {
                line: line_of(k),
                source,
            },
            Encoding::Binary => ReadError::BinaryIo { event: k, source },
        }
    }

    /// How many bytes of `bytes` are whole records.
    fn whole(self, bytes: &[u8]) -> usize {
        match self {
            Encoding::Json => bytes.iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1),
            Encoding::Binary => {
                let mut at = 0;
                while let Some(end) = binary_record_end(bytes, at) {
                    at = end;
                }
                at
            }
        }
    }
}

/// Where the binary record that starts at `at` in `bytes` ends, if it is whole there.
fn binary_record_end(bytes: &[u8], at: usize) -> Option<usize> {
    let len = bytes.get(at..at.checked_add(4)?)?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let end = (at + 4).checked_add(len)?;
    (end <= bytes.len()).then_some(end)
}

/// Parses the records of `input` into records on `threads` threads, handing each chunk's records to
/// `each` in order. This thread reads chunks of at least `chunk` bytes of whole records (lines) and deals
/// them out in turn, and takes each worker's results back in the same turn; the workers split the records,
/// count them and parse them. Stops early when `each` says `Break`.
fn read_records(
    mut input: impl BufRead,
    encoding: Encoding,
    threads: usize,
    chunk: usize,
    mut each: impl FnMut(Vec<Record>) -> ControlFlow<()>,
) -> Result<(), ReadError> {
    use std::sync::mpsc::{channel, sync_channel};
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let (chunks, todo) = sync_channel::<Vec<u8>>(2);
                let (done, results) = channel::<Parsed>();
                scope.spawn(move || {
                    for bytes in todo {
                        let parsed = match encoding {
                            Encoding::Json => parse_chunk(&bytes),
                            Encoding::Binary => decode_chunk(&bytes),
                        };
                        if done.send(parsed).is_err() {
                            return;
                        }
                    }
                });
                (chunks, results)
            })
            .collect();
        let mut sent = 0usize;
        let mut taken = 0usize;
        let mut stopped = false;
        // The number of the first record of the next chunk to be taken back.
        let mut first = 0;
        // Takes the next chunk's records back (the oldest chunk dealt out) and hands them on, unless `each`
        // stopped the reading.
        let mut take = |taken: &mut usize, stopped: &mut bool| -> Result<(), ReadError> {
            let parsed = workers[*taken % workers.len()]
                .1
                .recv()
                .expect("a worker answers every chunk");
            *taken += 1;
            match parsed {
                Parsed::Lines(lines, records) => {
                    first += lines;
                    if !*stopped {
                        *stopped = each(records).is_break();
                    }
                    Ok(())
                }
                Parsed::Bad(k, message) => Err(encoding.bad(first + k, message)),
            }
        };
        // A line that cannot be read ends the reading; the lines before it are still parsed first, so
        // that the first bad line is the one reported.
        let mut unreadable = None;
        while unreadable.is_none() && !stopped {
            let mut bytes = Vec::with_capacity(chunk + chunk / 8);
            let filled = match encoding {
                Encoding::Json => fill(&mut input, &mut bytes, chunk),
                Encoding::Binary => fill_binary(&mut input, &mut bytes, chunk),
            };
            if let Err(source) = filled {
                // The records read whole are parsed; the one cut off is the one that could not be read.
                bytes.truncate(encoding.whole(&bytes));
                unreadable = Some(source);
            }
            if bytes.is_empty() {
                break;
            }
            workers[sent % workers.len()]
                .0
                .send(bytes)
                .expect("a worker takes every chunk");
            sent += 1;
            // Keep at most two chunks per worker in hand.
            if sent - taken >= 2 * workers.len() {
                take(&mut taken, &mut stopped)?;
            }
        }
        while taken < sent {
            take(&mut taken, &mut stopped)?;
        }
        match unreadable {
            // Every chunk sent was taken back: `first` is the record cut off.
            Some(source) if !stopped => Err(encoding.unreadable(first, source)),
            _ => Ok(()),
        }
    })
}

/// A chunk parsed: how many lines it has and their records, or the first bad line (counted from 0 in the
/// chunk) and what is wrong with it.
enum Parsed {
    Lines(usize, Vec<Record>),
    Bad(usize, String),
}

/// Reads from `input` into `bytes` at least `chunk` bytes and then to the end of the line, or to the end
/// of the input.
fn fill(input: &mut impl BufRead, bytes: &mut Vec<u8>, chunk: usize) -> std::io::Result<()> {
    while bytes.len() < chunk {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(());
        }
        let n = available.len().min(chunk - bytes.len());
        bytes.extend_from_slice(&available[..n]);
        input.consume(n);
    }
    if bytes.last() != Some(&b'\n') {
        input.read_until(b'\n', bytes)?;
    }
    Ok(())
}

/// Reads from `input` into `bytes` binary records until they hold at least `chunk` bytes, or to the end of
/// the input. A record cut off by the end of the input is read as it is: its worker says so.
fn fill_binary(input: &mut impl BufRead, bytes: &mut Vec<u8>, chunk: usize) -> std::io::Result<()> {
    while bytes.len() < chunk {
        let start = bytes.len();
        if read_up_to(input, bytes, 4)? < 4 {
            return Ok(());
        }
        let len = u32::from_le_bytes(bytes[start..].try_into().expect("4 bytes"));
        // A length that lies reads at most what the input holds.
        if read_up_to(input, bytes, len as usize)? < len as usize {
            return Ok(());
        }
    }
    Ok(())
}

/// Appends up to `n` bytes of `input` to `bytes`, fewer only at the end of the input; returns how many.
fn read_up_to(input: &mut impl BufRead, bytes: &mut Vec<u8>, n: usize) -> std::io::Result<usize> {
    let mut read = 0;
    while read < n {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let k = available.len().min(n - read);
        bytes.extend_from_slice(&available[..k]);
        input.consume(k);
        read += k;
    }
    Ok(read)
}

/// Decodes one chunk of binary records.
fn decode_chunk(bytes: &[u8]) -> Parsed {
    let mut records = Vec::with_capacity(bytes.len() / 64);
    let mut at = 0;
    while at < bytes.len() {
        let Some(end) = binary_record_end(bytes, at) else {
            let message = match bytes.get(at..at + 4) {
                Some(len) => format!(
                    "the trace ends inside a record of {} bytes ({} of them are there)",
                    u32::from_le_bytes(len.try_into().expect("4 bytes")),
                    bytes.len() - at - 4
                ),
                None => "the trace ends inside a record's length".to_string(),
            };
            return Parsed::Bad(records.len(), message);
        };
        match borsh::from_slice::<Record>(&bytes[at + 4..end]) {
            Ok(record) => records.push(record),
            Err(e) => return Parsed::Bad(records.len(), format!("not a record: {e}")),
        }
        at = end;
    }
    Parsed::Lines(records.len(), records)
}

/// A line without its end (`\n` or `\r\n`).
fn without_end(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// Parses one chunk of whole lines.
fn parse_chunk(bytes: &[u8]) -> Parsed {
    // The chunk is checked to be UTF-8 at once, so that the parser reads strings as they are, without
    // checking each key again. Up to a line that is not UTF-8, the lines are parsed first (so that a bad
    // line before it is the one named).
    let (text, not_utf8) = match std::str::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(e) => {
            let whole = bytes[..e.valid_up_to()]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |k| k + 1);
            let text = std::str::from_utf8(&bytes[..whole]).expect("UTF-8 up to there");
            (text, true)
        }
    };
    let mut records = Vec::with_capacity(text.len() / 128);
    let body = text.strip_suffix('\n').unwrap_or(text);
    if !text.is_empty() {
        for (k, line) in body.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                return Parsed::Bad(
                    k,
                    "blank line (every line after the header is one event)".to_string(),
                );
            }
            match serde_json::from_str(line) {
                Ok(record) => records.push(record),
                Err(e) => return Parsed::Bad(k, e.to_string()),
            }
        }
    }
    if not_utf8 {
        return Parsed::Bad(records.len(), "not UTF-8".to_string());
    }
    Parsed::Lines(records.len(), records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_read_from_16_hex_digits_and_nothing_else() {
        let read = |json: &str| serde_json::from_str::<Digest>(json).map_err(|e| e.to_string());
        assert_eq!(read("\"57ba46544827cA99\""), Ok(Digest(0x57ba46544827ca99)));
        for bad in [
            "\"57ba46544827ca9\"",
            "\"+7ba46544827ca99\"",
            "\"57ba46544827ca9g\"",
            "12",
        ] {
            let e = read(bad).unwrap_err();
            assert!(e.contains("16 hex digits"), "{bad}: {e}");
        }
    }

    /// A trace of `n` events, as its file's bytes.
    fn file(n: usize) -> Vec<u8> {
        let mut trace = Trace::new(3, "test");
        trace.records = (0..n)
            .map(|k| Record {
                t: k as u64,
                ev: Event::Crash { node: k as u64 % 3 },
            })
            .collect();
        let mut bytes = Vec::new();
        trace.write(&mut bytes).unwrap();
        bytes
    }

    /// A chunk size small enough that the test traces take many chunks.
    const SMALL: usize = 1000;

    /// The file `bytes` without its header line.
    fn events(bytes: &[u8]) -> &[u8] {
        let header = bytes.iter().position(|&b| b == b'\n').unwrap();
        &bytes[header + 1..]
    }

    /// Many chunks over several threads come back whole and in the file's order.
    #[test]
    fn a_trace_read_on_threads_keeps_its_order() {
        let n = 3 * CHUNK / 30;
        let bytes = file(n);
        assert!(bytes.len() > 2 * CHUNK, "{} bytes", bytes.len());
        let trace = Trace::read(bytes.as_slice()).unwrap();
        assert_eq!(trace.records.len(), n);
        assert!(trace
            .records
            .iter()
            .enumerate()
            .all(|(k, r)| r.t == k as u64));
        reads_whole_on_threads(events(&bytes), Encoding::Json, &trace.records);
    }

    /// `bytes`, records in `encoding`, read in many small chunks on 1, 2 and 5 threads, give `expected`.
    fn reads_whole_on_threads(bytes: &[u8], encoding: Encoding, expected: &[Record]) {
        for threads in [1, 2, 5] {
            let mut records = Vec::new();
            let mut chunks = 0;
            read_records(bytes, encoding, threads, SMALL, |batch| {
                chunks += 1;
                records.extend(batch);
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(records, expected);
            assert!(chunks > bytes.len() / (SMALL + 64), "{chunks} chunks");
        }
    }

    /// A stream hands every record in order, chunk by chunk, and stops when told to.
    #[test]
    fn a_streamed_trace_comes_in_order_and_stops_when_told() {
        let n = 3 * CHUNK / 30;
        let (header, (chunks, seen)) = Trace::stream(
            file(n).as_slice(),
            |h| {
                assert_eq!(h.nodes, 3);
                (0usize, 0u64)
            },
            |(chunks, seen), batch| {
                *chunks += 1;
                for r in batch {
                    assert_eq!(r.t, *seen);
                    *seen += 1;
                }
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        assert_eq!((header.nodes, seen), (3, n as u64));
        assert!(chunks >= 3, "{chunks} chunks");
        let (_, chunks) = Trace::stream(
            file(n).as_slice(),
            |_| 0usize,
            |chunks, _| {
                *chunks += 1;
                ControlFlow::Break(())
            },
        )
        .unwrap();
        assert_eq!(chunks, 1, "nothing is handed on after a stop");
    }

    /// Of two bad lines in different chunks, the first is the one named, whatever the threads; a blank
    /// line is named too, and lines may end in `\r\n`.
    #[test]
    fn the_first_bad_line_is_named_whatever_the_threads() {
        let bytes = file(300);
        let text = String::from_utf8(bytes).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let (first, second) = (200, 290);
        lines[second - 1] = "{}";
        lines[first - 1] = "not json";
        let bad = lines.join("\r\n");
        for threads in [1, 2, 5] {
            match read_records(
                events(bad.as_bytes()),
                Encoding::Json,
                threads,
                SMALL,
                |_| ControlFlow::Continue(()),
            ) {
                Err(ReadError::Record { line, .. }) => assert_eq!(line, first),
                other => panic!("{other:?}"),
            }
        }
        match Trace::read(bad.as_bytes()) {
            Err(ReadError::Record { line, .. }) => assert_eq!(line, first),
            other => panic!("{other:?}"),
        }
        lines[first - 1] = " ";
        match Trace::read(lines.join("\n").as_bytes()) {
            Err(ReadError::Record { line, message }) => {
                assert_eq!(line, first);
                assert!(message.contains("blank line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Where line `line` (1-based: the header is line 1) of `bytes` starts.
    fn line_start(bytes: &[u8], line: usize) -> usize {
        if line == 1 {
            return 0;
        }
        let end_before = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(line - 2);
        end_before.expect("the file has that line").0 + 1
    }

    /// A line that is not UTF-8 is named, unless a bad line comes before it.
    #[test]
    fn a_line_that_is_not_utf8_is_named() {
        let mut bad = file(300);
        // Inside line 250's text.
        let at = line_start(&bad, 250) + 3;
        bad[at] = 0xff;
        match Trace::read(bad.as_slice()) {
            Err(ReadError::Record { line, message }) => {
                assert_eq!((line, message.as_str()), (250, "not UTF-8"));
            }
            other => panic!("{other:?}"),
        }
        let at = line_start(&bad, 120);
        bad[at] = b'x';
        for threads in [1, 2] {
            match read_records(events(&bad), Encoding::Json, threads, SMALL, |_| {
                ControlFlow::Continue(())
            }) {
                Err(ReadError::Record { line, .. }) => assert_eq!(line, 120),
                other => panic!("{other:?}"),
            }
        }
    }

    /// Gives `bytes`, then fails.
    struct FailsAfter<'a>(&'a [u8]);

    impl std::io::Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("the disk is gone"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A read of a binary trace that fails names the event it cut off.
    #[test]
    fn a_read_error_in_a_binary_trace_names_the_event_it_cut_off() {
        let (bytes, _) = binary_file(300);
        let (records, starts) = binary_records(&bytes);
        let head = bytes.len() - records.len();
        for (k, into) in [(251, 2), (100, 9), (7, 0)] {
            let cut = head + starts[k] + into;
            let input = std::io::BufReader::with_capacity(64, FailsAfter(&bytes[..cut]));
            match Trace::read(input) {
                Err(ReadError::BinaryIo { event, source }) => {
                    assert_eq!(event, k);
                    assert_eq!(source.to_string(), "the disk is gone");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// A read that fails names the line it cut off; the lines before it are parsed first, so a bad line
    /// before it is the one named.
    #[test]
    fn a_read_error_names_the_line_it_cut_off() {
        let bytes = file(300);
        // Cut in the middle of line 251.
        let cut = line_start(&bytes, 251) + 4;
        let input = std::io::BufReader::with_capacity(64, FailsAfter(&bytes[..cut]));
        match Trace::read(input) {
            Err(ReadError::Io { line, source }) => {
                assert_eq!(line, 251);
                assert_eq!(source.to_string(), "the disk is gone");
            }
            other => panic!("{other:?}"),
        }
        let mut bad = bytes[..cut].to_vec();
        let at = line_start(&bad, 100);
        bad[at] = b'x';
        let input = std::io::BufReader::with_capacity(64, FailsAfter(&bad));
        match Trace::read(input) {
            Err(ReadError::Record { line, .. }) => assert_eq!(line, 100),
            other => panic!("{other:?}"),
        }
    }

    /// A trace of `n` events in the binary encoding, as its file's bytes, with the trace.
    fn binary_file(n: usize) -> (Vec<u8>, Trace) {
        let trace = Trace::read(file(n).as_slice()).unwrap();
        let mut bytes = Vec::new();
        trace.write_binary(&mut bytes).unwrap();
        (bytes, trace)
    }

    /// The binary file `bytes` without its first two lines, and where each of its records starts.
    fn binary_records(bytes: &[u8]) -> (&[u8], Vec<usize>) {
        let second = bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(1);
        let records = &bytes[second.unwrap().0 + 1..];
        let mut starts = vec![0];
        while let Some(end) = binary_record_end(records, *starts.last().unwrap()) {
            starts.push(end);
        }
        assert_eq!(starts.pop(), Some(records.len()));
        (records, starts)
    }

    /// A binary trace reads back as the trace written, over many chunks and threads.
    #[test]
    fn a_binary_trace_reads_back_whole_and_in_order() {
        let n = 3 * CHUNK / 8;
        let (bytes, trace) = binary_file(n);
        assert!(bytes.starts_with(BINARY_MAGIC));
        assert_eq!(Trace::read(bytes.as_slice()).unwrap(), trace);
        let (records, starts) = binary_records(&bytes);
        assert!(records.len() > 2 * CHUNK, "{} bytes", records.len());
        assert_eq!(starts.len(), n);
        reads_whole_on_threads(records, Encoding::Binary, &trace.records);
    }

    /// Of two bad records in different chunks, the first is named, whatever the threads; a record cut off
    /// and a length that promises more than the file holds are named too.
    #[test]
    fn the_first_bad_record_of_a_binary_trace_is_named() {
        let (bytes, _) = binary_file(300);
        let (records, starts) = binary_records(&bytes);
        let head = bytes.len() - records.len();
        let mut bad = bytes.clone();
        // A variant of `Event` that does not exist, in events 120 and 250 (a Crash's tag is its fifth byte).
        for k in [250, 120] {
            bad[head + starts[k] + 4 + 8] = 0xee;
        }
        for threads in [1, 2, 5] {
            match read_records(&bad[head..], Encoding::Binary, threads, SMALL, |_| {
                ControlFlow::Continue(())
            }) {
                Err(ReadError::BinaryRecord { event, message }) => {
                    assert_eq!(event, 120, "{message}");
                    assert!(message.contains("not a record"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let cut = &bytes[..head + starts[200] + 6];
        match Trace::read(cut) {
            Err(ReadError::BinaryRecord { event, message }) => {
                assert_eq!(event, 200, "{message}");
                assert!(message.contains("ends inside a record"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let mut lying = bytes.clone();
        lying[head + starts[7]..][..4].copy_from_slice(&u32::MAX.to_le_bytes());
        match Trace::read(lying.as_slice()) {
            Err(ReadError::BinaryRecord { event, message }) => {
                assert_eq!(event, 7, "{message}");
                assert!(message.contains("4294967295 bytes"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A record whose length leaves bytes of it unread.
        let mut long = bytes[..head + starts[3]].to_vec();
        let record = &records[starts[3] + 4..starts[4]];
        long.extend_from_slice(&(record.len() as u32 + 1).to_le_bytes());
        long.extend_from_slice(record);
        long.push(0);
        match Trace::read(long.as_slice()) {
            Err(ReadError::BinaryRecord { event, .. }) => assert_eq!(event, 3),
            other => panic!("{other:?}"),
        }
    }
}
