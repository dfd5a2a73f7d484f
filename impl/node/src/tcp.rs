//! The TCP transport: each node listens on its address, and keeps one outgoing connection to each peer, over
//! which it streams its messages without waiting for replies (replication is pipelined).
//!
//! Wire format: a connection is a sequence of frames, each its payload's length (u32, little-endian) and the
//! payload, a postcard-encoded [`Frame`]. The connecting side opens with a [`Hello`] that names the cluster
//! and both nodes; the listening side refuses (and logs) a peer of another cluster, an unknown node, or a
//! hello not addressed to it. A message is the core's encoding of its [`Envelope`], cut into parts of at
//! most [`PART`] bytes, so that a large snapshot never needs one giant frame. A frame's length is checked
//! against [`MAX_FRAME`] before anything is allocated for it, and a message's parts against the largest
//! message allowed; bad bytes of any kind close the connection with an error, never a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use raft::{Envelope, NodeId};
use serde::{Deserialize, Serialize};

use crate::runtime::Transport;

/// "RAFT", first in every hello.
pub const MAGIC: u32 = 0x5241_4654;
/// The version of the wire format.
pub const VERSION: u16 = 1;
/// The largest part of a message in one frame.
pub const PART: usize = 1 << 20;
/// The largest frame payload accepted: a part and its framing.
pub const MAX_FRAME: usize = PART + 64;
/// The largest message accepted by default (its parts together).
pub const MAX_MESSAGE: usize = 256 << 20;

/// The first frame on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u16,
    /// The cluster's id.
    pub cluster: u64,
    /// The connecting node.
    pub from: NodeId,
    /// The node it means to reach.
    pub to: NodeId,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// The connection's first frame.
    Hello(Hello),
    /// A part of a message; `last` ends it.
    Part {
        /// Whether this part ends the message.
        last: bool,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// Why a connection was closed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// A frame or message longer than allowed.
    #[error("{what} of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// A frame or a message.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes that are no frame or no message.
    #[error("malformed {0}")]
    Malformed(String),
    /// A hello from a stranger, or a message it may not send.
    #[error("refused: {0}")]
    Refused(String),
}

/// Writes `frame`.
pub fn write_frame(out: &mut impl Write, frame: &Frame) -> io::Result<()> {
    write_payload(out, frame)
}

/// Reads one frame, checking its length before reading (and allocating for) its payload.
pub fn read_frame(input: &mut impl Read) -> Result<Frame, WireError> {
    decode_frame(&read_payload(input)?)
}

/// Reads one length-prefixed payload of at most [`MAX_FRAME`] bytes, checking the length first.
pub fn read_payload(input: &mut impl Read) -> Result<Vec<u8>, WireError> {
    let mut header = [0u8; 4];
    input.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge {
            what: "a frame",
            len,
            max: MAX_FRAME,
        });
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload)?;
    Ok(payload)
}

/// Writes `value` as one length-prefixed postcard payload.
pub fn write_payload(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let payload = postcard::to_stdvec(value).expect("wire values always encode");
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(&payload)
}

/// Decodes a frame's payload.
pub fn decode_frame(payload: &[u8]) -> Result<Frame, WireError> {
    match postcard::take_from_bytes::<Frame>(payload) {
        Ok((frame, [])) => Ok(frame),
        Ok((_, rest)) => Err(WireError::Malformed(format!(
            "frame: {} bytes after it",
            rest.len()
        ))),
        Err(e) => Err(WireError::Malformed(format!("frame: {e}"))),
    }
}

/// The frames that carry `envelope`.
pub fn message_frames(envelope: &Envelope) -> impl Iterator<Item = Frame> {
    let bytes = raft::encode(envelope);
    let parts = bytes.len().div_ceil(PART).max(1);
    (0..parts).map(move |k| Frame::Part {
        last: k + 1 == parts,
        bytes: bytes[k * PART..((k + 1) * PART).min(bytes.len())].to_vec(),
    })
}

/// Puts a message back together from its parts.
#[derive(Debug)]
pub struct Reassembler {
    bytes: Vec<u8>,
    max_message: usize,
}

impl Reassembler {
    /// Accepts messages of up to `max_message` bytes.
    pub fn new(max_message: usize) -> Reassembler {
        Reassembler {
            bytes: Vec::new(),
            max_message,
        }
    }

    /// Takes a part; returns the message it ends, if it ends one.
    pub fn push(&mut self, last: bool, bytes: &[u8]) -> Result<Option<Envelope>, WireError> {
        let len = self.bytes.len() + bytes.len();
        if len > self.max_message {
            return Err(WireError::TooLarge {
                what: "a message",
                len,
                max: self.max_message,
            });
        }
        self.bytes.extend_from_slice(bytes);
        if !last {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.bytes);
        raft::decode(&bytes)
            .map(Some)
            .map_err(|e| WireError::Malformed(format!("message: {e}")))
    }
}

/// Sends to each peer over its own connection, from a thread per peer that connects (and reconnects, with
/// backoff from 10 ms to 1 s) and streams what it is given. A message for a peer whose queue is full, or
/// that cannot be reached, is dropped: Raft resends what matters.
pub struct TcpTransport {
    queues: BTreeMap<NodeId, SyncSender<Envelope>>,
}

