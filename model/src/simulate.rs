//! Random walks at bounds too large to exhaust, checking the same properties. A walk is a pure
//! function of the seed, so any violation it finds replays exactly.

use crate::bounds::witness;
use crate::check::Steps;
use crate::raft::RaftModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::{Expectation, Model};

/// What a batch of walks found.
pub struct Outcome {
    /// Walks run, the last one included when it stopped at a violation.
    pub runs: u64,
    /// Steps taken, over all walks.
    pub steps: u64,
    /// The first violated property, with the walk that reached it.
    pub violation: Option<(&'static str, Steps)>,
    /// The sometimes-properties some walk witnessed.
    pub witnessed: Vec<&'static str>,
}

/// Which actions a walk chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actions {
    /// The canonical enumeration that `check` explores.
    Canonical,
    /// Everything the guards allow (see `RaftModel::all_actions`).
    All,
}

/// Runs `runs` walks of at most `depth` steps each, from `seed`.
pub fn simulate(model: &RaftModel, seed: u64, runs: u64, depth: usize) -> Outcome {
    simulate_with(model, Actions::Canonical, seed, runs, depth)
}

/// Runs `runs` walks of at most `depth` steps each, from `seed`, choosing among `choice`.
pub fn simulate_with(
    model: &RaftModel,
    choice: Actions,
    seed: u64,
    runs: u64,
    depth: usize,
) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let properties = model.properties();
    let mut witnessed: Vec<&'static str> = Vec::new();
    let mut steps = 0;
    let mut actions = Vec::new();
    for run in 0..runs {
        let mut walk: Steps = vec![(model.init_state(), None)];
        for step in 0..=depth {
            let state = &walk.last().expect("a walk starts with a state").0;
            for p in &properties {
                let holds = (p.condition)(model, state);
                match p.expectation {
                    Expectation::Always if !holds => {
                        return Outcome {
                            runs: run + 1,
                            steps,
                            violation: Some((p.name, walk)),
                            witnessed,
                        };
                    }
                    Expectation::Sometimes if holds && !witnessed.contains(&p.name) => {
                        witnessed.push(p.name)
                    }
                    _ => {}
                }
            }
            actions.clear();
            match choice {
                Actions::Canonical => model.actions(state, &mut actions),
                Actions::All => model.all_actions(state, &mut actions),
            }
            if step == depth || actions.is_empty() {
                break;
            }
            let action = actions.swap_remove(rng.gen_range(0..actions.len()));
            let next = model
                .step(state, &action)
                .expect("both enumerators offer only enabled actions");
            walk.last_mut().expect("non-empty").1 = Some(action);
            walk.push((next, None));
            steps += 1;
        }
    }
    witnessed.sort_by_key(|w| witness::ALL.iter().position(|x| x == w));
    Outcome {
        runs,
        steps,
        violation: None,
        witnessed,
    }
}
