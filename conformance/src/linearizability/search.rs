//! The search over one key's operations: Wing & Gong's backtracking with Lowe's memoization, the algorithm
//! Porcupine implements, with a few reductions of our own.
//!
//! The calls and returns lie in a doubly linked list in time order. An operation may be ordered next iff its
//! call comes before the first return still in the list (no operation still unordered returned before it was
//! called): these are the candidates. At each level the search tries a candidate on the current value; if the
//! step is legal and the pair (operations ordered so far, new value) has not been seen before, it orders the
//! operation, takes its call and return out of the list and goes on to the next level. When every candidate
//! has been tried, it undoes the last choice and tries the next candidate of that level. The cache of pairs
//! is what makes this fast: two orders of the same operations that leave the same value have the same
//! future, so the second is never explored. The history is linearizable iff every operation that returned
//! gets ordered; operations that never returned have no return in the list, so they may be ordered at any
//! point after their call, or never.
//!
//! What this adds, each sound (it never loses a complete order) and each checked against a brute-force
//! search in the tests below:
//!
//! * candidates are tried in the order of their returns, not their calls (see [`Level`]);
//! * a level with a candidate that can go first in some complete order if any exists tries only that one
//!   ([`Search::forced`]), and a level whose value cannot be read again before a read must happen gives up
//!   at once ([`Search::doomed`]);
//! * skipping a freed operation is tried only when it must be ordered (see [`super::minimize`] for freed
//!   operations).
//!
//! A state is a small integer, so that comparing, hashing and caching states costs the same however long the
//! values grow under `append`: states are the nodes of a trie of the values the history compares against
//! (every value a `get` read, every value a `cas` expected) and their prefixes. A value that is a prefix of
//! none of them is never read or expected again, whatever is appended to it, until it is overwritten; all such
//! values behave alike and are one state, `DEAD`, so a wrong order of appends is cut off at once and never
//! materialized.

use rustc_hash::{FxHashMap, FxHashSet};

use super::{Input, Operation, Output};

/// A value of the key, as the search sees it: a node of the trie, or [`Values::DEAD`].
type State = usize;

/// The trie of the values the history compares against, and the strings that operations append.
#[derive(Default)]
struct Values {
    /// `(node, byte) -> node`; node 0 is `""`.
    children: FxHashMap<(State, u8), State>,
    nodes: usize,
    /// What appends append, by id.
    suffixes: Vec<Box<[u8]>>,
    suffix_ids: FxHashMap<Box<[u8]>, usize>,
    /// `(state, suffix) -> state`, so that each append walks the trie once.
    appended: FxHashMap<(State, usize), State>,
    /// The value [`Values::observe`] added last, and its node.
    last: (Vec<u8>, State),
}

impl Values {
    /// `""`, the value every key starts with.
    const EMPTY: State = 0;
    /// Every value that is a prefix of no value compared against.
    const DEAD: State = usize::MAX;

    fn new() -> Self {
        Values {
            nodes: 1,
            ..Values::default()
        }
    }

    /// Adds `value`, which an operation compares against, and returns its node.
    ///
    /// The walk starts at the value observed last when it is a prefix of this one, as it mostly is
    /// under appends: a comparison of bytes instead of a lookup per byte of the prefix. The node is
    /// the same either way.
    fn observe(&mut self, value: &str) -> State {
        let bytes = value.as_bytes();
        let (last, last_node) = &self.last;
        let (mut node, start) = if bytes.starts_with(last) {
            (*last_node, last.len())
        } else {
            (Self::EMPTY, 0)
        };
        for &byte in &bytes[start..] {
            node = *self.children.entry((node, byte)).or_insert_with(|| {
                self.nodes += 1;
                self.nodes - 1
            });
        }
        if start < bytes.len() || bytes.len() < self.last.0.len() {
            self.last.0.clear();
            self.last.0.extend_from_slice(bytes);
            self.last.1 = node;
        }
        node
    }

    /// The state of `from` followed by `bytes` (call after every [`Values::observe`]).
    fn walk(&self, from: State, bytes: &[u8]) -> State {
        let mut node = from;
        for &byte in bytes {
            if node == Self::DEAD {
                break;
            }
            node = self
                .children
                .get(&(node, byte))
                .copied()
                .unwrap_or(Self::DEAD);
        }
        node
    }

    /// The id of an appended string.
    fn suffix(&mut self, suffix: &str) -> usize {
        if let Some(&id) = self.suffix_ids.get(suffix.as_bytes()) {
            return id;
        }
        let bytes: Box<[u8]> = suffix.as_bytes().into();
        self.suffixes.push(bytes.clone());
        self.suffix_ids.insert(bytes, self.suffixes.len() - 1);
        self.suffixes.len() - 1
    }

