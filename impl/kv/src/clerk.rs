//! A sans-IO client: it decides what to send where and what a response means; its caller carries the
//! requests, and decides how long to wait for a response and how often to retry.
//!
//! The contract: a write is applied at most once, and a [`Progress::Done`] answer is definite (the write
//! was applied exactly once, with this answer; the value was read at some point between the operation's
//! start and its end). A write is retried with the same sequence number however often it is sent, so its
//! session in the store answers a retry of a write applied already. The only way an operation ends
//! without a definite answer is [`Progress::Failed`]: above all [`Failure::SessionExpired`], when the
//! store evicted the client's session and whether the write was applied is unknown.

use crate::command::{ClientId, Command, Reply, Seq, Write};
use crate::wire::{Request, Response};

/// An operation of the key-value service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Reads a key (`""` when missing); served without the log, through a ReadIndex.
    Get {
        /// The key.
        key: String,
    },
    /// Changes the data, through the log and the client's session.
    Write(Write),
}

impl Op {
    /// Reads `key`.
    pub fn get(key: impl Into<String>) -> Op {
        Op::Get { key: key.into() }
    }

    /// Sets `key` to `value`.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Op {
        Op::Write(Write::Put {
            key: key.into(),
            value: value.into(),
        })
    }

    /// Appends `arg` to `key`'s value.
    pub fn append(key: impl Into<String>, arg: impl Into<String>) -> Op {
        Op::Write(Write::Append {
            key: key.into(),
            arg: arg.into(),
        })
    }

    /// Sets `key` to `new` if its value is `expected`.
    pub fn cas(key: impl Into<String>, expected: impl Into<String>, new: impl Into<String>) -> Op {
        Op::Write(Write::Cas {
            key: key.into(),
            expected: expected.into(),
            new: new.into(),
        })
    }
}

/// An operation's definite answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// A `Get`'s value.
    Value(String),
    /// A `Put` or an `Append` was applied.
    Ok,
    /// A `Cas` was applied: whether it swapped.
    Swapped(bool),
}

/// Why an operation ended without a definite answer. A write that ends so may or may not have been
/// applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The store evicted this client's session (see [`crate::session`]): the write may have been applied
    /// before, and its answer is lost. The clerk registers anew for its next write.
    #[error("the client's session expired: the write may or may not have been applied")]
    SessionExpired,
    /// The store has applied a later write of this client id than the one in progress: another client
    /// uses the same id. The clerk registers anew for its next write.
    #[error("the store has applied a later write of this client id: is the id shared?")]
    Stale,
    /// The store could not decode the command (client and server disagree on the format).
    #[error("the store could not decode the command: {0}")]
    Malformed(String),
    /// A response that does not fit the request (a server bug, or a reply to another request).
    #[error("server {server} responded {response:?}, which does not answer the request")]
    Protocol {
        /// The server.
        server: usize,
        /// Its response.
        response: Response,
    },
}

/// What became of the operation in progress after a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not done yet: send what [`Clerk::next_request`] says.
    Pending,
    /// Done, with its definite answer.
    Done(Output),
    /// Ended without a definite answer.
    Failed(Failure),
}

/// [`Clerk::begin`] refused: an operation is in progress. The operation refused is handed back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an operation is in progress")]
pub struct Busy(pub Op);

/// One client of a cluster of servers numbered `0..n`, one operation at a time.
///
/// ```
/// use raft_kv::{Clerk, Command, Op, Output, Progress, Reply, Request, Response};
///
/// let mut clerk = Clerk::new(3);
/// clerk.begin(Op::put("x", "1")).unwrap();
/// // No session yet: register first, with the server it believes leads.
/// assert_eq!(clerk.next_request(), Some((0, Request::Propose(Command::Register))));
/// // Server 0 knows that server 2 leads.
/// assert_eq!(clerk.on_reply(0, Some(Response::NotLeader(Some(2)))), Progress::Pending);
/// let (server, request) = clerk.next_request().unwrap();
/// assert_eq!((server, request), (2, Request::Propose(Command::Register)));
/// let registered = Response::Committed(Reply::Registered(7));
/// assert_eq!(clerk.on_reply(2, Some(registered)), Progress::Pending);
/// // Now the write, with sequence number 1, as often as it takes.
/// let (server, request) = clerk.next_request().unwrap();
/// assert_eq!(server, 2);
/// assert!(matches!(request, Request::Propose(Command::Write { client: 7, seq: 1, .. })));
/// assert_eq!(clerk.on_reply(2, Some(Response::Committed(Reply::Done))), Progress::Done(Output::Ok));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clerk {
    servers: usize,
    /// The server believed to lead.
    leader: usize,
    /// The client's id, once registered.
    client: Option<ClientId>,
    /// The sequence number of the write in progress, or of the next one.
    seq: Seq,
    /// The operation in progress.
    op: Option<Op>,
    /// The server whose response is awaited.
    sent: Option<usize>,
}

