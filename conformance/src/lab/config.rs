//! The tester harness (`specs/lab-tester.md`, `## Harness`; Go's `config.go`): the cluster, its
//! network and persisters, the applier's record of what each server applied, and the helpers the
//! tests call.
//!
//! Every helper that sleeps is `async`; every failure is Go's `t.Fatalf`, a panic that the runner
//! ([`super::runner`]) catches and reports with the test's name and seed.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use raft::{ConfChange, ConfChangeRefused};

use super::adapter::{self, Instance};
use super::cmd::Cmd;
use super::persister::Persister;
use super::runner;
use crate::sim::{EndId, Micros, Network, Sim, MS};
use crate::trace::format::{Event, MsgId};
use crate::trace::Recorder;

/// The per-test limit of real (here: virtual) time, from `make_config`.
pub const TEST_TIME_LIMIT: Micros = 120_000 * MS;

/// Go's `RaftElectionTimeout`, in milliseconds: the tester's unit of "one election time".
pub const RAFT_ELECTION_TIMEOUT_MS: u64 = 1000;

/// Go's `SnapShotInterval`: the snapshot applier snapshots after every index `i` with
/// `(i + 1) % SNAPSHOT_INTERVAL == 0`.
pub const SNAPSHOT_INTERVAL: u64 = 10;

/// Go's `MAXLOGSIZE`: the most persisted Raft state (snapshot excluded) any server may hold in
/// the 2D install tests, in bytes.
pub const MAX_LOG_SIZE: usize = 2000;

/// Fails the running test (Go's `t.Fatalf`): unwinds to the runner, which reports the message
/// with the test's name and seed. (`resume_unwind` skips the panic hook: the runner prints.)
pub fn fatal(msg: impl Into<String>) -> ! {
    std::panic::resume_unwind(Box::new(runner::Failure(msg.into())))
}

/// The counters `begin` records and `end` reports against.
#[derive(Default, Clone, Copy)]
struct Begin {
    t0: Micros,
    rpcs0: u64,
    bytes0: u64,
    max_index0: u64,
}

/// The shared state behind [`Config`]; the adapter's methods live in `adapter.rs`.
pub(crate) struct Inner {
    pub(crate) sim: Sim,
    pub(crate) net: Network,
    pub(crate) n: usize,
    /// Servers `0..voters` are the first configuration's voters; the others join.
    pub(crate) voters: usize,
    pub(crate) raft_config: raft::Config,
    /// `rafts[i]`: the running instance, `None` when crashed.
    pub(crate) rafts: Vec<RefCell<Option<Instance>>>,
    connected: RefCell<Vec<bool>>,
    saved: RefCell<Vec<Option<Persister>>>,
    /// `endnames[i][j]`: the end server `i` uses to reach server `j`.
    pub(crate) endnames: RefCell<Vec<Vec<EndId>>>,
    /// `logs[i][index]`: the command server `i` applied at `index`.
    logs: RefCell<Vec<Vec<Option<Cmd>>>>,
    /// Whether the servers run with the snapshot applier (Go's `applierSnap`) instead of the plain
    /// one.
    snapshot: bool,
    /// `lastApplied[i]`: the last index the snapshot applier saw server `i` apply.
    last_applied: RefCell<Vec<u64>>,
    max_index: Cell<u64>,
    finished: Cell<bool>,
    begin: Cell<Begin>,
    start: Micros,
    next_generation: Cell<u64>,
    quiet: bool,
    /// `LAB_TRACE=<ms>`: print every RPC and periodic node states from that virtual time on.
    pub(crate) trace_from: Option<Micros>,
    /// Records the run's trace, when the runner asked for one.
    pub(crate) recorder: Option<Arc<Recorder>>,
    /// The message sequence number each server's next instance starts from (ids stay unique across
    /// restarts).
    pub(crate) next_seq: RefCell<Vec<u64>>,
    /// The reply each request produced, by the request's id, while its call is in the network: when the
    /// call fails, the trace says which message was lost (the request or the reply). Only looked up.
    pub(crate) replies: RefCell<HashMap<MsgId, Option<MsgId>>>,
}

/// The tester's `config`: one cluster of `n` Raft servers on a simulated labrpc network. Cloning
/// the handle shares the cluster (for the tests' concurrent clients).
#[derive(Clone)]
pub struct Config {
    inner: Rc<Inner>,
}

impl Config {
    /// `make_config(t, n, unreliable, snapshot=false)`: `n` servers, all started and connected.
    pub fn make(sim: &Sim, n: usize, unreliable: bool) -> Config {
        Config::make_with(sim, n, unreliable, false)
    }

