//! The TCP transport: framing round trips and limits, decoders fuzzed with random and damaged bytes (never a
//! panic), handshakes from strangers and from peers without the secret refused (and logged), connections
//! bounded by count, bytes and time, and a three-node cluster over loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use raft::{Config, Envelope, InstallSnapshot, Message, RequestVote};
use raft_node::host::{Host, Outcome, Settings};
use raft_node::machine::CommandLog;
use raft_node::runtime::{Answer, Input, Runtime};
use raft_node::storage::disk::FsDisk;
use raft_node::storage::{FileStorage, Identity, Options};
use raft_node::tcp::{
    handshake, listen, message_frames, read_frame, write_frame, Channel, Frame, Hello, Limits,
    Reassembler, Secret, Side, TcpTransport, Wire, WireError, MAGIC, MAX_FRAME, MAX_MESSAGE, PART,
    VERSION,
};

fn snapshot_message(size: usize) -> Envelope {
    Envelope {
        from: 0,
        to: 1,
        seq: 9,
        message: Message::InstallSnapshot(InstallSnapshot {
            term: 3,
            leader_id: 0,
            last_included_index: 40,
            last_included_term: 2,
            membership: Box::new(raft::Membership::of_voters([0, 1, 2])),
            data: (0..size).map(|i| (i % 251) as u8).collect(),
        }),
    }
}

/// An AppendEntries from node 0 to node 1 with one entry of `size` bytes.
fn append_message(size: usize) -> Envelope {
    Envelope {
        from: 0,
        to: 1,
        seq: 5,
        message: Message::AppendEntries(raft::AppendEntries {
            term: 3,
            leader_id: 0,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![raft::Entry::command(3, vec![7; size])],
            leader_commit: 0,
            read_round: 0,
        }),
    }
}

fn vote_request() -> Envelope {
    Envelope {
        from: 0,
        to: 1,
        seq: 1,
        message: Message::RequestVote(RequestVote {
            term: 2,
            candidate_id: 0,
            last_log_index: 5,
            last_log_term: 1,
            transfer: false,
        }),
    }
}

/// Reads every message from `bytes`.
fn read_all(bytes: &[u8]) -> Result<Vec<Envelope>, WireError> {
    let mut input = Cursor::new(bytes);
    let mut parts = Reassembler::new(MAX_MESSAGE);
    let mut out = Vec::new();
    while (input.position() as usize) < bytes.len() {
        match read_frame(&mut input)? {
            Frame::Part { last, bytes } => out.extend(parts.push(last, &bytes)?),
            _ => return Err(WireError::Refused("a handshake frame".into())),
        }
    }
    Ok(out)
}

#[test]
fn a_large_snapshot_travels_in_parts_and_arrives_whole() {
    let message = snapshot_message(3 * PART + 17);
    let frames: Vec<Frame> = message_frames(&message).collect();
    assert_eq!(frames.len(), 4);
    let mut wire = Vec::new();
    for frame in &frames {
        let Frame::Part { bytes, .. } = frame else {
            panic!("a part")
        };
        assert!(bytes.len() <= PART);
        write_frame(&mut wire, frame).unwrap();
    }
    let small = vote_request();
    for frame in message_frames(&small) {
        write_frame(&mut wire, &frame).unwrap();
    }
    assert_eq!(read_all(&wire).unwrap(), vec![message, small]);
}

#[test]
fn a_frame_or_message_over_the_limit_is_refused_before_it_is_read() {
    let mut wire = ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec();
    wire.extend_from_slice(&[0; 16]);
    let error = read_frame(&mut Cursor::new(&wire)).unwrap_err();
    assert!(
        matches!(
            error,
            WireError::TooLarge {
                what: "a frame",
                ..
            }
        ),
        "{error}"
    );
    let mut parts = Reassembler::new(1000);
    assert!(parts.push(false, &[0; 600]).unwrap().is_none());
    let error = parts.push(true, &[0; 600]).unwrap_err();
    assert!(
        matches!(
            error,
            WireError::TooLarge {
                what: "a message",
                len: 1200,
                ..
            }
        ),
        "{error}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random bytes: frames and messages are refused with an error, never a panic.
    #[test]
    fn random_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = read_all(&bytes);
        let mut parts = Reassembler::new(MAX_MESSAGE);
        let _ = parts.push(true, &bytes);
        let _ = raft_node::tcp::decode_frame(&bytes);
    }

    /// A valid stream with bytes changed, cut or inserted: an error or other messages, never a panic.
    #[test]
    fn damaged_streams_never_panic_the_decoders(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = Vec::new();
        for message in [vote_request(), snapshot_message(300), vote_request()] {
            for frame in message_frames(&message) {
                write_frame(&mut wire, &frame).unwrap();
            }
        }
        for (at, byte, kind) in edits {
            let i = at.index(wire.len());
            match kind {
                0 => wire[i] = byte,
                1 => wire.insert(i, byte),
                _ => { wire.remove(i); }
            }
        }
        wire.truncate(cut.index(wire.len() + 1));
        let _ = read_all(&wire);
    }
}

