//! `raft-kv`: the replicated key-value service that `raft-node` serves, without any I/O of its own.
//!
//! * [`Store`]: the state machine every replica applies the log to: string keys and values, changed by
//!   `Put`, `Append` and `Cas` ([`Write`]) and read by [`Store::get`]; with client sessions that apply each
//!   write at most once however often it is retried, and snapshots of the whole state.
//! * [`Command`] and [`Reply`]: what goes through the log, and what the store answers, encoded with
//!   [`encode`] and [`decode`] (postcard, the project's one codec).
//! * [`Clerk`]: a sans-IO client that registers, retries with the same sequence number, follows leader
//!   hints, and reports only definite answers or a [`Failure`].
//! * [`Request`] and [`Response`]: what a client and a server say to each other, whatever carries it.
//!
//! Sessions follow §6.3 of Ongaro's dissertation; how they expire is the [`session`] module's rule.
//!
//! ```
//! use raft_kv::{decode, encode, Command, Reply, Store, Write};
//!
//! let mut store = Store::new();
//! let answer = store.apply(1, &encode(&Command::Register));
//! assert_eq!(decode::<Reply>(&answer).unwrap(), Reply::Registered(1));
//! let put = Command::Write {
//!     client: 1,
//!     seq: 1,
//!     write: Write::Append { key: "x".into(), arg: "a".into() },
//! };
//! assert_eq!(store.apply_command(2, put.clone()), Reply::Done);
//! // The same write again (a retry) is answered, not applied.
//! assert_eq!(store.apply_command(3, put), Reply::Done);
//! assert_eq!(store.get("x"), "a");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clerk;
pub mod codec;
pub mod command;
pub mod session;
pub mod snapshot;
pub mod store;
pub mod wire;

pub use clerk::{Busy, Clerk, Failure, Op, Output, Progress};
pub use codec::{decode, encode, CodecError};
pub use command::{ClientId, Command, Index, Reply, Seq, Write};
pub use session::Session;
pub use snapshot::SnapshotError;
pub use store::{Store, DEFAULT_MAX_SESSIONS};
pub use wire::{Request, Response};
