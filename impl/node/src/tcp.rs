//! The TCP transport: each node listens on its address, and keeps two outgoing connections to each peer
//! ([`Channel`]): one over which it streams its messages without waiting for replies (replication is
//! pipelined), and one for snapshots, so that a snapshot that takes seconds to stream never holds back a
//! heartbeat. A snapshot is written whole once per connection: the leader sending the same snapshot again
//! while the follower is still receiving it (or has it) costs nothing.
//!
//! Wire format: a connection is a sequence of frames, each its payload's length (u32, little-endian) and the
//! payload, a postcard-encoded [`Frame`]. A connection opens with a handshake in which each side proves to
//! the other that it holds the cluster's [`Secret`], without sending it:
//!
//! 1. the connecting node sends a [`Hello`]: the cluster, both nodes, the channel, and a fresh random
//!    nonce;
//! 2. the listening node checks it (the cluster, that it is the addressee, that the sender is a peer) and
//!    answers [`Frame::Challenge`]: a nonce of its own, and an HMAC-SHA256 under the secret of the hello
//!    and both nonces;
//! 3. the connecting node checks that proof, and answers [`Frame::Proof`], its own HMAC of the same.
//!
//! Either side closes the connection, and logs why, on a wrong or missing proof, a stranger's hello, or a
//! handshake that does not finish within [`Limits::handshake_timeout`]. The nonces make each proof good
//! for one connection only. (This authenticates peers when they connect; it neither encrypts nor signs
//! what follows: on a network where others can read or inject traffic, run the cluster inside a VPN.)
//!
//! A message is the core's encoding of its [`Envelope`], cut into parts of at most [`PART`] bytes, so that
//! a large snapshot never needs one giant frame. Everything is bounded by bytes and time ([`Limits`]):
//! a frame's length is checked before it is read (handshake frames are at most [`MAX_HANDSHAKE_FRAME`]
//! bytes), its buffer grows only with what arrives, and once begun it must arrive whole within
//! [`Limits::frame_timeout`]; a message's parts together are at most [`Limits::max_message`]; at most
//! [`Limits::max_connections`] connections are served at once (when a new one comes, the one idle longest
//! makes room: see [`Slots`]), and an authenticated peer has one per channel (a new one replaces the old);
//! a queue of messages for a peer holds at most [`Limits::queue_bytes`], and a write that blocks longer
//! than [`Limits::write_timeout`] drops the connection. Bad bytes of any kind close the connection with
//! an error, never a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use raft::{Envelope, Message, NodeId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::runtime::Transport;

/// "RAFT", first in every hello.
pub const MAGIC: u32 = 0x5241_4654;
/// The version of the wire format.
pub const VERSION: u16 = 4;
/// The largest part of a message in one frame.
pub const PART: usize = 1 << 20;
/// The largest frame payload accepted: a part and its framing.
pub const MAX_FRAME: usize = PART + 64;
/// The largest frame payload accepted before the handshake is done.
pub const MAX_HANDSHAKE_FRAME: usize = 256;
/// The largest message accepted by default (its parts together).
pub const MAX_MESSAGE: usize = 256 << 20;
/// The bytes of a nonce and of a proof.
pub const NONCE: usize = 32;

/// The cluster's shared secret, which peers prove they hold when they connect. Never printed.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Which side of a handshake a proof is from: a proof of one side cannot be replayed as the other's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The node that connected (it sends the hello).
    Connecting,
    /// The node that accepted (it sends the challenge).
    Listening,
}

impl Secret {
    /// The fewest bytes a secret may have.
    pub const MIN_LEN: usize = 16;

    /// A secret of `bytes`; refused if shorter than [`Secret::MIN_LEN`].
    pub fn new(bytes: &[u8]) -> Result<Secret, String> {
        if bytes.len() < Secret::MIN_LEN {
            return Err(format!(
                "a secret of {} bytes is too short (at least {})",
                bytes.len(),
                Secret::MIN_LEN
            ));
        }
        Ok(Secret(bytes.into()))
    }

