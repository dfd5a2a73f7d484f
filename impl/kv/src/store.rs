//! The replicated state machine: the data, the client sessions, and the last applied index.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::command::{ClientId, Command, Index, Reply, Seq, Write, Written};
use crate::session::{Session, Sessions};
use crate::snapshot::{self, SnapshotError};

/// How many sessions a [`Store::default`] keeps.
///
/// A session costs about 100 bytes of memory (an entry in each of two B-trees; `tests/memory.rs` measures
/// 97) and at most 33 bytes of snapshot, so 65,536 sessions take about 6 MiB of memory and at most 2 MiB
/// of snapshot. A client that waits through 65,536 registrations of others without writing is evicted.
pub const DEFAULT_MAX_SESSIONS: usize = 65_536;

/// The key-value store with its client sessions: what every replica applies the log to.
///
/// Commands are applied in log order ([`Store::apply`]); reads ([`Store::get`]) see the state as applied so
/// far, and are linearizable when served after a ReadIndex. Sessions expire as [`crate::session`] says: at
/// most [`Store::max_sessions`] are kept, and registering one more evicts the one least recently active.
/// Every replica must keep the same maximum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    data: BTreeMap<String, String>,
    sessions: Sessions,
    last_applied: Index,
}

impl Default for Store {
    fn default() -> Store {
        Store::with_max_sessions(DEFAULT_MAX_SESSIONS)
    }
}

impl Store {
    /// An empty store that keeps at most [`DEFAULT_MAX_SESSIONS`] sessions.
    pub fn new() -> Store {
        Store::default()
    }

    /// An empty store that keeps at most `max_sessions` sessions.
    ///
    /// # Panics
    ///
    /// If `max_sessions` is 0.
    pub fn with_max_sessions(max_sessions: usize) -> Store {
        Store {
            data: BTreeMap::new(),
            sessions: Sessions::new(max_sessions),
            last_applied: 0,
        }
    }

    /// Applies the command committed at `index` and returns the answer for the client that proposed it:
    /// an encoded [`Reply`]. The empty command (a new leader's no-op entry) changes nothing and is answered
    /// [`Reply::Done`]; bytes that are no [`Command`] change nothing and are answered [`Reply::Malformed`].
    /// No input makes it panic.
    ///
    /// `index` must be greater than the last applied index: applying an entry twice or out of order is a
    /// bug in the caller (asserted in debug builds).
    pub fn apply(&mut self, index: Index, command: &[u8]) -> Vec<u8> {
        let reply = if command.is_empty() {
            self.advance(index);
            Reply::Done
        } else {
            match crate::decode(command) {
                Ok(command) => self.apply_command(index, command),
                Err(e) => {
                    self.advance(index);
                    Reply::Malformed(e.to_string())
                }
            }
        };
        crate::encode(&reply)
    }

    /// Applies a decoded `command` at `index` (as [`Store::apply`] does) and returns its answer.
    pub fn apply_command(&mut self, index: Index, command: Command) -> Reply {
        self.advance(index);
        match command {
            Command::Register => {
                self.sessions.register(index);
                Reply::Registered(index)
            }
            Command::Write { client, seq, write } => self.write(index, client, seq, write),
        }
    }

    fn advance(&mut self, index: Index) {
        debug_assert!(
            index > self.last_applied,
            "index {index} applied after index {}",
            self.last_applied
        );
        self.last_applied = index;
    }

    /// A client's write: applied if `seq` is new to its session, answered from the session if it is the
    /// last one applied, refused if older or if the client has no session.
    fn write(&mut self, index: Index, client: ClientId, seq: Seq, write: Write) -> Reply {
        let Some(session) = self.sessions.touch(client, index) else {
            return Reply::SessionExpired;
        };
        match (seq.cmp(&session.last_seq()), session.last) {
            (Ordering::Equal, Some((_, written))) => written.into(),
            (Ordering::Less | Ordering::Equal, _) => Reply::Stale,
            (Ordering::Greater, _) => {
                let written = execute(&mut self.data, write);
                session.last = Some((seq, written));
                written.into()
            }
        }
    }

    /// `key`'s value (`""` when missing), as applied so far.
    pub fn get(&self, key: &str) -> &str {
        self.data.get(key).map_or("", String::as_str)
    }

    /// Every key and its value, as applied so far.
    pub fn data(&self) -> &BTreeMap<String, String> {
        &self.data
    }

    /// The index of the last command applied (or of the snapshot restored), 0 before any.
    pub fn last_applied(&self) -> Index {
        self.last_applied
    }

    /// The most sessions this store keeps.
    pub fn max_sessions(&self) -> usize {
        self.sessions.max()
    }

    /// `client`'s session, if it has one.
    pub fn session(&self, client: ClientId) -> Option<&Session> {
        self.sessions.get(client)
    }

    /// Every open session, by client id.
    pub fn sessions(&self) -> impl Iterator<Item = (ClientId, &Session)> {
        self.sessions.by_client().iter().map(|(&c, s)| (c, s))
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The whole state (data, sessions and the last applied index), as bytes that depend on nothing else.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::write(self.last_applied, &self.data, &self.sessions)
    }

    /// Replaces the whole state with a snapshot's. Bytes that [`Store::check`] refuses change nothing.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError> {
        let restored = snapshot::read(snapshot, self.max_sessions())?;
        self.data = restored.data;
        self.sessions = restored.sessions;
        self.last_applied = restored.last_applied;
        Ok(())
    }

    /// Whether [`Store::restore`] would accept `snapshot`, without changing anything.
    pub fn check(&self, snapshot: &[u8]) -> Result<(), SnapshotError> {
        snapshot::read(snapshot, self.max_sessions()).map(drop)
    }
}

/// Applies `write` to `data`; what its client is told.
fn execute(data: &mut BTreeMap<String, String>, write: Write) -> Written {
    match write {
        Write::Put { key, value } => {
            data.insert(key, value);
            Written::Done
        }
        Write::Append { key, arg } => {
            data.entry(key).or_default().push_str(&arg);
            Written::Done
        }
        Write::Cas { key, expected, new } => {
            let swapped = data.get(&key).map_or("", String::as_str) == expected;
            if swapped {
                data.insert(key, new);
            }
            Written::Swapped(swapped)
        }
    }
}
