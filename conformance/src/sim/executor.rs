//! A single-threaded async executor driven by a virtual clock.
//!
//! Nothing here reads the wall clock. Time only moves when every runnable task has been polled and
//! the executor jumps to the next scheduled event; events at the same instant run in the order they
//! were scheduled (a sequence number breaks ties), so a run is a pure function of its seed.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::SimError;

/// Virtual time in microseconds since the simulation started.
pub type Micros = u64;

/// Microseconds in one millisecond of virtual time.
pub const MS: Micros = 1_000;

/// How many events may run at one virtual instant before the simulator declares a livelock: a
/// node that answers every message with another message at zero delay would otherwise spin
/// forever without time advancing.
const MAX_EVENTS_PER_INSTANT: u64 = 2_000_000;

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// What a scheduled event does when its time comes.
enum Action {
    /// Make a task runnable again (a `sleep` expired).
    Wake(Waker),
    /// Run a callback (a network delivery, a node tick).
    Run(Box<dyn FnOnce()>),
}

struct Scheduled {
    at: Micros,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Wakers must be `Send + Sync`, but every task lives on the simulator's thread; the waker only
/// carries a task number and a handle to the shared run queue of this simulator.
struct TaskWaker {
    id: usize,
    queue: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.lock().expect("run queue poisoned").push(self.id);
    }
}

struct Task {
    future: Option<LocalFuture>,
    waker: Waker,
}

struct Inner {
    now: Cell<Micros>,
    seq: Cell<u64>,
    timers: RefCell<BinaryHeap<Reverse<Scheduled>>>,
    tasks: RefCell<Vec<Option<Task>>>,
    free_tasks: RefCell<Vec<usize>>,
    /// Tasks woken by a waker (possibly from inside a poll); drained into `ready`.
    woken: Arc<std::sync::Mutex<Vec<usize>>>,
    ready: RefCell<VecDeque<usize>>,
    rng: RefCell<ChaCha8Rng>,
    hash: Cell<u64>,
    events: Cell<u64>,
    deadline: Cell<Option<Micros>>,
}

/// A handle to one simulation: its clock, its random number generator, its timer queue and its
/// tasks. Cloning the handle shares the simulation.
#[derive(Clone)]
pub struct Sim {
    inner: Rc<Inner>,
}

