//! The event loop: a thread that drives a [`Host`] with real time. A round handles what arrived (messages,
//! proposals, status requests; at most [`MAX_BATCH`] of them), ticks the node if a tick is due, then saves,
//! sends and applies once for the round: the proposals and messages of one round share one sync, and the
//! round's proposals are proposed together at its end ([`Host::propose_batch`]), so that each follower gets
//! them in one AppendEntries where the core's batch limits allow. The cap
//! keeps a steady stream of input from holding back the save, the sends and the clock; and ticks missed
//! while the loop was stalled (a slow sync) are not made up in a burst, which would make a whole election
//! timeout pass in one instant.
//!
//! A loop whose inbox is empty can busy-poll it for a while ([`Runtime::poll`]) before it blocks: a message
//! that arrives within that time is taken without the thread being put to sleep and woken again, which
//! on this machine is most of a write's latency when few clients are waiting. It costs a core's time while
//! it lasts; the thread yields between polls, so other threads that can run do.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use raft::{ConfChange, ConfChangeRefused, Envelope, NodeId, NotLeader, TransferRefused};

use crate::host::{Host, HostError, Outcome, StateMachine, Status};
use crate::storage::Storage;

/// The most inputs a loop handles before it saves, sends and applies.
pub const MAX_BATCH: usize = 4096;

/// What a node's loop takes in.
pub enum Input<T> {
    /// A message from a peer.
    Message(Envelope),
    /// A client's command, with the ticket its [`Outcome`] goes back with; a node that is not the leader
    /// answers at once with [`Answer::NotLeader`].
    Propose(Vec<u8>, T),
    /// A request for the node's metrics.
    Status(Sender<Status>),
    /// A read of the state machine ([`StateMachine::query`]) as applied on this node so far (not
    /// linearizable).
    Query(Vec<u8>, Sender<Vec<u8>>),
    /// A linearizable read ([`Host::read`]), with the ticket its [`Outcome::Read`] goes back with; a node
    /// that is not the leader answers at once with [`Answer::NotLeader`].
    Read(Vec<u8>, T),
    /// A membership change ([`Host::change_membership`]) recording these addresses, with the ticket its
    /// [`Outcome::Committed`] goes back with once it commits; a refusal is answered at once.
    ChangeMembership(ConfChange, BTreeMap<NodeId, String>, T),
    /// Hand the leadership over to this node ([`Host::transfer_leader`]); the answer says whether the
    /// transfer began.
    TransferLeader(NodeId, Sender<Result<(), TransferRefused>>),
    /// Stop the loop.
    Stop,
}

/// What a node's loop says to its clients: every proposal gets exactly one answer.
#[derive(Debug)]
pub enum Answer {
    /// The proposal's fate.
    Done(Outcome),
    /// This node does not lead; try the leader it names, if any.
    NotLeader(NotLeader),
    /// The leader refused the membership change (one is pending, it has not committed in its term, or the
    /// change is not one step from the configuration in force).
    Refused(ConfChangeRefused),
    /// The loop stopped (asked to, or because its storage failed) before the proposal's fate was known here:
    /// it may or may not commit.
    Stopped,
}

/// Where a node's messages go.
pub trait Transport {
    /// Sends `envelope` to its addressee, or drops it (Raft copes with loss).
    fn send(&mut self, envelope: Envelope);

    /// Where to reach each server the node knows of ([`Host::addresses`]): told at the start, and again
    /// whenever its configuration changes. Transports that need no addresses ignore it.
    fn set_addresses(&mut self, _addresses: &BTreeMap<NodeId, String>) {}
}

/// A bound on the bytes of peers' messages waiting in a loop's inbox (as [`crate::tcp::weight`] counts
/// them). Whoever delivers a message reserves its bytes first, waiting while the inbox is full (a TCP
/// receiver then stops reading, and its peer's connection pushes back); the loop gives them back as it
/// takes each message.
#[derive(Debug)]
pub struct InboxBytes {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl InboxBytes {
    /// A bound of `max` bytes.
    pub fn new(max: usize) -> Arc<InboxBytes> {
        Arc::new(InboxBytes {
            used: Mutex::new(0),
            freed: Condvar::new(),
            max,
        })
    }

    /// Reserves `n` bytes, waiting at most `patience` for room; whether it did. A message larger than the
    /// bound fits into an empty inbox.
    pub fn reserve(&self, n: usize, patience: Duration) -> bool {
        let used = self.used.lock().expect("no panic holds it");
        let (mut used, _) = self
            .freed
            .wait_timeout_while(used, patience, |used| *used > 0 && *used + n > self.max)
            .expect("no panic holds it");
        if *used > 0 && *used + n > self.max {
            return false;
        }
        *used += n;
        true
    }

    /// Gives back `n` bytes reserved before.
    pub fn release(&self, n: usize) {
        let mut used = self.used.lock().expect("no panic holds it");
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }

    /// The bytes reserved now.
    pub fn used(&self) -> usize {
        *self.used.lock().expect("no panic holds it")
    }
}

/// How a loop runs.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The length of one tick of the core's clock (10 ms suits the core's default timeouts).
    pub tick: Duration,
    /// The bound its peers' deliveries reserve from, if they do: the loop gives back each message's bytes
    /// as it takes it.
    pub inbox_bytes: Option<Arc<InboxBytes>>,
    /// How long a loop whose inbox is empty polls it, yielding its thread between polls, before it blocks
    /// (zero: it blocks at once).
    pub poll: Duration,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime {
            tick: Duration::from_millis(10),
            inbox_bytes: None,
            poll: Duration::ZERO,
        }
    }
}