fn secret() -> Secret {
    Secret::new(b"the test cluster's secret").unwrap()
}

/// Node `me` of cluster 5 (nodes 0, 1, 2), with the test's secret and `limits`.
fn wire(me: u64, limits: Limits) -> Wire {
    Wire {
        me,
        cluster: 5,
        peers: BTreeSet::from([0, 1, 2]).into(),
        secret: secret(),
        limits,
    }
}

/// A listener for node 1 of cluster 5 (nodes 0, 1, 2); returns its address and where its messages go.
fn listener_with(limits: Limits) -> (SocketAddr, std::sync::mpsc::Receiver<Envelope>) {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = channel();
    listen(
        socket,
        wire(1, limits),
        Arc::new(AtomicBool::new(false)),
        move |e| tx.send(e).is_ok(),
    )
    .unwrap();
    (addr, rx)
}

fn listener() -> (SocketAddr, std::sync::mpsc::Receiver<Envelope>) {
    listener_with(Limits::default())
}

fn send(out: &mut impl Write, message: &Envelope) {
    for frame in message_frames(message) {
        write_frame(out, &frame).unwrap();
    }
    out.flush().unwrap();
}

/// Whether the other side has closed `stream` (it reads the end of the stream within two seconds).
fn closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// Sends `hello` (and the proof of `proof_secret`, if any) and a vote request from node 0; says whether it
/// was delivered. An undelivered one must have had its connection closed.
fn delivered_after(hello: Hello, proof_secret: Option<&Secret>, message: Envelope) -> bool {
    let (addr, rx) = listener();
    let mut stream = TcpStream::connect(addr).unwrap();
    // Writes may fail: the listener closes the connection as soon as it refuses.
    let _ = write_frame(&mut stream, &Frame::Hello(hello));
    if let Some(s) = proof_secret {
        // Answer the challenge as node `hello.from` would, with this secret.
        let mut input = std::io::BufReader::new(stream.try_clone().unwrap());
        if let Ok(Frame::Challenge { nonce, .. }) = read_frame(&mut input) {
            let proof = s.prove(Side::Connecting, &hello, &nonce);
            let _ = write_frame(&mut stream, &Frame::Proof(proof));
        }
    }
    for frame in message_frames(&message) {
        let _ = write_frame(&mut stream, &frame);
    }
    let got = rx.recv_timeout(Duration::from_millis(500)).is_ok();
    if !got {
        assert!(closed(&mut stream), "{hello:?}: the connection stayed open");
    }
    got
}

fn good_hello() -> Hello {
    Hello {
        magic: MAGIC,
        version: VERSION,
        cluster: 5,
        from: 0,
        to: 1,
        channel: Channel::Messages,
        nonce: [7; 32],
    }
}

#[test]
fn strangers_are_refused_and_peers_heard() {
    let good = good_hello();
    assert!(delivered_after(good, Some(&secret()), vote_request()));
    for bad in [
        Hello { cluster: 6, ..good },
        Hello { from: 9, ..good },
        Hello { to: 2, ..good },
        Hello { from: 1, ..good },
        Hello { magic: 1, ..good },
        Hello { version: 1, ..good },
    ] {
        assert!(
            !delivered_after(bad, Some(&secret()), vote_request()),
            "{bad:?}"
        );
    }
    // A peer may not speak for another.
    let spoofed = Envelope {
        from: 2,
        ..vote_request()
    };
    assert!(!delivered_after(good, Some(&secret()), spoofed));
}

