//! The TCP transport: framing round trips and limits, decoders fuzzed with random and damaged bytes (never a
//! panic), handshakes from strangers refused, and a three-node cluster over loopback.

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
    listen, message_frames, read_frame, write_frame, Frame, Hello, Reassembler, TcpTransport,
    WireError, MAGIC, MAX_FRAME, MAX_MESSAGE, PART, VERSION,
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
            data: (0..size).map(|i| (i % 251) as u8).collect(),
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
            Frame::Hello(_) => return Err(WireError::Refused("hello".into())),
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

/// A listener for node 1 of cluster 5 (nodes 0, 1, 2); returns its address and where its messages go.
fn listener() -> (SocketAddr, std::sync::mpsc::Receiver<Envelope>) {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = channel();
    listen(
        socket,
        1,
        5,
        BTreeSet::from([0, 1, 2]),
        MAX_MESSAGE,
        Arc::new(AtomicBool::new(false)),
        move |e| tx.send(e).is_ok(),
    )
    .unwrap();
    (addr, rx)
}

/// Connects with `hello`, sends a vote request from node 0, and says whether it was delivered.
fn delivered_after(hello: Hello, message: Envelope) -> bool {
    let (addr, rx) = listener();
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut wire = Vec::new();
    write_frame(&mut wire, &Frame::Hello(hello)).unwrap();
    for frame in message_frames(&message) {
        write_frame(&mut wire, &frame).unwrap();
    }
    stream.write_all(&wire).unwrap();
    let got = rx.recv_timeout(Duration::from_millis(500)).is_ok();
    if !got {
        // The listener closed the connection.
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(stream.read(&mut buf).unwrap_or(0), 0);
    }
    got
}

#[test]
fn strangers_are_refused_and_peers_heard() {
    let good = Hello {
        magic: MAGIC,
        version: VERSION,
        cluster: 5,
        from: 0,
        to: 1,
    };
    assert!(delivered_after(good, vote_request()));
    for bad in [
        Hello { cluster: 6, ..good },
        Hello { from: 9, ..good },
        Hello { to: 2, ..good },
        Hello { from: 1, ..good },
        Hello { magic: 1, ..good },
        Hello { version: 2, ..good },
    ] {
        assert!(!delivered_after(bad, vote_request()), "{bad:?}");
    }
    // A peer may not speak for another.
    let spoofed = Envelope {
        from: 2,
        ..vote_request()
    };
    assert!(!delivered_after(good, spoofed));
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
        listen(
            socket,
            i as u64,
            3,
            addrs.keys().copied().collect(),
            MAX_MESSAGE,
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
        let transport = TcpTransport::start(i as u64, 3, &addrs);
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
