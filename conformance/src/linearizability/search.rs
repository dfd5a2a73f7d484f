//! The search over one key's operations: Wing & Gong's backtracking with Lowe's memoization, the algorithm
//! Porcupine implements.
//!
//! The calls and returns lie in a doubly linked list in time order. An operation may be ordered next iff its
//! call comes before the first return still in the list (no operation still unordered returned before it was
//! called). The search walks the list from its head: at a call it tries the operation on the current state,
//! and if the step is legal and the pair (operations ordered so far, new state) has not been seen before, it
//! orders the operation, takes its call and return out of the list and starts again from the head. At a
//! return, every candidate has been tried: it undoes the last choice and goes on after it. The cache of pairs
//! is what makes this fast: two orders of the same operations that leave the same state have the same future,
//! so the second is never explored. The history is linearizable iff every operation that returned gets
//! ordered; operations that never returned have no return in the list, so they may be ordered at any point
//! after their call, or never.
//!
//! Values are interned: a state is a small integer, so comparing, hashing and caching states costs the same
//! however long the values grow under `append`.

use std::rc::Rc;

use rustc_hash::{FxHashMap, FxHashSet};

use super::{Input, Operation, Output};

/// An interned value of a key.
type ValueId = usize;

/// Every value the search has met, each with a small id; equal strings get one id.
#[derive(Default)]
struct Values {
    ids: FxHashMap<Rc<str>, ValueId>,
    strings: Vec<Rc<str>>,
    /// `(value, appended) -> value + appended`, so that each concatenation is built and hashed once.
    appended: FxHashMap<(ValueId, ValueId), ValueId>,
}

impl Values {
    /// The id of `""`, the value every key starts with.
    const EMPTY: ValueId = 0;

    fn new() -> Self {
        let mut values = Values::default();
        let empty = values.intern("");
        debug_assert_eq!(empty, Self::EMPTY);
        values
    }

    fn intern(&mut self, value: &str) -> ValueId {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.strings.len();
        let value: Rc<str> = Rc::from(value);
        self.strings.push(Rc::clone(&value));
        self.ids.insert(value, id);
        id
    }

    fn append(&mut self, value: ValueId, suffix: ValueId) -> ValueId {
        if let Some(&id) = self.appended.get(&(value, suffix)) {
            return id;
        }
        let joined = [&*self.strings[value], &*self.strings[suffix]].concat();
        let id = self.intern(&joined);
        self.appended.insert((value, suffix), id);
        id
    }

    /// The state after `effect` on `state`, or `None` if the recorded result rules the step out.
    fn apply(&mut self, state: ValueId, effect: Effect) -> Option<ValueId> {
        match effect {
            Effect::Read(read) => (state == read).then_some(state),
            Effect::Write(value) => Some(value),
            Effect::Append(suffix) => Some(self.append(state, suffix)),
            Effect::Cas {
                expected,
                value,
                swapped,
            } => {
                let swaps = state == expected;
                match swapped {
                    Some(recorded) if recorded != swaps => None,
                    _ => Some(if swaps { value } else { state }),
                }
            }
        }
    }
}

/// What an operation does to its key's value, and what its recorded result requires of it.
#[derive(Clone, Copy, Debug)]
enum Effect {
    /// A `get` that read this value.
    Read(ValueId),
    /// A `put`.
    Write(ValueId),
    /// An `append`.
    Append(ValueId),
    /// A `cas`, with its result if it is known.
    Cas {
        expected: ValueId,
        value: ValueId,
        swapped: Option<bool>,
    },
}

/// One operation of the key, prepared for the search in two forms.
struct KeyOp {
    /// Its index in the whole history.
    index: usize,
    call: u64,
    ret: Option<u64>,
    /// The operation as recorded; `None` for a `get` that never returned, which constrains nothing.
    exact: Option<Effect>,
    /// The operation freed of its result: a step of its kind whose result may be anything; `None` for a
    /// `get`, which then constrains nothing.
    free: Option<Effect>,
}