    /// The secret in the file at `path`: its bytes, less one trailing newline.
    pub fn read(path: &Path) -> Result<Secret, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(&bytes);
        Secret::new(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn mac(&self, side: Side, hello: &Hello, nonce: &[u8; NONCE]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(match side {
            Side::Connecting => b"raft-node connecting",
            Side::Listening => b"raft-node listening ",
        });
        mac.update(&postcard::to_stdvec(hello).expect("a hello encodes"));
        mac.update(nonce);
        mac
    }

    /// `side`'s proof for the connection that `hello` opened and the listener's `nonce` answered.
    pub fn prove(&self, side: Side, hello: &Hello, nonce: &[u8; NONCE]) -> [u8; NONCE] {
        self.mac(side, hello, nonce).finalize().into_bytes().into()
    }

    /// A client's proof that it holds the secret, for the administrative request whose encoding is
    /// `request`, on a connection whose node gave it `challenge` ([`crate::client::Request::Challenge`]).
    pub fn prove_admin(&self, challenge: &[u8; NONCE], request: &[u8]) -> [u8; NONCE] {
        self.admin_mac(challenge, request)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `proof` is [`prove_admin`](Secret::prove_admin)'s (compared in constant time).
    pub fn verify_admin(
        &self,
        challenge: &[u8; NONCE],
        request: &[u8],
        proof: &[u8; NONCE],
    ) -> bool {
        self.admin_mac(challenge, request)
            .verify_slice(proof)
            .is_ok()
    }

    fn admin_mac(&self, challenge: &[u8; NONCE], request: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"raft-node admin     ");
        mac.update(challenge);
        mac.update(request);
        mac
    }

    /// Whether `proof` is `side`'s (compared in constant time).
    fn verify(&self, side: Side, hello: &Hello, nonce: &[u8; NONCE], proof: &[u8; NONCE]) -> bool {
        self.mac(side, hello, nonce).verify_slice(proof).is_ok()
    }
}

/// A fresh random nonce.
pub fn nonce() -> [u8; NONCE] {
    rand::random()
}

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
    /// What the connection carries.
    pub channel: Channel,
    /// Fresh for each connection.
    pub nonce: [u8; NONCE],
}

/// What a connection carries. A node keeps two connections to each peer, so that a snapshot that takes
/// seconds to stream never holds back a heartbeat (or a vote) behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Channel {
    /// Every message but InstallSnapshot, in order.
    Messages,
    /// InstallSnapshot, one at a time.
    Snapshots,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// The connection's first frame.
    Hello(Hello),
    /// The listening node's answer to a hello: its nonce, and its proof that it holds the secret.
    Challenge {
        /// Fresh for each connection.
        nonce: [u8; NONCE],
        /// HMAC-SHA256 under the secret of the hello and this nonce.
        proof: [u8; NONCE],
    },
    /// The connecting node's proof that it holds the secret.
    Proof([u8; NONCE]),
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
    /// The socket failed or closed, or a frame did not arrive in time.
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
    /// A hello from a stranger, a failed proof, or a message it may not send.
    #[error("refused: {0}")]
    Refused(String),
}

/// The bounds of a node's connections, by bytes and time.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest message accepted (its parts together).
    pub max_message: usize,
    /// Connections served at once, handshakes included; a new one closes the one idle longest.
    pub max_connections: usize,
    /// The time a connection has to finish its handshake.
    pub handshake_timeout: Duration,
    /// The time a frame has to arrive whole, once its first byte has.
    pub frame_timeout: Duration,
    /// The time a write may block before the connection is dropped.
    pub write_timeout: Duration,
    /// The bytes of messages (as [`weight`] counts them) queued for one peer before new ones are dropped.
    pub queue_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message: MAX_MESSAGE,
            max_connections: 64,
            handshake_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            queue_bytes: 16 << 20,
        }
    }
}

/// A free loopback address for a node that is restarted on it (tests, test harnesses): its port lies
/// below the range the kernel hands out to outgoing connections (`ip_local_port_range`), so that no
/// connection takes it while the node is down. Free when asked: another program may still take it, and then
/// the node's start fails with a clear error.
pub fn restartable_addr() -> io::Result<SocketAddr> {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral / 2);
    for _ in 0..1000 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", rand::random_range(low..ephemeral))) {
            return listener.local_addr();
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("no free port on 127.0.0.1 between {low} and {ephemeral}"),
    ))
}

