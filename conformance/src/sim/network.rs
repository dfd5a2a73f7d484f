//! The labrpc network of the Lab 2 tester, on the simulator (`specs/lab-tester.md`, `## Network`).
//!
//! Calls carry byte strings; a server is a handler closure that turns a request into a reply at
//! the instant the request is dispatched. Ends (one per client-server pair) are enabled, disabled
//! and connected exactly as in labrpc, and every decision labrpc makes at random (delays, drops,
//! long reordering) is drawn from the simulation's one generator.

use std::cell::RefCell;
use std::rc::Rc;

use super::executor::{oneshot, OneshotReceiver, Sim, MS};

/// The identity of a client end (labrpc's end name). Fresh ends get fresh ids, as labrpc's fresh
/// random names guarantee.
pub type EndId = u64;

/// The name a server is registered under: the server's number in the cluster.
pub type ServerName = usize;

/// A server's RPC handler. It runs synchronously at the dispatch instant; `None` means the server
/// could not run it (its instance is dead), which fails the call like a killed server.
pub type Handler = Rc<dyn Fn(Vec<u8>) -> Option<Vec<u8>>>;

/// What becomes of a call: `Some(reply)` when the handler ran and its reply was delivered,
/// `None` for labrpc's `false`.
pub type CallResult = Option<Vec<u8>>;

/// Event kinds folded into the simulation fingerprint.
pub mod event {
    /// A call entered the network.
    pub const CALL: u8 = 1;
    /// A request reached its server's handler.
    pub const DISPATCH: u8 = 2;
    /// A reply was delivered to the caller.
    pub const REPLY: u8 = 3;
    /// A call returned false.
    pub const FAIL: u8 = 4;
}

/// labrpc's `Server` object: a handler and the count of requests dispatched to it. Replacing a
/// server (a restart) creates a new object, so counts restart from zero.
struct Server {
    uid: u64,
    handler: Handler,
    count: u64,
}

#[derive(Clone, Copy, Default)]
struct End {
    enabled: bool,
    server: Option<ServerName>,
}

struct State {
    reliable: bool,
    long_reordering: bool,
    long_delays: bool,
    closed: bool,
    ends: Vec<End>,
    servers: Vec<Option<Rc<RefCell<Server>>>>,
    next_uid: u64,
    total_rpcs: u64,
    total_bytes: u64,
}

/// The simulated labrpc network. Cloning the handle shares the network.
#[derive(Clone)]
pub struct Network {
    sim: Sim,
    st: Rc<RefCell<State>>,
}

impl Network {
    /// A new network: reliable, no long reordering, no long delays (labrpc's defaults).
    pub fn new(sim: &Sim) -> Network {
        Network {
            sim: sim.clone(),
            st: Rc::new(RefCell::new(State {
                reliable: true,
                long_reordering: false,
                long_delays: false,
                closed: false,
                ends: Vec::new(),
                servers: Vec::new(),
                next_uid: 0,
                total_rpcs: 0,
                total_bytes: 0,
            })),
        }
    }

    /// `Reliable(b)`: with `false`, requests are delayed 0-26 ms and requests and replies are
    /// each dropped with probability 1/10.
    pub fn set_reliable(&self, yes: bool) {
        self.st.borrow_mut().reliable = yes;
    }

    /// `LongReordering(b)`: with `true`, 2/3 of delivered replies are delayed 200-2200 ms.
    pub fn set_long_reordering(&self, yes: bool) {
        self.st.borrow_mut().long_reordering = yes;
    }

    /// `LongDelays(b)`: with `true`, calls that cannot reach a server fail after 0-6999 ms
    /// instead of 0-99 ms.
    pub fn set_long_delays(&self, yes: bool) {
        self.st.borrow_mut().long_delays = yes;
    }

    /// `MakeEnd`: a new client end, disabled and connected to nothing.
    pub fn make_end(&self) -> EndId {
        let mut st = self.st.borrow_mut();
        st.ends.push(End::default());
        (st.ends.len() - 1) as EndId
    }

