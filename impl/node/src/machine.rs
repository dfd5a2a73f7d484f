//! The state machines `raft-node` serves: the replicated key-value store of [`raft_kv`] (the default), and
//! a small built-in one that keeps the log of every command applied, in order.

use raft::Index;

use crate::host::StateMachine;

/// Keeps every applied command (an empty one at a configuration entry's index); answers each with its index
/// (8 bytes, little-endian). A query is an index (8 bytes, little-endian), answered with the command applied
/// there (empty if none is, or the query is not an index).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLog {
    /// The commands applied, in index order (the first at index 1).
    pub commands: Vec<Vec<u8>>,
}

impl StateMachine for CommandLog {
    fn apply(&mut self, index: Index, command: &[u8]) -> Vec<u8> {
        debug_assert!(
            self.commands.len() < index as usize,
            "applied in order, once each"
        );
        // The indexes of configuration entries, which are not commands, hold empty commands.
        self.commands.resize(index as usize - 1, Vec::new());
        self.commands.push(command.to_vec());
        index.to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(&self.commands).expect("a list of byte strings encodes")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.commands = decode(snapshot)?;
        Ok(())
    }

    fn check(&self, snapshot: &[u8]) -> Result<(), String> {
        decode(snapshot).map(drop)
    }

    fn query(&self, request: &[u8]) -> Vec<u8> {
        let index = request
            .try_into()
            .map(u64::from_le_bytes)
            .ok()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i >= 1);
        index
            .and_then(|i| self.commands.get(i - 1))
            .cloned()
            .unwrap_or_default()
    }
}

/// A snapshot's commands: the whole of `snapshot`, and nothing after it.
fn decode(snapshot: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    match postcard::take_from_bytes(snapshot) {
        Ok((commands, [])) => Ok(commands),
        Ok((_, rest)) => Err(format!("{} bytes after the snapshot", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// The key-value service ([`raft_kv::Store`]): commands are encoded [`raft_kv::Command`]s (the empty command, a
/// new leader's, changes nothing), and each answer an encoded [`raft_kv::Reply`]. A query is a key (UTF-8)
/// and is answered with its value (empty for a missing key; a key that is not UTF-8 is never stored).
impl StateMachine for raft_kv::Store {
    fn apply(&mut self, index: Index, command: &[u8]) -> Vec<u8> {
        raft_kv::Store::apply(self, index, command)
    }

    fn snapshot(&self) -> Vec<u8> {
        raft_kv::Store::snapshot(self)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        raft_kv::Store::restore(self, snapshot).map_err(|e| e.to_string())
    }

    fn check(&self, snapshot: &[u8]) -> Result<(), String> {
        raft_kv::Store::check(self, snapshot).map_err(|e| e.to_string())
    }

    fn query(&self, request: &[u8]) -> Vec<u8> {
        std::str::from_utf8(request)
            .map(|key| self.get(key).as_bytes().to_vec())
            .unwrap_or_default()
    }
}
