//! The network between the nodes, made faulty: a proxy on each directed link.
//!
//! Node `i` reaches node `j` through a listener of its own (`i -> j`); the proxy connects on to `j`'s real
//! address and forwards, so the nodes run their TCP code unchanged and see faults only as a real network
//! shows them. Why a proxy and not network namespaces with `tc netem`: the kernel of this machine has no
//! netem (`CONFIG_NET_SCH_NETEM` is not set, and `tc qdisc add ... netem` answers "Specified qdisc kind is
//! unknown"), and a proxy keeps every byte on the loopback interface, needs no root, and can fault whole
//! messages, which packet loss under TCP never does.
//!
//! What the proxy can do to a link:
//!
//! * **cut it** (a partition): nothing more is forwarded on its connections, and new ones are accepted
//!   and held, silently, as a network that drops every packet; when the cut heals, every connection that
//!   lived through it is closed (as TCP gives up on a connection whose packets vanished), and the nodes
//!   connect anew;
//! * **delay** each message by a fixed time plus a random jitter, in order within a connection;
//! * **drop, duplicate or reorder** messages: a connection carries frames (`raft_node::tcp`), and the
//!   proxy parses them, so a whole message is lost, delivered twice, or held back behind the next one.
//!   Between peers only the `Messages` channel is faulted so: a snapshot is sent once per connection, on
//!   the promise that TCP delivers it or breaks (`tcp::SnapshotSender`), and only delays and cuts keep
//!   that promise.
//!
//! Clients reach each node through a proxy too, which is never cut but has the same message faults, in
//! both directions: a request or a reply lost, delivered twice or late. A reply lost after its write was
//! applied is what client sessions are for.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use raft::NodeId;
use raft_node::tcp::{decode_frame, Channel, Frame, MAX_FRAME};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Faults on every message of a link (other than cuts).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Every message waits this long...
    pub delay: Duration,
    /// ...plus a random time up to this.
    pub jitter: Duration,
    /// The chance that a message is lost.
    pub drop: f64,
    /// The chance that a message is delivered twice.
    pub duplicate: f64,
    /// The chance that a message is held back behind the next one.
    pub reorder: f64,
}

/// What the proxies did, over all links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages forwarded (once or more).
    pub messages: u64,
    /// Messages dropped.
    pub dropped: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
    /// Messages held back behind the next.
    pub reordered: u64,
    /// Connections closed when a cut healed.
    pub reset: u64,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    reset: AtomicU64,
}

/// The clients' side of a link: links `(CLIENTS, id)` lead from the clients to node `id`.
pub const CLIENTS: NodeId = 0;

/// The proxies of every directed link between `nodes`, and from the clients to each node.
pub struct Network {
    links: BTreeMap<(NodeId, NodeId), Arc<Link>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

struct Link {
    /// The real address of the node this link leads to.
    target: SocketAddr,
    /// Whether it carries the peers' protocol (else the clients').
    peer: bool,
    state: Mutex<LinkState>,
    changed: Condvar,
    counters: Arc<Counters>,
}

struct LinkState {
    cut: bool,
    faults: LinkFaults,
    rng: ChaCha8Rng,
    /// Both streams of every open connection, by number, to close them when a cut heals.
    connections: BTreeMap<u64, (TcpStream, Option<TcpStream>)>,
    /// The number of the next connection.
    next: u64,
    /// Where this link listens.
    addr: SocketAddr,
}

impl Network {
    /// Starts a proxy for each ordered pair of `nodes` (id and real peer address), and one from the
    /// clients to each of `clients` (id and real client address), on loopback ports of their own; `seed`
    /// seeds the faults' randomness.
    pub fn start(
        nodes: &BTreeMap<NodeId, SocketAddr>,
        clients: &BTreeMap<NodeId, SocketAddr>,
        seed: u64,
    ) -> io::Result<Network> {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut links = BTreeMap::new();
        let pairs = nodes
            .keys()
            .flat_map(|&from| {
                nodes
                    .iter()
                    .filter(move |(&to, _)| to != from)
                    .map(move |(&to, &target)| (from, to, target, true))
            })
            .chain(
                clients
                    .iter()
                    .map(|(&to, &target)| (CLIENTS, to, target, false)),
            );
        for (from, to, target, peer) in pairs {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            listener.set_nonblocking(true)?;
            let link = Arc::new(Link {
                target,
                peer,
                state: Mutex::new(LinkState {
                    cut: false,
                    faults: LinkFaults::default(),
                    rng: ChaCha8Rng::seed_from_u64(seed ^ (from << 32) ^ to),
                    connections: BTreeMap::new(),
                    next: 0,
                    addr: listener.local_addr()?,
                }),
                changed: Condvar::new(),
                counters: counters.clone(),
            });
            let (l, stop) = (link.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("proxy {from}->{to}"))
                .spawn(move || accept(listener, l, stop))?;
            links.insert((from, to), link);
        }
        Ok(Network {
            links,
            counters,
            stop,
        })
    }

