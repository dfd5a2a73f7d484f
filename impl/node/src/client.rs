//! Clients. A node serves them on an address of its own, apart from its peers': on a connection a client
//! sends requests, each with an id of its choosing, and gets one reply per request with the same id
//! (proposals may be answered out of order, once they commit). Frames are length-prefixed postcard payloads,
//! length-checked as the peers' are. A node serves at most [`Limits::max_connections`] clients at once
//! (a new one closes the one idle longest); a request, once begun, must arrive whole within [`Limits::frame_timeout`], and a reply that cannot be
//! written within [`Limits::write_timeout`] ends the connection. Administrative requests (membership
//! changes, leadership transfers) must prove that their client holds the cluster's secret, by an HMAC of a
//! challenge the node gave on the same connection ([`Request::Admin`], [`Client::admin`]).

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use raft::{ConfChange, Index, NodeId};
use serde::{Deserialize, Serialize};

use crate::host::{Outcome, Status};
use crate::runtime::{Answer, Input};
use crate::tcp::{
    nonce, read_payload, read_payload_timed, write_payload, Limits, Secret, Slot, Slots, WireError,
    MAX_FRAME, NONCE,
};

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Replicate this command (answered once it commits, or at once by a node that does not lead).
    Propose(Vec<u8>),
    /// Read the state machine ([`crate::host::StateMachine::query`]) on this node, as applied so far (not
    /// linearizable: a follower may lag).
    Query(Vec<u8>),
    /// A linearizable read of the state machine (ReadIndex), answered by the leader with
    /// [`Reply::Value`], or at once by a node that does not lead.
    Read(Vec<u8>),
    /// This node's metrics.
    Status,
    /// A fresh challenge for an administrative request on this connection: answered with
    /// [`Reply::Challenge`].
    Challenge,
    /// An administrative request, with the proof that the client holds the cluster's secret: the
    /// HMAC-SHA256 of the connection's last challenge and the request's encoding
    /// ([`crate::tcp::Secret::prove_admin`]). A challenge serves one request. Without a valid proof the
    /// request is refused ([`Reply::Refused`]). [`Client::admin`] does all of this.
    Admin(AdminRequest, [u8; NONCE]),
}

/// What an administrator may ask of the cluster, with the cluster's secret ([`Request::Admin`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Hand the leadership over to this node (`raft::Node::transfer_leader`): answered with
    /// [`Reply::TransferStarted`] by the leader, at once with [`Reply::NotLeader`] by another node.
    TransferLeader(NodeId),
    /// Change the membership (`raft::Node::propose_conf_change`), recording these addresses (each a peer
    /// address, `HOST:PORT`) in the new configuration: answered with [`Reply::Committed`] once the change
    /// commits, with [`Reply::Busy`] if the leader cannot take it yet, with [`Reply::Refused`] if it is no
    /// single step from the configuration in force, at once with [`Reply::NotLeader`] by another node.
    ChangeMembership(ConfChange, BTreeMap<NodeId, String>),
}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The command committed at `index`; `response` is the state machine's answer.
    Committed {
        /// Its index.
        index: Index,
        /// The state machine's answer.
        response: Vec<u8>,
    },
    /// This node does not lead; the leader it knows of, if any.
    NotLeader(Option<NodeId>),
    /// Another entry committed where the command was: propose it again.
    Lost,
    /// A snapshot covered the command: it may or may not have committed.
    Unknown,
    /// A query's answer.
    Value(Vec<u8>),
    /// The node's metrics.
    Status(Status),
    /// The node is stopping (a proposal's fate is unknown: it may or may not commit).
    Unavailable,
    /// The leader began handing over (it sends TimeoutNow once the target holds its whole log, and gives up
    /// after an election timeout).
    TransferStarted,
    /// The request cannot be done as asked (for a transfer: the target is not a server of the cluster; for
    /// a membership change: it is not one step from the configuration in force).
    Refused(String),
    /// The leader cannot take a membership change yet (the previous one is not committed, or it has not
    /// committed an entry of its term): ask again shortly.
    Busy(String),
    /// A challenge for the connection's next administrative request ([`Request::Challenge`]).
    Challenge([u8; NONCE]),
}