/// The operations on one key, ready to be searched as recorded, or with some of them freed (for
/// [`super::minimize`]).
pub(super) struct KeyCheck {
    values: Values,
    /// In call order (ties by index).
    ops: Vec<KeyOp>,
}

impl KeyCheck {
    /// Prepares the operations `indices` of `history`, all on one key.
    pub(super) fn new(history: &[Operation], indices: &[usize]) -> Self {
        let mut values = Values::new();
        let mut ops: Vec<KeyOp> = indices
            .iter()
            .map(|&index| {
                let op = &history[index];
                let (exact, free) = match (&op.input, &op.output) {
                    (Input::Get { .. }, Output::Value(read)) => {
                        (Some(Effect::Read(values.intern(read))), None)
                    }
                    (Input::Get { .. }, _) => (None, None),
                    (Input::Put { value, .. }, _) => {
                        let write = Effect::Write(values.intern(value));
                        (Some(write), Some(write))
                    }
                    (Input::Append { value, .. }, _) => {
                        let append = Effect::Append(values.intern(value));
                        (Some(append), Some(append))
                    }
                    (
                        Input::Cas {
                            expected, value, ..
                        },
                        output,
                    ) => {
                        let expected = values.intern(expected);
                        let value = values.intern(value);
                        let swapped = match output {
                            Output::Swapped(swapped) => Some(*swapped),
                            _ => None,
                        };
                        (
                            Some(Effect::Cas {
                                expected,
                                value,
                                swapped,
                            }),
                            Some(Effect::Cas {
                                expected,
                                value,
                                swapped: None,
                            }),
                        )
                    }
                };
                KeyOp {
                    index,
                    call: op.call,
                    ret: op.ret,
                    exact,
                    free,
                }
            })
            .collect();
        ops.sort_by_key(|op| (op.call, op.index));
        KeyCheck { values, ops }
    }

    /// How many operations the key has.
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    /// The history index of the key's `i`-th operation in call order.
    pub(super) fn index(&self, i: usize) -> usize {
        self.ops[i].index
    }

    /// Whether the key's `i`-th operation never returned.
    pub(super) fn is_pending(&self, i: usize) -> bool {
        self.ops[i].ret.is_none()
    }

    /// Whether the key's operations, as recorded, can be ordered.
    pub(super) fn linearizable_exactly(&mut self) -> bool {
        let exact = vec![true; self.ops.len()];
        self.linearizable_with(&exact)
    }

    /// Whether the key's operations can be ordered when those with `exact[i]` false are freed: such an
    /// operation that returned may take effect once between its call and its return, or not at all, whatever
    /// it returned; one that never returned stays as it is (free already, after its call).
    pub(super) fn linearizable_with(&mut self, exact: &[bool]) -> bool {
        let candidates: Vec<Candidate> = self
            .ops
            .iter()
            .zip(exact)
            .filter_map(|(op, &exact)| {
                let effect = if exact { op.exact } else { op.free }?;
                Some(Candidate {
                    call: op.call,
                    ret: op.ret,
                    effect,
                    optional: !exact && op.ret.is_some(),
                })
            })
            .collect();
        search(&mut self.values, &candidates)
    }
}

/// An operation as the search sees it.
struct Candidate {
    call: u64,
    /// `None`: it may be ordered at any point after its call, or never.
    ret: Option<u64>,
    effect: Effect,
    /// It may be skipped (ordered without effect) instead of taking effect.
    optional: bool,
}

impl Candidate {
    /// The ways it can be ordered: 0 takes its effect, 1 (if optional) skips it.
    fn alternatives(&self) -> u8 {
        if self.optional {
            2
        } else {
            1
        }
    }
}

/// The end of the list.
const NIL: usize = usize::MAX;
/// The list's head, before every event.
const HEAD: usize = 0;

/// A doubly linked list of the calls and returns, in time order, from which ordered operations are lifted
/// out and put back in last-out-first-in order (so a removed node's own links stay valid for its return).
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each node, its operation and whether it is a return.
    op: Vec<usize>,
    is_return: Vec<bool>,
    /// For each operation, its call's node and its return's node (`NIL` if it never returned).
    call_node: Vec<usize>,
    ret_node: Vec<usize>,
}