/// Messages queued for one peer before new ones are dropped.
const QUEUE: usize = 4096;

impl TcpTransport {
    /// Starts the senders of node `me` of `cluster` to each of `peers` (this node's own address is skipped).
    pub fn start(me: NodeId, cluster: u64, peers: &BTreeMap<NodeId, SocketAddr>) -> TcpTransport {
        let mut queues = BTreeMap::new();
        for (&to, &addr) in peers {
            if to == me {
                continue;
            }
            let (tx, rx) = sync_channel(QUEUE);
            let hello = Hello {
                magic: MAGIC,
                version: VERSION,
                cluster,
                from: me,
                to,
            };
            std::thread::Builder::new()
                .name(format!("raft-send-{me}-{to}"))
                .spawn(move || send_loop(hello, addr, rx))
                .expect("a thread can be spawned");
            queues.insert(to, tx);
        }
        TcpTransport { queues }
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, envelope: Envelope) {
        if let Some(queue) = self.queues.get(&envelope.to) {
            match queue.try_send(envelope) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

fn send_loop(hello: Hello, addr: SocketAddr, queue: Receiver<Envelope>) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(to = hello.to, "cannot connect to {addr}: {e}");
                // What waits for a peer that is down is stale by the time it is back.
                while queue.try_recv().is_ok() {}
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let _ = stream.set_nodelay(true);
        let mut out = BufWriter::new(stream);
        if write_frame(&mut out, &Frame::Hello(hello)).is_err() {
            continue;
        }
        // Stream messages: take every one waiting, then flush once.
        'connected: loop {
            let Ok(first) = queue.recv() else {
                return; // the transport is gone
            };
            for envelope in
                std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok()))
            {
                for frame in message_frames(&envelope) {
                    if write_frame(&mut out, &frame).is_err() {
                        break 'connected;
                    }
                }
            }
            if out.flush().is_err() {
                break;
            }
        }
        tracing::debug!(to = hello.to, "connection to {addr} lost; reconnecting");
    }
}

/// Accepts connections for node `me` of `cluster` from `peers` on `listener`, and hands each message to
/// `deliver`, until `stop` is set. A connection ends when `deliver` returns false (the node is gone). Returns
/// the accepting thread.
pub fn listen(
    listener: TcpListener,
    me: NodeId,
    cluster: u64,
    peers: BTreeSet<NodeId>,
    max_message: usize,
    stop: Arc<AtomicBool>,
    deliver: impl Fn(Envelope) -> bool + Clone + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name(format!("raft-listen-{me}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, addr)) => {
                        let (peers, deliver) = (peers.clone(), deliver.clone());
                        let _ = std::thread::Builder::new()
                            .name(format!("raft-recv-{me}"))
                            .spawn(move || {
                                if let Err(e) =
                                    receive(stream, me, cluster, &peers, max_message, deliver)
                                {
                                    tracing::warn!(node = me, "connection from {addr} closed: {e}");
                                }
                            });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => tracing::warn!(node = me, "accept failed: {e}"),
                }
            }
        })
}

/// Checks a connection's hello, then delivers its messages until it closes or misbehaves.
fn receive(
    stream: TcpStream,
    me: NodeId,
    cluster: u64,
    peers: &BTreeSet<NodeId>,
    max_message: usize,
    deliver: impl Fn(Envelope) -> bool,
) -> Result<(), WireError> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut input = io::BufReader::new(stream);
    let hello = match read_frame(&mut input)? {
        Frame::Hello(hello) => hello,
        Frame::Part { .. } => return Err(WireError::Refused("no hello first".into())),
    };
    check_hello(&hello, me, cluster, peers)?;
    // A quiet peer is fine from now on.
    input.get_ref().set_read_timeout(None)?;
    let mut parts = Reassembler::new(max_message);
    loop {
        let Frame::Part { last, bytes } = read_frame(&mut input)? else {
            return Err(WireError::Refused("a second hello".into()));
        };
        if let Some(envelope) = parts.push(last, &bytes)? {
            if envelope.from != hello.from || envelope.to != me {
                return Err(WireError::Refused(format!(
                    "node {} sent a message from {} to {}",
                    hello.from, envelope.from, envelope.to
                )));
            }
            if !deliver(envelope) {
                return Ok(());
            }
        }
    }
}

/// Refuses a hello of another format, cluster or addressee, or from a node not in the cluster.
pub fn check_hello(
    hello: &Hello,
    me: NodeId,
    cluster: u64,
    peers: &BTreeSet<NodeId>,
) -> Result<(), WireError> {
    if hello.magic != MAGIC || hello.version != VERSION {
        return Err(WireError::Refused(format!(
            "not this protocol (magic {:#x}, version {})",
            hello.magic, hello.version
        )));
    }
    if hello.cluster != cluster {
        return Err(WireError::Refused(format!(
            "node {} is of cluster {}, not {cluster}",
            hello.from, hello.cluster
        )));
    }
    if hello.to != me {
        return Err(WireError::Refused(format!(
            "node {} meant to reach node {}, not {me}",
            hello.from, hello.to
        )));
    }
    if hello.from == me || !peers.contains(&hello.from) {
        return Err(WireError::Refused(format!(
            "node {} is not a peer",
            hello.from
        )));
    }
    Ok(())
}