/// Who a node is on the wire: its id, its cluster and peers, the secret, and its limits.
#[derive(Clone, Debug)]
pub struct Wire {
    /// This node.
    pub me: NodeId,
    /// The cluster's id.
    pub cluster: u64,
    /// Every node of the cluster (this one may be listed): the listener refuses others. Shared with the
    /// transport, which keeps it to the servers the node knows of as its configuration changes.
    pub peers: PeerSet,
    /// The cluster's secret.
    pub secret: Secret,
    /// The bounds.
    pub limits: Limits,
}

/// The ids of the nodes a listener accepts, shared between the listener and the transport.
#[derive(Clone, Debug, Default)]
pub struct PeerSet(Arc<RwLock<BTreeSet<NodeId>>>);

impl PeerSet {
    /// Whether `id` is one.
    pub fn contains(&self, id: NodeId) -> bool {
        self.0.read().expect("no panic holds it").contains(&id)
    }

    /// The ids, now.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        self.0.read().expect("no panic holds it").clone()
    }

    /// Makes the set `ids`.
    pub fn set(&self, ids: BTreeSet<NodeId>) {
        *self.0.write().expect("no panic holds it") = ids;
    }
}

impl FromIterator<NodeId> for PeerSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(ids: I) -> PeerSet {
        PeerSet(Arc::new(RwLock::new(ids.into_iter().collect())))
    }
}

impl From<BTreeSet<NodeId>> for PeerSet {
    fn from(ids: BTreeSet<NodeId>) -> PeerSet {
        PeerSet(Arc::new(RwLock::new(ids)))
    }
}

/// The bytes a message holds in memory, about: its entries' commands and its snapshot's data, and a little
/// for the rest. Queues are bounded by this.
pub fn weight(envelope: &Envelope) -> usize {
    64 + match &envelope.message {
        Message::AppendEntries(m) => m.entries.iter().map(|e| 32 + e.bytes().len()).sum(),
        Message::InstallSnapshot(m) => m.data.len(),
        _ => 0,
    }
}

/// Writes `frame`.
pub fn write_frame(out: &mut impl Write, frame: &Frame) -> io::Result<()> {
    write_payload(out, frame)
}

/// Reads one frame, checking its length before reading its payload.
pub fn read_frame(input: &mut impl Read) -> Result<Frame, WireError> {
    decode_frame(&read_payload(input, MAX_FRAME)?)
}

/// Reads one length-prefixed payload of at most `max` bytes, checking the length first. The payload's buffer
/// grows with what arrives, so a length alone reserves nothing.
pub fn read_payload(input: &mut impl Read, max: usize) -> Result<Vec<u8>, WireError> {
    let mut header = [0u8; 4];
    input.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > max {
        return Err(WireError::TooLarge {
            what: "a frame",
            len,
            max,
        });
    }
    let mut payload = Vec::with_capacity(len.min(64 << 10));
    input.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(payload)
}

/// Reads from a socket until a deadline: each read waits at most the time left, so a peer that sends a
/// byte now and then cannot stretch a frame past it.
struct ByDeadline<'a> {
    input: &'a mut BufReader<TcpStream>,
    deadline: Instant,
}

impl Read for ByDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.buffer().is_empty() {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "a frame did not arrive in time",
                ));
            }
            self.input.get_ref().set_read_timeout(Some(left))?;
        }
        self.input.read(buf)
    }
}

/// Reads one frame of at most `max` bytes from a socket. It waits for the frame's first byte until `start`
/// (forever if `None`), and for the rest of it until `within` after the first byte.
pub fn read_frame_timed(
    input: &mut BufReader<TcpStream>,
    max: usize,
    start: Option<Instant>,
    within: Duration,
) -> Result<Frame, WireError> {
    decode_frame(&read_payload_timed(input, max, start, within)?)
}

