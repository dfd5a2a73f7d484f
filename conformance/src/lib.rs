//! The conformance crate: a deterministic simulator ([`sim`]) and the MIT 6.5840 Lab 2 and Lab 3
//! testers ported onto it ([`lab`]), which run the `raft` core (and, for Lab 3, a key-value server on
//! `raft_kv`) behind the tester's interface; the linearizability checker the Lab 3 tests decide their
//! histories with ([`linearizability`], and the `lincheck` binary).
//!
//! * `cargo test --release -p conformance` runs every ported test with one seed (Lab 3's with three);
//!   `LAB_SEED=n` replays seed `n`, `LAB_SEEDS=k` runs `k` consecutive seeds.
//! * `cargo run --release -p conformance --bin labtest -- -n 120 -j 2 all` stress-runs them (or the
//!   parts named: `2A` to `2D`, `3A`, `3B`) over many seeds and prints the table of the usual
//!   stress-testing scripts.
//! * `LAB_TRACE=<ms>` prints, from that virtual time on, every RPC with the message's fields, the
//!   tester's actions, and every node's term, role, log end and commit index each 250 ms: replay a
//!   failing seed with it to see why it failed.
//! * `LAB_TRACE_FILE=path` writes each run's trace ([`trace`], `specs/trace-format.md`) to `path` (with
//!   several seeds, `path` with `-<seed>` before its extension); `tracecheck path` validates it.
//! * `cargo test conformance` runs every lab test with its trace validated against the model.
//! * `cargo run --release -p conformance --bin implcheck -- check` explores the real core exhaustively at
//!   small bounds, every step checked against the model ([`implcheck`]); `implcheck reach` compares the spec
//!   states it reaches with those the spec can reach ([`reach`]).

#![warn(missing_docs)]

pub mod chaos;
pub mod implcheck;
pub mod lab;
pub mod linearizability;
#[cfg(feature = "mutants")]
pub mod mutants;
pub mod reach;
pub mod schedule;
pub mod sim;
pub mod trace;