    /// `make_config(t, n, unreliable, snapshot)`: with `snapshot`, every server (at creation and
    /// at each `start1`) runs with the snapshot applier, which asks Raft for a snapshot every
    /// [`SNAPSHOT_INTERVAL`] indexes.
    pub fn make_with(sim: &Sim, n: usize, unreliable: bool, snapshot: bool) -> Config {
        Config::make_raft(sim, n, unreliable, snapshot, raft::Config::default())
    }

    /// [`Config::make_with`], with the nodes configured by `raft_config` (not a Go tester function: for
    /// the tests of this port's own, which compare configurations).
    pub fn make_raft(
        sim: &Sim,
        n: usize,
        unreliable: bool,
        snapshot: bool,
        raft_config: raft::Config,
    ) -> Config {
        Config::make_members(sim, n, n, unreliable, snapshot, raft_config)
    }

    /// [`Config::make_raft`] in which only servers `0..voters` make the first configuration: the others
    /// start with none, to be added ([`Config::change_membership`]). Not a Go tester function: for this
    /// port's membership tests.
    pub fn make_members(
        sim: &Sim,
        n: usize,
        voters: usize,
        unreliable: bool,
        snapshot: bool,
        raft_config: raft::Config,
    ) -> Config {
        assert!((1..=n).contains(&voters), "1 to {n} voters, not {voters}");
        let net = Network::new(sim);
        net.set_reliable(!unreliable);
        // Calls to disconnected peers take 0-7 s to fail: this is what punishes a leader that
        // sends synchronously.
        net.set_long_delays(true);
        let inner = Rc::new(Inner {
            sim: sim.clone(),
            net,
            n,
            voters,
            raft_config: raft_config.clone(),
            rafts: (0..n).map(|_| RefCell::new(None)).collect(),
            connected: RefCell::new(vec![false; n]),
            saved: RefCell::new(vec![None; n]),
            endnames: RefCell::new(vec![Vec::new(); n]),
            logs: RefCell::new(vec![Vec::new(); n]),
            snapshot,
            last_applied: RefCell::new(vec![0; n]),
            max_index: Cell::new(0),
            finished: Cell::new(false),
            begin: Cell::new(Begin::default()),
            start: sim.now(),
            next_generation: Cell::new(0),
            quiet: runner::quiet(),
            trace_from: std::env::var("LAB_TRACE")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(|ms| ms * MS),
            recorder: runner::new_recorder(n, voters, &raft_config),
            next_seq: RefCell::new(vec![0; n]),
            replies: RefCell::new(HashMap::new()),
        });
        let cfg = Config { inner };
        for i in 0..n {
            cfg.start1(i);
        }
        for i in 0..n {
            cfg.connect(i);
        }
        cfg.inner.tick_all();
        cfg
    }

    /// The simulation this cluster runs in.
    pub fn sim(&self) -> &Sim {
        &self.inner.sim
    }

    /// The number of servers.
    pub fn n(&self) -> usize {
        self.inner.n
    }

    /// Sleeps `ms` milliseconds of virtual time.
    pub async fn sleep_ms(&self, ms: u64) {
        self.inner.sim.sleep_ms(ms).await
    }

    /// Go's `rand.Int()`: a non-negative 63-bit integer from the simulation's generator.
    pub fn rand_int(&self) -> i64 {
        self.inner.sim.rand_int()
    }

    /// `crash1(i)`: disconnect, delete the labrpc server, kill the instance, and keep its last
    /// persisted state in a fresh persister.
    pub fn crash1(&self, i: usize) {
        let inner = &self.inner;
        if inner.tracing() {
            inner.trace(format_args!("tester: crash1({i})"));
        }
        self.disconnect(i);
        inner.net.delete_server(i);
        {
            let mut saved = inner.saved.borrow_mut();
            // A fresh persister, in case the old instance keeps updating the old one.
            if let Some(p) = saved[i].as_ref() {
                saved[i] = Some(p.copy());
            }
        }
        // Kill(): the instance leaves its slot and is never driven again.
        let killed = inner.rafts[i].borrow_mut().take();
        if let Some(killed) = killed {
            inner.next_seq.borrow_mut()[i] = killed.node.next_seq();
            inner.record(Event::Crash { node: i as u64 });
        }
        let mut saved = inner.saved.borrow_mut();
        if let Some(p) = saved[i].as_ref() {
            let fresh = Persister::new();
            fresh.save(p.read_raft_state(), p.read_snapshot());
            saved[i] = Some(fresh);
        }
    }