/// [`read_frame_timed`]'s payload, undecoded.
pub fn read_payload_timed(
    input: &mut BufReader<TcpStream>,
    max: usize,
    start: Option<Instant>,
    within: Duration,
) -> Result<Vec<u8>, WireError> {
    if input.buffer().is_empty() {
        let wait = start.map(|s| s.saturating_duration_since(Instant::now()));
        if wait.is_some_and(|w| w.is_zero()) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no frame in time").into());
        }
        input.get_ref().set_read_timeout(wait)?;
        if input.fill_buf()?.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
    }
    let deadline = Instant::now() + within;
    read_payload(&mut ByDeadline { input, deadline }, max)
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

/// A queue of messages for one peer, bounded by count and by bytes.
struct Queue {
    sender: SyncSender<Envelope>,
    bytes: Arc<AtomicUsize>,
}

/// The snapshot waiting to go to one peer: a newer one replaces one that has not started.
#[derive(Default)]
struct SnapshotSlot {
    state: Mutex<SnapshotState>,
    ready: Condvar,
}

#[derive(Default)]
struct SnapshotState {
    waiting: Option<Envelope>,
    /// The transport is gone.
    closed: bool,
}

/// Which snapshot an InstallSnapshot carries.
fn snapshot_key(envelope: &Envelope) -> Option<(u64, u64)> {
    match &envelope.message {
        Message::InstallSnapshot(m) => Some((m.term, m.last_included_index)),
        _ => None,
    }
}

/// Told of each message as the transport writes it to its peer's socket (for the node's trace).
pub type SendHook = Arc<dyn Fn(&Envelope) + Send + Sync>;

/// Sends to each peer over two connections of its own ([`Channel`]), from a thread each that connects (and
/// reconnects, with backoff from 10 ms to 1 s) and streams what it is given. A message for a peer whose
/// queue is full (by count or by [`Limits::queue_bytes`]), or that cannot be reached, is dropped: Raft
/// resends what matters. Snapshots go on their own connection, one at a time (see [`Channel`]). The peers
/// are those it was started with and those the node tells it of ([`Transport::set_addresses`]), which
/// change with its configuration: a new one gets its senders, a removed one's senders stop (unless it was
/// one of the first), and one at a new address is reached there.
pub struct TcpTransport {
    wire: Wire,
    /// The peers it was started with.
    first: BTreeMap<NodeId, SocketAddr>,
    on_send: Option<SendHook>,
    senders: BTreeMap<NodeId, Senders>,
    snapshots_sent: Arc<AtomicU64>,
}

/// One peer's queues, read by its two sender threads, which stop when this is dropped.
struct Senders {
    addr: SocketAddr,
    queue: Queue,
    slot: Arc<SnapshotSlot>,
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.slot.state.lock().expect("no panic holds it").closed = true;
        self.slot.ready.notify_all();
    }
}

/// Messages queued for one peer before new ones are dropped.
const QUEUE: usize = 4096;

impl TcpTransport {
    /// Starts the senders of the node `wire` describes to each of `peers` (its own address is skipped).
    pub fn start(wire: &Wire, peers: &BTreeMap<NodeId, SocketAddr>) -> TcpTransport {
        TcpTransport::start_with(wire, peers, None)
    }

    /// As [`start`](TcpTransport::start), telling `on_send` of each message just before its first byte is
    /// written to the socket.
    pub fn start_with(
        wire: &Wire,
        peers: &BTreeMap<NodeId, SocketAddr>,
        on_send: Option<SendHook>,
    ) -> TcpTransport {
        let mut transport = TcpTransport {
            wire: wire.clone(),
            first: peers.clone(),
            on_send,
            senders: BTreeMap::new(),
            snapshots_sent: Arc::new(AtomicU64::new(0)),
        };
        transport.reach(peers);
        transport
    }

    /// Makes `peers` the peers: starts senders to the new ones (and to those at a new address), stops those
    /// of the ones no longer listed, and lets the listener accept exactly these.
    pub fn reach(&mut self, peers: &BTreeMap<NodeId, SocketAddr>) {
        let me = self.wire.me;
        self.senders
            .retain(|id, senders| peers.get(id) == Some(&senders.addr));
        for (&to, &addr) in peers {
            if to != me && !self.senders.contains_key(&to) {
                let senders = self.spawn(to, addr);
                self.senders.insert(to, senders);
            }
        }
        self.wire.peers.set(peers.keys().copied().collect());
    }