    fn append(&mut self, state: State, suffix: usize) -> State {
        if state == Self::DEAD {
            return Self::DEAD;
        }
        if let Some(&after) = self.appended.get(&(state, suffix)) {
            return after;
        }
        let after = self.walk(state, &self.suffixes[suffix]);
        self.appended.insert((state, suffix), after);
        after
    }

    /// The state after `effect` on `state`, or `None` if the recorded result rules the step out.
    fn apply(&mut self, state: State, effect: Effect) -> Option<State> {
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
    Read(State),
    /// A `put` of this value.
    Write(State),
    /// An `append` of this suffix.
    Append(usize),
    /// A `cas`, with its result if it is known.
    Cas {
        expected: State,
        value: State,
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
        // The trie first: every value a get read or a cas expected.
        let mut values = Values::new();
        for &index in indices {
            match (&history[index].input, &history[index].output) {
                (Input::Get { .. }, Output::Value(read)) => {
                    values.observe(read);
                }
                (Input::Cas { expected, .. }, _) => {
                    values.observe(expected);
                }
                _ => {}
            }
        }
        let mut ops: Vec<KeyOp> = indices
            .iter()
            .map(|&index| {
                let op = &history[index];
                let (exact, free) = match (&op.input, &op.output) {
                    (Input::Get { .. }, Output::Value(read)) => {
                        (Some(Effect::Read(values.observe(read))), None)
                    }
                    (Input::Get { .. }, _) => (None, None),
                    (Input::Put { value, .. }, _) => {
                        let write = Effect::Write(values.walk(Values::EMPTY, value.as_bytes()));
                        (Some(write), Some(write))
                    }
                    (Input::Append { value, .. }, _) => {
                        let append = Effect::Append(values.suffix(value));
                        (Some(append), Some(append))
                    }
                    (
                        Input::Cas {
                            expected, value, ..
                        },
                        output,
                    ) => {
                        let expected = values.observe(expected);
                        let value = values.walk(Values::EMPTY, value.as_bytes());
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
        let mut unlimited = usize::MAX;
        self.linearizable_with(&exact, &mut unlimited)
            .expect("an unlimited search decides")
    }

    /// Whether the key's operations can be ordered when those with `exact[i]` false are freed: such an
    /// operation that returned may take effect once between its call and its return, or not at all, whatever
    /// it returned; one that never returned stays as it is (free already, after its call). `None` if the
    /// search explored more than `budget` pairs of (ordered operations, value), which are taken off it.
    pub(super) fn linearizable_with(&mut self, exact: &[bool], budget: &mut usize) -> Option<bool> {
        // Free operations called after every exact one returned cannot change what the exact ones saw: they
        // can always be ordered last, or not at all. Leave them out.
        let last_return = self
            .ops
            .iter()
            .zip(exact)
            .filter(|(_, &exact)| exact)
            .filter_map(|(op, _)| op.ret)
            .max()
            .unwrap_or(0);
        let candidates: Vec<Candidate> = self
            .ops
            .iter()
            .zip(exact)
            .filter(|(op, &exact)| (exact && op.ret.is_some()) || op.call <= last_return)
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
        search(&mut self.values, &candidates, budget)
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

/// Where the search is in a level: a set of operations ordered and a value, where the next operation is
/// chosen.
///
/// The candidates are the operations called before the first return still in the list. They are tried in
/// the order of their returns, `first_return` first: operations usually take effect late in their interval
/// (the reply is on its way back), so this follows the real order more often than the order of calls, and a
/// long operation called early is not tried at every point it could go before the ones that must go first.
/// Candidates that never returned come last, in call order.
#[derive(Clone, Copy, Debug)]
enum Level {
    /// Just arrived.
    Fresh,
    /// Trying way `alternative` of the candidate at `node`: a return while `pending` is false, a call
    /// after. `left` counts the candidates with a return not reached yet.
    Scan {
        first_return: usize,
        node: usize,
        alternative: u8,
        left: usize,
        pending: bool,
    },
    /// The only choice the level needs was tried ([`Search::forced`]), or the level is doomed.
    Exhausted,
}

/// A choice made: operation `op` was ordered next from `state`, at `at` (`Exhausted` if forced).
struct Choice {
    op: usize,
    state: State,
    at: Level,
}

/// The search's state: the list of events still unordered, the current value, the choices made, and the cache
/// of (ordered operations, value) pairs already explored, none of which led to a complete order.
struct Search<'a> {
    ops: &'a [Candidate],
    list: Events,
    state: State,
    choices: Vec<Choice>,
    /// Operations that returned and are not ordered yet: the search succeeds when there are none.
    unordered_returned: usize,
    /// The cache key being built: the ordered operations as a bitset, then the state, in one buffer so that
    /// a lookup borrows it and only a new entry allocates.
    key: Vec<u64>,
    seen: FxHashSet<Box<[u64]>>,
    /// How many pairs the cache may hold; `over_budget` once it would hold more.
    budget: usize,
    over_budget: bool,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [Candidate], budget: usize) -> Self {
        Search {
            ops,
            list: Events::new(ops),
            state: Values::EMPTY,
            choices: Vec::new(),
            unordered_returned: ops.iter().filter(|op| op.ret.is_some()).count(),
            key: vec![0; ops.len().div_ceil(64) + 1],
            seen: FxHashSet::default(),
            budget,
            over_budget: false,
        }
    }

    fn flip(&mut self, op: usize) {
        self.key[op / 64] ^= 1 << (op % 64);
    }

    /// Orders `op` next, leaving the value `after`, unless that pair of (ordered operations, value) was
    /// explored before; whether it did. `at` is where the level will go on if this choice is undone.
    fn order(&mut self, op: usize, after: State, at: Level) -> bool {
        self.flip(op);
        let last = self.key.len() - 1;
        self.key[last] = after as u64;
        if self.seen.contains(&self.key[..]) || self.seen.len() >= self.budget {
            self.over_budget = self.seen.len() >= self.budget;
            self.flip(op);
            return false;
        }
        self.seen.insert(self.key.clone().into_boxed_slice());
        self.choices.push(Choice {
            op,
            state: self.state,
            at,
        });
        self.state = after;
        self.list.lift(op);
        if self.ops[op].ret.is_some() {
            self.unordered_returned -= 1;
        }
        true
    }

    /// Undoes the last choice, and returns where its level goes on.
    fn undo(&mut self) -> Option<Level> {
        let choice = self.choices.pop()?;
        self.flip(choice.op);
        self.state = choice.state;
        self.list.unlift(choice.op);
        if self.ops[choice.op].ret.is_some() {
            self.unordered_returned += 1;
        }
        Some(choice.at)
    }

    /// Whether the call of `op` comes before `node` in time.
    fn called_before(&self, op: usize, node: usize) -> bool {
        // Nodes are numbered in time order.
        self.list.call_node[op] < node
    }

    /// The start of a level's scan: its first return, and how many candidates have a return.
    fn scan(&self) -> Level {
        let mut node = self.list.next[HEAD];
        let mut left = 0;
        while node != NIL && !self.list.is_return[node] {
            left += usize::from(self.ops[self.list.op[node]].ret.is_some());
            node = self.list.next[node];
        }
        Level::Scan {
            first_return: node,
            node,
            alternative: 0,
            left,
            pending: false,
        }
    }

    /// The value after way `alternative` of `op` (0 takes its effect, 1 skips it), if legal here.
    fn step(&self, values: &mut Values, op: usize, alternative: u8) -> Option<State> {
        match alternative {
            0 => values.apply(self.state, self.ops[op].effect),
            _ => Some(self.state),
        }
    }

    /// An operation that may come next and that can go first in some complete order from here if any
    /// complete order exists, so that it is the only choice the level needs to try:
    ///
    /// * one that only observes the value (a read, or a cas that did not swap) and agrees with it now:
    ///   nothing still unordered must come before it and it changes nothing, so in any complete order it can
    ///   be moved to the front. This keeps concurrent reads of one value from being tried in every subset.
    /// * at `DEAD`, one that cannot write (not a `put`) and returned before every `put` still unordered was
    ///   called: the value stays `DEAD` until it is ordered in any complete order (only a `put` leaves
    ///   `DEAD`), and it leaves `DEAD` as `DEAD`, so it too can be moved to the front. This keeps the
    ///   operations that follow a wrong choice from being tried in every subset before the search gives up
    ///   on it.
    fn forced(&self) -> Option<usize> {
        let first_write = if self.state == Values::DEAD {
            let mut node = self.list.next[HEAD];
            while node != NIL
                && (self.list.is_return[node]
                    || !matches!(self.ops[self.list.op[node]].effect, Effect::Write(_)))
            {
                node = self.list.next[node];
            }
            Some(node)
        } else {
            None
        };
        let mut node = self.list.next[HEAD];
        while node != NIL && !self.list.is_return[node] {
            let op = self.list.op[node];
            let candidate = &self.ops[op];
            let observes = match candidate.effect {
                Effect::Read(read) => read == self.state,
                Effect::Cas {
                    expected,
                    swapped: Some(false),
                    ..
                } => expected != self.state,
                _ => false,
            };
            if observes && !candidate.optional {
                return Some(op);
            }
            if let Some(first_write) = first_write {
                let stays_dead = match candidate.effect {
                    Effect::Write(_) | Effect::Read(_) => false,
                    Effect::Cas { swapped, .. } => swapped != Some(true) || candidate.optional,
                    Effect::Append(_) => true,
                };
                // Node numbers are in time order; a return node of NIL (never returned) comes after all.
                let ret = self.list.ret_node[op];
                let before_writes = first_write == NIL || (ret != NIL && ret < first_write);
                if stays_dead && before_writes {
                    return Some(op);
                }
            }
            node = self.list.next[node];
        }
        None
    }

    /// Whether the value is `DEAD` and must stay so until an operation that cannot accept it: a read, or a
    /// cas that swapped, returned before any operation still unordered that writes was called (only a `put`
    /// brings a value back from `DEAD`), so it must be ordered before all of them.
    fn doomed(&self) -> bool {
        if self.state != Values::DEAD {
            return false;
        }
        let mut node = self.list.next[HEAD];
        while node != NIL {
            let op = &self.ops[self.list.op[node]];
            match (self.list.is_return[node], op.effect) {
                (false, Effect::Write(_)) => return false,
                (
                    true,
                    Effect::Read(_)
                    | Effect::Cas {
                        swapped: Some(true),
                        ..
                    },
                ) if !op.optional => return true,
                _ => node = self.list.next[node],
            }
        }
        false
    }

    /// Goes on with a level's scan at `at`: tries candidates until one is ordered (the next level is
    /// fresh) or none is left (the level is exhausted).
    fn go_on(&mut self, values: &mut Values, mut at: Level) -> Level {
        while let Level::Scan {
            first_return,
            node,
            alternative,
            left,
            pending,
        } = at
        {
            let next = |node: usize, left: usize| Level::Scan {
                first_return,
                node,
                alternative: 0,
                left,
                pending,
            };
            if !pending && (node == NIL || left == 0) {
                // The candidates that never returned, in call order.
                at = Level::Scan {
                    first_return,
                    node: self.list.next[HEAD],
                    alternative: 0,
                    left,
                    pending: true,
                };
                continue;
            }
            if pending && (node == NIL || node == first_return) {
                return Level::Exhausted;
            }
            let op = self.list.op[node];
            let is_candidate = if pending {
                self.ops[op].ret.is_none()
            } else {
                self.list.is_return[node] && self.called_before(op, first_return)
            };
            if !is_candidate {
                at = next(self.list.next[node], left);
                continue;
            }
            // Skipping an operation changes nothing, so it can wait until the operation must be ordered
            // (its return is the first still in the list): skipping it earlier would only reach the same
            // values with other sets of operations ordered.
            let ways = if node == first_return {
                self.ops[op].alternatives()
            } else {
                1
            };
            if alternative >= ways {
                at = next(self.list.next[node], left - usize::from(!pending));
                continue;
            }
            let retry = Level::Scan {
                first_return,
                node,
                alternative: alternative + 1,
                left,
                pending,
            };
            if let Some(after) = self.step(values, op, alternative) {
                if self.order(op, after, retry) {
                    return Level::Fresh;
                }
            }
            at = retry;
        }
        at
    }
}

/// Whether some order of `ops` from the empty value orders every operation that returned; `None` if that
/// takes more than `budget` pairs in the cache. The pairs explored are taken off `budget`.
fn search(values: &mut Values, ops: &[Candidate], budget: &mut usize) -> Option<bool> {
    let mut search = Search::new(ops, *budget);
    let verdict = run(&mut search, values);
    *budget -= search.seen.len();
    verdict
}

/// Runs the search to its end.
fn run(search: &mut Search, values: &mut Values) -> Option<bool> {
    let mut at = Level::Fresh;
    loop {
        if search.unordered_returned == 0 {
            return Some(true);
        }
        if search.over_budget {
            return None;
        }
        at = match at {
            Level::Fresh if search.doomed() => Level::Exhausted,
            Level::Fresh => match search.forced() {
                // If this pair was explored before from this very state, so was this level.
                Some(op) if search.order(op, search.state, Level::Exhausted) => Level::Fresh,
                Some(_) => Level::Exhausted,
                None => {
                    let scan = search.scan();
                    search.go_on(values, scan)
                }
            },
            Level::Scan { .. } => search.go_on(values, at),
            // Every candidate has been tried: undo the last choice and go on at its level.
            Level::Exhausted => match search.undo() {
                Some(at) => at,
                None => return Some(false),
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::{Input, Operation, Output};
    use super::*;

    /// A random history of one key: random intervals, random results from a small alphabet, some operations
    /// that never returned.
    fn random_history(rng: &mut ChaCha8Rng, len: usize) -> Vec<Operation> {
        let values = ["", "a", "b", "ab", "ba", "aa"];
        let pick = |rng: &mut ChaCha8Rng| values[rng.random_range(0..values.len())].to_owned();
        (0..len)
            .map(|_| {
                let call = rng.random_range(0..30);
                let ret = rng.random_bool(0.8).then(|| call + rng.random_range(0..12));
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
                            value: ["a", "b", ""][rng.random_range(0..3)].to_owned(),
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

    /// The definition, by brute force on the strings themselves: some subset of the operations, containing
    /// every exact one that returned, in some order that keeps real time (an operation that returned before
    /// another was called comes first), is a legal sequence from `""`, where exact operations return what
    /// they returned and the others may return anything.
    fn brute_force(history: &[Operation], exact: &[bool]) -> bool {
        let n = history.len();
        let precedes = |a: usize, b: usize| history[a].ret.is_some_and(|ret| ret < history[b].call);
        let legal = |order: &[usize]| {
            let mut value = String::new();
            order.iter().all(|&i| {
                let op = &history[i];
                let checked = exact[i] && op.ret.is_some();
                match (&op.input, &op.output) {
                    (Input::Get { .. }, Output::Value(read)) => !checked || *read == value,
                    (Input::Get { .. }, _) => true,
                    (Input::Put { value: v, .. }, _) => {
                        value = v.clone();
                        true
                    }
                    (Input::Append { value: v, .. }, _) => {
                        value.push_str(v);
                        true
                    }
                    (
                        Input::Cas {
                            expected, value: v, ..
                        },
                        output,
                    ) => {
                        let swaps = value == *expected;
                        if swaps {
                            value = v.clone();
                        }
                        !checked || *output == Output::Swapped(swaps)
                    }
                }
            })
        };
        // Extends `order` with the operations of `chosen` in every order that keeps real time.
        fn orders(
            chosen: &[usize],
            order: &mut Vec<usize>,
            used: &mut [bool],
            precedes: &dyn Fn(usize, usize) -> bool,
            legal: &dyn Fn(&[usize]) -> bool,
        ) -> bool {
            if order.len() == chosen.len() {
                return legal(order);
            }
            for (k, &i) in chosen.iter().enumerate() {
                let ready = !used[k]
                    && chosen
                        .iter()
                        .enumerate()
                        .all(|(m, &j)| used[m] || j == i || !precedes(j, i));
                if ready {
                    used[k] = true;
                    order.push(i);
                    let found = legal(order) && orders(chosen, order, used, precedes, legal);
                    order.pop();
                    used[k] = false;
                    if found {
                        return true;
                    }
                }
            }
            false
        }
        (0u32..1 << n).any(|subset| {
            let chosen: Vec<usize> = (0..n).filter(|&i| subset & (1 << i) != 0).collect();
            let complete =
                (0..n).all(|i| !(exact[i] && history[i].ret.is_some()) || subset & (1 << i) != 0);
            complete
                && orders(
                    &chosen,
                    &mut Vec::new(),
                    &mut vec![false; chosen.len()],
                    &precedes,
                    &legal,
                )
        })
    }

    #[test]
    fn the_search_agrees_with_the_definition_with_operations_exact_and_freed() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..20_000 {
            let len = rng.random_range(1..8);
            let history = random_history(&mut rng, len);
            let exact: Vec<bool> = (0..len).map(|_| rng.random_bool(0.7)).collect();
            let indices: Vec<usize> = (0..len).collect();
            let mut key = KeyCheck::new(&history, &indices);
            // `KeyCheck` holds the operations in call order.
            let sorted: Vec<bool> = (0..len).map(|i| exact[key.index(i)]).collect();
            let mut budget = usize::MAX;
            let verdict = key.linearizable_with(&sorted, &mut budget);
            let expected = brute_force(&history, &exact);
            assert_eq!(verdict, Some(expected), "{history:?} exact {exact:?}");
            if expected {
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(yes > 5_000 && no > 5_000, "{yes} linearizable, {no} not");
    }
}
