//! The snapshot format: a format byte, then (postcard) the last applied index, the data and the sessions,
//! each map as a length and its entries in increasing key order. The bytes are a function of the state
//! alone, so replicas in the same state write the same snapshot.
//!
//! Snapshots arrive from disk and from the leader, so decoding trusts nothing: the whole input must be one
//! snapshot, keys and client ids strictly increasing (one encoding per state), at most the store's
//! `max_sessions` sessions, and each session one that a log could have produced.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{ClientId, Index};
use crate::session::{Session, Sessions};

/// The format this version writes and reads (the snapshot's first byte).
pub const FORMAT: u8 = 1;

/// Why bytes are no snapshot a store can restore.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No bytes at all.
    #[error("an empty snapshot")]
    Empty,
    /// A format this version does not read.
    #[error("snapshot format {0}, expected {FORMAT}")]
    Format(u8),
    /// Truncated, malformed, or followed by other bytes.
    #[error("undecodable snapshot: {0}")]
    Codec(#[from] crate::CodecError),
    /// A key not after the one before it.
    #[error("key {0:?} out of order")]
    KeyOrder(String),
    /// A client id not after the one before it.
    #[error("session of client {0} out of order")]
    ClientOrder(ClientId),
    /// More sessions than the store keeps.
    #[error("{count} sessions, more than the {max} this store keeps")]
    TooManySessions {
        /// How many the snapshot holds.
        count: usize,
        /// How many the store keeps.
        max: usize,
    },
    /// A session no log could have produced.
    #[error("session of client {client}: {reason}")]
    Session {
        /// The client.
        client: ClientId,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The state a snapshot holds, borrowed for writing.
#[derive(Serialize)]
struct Writing<'a> {
    format: u8,
    last_applied: Index,
    data: &'a BTreeMap<String, String>,
    sessions: &'a BTreeMap<ClientId, Session>,
}

/// The state a snapshot holds, as read (maps as lists, to see their order).
#[derive(Deserialize)]
struct Reading {
    format: u8,
    last_applied: Index,
    data: Vec<(String, String)>,
    sessions: Vec<(ClientId, Session)>,
}

/// A snapshot's state, checked.
pub(crate) struct Restored {
    pub(crate) last_applied: Index,
    pub(crate) data: BTreeMap<String, String>,
    pub(crate) sessions: Sessions,
}

/// The snapshot of this state.
pub(crate) fn write(
    last_applied: Index,
    data: &BTreeMap<String, String>,
    sessions: &Sessions,
) -> Vec<u8> {
    crate::encode(&Writing {
        format: FORMAT,
        last_applied,
        data,
        sessions: sessions.by_client(),
    })
}

/// The state `bytes` hold, for a store that keeps at most `max_sessions` sessions.
pub(crate) fn read(bytes: &[u8], max_sessions: usize) -> Result<Restored, SnapshotError> {
    // The format byte first: another format's bytes need not decode as this one's.
    match bytes.first() {
        None => return Err(SnapshotError::Empty),
        Some(&format) if format != FORMAT => return Err(SnapshotError::Format(format)),
        Some(_) => {}
    }
    let Reading {
        format,
        last_applied,
        data,
        sessions,
    } = crate::decode(bytes)?;
    debug_assert_eq!(format, FORMAT);
    if let Some(pair) = data.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
        return Err(SnapshotError::KeyOrder(pair[1].0.clone()));
    }
    if let Some(pair) = sessions.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
        return Err(SnapshotError::ClientOrder(pair[1].0));
    }
    if sessions.len() > max_sessions {
        return Err(SnapshotError::TooManySessions {
            count: sessions.len(),
            max: max_sessions,
        });
    }
    let mut activities = BTreeSet::new();
    for (client, session) in &sessions {
        check_session(*client, session, last_applied)?;
        if !activities.insert(session.active) {
            // Each log index names at most one session.
            return Err(SnapshotError::Session {
                client: *client,
                reason: "last active at the same index as another session",
            });
        }
    }
    Ok(Restored {
        last_applied,
        data: data.into_iter().collect(),
        sessions: Sessions::with(max_sessions, sessions),
    })
}

/// Whether `session` is one a log through `last_applied` could have left: registered at `client` (an index
/// of that log), last active at or after it, and, once a write was applied, after it.
fn check_session(
    client: ClientId,
    session: &Session,
    last_applied: Index,
) -> Result<(), SnapshotError> {
    let reason = if client == 0 {
        Some("client 0 is no log index")
    } else if session.active < client {
        Some("last active before it registered")
    } else if session.active > last_applied {
        Some("last active after the last applied index")
    } else if session.last.is_some() && session.active == client {
        Some("a write applied at its own registration")
    } else if session.last.is_some_and(|(seq, _)| seq == 0) {
        Some("a write applied with sequence number 0")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SnapshotError::Session { client, reason }),
        None => Ok(()),
    }
}