    /// Starts the two senders to `to` at `addr`.
    fn spawn(&self, to: NodeId, addr: SocketAddr) -> Senders {
        let me = self.wire.me;
        let (sender, receiver) = sync_channel(QUEUE);
        let bytes = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(SnapshotSlot::default());
        let peer = Peer {
            to,
            addr,
            wire: self.wire.clone(),
            on_send: self.on_send.clone(),
        };
        let messages = MessageSender {
            peer: peer.clone(),
            queue: receiver,
            bytes: bytes.clone(),
        };
        std::thread::Builder::new()
            .name(format!("raft-send-{me}-{to}"))
            .spawn(move || messages.run())
            .expect("a thread can be spawned");
        let snapshots = SnapshotSender {
            peer,
            slot: slot.clone(),
            sent: self.snapshots_sent.clone(),
        };
        std::thread::Builder::new()
            .name(format!("raft-snap-{me}-{to}"))
            .spawn(move || snapshots.run())
            .expect("a thread can be spawned");
        Senders {
            addr,
            queue: Queue { sender, bytes },
            slot,
        }
    }

    /// The peers the transport sends to now, with their addresses.
    pub fn peers(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.senders.iter().map(|(&id, s)| (id, s.addr)).collect()
    }

    /// The bytes queued for `peer` now.
    pub fn queued(&self, peer: NodeId) -> usize {
        self.senders
            .get(&peer)
            .map_or(0, |s| s.queue.bytes.load(Ordering::Relaxed))
    }

    /// How many snapshots were written whole to a connection so far.
    pub fn snapshots_sent(&self) -> u64 {
        self.snapshots_sent.load(Ordering::Relaxed)
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, envelope: Envelope) {
        let Some(Senders { queue, slot, .. }) = self.senders.get(&envelope.to) else {
            return;
        };
        if snapshot_key(&envelope).is_some() {
            slot.state.lock().expect("no panic holds it").waiting = Some(envelope);
            slot.ready.notify_all();
            return;
        }
        let weight = weight(&envelope);
        let queued = queue.bytes.load(Ordering::Relaxed);
        // A message larger than the bound goes only into an empty queue.
        if queued > 0 && queued + weight > self.wire.limits.queue_bytes {
            return;
        }
        queue.bytes.fetch_add(weight, Ordering::Relaxed);
        match queue.sender.try_send(envelope) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                queue.bytes.fetch_sub(weight, Ordering::Relaxed);
            }
        }
    }

    /// Addresses that are no `HOST:PORT` are skipped, with a warning.
    fn set_addresses(&mut self, addresses: &BTreeMap<NodeId, String>) {
        let mut peers = self.first.clone();
        for (&id, text) in addresses {
            match text.parse::<SocketAddr>() {
                Ok(addr) => {
                    peers.insert(id, addr);
                }
                Err(_) => tracing::warn!(
                    node = self.wire.me,
                    "the configuration gives server {id} the address '{text}', which is no HOST:PORT"
                ),
            }
        }
        let mut others = peers.clone();
        others.remove(&self.wire.me);
        if others != self.peers() {
            tracing::info!(node = self.wire.me, "peers now: {others:?}");
        }
        self.reach(&peers);
    }
}

/// A peer, as its senders reach it.
#[derive(Clone)]
struct Peer {
    to: NodeId,
    addr: SocketAddr,
    wire: Wire,
    on_send: Option<SendHook>,
}

impl Peer {
    /// Connects and shakes hands for `channel`, logging why not.
    fn connect(&self, channel: Channel) -> Option<BufWriter<TcpStream>> {
        let connected = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1))
            .map_err(WireError::from)
            .and_then(|stream| handshake(stream, &self.wire, self.to, channel));
        match connected {
            Ok(out) => Some(out),
            Err(e @ WireError::Refused(_)) => {
                tracing::warn!(to = self.to, "{}: {e}", self.addr);
                None
            }
            Err(e) => {
                tracing::debug!(to = self.to, "cannot connect to {}: {e}", self.addr);
                None
            }
        }
    }
}

/// The sender of a peer's messages (all but snapshots).
struct MessageSender {
    peer: Peer,
    queue: Receiver<Envelope>,
    bytes: Arc<AtomicUsize>,
}

