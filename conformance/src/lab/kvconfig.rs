//! The Lab 3 tester harness (`specs/lab3-tester.md`, `## Harness`; Go's kvraft `config.go`): a
//! cluster of key-value servers, each a `KvServer` (`kvserver.rs`) beside a Raft
//! instance run by the lab adapter, the clerks with their own ends, partitions, crashes and
//! restarts with the persister, and the counters the tests report.
//!
//! Two labrpc networks carry the traffic, both on the one simulation and its one generator: the
//! Raft peers talk over the simulator's [`Network`] exactly as in Lab 2, and the clerks talk to
//! the servers over `ClerkNet`, labrpc for handlers that answer later (a server answers a write
//! once it is applied). Go has one network with both services on each server; the two share the
//! reliability setting and are switched, connected and cleaned up together, so the tests see one.
//!
//! Every helper that sleeps is `async`; every failure is Go's `t.Fatalf` ([`fatal`]).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use raft_kv::{Op, Output, Progress, Request, Response};

use super::adapter::{self, Harness, Instance, Parts, TICK};
use super::config::{fatal, TEST_TIME_LIMIT};
use super::kvserver::{self, KvCluster, KvServer, Respond};
use super::persister::Persister;
use super::runner;
use crate::sim::{oneshot, EndId, Micros, Network, OneshotReceiver, OneshotSender, Sim, MS};
use crate::trace::format::MsgId;
use crate::trace::Recorder;

/// Go's `electionTimeout` of the kvraft tests, in milliseconds: the tester's unit of "one election
/// time".
pub const ELECTION_TIMEOUT_MS: u64 = 1000;

/// How often labrpc looks whether the server of a call still waiting for its handler is dead.
const DEAD_CHECK: Micros = 100 * MS;

/// Event kinds of clerk calls, folded into the simulation's fingerprint (after the Raft network's).
mod event {
    pub const CALL: u8 = 11;
    pub const REPLY: u8 = 12;
    pub const FAIL: u8 = 13;
}

/// A key-value server's RPC handler: it takes the request and answers, now or later, through the
/// [`Respond`] it is given.
type KvHandler = Rc<dyn Fn(Request, Respond)>;

/// labrpc's server object for the key-value service: replacing it (a restart) makes a new one.
#[derive(Clone)]
struct KvServerObject {
    uid: u64,
    handler: KvHandler,
}

#[derive(Clone, Copy)]
struct ClerkEnd {
    enabled: bool,
    server: usize,
}

struct ClerkNetState {
    reliable: bool,
    closed: bool,
    ends: Vec<ClerkEnd>,
    servers: Vec<Option<KvServerObject>>,
    next_uid: u64,
    total_rpcs: u64,
}

/// labrpc between the clerks and the key-value servers, with labrpc's decisions (delays, drops,
/// timeouts of unreachable servers) drawn from the simulation's generator, and labrpc's handling
/// of a handler that takes time: every 100 ms while a call waits for its handler, and once more
/// when the handler answers, the call fails if its end has been disabled or its server deleted or
/// replaced. Long delays and long reordering are never on in Lab 3.
#[derive(Clone)]
struct ClerkNet {
    sim: Sim,
    st: Rc<RefCell<ClerkNetState>>,
}

/// Completes a clerk's call with its outcome.
type PendingTx = OneshotSender<Option<Response>>;

/// A clerk's call waiting for its outcome; whoever decides it first takes the sender.
type Pending = Rc<RefCell<Option<PendingTx>>>;

impl ClerkNet {
    fn new(sim: &Sim, servers: usize) -> ClerkNet {
        ClerkNet {
            sim: sim.clone(),
            st: Rc::new(RefCell::new(ClerkNetState {
                reliable: true,
                closed: false,
                ends: Vec::new(),
                servers: vec![None; servers],
                next_uid: 0,
                total_rpcs: 0,
            })),
        }
    }

    fn set_reliable(&self, yes: bool) {
        self.st.borrow_mut().reliable = yes;
    }

