//! Liveness under a partial partition, simulated in time: the shape of the 2020 Cloudflare outage,
//! in which one link of an etcd cluster failed and the cluster went without a stable leader.
//!
//! The exhaustive checks say nothing of liveness: every timeout is allowed at any moment. Here the
//! same specification (every step goes through [`RaftModel::step`], guards, effects and safety
//! properties included) is driven by clocks, as a real cluster is:
//!
//! * each server's election timer fires after a random timeout in `[election, 2 * election)`,
//!   restarted whenever the server changes term or role, hears from the leader of its term, or
//!   grants a vote (as etcd restarts it); with CheckQuorum a follower's lease ends once a whole
//!   `election` has passed without the leader;
//! * a leader sends AppendEntries to every peer each `heartbeat` and at once when elected,
//!   commits what a quorum acknowledged as soon as it learns it, and with CheckQuorum checks its
//!   quorum each `election`;
//! * each message arrives after a random latency, unless its link is cut: then it is lost.
//!
//! Once a leader is elected and the cluster has settled, the link between the leader and one
//! follower is cut, and stays cut. The follower no longer hears from the leader; it times out,
//! and what follows depends on PreVote and CheckQuorum. A run is a pure function of its seed.

use crate::properties::SAFETY;
use crate::raft::{Action, RaftModel};
use crate::state::{Body, Message, Role, ServerId, State, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The clocks of a run, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How often a leader sends AppendEntries.
    pub heartbeat: u64,
    /// The election timeout: each timer fires after a random time in `[election, 2 * election)`.
    pub election: u64,
    /// Each message takes a random time in this range, inclusive.
    pub latency: (u64, u64),
    /// A client writes to the leader this often (`None`: the cluster is idle).
    pub write_every: Option<u64>,
}

impl Default for Timing {
    /// etcd's defaults: heartbeats every 100 ms, an election timeout of 1 s; a few milliseconds
    /// of latency.
    fn default() -> Self {
        Timing {
            heartbeat: 100,
            election: 1000,
            latency: (1, 10),
            write_every: None,
        }
    }
}

/// One run: before the cut, and after it.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// The clocks of the run.
    pub timing: Timing,
    /// How long the cluster runs whole before the link is cut.
    pub settle: u64,
    /// How long it runs with the link cut.
    pub partitioned: u64,
    /// Cut every link of the leader instead of one: the leader is isolated.
    pub isolate: bool,
}

/// What a run saw after the cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The link cut: the leader at the time, and the follower it lost (the first of them when
    /// the leader is isolated).
    pub cut: (ServerId, ServerId),
    /// The highest term when the link was cut.
    pub term_at_cut: Term,
    /// When (after the cut) the leader at the cut stopped leading, if it did.
    pub leader_stepped_down: Option<u64>,
    /// Elections won after the cut.
    pub elections: usize,
    /// The highest term any server reached.
    pub max_term: Term,
    /// When (after the cut) the leadership that lasted to the end of the run began, if one did
    /// and it held for at least the second half of the partition: a stable leader. 0 when the
    /// leader from before the cut kept its place.
    pub stable_after: Option<u64>,
    /// Milliseconds after the cut with no leader at all.
    pub leaderless: u64,
    /// The first safety property a step broke, if any (the run stops there).
    pub violation: Option<&'static str>,
}

/// The driver's view of one server's clocks.
#[derive(Clone, Copy, Debug, Default)]
struct Clocks {
    /// Since the election timer last restarted.
    elapsed: u64,
    /// When it fires.
    timeout: u64,
    /// Leaders: since the last heartbeat, and since the last quorum check.
    heartbeat: u64,
    check: u64,
}

struct Driver<'m> {
    model: &'m RaftModel,
    timing: Timing,
    rng: ChaCha8Rng,
    state: State,
    clocks: Vec<Clocks>,
    /// Messages in flight by delivery time (and a sequence number, for a total order).
    queue: BinaryHeap<Reverse<(u64, u64, Message)>>,
    seq: u64,
    now: u64,
    /// The server whose links are cut, and the servers it cannot reach, as a bitset.
    cut: Option<(ServerId, u8)>,
    violation: Option<&'static str>,
}

