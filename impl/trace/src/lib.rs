//! The trace format of `specs/trace-format.md`: what one run of raft nodes did, one atomic step per line,
//! for the trace checker in `conformance` to replay through the model.
//!
//! * [`format`](mod@format): the events and the JSON Lines file format.
//! * [`events`]: how a node's steps, as a [`raft::Observer`] sees them, become events.
//!
//! It is its own crate so that the processes that write traces (`raft-node --trace`) need nothing of the
//! checker's.

pub mod events;
pub mod format;