    /// `MakeEnd` and `Connect(end, server)`: a new end to `server`, disabled.
    fn make_end(&self, server: usize) -> EndId {
        let mut st = self.st.borrow_mut();
        st.ends.push(ClerkEnd {
            enabled: false,
            server,
        });
        (st.ends.len() - 1) as EndId
    }

    fn enable(&self, end: EndId, yes: bool) {
        self.st.borrow_mut().ends[end as usize].enabled = yes;
    }

    fn add_server(&self, name: usize, handler: KvHandler) {
        let mut st = self.st.borrow_mut();
        let uid = st.next_uid;
        st.next_uid += 1;
        st.servers[name] = Some(KvServerObject { uid, handler });
    }

    fn delete_server(&self, name: usize) {
        self.st.borrow_mut().servers[name] = None;
    }

    fn cleanup(&self) {
        self.st.borrow_mut().closed = true;
    }

    fn total_count(&self) -> u64 {
        self.st.borrow().total_rpcs
    }

    /// Whether a call on `end` to the server object `uid` of `name` is dead: the end was disabled, or
    /// the server deleted or replaced.
    fn is_dead(&self, end: EndId, name: usize, uid: u64) -> bool {
        let st = self.st.borrow();
        !st.ends[end as usize].enabled || st.servers[name].as_ref().is_none_or(|s| s.uid != uid)
    }

    /// A call on `end`: its outcome, `None` for labrpc's `false`, at a later event.
    fn call(&self, end: EndId, request: Request) -> OneshotReceiver<Option<Response>> {
        let (tx, rx) = oneshot();
        let entry = {
            let mut st = self.st.borrow_mut();
            if st.closed {
                None
            } else {
                st.total_rpcs += 1;
                let e = st.ends[end as usize];
                let server = if e.enabled {
                    st.servers[e.server].clone().map(|s| (e.server, s))
                } else {
                    None
                };
                Some((server, st.reliable))
            }
        };
        let Some((server, reliable)) = entry else {
            self.sim.schedule(0, move || tx.send(None));
            return rx;
        };
        self.sim
            .record(event::CALL, end, &raft_kv::encode(&request));
        match server {
            Some((name, server)) => {
                let delay = if reliable {
                    0
                } else {
                    self.sim.rand_below(27) * MS
                };
                let net = self.clone();
                self.sim.schedule(delay, move || {
                    net.dispatch(end, name, server, reliable, request, tx)
                });
            }
            None => {
                // No reply, and an eventual timeout (long delays are off).
                let ms = self.sim.rand_below(100);
                let sim = self.sim.clone();
                self.sim.schedule(ms * MS, move || {
                    sim.record(event::FAIL, end, &[]);
                    tx.send(None)
                });
            }
        }
        rx
    }

    /// The request reached its server after its delay: it may be dropped, else the handler runs and
    /// the call waits for its answer, checking every 100 ms that the server is alive.
    fn dispatch(
        &self,
        end: EndId,
        name: usize,
        server: KvServerObject,
        reliable: bool,
        request: Request,
        tx: PendingTx,
    ) {
        if !reliable && self.sim.rand_below(1000) < 100 {
            self.sim.record(event::FAIL, end, &[]);
            return tx.send(None); // the request is lost
        }
        let pending: Pending = Rc::new(RefCell::new(Some(tx)));
        self.watch(end, name, server.uid, pending.clone());
        let net = self.clone();
        let uid = server.uid;
        (server.handler)(
            request,
            Box::new(move |response| net.answer(end, name, uid, reliable, &pending, response)),
        );
    }

    /// labrpc's wait for the handler: every 100 ms, a call whose server is dead fails.
    fn watch(&self, end: EndId, name: usize, uid: u64, pending: Pending) {
        let net = self.clone();
        self.sim.schedule(DEAD_CHECK, move || {
            if pending.borrow().is_none() {
                return; // answered
            }
            if net.is_dead(end, name, uid) {
                if let Some(tx) = pending.borrow_mut().take() {
                    net.sim.record(event::FAIL, end, &[]);
                    tx.send(None);
                }
            } else {
                net.watch(end, name, uid, pending);
            }
        });
    }