impl Clerk {
    /// A clerk of a cluster of `servers` servers, with no session yet, that believes server 0 leads.
    ///
    /// # Panics
    ///
    /// If `servers` is 0.
    pub fn new(servers: usize) -> Clerk {
        assert!(servers > 0, "a cluster has servers");
        Clerk {
            servers,
            leader: 0,
            client: None,
            seq: 1,
            op: None,
            sent: None,
        }
    }

    /// Starts `op`; refused while another operation is in progress.
    pub fn begin(&mut self, op: Op) -> Result<(), Busy> {
        if self.op.is_some() {
            return Err(Busy(op));
        }
        self.op = Some(op);
        Ok(())
    }

    /// Where to send what for the operation in progress (`None` with none in progress): a `Register` for
    /// a write while the clerk has no session, the write itself with the same sequence number on every
    /// retry, a `Read` for a get. Each call sends anew: the clerk awaits a response from that server.
    pub fn next_request(&mut self) -> Option<(usize, Request)> {
        let request = match (self.op.as_ref()?, self.client) {
            (Op::Get { key }, _) => Request::Read { key: key.clone() },
            (Op::Write(_), None) => Request::Propose(Command::Register),
            (Op::Write(write), Some(client)) => Request::Propose(Command::Write {
                client,
                seq: self.seq,
                write: write.clone(),
            }),
        };
        self.sent = Some(self.leader);
        Some((self.leader, request))
    }

    /// What `server` responded to the request [`Clerk::next_request`] last sent it (`None`: no response came, a
    /// timeout or a broken connection). A response from a server that no request awaits changes nothing.
    ///
    /// A timeout, or a server that cannot serve, moves on to the next server in turn; a server that does
    /// not lead moves on to the leader it names, else to the next in turn; a proposal whose fate the server
    /// does not know is sent again.
    pub fn on_reply(&mut self, server: usize, response: Option<Response>) -> Progress {
        if self.op.is_none() || self.sent != Some(server) {
            return Progress::Pending;
        }
        self.sent = None;
        let response = match response {
            None | Some(Response::Unavailable) => {
                self.leader = self.after(server);
                return Progress::Pending;
            }
            Some(Response::NotLeader(hint)) => {
                self.leader = match hint {
                    Some(leader) if leader < self.servers && leader != server => leader,
                    _ => self.after(server),
                };
                return Progress::Pending;
            }
            Some(Response::Lost | Response::Unknown) => return Progress::Pending,
            Some(response) => response,
        };
        let op = self.op.as_ref().expect("an operation is in progress");
        match (op, self.client, response) {
            (Op::Get { .. }, _, Response::Value(value)) => self.finish(Ok(Output::Value(value))),
            (Op::Write(_), None, Response::Committed(Reply::Registered(client))) => {
                self.client = Some(client);
                self.seq = 1;
                Progress::Pending
            }
            (Op::Write(write), Some(_), Response::Committed(reply)) => {
                let result = match (write, reply) {
                    (Write::Put { .. } | Write::Append { .. }, Reply::Done) => Ok(Output::Ok),
                    (Write::Cas { .. }, Reply::Swapped(swapped)) => Ok(Output::Swapped(swapped)),
                    (_, Reply::SessionExpired) => {
                        self.client = None;
                        Err(Failure::SessionExpired)
                    }
                    (_, Reply::Stale) => {
                        self.client = None;
                        Err(Failure::Stale)
                    }
                    (_, Reply::Malformed(reason)) => Err(Failure::Malformed(reason)),
                    (_, reply) => Err(Failure::Protocol {
                        server,
                        response: Response::Committed(reply),
                    }),
                };
                self.finish(result)
            }
            (_, _, response) => self.finish(Err(Failure::Protocol { server, response })),
        }
    }

    /// Gives up on the operation in progress and returns it. An abandoned write may still be applied
    /// (a copy of it may be on its way): the next write gets a new sequence number all the same.
    pub fn abandon(&mut self) -> Option<Op> {
        self.sent = None;
        let op = self.op.take()?;
        if matches!(op, Op::Write(_)) {
            self.seq += 1;
        }
        Some(op)
    }

    /// Ends the operation in progress. A write's sequence number is never used again, whatever its end:
    /// reusing one would have the session answer the new write with the old one's answer.
    fn finish(&mut self, result: Result<Output, Failure>) -> Progress {
        if let Some(Op::Write(_)) = self.op.take() {
            self.seq += 1;
        }
        match result {
            Ok(output) => Progress::Done(output),
            Err(failure) => Progress::Failed(failure),
        }
    }

    fn after(&self, server: usize) -> usize {
        (server + 1) % self.servers
    }

    /// The operation in progress.
    pub fn op(&self) -> Option<&Op> {
        self.op.as_ref()
    }

    /// The client's id, once registered (none again after its session expired).
    pub fn client(&self) -> Option<ClientId> {
        self.client
    }

    /// The sequence number of the write in progress, or of the next write.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The server the clerk believes leads, to which it sends next.
    pub fn leader(&self) -> usize {
        self.leader
    }

    /// How many servers the cluster has.
    pub fn servers(&self) -> usize {
        self.servers
    }
}
