//! The event loop: a thread that drives a [`Host`] with real time. A round handles what arrived (messages,
//! proposals, status requests; at most [`MAX_BATCH`] of them), ticks the node if a tick is due, then saves,
//! sends and applies once for the round: the proposals and messages of one round share one sync. The cap
//! keeps a steady stream of input from holding back the save, the sends and the clock; and ticks missed
//! while the loop was stalled (a slow sync) are not made up in a burst, which would make a whole election
//! timeout pass in one instant.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use raft::{Envelope, NotLeader};

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
    /// A read of the state machine ([`StateMachine::query`]).
    Query(Vec<u8>, Sender<Vec<u8>>),
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
    /// The loop stopped (asked to, or because its storage failed) before the proposal's fate was known here:
    /// it may or may not commit.
    Stopped,
}

/// Where a node's messages go.
pub trait Transport {
    /// Sends `envelope` to its addressee, or drops it (Raft copes with loss).
    fn send(&mut self, envelope: Envelope);
}

/// How a loop runs.
#[derive(Clone, Copy, Debug)]
pub struct Runtime {
    /// The length of one tick of the core's clock (10 ms suits the core's default timeouts).
    pub tick: Duration,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime {
            tick: Duration::from_millis(10),
        }
    }
}

impl Runtime {
    /// Runs `host` until [`Input::Stop`] or until every sender of `inbox` is gone; answers go to `answer`.
    /// Returns the host (for its state machine and metrics), or why it had to stop. Either way, every
    /// proposal still waiting is answered with [`Answer::Stopped`].
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
        let mut next_tick = Instant::now() + self.tick;
        loop {
            let mut next =
                match inbox.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                    Ok(input) => Some(input),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                };
            let mut taken = 0;
            while let Some(input) = next.take() {
                taken += 1;
                match input {
                    Input::Message(envelope) => {
                        if let Err(e) = host.step(envelope) {
                            tracing::warn!(node = host.node().id(), "refused a message: {e}");
                        }
                    }
                    Input::Propose(command, ticket) => {
                        if let Err((not_leader, ticket)) = host.propose(command, ticket) {
                            answer(ticket, Answer::NotLeader(not_leader));
                        }
                    }
                    Input::Status(reply) => {
                        let _ = reply.send(host.status());
                    }
                    Input::Query(request, reply) => {
                        let _ = reply.send(host.machine().query(&request));
                    }
                    Input::Stop => return Ok(()),
                }
                if taken < MAX_BATCH {
                    next = inbox.try_recv().ok();
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
            for envelope in sent.drain(..) {
                transport.send(envelope);
            }
            for (ticket, outcome) in done.drain(..) {
                answer(ticket, Answer::Done(outcome));
            }
        }
    }
}