    /// `start1(i)`: (re)start server `i` with fresh ends, a copy of its persister and a new
    /// labrpc server. The server is left disconnected.
    pub fn start1(&self, i: usize) {
        self.crash1(i);
        let inner = &self.inner;
        let n = inner.n;
        let ends: Vec<EndId> = (0..n)
            .map(|j| {
                let e = inner.net.make_end();
                inner.net.connect(e, j);
                e
            })
            .collect();
        inner.endnames.borrow_mut()[i] = ends;
        inner.last_applied.borrow_mut()[i] = 0;
        let persister = {
            let mut saved = inner.saved.borrow_mut();
            let p = match saved[i].as_ref() {
                Some(p) => p.copy(),
                None => Persister::new(),
            };
            saved[i] = Some(p.clone());
            p
        };
        let snapshot = persister.read_snapshot();
        if !snapshot.is_empty() {
            // Mimic the KV server and process the snapshot now (Go: "ideally Raft should send it
            // up on applyCh...").
            if let Err(e) = inner.ingest_snap(i, &snapshot, None) {
                fatal(e);
            }
        }
        let generation = inner.next_generation.get();
        inner.next_generation.set(generation + 1);
        let instance = inner.make_instance(i, persister, generation);
        *inner.rafts[i].borrow_mut() = Some(instance);
        let weak: Weak<Inner> = Rc::downgrade(inner);
        inner.net.add_server(
            i,
            Rc::new(move |req: Vec<u8>| {
                weak.upgrade()
                    .and_then(|inner| inner.handle(i, generation, req))
            }),
        );
    }

    /// `connect(i)`: enable the ends between `i` and every connected server (itself included).
    pub fn connect(&self, i: usize) {
        let inner = &self.inner;
        if inner.tracing() {
            inner.trace(format_args!("tester: connect({i})"));
        }
        inner.record(Event::Connect { node: i as u64 });
        let mut connected = inner.connected.borrow_mut();
        connected[i] = true;
        let endnames = inner.endnames.borrow();
        for j in 0..inner.n {
            if connected[j] {
                if let Some(&e) = endnames[i].get(j) {
                    inner.net.enable(e, true);
                }
                if let Some(&e) = endnames[j].get(i) {
                    inner.net.enable(e, true);
                }
            }
        }
    }

    /// `disconnect(i)`: disable every end from and to `i`.
    pub fn disconnect(&self, i: usize) {
        let inner = &self.inner;
        if inner.tracing() {
            inner.trace(format_args!("tester: disconnect({i})"));
        }
        inner.record(Event::Disconnect { node: i as u64 });
        inner.connected.borrow_mut()[i] = false;
        let endnames = inner.endnames.borrow();
        for j in 0..inner.n {
            if let Some(&e) = endnames[i].get(j) {
                inner.net.enable(e, false);
            }
            if let Some(&e) = endnames[j].get(i) {
                inner.net.enable(e, false);
            }
        }
    }

    /// Cuts (or mends) the link between servers `i` and `j` only, both ways: a partial partition (not a
    /// Go tester function). A mended link carries calls again only between connected servers.
    pub fn cut(&self, i: usize, j: usize, cut: bool) {
        let inner = &self.inner;
        if inner.tracing() {
            inner.trace(format_args!("tester: cut({i}, {j}, {cut})"));
        }
        let connected = inner.connected.borrow();
        let endnames = inner.endnames.borrow();
        let enabled = !cut && connected[i] && connected[j];
        for (a, b) in [(i, j), (j, i)] {
            if let Some(&e) = endnames[a].get(b) {
                inner.net.enable(e, enabled);
            }
        }
    }

    /// Whether server `i` is connected.
    pub fn is_connected(&self, i: usize) -> bool {
        self.inner.connected.borrow()[i]
    }

    /// Whether server `i` is running (`rafts[i] != nil`).
    pub fn is_running(&self, i: usize) -> bool {
        self.inner.rafts[i].borrow().is_some()
    }

    /// `rafts[i].Start(cmd)`: (index, term, isLeader). Panics if server `i` is crashed (a nil
    /// dereference in Go).
    pub fn start(&self, i: usize, cmd: &Cmd) -> (u64, u64, bool) {
        let r = self.inner.propose(i, cmd.encode());
        if self.inner.tracing() && r.2 {
            self.inner.trace(format_args!(
                "tester: Start({cmd}) on {i} -> index {} term {}",
                r.0, r.1
            ));
        }
        r
    }

    /// `rafts[i].GetState()`: (term, isLeader). Panics if server `i` is crashed.
    pub fn get_state(&self, i: usize) -> (u64, bool) {
        self.inner
            .get_state(i)
            .unwrap_or_else(|| panic!("GetState() on crashed server {i}"))
    }

    /// `setunreliable(b)`.
    pub fn set_unreliable(&self, unreliable: bool) {
        self.inner.net.set_reliable(!unreliable);
    }

