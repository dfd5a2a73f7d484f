//! The event loop: a thread that drives a [`Host`] with real time. It ticks the node every
//! [`Runtime::tick`], handles whatever arrived (messages, proposals, status requests) in one batch, then
//! saves, sends and applies once for the batch: the proposals and messages of one round share one sync.

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

/// What a node's loop says to its clients.
#[derive(Debug)]
pub enum Answer {
    /// The proposal's fate.
    Done(Outcome),
    /// This node does not lead; try the leader it names, if any.
    NotLeader(NotLeader),
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
    /// Returns the host (for its state machine and metrics), or why it had to stop.
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
        let mut sent = Vec::new();
        let mut done = Vec::new();
        let mut next_tick = Instant::now() + self.tick;
        loop {
            let first =
                match inbox.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                    Ok(input) => Some(input),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Ok(host),
                };
            for input in first
                .into_iter()
                .chain(std::iter::from_fn(|| inbox.try_recv().ok()))
            {
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
                    Input::Stop => return Ok(host),
                }
            }
            let now = Instant::now();
            while now >= next_tick {
                host.tick();
                next_tick += self.tick;
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