/// How a proposal's answer finds its way back to its connection.
pub struct Ticket {
    id: u64,
    reply: Sender<(u64, Reply)>,
}

/// Answers a proposal: pass this to [`crate::runtime::Runtime::run`] as its `answer`.
pub fn answer(ticket: Ticket, answer: Answer) {
    let reply = match answer {
        Answer::Done(Outcome::Committed { index, response }) => {
            Reply::Committed { index, response }
        }
        Answer::Done(Outcome::Lost) => Reply::Lost,
        Answer::Done(Outcome::Unknown) => Reply::Unknown,
        Answer::Done(Outcome::Read(value)) => Reply::Value(value),
        Answer::Done(Outcome::ReadAborted(n)) | Answer::NotLeader(n) => Reply::NotLeader(n.leader),
        Answer::Refused(refused @ raft::ConfChangeRefused::Invalid(_)) => {
            Reply::Refused(refused.to_string())
        }
        Answer::Refused(busy) => Reply::Busy(busy.to_string()),
        Answer::Stopped => Reply::Unavailable,
    };
    let _ = ticket.reply.send((ticket.id, reply));
}

/// Serves clients on `listener`, within `limits`, passing their requests to the node's loop through
/// `inbox`, until `stop`. Administrative requests must prove that their client holds `secret` (all are
/// refused without one).
pub fn serve(
    listener: TcpListener,
    inbox: Sender<Input<Ticket>>,
    limits: Limits,
    secret: Option<Secret>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let slots = Slots::new(limits.max_connections);
    std::thread::Builder::new()
        .name("raft-clients".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, addr)) => {
                        let slot = match slots.admit(&stream) {
                            Ok((slot, evicted)) => {
                                if let Some(old) = evicted {
                                    tracing::warn!(
                                        "{} clients: closed the one idle longest, {old}",
                                        limits.max_connections
                                    );
                                }
                                slot
                            }
                            Err(e) => {
                                tracing::warn!("cannot serve client {addr}: {e}");
                                continue;
                            }
                        };
                        let (inbox, limits, secret) =
                            (inbox.clone(), limits.clone(), secret.clone());
                        let spawned = std::thread::Builder::new()
                            .name("raft-client".into())
                            .spawn(move || {
                                if let Err(e) = session(stream, inbox, &limits, secret, &slot) {
                                    tracing::debug!("client {addr}: {e}");
                                }
                            });
                        if let Err(e) = spawned {
                            tracing::warn!("cannot serve client {addr}: {e}");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => tracing::warn!("accepting a client failed: {e}"),
                }
            }
        })
}