    /// `setlongreordering(b)`.
    pub fn set_long_reordering(&self, yes: bool) {
        self.inner.net.set_long_reordering(yes);
    }

    /// `rpcCount(i)`: requests dispatched to server `i`'s current labrpc server.
    pub fn rpc_count(&self, i: usize) -> u64 {
        self.inner.net.count(i)
    }

    /// `rpcTotal()`: calls that entered the network.
    pub fn rpc_total(&self) -> u64 {
        self.inner.net.total_count()
    }

    /// `bytesTotal()`.
    pub fn bytes_total(&self) -> u64 {
        self.inner.net.total_bytes()
    }

    /// `LogSize()`: the largest Raft state any server has persisted.
    pub fn log_size(&self) -> usize {
        self.inner
            .saved
            .borrow()
            .iter()
            .flatten()
            .map(|p| p.raft_state_size())
            .max()
            .unwrap_or(0)
    }

    /// Whether the test has finished (`cleanup` ran).
    pub fn finished(&self) -> bool {
        self.inner.finished.get()
    }

    /// `checkOneLeader()`: a leader must exist among the connected servers within ~5 s.
    pub async fn check_one_leader(&self) -> usize {
        for _ in 0..10 {
            let ms = 450 + (self.rand_int() % 100) as u64;
            self.sleep_ms(ms).await;
            let mut leaders: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for i in 0..self.n() {
                if self.is_connected(i) {
                    let (term, leader) = self.get_state(i);
                    if leader {
                        leaders.entry(term).or_default().push(i);
                    }
                }
            }
            for (term, ls) in &leaders {
                if ls.len() > 1 {
                    fatal(format!("term {} has {} (>1) leaders", term, ls.len()));
                }
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return ls[0];
            }
        }
        fatal("expected one leader, got none")
    }

    /// `checkTerms()`: every connected server reports the same term, which is returned (-1 if
    /// none is connected).
    pub fn check_terms(&self) -> i64 {
        let mut term: i64 = -1;
        for i in 0..self.n() {
            if self.is_connected(i) {
                let xterm = self.get_state(i).0 as i64;
                if term == -1 {
                    term = xterm;
                } else if term != xterm {
                    fatal("servers disagree on term");
                }
            }
        }
        term
    }

    /// `checkNoLeader()`: no connected server claims to be leader.
    pub fn check_no_leader(&self) {
        for i in 0..self.n() {
            if self.is_connected(i) && self.get_state(i).1 {
                fatal(format!(
                    "expected no leader among connected servers, but {i} claims to be leader"
                ));
            }
        }
    }

    /// `nCommitted(index)`: how many servers applied `index`, and the value they agree on.
    pub fn n_committed(&self, index: u64) -> (usize, Option<Cmd>) {
        let logs = self.inner.logs.borrow();
        let mut count = 0;
        let mut cmd: Option<&Cmd> = None;
        for log in logs.iter() {
            if let Some(Some(cmd1)) = log.get(index as usize) {
                if let Some(c) = cmd {
                    if c != cmd1 {
                        fatal(format!(
                            "committed values do not match: index {index}, {c}, {cmd1}"
                        ));
                    }
                }
                count += 1;
                cmd = Some(cmd1);
            }
        }
        (count, cmd.cloned())
    }

