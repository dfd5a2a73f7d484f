//! Client sessions (§6.3 of Ongaro's dissertation): for each client, the sequence number of its last
//! applied write and that write's answer, so that a retried write is answered without being applied again.
//!
//! **Expiry.** A store keeps at most [`Store::max_sessions`] sessions ([`DEFAULT_MAX_SESSIONS`] unless
//! made with [`Store::with_max_sessions`]). Registering one more evicts the session whose last
//! activity is oldest, where a session's last activity is the log index of the last command that named it
//! (its `Register`, or any write of its since, applied, repeated or stale); ties, which no log produces, go
//! to the lower client id. Everything the rule reads comes from the log, so every replica evicts the same
//! sessions at the same index. A client whose session was evicted is answered [`Reply::SessionExpired`]
//! and must register again; whether its write in progress was applied is unknown.
//!
//! [`Store::max_sessions`]: crate::Store::max_sessions
//! [`Store::with_max_sessions`]: crate::Store::with_max_sessions
//! [`DEFAULT_MAX_SESSIONS`]: crate::DEFAULT_MAX_SESSIONS

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{ClientId, Index, Reply, Seq, Written};

/// One client's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The last write applied, by sequence number, and its answer (none before the first).
    pub(crate) last: Option<(Seq, Written)>,
    /// The log index of the last command that named this session.
    pub(crate) active: Index,
}

impl Session {
    /// The sequence number of the last write applied (0 before the first).
    pub fn last_seq(&self) -> Seq {
        self.last.map_or(0, |(seq, _)| seq)
    }

    /// The answer of the last write applied, which a retry of it gets.
    pub fn last_reply(&self) -> Option<Reply> {
        self.last.map(|(_, written)| written.into())
    }

    /// The log index of the last command that named this session, by which the oldest is evicted.
    pub fn last_activity(&self) -> Index {
        self.active
    }
}

/// The sessions of a store, at most `max` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sessions {
    max: usize,
    by_client: BTreeMap<ClientId, Session>,
    /// `(last activity, client)` of every session: the first is the next to evict.
    by_activity: BTreeSet<(Index, ClientId)>,
}

impl Sessions {
    /// No sessions; at most `max` (at least 1) at any time.
    pub(crate) fn new(max: usize) -> Sessions {
        assert!(max >= 1, "a store keeps at least one session");
        Sessions {
            max,
            by_client: BTreeMap::new(),
            by_activity: BTreeSet::new(),
        }
    }

    /// These sessions (already checked: distinct clients, at most `max`).
    pub(crate) fn with(max: usize, sessions: Vec<(ClientId, Session)>) -> Sessions {
        debug_assert!(sessions.len() <= max);
        let by_activity = sessions.iter().map(|(c, s)| (s.active, *c)).collect();
        let by_client: BTreeMap<_, _> = sessions.into_iter().collect();
        Sessions {
            max,
            by_client,
            by_activity,
        }
    }

    /// The most sessions kept.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Opens the session of the client registered at `index`, evicting the session least recently active
    /// if `max` are open; returns the evicted client, if any.
    pub(crate) fn register(&mut self, index: Index) -> Option<ClientId> {
        let client: ClientId = index;
        // An index is applied once, so `client` is new; were it not (a bug upstream), replace it whole.
        self.remove(client);
        let evicted = if self.by_client.len() >= self.max {
            let (_, oldest) = self
                .by_activity
                .pop_first()
                .expect("max >= 1 sessions are open");
            self.by_client.remove(&oldest);
            Some(oldest)
        } else {
            None
        };
        self.by_client.insert(
            client,
            Session {
                last: None,
                active: index,
            },
        );
        self.by_activity.insert((index, client));
        debug_assert_eq!(self.by_client.len(), self.by_activity.len());
        debug_assert!(self.by_client.len() <= self.max);
        evicted
    }

    /// `client`'s session, if it has one, now active at `index`.
    pub(crate) fn touch(&mut self, client: ClientId, index: Index) -> Option<&mut Session> {
        let session = self.by_client.get_mut(&client)?;
        self.by_activity.remove(&(session.active, client));
        self.by_activity.insert((index, client));
        session.active = index;
        Some(session)
    }

    fn remove(&mut self, client: ClientId) {
        if let Some(session) = self.by_client.remove(&client) {
            self.by_activity.remove(&(session.active, client));
        }
    }

    /// `client`'s session.
    pub(crate) fn get(&self, client: ClientId) -> Option<&Session> {
        self.by_client.get(&client)
    }

    /// Every session, by client id.
    pub(crate) fn by_client(&self) -> &BTreeMap<ClientId, Session> {
        &self.by_client
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.by_client.len()
    }
}