fn session(
    stream: TcpStream,
    inbox: Sender<Input<Ticket>>,
    limits: &Limits,
    secret: Option<Secret>,
    slot: &Slot,
) -> Result<(), WireError> {
    // The challenge the connection's next administrative request must answer.
    let mut challenge: Option<[u8; NONCE]> = None;
    stream.set_nonblocking(false)?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(limits.write_timeout))?;
    let (replies, outgoing) = channel::<(u64, Reply)>();
    let writer = stream.try_clone()?;
    std::thread::Builder::new()
        .name("raft-client-out".into())
        .spawn(move || write_replies(writer, outgoing))?;
    let mut input = BufReader::new(stream);
    loop {
        let payload = read_payload_timed(&mut input, MAX_FRAME, None, limits.frame_timeout)?;
        slot.touch();
        let (id, request): (u64, Request) = postcard::from_bytes(&payload)
            .map_err(|e| WireError::Malformed(format!("client request: {e}")))?;
        let gone = || WireError::Refused("the node is stopping".into());
        match request {
            Request::Propose(command) => {
                let ticket = Ticket {
                    id,
                    reply: replies.clone(),
                };
                if inbox.send(Input::Propose(command, ticket)).is_err() {
                    let _ = replies.send((id, Reply::Unavailable));
                    return Err(gone());
                }
            }
            Request::Challenge => {
                let fresh = nonce();
                challenge = Some(fresh);
                let _ = replies.send((id, Reply::Challenge(fresh)));
            }
            Request::Admin(request, proof) => {
                let encoded = postcard::to_stdvec(&request).expect("a request encodes");
                let proven = match (&secret, challenge.take()) {
                    (Some(secret), Some(c)) => secret.verify_admin(&c, &encoded, &proof),
                    _ => false,
                };
                if !proven {
                    tracing::warn!("refused an administrative request without a valid proof");
                    let why = "not authenticated: an administrative request needs a fresh challenge and                                the cluster's secret";
                    let _ = replies.send((id, Reply::Refused(why.into())));
                    continue;
                }
                match request {
                    AdminRequest::ChangeMembership(change, addresses) => {
                        let ticket = Ticket {
                            id,
                            reply: replies.clone(),
                        };
                        if inbox
                            .send(Input::ChangeMembership(change, addresses, ticket))
                            .is_err()
                        {
                            let _ = replies.send((id, Reply::Unavailable));
                            return Err(gone());
                        }
                    }
                    AdminRequest::TransferLeader(target) => {
                        let (tx, rx) = channel();
                        let reply = match inbox
                            .send(Input::TransferLeader(target, tx))
                            .ok()
                            .and_then(|_| rx.recv().ok())
                        {
                            Some(Ok(())) => Reply::TransferStarted,
                            Some(Err(raft::TransferRefused::NotLeader(n))) => {
                                Reply::NotLeader(n.leader)
                            }
                            Some(Err(refused)) => Reply::Refused(refused.to_string()),
                            None => Reply::Unavailable,
                        };
                        let _ = replies.send((id, reply));
                    }
                }
            }
            Request::Read(request) => {
                let ticket = Ticket {
                    id,
                    reply: replies.clone(),
                };
                if inbox.send(Input::Read(request, ticket)).is_err() {
                    let _ = replies.send((id, Reply::Unavailable));
                    return Err(gone());
                }
            }
            Request::Query(query) => {
                let (tx, rx) = channel();
                let reply = match inbox
                    .send(Input::Query(query, tx))
                    .ok()
                    .and_then(|_| rx.recv().ok())
                {
                    Some(value) => Reply::Value(value),
                    None => Reply::Unavailable,
                };
                let _ = replies.send((id, reply));
            }
            Request::Status => {
                let (tx, rx) = channel();
                let reply = match inbox
                    .send(Input::Status(tx))
                    .ok()
                    .and_then(|_| rx.recv().ok())
                {
                    Some(status) => Reply::Status(status),
                    None => Reply::Unavailable,
                };
                let _ = replies.send((id, reply));
            }
        }
    }
}

fn write_replies(stream: TcpStream, outgoing: Receiver<(u64, Reply)>) {
    let mut out = BufWriter::new(stream);
    while let Ok(first) = outgoing.recv() {
        for reply in std::iter::once(first).chain(std::iter::from_fn(|| outgoing.try_recv().ok())) {
            if write_payload(&mut out, &reply).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}

/// A client connection to one node.
pub struct Client {
    input: BufReader<TcpStream>,
    output: BufWriter<TcpStream>,
    next_id: u64,
}

impl Client {
    /// Connects to the node serving clients at `addr`; calls give up after `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        Ok(Client {
            input: BufReader::new(stream.try_clone()?),
            output: BufWriter::new(stream),
            next_id: 0,
        })
    }

    /// Sends the administrative `request`, proving with `secret` that it may: asks the node for a challenge
    /// first, then sends the request with its proof, and waits for the reply.
    pub fn admin(&mut self, secret: &Secret, request: AdminRequest) -> Result<Reply, WireError> {
        let challenge = match self.call(Request::Challenge)? {
            Reply::Challenge(c) => c,
            other => {
                return Err(WireError::Malformed(format!(
                    "the node answered a challenge request with {other:?}"
                )))
            }
        };
        let encoded = postcard::to_stdvec(&request).expect("a request encodes");
        let proof = secret.prove_admin(&challenge, &encoded);
        self.call(Request::Admin(request, proof))
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: Request) -> Result<Reply, WireError> {
        self.next_id += 1;
        let id = self.next_id;
        write_payload(&mut self.output, &(id, request))?;
        self.output.flush()?;
        loop {
            let payload = read_payload(&mut self.input, MAX_FRAME)?;
            let (got, reply): (u64, Reply) = postcard::from_bytes(&payload)
                .map_err(|e| WireError::Malformed(format!("reply: {e}")))?;
            if got == id {
                return Ok(reply);
            }
        }
    }
}
