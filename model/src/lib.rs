//! A stateright model of Raft, written like a TLA+ specification: the state is the whole cluster,
//! each action of Figure 2 is a public guard and a public effect, and the checker explores every
//! interleaving within bounds while it checks Raft's safety properties.
//!
//! Checking it from code: three servers, terms up to 2, logs of one entry, no crash, loss or
//! duplication (the `small` preset without its faults) make about 5,600 states up to symmetry,
//! which the checker exhausts in well under a second. Every safety property holds; with a bug
//! switch on, the search stops at a counterexample.
//!
//! ```
//! use model::bounds::{preset, witness, Bounds, Bug};
//! use model::check::{self, Options, Verdict};
//! use model::properties::{LEADER_COMPLETENESS, SAFETY};
//! use model::RaftModel;
//! use std::time::Duration;
//!
//! let bounds = Bounds {
//!     max_crashes: 0,
//!     max_drops: 0,
//!     max_dups: 0,
//!     ..preset("small").unwrap().bounds
//! };
//! let options = Options {
//!     threads: 1,
//!     // Breadth-first: a counterexample is a shortest one.
//!     bfs: true,
//!     // The check fails unless some state has a leader and one has a committed entry.
//!     expect: vec![witness::LEADER_ELECTED, witness::ENTRY_COMMITTED],
//!     coverage: false,
//! };
//! let progress = |_| {};
//!
//! let report = check::run(RaftModel::new(bounds), &options, Duration::from_secs(60), progress);
//! assert!(report.ok(), "{}", report.result_line());
//! for (name, _) in SAFETY {
//!     assert_eq!(report.verdict(name), Some(Verdict::Holds));
//! }
//! assert_eq!(report.verdict(witness::ENTRY_COMMITTED), Some(Verdict::Witnessed));
//!
//! // A server that grants its vote without comparing logs elects a leader that lacks a
//! // committed entry.
//! let buggy = RaftModel::with_bug(bounds, Some(Bug::NoUpToDateCheck));
//! let report = check::run(buggy, &options, Duration::from_secs(60), progress);
//! let (property, steps) = report.counterexample.as_ref().expect("the bug is caught");
//! assert_eq!(*property, LEADER_COMPLETENESS);
//! assert_eq!(report.verdict(LEADER_COMPLETENESS), Some(Verdict::Violated));
//! println!("{property} breaks:\n{}", check::format_path(steps));
//! ```
//!
//! * [`state`]: servers, messages, the network and the history variables.
//! * [`raft`]: the actions ([`Action`]), their guards and effects, and the bounded enumeration.
//! * [`properties`]: Election Safety, Log Matching, Leader Append-Only, Leader Completeness, State
//!   Machine Safety, sanity invariants and sometimes-properties.
//! * [`bounds`]: the bounds, presets and bug switches.
//! * [`check`]: running the checker and reporting, shared by the CLI and the tests.
//! * [`partition`]: liveness under a partial partition, the specification driven by clocks.

#![warn(missing_docs)]

pub mod bounds;
pub mod check;
pub mod coverage;
pub mod display;
pub mod explorer;
pub mod partition;
pub mod properties;
pub mod raft;
pub mod search;
pub mod simulate;
pub mod state;
pub mod symmetry;

pub use bounds::{Bounds, Bug};
pub use raft::{Action, RaftModel};
pub use state::State;

use stateright::{Model, Path, Property};

impl Model for RaftModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.init_state()]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.bounded_actions(state, actions);
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        let mut next = self.step(state, &action)?;
        if self.symmetry {
            next.canonicalize();
        }
        Some(next)
    }

    fn format_action(&self, action: &Action) -> String {
        display::action(action)
    }

    /// The state after the step, and the properties it violates, by name: the Explorer shows
    /// this for the selected step, so a counterexample's last state says what it breaks.
    fn format_step(&self, state: &State, action: Action) -> Option<String> {
        let next = self.next_state(state, action)?;
        let mut text = display::state(&next);
        for (name, holds) in properties::SAFETY {
            if !holds(self, &next) {
                text.push_str(&format!("VIOLATES {name}\n"));
            }
        }
        Some(text)
    }

    fn as_svg(&self, path: Path<State, Action>) -> Option<String> {
        Some(display::svg(self, &path.into_vec()))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        if self.witnessed.is_some() {
            properties::for_check()
        } else {
            properties::all(&self.bounds)
        }
    }
}
