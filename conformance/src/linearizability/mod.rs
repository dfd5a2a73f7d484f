//! A linearizability checker for histories of a key-value store that decides every history.
//!
//! A history is what the clients saw: for each operation, who issued it, what it asked, when it was called,
//! and when it returned with what, or that it never returned (a timeout: it may or may not have taken
//! effect). [`check`] decides whether some order of the operations, one at a time, explains every result and
//! respects real time: an operation that returned before another was called comes first. Operations that
//! never returned may take effect at any point after their call, or not at all.
//!
//! The search is Wing & Gong's, with Lowe's memoization of (set of operations already ordered, state of the
//! store), as Porcupine does it, and the history is split per key first (P-compositionality, Horn & Kroening):
//! a key-value history is linearizable iff the history of each key is. Every history is decided, however long
//! that takes; there is no timeout that passes a history, and the [`Report`] says how long it took.
//!
//! When a key's history cannot be ordered, the report names the key and a smallest set of its operations
//! that cannot be ordered ([`Violation`]): 1-minimal, so that freeing any one of them would let the rest be
//! ordered (see [`Violation`] for what freeing means and why it is not plain deletion).
//!
//! The store: `get(key)` returns the value (`""` for a key never written), `put(key, value)` sets it,
//! `append(key, value)` appends to it, `cas(key, expected, value)` sets it to `value` and returns `true` iff
//! it was `expected`. Every key starts as `""`.
//!
//! [`History`] records a history as a tester sees it happen; [`jsonl`] reads and writes the file format of
//! `specs/history-format.md`, which the `lincheck` binary checks.

mod history;
pub mod jsonl;
mod minimize;
mod report;
mod search;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use thiserror::Error;

pub use history::{History, OpId};
pub use report::{Report, Violation};

/// One operation on the key-value store, as its client saw it.
///
/// Times are in any unit, as long as one history uses one clock: an operation precedes another iff it
/// returned strictly before the other was called (equal times overlap).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The client that issued it (shown in reports; the check does not use it).
    pub client: u64,
    /// When it was called.
    pub call: u64,
    /// When it returned, or `None` if it never did (it may or may not have taken effect).
    pub ret: Option<u64>,
    /// What was asked.
    pub input: Input,
    /// What came back: [`Output::Unknown`] exactly when `ret` is `None`.
    pub output: Output,
}

/// What a client asked the store to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Read `key`.
    Get {
        /// The key.
        key: String,
    },
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Append `value` to the value of `key`.
    Append {
        /// The key.
        key: String,
        /// What to append.
        value: String,
    },
    /// Compare and swap: if `key` holds `expected`, set it to `value`.
    Cas {
        /// The key.
        key: String,
        /// The value it must hold for the swap.
        expected: String,
        /// The new value.
        value: String,
    },
}

impl Input {
    /// The key it reads or writes.
    pub fn key(&self) -> &str {
        match self {
            Input::Get { key }
            | Input::Put { key, .. }
            | Input::Append { key, .. }
            | Input::Cas { key, .. } => key,
        }
    }

    /// Its name in the history format: `get`, `put`, `append` or `cas`.
    pub fn name(&self) -> &'static str {
        match self {
            Input::Get { .. } => "get",
            Input::Put { .. } => "put",
            Input::Append { .. } => "append",
            Input::Cas { .. } => "cas",
        }
    }
}

/// What a client got back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// The value a `get` read (`""` for a key never written).
    Value(String),
    /// Whether a `cas` swapped.
    Swapped(bool),
    /// A `put` or an `append` was done.
    Ack,
    /// No reply: the operation never returned.
    Unknown,
}

impl Output {
    /// The variant's name, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Output::Value(_) => "Value",
            Output::Swapped(_) => "Swapped",
            Output::Ack => "Ack",
            Output::Unknown => "Unknown",
        }
    }
}

