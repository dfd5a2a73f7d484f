//! The depth-first search `check` runs: a parallel exhaustive search over [`RaftModel`], written for
//! this model, that visits the same states as stateright's depth-first checker and counts them the
//! same way, in less time (the model README gives the figures).
//!
//! What it does differently:
//!
//! * **The visited set** holds 64-bit fingerprints in place, in 1,024 shards of open addressing,
//!   each behind its own lock. A lookup reads one cache line of the table, and the lookups of
//!   one state's successors are prefetched together, so that their cache misses overlap.
//!   stateright's `DashSet` has eight shards on two cores, whose locks the threads take in turn,
//!   and keeps a control byte apart from each key: two cache misses one after the other and a
//!   contended lock per state.
//! * **Paths are not copied.** Each thread keeps the path from its job's start to the state it
//!   expands as a stack of frames (the successors still to visit at each depth), so a path is
//!   copied only when work is handed to another thread. stateright copies the whole path of
//!   action indices into every successor it queues.
//! * **Counters are kept per thread** and added to the shared ones every [`FLUSH`] states,
//!   instead of an atomic increment per state on one cache line that both cores write.
//!
//! The states, their fingerprints (ahash with stateright's fixed seeds), the order in which a
//! thread visits successors (the last enumerated first) and the counts are stateright's: `unique`
//! is the number of distinct fingerprints, `total` the initial state plus every successor
//! generated, `depth` the greatest number of states on a path expanded. Like stateright's,
//! 64-bit fingerprints can collide; at 20 million states the chance that two do is about 1 in
//! 100,000. `tests/search.rs` compares both engines' counts on several presets.

use crate::raft::{Action, RaftModel};
use crate::state::State;
use stateright::Model;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// A condition every reachable state must meet.
pub type Invariant = fn(&RaftModel, &State) -> bool;

/// States a thread handles between updates of the shared counters (and checks of the stop flag).
pub const FLUSH: usize = 1024;

/// A search running on its threads.
pub struct Search {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Counts of a search, exact once it has ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Distinct states (fingerprints) reached.
    pub unique: usize,
    /// States generated, repeats included (the initial state and every successor).
    pub total: usize,
    /// The most states on one path expanded, the initial state included.
    pub depth: usize,
}

/// How a search ended.
pub struct Outcome {
    /// The final counts.
    pub counts: Counts,
    /// A path to a state that breaks the invariant, as the positions of its actions among those
    /// [`Model::actions`] offers in each state; replay it with [`replay`].
    pub violation: Option<Vec<u32>>,
}

struct Shared {
    model: RaftModel,
    invariant: Invariant,
    visited: Visited,
    pool: Pool,
    unique: AtomicUsize,
    total: AtomicUsize,
    depth: AtomicUsize,
    stop: AtomicBool,
    violation: Mutex<Option<Vec<u32>>>,
}

impl Shared {
    /// Stops every thread: each ends at its next flush or its next wait for work.
    fn halt(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.pool.close();
    }
}

impl Search {
    /// Starts searching every state reachable from `model`'s initial state on `threads` threads,
    /// stopping at the first state where `invariant` is false.
    pub fn spawn(model: RaftModel, threads: usize, invariant: Invariant) -> Search {
        let threads = threads.max(1);
        let init = model.init_state();
        let visited = Visited::new();
        visited.insert(fingerprint(&init));
        let shared = Arc::new(Shared {
            model,
            invariant,
            visited,
            pool: Pool::new(threads),
            unique: AtomicUsize::new(1),
            total: AtomicUsize::new(1),
            depth: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            violation: Mutex::new(None),
        });
        shared.pool.give(vec![Job {
            state: init,
            path: Vec::new(),
        }]);
        let threads = (0..threads)
            .map(|t| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("search-{t}"))
                    .spawn(move || {
                        let _guard = StopOnPanic(&shared);
                        Worker::new(&shared).run();
                    })
                    .expect("spawn a search thread")
            })
            .collect();
        Search { shared, threads }
    }

    /// The counts so far (behind by at most [`FLUSH`] states a thread while it runs).
    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        Counts {
            unique: s.unique.load(Ordering::Relaxed),
            total: s.total.load(Ordering::Relaxed),
            depth: s.depth.load(Ordering::Relaxed),
        }
    }

    /// Whether every thread has stopped.
    pub fn is_done(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Waits for the end of the search.
    pub fn join(self) -> Outcome {
        // Every thread ends before a panic is passed on: none is left running behind it.
        let mut panicked = None;
        for t in self.threads {
            if let Err(panic) = t.join() {
                panicked.get_or_insert(panic);
            }
        }
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
        let violation = lock(&self.shared.violation).take();
        Outcome {
            counts: Counts {
                unique: self.shared.unique.load(Ordering::Relaxed),
                total: self.shared.total.load(Ordering::Relaxed),
                depth: self.shared.depth.load(Ordering::Relaxed),
            },
            violation,
        }
    }
}