    /// `Connect(end, server)`: the server calls on `end` are addressed to.
    pub fn connect(&self, end: EndId, server: ServerName) {
        self.st.borrow_mut().ends[end as usize].server = Some(server);
    }

    /// `Enable(end, b)`.
    pub fn enable(&self, end: EndId, yes: bool) {
        self.st.borrow_mut().ends[end as usize].enabled = yes;
    }

    /// `AddServer(name, server)`: registers a new server object under `name`, replacing any
    /// previous one (whose in-flight calls then fail).
    pub fn add_server(&self, name: ServerName, handler: Handler) {
        let mut st = self.st.borrow_mut();
        let uid = st.next_uid;
        st.next_uid += 1;
        if st.servers.len() <= name {
            st.servers.resize(name + 1, None);
        }
        st.servers[name] = Some(Rc::new(RefCell::new(Server {
            uid,
            handler,
            count: 0,
        })));
    }

    /// `DeleteServer(name)`: calls to `name`, in flight or future, fail.
    pub fn delete_server(&self, name: ServerName) {
        let mut st = self.st.borrow_mut();
        if let Some(slot) = st.servers.get_mut(name) {
            *slot = None;
        }
    }

    /// `GetCount(name)`: requests dispatched to the server currently registered as `name`.
    pub fn count(&self, name: ServerName) -> u64 {
        let st = self.st.borrow();
        match st.servers.get(name) {
            Some(Some(s)) => s.borrow().count,
            _ => 0,
        }
    }

    /// `GetTotalCount()`: calls that entered the network.
    pub fn total_count(&self) -> u64 {
        self.st.borrow().total_rpcs
    }

    /// `GetTotalBytes()`: request bytes of every call that entered the network plus reply bytes
    /// of every delivered reply.
    pub fn total_bytes(&self) -> u64 {
        self.st.borrow().total_bytes
    }

    /// `Cleanup()`: new calls fail at once.
    pub fn cleanup(&self) {
        self.st.borrow_mut().closed = true;
    }

    /// Sends a call on `end`; `done` runs (at a later event, never inside this function) with the
    /// call's outcome, following labrpc's rules exactly.
    pub fn call(&self, end: EndId, request: Vec<u8>, done: impl FnOnce(CallResult) + 'static) {
        let sim = &self.sim;
        let snapshot = {
            let mut st = self.st.borrow_mut();
            if st.closed {
                None
            } else {
                st.total_rpcs += 1;
                st.total_bytes += request.len() as u64;
                let e = st.ends[end as usize];
                let server = match (e.enabled, e.server) {
                    (true, Some(name)) => {
                        st.servers.get(name).cloned().flatten().map(|s| (name, s))
                    }
                    _ => None,
                };
                Some((server, st.reliable, st.long_reordering, st.long_delays))
            }
        };
        let Some((server, reliable, long_reordering, long_delays)) = snapshot else {
            sim.schedule(0, move || done(None));
            return;
        };
        sim.record(event::CALL, end, &request);
        match server {
            Some((name, server)) => {
                let delay = if reliable { 0 } else { sim.rand_below(27) * MS };
                let net = self.clone();
                sim.schedule(delay, move || {
                    net.dispatch(
                        end,
                        name,
                        server,
                        reliable,
                        long_reordering,
                        request,
                        Box::new(done),
                    )
                });
            }
            None => {
                // Simulate no reply and an eventual timeout.
                let ms = if long_delays {
                    sim.rand_below(7000)
                } else {
                    sim.rand_below(100)
                };
                let s = sim.clone();
                sim.schedule(ms * MS, move || {
                    s.record(event::FAIL, end, &[]);
                    done(None)
                });
            }
        }
    }

    /// The same as [`Network::call`], as a future.
    pub fn call_async(&self, end: EndId, request: Vec<u8>) -> OneshotReceiver<CallResult> {
        let (tx, rx) = oneshot();
        self.call(end, request, move |r| tx.send(r));
        rx
    }

