//! A small built-in state machine: the log of every command applied, in order.

use raft::Index;

use crate::host::StateMachine;

/// Keeps every applied command; answers each with its index (8 bytes, little-endian).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLog {
    /// The commands applied, in index order (the first at index 1).
    pub commands: Vec<Vec<u8>>,
}

impl StateMachine for CommandLog {
    fn apply(&mut self, index: Index, command: &[u8]) -> Vec<u8> {
        self.commands.push(command.to_vec());
        debug_assert_eq!(
            self.commands.len() as Index,
            index,
            "applied in order, once each"
        );
        index.to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(&self.commands).expect("a list of byte strings encodes")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.commands = postcard::from_bytes(snapshot).map_err(|e| e.to_string())?;
        Ok(())
    }
}