/// The states along `path` from the initial state, each with the action taken from it (none
/// after the last), as stateright's `Path::into_vec` gives them.
pub fn replay(model: &RaftModel, path: &[u32]) -> Vec<(State, Option<Action>)> {
    let mut steps = Vec::with_capacity(path.len() + 1);
    let mut state = model.init_state();
    let mut actions = Vec::new();
    for &k in path {
        actions.clear();
        model.actions(&state, &mut actions);
        let action = actions.swap_remove(k as usize);
        let next = model
            .next_state(&state, action.clone())
            .expect("a path's actions are enabled");
        steps.push((std::mem::replace(&mut state, next), Some(action)));
    }
    steps.push((state, None));
    steps
}

/// The fingerprint of a state: stateright's (ahash with its fixed seeds), never 0.
pub fn fingerprint(state: &State) -> u64 {
    const KEYS: [u64; 4] = [123_456_789_987_654_321, 98_765_432_123_456_789, 0, 0];
    let hash = ahash::RandomState::with_seeds(KEYS[0], KEYS[1], KEYS[2], KEYS[3]).hash_one(state);
    hash.max(1)
}

/// Stops the search when its thread panics (in the model, say), so that the other threads end
/// instead of waiting for this one's work; [`Search::join`] then passes the panic on.
struct StopOnPanic<'a>(&'a Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.halt();
        }
    }
}

/// A successor in a frame: the state, the position of its action, its fingerprint.
type Successor = (State, u32, u64);

/// A state to expand, with the path to it from the initial state.
struct Job {
    state: State,
    path: Vec<u32>,
}

/// One thread's search: a stack of frames, each the successors still to visit of one state on
/// the path from the job's state to the current one.
struct Worker<'a> {
    shared: &'a Shared,
    /// Action positions from the initial state: the job's path, then one per frame below the top.
    path: Vec<u32>,
    /// The job's path length: `path[..base + k]` leads to the state whose successors are
    /// `frames[k]`.
    base: usize,
    frames: Vec<Vec<Successor>>,
    /// Emptied frames, kept for their allocations.
    spare: Vec<Vec<Successor>>,
    actions: Vec<Action>,
    unique: usize,
    total: usize,
    depth: usize,
    since_flush: usize,
}

impl<'a> Worker<'a> {
    fn new(shared: &'a Shared) -> Self {
        Worker {
            shared,
            path: Vec::new(),
            base: 0,
            frames: Vec::new(),
            spare: Vec::new(),
            actions: Vec::new(),
            unique: 0,
            total: 0,
            depth: 0,
            since_flush: 0,
        }
    }

    fn run(mut self) {
        while let Some(job) = self.shared.pool.take() {
            self.path = job.path;
            self.base = self.path.len();
            if !self.expand(job.state) {
                break;
            }
            while !self.frames.is_empty() {
                let top = self.frames.last_mut().expect("a frame");
                let Some((state, k, _)) = top.pop() else {
                    let frame = self.frames.pop().expect("a frame");
                    self.spare.push(frame);
                    self.path.truncate(self.base + self.frames.len());
                    continue;
                };
                self.path.truncate(self.base + self.frames.len() - 1);
                self.path.push(k);
                if !self.expand(state) {
                    break;
                }
                self.share();
            }
        }
        self.flush();
    }

