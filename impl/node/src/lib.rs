//! `raft-node`: the [`raft`] core run for real. The core stays sans-IO; this package gives it what a
//! process needs around it, starting with durable [`storage`]: a write-ahead log of checksummed records
//! and snapshot files, written so that nothing the core treats as durable is reported before its sync
//! returned, and recovered so that a torn tail is dropped with a warning and any other damage stops the node
//! with an error that names the file and the offset. A [`host::Host`] puts a node, its storage and the
//! service's [`host::StateMachine`] together; the [`runtime`] drives one with real time on a thread; the
//! [`memory`] module connects nodes in one process (for tests and the benchmark).

pub mod client;
pub mod host;
pub mod machine;
pub mod memory;
pub mod runtime;
pub mod storage;
pub mod tcp;
pub mod trace;