    /// `wait(index, n, startTerm)`: polls until `n` servers applied `index`; `None` (Go's -1) if
    /// some server moved past `start_term` meanwhile (when `start_term > -1`).
    pub async fn wait(&self, index: u64, n: usize, start_term: i64) -> Option<Cmd> {
        let mut to = 10;
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index);
            if nd >= n {
                break;
            }
            self.sleep_ms(to).await;
            if to < 1000 {
                to *= 2;
            }
            if start_term > -1 {
                for j in 0..self.n() {
                    if let Some((t, _)) = self.inner.get_state(j) {
                        if t as i64 > start_term {
                            return None;
                        }
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index);
        if nd < n {
            fatal(format!("only {nd} decided for index {index}; wanted {n}"));
        }
        cmd
    }

    /// `one(cmd, expectedServers, retry)`: submits `cmd` until it is committed by at least
    /// `expected_servers` servers; returns its index.
    pub async fn one(&self, cmd: impl Into<Cmd>, expected_servers: usize, retry: bool) -> u64 {
        let cmd: Cmd = cmd.into();
        let t0 = self.inner.sim.now();
        let mut starts = 0;
        while self.inner.sim.now() - t0 < 10_000 * MS && !self.finished() {
            // Try all the servers, maybe one is the leader.
            let mut index = None;
            for _ in 0..self.n() {
                starts = (starts + 1) % self.n();
                if self.is_connected(starts) && self.is_running(starts) {
                    let (index1, _, ok) = self.start(starts, &cmd);
                    if ok {
                        index = Some(index1);
                        break;
                    }
                }
            }
            match index {
                Some(index) => {
                    // Somebody claimed to be the leader and to have submitted our command; wait a
                    // while for agreement.
                    if self.agreed(index, &cmd, expected_servers).await {
                        return index;
                    }
                    if !retry {
                        fatal(format!("one({cmd}) failed to reach agreement"));
                    }
                }
                None => self.sleep_ms(50).await,
            }
        }
        if !self.finished() {
            fatal(format!("one({cmd}) failed to reach agreement"));
        }
        0
    }

    /// Proposes a membership change on server `i` (`Node::propose_conf_change`), as [`Config::start`]
    /// proposes a command: where the change will be, if it commits, or why the server refused it. Panics if
    /// the server is crashed. (Not a Go tester function: for this port's membership tests.)
    pub fn start_change(
        &self,
        i: usize,
        change: ConfChange,
    ) -> Result<(u64, u64), ConfChangeRefused> {
        adapter::change_config(&self.inner, i, change)
            .unwrap_or_else(|| panic!("start_change() on crashed server {i}"))
            .0
    }

    /// Server `i`'s configuration in force, and whether it is committed there. Panics if the server is
    /// crashed. (Not a Go tester function: for this port's membership tests.)
    pub fn membership(&self, i: usize) -> (raft::Membership, bool) {
        let (membership, index, commit) = adapter::membership(&*self.inner, i)
            .unwrap_or_else(|| panic!("membership() on crashed server {i}"));
        (membership, index <= commit)
    }

    /// Submits a membership change to whichever server leads, as [`Config::one`] submits a command, until
    /// it is committed by at least `expected_servers` servers; returns its index. A leader that is not
    /// ready for it (the last change is not committed, or nothing of its term is) is asked again. A change
    /// that is no step from the leader's configuration fails the test, unless an earlier attempt made it.
    /// (Not a Go tester function: for this port's membership tests.)
    pub async fn change_membership(&self, change: ConfChange, expected_servers: usize) -> u64 {
        let t0 = self.inner.sim.now();
        let mut starts = 0;
        while self.inner.sim.now() - t0 < 10_000 * MS && !self.finished() {
            let mut appended = None;
            for _ in 0..self.n() {
                starts = (starts + 1) % self.n();
                if !self.is_connected(starts) || !self.is_running(starts) {
                    continue;
                }
                let (answer, target) = adapter::change_config(&self.inner, starts, change.clone())
                    .expect("the server runs");
                match answer {
                    Ok((index, _)) => {
                        let target = target.expect("an accepted change is one step");
                        appended = Some((index, Cmd::config(&target)));
                        break;
                    }
                    Err(ConfChangeRefused::NotLeader(_)) => {}
                    Err(ConfChangeRefused::ChangePending | ConfChangeRefused::NoCommitInTerm) => {
                        break
                    }
                    Err(ConfChangeRefused::Invalid(e)) => {
                        // Made already, by an earlier attempt whose entry has not committed yet, or
                        // has since?
                        let (membership, index, commit) =
                            adapter::membership(&*self.inner, starts).expect("the server runs");
                        if !change.is_made_in(&membership) {
                            fatal(format!(
                                "change_membership({change:?}) refused by {starts}: {e} (its \
                                 configuration: {})",
                                Cmd::config(&membership)
                            ));
                        }
                        if index <= commit {
                            return index;
                        }
                        appended = Some((index, Cmd::config(&membership)));
                        break;
                    }
                }
            }
            match appended {
                Some((index, cmd)) => {
                    if self.agreed(index, &cmd, expected_servers).await {
                        return index;
                    }
                }
                None => self.sleep_ms(50).await,
            }
        }
        if !self.finished() {
            fatal(format!(
                "change_membership({change:?}) failed to reach agreement"
            ));
        }
        0
    }

    /// Asks whichever server leads to hand its leadership to `target`, and waits until `target` leads,
    /// asking again while it does not; fails the test if it does not within 10 s. (Not a Go tester
    /// function: for this port's tests.)
    pub async fn transfer_leader(&self, target: usize) {
        let t0 = self.inner.sim.now();
        while self.inner.sim.now() - t0 < 10_000 * MS && !self.finished() {
            if self.is_running(target) && self.get_state(target).1 {
                return;
            }
            for i in 0..self.n() {
                if self.is_connected(i) && self.is_running(i) && self.get_state(i).1 {
                    if let Some(Err(refused)) =
                        adapter::transfer_leader(&self.inner, i, target as u64)
                    {
                        if !matches!(refused, raft::TransferRefused::NotLeader(_)) {
                            fatal(format!("transfer to {target} refused by {i}: {refused}"));
                        }
                    }
                }
            }
            // A transfer takes the target's election: give it time before asking again.
            for _ in 0..25 {
                self.sleep_ms(20).await;
                if self.is_running(target) && self.get_state(target).1 {
                    return;
                }
            }
        }
        if !self.finished() {
            fatal(format!("server {target} did not come to lead within 10 s"));
        }
    }

    /// Whether at least `expected_servers` servers (one at least) apply `cmd` at `index` within 2 s, as
    /// `one` waits for agreement.
    async fn agreed(&self, index: u64, cmd: &Cmd, expected_servers: usize) -> bool {
        let t1 = self.inner.sim.now();
        while self.inner.sim.now() - t1 < 2_000 * MS {
            let (nd, cmd1) = self.n_committed(index);
            if nd > 0 && nd >= expected_servers && cmd1.as_ref() == Some(cmd) {
                return true;
            }
            self.sleep_ms(20).await;
        }
        false
    }

    /// `begin(description)`: prints the title and records the counters `end` reports against.
    pub fn begin(&self, description: &str) {
        if !self.inner.quiet {
            println!("{description} ...");
        }
        self.inner.begin.set(Begin {
            t0: self.inner.sim.now(),
            rpcs0: self.rpc_total(),
            bytes0: self.bytes_total(),
            max_index0: self.inner.max_index.get(),
        });
    }

    /// `end()`: checks the time limit and prints the "Passed" line with the test's figures.
    pub fn end(&self) {
        self.check_timeout();
        let b = self.inner.begin.get();
        let t = (self.inner.sim.now() - b.t0) as f64 / 1e6;
        let nrpc = self.rpc_total() - b.rpcs0;
        let nbytes = self.bytes_total() - b.bytes0;
        let ncmds = self.inner.max_index.get() - b.max_index0;
        if !self.inner.quiet {
            println!(
                "  ... Passed --  {t:4.1}  {} {nrpc:4} {nbytes:7} {ncmds:4}",
                self.n()
            );
        }
    }

    /// `cleanup()`: makes running `one()`s return, kills every instance, closes the network.
    pub fn cleanup(&self) {
        self.inner.finished.set(true);
        for i in 0..self.n() {
            self.inner.rafts[i].borrow_mut().take();
        }
        self.inner.net.cleanup();
        self.check_timeout();
    }

    fn check_timeout(&self) {
        if self.inner.sim.now() - self.inner.start > TEST_TIME_LIMIT {
            fatal("test took longer than 120 seconds");
        }
    }
}

impl Inner {
    /// The applier of server `i` (Go's `applier`, or `applierSnap` in a snapshot config), run
    /// synchronously when the server releases a committed command (`CommandValid`). Returns the
    /// snapshot the snapshot applier wants the server to take: `rf.Snapshot(index, bytes)`, which
    /// the adapter calls right after this returns, as Go's applier does before it reads the next
    /// message.
    pub(crate) fn apply_command(&self, i: usize, index: u64, command: &[u8]) -> Option<Vec<u8>> {
        let v = Cmd::decode(command).unwrap_or_else(|e| {
            fatal(format!(
                "apply error: server {i} applied an undecodable command: {e}"
            ))
        });
        self.apply_cmd(i, index, v)
    }

