//! What a client and a server say to each other, whatever carries it (the lab simulator's calls, or
//! `raft-node`'s client connections, which pair each reply with its request). Servers are numbered
//! `0..n` in the same order by clients and servers (the cluster's list of peers), and a leader hint is
//! such a number.

use serde::{Deserialize, Serialize};

use crate::command::{Command, Reply};

/// A client's request to one server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Request {
    /// Propose this command (a `Register` or a write) and answer once its fate is known.
    Propose(Command),
    /// Read `key` from the state applied through a ReadIndex (linearizable), without going through the log.
    Read {
        /// The key.
        key: String,
    },
}

/// A server's response to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Response {
    /// The proposed command committed and was applied; the store's answer.
    Committed(Reply),
    /// A read's value (`""` for a missing key).
    Value(String),
    /// This server does not lead; the leader it knows of, by number, if any.
    NotLeader(Option<usize>),
    /// Another entry committed where the command was: it will never commit. Retry (a write with the same
    /// sequence number).
    Lost,
    /// The command may or may not have committed (a snapshot covered its index, or it was lost track of).
    /// Retry (a write with the same sequence number: its session answers a write applied already).
    Unknown,
    /// The server cannot serve now (it is stopping, or a read found no leader): a proposal's fate is
    /// unknown. Retry elsewhere.
    Unavailable,
}