impl Sim {
    /// A fresh simulation at time zero whose only source of randomness is `seed`.
    pub fn new(seed: u64) -> Sim {
        Sim {
            inner: Rc::new(Inner {
                now: Cell::new(0),
                seq: Cell::new(0),
                timers: RefCell::new(BinaryHeap::new()),
                tasks: RefCell::new(Vec::new()),
                free_tasks: RefCell::new(Vec::new()),
                woken: Arc::new(std::sync::Mutex::new(Vec::new())),
                ready: RefCell::new(VecDeque::new()),
                rng: RefCell::new(ChaCha8Rng::seed_from_u64(seed)),
                hash: Cell::new(0xcbf2_9ce4_8422_2325),
                events: Cell::new(0),
                deadline: Cell::new(None),
            }),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Micros {
        self.inner.now.get()
    }

    /// The current virtual time in (fractional) seconds.
    pub fn now_secs(&self) -> f64 {
        self.now() as f64 / 1e6
    }

    /// Runs `f` with the simulation's random number generator: the one source of randomness
    /// shared by the network, the tester and the nodes' seeds.
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        f(&mut self.inner.rng.borrow_mut())
    }

    /// A uniform integer in `0..n` from the simulation's generator (Go's `rand.Intn(n)`).
    pub fn rand_below(&self, n: u64) -> u64 {
        self.with_rng(|r| r.random_range(0..n))
    }

    /// A uniform non-negative 63-bit integer (Go's `rand.Int()`).
    pub fn rand_int(&self) -> i64 {
        self.with_rng(|r| (r.random::<u64>() >> 1) as i64)
    }

    /// A fresh 64-bit seed for a node's own generator.
    pub fn rand_seed(&self) -> u64 {
        self.with_rng(|r| r.random::<u64>())
    }

    /// Folds an event into the run's fingerprint: two runs with the same seed must produce the
    /// same fingerprint, which is how determinism is tested.
    pub fn record(&self, kind: u8, node: u64, bytes: &[u8]) {
        let mut h = self.inner.hash.get();
        h = mix(h, self.now());
        h = mix(h, kind as u64);
        h = mix(h, node);
        h = mix(h, bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            h = mix(h, u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        h = mix(h, u64::from_le_bytes(last));
        self.inner.hash.set(h);
    }

    /// The fingerprint of every event recorded so far.
    pub fn fingerprint(&self) -> u64 {
        self.inner.hash.get()
    }

    /// How many scheduled events have run.
    pub fn events_run(&self) -> u64 {
        self.inner.events.get()
    }

    /// Stops [`Sim::block_on`] with [`SimError::Deadline`] once virtual time would pass `at`.
    pub fn set_deadline(&self, at: Micros) {
        self.inner.deadline.set(Some(at));
    }

    /// Runs `f` at virtual time `now + delay` (after everything already scheduled for that time).
    pub fn schedule(&self, delay: Micros, f: impl FnOnce() + 'static) {
        self.push(delay, Action::Run(Box::new(f)));
    }

    fn push(&self, delay: Micros, action: Action) {
        let seq = self.inner.seq.get();
        self.inner.seq.set(seq + 1);
        self.inner.timers.borrow_mut().push(Reverse(Scheduled {
            at: self.now() + delay,
            seq,
            action,
        }));
    }

    /// A future that completes after `delay` of virtual time.
    pub fn sleep(&self, delay: Micros) -> Sleep {
        Sleep {
            sim: self.clone(),
            until: self.now() + delay,
            armed: false,
        }
    }

    /// A future that completes after `ms` milliseconds of virtual time.
    pub fn sleep_ms(&self, ms: u64) -> Sleep {
        self.sleep(ms * MS)
    }

    /// Starts a task that runs concurrently with the caller (the simulator's "goroutine").
    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> JoinHandle<T> {
        let slot: Rc<RefCell<JoinState<T>>> = Rc::new(RefCell::new(JoinState {
            value: None,
            waiter: None,
        }));
        let out = slot.clone();
        let wrapped = async move {
            let v = future.await;
            let waiter = {
                let mut s = out.borrow_mut();
                s.value = Some(v);
                s.waiter.take()
            };
            if let Some(w) = waiter {
                w.wake();
            }
        };
        let id = match self.inner.free_tasks.borrow_mut().pop() {
            Some(id) => id,
            None => {
                let mut tasks = self.inner.tasks.borrow_mut();
                tasks.push(None);
                tasks.len() - 1
            }
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            queue: self.inner.woken.clone(),
        }));
        self.inner.tasks.borrow_mut()[id] = Some(Task {
            future: Some(Box::pin(wrapped)),
            waker,
        });
        self.inner.ready.borrow_mut().push_back(id);
        JoinHandle { slot }
    }

    /// Runs the simulation until `future` completes and returns its output. Other tasks still
    /// pending at that point are dropped (the test is over).
    ///
    /// Fails if nothing is left to run while `future` is still pending (a deadlock), if the
    /// deadline set with [`Sim::set_deadline`] passes, or if events keep running at one instant
    /// without time moving (a livelock).
    pub fn block_on<T: 'static>(
        &self,
        future: impl Future<Output = T> + 'static,
    ) -> Result<T, SimError> {
        let main = self.spawn(future);
        let mut at_instant: u64 = 0;
        let result = loop {
            self.run_ready();
            if let Some(v) = main.slot.borrow_mut().value.take() {
                break Ok(v);
            }
            let next = self.inner.timers.borrow_mut().pop();
            let Some(Reverse(ev)) = next else {
                break Err(SimError::Deadlock { at: self.now() });
            };
            if let Some(d) = self.inner.deadline.get() {
                if ev.at > d {
                    self.inner.now.set(d);
                    break Err(SimError::Deadline { at: d });
                }
            }
            if ev.at == self.now() {
                at_instant += 1;
                if at_instant > MAX_EVENTS_PER_INSTANT {
                    break Err(SimError::Livelock { at: self.now() });
                }
            } else {
                at_instant = 0;
            }
            self.inner.now.set(ev.at);
            self.inner.events.set(self.inner.events.get() + 1);
            match ev.action {
                Action::Wake(w) => w.wake(),
                Action::Run(f) => f(),
            }
        };
        self.shutdown();
        result
    }

    /// Drops every task and scheduled event. [`Sim::block_on`] does this when it returns; call it
    /// after a panic escaped `block_on`, since tasks that hold a handle to the simulation would
    /// otherwise keep it alive.
    pub fn shutdown(&self) {
        // Take them out first: their destructors may use the simulation.
        let timers = std::mem::take(&mut *self.inner.timers.borrow_mut());
        drop(timers);
        let tasks: Vec<_> = self.inner.tasks.borrow_mut().drain(..).collect();
        drop(tasks);
        self.inner.free_tasks.borrow_mut().clear();
        self.inner.ready.borrow_mut().clear();
        self.inner.woken.lock().expect("run queue poisoned").clear();
    }