    /// The applier's checks of `v`, which server `i` applied at `index` (a command, or a configuration
    /// entry as [`Cmd::config`] describes it), and the snapshot the snapshot applier wants.
    pub(crate) fn apply_cmd(&self, i: usize, index: u64, v: Cmd) -> Option<Vec<u8>> {
        if !self.snapshot {
            let (mut err_msg, prev_ok) = self.check_logs(i, index, v);
            if index > 1 && !prev_ok {
                err_msg = Some(format!("server {i} apply out of order {index}"));
            }
            if let Some(msg) = err_msg {
                fatal(format!("apply error: {msg}"));
            }
            return None;
        }

        let expected = self.last_applied.borrow()[i] + 1;
        let mut err_msg = None;
        if index != expected {
            err_msg = Some(format!(
                "server {i} apply out of order, expected index {expected}, got {index}"
            ));
        }
        if err_msg.is_none() {
            let prev_ok;
            (err_msg, prev_ok) = self.check_logs(i, index, v);
            if index > 1 && !prev_ok {
                err_msg = Some(format!("server {i} apply out of order {index}"));
            }
        }
        self.last_applied.borrow_mut()[i] = index;
        if let Some(msg) = err_msg {
            fatal(format!("apply error: {msg}"));
        }
        (index + 1).is_multiple_of(SNAPSHOT_INTERVAL).then(|| {
            // The tester's snapshot format: the index, then every command through it (element 0
            // is nil).
            let logs = self.logs.borrow();
            let xlog: Vec<Option<Cmd>> = (0..=index as usize)
                .map(|j| logs[i].get(j).cloned().flatten())
                .collect();
            raft::encode(&(index, xlog))
        })
    }

