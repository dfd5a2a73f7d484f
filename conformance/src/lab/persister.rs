//! The tester's Persister (`specs/lab-tester.md`, `## Persister`): two byte strings, the Raft
//! state and the snapshot, replaced together by `save`.

use std::cell::RefCell;
use std::rc::Rc;

#[derive(Default, Clone)]
struct Contents {
    raft_state: Vec<u8>,
    snapshot: Vec<u8>,
}

/// Durable storage of one server. Cloning the handle shares the same storage (as a Go pointer
/// would); [`Persister::copy`] makes an independent one, which is how the tester keeps a killed
/// instance from writing into its successor's state.
#[derive(Clone, Default)]
pub struct Persister {
    contents: Rc<RefCell<Contents>>,
}

impl Persister {
    /// An empty persister (`MakePersister`).
    pub fn new() -> Persister {
        Persister::default()
    }

    /// `Copy()`: a new persister holding the same current contents.
    pub fn copy(&self) -> Persister {
        Persister {
            contents: Rc::new(RefCell::new(self.contents.borrow().clone())),
        }
    }

    /// `ReadRaftState()`: a copy of the Raft state.
    pub fn read_raft_state(&self) -> Vec<u8> {
        self.contents.borrow().raft_state.clone()
    }

    /// `ReadSnapshot()`: a copy of the snapshot.
    pub fn read_snapshot(&self) -> Vec<u8> {
        self.contents.borrow().snapshot.clone()
    }

    /// `RaftStateSize()`: the size of the Raft state, which is what MAXLOGSIZE bounds.
    pub fn raft_state_size(&self) -> usize {
        self.contents.borrow().raft_state.len()
    }

    /// `SnapshotSize()`.
    pub fn snapshot_size(&self) -> usize {
        self.contents.borrow().snapshot.len()
    }

    /// Reads the Raft state and the snapshot in place (for the trace: what a save left).
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
        let contents = self.contents.borrow();
        f(&contents.raft_state, &contents.snapshot)
    }

    /// `Save(raftstate, snapshot)`: replaces both at once; an empty snapshot erases a previous one.
    pub fn save(&self, raft_state: Vec<u8>, snapshot: Vec<u8>) {
        *self.contents.borrow_mut() = Contents {
            raft_state,
            snapshot,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_is_independent_and_save_replaces_both() {
        let p = Persister::new();
        p.save(vec![1, 2], vec![3]);
        let q = p.copy();
        p.save(vec![9], vec![]);
        assert_eq!(q.read_raft_state(), vec![1, 2]);
        assert_eq!(q.read_snapshot(), vec![3]);
        assert_eq!(p.raft_state_size(), 1);
        assert_eq!(p.snapshot_size(), 0);
        let shared = p.clone();
        shared.save(vec![], vec![]);
        assert_eq!(p.raft_state_size(), 0);
    }
}