    /// The handler answered: the reply is delivered unless the server died meanwhile or the
    /// unreliable network loses it.
    fn answer(
        &self,
        end: EndId,
        name: usize,
        uid: u64,
        reliable: bool,
        pending: &Pending,
        response: Response,
    ) {
        let Some(tx) = pending.borrow_mut().take() else {
            return; // the call failed already
        };
        if self.is_dead(end, name, uid) || (!reliable && self.sim.rand_below(1000) < 100) {
            self.sim.record(event::FAIL, end, &[]);
            return tx.send(None);
        }
        self.sim
            .record(event::REPLY, end, &raft_kv::encode(&response));
        tx.send(Some(response));
    }
}

/// The counters `begin` records and `end` reports against.
#[derive(Default, Clone, Copy)]
struct Begin {
    t0: Micros,
    rpcs0: u64,
}

/// The shared state behind [`KvConfig`].
pub(crate) struct KvInner {
    sim: Sim,
    /// The Raft peers' network.
    net: Network,
    /// The clerks' network.
    clerk_net: ClerkNet,
    n: usize,
    raft_config: raft::Config,
    /// `rafts[i]`: server `i`'s running Raft instance, `None` while shut down.
    rafts: Vec<RefCell<Option<Instance>>>,
    /// `kvservers[i]`: server `i`'s key-value server, beside `rafts[i]`.
    kvservers: Vec<RefCell<Option<KvServer>>>,
    saved: RefCell<Vec<Option<Persister>>>,
    /// `endnames[i][j]`: the end server `i` uses to reach server `j`.
    endnames: RefCell<Vec<Vec<EndId>>>,
    /// The ends of each clerk, by server number, by the clerk's id.
    clerks: RefCell<BTreeMap<u64, Vec<EndId>>>,
    next_clerk: Cell<u64>,
    /// Go's `maxraftstate`: `None` for -1 (no snapshots).
    maxraftstate: Option<usize>,
    start: Micros,
    begin: Cell<Begin>,
    /// Clerk operations counted since `begin` (Go's `ops`).
    ops: Cell<u64>,
    next_generation: Cell<u64>,
    quiet: bool,
    trace_from: Option<Micros>,
    recorder: Option<Arc<Recorder>>,
    next_seq: RefCell<Vec<u64>>,
    replies: RefCell<HashMap<MsgId, Option<MsgId>>>,
}

impl Harness for KvInner {
    fn parts(&self) -> Parts<'_> {
        Parts {
            sim: &self.sim,
            net: &self.net,
            raft_config: &self.raft_config,
            voters: self.rafts.len(),
            rafts: &self.rafts,
            endnames: &self.endnames,
            recorder: self.recorder.as_ref(),
            next_seq: &self.next_seq,
            replies: &self.replies,
            trace_from: self.trace_from,
        }
    }

    fn on_command(
        self: &Rc<Self>,
        i: usize,
        index: u64,
        term: u64,
        command: &[u8],
    ) -> Option<Vec<u8>> {
        kvserver::on_command(&**self, i, index, term, command)
    }

    fn on_snapshot(self: &Rc<Self>, i: usize, index: u64, data: &[u8]) {
        kvserver::on_snapshot(&**self, i, index, data);
    }

    fn on_reads(self: &Rc<Self>, i: usize, reads: Vec<raft::ReadState>) {
        kvserver::on_reads(&**self, i, reads);
    }

    fn on_tick(self: &Rc<Self>, i: usize) {
        kvserver::tick(self, i);
    }
}

impl KvCluster for KvInner {
    fn kv(&self, i: usize) -> &RefCell<Option<KvServer>> {
        &self.kvservers[i]
    }
}

/// The kvraft tester's `config`: a cluster of `n` key-value servers and their clerks. Cloning the
/// handle shares the cluster (for the tests' concurrent clients).
#[derive(Clone)]
pub struct KvConfig {
    inner: Rc<KvInner>,
}