    /// Checks `state` (reached by `self.path`) and pushes a frame of its successors not seen
    /// before. Returns false when the search must stop.
    fn expand(&mut self, state: State) -> bool {
        let depth = self.path.len() + 1;
        self.depth = self.depth.max(depth);
        self.since_flush += 1;
        if self.since_flush >= FLUSH {
            self.flush();
            if self.shared.stop.load(Ordering::Relaxed) {
                return false;
            }
        }
        let model = &self.shared.model;
        if !(self.shared.invariant)(model, &state) {
            let mut violation = lock(&self.shared.violation);
            if violation.is_none() {
                *violation = Some(self.path.clone());
            }
            drop(violation);
            self.shared.halt();
            return false;
        }
        model.actions(&state, &mut self.actions);
        // All the successors first, each with its fingerprint and a prefetch of its place in the
        // visited set, then the lookups: their cache misses overlap instead of coming one by one.
        // The successors seen before are dropped where they lie: the frame is what is left.
        let mut frame = self.spare.pop().unwrap_or_default();
        for (k, action) in self.actions.drain(..).enumerate() {
            let Some(next) = model.next_state(&state, action) else {
                continue;
            };
            let fingerprint = fingerprint(&next);
            self.shared.visited.prefetch(fingerprint);
            frame.push((next, k as u32, fingerprint));
        }
        self.total += frame.len();
        let visited = &self.shared.visited;
        frame.retain(|&(_, _, fingerprint)| visited.insert(fingerprint));
        self.unique += frame.len();
        if frame.is_empty() {
            self.spare.push(frame);
        } else {
            self.frames.push(frame);
        }
        true
    }

    /// Hands the oldest successors of the lowest frame that has any (the largest subtrees,
    /// likely) to the pool when another thread waits for work. Keeps one state to go on with.
    fn share(&mut self) {
        if !self.shared.pool.hungry.load(Ordering::Relaxed) {
            return;
        }
        let top = self.frames.len().saturating_sub(1);
        let Some(j) = self.frames.iter().position(|f| !f.is_empty()) else {
            return;
        };
        let frame = &mut self.frames[j];
        let count = if j < top {
            frame.len().div_ceil(2)
        } else {
            frame.len() / 2
        };
        if count == 0 {
            return;
        }
        let prefix = &self.path[..self.base + j];
        let jobs = frame
            .drain(..count)
            .map(|(mut state, k, _)| {
                state.servers.unshare();
                let mut path = Vec::with_capacity(prefix.len() + 1);
                path.extend_from_slice(prefix);
                path.push(k);
                Job { state, path }
            })
            .collect();
        self.shared.pool.give(jobs);
    }

    fn flush(&mut self) {
        let s = self.shared;
        s.unique.fetch_add(self.unique, Ordering::Relaxed);
        s.total.fetch_add(self.total, Ordering::Relaxed);
        s.depth.fetch_max(self.depth, Ordering::Relaxed);
        self.unique = 0;
        self.total = 0;
        self.since_flush = 0;
    }
}

/// The jobs waiting for a thread, and how the threads find out that the search is over: when
/// every thread waits and no job is left.
struct Pool {
    state: Mutex<PoolState>,
    wake: Condvar,
    /// Some thread waits for a job and none is queued.
    hungry: AtomicBool,
}

struct PoolState {
    jobs: Vec<Job>,
    threads: usize,
    idle: usize,
    closed: bool,
}

impl Pool {
    fn new(threads: usize) -> Self {
        Pool {
            state: Mutex::new(PoolState {
                jobs: Vec::new(),
                threads,
                idle: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            hungry: AtomicBool::new(false),
        }
    }

    /// The next job, or `None` once the search is over.
    fn take(&self) -> Option<Job> {
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return None;
            }
            if let Some(job) = state.jobs.pop() {
                return Some(job);
            }
            state.idle += 1;
            if state.idle == state.threads {
                state.closed = true;
                self.wake.notify_all();
                return None;
            }
            self.hungry.store(true, Ordering::Relaxed);
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle -= 1;
        }
    }

