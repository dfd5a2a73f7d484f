//! `raft-node`: the [`raft`] core run for real, with a write-ahead log on disk, a TCP transport and an
//! event loop. A single node on disk, driven by hand: it elects itself, commits a command, and recovers it
//! after a restart.
//!
//! ```
//! use raft::Config;
//! use raft_node::host::{Host, Outcome, Settings};
//! use raft_node::machine::CommandLog;
//! use raft_node::storage::disk::FsDisk;
//! use raft_node::storage::{FileStorage, Identity, Options};
//!
//! // A single-node cluster whose write-ahead log lives in `dir`, started from whatever is saved there; its
//! // clients are known by `&str` tickets and its state machine keeps every command applied.
//! type Node = Host<FileStorage<FsDisk>, CommandLog, &'static str>;
//! fn start(dir: &std::path::Path) -> Node {
//!     let disk = FsDisk::new(dir).unwrap();
//!     let identity = Identity { cluster: 1, node: 0 };
//!     let (storage, recovered) = FileStorage::open(disk, identity, Options::default()).unwrap();
//!     let settings = Settings {
//!         id: 0,
//!         peers: vec![0],
//!         config: Config::default(),
//!         seed: 0,
//!         snapshot_every: 0,
//!     };
//!     Host::new(&settings, storage, recovered, CommandLog::default()).unwrap()
//! }
//!
//! // Ticks the logical clock (no real time passes) until the node elected itself, within a bound.
//! fn elect(host: &mut Node) {
//!     let (mut sent, mut done) = (Vec::new(), Vec::new());
//!     for _ in 0..1000 {
//!         host.tick();
//!         host.flush(&mut sent, &mut done).unwrap();
//!         if host.node().is_leader() {
//!             return;
//!         }
//!     }
//!     panic!("no election in 1000 ticks");
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut host = start(dir.path());
//! elect(&mut host);
//!
//! // A flush saves (and syncs) the proposal, then commits it and applies it: the client's outcome is out.
//! let index = host.propose(b"hello".to_vec(), "client").unwrap();
//! let (mut sent, mut done) = (Vec::new(), Vec::new());
//! host.flush(&mut sent, &mut done).unwrap();
//! let response = index.to_le_bytes().to_vec(); // `CommandLog` answers a command with its index
//! assert_eq!(done, [("client", Outcome::Committed { index, response })]);
//! assert_eq!(host.machine().commands[index as usize - 1], b"hello");
//!
//! // Started again from its directory, the node recovers its log, and applies the command again once it
//! // leads and commits.
//! drop(host);
//! let mut host = start(dir.path());
//! elect(&mut host);
//! assert_eq!(host.machine().commands[index as usize - 1], b"hello");
//! ```
//!
//! The core stays sans-IO; this package gives it what a
//! process needs around it, starting with durable [`storage`]: a write-ahead log of checksummed records
//! and snapshot files, written so that nothing the core treats as durable is reported before its sync
//! returned, and recovered so that a torn tail is dropped with a warning and any other damage stops the node
//! with an error that names the file and the offset. A [`host::Host`] puts a node, its storage and the
//! service's [`host::StateMachine`] together; the [`runtime`] drives one with real time on a thread; the
//! [`memory`] module connects nodes in one process (for tests and the benchmark).

#![warn(missing_docs)]

pub mod client;
pub mod host;
pub mod machine;
pub mod memory;
pub mod runtime;
pub mod storage;
pub mod tcp;
pub mod trace;
