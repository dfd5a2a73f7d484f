//! Shrinking a key's history that cannot be ordered to a smallest set of operations that cannot be ordered.
//!
//! An operation is left out of the set by *freeing* it rather than deleting it: a freed operation that
//! returned may take effect once between its call and its return, or not at all, whatever it returned (a
//! freed `get` constrains nothing). Deleting would explain too little: delete the `put("k", "a")` that a
//! stale `get("k") -> "a"` read and the read alone cannot be ordered (it reads a value nobody wrote), so
//! every stale read and every lost write would shrink to a lone read, which names neither the write it
//! missed nor the one it saw. Freed, that `put` still explains the `"a"`, and the set that remains is the
//! later write the read missed and the read.
//!
//! Freeing only ever makes a history easier to order, so the property "cannot be ordered with these exact
//! and the rest free" is monotone, and one pass that frees each operation in turn, keeping it free if the
//! rest still cannot be ordered, leaves a 1-minimal set: freeing any one of its operations would let them be
//! ordered. Halving chunks first makes long histories shrink in few searches. The set cannot be ordered on
//! its own either (free operations may all choose not to take effect).
//!
//! Freed operations make a history more ambiguous, so these searches can cost far more than the decision:
//! a key with a dozen or more operations in flight at once can make them exponentially long. They have a
//! budget ([`BUDGET_BYTES`]); an operation whose search runs out of it stays in the set, which then still
//! cannot be ordered but is not known to be 1-minimal.

use super::search::KeyCheck;

/// How much memory the searches of one minimization may fill with pairs of (ordered operations, value), in
/// all; one search may take an eighth of what is left. It is counted in pairs, so the outcome does not depend
/// on the machine.
pub(super) const BUDGET_BYTES: usize = 256 << 20;

/// A set of operations on one key that cannot be ordered.
pub(super) struct Minimal {
    /// The history indices, in call order.
    pub(super) indices: Vec<usize>,
    /// Whether every operation in it was shown to be needed (the budget did not run out).
    pub(super) one_minimal: bool,
}

/// A 1-minimal set of `key`'s operations that cannot be ordered with the others freed, unless the budget runs
/// out first. The key's operations as recorded must not be linearizable.
pub(super) fn minimal_set(key: &mut KeyCheck) -> Minimal {
    // A pair is its bitset and value, boxed, plus the table's share.
    let pair_bytes = (key.len().div_ceil(64) + 1) * 8 + 32;
    let mut budget = BUDGET_BYTES / pair_bytes;
    let mut exact: Vec<bool> = (0..key.len()).map(|i| !key.is_pending(i)).collect();
    // Operations that never returned are as free as they can be already: they are never needed.
    let mut needed: Vec<usize> = (0..key.len()).filter(|&i| exact[i]).collect();
    let mut chunk = needed.len().div_ceil(2);
    let mut one_minimal = true;
    'shrink: loop {
        let mut start = 0;
        while start < needed.len() {
            if budget == 0 {
                one_minimal = false;
                break 'shrink;
            }
            let end = (start + chunk).min(needed.len());
            for &i in &needed[start..end] {
                exact[i] = false;
            }
            // One search may take an eighth of what is left, so that a costly chunk (freeing much of the
            // history at once) leaves enough for the smaller ones after it.
            let mut allowed = budget.div_ceil(8);
            let before = allowed;
            let verdict = key.linearizable_with(&exact, &mut allowed);
            budget -= before - allowed;
            if verdict == Some(false) {
                needed.drain(start..end);
            } else {
                // Some of them are needed (or, out of budget, may be): keep them exact.
                for &i in &needed[start..end] {
                    exact[i] = true;
                }
                one_minimal &= verdict.is_some();
                start = end;
            }
        }
        if chunk <= 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    Minimal {
        indices: needed.into_iter().map(|i| key.index(i)).collect(),
        one_minimal,
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::{Input, Operation, Output};
    use super::*;

    /// A random history of one key: random intervals, random results from a small alphabet.
    fn random_history(rng: &mut ChaCha8Rng) -> Vec<Operation> {
        let values = ["", "a", "b", "ab"];
        let pick = |rng: &mut ChaCha8Rng| values[rng.random_range(0..values.len())].to_owned();
        (0..rng.random_range(1..9))
            .map(|_| {
                let call = rng.random_range(0..40);
                let ret = rng
                    .random_bool(0.85)
                    .then(|| call + rng.random_range(0..15));
                let key = "k".to_owned();
                let (input, output) = match rng.random_range(0..4) {
                    0 => (Input::Get { key }, Output::Value(pick(rng))),
                    1 => (
                        Input::Put {
                            key,
                            value: pick(rng),
                        },
                        Output::Ack,
                    ),
                    2 => (
                        Input::Append {
                            key,
                            value: pick(rng),
                        },
                        Output::Ack,
                    ),
                    _ => (
                        Input::Cas {
                            key,
                            expected: pick(rng),
                            value: pick(rng),
                        },
                        Output::Swapped(rng.random()),
                    ),
                };
                let output = if ret.is_some() {
                    output
                } else {
                    Output::Unknown
                };
                Operation {
                    client: 0,
                    call,
                    ret,
                    input,
                    output,
                }
            })
            .collect()
    }

    #[test]
    fn the_minimal_set_cannot_be_ordered_and_freeing_any_one_of_it_can() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut rejected = 0;
        for _ in 0..5_000 {
            let history = random_history(&mut rng);
            let indices: Vec<usize> = (0..history.len()).collect();
            let mut key = KeyCheck::new(&history, &indices);
            if key.linearizable_exactly() {
                continue;
            }
            rejected += 1;
            let minimal = minimal_set(&mut key);
            assert!(minimal.one_minimal);
            let minimal = minimal.indices;
            assert!(!minimal.is_empty());
            // `KeyCheck` sorts by call, then index: find each operation's position.
            let positions: Vec<usize> = minimal
                .iter()
                .map(|&index| (0..key.len()).find(|&i| key.index(i) == index).unwrap())
                .collect();
            let mut exact = vec![false; key.len()];
            for &i in &positions {
                exact[i] = true;
            }
            let mut budget = usize::MAX;
            assert_eq!(
                key.linearizable_with(&exact, &mut budget),
                Some(false),
                "{history:?} {minimal:?}"
            );
            for &i in &positions {
                exact[i] = false;
                assert_eq!(
                    key.linearizable_with(&exact, &mut budget),
                    Some(true),
                    "{history:?} {minimal:?} {i}"
                );
                exact[i] = true;
            }
        }
        assert!(rejected > 1_000, "{rejected}");
    }
}