impl Events {
    fn new(ops: &[Candidate]) -> Self {
        // Calls before returns at equal times, so that equal times overlap; ties broken by operation, for
        // determinism.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, false, i));
            if let Some(ret) = op.ret {
                events.push((ret, true, i));
            }
        }
        events.sort_unstable();
        let nodes = events.len() + 1;
        let mut list = Events {
            next: (1..=nodes)
                .map(|n| if n == nodes { NIL } else { n })
                .collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            op: vec![0; nodes],
            is_return: vec![false; nodes],
            call_node: vec![NIL; ops.len()],
            ret_node: vec![NIL; ops.len()],
        };
        for (k, &(_, is_return, op)) in events.iter().enumerate() {
            let node = k + 1;
            list.op[node] = op;
            list.is_return[node] = is_return;
            if is_return {
                list.ret_node[op] = node;
            } else {
                list.call_node[op] = node;
            }
        }
        list
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    /// Takes operation `op`'s call and return out of the list.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if self.ret_node[op] != NIL {
            self.unlink(self.ret_node[op]);
        }
    }

    /// Puts operation `op` back, undoing the last [`Events::lift`].
    fn unlift(&mut self, op: usize) {
        if self.ret_node[op] != NIL {
            self.relink(self.ret_node[op]);
        }
        self.relink(self.call_node[op]);
    }
}

/// A choice made: operation `op` was ordered next, in way `alternative`, from `state`.
struct Choice {
    op: usize,
    state: ValueId,
    alternative: u8,
}

/// Whether some order of `ops` from the empty value orders every operation that returned.
fn search(values: &mut Values, ops: &[Candidate]) -> bool {
    let mut unordered_returned = ops.iter().filter(|op| op.ret.is_some()).count();
    if unordered_returned == 0 {
        return true;
    }
    let mut list = Events::new(ops);
    // The cache key: the ordered operations as a bitset, then the state, in one buffer so that a lookup
    // borrows it and only a new entry allocates.
    let words = ops.len().div_ceil(64);
    let mut key = vec![0u64; words + 1];
    let mut seen: FxHashSet<Box<[u64]>> = FxHashSet::default();
    let mut choices: Vec<Choice> = Vec::new();
    let mut state = Values::EMPTY;
    let mut node = list.next[HEAD];
    let mut alternative = 0;
    loop {
        if node == NIL || list.is_return[node] {
            // Every operation that could come next has been tried from here: undo the last choice and try
            // its next alternative. (`NIL` cannot be reached while a return is still in the list; it is
            // treated the same way for safety.)
            let Some(choice) = choices.pop() else {
                return false;
            };
            key[choice.op / 64] &= !(1 << (choice.op % 64));
            state = choice.state;
            list.unlift(choice.op);
            if ops[choice.op].ret.is_some() {
                unordered_returned += 1;
            }
            node = list.call_node[choice.op];
            alternative = choice.alternative + 1;
            continue;
        }
        let op = list.op[node];
        let candidate = &ops[op];
        if alternative >= candidate.alternatives() {
            node = list.next[node];
            alternative = 0;
            continue;
        }
        let after = if alternative == 0 {
            values.apply(state, candidate.effect)
        } else {
            Some(state)
        };
        if let Some(after) = after {
            key[op / 64] |= 1 << (op % 64);
            key[words] = after as u64;
            if !seen.contains(&key[..]) {
                seen.insert(key.clone().into_boxed_slice());
                choices.push(Choice {
                    op,
                    state,
                    alternative,
                });
                state = after;
                list.lift(op);
                if candidate.ret.is_some() {
                    unordered_returned -= 1;
                    if unordered_returned == 0 {
                        return true;
                    }
                }
                node = list.next[HEAD];
                alternative = 0;
                continue;
            }
            key[op / 64] &= !(1 << (op % 64));
        }
        alternative += 1;
    }
}