impl Runtime {
    /// Runs `host` until [`Input::Stop`] or until every sender of `inbox` is gone; answers go to `answer`.
    /// Returns the host (for its state machine and metrics), or why it had to stop. Either way, every
    /// proposal still waiting, or still in the inbox, is answered with [`Answer::Stopped`].
    pub fn run<S, M, T>(
        self,
        mut host: Host<S, M, T>,
        inbox: Receiver<Input<T>>,
        mut transport: impl Transport,
        mut answer: impl FnMut(T, Answer),
    ) -> Result<Host<S, M, T>, HostError>
    where
        S: Storage,
        M: StateMachine,
    {
        let result = self.rounds(&mut host, &inbox, &mut transport, &mut answer);
        for ticket in host.abandon() {
            answer(ticket, Answer::Stopped);
        }
        // Proposals that came after the last round (behind a stop) never reached the node.
        for input in inbox.try_iter() {
            if let Input::Propose(_, ticket)
            | Input::Read(_, ticket)
            | Input::ChangeMembership(_, _, ticket) = input
            {
                answer(ticket, Answer::Stopped);
            }
        }
        result.map(|()| host)
    }

    /// Runs rounds until the loop is asked to stop (`Ok`) or the host fails.
    fn rounds<S, M, T>(
        self,
        host: &mut Host<S, M, T>,
        inbox: &Receiver<Input<T>>,
        transport: &mut impl Transport,
        answer: &mut impl FnMut(T, Answer),
    ) -> Result<(), HostError>
    where
        S: Storage,
        M: StateMachine,
    {
        let mut sent = Vec::new();
        let mut done = Vec::new();
        let mut proposals = Vec::new();
        let mut next_tick = Instant::now() + self.tick;
        let mut addresses = host.addresses();
        transport.set_addresses(&addresses);
        let mut configuration = host.node().membership_index();
        loop {
            let until_tick = next_tick.saturating_duration_since(Instant::now());
            let mut next = match poll(inbox, self.poll.min(until_tick)) {
                Some(input) => Some(input),
                None => {
                    match inbox.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                        Ok(input) => Some(input),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                }
            };
            let mut taken = 0;
            while let Some(input) = next.take() {
                taken += 1;
                match input {
                    Input::Message(envelope) => {
                        if let Some(bound) = &self.inbox_bytes {
                            bound.release(crate::tcp::weight(&envelope));
                        }
                        if let Err(e) = host.step(envelope) {
                            tracing::warn!(node = host.node().id(), "refused a message: {e}");
                        }
                    }
                    // Proposed together at the end of the round, so that each follower gets them in one
                    // AppendEntries.
                    Input::Propose(command, ticket) => proposals.push((command, ticket)),
                    Input::Status(reply) => {
                        let _ = reply.send(host.status());
                    }
                    Input::Query(request, reply) => {
                        let _ = reply.send(host.machine().query(&request));
                    }
                    Input::Read(request, ticket) => {
                        if let Err((not_leader, ticket)) = host.read(request, ticket) {
                            answer(ticket, Answer::NotLeader(not_leader));
                        }
                    }
                    Input::ChangeMembership(change, given, ticket) => {
                        match host.change_membership(change, given, ticket) {
                            Ok(_) => {}
                            Err((ConfChangeRefused::NotLeader(n), ticket)) => {
                                answer(ticket, Answer::NotLeader(n))
                            }
                            Err((refused, ticket)) => answer(ticket, Answer::Refused(refused)),
                        }
                    }
                    Input::TransferLeader(target, reply) => {
                        let _ = reply.send(host.transfer_leader(target));
                    }
                    Input::Stop => {
                        for (_, ticket) in proposals.drain(..) {
                            answer(ticket, Answer::Stopped);
                        }
                        return Ok(());
                    }
                }
                if taken < MAX_BATCH {
                    next = inbox.try_recv().ok();
                }
            }
            if !proposals.is_empty() {
                if let Err((not_leader, tickets)) =
                    host.propose_batch(std::mem::take(&mut proposals))
                {
                    for ticket in tickets {
                        answer(ticket, Answer::NotLeader(not_leader));
                    }
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                host.tick();
                next_tick += self.tick;
                if now >= next_tick {
                    // More than one tick was missed: the loop stalled. The node's clock resumes from now.
                    next_tick = now + self.tick;
                }
            }
            host.flush(&mut sent, &mut done)?;
            // A new configuration may name servers the transport does not know of yet.
            if host.node().membership_index() != configuration {
                configuration = host.node().membership_index();
                let now = host.addresses();
                if now != addresses {
                    addresses = now;
                    transport.set_addresses(&addresses);
                }
            }
            for envelope in sent.drain(..) {
                transport.send(envelope);
            }
            for (ticket, outcome) in done.drain(..) {
                answer(ticket, Answer::Done(outcome));
            }
        }
    }
}

/// The first value to arrive in `inbox` within `patience`, polling it and yielding the thread in between;
/// `None` if none did (or the inbox has no senders left, which the blocking receive that follows reports).
/// The event loop waits for its inputs this way (`Runtime::poll`); a client of the loop may wait for its
/// answers the same way.
pub fn poll<T>(inbox: &Receiver<T>, patience: Duration) -> Option<T> {
    if patience.is_zero() {
        return None;
    }
    let until = Instant::now() + patience;
    loop {
        match inbox.try_recv() {
            Ok(input) => return Some(input),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() >= until => return None,
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
}