    /// The request reached the front of labrpc's per-request goroutine: after the (unreliable)
    /// short delay, run the handler and decide the reply's fate.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        end: EndId,
        name: ServerName,
        server: Rc<RefCell<Server>>,
        reliable: bool,
        long_reordering: bool,
        request: Vec<u8>,
        done: Box<dyn FnOnce(CallResult)>,
    ) {
        let sim = &self.sim;
        let fail = |done: Box<dyn FnOnce(CallResult)>| {
            sim.record(event::FAIL, end, &[]);
            done(None)
        };
        if !reliable && sim.rand_below(1000) < 100 {
            return fail(done); // drop the request
        }
        // The handler runs on the server object read when the call entered the network, even if
        // that server has since been deleted or its end disabled; the dead check below then
        // discards the reply.
        let handler = {
            let mut s = server.borrow_mut();
            s.count += 1;
            s.handler.clone()
        };
        sim.record(event::DISPATCH, name as u64, &[]);
        let reply = handler(request);
        let dead = {
            let st = self.st.borrow();
            let same = matches!(st.servers.get(name), Some(Some(s)) if s.borrow().uid == server.borrow().uid);
            !st.ends[end as usize].enabled || !same
        };
        let reply = match reply {
            Some(r) if !dead => r,
            _ => return fail(done),
        };
        if !reliable && sim.rand_below(1000) < 100 {
            return fail(done); // drop the reply; the handler did run
        }
        if long_reordering && sim.rand_below(900) < 600 {
            let inner = sim.rand_below(2000);
            let ms = 200 + sim.rand_below(1 + inner);
            let net = self.clone();
            sim.schedule(ms * MS, move || net.deliver(end, reply, done));
        } else {
            self.deliver(end, reply, done);
        }
    }

    fn deliver(&self, end: EndId, reply: Vec<u8>, done: Box<dyn FnOnce(CallResult)>) {
        self.st.borrow_mut().total_bytes += reply.len() as u64;
        self.sim.record(event::REPLY, end, &reply);
        done(Some(reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn echo(net: &Network, name: ServerName) {
        net.add_server(
            name,
            Rc::new(|req: Vec<u8>| Some(req.iter().rev().copied().collect())),
        );
    }

    fn end_to(net: &Network, name: ServerName) -> EndId {
        let e = net.make_end();
        net.connect(e, name);
        net.enable(e, true);
        e
    }

    #[test]
    fn reliable_call_is_delivered_at_once_and_counted() {
        let sim = Sim::new(1);
        let net = Network::new(&sim);
        echo(&net, 0);
        let e = end_to(&net, 0);
        let n = net.clone();
        let s = sim.clone();
        let r = sim
            .block_on(async move { (n.call_async(e, vec![1, 2, 3]).await, s.now()) })
            .unwrap();
        assert_eq!(r, (Some(vec![3, 2, 1]), 0));
        assert_eq!(net.count(0), 1);
        assert_eq!(net.total_count(), 1);
        assert_eq!(net.total_bytes(), 6);
    }

    #[test]
    fn disabled_end_fails_after_up_to_seven_seconds_without_dispatch() {
        let sim = Sim::new(3);
        let net = Network::new(&sim);
        net.set_long_delays(true);
        echo(&net, 0);
        let e = end_to(&net, 0);
        net.enable(e, false);
        let n = net.clone();
        let s = sim.clone();
        let times = sim
            .block_on(async move {
                let mut v = Vec::new();
                for _ in 0..50 {
                    let t0 = s.now();
                    assert_eq!(n.call_async(e, vec![9]).await, None);
                    v.push(s.now() - t0);
                }
                v
            })
            .unwrap();
        assert!(times.iter().all(|t| *t < 7000 * MS));
        assert!(
            times.iter().any(|t| *t > 1000 * MS),
            "long delays should reach seconds"
        );
        assert_eq!(net.count(0), 0);
        assert_eq!(net.total_count(), 50);
        assert_eq!(net.total_bytes(), 50);
    }

    #[test]
    fn short_delays_without_long_delays() {
        let sim = Sim::new(3);
        let net = Network::new(&sim);
        let e = net.make_end(); // connected to nothing
        let n = net.clone();
        let s = sim.clone();
        let max = sim
            .block_on(async move {
                let mut m = 0;
                for _ in 0..50 {
                    let t0 = s.now();
                    assert_eq!(n.call_async(e, vec![]).await, None);
                    m = m.max(s.now() - t0);
                }
                m
            })
            .unwrap();
        assert!(max < 100 * MS);
    }

    #[test]
    fn deleted_server_fails_and_replacement_resets_count() {
        let sim = Sim::new(1);
        let net = Network::new(&sim);
        echo(&net, 0);
        let e = end_to(&net, 0);
        let n = net.clone();
        sim.block_on(async move {
            assert!(n.call_async(e, vec![1]).await.is_some());
            n.delete_server(0);
            assert!(n.call_async(e, vec![1]).await.is_none());
        })
        .unwrap();
        assert_eq!(net.count(0), 0);
        echo(&net, 0);
        assert_eq!(net.count(0), 0);
    }

    #[test]
    fn reply_from_server_killed_during_handler_is_never_delivered() {
        let sim = Sim::new(1);
        let net = Network::new(&sim);
        let ran = Rc::new(Cell::new(0));
        let r2 = ran.clone();
        let n2 = net.clone();
        // The handler deletes its own server, as a crash during the handler would.
        net.add_server(
            0,
            Rc::new(move |_req: Vec<u8>| {
                r2.set(r2.get() + 1);
                n2.delete_server(0);
                Some(vec![1])
            }),
        );
        let e = end_to(&net, 0);
        let n = net.clone();
        let r = sim
            .block_on(async move { n.call_async(e, vec![0]).await })
            .unwrap();
        assert_eq!(r, None);
        assert_eq!(ran.get(), 1, "the handler ran");
        assert_eq!(net.total_bytes(), 1, "the reply was not counted");
    }

    #[test]
    fn disabling_the_end_during_the_handler_discards_the_reply() {
        let sim = Sim::new(1);
        let net = Network::new(&sim);
        let n2 = net.clone();
        net.add_server(
            0,
            Rc::new(move |_req: Vec<u8>| {
                n2.enable(0, false);
                Some(vec![1])
            }),
        );
        let e = end_to(&net, 0);
        assert_eq!(e, 0);
        let n = net.clone();
        assert_eq!(
            sim.block_on(async move { n.call_async(e, vec![0]).await })
                .unwrap(),
            None
        );
        assert_eq!(net.count(0), 1);
    }

    #[test]
    fn unreliable_network_delays_and_drops_about_a_tenth_each_way() {
        let sim = Sim::new(11);
        let net = Network::new(&sim);
        net.set_reliable(false);
        echo(&net, 0);
        let e = end_to(&net, 0);
        let n = net.clone();
        let s = sim.clone();
        const N: u64 = 20_000;
        let (ok, max_delay) = sim
            .block_on(async move {
                let mut ok = 0u64;
                let mut max_delay = 0;
                for _ in 0..N {
                    let t0 = s.now();
                    if n.call_async(e, vec![1]).await.is_some() {
                        ok += 1;
                        max_delay = max_delay.max(s.now() - t0);
                    }
                }
                (ok, max_delay)
            })
            .unwrap();
        // Requests reaching the handler: 90%; replies surviving: 90% of those.
        let dispatched = net.count(0);
        assert!(
            (17_600..18_400).contains(&dispatched),
            "dispatched {dispatched}"
        );
        assert!((15_800..16_600).contains(&ok), "delivered {ok}");
        assert!(
            (20 * MS..=26 * MS).contains(&max_delay),
            "max delay {max_delay}"
        );
    }

    #[test]
    fn long_reordering_delays_two_thirds_of_replies_by_200_to_2200_ms() {
        let sim = Sim::new(5);
        let net = Network::new(&sim);
        net.set_long_reordering(true);
        echo(&net, 0);
        let e = end_to(&net, 0);
        let n = net.clone();
        let s = sim.clone();
        let delays = sim
            .block_on(async move {
                let mut v = Vec::new();
                for _ in 0..3000 {
                    let t0 = s.now();
                    assert!(n.call_async(e, vec![1]).await.is_some());
                    v.push(s.now() - t0);
                }
                v
            })
            .unwrap();
        let late = delays.iter().filter(|d| **d > 0).count();
        assert!((1900..2100).contains(&late), "late {late}");
        assert!(delays
            .iter()
            .all(|d| *d == 0 || (200 * MS..=2200 * MS).contains(d)));
        // Skewed towards short delays: the median late reply is well under the midpoint.
        let mut l: Vec<_> = delays.into_iter().filter(|d| *d > 0).collect();
        l.sort();
        assert!(l[l.len() / 2] < 900 * MS);
    }

    #[test]
    fn replies_can_overtake_each_other_under_long_reordering() {
        let sim = Sim::new(2);
        let net = Network::new(&sim);
        net.set_long_reordering(true);
        echo(&net, 0);
        let e = end_to(&net, 0);
        let order = Rc::new(RefCell::new(Vec::new()));
        for i in 0..20u8 {
            let o = order.clone();
            net.call(e, vec![i], move |r| o.borrow_mut().push(r.unwrap()[0]));
        }
        let s = sim.clone();
        sim.block_on(async move { s.sleep_ms(3000).await }).unwrap();
        let got = order.borrow().clone();
        assert_eq!(got.len(), 20);
        let mut sorted = got.clone();
        sorted.sort();
        assert_ne!(got, sorted, "some replies should be reordered");
    }

    #[test]
    fn closed_network_fails_new_calls_without_counting() {
        let sim = Sim::new(1);
        let net = Network::new(&sim);
        echo(&net, 0);
        let e = end_to(&net, 0);
        net.cleanup();
        let n = net.clone();
        assert_eq!(
            sim.block_on(async move { n.call_async(e, vec![1]).await })
                .unwrap(),
            None
        );
        assert_eq!(net.total_count(), 0);
        assert_eq!(net.count(0), 0);
    }

    #[test]
    fn handler_runs_even_if_the_end_is_disabled_during_the_request_delay() {
        // labrpc reads the server object when the call enters the network and runs its handler
        // after the short delay; the dead check afterwards discards the reply.
        let sim = Sim::new(4);
        let net = Network::new(&sim);
        net.set_reliable(false);
        let ran = Rc::new(Cell::new(0));
        let r2 = ran.clone();
        net.add_server(
            0,
            Rc::new(move |_req: Vec<u8>| {
                r2.set(r2.get() + 1);
                Some(vec![1])
            }),
        );
        let e = end_to(&net, 0);
        let results = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..100 {
            let r = results.clone();
            net.call(e, vec![0], move |res| r.borrow_mut().push(res));
        }
        net.enable(e, false); // at once: every request is still in its 0-26 ms delay
        let s = sim.clone();
        sim.block_on(async move { s.sleep_ms(100).await }).unwrap();
        assert!(results.borrow().iter().all(|r| r.is_none()));
        assert_eq!(results.borrow().len(), 100);
        // About 90% of requests survive the request drop and run the handler.
        assert!((80..=98).contains(&ran.get()), "ran {}", ran.get());
        assert_eq!(net.count(0), ran.get());
    }

    #[test]
    fn calls_in_flight_to_a_replaced_server_fail_and_count_on_the_old_object() {
        let sim = Sim::new(4);
        let net = Network::new(&sim);
        net.set_reliable(false);
        echo(&net, 0);
        let e = end_to(&net, 0);
        let results = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..50 {
            let r = results.clone();
            net.call(e, vec![0], move |res| r.borrow_mut().push(res));
        }
        echo(&net, 0); // a restart: a new server object under the same name
        let s = sim.clone();
        sim.block_on(async move { s.sleep_ms(100).await }).unwrap();
        assert_eq!(results.borrow().len(), 50);
        assert!(results.borrow().iter().all(|r| r.is_none()));
        assert_eq!(net.count(0), 0, "the new server object counts nothing");
    }
}
