//! Nodes in one process: a transport that hands envelopes to the addressee's loop, links that can be cut
//! (for tests), and storage that keeps nothing (for the benchmark's in-memory tier).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};

use raft::{Envelope, Ready};

use crate::runtime::{Input, Transport};
use crate::storage::{Storage, StorageError};

/// The loops' inboxes, by node id, and which nodes are cut off; shared by every node's transport.
pub struct Network<T> {
    inboxes: Arc<RwLock<Vec<Sender<Input<T>>>>>,
    cut: Arc<Vec<AtomicBool>>,
}

impl<T> Clone for Network<T> {
    fn clone(&self) -> Self {
        Network {
            inboxes: Arc::clone(&self.inboxes),
            cut: Arc::clone(&self.cut),
        }
    }
}

impl<T> Network<T> {
    /// A network of the nodes whose inboxes are `inboxes` (node `i`'s at position `i`).
    pub fn new(inboxes: Vec<Sender<Input<T>>>) -> Network<T> {
        let cut = (0..inboxes.len()).map(|_| AtomicBool::new(false)).collect();
        Network {
            inboxes: Arc::new(RwLock::new(inboxes)),
            cut: Arc::new(cut),
        }
    }

    /// Node `id`'s new inbox, for a node restarted with a new loop.
    pub fn set_inbox(&self, id: usize, inbox: Sender<Input<T>>) {
        self.inboxes
            .write()
            .expect("no sender panics holding the lock")[id] = inbox;
    }

    /// Cuts node `id` off (`true`) or reconnects it: messages from or to it are lost.
    pub fn set_cut(&self, id: usize, cut: bool) {
        self.cut[id].store(cut, Ordering::Relaxed);
    }
}

impl<T> Transport for Network<T> {
    fn send(&mut self, envelope: Envelope) {
        let (from, to) = (envelope.from as usize, envelope.to as usize);
        let cut = |i: usize| self.cut.get(i).is_none_or(|c| c.load(Ordering::Relaxed));
        if cut(from) || cut(to) {
            return;
        }
        // A stopped node's inbox is gone: the message is lost, as on a network.
        let inboxes = self
            .inboxes
            .read()
            .expect("no sender panics holding the lock");
        if let Some(inbox) = inboxes.get(to) {
            let _ = inbox.send(Input::Message(envelope));
        }
    }
}

/// Storage that keeps nothing: every save succeeds at once. For the in-memory benchmark only; a node on it
/// forgets everything when it stops.
#[derive(Clone, Copy, Debug, Default)]
pub struct Volatile;

impl Storage for Volatile {
    fn save(&mut self, _: &Ready) -> Result<(), StorageError> {
        Ok(())
    }
}