    /// The address at which `from` (a node, or [`CLIENTS`]) reaches `to`.
    pub fn addr(&self, from: NodeId, to: NodeId) -> SocketAddr {
        self.links[&(from, to)].state.lock().unwrap().addr
    }

    /// Cuts the link `from -> to` (one direction only).
    pub fn cut(&self, from: NodeId, to: NodeId) {
        let link = &self.links[&(from, to)];
        link.state.lock().unwrap().cut = true;
        link.changed.notify_all();
    }

    /// Cuts both directions between nodes `a` and `b`.
    pub fn cut_both(&self, a: NodeId, b: NodeId) {
        self.cut(a, b);
        self.cut(b, a);
    }

    /// Heals every cut, closing the connections that lived through one, and takes every link's faults away.
    pub fn heal(&self) {
        for link in self.links.values() {
            let mut state = link.state.lock().unwrap();
            state.faults = LinkFaults::default();
            if state.cut {
                for (_, (a, b)) in std::mem::take(&mut state.connections) {
                    let _ = a.shutdown(Shutdown::Both);
                    if let Some(b) = b {
                        let _ = b.shutdown(Shutdown::Both);
                    }
                    link.counters.reset.fetch_add(1, Ordering::Relaxed);
                }
                state.cut = false;
            }
            link.changed.notify_all();
        }
    }

    /// Puts `faults` on every link.
    pub fn set_faults(&self, faults: LinkFaults) {
        for link in self.links.values() {
            link.state.lock().unwrap().faults = faults;
        }
    }

    /// What the proxies did so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            messages: c.messages.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            duplicated: c.duplicated.load(Ordering::Relaxed),
            reordered: c.reordered.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for link in self.links.values() {
            let mut state = link.state.lock().unwrap();
            for (_, (a, b)) in std::mem::take(&mut state.connections) {
                let _ = a.shutdown(Shutdown::Both);
                if let Some(b) = b {
                    let _ = b.shutdown(Shutdown::Both);
                }
            }
            state.cut = false;
            link.changed.notify_all();
        }
    }
}

