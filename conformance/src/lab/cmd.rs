//! The commands the tests submit: Go's tests submit ints (and strings in TestRPCBytes2B) and
//! compare them by value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A command as the tester submits it. It travels through Raft as bytes encoded with the
/// project's codec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmd {
    /// An integer command (Go `int`).
    Int(i64),
    /// A string command (Go `string`).
    Str(String),
    /// Not a command: a configuration entry, as the tester records what each server applied at its
    /// index (this port's membership tests), described by [`Cmd::config`].
    Config(String),
}

impl Cmd {
    /// The command's bytes as Raft carries them.
    pub fn encode(&self) -> Vec<u8> {
        raft::encode(self)
    }

    /// Decodes a command that Raft applied.
    pub fn decode(bytes: &[u8]) -> Result<Cmd, raft::CodecError> {
        raft::decode(bytes)
    }

    /// The integer, if this is an integer command (Go's `cmd.(int)`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Cmd::Int(v) => Some(*v),
            Cmd::Str(_) | Cmd::Config(_) => None,
        }
    }

    /// A configuration entry holding `membership`, as the tester records it.
    pub fn config(membership: &raft::Membership) -> Cmd {
        let ids = |set: &std::collections::BTreeSet<u64>| {
            set.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
        };
        Cmd::Config(format!(
            "voters {{{}}} old {{{}}} learners {{{}}}",
            ids(&membership.voters),
            ids(&membership.old_voters),
            ids(&membership.learners)
        ))
    }
}

impl From<i64> for Cmd {
    fn from(v: i64) -> Cmd {
        Cmd::Int(v)
    }
}

impl fmt::Display for Cmd {
    /// Formats like Go's `%v`: the bare number or string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmd::Int(v) => write!(f, "{v}"),
            Cmd::Str(s) => write!(f, "{s}"),
            Cmd::Config(c) => write!(f, "config {c}"),
        }
    }
}