impl MessageSender {
    /// Takes a message off the queue, counting its bytes out.
    fn taken(&self, envelope: Envelope) -> Envelope {
        self.bytes.fetch_sub(weight(&envelope), Ordering::Relaxed);
        envelope
    }

    /// Drops every message queued: what waits for a peer that is down is stale by the time it is back.
    /// Whether the transport still wants this peer reached.
    fn drain(&self) -> bool {
        loop {
            match self.queue.try_recv() {
                Ok(e) => {
                    self.taken(e);
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn run(self) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let Some(mut out) = self.peer.connect(Channel::Messages) else {
                if !self.drain() {
                    return; // the transport is gone, or no longer sends to this peer
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            };
            backoff = Duration::from_millis(10);
            // Stream messages: take every one waiting, then flush once.
            'connected: loop {
                let Ok(first) = self.queue.recv() else {
                    return; // the transport is gone
                };
                let first = self.taken(first);
                for envelope in std::iter::once(first).chain(std::iter::from_fn(|| {
                    self.queue.try_recv().ok().map(|e| self.taken(e))
                })) {
                    if let Some(on_send) = &self.peer.on_send {
                        on_send(&envelope);
                    }
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
            tracing::debug!(to = self.peer.to, "connection to {} lost", self.peer.addr);
        }
    }
}

/// The sender of a peer's snapshots. A snapshot written whole to a connection that is still open has
/// reached the peer or will (TCP delivers it, or the connection breaks): the same snapshot is not written
/// again on it, however often the leader sends it. A new connection, or a newer snapshot, starts afresh.
struct SnapshotSender {
    peer: Peer,
    slot: Arc<SnapshotSlot>,
    sent: Arc<AtomicU64>,
}

impl SnapshotSender {
    fn run(self) {
        let mut out: Option<BufWriter<TcpStream>> = None;
        // The snapshot written whole on `out`.
        let mut written = None;
        loop {
            let envelope = {
                let state = self.slot.state.lock().expect("no panic holds it");
                let mut state = self
                    .slot
                    .ready
                    .wait_while(state, |s| s.waiting.is_none() && !s.closed)
                    .expect("no panic holds it");
                if state.closed {
                    return;
                }
                state.waiting.take().expect("waited for it")
            };
            if out.as_ref().is_some_and(|o| !open(o.get_ref())) {
                out = None;
            }
            if out.is_none() {
                written = None;
                out = self.peer.connect(Channel::Snapshots);
            }
            let again = written.is_some() && written == snapshot_key(&envelope);
            if let Some(stream) = out.as_mut().filter(|_| !again) {
                if let Some(on_send) = &self.peer.on_send {
                    on_send(&envelope);
                }
                let result = message_frames(&envelope)
                    .try_for_each(|frame| write_frame(stream, &frame))
                    .and_then(|()| stream.flush());
                match result {
                    Ok(()) => {
                        self.sent.fetch_add(1, Ordering::Relaxed);
                        written = snapshot_key(&envelope);
                    }
                    Err(e) => {
                        tracing::debug!(to = self.peer.to, "a snapshot was cut off: {e}");
                        out = None;
                    }
                }
            }
        }
    }
}

/// Whether the peer has not closed `stream` (which it never writes to): a look without waiting.
fn open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match stream.peek(&mut [0u8; 1]) {
        Ok(n) => n > 0,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    };
    open && stream.set_nonblocking(false).is_ok()
}

/// Opens a connection to node `to` on `stream` as the node `wire` describes: proves that it holds the
/// secret, and checks that the peer does. Returns the connection to write messages to.
pub fn handshake(
    stream: TcpStream,
    wire: &Wire,
    to: NodeId,
    channel: Channel,
) -> Result<BufWriter<TcpStream>, WireError> {
    let limits = &wire.limits;
    let deadline = Instant::now() + limits.handshake_timeout;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(limits.write_timeout))?;
    let hello = Hello {
        magic: MAGIC,
        version: VERSION,
        cluster: wire.cluster,
        from: wire.me,
        to,
        channel,
        nonce: nonce(),
    };
    let mut out = BufWriter::new(stream.try_clone()?);
    write_frame(&mut out, &Frame::Hello(hello))?;
    out.flush()?;
    let mut input = BufReader::new(stream);
    let left = deadline.saturating_duration_since(Instant::now());
    let Frame::Challenge { nonce, proof } =
        read_frame_timed(&mut input, MAX_HANDSHAKE_FRAME, Some(deadline), left)?
    else {
        return Err(WireError::Refused(format!(
            "node {to} answered the hello with no challenge"
        )));
    };
    if !wire.secret.verify(Side::Listening, &hello, &nonce, &proof) {
        return Err(WireError::Refused(format!(
            "node {to} failed authentication (does it have this cluster's secret?)"
        )));
    }
    write_frame(
        &mut out,
        &Frame::Proof(wire.secret.prove(Side::Connecting, &hello, &nonce)),
    )?;
    out.flush()?;
    // Nothing is read from this connection any more: a peer that writes to it is ignored.
    Ok(out)
}

/// The connections a listener serves, at most a number at once. When a new one comes and every place is
/// taken, the connection idle longest is closed to make room: a flood of idle or slow connections cannot
/// lock out a peer or a client that is talking.
pub struct Slots {
    max: usize,
    next_id: AtomicU64,
    /// Each connection served: when it was last active, and a handle to close it by.
    open: Mutex<BTreeMap<u64, (Instant, TcpStream)>>,
}

impl Slots {
    /// At most `max` connections at once (and one at least).
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max: max.max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
        })
    }

    /// Serves `stream`, closing the connection idle longest if every place is taken (whose peer it
    /// returns, for the log).
    pub fn admit(self: &Arc<Slots>, stream: &TcpStream) -> io::Result<(Slot, Option<SocketAddr>)> {
        let handle = stream.try_clone()?;
        let mut open = self.open.lock().expect("no panic holds it");
        let mut evicted = None;
        if open.len() >= self.max {
            let idlest = open
                .iter()
                .min_by_key(|(_, (active, _))| *active)
                .map(|(&id, _)| id)
                .expect("full, so not empty");
            let (_, old) = open.remove(&idlest).expect("listed");
            evicted = old.peer_addr().ok();
            let _ = old.shutdown(Shutdown::Both);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        open.insert(id, (Instant::now(), handle));
        let slot = Slot {
            slots: self.clone(),
            id,
        };
        Ok((slot, evicted))
    }
}

