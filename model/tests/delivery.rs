//! A delivery writes no server but its receiver. The checked pruning of dead messages relies on
//! it: it delivers each dead message in place and compares only the receiver, the history and
//! the network with copies taken before (`RaftModel::discard_dead_messages`).

use model::bounds::{preset, PORTFOLIO};
use model::raft::{is_dead, RaftModel};
use model::state::{Message, State};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The servers other than `to` that differ between `before` and `after`.
fn others_written(before: &State, after: &State, to: u8) -> Vec<usize> {
    (0..before.servers.len())
        .filter(|&j| j != to as usize && before.servers[j] != after.servers[j])
        .collect()
}

/// Delivers `m` to a copy of `state` and fails if another server than its receiver changed.
fn deliver_and_compare(model: &RaftModel, state: &State, m: &Message, what: &str) {
    let mut after = state.clone();
    model.receive(&mut after, m);
    let written = others_written(state, &after, m.to);
    assert!(
        written.is_empty(),
        "delivering {what} {m:?} to {} wrote servers {written:?}",
        m.to
    );
}

#[test]
fn a_delivery_writes_no_server_but_its_receiver() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut actions = Vec::new();
    let (mut live, mut dead) = (0, 0);
    for name in PORTFOLIO {
        let model = RaftModel::new(preset(name).expect("a portfolio preset").bounds);
        for _walk in 0..100 {
            let mut state = model.init_state();
            for _step in 0..60 {
                actions.clear();
                model.all_actions(&state, &mut actions);
                if actions.is_empty() {
                    break;
                }
                // Every message in flight, delivered.
                for m in state.network.distinct() {
                    deliver_and_compare(&model, &state, m, "the live message");
                    live += 1;
                }
                let action = actions.swap_remove(rng.gen_range(0..actions.len()));
                // The messages the step leaves dead, delivered before they are pruned, as the
                // checked pruning delivers them.
                let mut unpruned = state.clone();
                model.apply(&mut unpruned, &action);
                for m in unpruned
                    .network
                    .distinct()
                    .filter(|m| is_dead(&unpruned, m))
                {
                    deliver_and_compare(&model, &unpruned, m, "the dead message");
                    dead += 1;
                }
                state = model
                    .step(&state, &action)
                    .expect("offered actions are enabled");
            }
        }
    }
    // Enough of both kinds that the walks mean something.
    assert!(live > 10_000, "{live} live deliveries");
    assert!(dead > 1_000, "{dead} dead deliveries");
}

#[test]
fn the_comparison_sees_a_write_to_another_server() {
    let model = RaftModel::new(preset("default").expect("a preset").bounds);
    let state = model.init_state();
    let mut after = state.clone();
    assert!(others_written(&state, &after, 0).is_empty());
    after.servers[2].current_term += 1;
    assert_eq!(others_written(&state, &after, 0), vec![2]);
    // The receiver's own writes are not counted.
    assert!(others_written(&state, &after, 2).is_empty());
}
