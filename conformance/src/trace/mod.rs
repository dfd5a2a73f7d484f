//! Traces of the implementation and their validation against the model (design §5).
//!
//! * [`format`](mod@format): the events and the JSON Lines file format (`specs/trace-format.md`).
//! * [`recorder`]: a [`raft::Observer`] that records a cluster's trace.
//! * [`merge`]: one trace from the traces of a cluster's processes (`raft-node --trace`), by causality.
//! * [`checker`]: replays a trace through the model's guards and effects.
//! * [`perturb`]: good traces broken on purpose, to show that the checker bites.
//! * [`picture`]: a trace as an SVG sequence diagram or a ShiViz log.

pub mod checker;
pub mod format;
pub mod merge;
pub mod perturb;
pub mod picture;
pub mod recorder;

pub use checker::{check, check_full, check_streamed, Checker, Mismatch, Summary, ACTION_KINDS};
pub use format::{Event, ReadError, Record, Trace};
pub use recorder::Recorder;