impl KvConfig {
    /// `make_config(t, n, unreliable, maxraftstate)`: `n` servers, started and all connected to each
    /// other; a negative `maxraftstate` means no snapshots.
    pub fn make(sim: &Sim, n: usize, unreliable: bool, maxraftstate: i64) -> KvConfig {
        let raft_config = raft::Config::default();
        let inner = Rc::new(KvInner {
            sim: sim.clone(),
            net: Network::new(sim),
            clerk_net: ClerkNet::new(sim, n),
            n,
            raft_config: raft_config.clone(),
            rafts: (0..n).map(|_| RefCell::new(None)).collect(),
            kvservers: (0..n).map(|_| RefCell::new(None)).collect(),
            saved: RefCell::new(vec![None; n]),
            endnames: RefCell::new(vec![Vec::new(); n]),
            clerks: RefCell::new(BTreeMap::new()),
            next_clerk: Cell::new(0),
            maxraftstate: usize::try_from(maxraftstate).ok(),
            start: sim.now(),
            begin: Cell::new(Begin::default()),
            ops: Cell::new(0),
            next_generation: Cell::new(0),
            quiet: runner::quiet(),
            trace_from: std::env::var("LAB_TRACE")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(|ms| ms * MS),
            recorder: runner::new_recorder(n, n, &raft_config),
            next_seq: RefCell::new(vec![0; n]),
            replies: RefCell::new(HashMap::new()),
        });
        let cfg = KvConfig { inner };
        for i in 0..n {
            cfg.start_server(i);
        }
        cfg.connect_all();
        cfg.set_unreliable(unreliable);
        adapter::tick_all(&cfg.inner);
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

    /// Go's `rand.Intn(n)`.
    pub fn rand_intn(&self, n: usize) -> usize {
        self.inner.sim.rand_below(n as u64) as usize
    }

    /// `All()`: every server.
    pub fn all(&self) -> Vec<usize> {
        (0..self.n()).collect()
    }

    fn tracing(&self) -> bool {
        adapter::tracing(&*self.inner)
    }

    fn trace(&self, line: std::fmt::Arguments<'_>) {
        adapter::trace(&*self.inner, line)
    }

    /// `connect(i, to)`: enables the ends from `i` to each server in `to`, and back.
    pub fn connect(&self, i: usize, to: &[usize]) {
        let endnames = self.inner.endnames.borrow();
        for &j in to {
            self.inner.net.enable(endnames[i][j], true);
        }
        for &j in to {
            self.inner.net.enable(endnames[j][i], true);
        }
    }

    /// `disconnect(i, from)`: disables the ends from `i` to each server in `from`, and back.
    pub fn disconnect(&self, i: usize, from: &[usize]) {
        let endnames = self.inner.endnames.borrow();
        for &j in from {
            if let Some(&e) = endnames[i].get(j) {
                self.inner.net.enable(e, false);
            }
        }
        for &j in from {
            if let Some(&e) = endnames[j].get(i) {
                self.inner.net.enable(e, false);
            }
        }
    }

    /// `ConnectAll()`: every server to every server.
    pub fn connect_all(&self) {
        if self.tracing() {
            self.trace(format_args!("tester: connect all"));
        }
        let all = self.all();
        for i in 0..self.n() {
            self.connect(i, &all);
        }
    }

    /// `partition(p1, p2)`: the servers in each group talk to each other, and not to the other
    /// group.
    pub fn partition(&self, p1: &[usize], p2: &[usize]) {
        if self.tracing() {
            self.trace(format_args!("tester: partition {p1:?} {p2:?}"));
        }
        for &i in p1 {
            self.disconnect(i, p2);
            self.connect(i, p1);
        }
        for &i in p2 {
            self.disconnect(i, p1);
            self.connect(i, p2);
        }
    }

    /// `makeClient(to)`: a clerk with ends of its own to every server, in a random order, of which
    /// only those to the servers in `to` are enabled.
    pub fn make_client(&self, to: &[usize]) -> Clerk {
        let inner = &self.inner;
        let ends: Vec<EndId> = (0..self.n()).map(|j| inner.clerk_net.make_end(j)).collect();
        // `random_handles`: the clerk knows the servers in a shuffled order.
        let mut order: Vec<usize> = self.all();
        for i in 0..order.len() {
            let j = self.rand_intn(i + 1);
            order.swap(i, j);
        }
        let id = inner.next_clerk.get();
        inner.next_clerk.set(id + 1);
        inner.clerks.borrow_mut().insert(id, ends.clone());
        let clerk = Clerk {
            inner: Rc::new(ClerkInner {
                id,
                cfg: self.clone(),
                ends: order.iter().map(|&j| ends[j]).collect(),
                servers: order,
                clerk: RefCell::new(raft_kv::Clerk::new(self.n())),
            }),
        };
        self.connect_client(&clerk, to);
        clerk
    }

    /// `deleteClient(ck)`: forgets the clerk's ends.
    pub fn delete_client(&self, ck: &Clerk) {
        self.inner.clerks.borrow_mut().remove(&ck.inner.id);
    }

    /// `ConnectClient(ck, to)`: enables the clerk's ends to the servers in `to`.
    pub fn connect_client(&self, ck: &Clerk, to: &[usize]) {
        if let Some(ends) = self.inner.clerks.borrow().get(&ck.inner.id) {
            for &j in to {
                self.inner.clerk_net.enable(ends[j], true);
            }
        }
    }

    /// `DisconnectClient(ck, from)`: disables the clerk's ends to the servers in `from`.
    pub fn disconnect_client(&self, ck: &Clerk, from: &[usize]) {
        if let Some(ends) = self.inner.clerks.borrow().get(&ck.inner.id) {
            for &j in from {
                self.inner.clerk_net.enable(ends[j], false);
            }
        }
    }

    /// `ShutdownServer(i)`: isolates server `i`, deletes it from the networks (its calls, in flight
    /// or future, fail), gives it a fresh copy of its persister, and kills it.
    pub fn shutdown_server(&self, i: usize) {
        let inner = &self.inner;
        if self.tracing() {
            self.trace(format_args!("tester: ShutdownServer({i})"));
        }
        self.disconnect(i, &self.all());
        // Before the persister is replaced: a reply to a write must never come from a server that
        // saved it in a superseded persister.
        inner.net.delete_server(i);
        inner.clerk_net.delete_server(i);
        {
            let mut saved = inner.saved.borrow_mut();
            if let Some(p) = saved[i].as_ref() {
                saved[i] = Some(p.copy());
            }
        }
        adapter::kill(&**inner, i);
        inner.kvservers[i].borrow_mut().take();
    }

    /// `StartServer(i)`: a new key-value server and Raft instance for `i` with fresh ends (disabled)
    /// and a copy of its persister, registered with both networks.
    pub fn start_server(&self, i: usize) {
        let inner = &self.inner;
        if self.tracing() {
            self.trace(format_args!("tester: StartServer({i})"));
        }
        let ends: Vec<EndId> = (0..self.n())
            .map(|j| {
                let e = inner.net.make_end();
                inner.net.connect(e, j);
                e
            })
            .collect();
        inner.endnames.borrow_mut()[i] = ends;
        let persister = {
            let mut saved = inner.saved.borrow_mut();
            let p = match saved[i].as_ref() {
                Some(p) => p.copy(),
                None => Persister::new(),
            };
            saved[i] = Some(p.clone());
            p
        };
        let generation = inner.next_generation.get();
        inner.next_generation.set(generation + 1);
        // The server restores its snapshot before its Raft starts.
        let kv = KvServer::start(i, generation, persister.clone(), inner.maxraftstate);
        *inner.kvservers[i].borrow_mut() = Some(kv);
        let instance = adapter::make_instance(&**inner, i, persister, generation);
        *inner.rafts[i].borrow_mut() = Some(instance);
        let weak = Rc::downgrade(inner);
        inner.net.add_server(
            i,
            Rc::new(move |req: Vec<u8>| {
                weak.upgrade()
                    .and_then(|inner| adapter::handle(&inner, i, generation, req))
            }),
        );
        let weak = Rc::downgrade(inner);
        inner.clerk_net.add_server(
            i,
            Rc::new(move |request: Request, respond: Respond| {
                if let Some(inner) = weak.upgrade() {
                    kvserver::handle(&inner, i, generation, request, respond);
                }
            }),
        );
    }

    /// `Leader()`: the first server (in order) whose Raft believes it leads. Panics if a server is
    /// shut down, where Go would dereference nil.
    pub fn leader(&self) -> Option<usize> {
        (0..self.n()).find(|&i| {
            adapter::status(&*self.inner, i)
                .unwrap_or_else(|| panic!("GetState() on shut-down server {i}"))
                .is_leader
        })
    }

    /// `make_partition()`: two groups, the first a majority without the current leader, the second
    /// the rest with the leader last.
    pub fn make_partition(&self) -> (Vec<usize>, Vec<usize>) {
        let l = self.leader().unwrap_or(0);
        let n = self.n();
        let others: Vec<usize> = (0..n).filter(|&i| i != l).collect();
        let p1 = others[..n / 2 + 1].to_vec();
        let mut p2 = others[n / 2 + 1..].to_vec();
        p2.push(l);
        (p1, p2)
    }

    /// `setunreliable(b)`: both networks drop and delay from now on.
    pub fn set_unreliable(&self, unreliable: bool) {
        self.inner.net.set_reliable(!unreliable);
        self.inner.clerk_net.set_reliable(!unreliable);
    }

    /// `LogSize()`: the largest Raft state any server has persisted.
    pub fn log_size(&self) -> usize {
        self.persisted(Persister::raft_state_size)
    }

    /// `SnapshotSize()`: the largest snapshot any server has persisted.
    pub fn snapshot_size(&self) -> usize {
        self.persisted(Persister::snapshot_size)
    }

    fn persisted(&self, size: impl Fn(&Persister) -> usize) -> usize {
        self.inner
            .saved
            .borrow()
            .iter()
            .flatten()
            .map(size)
            .max()
            .unwrap_or(0)
    }

    /// `rpcTotal()`: calls that entered either network.
    pub fn rpc_total(&self) -> u64 {
        self.inner.net.total_count() + self.inner.clerk_net.total_count()
    }

    /// What server `i`'s store holds for `key`, if the server runs (for tests of the port).
    pub fn stored(&self, i: usize, key: &str) -> Option<String> {
        self.inner.kvservers[i]
            .borrow()
            .as_ref()
            .map(|kv| kv.store().get(key).to_owned())
    }

    /// `begin(description)`: prints the title and records the counters `end` reports against; the
    /// op count starts again from 0.
    pub fn begin(&self, description: &str) {
        if !self.inner.quiet {
            println!("{description} ...");
        }
        self.inner.begin.set(Begin {
            t0: self.inner.sim.now(),
            rpcs0: self.rpc_total(),
        });
        self.inner.ops.set(0);
    }

    /// `op()`: counts one clerk operation.
    pub fn op(&self) {
        self.inner.ops.set(self.inner.ops.get() + 1);
    }

    /// `end()`: checks the time limit and prints the "Passed" line: virtual seconds, servers, RPCs
    /// and clerk operations since `begin`.
    pub fn end(&self) {
        self.check_timeout();
        let b = self.inner.begin.get();
        let t = (self.inner.sim.now() - b.t0) as f64 / 1e6;
        let nrpc = self.rpc_total() - b.rpcs0;
        let ops = self.inner.ops.get();
        if !self.inner.quiet {
            println!("  ... Passed --  {t:4.1}  {} {nrpc:5} {ops:4}", self.n());
        }
    }

    /// `cleanup()`: kills every server and closes both networks.
    pub fn cleanup(&self) {
        for i in 0..self.n() {
            self.inner.rafts[i].borrow_mut().take();
            self.inner.kvservers[i].borrow_mut().take();
        }
        self.inner.net.cleanup();
        self.inner.clerk_net.cleanup();
        self.check_timeout();
    }

    fn check_timeout(&self) {
        if self.inner.sim.now() - self.inner.start > TEST_TIME_LIMIT {
            fatal("test took longer than 120 seconds");
        }
    }
}

/// A clerk (Go's `Clerk`, `client.go`): `raft_kv`'s sans-IO [`raft_kv::Clerk`] driven over the
/// clerk's own labrpc ends. Cloning the handle shares the clerk; it does one operation at a time.
#[derive(Clone)]
pub struct Clerk {
    inner: Rc<ClerkInner>,
}

struct ClerkInner {
    id: u64,
    cfg: KvConfig,
    /// The clerk's ends, in its own (shuffled) order of the servers.
    ends: Vec<EndId>,
    /// `servers[k]`: the server the clerk's `k`-th end reaches.
    servers: Vec<usize>,
    clerk: RefCell<raft_kv::Clerk>,
}

impl Clerk {
    /// `Get(key)`: the value (`""` for a key never written).
    pub async fn get(&self, key: &str) -> String {
        match self.run(Op::get(key)).await {
            Output::Value(v) => v,
            other => panic!("a get answered {other:?}"),
        }
    }