impl Link {
    /// Waits while the link is cut; false if the connection was closed meanwhile (its cut healed).
    fn wait_open(&self, stop: &AtomicBool) -> bool {
        let mut state = self.state.lock().unwrap();
        let mut waited = false;
        while state.cut && !stop.load(Ordering::Relaxed) {
            waited = true;
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        // A connection that waited out a cut was closed by the heal; its writes fail from here.
        !waited
    }
}

fn accept(listener: TcpListener, link: Arc<Link>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (link, stop) = (link.clone(), stop.clone());
                let _ = std::thread::Builder::new()
                    .name("proxy connection".into())
                    .spawn(move || connection(stream, link, stop));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// One connection from a node: held while the link is cut, else connected on to the target.
fn connection(down: TcpStream, link: Arc<Link>, stop: Arc<AtomicBool>) {
    let _ = down.set_nonblocking(false);
    let _ = down.set_nodelay(true);
    let Ok(held) = down.try_clone() else { return };
    let id = {
        let mut state = link.state.lock().unwrap();
        let id = state.next;
        state.next += 1;
        state.connections.insert(id, (held, None));
        id
    };
    if !link.wait_open(&stop) {
        return; // held through a cut, and closed when it healed
    }
    let Ok(up) = TcpStream::connect_timeout(&link.target, Duration::from_secs(1)) else {
        let _ = down.shutdown(Shutdown::Both); // the node is down: as a refused connection
        return;
    };
    let _ = up.set_nodelay(true);
    {
        let mut state = link.state.lock().unwrap();
        if let Some(entry) = state.connections.get_mut(&id) {
            entry.1 = up.try_clone().ok();
        } else {
            let _ = up.shutdown(Shutdown::Both); // closed by a heal meanwhile
            return;
        }
    }
    let (Ok(down2), Ok(up2)) = (down.try_clone(), up.try_clone()) else {
        return;
    };
    {
        let (link, stop) = (link.clone(), stop.clone());
        let _ = std::thread::Builder::new()
            .name("proxy back".into())
            .spawn(move || {
                if link.peer {
                    // The listening node answers only the handshake: copied as it comes.
                    copy_back(up2, down2, id, link, stop)
                } else {
                    forward(up2, down2, id, link, stop) // replies, faulted
                }
            });
    }
    forward(down, up, id, link, stop);
}

/// Closes both streams of connection `id`.
fn close(a: &TcpStream, b: &TcpStream, id: u64, link: &Link) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
    link.state.lock().unwrap().connections.remove(&id);
}

/// Copies bytes from the target back to the connecting node, while the link is open.
fn copy_back(
    mut from: TcpStream,
    mut to: TcpStream,
    id: u64,
    link: Arc<Link>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !link.wait_open(&stop) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    close(&to, &from, id, &link);
}

/// A frame on its way, and when it may be written.
struct Timed {
    at: Instant,
    bytes: Vec<u8>,
}

/// Forwards frames from `down` to `up`, faulting whole messages: between peers, those of the `Messages`
/// channel after the handshake; between a client and a node, every request and reply.
fn forward(mut down: TcpStream, up: TcpStream, id: u64, link: Arc<Link>, stop: Arc<AtomicBool>) {
    let (tx, rx) = sync_channel::<Timed>(1024);
    let writer = {
        let (up, link, stop) = (up.try_clone(), link.clone(), stop.clone());
        std::thread::Builder::new()
            .name("proxy writer".into())
            .spawn(move || {
                if let Ok(up) = up {
                    write_timed(rx, up, &link, &stop)
                }
            })
    };
    let mut channel = None;
    let mut frames = 0u64;
    let mut message_ends = true; // the previous frame ended a message
    let mut held: Option<Vec<u8>> = None;
    let mut last_at = Instant::now();
    while let Ok(bytes) = read_raw_frame(&mut down) {
        frames += 1;
        let faultable = if link.peer {
            let frame = decode_frame(&bytes[4..]).ok();
            if let Some(Frame::Hello(hello)) = &frame {
                channel = Some(hello.channel);
            }
            // A message that is one whole frame, after the handshake, on the Messages channel.
            let whole = matches!(frame, Some(Frame::Part { last: true, .. })) && message_ends;
            message_ends = !matches!(frame, Some(Frame::Part { last: false, .. }));
            frames > 2 && whole && channel == Some(Channel::Messages)
        } else {
            true // a client's request or a node's reply, one frame each
        };
        let (faults, roll) = {
            let mut state = link.state.lock().unwrap();
            let faults = state.faults;
            let roll: [f64; 3] = [state.rng.random(), state.rng.random(), state.rng.random()];
            let jitter = if faults.jitter.is_zero() {
                Duration::ZERO
            } else {
                state.rng.random_range(Duration::ZERO..faults.jitter)
            };
            ((faults, jitter), roll)
        };
        let (faults, jitter) = faults;
        let at = (Instant::now() + faults.delay + jitter).max(last_at);
        last_at = at;
        let mut out = Vec::new();
        if faultable {
            link.counters.messages.fetch_add(1, Ordering::Relaxed);
            if roll[0] < faults.drop {
                link.counters.dropped.fetch_add(1, Ordering::Relaxed);
            } else if roll[1] < faults.reorder && held.is_none() {
                link.counters.reordered.fetch_add(1, Ordering::Relaxed);
                held = Some(bytes);
                continue;
            } else {
                if roll[2] < faults.duplicate {
                    link.counters.duplicated.fetch_add(1, Ordering::Relaxed);
                    out.push(bytes.clone());
                }
                out.push(bytes);
            }
            out.extend(held.take());
        } else {
            out.push(bytes);
        }
        if out
            .into_iter()
            .any(|bytes| tx.send(Timed { at, bytes }).is_err())
        {
            break;
        }
    }
    drop(tx);
    if let Ok(writer) = writer {
        let _ = writer.join();
    }
    close(&down, &up, id, &link);
}

fn write_timed(rx: Receiver<Timed>, mut up: TcpStream, link: &Link, stop: &AtomicBool) {
    for Timed { at, bytes } in rx {
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        if !link.wait_open(stop) || up.write_all(&bytes).is_err() {
            break;
        }
    }
    let _ = up.shutdown(Shutdown::Both);
}

/// Reads one frame whole, its length prefix included; a length over [`MAX_FRAME`] ends the connection.
fn read_raw_frame(input: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    input.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let mut bytes = Vec::with_capacity(4 + len);
    bytes.extend_from_slice(&header);
    input.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() < 4 + len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(bytes)
}