/// Each kind of failed authentication is refused, on either side, and logged.
#[test]
fn a_wrong_or_missing_secret_is_refused_and_logged() {
    let logs = logs();
    let good = good_hello();
    // A connecting node with another secret, or with no proof at all.
    let other = Secret::new(b"another cluster's secret").unwrap();
    assert!(!delivered_after(good, Some(&other), vote_request()));
    assert!(logs.has("node 0 failed authentication"));
    assert!(!delivered_after(good, None, vote_request()));
    assert!(logs.has("node 0 sent no proof of the secret"));

    // A listening node with another secret: the connecting node refuses it and sends nothing.
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = channel();
    let mut impostor = wire(1, Limits::default());
    impostor.secret = other;
    listen(
        socket,
        impostor,
        Arc::new(AtomicBool::new(false)),
        move |e| tx.send(e).is_ok(),
    )
    .unwrap();
    let refused = handshake(
        TcpStream::connect(addr).unwrap(),
        &wire(0, Limits::default()),
        1,
        Channel::Messages,
    );
    let error = refused.expect_err("the impostor is refused").to_string();
    assert!(error.contains("node 1 failed authentication"), "{error}");
    // And a transport refuses it too, and logs it.
    let mut transport =
        TcpTransport::start(&wire(0, Limits::default()), &BTreeMap::from([(1, addr)]));
    raft_node::runtime::Transport::send(&mut transport, vote_request());
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logs.has("node 1 failed authentication") {
        assert!(Instant::now() < deadline, "not logged");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A handshake that does not finish in time, or a frame that does not arrive whole in time once begun
/// (a peer that sends a byte now and then), ends the connection; so does a handshake frame longer than a
/// handshake needs.
#[test]
fn slow_peers_are_dropped() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        frame_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, rx) = listener_with(limits.clone());
    // Silent after connecting.
    let mut silent = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    assert!(closed(&mut silent));
    assert!(started.elapsed() < Duration::from_millis(1500));
    // A huge hello.
    let mut huge = TcpStream::connect(addr).unwrap();
    huge.write_all(&(100_000u32).to_le_bytes()).unwrap();
    assert!(closed(&mut huge));
    // Authenticated, then trickling a frame: a byte every 50 ms.
    let stream = TcpStream::connect(addr).unwrap();
    let mut out = handshake(stream, &wire(0, limits.clone()), 1, Channel::Messages).unwrap();
    send(&mut out, &vote_request());
    assert!(rx.recv_timeout(Duration::from_secs(2)).is_ok());
    let mut trickle = out.into_inner().unwrap();
    let mut frame = Vec::new();
    write_frame(&mut frame, &message_frames(&vote_request()).next().unwrap()).unwrap();
    let started = Instant::now();
    let mut cut = false;
    for &byte in frame.iter().cycle().take(200) {
        if trickle.write_all(&[byte]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cut, "a trickling peer kept its connection");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// At most `max_connections` connections are served at once: a new one closes the one idle longest, so a
/// flood of idle connections cannot lock a peer out. An authenticated peer has one connection, a new one
/// replacing the old.
#[test]
fn connections_are_bounded() {
    let limits = Limits {
        max_connections: 4,
        handshake_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let (addr, rx) = listener_with(limits.clone());
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let _fifth = TcpStream::connect(addr).unwrap();
    assert!(closed(&mut idle[0]), "the idlest connection stayed open");
    // A flood of idle connections while a peer talks: it keeps its connection and is heard.
    let mut talking = handshake(
        TcpStream::connect(addr).unwrap(),
        &wire(0, limits.clone()),
        1,
        Channel::Messages,
    )
    .unwrap();
    let flood: Vec<TcpStream> = (0..40)
        .map(|_| {
            send(&mut talking, &vote_request());
            assert!(rx.recv_timeout(Duration::from_secs(2)).is_ok());
            TcpStream::connect(addr).unwrap()
        })
        .collect();
    drop((flood, talking));
    // A second connection of node 0 replaces the first (here with room for both).
    let (addr, rx) = listener();
    let connect = || {
        handshake(
            TcpStream::connect(addr).unwrap(),
            &wire(0, limits.clone()),
            1,
            Channel::Messages,
        )
    };
    let first = connect().unwrap();
    let mut second = connect().unwrap();
    let mut first = first.into_inner().unwrap();
    assert!(
        closed(&mut first),
        "the older connection of node 0 stayed open"
    );
    send(&mut second, &vote_request());
    assert!(rx.recv_timeout(Duration::from_secs(2)).is_ok());
}

/// A peer that never reads: the sender's writes block until the write timeout drops the connection, and
/// its queue holds at most the bytes allowed meanwhile.
#[test]
fn a_peer_that_never_reads_holds_a_bounded_queue() {
    let limits = Limits {
        write_timeout: Duration::from_millis(500),
        queue_bytes: 4 << 20,
        ..Limits::default()
    };
    // Node 1: shakes hands on every connection, then never reads.
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (accepted_tx, accepted) = channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in socket.incoming() {
            let stream = stream.unwrap();
            let mut input = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut out = stream.try_clone().unwrap();
            if let Ok(Frame::Hello(hello)) = read_frame(&mut input) {
                let nonce = [3; 32];
                let proof = secret().prove(Side::Listening, &hello, &nonce);
                write_frame(&mut out, &Frame::Challenge { nonce, proof }).unwrap();
                let _ = accepted_tx.send(hello.channel);
            }
            held.push(stream);
        }
    });
    let mut transport = TcpTransport::start(&wire(0, limits.clone()), &BTreeMap::from([(1, addr)]));
    let mut most = 0;
    let started = Instant::now();
    let mut connections = 0;
    while started.elapsed() < Duration::from_secs(4) {
        raft_node::runtime::Transport::send(&mut transport, append_message(256 << 10));
        most = most.max(transport.queued(1));
        connections += accepted
            .try_iter()
            .filter(|&c| c == Channel::Messages)
            .count();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        most <= limits.queue_bytes + (256 << 10) + 64,
        "{most} bytes queued"
    );
    assert!(connections >= 2, "the blocked connection was never dropped");
}

/// Three nodes over loopback TCP, each with file storage: 100 proposals commit, and every node has them.
#[test]
fn a_three_node_cluster_over_loopback_commits() {
    let sockets: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: BTreeMap<u64, SocketAddr> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u64, s.local_addr().unwrap()))
        .collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (answers_tx, answers) = channel::<(u64, Answer)>();
    let mut inboxes: Vec<Sender<Input<u64>>> = Vec::new();
    let mut threads = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let (tx, rx) = channel();
        let deliver = tx.clone();
        let wire = Wire {
            me: i as u64,
            cluster: 3,
            peers: addrs.keys().copied().collect(),
            secret: secret(),
            limits: Limits::default(),
        };
        listen(
            socket,
            wire.clone(),
            Arc::new(AtomicBool::new(false)),
            move |e| deliver.send(Input::Message(e)).is_ok(),
        )
        .unwrap();
        inboxes.push(tx);
        let disk = FsDisk::new(dirs[i].path()).unwrap();
        let identity = Identity {
            cluster: 3,
            node: i as u64,
        };
        let (storage, recovered) = FileStorage::open(disk, identity, Options::default()).unwrap();
        let settings = Settings {
            id: i as u64,
            peers: vec![0, 1, 2],
            config: Config::default(),
            seed: 40 + i as u64,
            snapshot_every: 30,
        };
        let host = Host::new(&settings, storage, recovered, CommandLog::default()).unwrap();
        let transport = TcpTransport::start(&wire, &addrs);
        let answers = answers_tx.clone();
        threads.push(std::thread::spawn(move || {
            Runtime::default().run(host, rx, transport, move |t, a| {
                let _ = answers.send((t, a));
            })
        }));
    }
    let status = |i: usize| {
        let (tx, rx) = channel();
        inboxes[i].send(Input::Status(tx)).unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    };
    let leader = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = (0..3).map(status).find(|s| s.role == raft::Role::Leader) {
                return s.id as usize;
            }
            assert!(Instant::now() < deadline, "no leader");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut committed = Vec::new();
    let mut ticket = 0;
    for k in 0..100u32 {
        let command = format!("over tcp {k}").into_bytes();
        let index = loop {
            ticket += 1;
            inboxes[leader()]
                .send(Input::Propose(command.clone(), ticket))
                .unwrap();
            match answers.recv_timeout(Duration::from_secs(2)) {
                Ok((t, Answer::Done(Outcome::Committed { index, .. }))) if t == ticket => {
                    break index
                }
                _ => continue,
            }
        };
        committed.push((index, command));
    }
    let last = committed.last().unwrap().0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (0..3).any(|i| status(i).last_applied < last) {
        assert!(Instant::now() < deadline, "the nodes did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    for inbox in &inboxes {
        inbox.send(Input::Stop).unwrap();
    }
    for t in threads {
        let host = t.join().unwrap().unwrap();
        for (index, command) in &committed {
            assert_eq!(
                host.machine().commands.get(*index as usize - 1),
                Some(command)
            );
        }
    }
}

