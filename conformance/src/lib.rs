//! The conformance crate: a deterministic simulator, the MIT 6.5840 Lab 2 tester ported onto it,
//! and (later) the trace checker that holds the `raft` implementation up against the `model`.

pub mod lab;
pub mod sim;
