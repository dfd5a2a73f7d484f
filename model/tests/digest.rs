//! A state's hash uses the digest each server caches (see `model::state::Servers`). Every write
//! to a server must drop that digest, or the state is hashed as the one it was, and the search
//! takes it for visited: states would be lost without a word. Here every state of random walks on
//! each preset, and every successor of each, is hashed against a copy of itself whose servers have
//! never been hashed.

use model::bounds::{preset, PORTFOLIO};
use model::raft::RaftModel;
use model::search::fingerprint;
use model::state::State;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::Model;

/// Whether `state` hashes otherwise than a copy of it with no digest cached.
fn stale(state: &State) -> bool {
    let mut fresh = state.clone();
    fresh.servers.unshare();
    fingerprint(state) != fingerprint(&fresh)
}

#[test]
fn every_write_to_a_server_drops_its_digest() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut actions = Vec::new();
    let mut checked = 0;
    for name in PORTFOLIO {
        let model = RaftModel {
            symmetry: true,
            ..RaftModel::new(preset(name).expect("a portfolio preset").bounds)
        };
        for _walk in 0..60 {
            let mut state = model.init_state();
            for _step in 0..60 {
                // Digests cached in the servers the successors share with `state`.
                fingerprint(&state);
                actions.clear();
                model.actions(&state, &mut actions);
                if actions.is_empty() {
                    break;
                }
                for action in &actions {
                    let next = model
                        .next_state(&state, action.clone())
                        .expect("offered actions are enabled");
                    assert!(!stale(&next), "{action:?} from {state:?}");
                    checked += 1;
                }
                // A step in place on servers no other state shares, hashed before it: each
                // write finds the server's own digest cached.
                let action = actions.swap_remove(rng.gen_range(0..actions.len()));
                let mut own = state.clone();
                own.servers.unshare();
                drop(state);
                fingerprint(&own);
                model.apply(&mut own, &action);
                assert!(!stale(&own), "{action:?} applied in place");
                state = own;
            }
        }
    }
    assert!(checked > 100_000, "{checked} successors checked");
}

#[test]
fn the_check_sees_a_stale_digest() {
    let model = RaftModel::new(preset("default").expect("a preset").bounds);
    let mut state = model.init_state();
    fingerprint(&state);
    assert!(!stale(&state));
    state.servers.write_keeping_digest(1).current_term += 1;
    assert!(stale(&state));
    // The same write through `IndexMut` drops the digest.
    state.servers[1].current_term += 1;
    assert!(!stale(&state));
}