/// Runs one scenario with `seed`.
pub fn run(model: &RaftModel, scenario: &Scenario, seed: u64) -> Run {
    let n = model.bounds.servers as usize;
    let mut d = Driver {
        model,
        timing: scenario.timing,
        rng: ChaCha8Rng::seed_from_u64(seed),
        state: model.init_state(),
        clocks: vec![Clocks::default(); n],
        queue: BinaryHeap::new(),
        seq: 0,
        now: 0,
        cut: None,
        violation: None,
    };
    for i in 0..n {
        d.restart_timer(i);
    }
    let cut_at = scenario.settle;
    let end = cut_at + scenario.partitioned;
    let mut cut = (0, 1);
    let mut term_at_cut = 0;
    let mut stepped_down = None;
    let mut elections_at_cut = 0;
    let mut leadership: Option<(Term, ServerId)> = None;
    let mut since = 0;
    let mut leaderless = 0;
    while d.now < end && d.violation.is_none() {
        if d.now == cut_at {
            // The leader loses its link to the first other voter (server 0 if there is no
            // leader, which the settling time makes unlikely).
            let leader = d.leader().map_or(0, |(_, l)| l);
            let other = (0..n as ServerId)
                .find(|&j| j != leader)
                .expect("two servers");
            cut = (leader, other);
            let lost = if scenario.isolate {
                ((1u16 << n) - 1) as u8 & !(1 << leader)
            } else {
                1 << other
            };
            d.cut = Some((leader, lost));
            elections_at_cut = d.state.elections.len();
            term_at_cut = d.max_term();
        }
        d.deliver_due();
        d.tick();
        if d.now >= cut_at && stepped_down.is_none() && d.state.server(cut.0).role != Role::Leader {
            stepped_down = Some(d.now - cut_at);
        }
        let now_leading = d.leader();
        if now_leading != leadership {
            leadership = now_leading;
            since = d.now;
        }
        if d.now >= cut_at && now_leading.is_none() {
            leaderless += 1;
        }
        d.now += 1;
    }
    let held_from = since.max(cut_at);
    let stable_after = (leadership.is_some() && end - held_from >= scenario.partitioned / 2)
        .then_some(held_from - cut_at);
    Run {
        cut,
        term_at_cut,
        leader_stepped_down: stepped_down,
        elections: d.state.elections.len() - elections_at_cut,
        max_term: d.max_term(),
        stable_after,
        leaderless,
        violation: d.violation,
    }
}