/// Why an operation is not a well-formed record (not a linearizability violation: the history cannot be
/// checked at all).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Invalid {
    /// It returned before it was called.
    #[error("it returned at {ret}, before its call at {call}")]
    ReturnBeforeCall {
        /// The call time.
        call: u64,
        /// The return time.
        ret: u64,
    },
    /// A returned operation's output is not of its kind (a `get` returns `Value`, a `cas` `Swapped`, a `put`
    /// or an `append` `Ack`).
    #[error("a {op} that returned cannot have output {output}")]
    WrongOutput {
        /// The operation's name.
        op: &'static str,
        /// The output's variant.
        output: &'static str,
    },
    /// An operation that never returned has an output other than `Unknown`.
    #[error("a {op} that never returned cannot have output {output}")]
    OutputWithoutReturn {
        /// The operation's name.
        op: &'static str,
        /// The output's variant.
        output: &'static str,
    },
}

/// A history that cannot be checked, and which operation is at fault.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("operation {index}: {problem}")]
pub struct HistoryError {
    /// The operation's index in the history.
    pub index: usize,
    /// What is wrong with it.
    pub problem: Invalid,
}

impl Operation {
    /// Checks that it is a well-formed record: it returns no earlier than its call, and its output fits its
    /// input (`Unknown` exactly when it never returned).
    pub fn validate(&self) -> Result<(), Invalid> {
        let op = self.input.name();
        let output = self.output.kind();
        match self.ret {
            Some(ret) if ret < self.call => Err(Invalid::ReturnBeforeCall {
                call: self.call,
                ret,
            }),
            Some(_) => {
                let fits = matches!(
                    (&self.input, &self.output),
                    (Input::Get { .. }, Output::Value(_))
                        | (Input::Cas { .. }, Output::Swapped(_))
                        | (Input::Put { .. } | Input::Append { .. }, Output::Ack)
                );
                if fits {
                    Ok(())
                } else {
                    Err(Invalid::WrongOutput { op, output })
                }
            }
            None if self.output == Output::Unknown => Ok(()),
            None => Err(Invalid::OutputWithoutReturn { op, output }),
        }
    }
}

/// `client 3 [120, 150] put("k", "v")`, `client 1 [10, 40] get("k") -> "v"`, `client 2 [7, never]
/// append("k", "x")`.
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} [{}, ", self.client, self.call)?;
        match self.ret {
            Some(ret) => write!(f, "{ret}] ")?,
            None => write!(f, "never] ")?,
        }
        match &self.input {
            Input::Get { key } => write!(f, "get({key:?})")?,
            Input::Put { key, value } => write!(f, "put({key:?}, {value:?})")?,
            Input::Append { key, value } => write!(f, "append({key:?}, {value:?})")?,
            Input::Cas {
                key,
                expected,
                value,
            } => write!(f, "cas({key:?}, {expected:?}, {value:?})")?,
        }
        match &self.output {
            Output::Value(value) => write!(f, " -> {value:?}"),
            Output::Swapped(swapped) => write!(f, " -> {swapped}"),
            Output::Ack | Output::Unknown => Ok(()),
        }
    }
}

/// Decides whether `history` is linearizable, and if not, finds a smallest set of operations that cannot be
/// ordered (on the first key, in key order, whose history cannot be ordered).
///
/// Every history is decided: there is no timeout. An error means a malformed record ([`Operation::validate`]),
/// never a violation.
pub fn check(history: &[Operation]) -> Result<Report, HistoryError> {
    let started = Instant::now();
    for (index, op) in history.iter().enumerate() {
        op.validate()
            .map_err(|problem| HistoryError { index, problem })?;
    }
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        by_key.entry(op.input.key()).or_default().push(index);
    }
    let mut failing = Vec::new();
    for (key, indices) in &by_key {
        let mut key_check = search::KeyCheck::new(history, indices);
        if !key_check.linearizable_exactly() {
            failing.push((*key, key_check));
        }
    }
    let elapsed = started.elapsed();
    let failing_keys = failing.len();
    let violation = failing.into_iter().next().map(|(key, mut key_check)| {
        let minimizing = Instant::now();
        let minimal = minimize::minimal_set(&mut key_check);
        Violation {
            key: key.to_owned(),
            key_ops: by_key[key].len(),
            minimal: minimal
                .indices
                .into_iter()
                .map(|index| (index, history[index].clone()))
                .collect(),
            one_minimal: minimal.one_minimal,
            minimize_elapsed: minimizing.elapsed(),
        }
    });
    Ok(Report {
        ops: history.len(),
        keys: by_key.len(),
        failing_keys,
        elapsed,
        violation,
    })
}