    /// `checkLogs`: records `v` as server `i`'s command at `index` and reports a different
    /// command any server applied there, and whether server `i` had applied `index - 1`.
    fn check_logs(&self, i: usize, index: u64, v: Cmd) -> (Option<String>, bool) {
        let mut logs = self.logs.borrow_mut();
        let idx = index as usize;
        let mut err_msg = None;
        for (j, log) in logs.iter().enumerate() {
            if let Some(Some(old)) = log.get(idx) {
                if *old != v {
                    // Some server has already committed a different value for this entry!
                    err_msg = Some(format!(
                        "commit index={index} server={i} {v} != server={j} {old}"
                    ));
                }
            }
        }
        let log = &mut logs[i];
        let prev_ok = idx >= 1 && matches!(log.get(idx - 1), Some(Some(_)));
        if log.len() <= idx {
            log.resize(idx + 1, None);
        }
        log[idx] = Some(v);
        if index > self.max_index.get() {
            self.max_index.set(index);
        }
        (err_msg, prev_ok)
    }

    /// The applier of server `i` for a snapshot Raft delivered (`SnapshotValid`). The plain
    /// applier ignores it; the snapshot applier ingests it.
    pub(crate) fn apply_snapshot(&self, i: usize, index: u64, snapshot: &[u8]) {
        if !self.snapshot {
            return;
        }
        if let Err(e) = self.ingest_snap(i, snapshot, Some(index)) {
            fatal(format!("apply error: {e}"));
        }
    }