/// A connection's place among the [`Slots`], given back when it is dropped.
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
}

impl Slot {
    /// Marks the connection active now.
    pub fn touch(&self) {
        let mut open = self.slots.open.lock().expect("no panic holds it");
        if let Some((active, _)) = open.get_mut(&self.id) {
            *active = Instant::now();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("no panic holds it");
        open.remove(&self.id);
    }
}

/// Each authenticated peer's connections: one per peer and channel, a new one replacing the old.
#[derive(Default)]
struct PeerConnections(Mutex<BTreeMap<(NodeId, Channel), (u64, TcpStream)>>);

/// Accepts connections for the node `wire` describes on `listener`, and hands each message to `deliver`,
/// until `stop` is set. A connection ends when `deliver` returns false (the node is gone). Returns the
/// accepting thread.
pub fn listen(
    listener: TcpListener,
    wire: Wire,
    stop: Arc<AtomicBool>,
    deliver: impl Fn(Envelope) -> bool + Clone + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let me = wire.me;
    let slots = Slots::new(wire.limits.max_connections);
    let peers = Arc::new(PeerConnections::default());
    std::thread::Builder::new()
        .name(format!("raft-listen-{me}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, addr)) => {
                        let slot = match slots.admit(&stream) {
                            Ok((slot, evicted)) => {
                                if let Some(old) = evicted {
                                    tracing::warn!(
                                        node = me,
                                        "{} connections: closed the one idle longest, from {old}",
                                        wire.limits.max_connections
                                    );
                                }
                                slot
                            }
                            Err(e) => {
                                tracing::warn!(node = me, "cannot serve {addr}: {e}");
                                continue;
                            }
                        };
                        let (wire, deliver, peers) = (wire.clone(), deliver.clone(), peers.clone());
                        let spawned = std::thread::Builder::new()
                            .name(format!("raft-recv-{me}"))
                            .spawn(move || {
                                if let Err(e) = receive(stream, &wire, &slot, &peers, deliver) {
                                    match e {
                                        WireError::Refused(_) | WireError::TooLarge { .. } => {
                                            tracing::warn!(
                                                node = me,
                                                "connection from {addr} closed: {e}"
                                            )
                                        }
                                        _ => tracing::debug!(
                                            node = me,
                                            "connection from {addr} closed: {e}"
                                        ),
                                    }
                                }
                            });
                        if let Err(e) = spawned {
                            tracing::warn!(node = me, "cannot serve {addr}: {e}");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => tracing::warn!(node = me, "accept failed: {e}"),
                }
            }
        })
}