    fn give(&self, jobs: Vec<Job>) {
        let mut state = lock(&self.state);
        state.jobs.extend(jobs);
        self.hungry.store(false, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// Ends the search: every thread's next `take` returns `None`.
    fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_all();
    }
}

/// The fingerprints of the states reached: open addressing with linear probing in shards chosen
/// by a fingerprint's top bits, each behind its own lock; 0 marks an empty slot.
struct Visited {
    shards: Box<[Shard]>,
}

const SHARD_BITS: u32 = 10;
const INITIAL_SLOTS: usize = 1024;

/// One shard on its own cache line, so that the two threads' locks do not share one.
#[repr(align(64))]
struct Shard {
    table: Mutex<Table>,
    /// Where the table's slots are and their number minus one, written under the lock when the
    /// table grows; read without it, only to prefetch (a stale address prefetches nothing useful
    /// and harms nothing).
    slots: AtomicPtr<u64>,
    mask: AtomicUsize,
}

struct Table {
    slots: Vec<u64>,
    len: usize,
}

impl Visited {
    fn new() -> Self {
        let shards = (0..1 << SHARD_BITS)
            .map(|_| {
                let mut slots = vec![0; INITIAL_SLOTS];
                Shard {
                    slots: AtomicPtr::new(slots.as_mut_ptr()),
                    mask: AtomicUsize::new(INITIAL_SLOTS - 1),
                    table: Mutex::new(Table { slots, len: 0 }),
                }
            })
            .collect();
        Visited { shards }
    }

    fn shard(&self, fingerprint: u64) -> &Shard {
        &self.shards[(fingerprint >> (64 - SHARD_BITS)) as usize]
    }

    /// Asks the processor to bring the fingerprint's shard and slot into the cache.
    fn prefetch(&self, fingerprint: u64) {
        let shard = self.shard(fingerprint);
        let slot = fingerprint as usize & shard.mask.load(Ordering::Relaxed);
        let slots = shard.slots.load(Ordering::Relaxed);
        prefetch(std::ptr::from_ref(shard).cast());
        prefetch(slots.wrapping_add(slot).cast_const().cast());
    }

    /// Adds a fingerprint (not 0); false if it was there already.
    fn insert(&self, fingerprint: u64) -> bool {
        let shard = self.shard(fingerprint);
        let mut table = lock(&shard.table);
        if !table.insert(fingerprint) {
            return false;
        }
        table.len += 1;
        if table.len * 4 > table.slots.len() * 3 {
            table.grow();
            shard
                .slots
                .store(table.slots.as_mut_ptr(), Ordering::Relaxed);
            shard.mask.store(table.slots.len() - 1, Ordering::Relaxed);
        }
        true
    }
}

impl Table {
    fn insert(&mut self, fingerprint: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut k = fingerprint as usize & mask;
        loop {
            match self.slots[k] {
                0 => {
                    self.slots[k] = fingerprint;
                    return true;
                }
                f if f == fingerprint => return false,
                _ => k = (k + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let slots = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, slots);
        for f in old.into_iter().filter(|&f| f != 0) {
            self.insert(f);
        }
    }
}

/// A hint to the processor that `address` will be read soon; never faults, whatever the address.
#[cfg(target_arch = "x86_64")]
fn prefetch(address: *const i8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: SSE, which the instruction needs, is part of every x86_64 processor, and a
    // prefetch reads nothing the program sees: it neither faults nor races, whatever the address.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(address) };
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch(_: *const i8) {}

/// Locks a mutex; a thread that panicked holding it cannot leave it broken (the search stops and
/// the panic is passed on by [`Search::join`]).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visited_set_tells_new_from_seen_across_growth() {
        let visited = Visited::new();
        // Enough fingerprints in one shard to make it grow several times.
        let same_shard = |k: u64| (k * 0x9E37_79B9) & ((1 << (64 - SHARD_BITS)) - 1) | 1;
        for k in 1..20_000 {
            assert!(visited.insert(same_shard(k)), "{k} is new");
        }
        for k in 1..20_000 {
            assert!(!visited.insert(same_shard(k)), "{k} was seen");
        }
        let table = lock(&visited.shards[0].table);
        assert_eq!(table.len, 19_999);
        assert!(table.slots.len() >= 32_768);
    }
}
