//! The trace format (`specs/trace-format.md`), from the `raft-trace` crate, which the processes that write
//! traces share with the checker.

pub use raft_trace::format::*;