/// Shakes hands on a connection, then delivers its messages until it closes or misbehaves.
fn receive(
    stream: TcpStream,
    wire: &Wire,
    slot: &Slot,
    peers: &PeerConnections,
    deliver: impl Fn(Envelope) -> bool,
) -> Result<(), WireError> {
    let limits = &wire.limits;
    let deadline = Instant::now() + limits.handshake_timeout;
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(limits.write_timeout))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let left = || deadline.saturating_duration_since(Instant::now());
    let hello = match read_frame_timed(&mut input, MAX_HANDSHAKE_FRAME, Some(deadline), left())? {
        Frame::Hello(hello) => hello,
        _ => return Err(WireError::Refused("no hello first".into())),
    };
    check_hello(&hello, wire.me, wire.cluster, &wire.peers.ids())?;
    let nonce = nonce();
    let proof = wire.secret.prove(Side::Listening, &hello, &nonce);
    write_frame(&mut out, &Frame::Challenge { nonce, proof })?;
    let Frame::Proof(proof) =
        read_frame_timed(&mut input, MAX_HANDSHAKE_FRAME, Some(deadline), left())?
    else {
        return Err(WireError::Refused(format!(
            "node {} sent no proof of the secret",
            hello.from
        )));
    };
    if !wire.secret.verify(Side::Connecting, &hello, &nonce, &proof) {
        return Err(WireError::Refused(format!(
            "node {} failed authentication (does it have this cluster's secret?)",
            hello.from
        )));
    }
    // One connection per peer and channel: a new one replaces the old, whose thread then ends.
    let key = (hello.from, hello.channel);
    let replaced = peers
        .0
        .lock()
        .expect("no panic holds it")
        .insert(key, (slot.id, out.try_clone()?));
    if let Some((_, old)) = replaced {
        let _ = old.shutdown(Shutdown::Both);
    }
    let result = deliver_messages(&mut input, wire, &hello, slot, deliver);
    let mut registered = peers.0.lock().expect("no panic holds it");
    if registered.get(&key).is_some_and(|(id, _)| *id == slot.id) {
        registered.remove(&key);
    }
    result
}

/// Delivers the messages of the connection `hello` opened until it closes or misbehaves.
fn deliver_messages(
    input: &mut BufReader<TcpStream>,
    wire: &Wire,
    hello: &Hello,
    slot: &Slot,
    deliver: impl Fn(Envelope) -> bool,
) -> Result<(), WireError> {
    let from = hello.from;
    let limits = &wire.limits;
    let mut parts = Reassembler::new(limits.max_message);
    loop {
        let frame = read_frame_timed(input, MAX_FRAME, None, limits.frame_timeout)?;
        let Frame::Part { last, bytes } = frame else {
            return Err(WireError::Refused(
                "a handshake frame after the handshake".into(),
            ));
        };
        slot.touch();
        if let Some(envelope) = parts.push(last, &bytes)? {
            if envelope.from != from || envelope.to != wire.me {
                return Err(WireError::Refused(format!(
                    "node {from} sent a message from {} to {}",
                    envelope.from, envelope.to
                )));
            }
            let snapshot = matches!(envelope.message, Message::InstallSnapshot(_));
            if snapshot != (hello.channel == Channel::Snapshots) {
                return Err(WireError::Refused(format!(
                    "node {from} sent a message on the wrong channel ({:?})",
                    hello.channel
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