    /// `ingestSnap(i, snapshot, index)`: replaces the record of what server `i` applied by the
    /// snapshot's contents. `index` is the `SnapshotIndex` Raft delivered it with (`None`: Go's
    /// -1, a snapshot read from the persister at start1). A nil or undecodable snapshot is fatal
    /// at once (Go's `log.Fatalf`); a mismatched index is returned as the applier's error.
    fn ingest_snap(&self, i: usize, snapshot: &[u8], index: Option<u64>) -> Result<(), String> {
        if snapshot.is_empty() {
            fatal("nil snapshot");
        }
        let Ok((last_included_index, xlog)) = raft::decode::<(u64, Vec<Option<Cmd>>)>(snapshot)
        else {
            fatal("snapshot decode error");
        };
        if index.is_some_and(|index| index != last_included_index) {
            return Err(format!("server {i} snapshot doesn't match m.SnapshotIndex"));
        }
        self.logs.borrow_mut()[i] = xlog;
        self.last_applied.borrow_mut()[i] = last_included_index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn failure_of(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("should fail");
        payload
            .downcast_ref::<runner::Failure>()
            .map(|f| f.0.clone())
            .expect("a tester failure")
    }

    #[test]
    fn applier_rejects_a_different_command_at_a_committed_index() {
        let sim = Sim::new(1);
        let cfg = Config::make(&sim, 3, false);
        cfg.inner.apply_command(0, 1, &Cmd::Int(5).encode());
        cfg.inner.apply_command(2, 1, &Cmd::Int(5).encode());
        let msg = failure_of(|| {
            cfg.inner.apply_command(1, 1, &Cmd::Int(6).encode());
        });
        assert_eq!(msg, "apply error: commit index=1 server=1 6 != server=2 5");
    }

    #[test]
    fn applier_rejects_gaps_but_accepts_reapplying_after_restart() {
        let sim = Sim::new(1);
        let cfg = Config::make(&sim, 3, false);
        cfg.inner.apply_command(0, 1, &Cmd::Int(5).encode());
        cfg.inner.apply_command(0, 2, &Cmd::Int(7).encode());
        // A restarted server re-applies from index 1: allowed.
        cfg.inner.apply_command(0, 1, &Cmd::Int(5).encode());
        assert_eq!(cfg.n_committed(2), (1, Some(Cmd::Int(7))));
        let msg = failure_of(|| {
            cfg.inner.apply_command(1, 2, &Cmd::Int(7).encode());
        });
        assert_eq!(msg, "apply error: server 1 apply out of order 2");
    }

    #[test]
    fn n_committed_counts_every_server_and_crash_keeps_the_record() {
        let sim = Sim::new(1);
        let cfg = Config::make(&sim, 3, false);
        cfg.inner.apply_command(0, 1, &Cmd::Int(5).encode());
        cfg.inner.apply_command(1, 1, &Cmd::Int(5).encode());
        cfg.crash1(1);
        assert!(!cfg.is_running(1) && !cfg.is_connected(1));
        assert_eq!(cfg.n_committed(1), (2, Some(Cmd::Int(5))));
        cfg.start1(1);
        assert!(
            cfg.is_running(1) && !cfg.is_connected(1),
            "start1 leaves the server disconnected"
        );
        assert_eq!(cfg.n_committed(1), (2, Some(Cmd::Int(5))));
    }

    #[test]
    fn crash_hands_the_next_instance_a_copy_of_the_last_persisted_state() {
        let sim = Sim::new(1);
        let cfg = Config::make(&sim, 3, false);
        let old = cfg.inner.saved.borrow()[0].clone().expect("persister");
        old.save(vec![1, 2, 3], vec![]);
        cfg.crash1(0);
        // The killed instance writing to its old persister changes nothing for its successor.
        old.save(vec![9], vec![]);
        let now = cfg.inner.saved.borrow()[0].clone().expect("persister");
        assert_eq!(now.read_raft_state(), vec![1, 2, 3]);
    }

    /// The tester's snapshot of commands `1..=n` (valued `100 + index`).
    fn tester_snapshot(n: u64) -> Vec<u8> {
        let xlog: Vec<Option<Cmd>> = (0..=n)
            .map(|j| (j > 0).then_some(Cmd::Int(100 + j as i64)))
            .collect();
        raft::encode(&(n, xlog))
    }

    #[test]
    fn snapshot_applier_asks_for_a_snapshot_before_every_tenth_index_and_checks_order() {
        let sim = Sim::new(1);
        let cfg = Config::make_with(&sim, 3, false, true);
        for index in 1..=8 {
            assert_eq!(
                cfg.inner
                    .apply_command(0, index, &Cmd::Int(100 + index as i64).encode()),
                None
            );
        }
        let snapshot = cfg
            .inner
            .apply_command(0, 9, &Cmd::Int(109).encode())
            .expect("(9 + 1) % 10 == 0");
        assert_eq!(snapshot, tester_snapshot(9));
        let msg = failure_of(|| {
            cfg.inner.apply_command(0, 11, &Cmd::Int(111).encode());
        });
        assert_eq!(
            msg,
            "apply error: server 0 apply out of order, expected index 10, got 11"
        );
    }

    #[test]
    fn snapshot_applier_ingests_snapshots_and_checks_them() {
        let sim = Sim::new(1);
        let cfg = Config::make_with(&sim, 3, false, true);
        cfg.inner.apply_snapshot(1, 9, &tester_snapshot(9));
        assert_eq!(cfg.n_committed(9), (1, Some(Cmd::Int(109))));
        // Applying goes on after the snapshot's index, and only there.
        assert_eq!(
            cfg.inner.apply_command(1, 10, &Cmd::Int(110).encode()),
            None
        );
        let msg = failure_of(|| cfg.inner.apply_snapshot(1, 8, &tester_snapshot(9)));
        assert_eq!(
            msg,
            "apply error: server 1 snapshot doesn't match m.SnapshotIndex"
        );
        assert_eq!(
            failure_of(|| cfg.inner.apply_snapshot(1, 9, &[])),
            "nil snapshot"
        );
        assert_eq!(
            failure_of(|| cfg.inner.apply_snapshot(1, 9, &[7, 7, 7])),
            "snapshot decode error"
        );
        // The plain applier ignores snapshots (Go: neither CommandValid nor handled).
        let plain = Config::make(&sim, 3, false);
        plain.inner.apply_snapshot(0, 9, &[]);
    }

    #[test]
    fn start1_loads_the_persisted_snapshot_into_the_record() {
        let sim = Sim::new(1);
        let cfg = Config::make_with(&sim, 3, false, true);
        let state = raft::PersistentState {
            current_term: 1,
            voted_for: None,
            last_included_index: 19,
            last_included_term: 1,
            membership: raft::Membership::of_voters(0..3),
            log: vec![],
        };
        let saved = cfg.inner.saved.borrow()[2].clone().expect("persister");
        saved.save(raft::encode(&state), tester_snapshot(19));
        cfg.start1(2);
        assert_eq!(cfg.inner.last_applied.borrow()[2], 19);
        assert_eq!(cfg.n_committed(19), (1, Some(Cmd::Int(119))));
        let instance = cfg.inner.rafts[2].borrow();
        let node = &instance.as_ref().expect("running").node;
        assert_eq!((node.last_included_index(), node.commit_index()), (19, 19));
        assert_eq!(node.snapshot_data(), tester_snapshot(19));
    }
}
