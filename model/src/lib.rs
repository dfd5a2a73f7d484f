//! A stateright model of Raft, written like a TLA+ specification: the state is the whole cluster,
//! each action of Figure 2 is a public guard and a public effect, and the checker explores every
//! interleaving within bounds while it checks Raft's safety properties.
//!
//! * [`state`]: servers, messages, the network and the history variables.
//! * [`raft`]: the actions ([`Action`]), their guards and effects, and the bounded enumeration.
//! * [`properties`]: Election Safety, Log Matching, Leader Append-Only, Leader Completeness, State
//!   Machine Safety, sanity invariants and sometimes-properties.
//! * [`bounds`]: the bounds, presets and bug switches.
//! * [`check`]: running the checker and reporting, shared by the CLI and the tests.
//! * [`partition`]: liveness under a partial partition, the specification driven by clocks.

pub mod bounds;
pub mod check;
pub mod coverage;
pub mod display;
pub mod explorer;
pub mod partition;
pub mod properties;
pub mod raft;
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