    fn run_ready(&self) {
        loop {
            {
                let mut woken = self.inner.woken.lock().expect("run queue poisoned");
                if !woken.is_empty() {
                    self.inner.ready.borrow_mut().extend(woken.drain(..));
                }
            }
            let Some(id) = self.inner.ready.borrow_mut().pop_front() else {
                return;
            };
            // Take the future out so that the task may spawn or wake others while it runs.
            let taken = {
                let mut tasks = self.inner.tasks.borrow_mut();
                match tasks.get_mut(id).and_then(|t| t.as_mut()) {
                    Some(task) => task.future.take().map(|f| (f, task.waker.clone())),
                    None => None,
                }
            };
            let Some((mut future, waker)) = taken else {
                continue; // already finished, or a duplicate wake while it is being polled
            };
            let mut cx = Context::from_waker(&waker);
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(()) => {
                    self.inner.tasks.borrow_mut()[id] = None;
                    self.inner.free_tasks.borrow_mut().push(id);
                    // A stale wake for a recycled id only causes one spurious poll, which every
                    // future here tolerates.
                }
                Poll::Pending => {
                    if let Some(Some(task)) = self.inner.tasks.borrow_mut().get_mut(id) {
                        task.future = Some(future);
                    }
                }
            }
        }
    }
}

fn mix(h: u64, v: u64) -> u64 {
    // One round of a multiply-xorshift mixer: cheap, and any change in any event changes the result.
    let x = (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

struct JoinState<T> {
    value: Option<T>,
    waiter: Option<Waker>,
}

/// The result of a spawned task, to be awaited.
pub struct JoinHandle<T> {
    slot: Rc<RefCell<JoinState<T>>>,
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.slot.borrow().value.is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        poll_slot(&self.slot, cx)
    }
}

/// A future that completes at a virtual instant; see [`Sim::sleep`].
pub struct Sleep {
    sim: Sim,
    until: Micros,
    armed: bool,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sim.now() >= self.until {
            return Poll::Ready(());
        }
        if !self.armed {
            self.armed = true;
            let delay = self.until - self.sim.now();
            self.sim.push(delay, Action::Wake(cx.waker().clone()));
        }
        Poll::Pending
    }
}

/// A one-shot channel: the receiving side is a future, the sending side a plain call, so a
/// simulator callback can complete a task's wait.
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let slot = Rc::new(RefCell::new(JoinState {
        value: None,
        waiter: None,
    }));
    (
        OneshotSender { slot: slot.clone() },
        OneshotReceiver { slot },
    )
}

/// The sending half of [`oneshot`].
pub struct OneshotSender<T> {
    slot: Rc<RefCell<JoinState<T>>>,
}

impl<T> OneshotSender<T> {
    /// Completes the receiver with `value`.
    pub fn send(self, value: T) {
        let waiter = {
            let mut s = self.slot.borrow_mut();
            s.value = Some(value);
            s.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

/// Takes the value out of a shared slot, or registers the task to be woken when it is filled.
fn poll_slot<T>(slot: &RefCell<JoinState<T>>, cx: &mut Context<'_>) -> Poll<T> {
    let mut s = slot.borrow_mut();
    match s.value.take() {
        Some(v) => Poll::Ready(v),
        None => {
            s.waiter = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// The receiving half of [`oneshot`].
pub struct OneshotReceiver<T> {
    slot: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for OneshotReceiver<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        poll_slot(&self.slot, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_advance_virtual_time_in_order() {
        let sim = Sim::new(1);
        let log = Rc::new(RefCell::new(Vec::new()));
        let s = sim.clone();
        let l = log.clone();
        let out = sim
            .block_on(async move {
                let mut hs = Vec::new();
                for d in [30u64, 10, 20, 10] {
                    let s2 = s.clone();
                    let l2 = l.clone();
                    hs.push(s.spawn(async move {
                        s2.sleep_ms(d).await;
                        l2.borrow_mut().push((d, s2.now()));
                        d
                    }));
                }
                let mut sum = 0;
                for h in hs {
                    sum += h.await;
                }
                sum
            })
            .unwrap();
        assert_eq!(out, 70);
        assert_eq!(
            *log.borrow(),
            vec![(10, 10 * MS), (10, 10 * MS), (20, 20 * MS), (30, 30 * MS)]
        );
        assert_eq!(sim.now(), 30 * MS);
    }

    #[test]
    fn deadlock_and_deadline_are_reported() {
        let sim = Sim::new(1);
        let (_tx, rx) = oneshot::<()>();
        assert!(matches!(sim.block_on(rx), Err(SimError::Deadlock { .. })));
        let sim = Sim::new(1);
        sim.set_deadline(5 * MS);
        let s = sim.clone();
        assert!(matches!(
            sim.block_on(async move { s.sleep_ms(10).await }),
            Err(SimError::Deadline { .. })
        ));
    }

    #[test]
    fn same_seed_same_randomness() {
        let a = Sim::new(7);
        let b = Sim::new(7);
        let c = Sim::new(8);
        let va: Vec<_> = (0..5).map(|_| a.rand_int()).collect();
        let vb: Vec<_> = (0..5).map(|_| b.rand_int()).collect();
        let vc: Vec<_> = (0..5).map(|_| c.rand_int()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        assert!(va.iter().all(|v| *v >= 0));
    }
}