    /// `Put(key, value)`.
    pub async fn put(&self, key: &str, value: &str) {
        self.run(Op::put(key, value)).await;
    }

    /// `Append(key, arg)`.
    pub async fn append(&self, key: &str, arg: &str) {
        self.run(Op::append(key, arg)).await;
    }

    /// Carries `op`'s requests until the clerk has a definite answer. A clerk that has had no answer
    /// from as many servers in a row as there are servers waits a tick before it goes on, so that a
    /// cluster without a leader is not asked again and again at one instant. An operation that
    /// fails (`raft_kv::Failure`: no test should see one) fails the test.
    async fn run(&self, op: Op) -> Output {
        let me = &self.inner;
        let n = me.servers.len();
        if let Err(busy) = me.clerk.borrow_mut().begin(op) {
            panic!(
                "clerk {}: {:?} while another operation is in progress",
                me.id, busy.0
            );
        }
        let mut misses = 0;
        loop {
            let (k, request) = me
                .clerk
                .borrow_mut()
                .next_request()
                .expect("an operation is in progress");
            let server = me.servers[k];
            if me.cfg.tracing() {
                me.cfg
                    .trace(format_args!("clerk {} -> {server} {request:?}", me.id));
            }
            let response = me.cfg.inner.clerk_net.call(me.ends[k], request).await;
            if me.cfg.tracing() {
                me.cfg
                    .trace(format_args!("clerk {} <- {server} {response:?}", me.id));
            }
            let definite = matches!(response, Some(Response::Committed(_) | Response::Value(_)));
            let response = response.map(|r| self.in_clerk_order(r));
            let progress = me.clerk.borrow_mut().on_reply(k, response);
            match progress {
                Progress::Pending if definite => misses = 0,
                Progress::Pending => {
                    misses += 1;
                    if misses % n == 0 {
                        me.cfg.sim().sleep(TICK).await;
                    }
                }
                Progress::Done(output) => return output,
                Progress::Failed(failure) => fatal(format!("clerk {}: {failure}", me.id)),
            }
        }
    }

