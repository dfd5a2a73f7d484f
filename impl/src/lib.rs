//! `raft`: a sans-IO Raft core.
//!
//! The core follows Figures 2 and 13 of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable
//! Consensus Algorithm"). It owns no threads, clocks, sockets or files: time enters through [`Node::tick`],
//! messages through [`Node::step`], commands through [`Node::propose`], the service's snapshots through
//! [`Node::snapshot`], and everything the node wants done comes out of [`Node::ready`] as a [`Ready`]. A `Ready`
//! exposes the state to make durable ([`Ready::persist`], with [`Ready::snapshot`] when the snapshot changed: the
//! two are saved together); the messages to send and the entries or snapshots to apply are only reachable
//! through [`Ready::persisted`], so a caller cannot release a message before the state it depends on is durable.
//!
//! ```
//! use raft::{Config, Node};
//!
//! // A one-server cluster elects itself and commits on its own.
//! let mut node = Node::new(0, &[0], Config::default(), None, None, 7).unwrap();
//! while !node.is_leader() {
//!     node.tick();
//! }
//! let (index, term) = node.propose(b"x".to_vec()).unwrap();
//! assert_eq!((index, term), (1, 1));
//! let ready = node.ready();
//! let persisted = ready.persist().cloned(); // write this to disk first
//! assert_eq!(persisted.unwrap().log.len(), 1);
//! let released = ready.persisted();
//! assert_eq!(released.applies.len(), 1);
//!
//! // The service snapshots its state through index 1; the log before it is discarded. The state and the
//! // snapshot are then saved together.
//! node.snapshot(1, b"state".to_vec()).unwrap();
//! let ready = node.ready();
//! assert_eq!(ready.persist().unwrap().last_included_index, 1);
//! assert!(ready.persist().unwrap().log.is_empty());
//! assert_eq!(ready.snapshot(), Some(&b"state"[..]));
//! ```
//!
//! Modules by concern: [`config`] (timing and batching knobs), [`membership`] (configurations, quorums and
//! one-step changes), [`message`] (the wire and durable types),
//! [`codec`] (the one binary codec), `log` (the replicated log), `progress` (the leader's view of each follower),
//! [`node`] (the state machine itself), [`read`] (linearizable reads by ReadIndex), [`ready`] (its output) and
//! [`observe`] (a hook that reports every step, for trace checking).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod config;
mod log;
pub mod membership;
pub mod message;
#[cfg(feature = "mutants")]
pub mod mutants;
#[cfg(not(feature = "mutants"))]
mod mutants;
pub mod node;
pub mod observe;
mod progress;
pub mod read;
pub mod ready;

pub use codec::{decode, encode, CodecError};
pub use config::{Config, ConfigError};
pub use membership::{ConfChange, Membership, MembershipError};
pub use message::{
    AppendEntries, AppendEntriesReply, Entry, Envelope, InstallSnapshot, InstallSnapshotReply,
    Message, Payload, PersistentState, RequestVote, RequestVoteReply, TimeoutNow,
};
pub use node::{
    ConfChangeRefused, Node, NotLeader, ReadRefused, Role, SnapshotError, StepError,
    TransferRefused,
};
pub use observe::{Observer, Output, Step};
pub use read::{PendingRead, ReadState};
pub use ready::{Apply, Ready, Released};

/// Identifies a server. In the lab tester servers are numbered `0..n`.
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A log index. Indexes are 1-based as in the paper; 0 is the empty-log sentinel whose term is 0.
pub type Index = u64;

/// The highest term a node holds, accepts or sends: 2^62 - 1. A message or a persisted state with a term above
/// it is refused as malformed (no correct server reaches it: that takes 2^62 elections), so the core's own
/// `term + 1` cannot overflow. A node whose term is `MAX_TERM` never starts an election (there is no next
/// term): it keeps its role, and a cluster brought there by a faulty peer keeps its safety but, without a
/// leader of that term, elects none.
pub const MAX_TERM: Term = (1 << 62) - 1;

/// The highest log index a node holds, accepts or sends: 2^62 - 1 (the runtime's storage also treats an
/// index of 2^62 or more as damage). A message or a persisted state that names a later index, or a log that
/// would extend past it, is refused as malformed, so the core's index arithmetic (`last_index + 1`,
/// `next_index`, conflict hints) stays far from overflowing. A leader whose log ends at `MAX_INDEX` refuses
/// proposals.
pub const MAX_INDEX: Index = (1 << 62) - 1;