/// What the node's threads log, for tests that check a refusal was logged.
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn has(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.0.lock().unwrap()).contains(text)
    }
}

/// Installs (once) a subscriber that keeps every log line of this test process.
fn logs() -> Logs {
    static KEPT: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    let kept = KEPT.get_or_init(|| {
        let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = kept.clone();
        tracing_subscriber::fmt()
            .with_writer(move || Writer(writer.clone()))
            .with_ansi(false)
            .init();
        kept
    });
    Logs(kept.clone())
}

struct Writer(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A link between `listen` and the returned address that carries at most `rate` bytes a second toward the
/// listener, shared by every connection over it (as one slow network path is), in chunks of at most 16 KiB
/// served in turn.
fn slow_link(to: SocketAddr, rate: u64) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let next_free = Arc::new(std::sync::Mutex::new(Instant::now()));
    std::thread::spawn(move || {
        for inbound in socket.incoming() {
            let inbound = inbound.unwrap();
            let outbound = TcpStream::connect(to).unwrap();
            let (mut down_from, mut down_to) =
                (outbound.try_clone().unwrap(), inbound.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut down_from, &mut down_to));
            let next_free = next_free.clone();
            let (mut from, mut to) = (inbound, outbound);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 << 10];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let done = {
                        let mut free = next_free.lock().unwrap();
                        let start = (*free).max(Instant::now());
                        *free = start + Duration::from_secs_f64(n as f64 / rate as f64);
                        *free
                    };
                    std::thread::sleep(done.saturating_duration_since(Instant::now()));
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A heartbeat from node 0 to node 1, numbered by `seq`.
fn heartbeat(seq: u64) -> Envelope {
    Envelope {
        seq,
        ..append_message(0)
    }
}

/// A snapshot of six 1 MiB parts to a follower behind a slow link (2 MiB/s, so about three seconds on the
/// wire): it goes on a connection of its own, so heartbeats sent every 50 ms meanwhile arrive within the
/// election timeout; and, sent again every 300 ms as a leader whose follower has not answered might, until
/// four seconds after it arrived, it crosses the link once.
#[test]
fn a_large_snapshot_to_a_slow_follower_goes_once_and_holds_back_no_heartbeat() {
    let (addr, rx) = listener();
    let link = slow_link(addr, 2 << 20);
    let mut transport =
        TcpTransport::start(&wire(0, Limits::default()), &BTreeMap::from([(1, link)]));
    use raft_node::runtime::Transport as _;
    // The messages' connection first.
    transport.send(heartbeat(0));
    assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());

    let snapshot = snapshot_message(6 * PART);
    let start = Instant::now();
    let mut sent_at = BTreeMap::new();
    let (mut snapshots, mut received_at) = (0, None);
    let mut slowest = Duration::ZERO;
    let mut k = 1;
    while start.elapsed() < Duration::from_secs(20) {
        if received_at.is_some_and(|t: Instant| t.elapsed() > Duration::from_secs(4)) {
            break;
        }
        if k % 6 == 1 {
            transport.send(snapshot.clone());
        }
        transport.send(heartbeat(k));
        sent_at.insert(k, Instant::now());
        k += 1;
        let tick = Instant::now() + Duration::from_millis(50);
        while let Ok(e) = rx.recv_timeout(tick.saturating_duration_since(Instant::now())) {
            match e.message {
                Message::InstallSnapshot(_) => {
                    snapshots += 1;
                    received_at.get_or_insert_with(Instant::now);
                }
                _ => slowest = slowest.max(sent_at[&e.seq].elapsed()),
            }
        }
    }
    let transfer = received_at.expect("the snapshot arrived") - start;
    println!("snapshot on the wire for {transfer:?}; slowest heartbeat {slowest:?}");
    assert!(
        transfer > Duration::from_secs(2),
        "the link was not slow: {transfer:?}"
    );
    assert_eq!(
        snapshots, 1,
        "the snapshot crossed the link {snapshots} times"
    );
    assert_eq!(transport.snapshots_sent(), 1);
    assert!(
        slowest < Duration::from_millis(300),
        "a heartbeat waited {slowest:?} behind the snapshot"
    );
}
