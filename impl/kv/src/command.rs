//! What goes through the log, and what the store answers: [`Command`] in, [`Reply`] out, both encoded with
//! the project's one codec ([`crate::encode`], [`crate::decode`]).

use serde::{Deserialize, Serialize};

/// A log index, as the Raft core numbers entries (`raft::Index`): 1 for the first entry.
pub type Index = u64;

/// A client, named by the log index at which its [`Command::Register`] was applied: ids are deterministic
/// (every replica assigns the same), never reused, and every id a store has not yet reached is known to
/// be no client's.
pub type ClientId = Index;

/// A client's sequence number for its writes: 1 for its first, increasing with each new write (gaps are
/// allowed), the same on every retry of one write.
pub type Seq = u64;

/// A change to the data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Write {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Appends `arg` to `key`'s value (a missing key's value is `""`).
    Append {
        /// The key.
        key: String,
        /// What to append.
        arg: String,
    },
    /// Sets `key` to `new` if its value (`""` when missing) equals `expected`.
    Cas {
        /// The key.
        key: String,
        /// The value it must have.
        expected: String,
        /// The value it gets if it had `expected`.
        new: String,
    },
}

impl Write {
    /// The key it changes.
    pub fn key(&self) -> &str {
        match self {
            Write::Put { key, .. } | Write::Append { key, .. } | Write::Cas { key, .. } => key,
        }
    }
}

/// A command in the log. The empty command (a new leader's no-op entry) is no encoding of a `Command`:
/// [`Store::apply`](crate::Store::apply) takes it apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// Opens a session; the client's id is the index this command is applied at.
    Register,
    /// A client's write, applied at most once per `(client, seq)`.
    Write {
        /// The client's id ([`Reply::Registered`]).
        client: ClientId,
        /// The write's sequence number in the client's session.
        seq: Seq,
        /// The change.
        write: Write,
    },
}

/// The store's answer to one command, as it goes back to the client that proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reply {
    /// A [`Command::Register`] opened the session of this client.
    Registered(ClientId),
    /// A `Put` or `Append` was applied (now or, for a retry, before), as was the empty command.
    Done,
    /// A `Cas` was applied (now or, for a retry, before): whether it swapped.
    Swapped(bool),
    /// The client has no session (it was evicted, or never existed): the write was not applied now, and
    /// whether an earlier copy of it was is unknown to the store.
    SessionExpired,
    /// The sequence number is lower than the last one the session applied: the client has moved on, and
    /// this copy of an old request is not applied.
    Stale,
    /// The bytes are no command; nothing was applied.
    Malformed(String),
}

/// The outcome of a write that a session remembers, to answer a retry with (only writes that were applied
/// are remembered, and only these two answers come of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Written {
    /// A `Put` or `Append`.
    Done,
    /// A `Cas`, and whether it swapped.
    Swapped(bool),
}

impl From<Written> for Reply {
    fn from(written: Written) -> Reply {
        match written {
            Written::Done => Reply::Done,
            Written::Swapped(swapped) => Reply::Swapped(swapped),
        }
    }
}