    /// A server names the leader by its number; the clerk knows servers in its own order.
    fn in_clerk_order(&self, response: Response) -> Response {
        match response {
            Response::NotLeader(Some(leader)) => {
                Response::NotLeader(self.inner.servers.iter().position(|&s| s == leader))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A network with one server whose handler keeps every call's `Respond` without answering.
    fn net_with_silent_server(sim: &Sim) -> (ClerkNet, Rc<RefCell<Vec<Respond>>>, EndId) {
        let net = ClerkNet::new(sim, 1);
        let held: Rc<RefCell<Vec<Respond>>> = Rc::default();
        let h = held.clone();
        net.add_server(
            0,
            Rc::new(move |_req, respond| h.borrow_mut().push(respond)),
        );
        let end = net.make_end(0);
        net.enable(end, true);
        (net, held, end)
    }

    fn read() -> Request {
        Request::Read { key: "k".into() }
    }

    #[test]
    fn a_call_whose_server_is_deleted_while_it_waits_fails_at_the_next_check() {
        let sim = Sim::new(1);
        let (net, held, end) = net_with_silent_server(&sim);
        let (n, s) = (net.clone(), sim.clone());
        let (result, at) = sim
            .block_on(async move {
                let call = n.call(end, read());
                s.sleep_ms(150).await;
                n.delete_server(0);
                (call.await, s.now())
            })
            .unwrap();
        assert_eq!(result, None);
        assert_eq!(at, 200 * MS, "labrpc looks every 100 ms");
        // The handler's late answer changes nothing.
        let respond = held.borrow_mut().pop().expect("the handler ran");
        respond(Response::Value("late".into()));
    }

    #[test]
    fn an_answer_is_delivered_at_once_and_not_after_the_end_was_disabled() {
        let sim = Sim::new(1);
        let (net, held, end) = net_with_silent_server(&sim);
        let (n, s, h) = (net.clone(), sim.clone(), held.clone());
        let (first, second) = sim
            .block_on(async move {
                let call = n.call(end, read());
                s.sleep_ms(30).await;
                h.borrow_mut().pop().unwrap()(Response::Value("v".into()));
                let first = (call.await, s.now());
                let call = n.call(end, read());
                s.sleep_ms(30).await;
                n.enable(end, false);
                h.borrow_mut().pop().unwrap()(Response::Value("w".into()));
                (first, (call.await, s.now()))
            })
            .unwrap();
        assert_eq!(first, (Some(Response::Value("v".into())), 30 * MS));
        assert_eq!(second, (None, 60 * MS));
        assert_eq!(net.total_count(), 2);
    }

    #[test]
    fn a_disabled_end_fails_within_100_ms_without_reaching_the_server() {
        let sim = Sim::new(3);
        let (net, held, end) = net_with_silent_server(&sim);
        net.enable(end, false);
        let (n, s) = (net.clone(), sim.clone());
        let waits = sim
            .block_on(async move {
                let mut waits = Vec::new();
                for _ in 0..50 {
                    let t0 = s.now();
                    assert_eq!(n.call(end, read()).await, None);
                    waits.push(s.now() - t0);
                }
                waits
            })
            .unwrap();
        assert!(waits.iter().all(|w| *w < 100 * MS), "{waits:?}");
        assert!(held.borrow().is_empty());
    }

    #[test]
    fn an_unreliable_network_loses_a_tenth_of_requests_and_of_replies() {
        let sim = Sim::new(11);
        let net = ClerkNet::new(&sim, 1);
        net.set_reliable(false);
        let handled = Rc::new(Cell::new(0u64));
        let h = handled.clone();
        net.add_server(
            0,
            Rc::new(move |_req, respond: Respond| {
                h.set(h.get() + 1);
                respond(Response::Value(String::new()));
            }),
        );
        let end = net.make_end(0);
        net.enable(end, true);
        const N: u64 = 20_000;
        let (n, s) = (net.clone(), sim.clone());
        let (ok, max_delay) = sim
            .block_on(async move {
                let (mut ok, mut max_delay) = (0u64, 0);
                for _ in 0..N {
                    let t0 = s.now();
                    if n.call(end, read()).await.is_some() {
                        ok += 1;
                        max_delay = max_delay.max(s.now() - t0);
                    }
                }
                (ok, max_delay)
            })
            .unwrap();
        assert!(
            (17_600..18_400).contains(&handled.get()),
            "{}",
            handled.get()
        );
        assert!((15_800..16_600).contains(&ok), "{ok}");
        assert!((20 * MS..=26 * MS).contains(&max_delay), "{max_delay}");
    }

    #[test]
    fn gets_are_served_by_read_index_without_touching_the_log() {
        let sim = Sim::new(5);
        let cfg = KvConfig::make(&sim, 3, false, -1);
        let c = cfg.clone();
        sim.block_on(async move {
            let ck = c.make_client(&c.all());
            ck.put("k", "v").await;
            let leader = c.leader().expect("a leader served the put");
            let last = || {
                c.inner.rafts[leader]
                    .borrow()
                    .as_ref()
                    .map(|inst| inst.node.last_index())
            };
            let before = last();
            for _ in 0..10 {
                assert_eq!(ck.get("k").await, "v");
            }
            assert_eq!(last(), before, "no entry for the reads");
            assert_eq!(c.stored(leader, "k").as_deref(), Some("v"));
        })
        .unwrap();
    }
}
