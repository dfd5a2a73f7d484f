//! `raft`: a sans-IO Raft core.
//!
//! The core follows Figure 2 of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
//! Algorithm"). It owns no threads, clocks, sockets or files: time enters through [`Node::tick`], messages through
//! [`Node::step`], commands through [`Node::propose`], and everything the node wants done comes out of
//! [`Node::ready`] as a [`Ready`]. A `Ready` exposes the state to make durable ([`Ready::persist`]); the messages to
//! send and the entries to apply are only reachable through [`Ready::persisted`], so a caller cannot release a
//! message before the state it depends on is durable.
//!
//! ```
//! use raft::{Config, Node};
//!
//! // A one-server cluster elects itself and commits on its own.
//! let mut node = Node::new(0, &[0], Config::default(), None, 7).unwrap();
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
//! ```
//!
//! Modules by concern: [`config`] (timing and batching knobs), [`message`] (the wire and durable types),
//! [`codec`] (the one binary codec), `log` (the replicated log), `progress` (the leader's view of each follower),
//! [`node`] (the state machine itself) and [`ready`] (its output).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod config;
mod log;
pub mod message;
pub mod node;
mod progress;
pub mod ready;

pub use codec::{decode, encode, CodecError};
pub use config::{Config, ConfigError};
pub use message::{
    AppendEntries, AppendEntriesReply, Entry, Envelope, Message, PersistentState, RequestVote,
    RequestVoteReply,
};
pub use node::{Node, NotLeader, Role, StepError};
pub use ready::{Apply, Ready, Released};

/// Identifies a server. In the lab tester servers are numbered `0..n`.
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A log index. Indexes are 1-based as in the paper; 0 is the empty-log sentinel whose term is 0.
pub type Index = u64;