impl Driver<'_> {
    fn max_term(&self) -> Term {
        self.state
            .servers
            .iter()
            .map(|s| s.current_term)
            .max()
            .unwrap_or(0)
    }

    /// The leader of the highest term, if any server leads.
    fn leader(&self) -> Option<(Term, ServerId)> {
        self.state
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.role == Role::Leader)
            .map(|(i, s)| (s.current_term, i as ServerId))
            .max()
    }

    fn restart_timer(&mut self, i: usize) {
        let e = self.timing.election;
        self.clocks[i].elapsed = 0;
        self.clocks[i].timeout = self.rng.gen_range(e..2 * e);
    }

    /// Takes `action` if the specification allows it: schedules what it sent, restarts the
    /// timers it restarts, and checks every safety property on the new state.
    fn step(&mut self, action: Action) {
        let Some(next) = self.model.step(&self.state, &action) else {
            return;
        };
        for m in next.network.distinct() {
            for _ in self.state.network.count(m)..next.network.count(m) {
                let (lo, hi) = self.timing.latency;
                let at = self.now + self.rng.gen_range(lo..=hi);
                self.seq += 1;
                self.queue.push(Reverse((at, self.seq, m.clone())));
            }
        }
        let n = next.servers.len();
        let mut elected = Vec::new();
        for i in 0..n {
            let (before, after) = (&self.state.servers[i], &next.servers[i]);
            let heard_leader = matches!(&action, Action::Receive(m) if m.to as usize == i
                && matches!(m.body, Body::AppendEntries { .. } | Body::InstallSnapshot { .. })
                && m.term == after.current_term);
            let granted = next.network.distinct().any(|m| {
                m.from as usize == i
                    && m.body == Body::RequestVoteReply { vote_granted: true }
                    && self.state.network.count(m) < next.network.count(m)
            });
            let changed = before.current_term != after.current_term || before.role != after.role;
            if after.role == Role::Leader && before.role != Role::Leader {
                elected.push(i as ServerId);
            }
            if changed || heard_leader || granted {
                self.restart_timer(i);
            }
        }
        self.violation = SAFETY
            .iter()
            .find(|(_, holds)| !holds(self.model, &next))
            .map(|(name, _)| *name);
        self.state = next;
        for i in elected {
            self.clocks[i as usize].heartbeat = 0;
            self.clocks[i as usize].check = 0;
            self.broadcast(i);
        }
    }

    /// A leader sends every peer all its entries from the peer's next index on.
    fn broadcast(&mut self, leader: ServerId) {
        let peers = self.model.replication_peers(&self.state, leader);
        for peer in (0..self.state.servers.len() as ServerId).filter(|p| peers & (1 << p) != 0) {
            let s = self.state.server(leader);
            let prev = s.next_index[peer as usize].saturating_sub(1);
            let count = s.last_index().saturating_sub(prev);
            self.step(Action::AppendEntries {
                leader,
                peer,
                prev_log_index: prev,
                count,
            });
        }
    }

    /// Delivers (or, across the cut link, loses) every message due by now.
    fn deliver_due(&mut self) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > self.now || self.violation.is_some() {
                return;
            }
            let Some(Reverse((_, _, m))) = self.queue.pop() else {
                return;
            };
            // A message the specification discarded as dead is gone.
            if self.state.network.count(&m) == 0 {
                continue;
            }
            let cut = self.cut.is_some_and(|(a, lost)| {
                (m.from == a && lost & (1 << m.to) != 0) || (m.to == a && lost & (1 << m.from) != 0)
            });
            if cut {
                self.step(Action::Drop(m));
                continue;
            }
            let to = m.to;
            let reply_to_leader = matches!(m.body, Body::AppendEntriesReply { .. });
            self.step(Action::Receive(m));
            if reply_to_leader && self.state.server(to).role == Role::Leader {
                if let Some(index) = self.model.commit_point(&self.state, to) {
                    self.step(Action::AdvanceCommitIndex(to, index));
                }
            }
        }
    }

    /// One millisecond of every server's clocks, and the client's.
    fn tick(&mut self) {
        for i in 0..self.state.servers.len() {
            if self.violation.is_some() {
                return;
            }
            let id = i as ServerId;
            let c = &mut self.clocks[i];
            if self.state.servers[i].role == Role::Leader {
                c.heartbeat += 1;
                c.check += 1;
                let (beat, check) = (
                    c.heartbeat >= self.timing.heartbeat,
                    c.check >= self.timing.election,
                );
                if beat {
                    c.heartbeat = 0;
                }
                if check {
                    c.check = 0;
                }
                if beat {
                    self.broadcast(id);
                }
                if check && self.model.bounds.check_quorum {
                    self.step(Action::CheckQuorum(id));
                }
            } else {
                c.elapsed += 1;
                let (lease_over, fires) =
                    (c.elapsed >= self.timing.election, c.elapsed >= c.timeout);
                if lease_over && self.state.servers[i].lease {
                    self.step(Action::LeaseExpires(id));
                }
                if fires {
                    self.restart_timer(i);
                    if self.model.can_timeout(&self.state, id) {
                        self.step(Action::Timeout(id));
                    }
                }
            }
        }
        if let Some(every) = self.timing.write_every {
            if self.now.is_multiple_of(every) {
                if let Some((_, leader)) = self.leader() {
                    self.step(Action::ClientRequest(leader, 1));
                }
            }
        }
    }
}
