//! Three `raft-node` processes under abuse from a fourth member of their cluster, node 4, which holds the
//! secret and misbehaves in every way the connections are bounded against: its own address accepts
//! connections, answers the handshake and never reads again; it sends each node frames one byte at a time;
//! it connects to each node again and again, each time sending all but the last byte of a 1 MiB frame; and
//! it opens connections to every node's peer and client ports as fast as it can, and leaves them idle.
//! Meanwhile a client proposes without pause. The cluster keeps committing, and each node's resident memory
//! stays under a bound.

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_node::client::{Client, Reply, Request};
use raft_node::tcp::{
    handshake, read_frame, write_frame, Channel, Frame, Limits, Secret, Side, Wire, MAX_FRAME,
};

const EXE: &str = env!("CARGO_BIN_EXE_raft-node");

/// The resident memory no node may exceed under the abuse, in MiB. (Commands are small, so that the state
/// machine, which keeps every command, stays under a megabyte: what is measured is the connections' cost.)
const RSS_BOUND_MIB: u64 = 64;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A process's resident memory, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Proposes 16-byte commands one after another to whichever node leads, counting what commits, until stopped.
fn propose(clients: Vec<SocketAddr>, committed: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut target = 0;
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut command = format!("command {k} ").into_bytes();
        command.resize(16, b'.');
        let reply = Client::connect(clients[target], Duration::from_secs(2))
            .ok()
            .and_then(|mut c| c.call(Request::Propose(command)).ok());
        match reply {
            Some(Reply::Committed { .. }) => {
                committed.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
            Some(Reply::NotLeader(Some(leader))) if (1..=3).contains(&leader) => {
                target = leader as usize - 1
            }
            _ => {
                target = (target + 1) % 3;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The largest resident memory of each node (MiB) while `seconds` pass, and how many proposals committed.
fn watch(pids: &[u32], committed: &AtomicU64, seconds: u64) -> (Vec<f64>, u64) {
    let before = committed.load(Ordering::Relaxed);
    let mut most = vec![0u64; pids.len()];
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        for (m, &pid) in most.iter_mut().zip(pids) {
            *m = (*m).max(rss_kib(pid).unwrap_or(0));
        }

        std::thread::sleep(Duration::from_millis(50));
    }
    let mib = most.iter().map(|&k| k as f64 / 1024.0).collect();
    (mib, committed.load(Ordering::Relaxed) - before)
}

#[test]
fn abuse_by_a_member_neither_stops_commits_nor_grows_memory() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "the abused cluster's secret\n").unwrap();
    let secret = Secret::read(&secret_file).unwrap();
    let peers: Vec<SocketAddr> = (0..4).map(|_| free_addr()).collect();
    let clients: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let node4 = TcpListener::bind(peers[3]).unwrap();
    let peer_list = (0..4)
        .map(|i| format!("{}={}", i + 1, peers[i]))
        .collect::<Vec<_>>()
        .join(",");
    let nodes = Nodes(
        (0..3)
            .map(|i| {
                Command::new(EXE)
                    .args(["--id", &(i + 1).to_string(), "--peers", &peer_list])
                    .arg("--data-dir")
                    .arg(dir.path().join(format!("node-{}", i + 1)))
                    .args(["--client-addr", &clients[i].to_string()])
                    .args(["--snapshot-every", "200", "--machine", "log"])
                    .arg("--secret-file")
                    .arg(&secret_file)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let pids: Vec<u32> = nodes.0.iter().map(Child::id).collect();

    // Node 4's address: answers every handshake, then never reads.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let secret = secret.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in node4.incoming() {
                let Ok(stream) = stream else { continue };
                let mut input = BufReader::new(stream.try_clone().unwrap());
                if let Ok(Frame::Hello(hello)) = read_frame(&mut input) {
                    let nonce = [9; 32];
                    let proof = secret.prove(Side::Listening, &hello, &nonce);
                    let _ = write_frame(&mut &stream, &Frame::Challenge { nonce, proof });
                }
                held.push(stream);
            }
        });
    }

    let committed = Arc::new(AtomicU64::new(0));
    let proposer = {
        let (clients, committed, stop) = (clients.clone(), committed.clone(), stop.clone());
        std::thread::spawn(move || propose(clients, committed, stop))
    };
    // A leader, then a quiet baseline.
    let deadline = Instant::now() + Duration::from_secs(20);
    while committed.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "nothing committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (quiet_rss, quiet_commits) = watch(&pids, &committed, 4);

    let mut abusers = Vec::new();
    let wire4 = Wire {
        me: 4,
        cluster: 1,
        peers: BTreeSet::from([1, 2, 3, 4]).into(),
        secret,
        limits: Limits::default(),
    };
    for i in 0..3 {
        // Frames one byte every 100 ms, as node 4; again whenever the node hangs up.
        let (wire, halt, addr) = (wire4.clone(), stop.clone(), peers[i]);
        abusers.push(std::thread::spawn(move || {
            let stop = halt;
            let mut trickled = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let Ok(stream) = TcpStream::connect(addr) else {
                    continue;
                };
                let Ok(out) = handshake(stream, &wire, i as u64 + 1, Channel::Messages) else {
                    continue;
                };
                let mut out = out.into_inner().unwrap();
                let mut frame = (MAX_FRAME as u32).to_le_bytes().to_vec();
                frame.extend(std::iter::repeat_n(1u8, MAX_FRAME));
                for byte in frame {
                    if stop.load(Ordering::Relaxed) || out.write_all(&[byte]).is_err() {
                        break;
                    }
                    trickled += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            trickled
        }));
        // Authenticated connections, 20 a second, each with all but the last byte of a 1 MiB frame (the
        // last 100 kept open).
        let (wire, halt, addr) = (wire4.clone(), stop.clone(), peers[i]);
        abusers.push(std::thread::spawn(move || {
            let mut held = std::collections::VecDeque::new();
            let mut sent = 0;
            let mut frame = (MAX_FRAME as u32).to_le_bytes().to_vec();
            frame.extend(std::iter::repeat_n(1u8, MAX_FRAME - 1));
            while !halt.load(Ordering::Relaxed) {
                let shaken = TcpStream::connect(addr).map_err(drop).and_then(|s| {
                    handshake(s, &wire, i as u64 + 1, Channel::Messages).map_err(drop)
                });
                if let Ok(out) = shaken {
                    let mut out = out.into_inner().unwrap();
                    if out.write_all(&frame).is_ok() {
                        sent += frame.len();
                    }
                    held.push_back(out);
                    if held.len() > 100 {
                        held.pop_front();
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            sent
        }));
        // Connections to the peer and client ports, 200 a second each, left idle (the last 150 kept).
        for addr in [peers[i], clients[i]] {
            let stop = stop.clone();
            abusers.push(std::thread::spawn(move || {
                let mut held = std::collections::VecDeque::new();
                let mut opened = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(s) = TcpStream::connect(addr) {
                        held.push_back(s);
                        opened += 1;
                    }
                    if held.len() > 150 {
                        held.pop_front();
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                opened
            }));
        }
    }
    let (abused_rss, abused_commits) = watch(&pids, &committed, 12);
    stop.store(true, Ordering::Relaxed);
    proposer.join().unwrap();
    let done: Vec<usize> = abusers.into_iter().map(|a| a.join().unwrap()).collect();
    println!(
        "quiet 4 s: {quiet_commits} commits, peak RSS {quiet_rss:.1?} MiB; abused 12 s: \
         {abused_commits} commits, peak RSS {abused_rss:.1?} MiB; per node, bytes trickled, bytes \
         of 1 MiB frames sent, connections opened to the peer and client ports: {done:?}"
    );
    assert!(
        done.chunks(4)
            .all(|d| d[1] > 100 << 20 && d[2] > 1000 && d[3] > 1000),
        "the abuse did not happen: {done:?}"
    );
    assert!(
        quiet_rss.iter().all(|&rss| rss > 1.0),
        "resident memory not measured: {quiet_rss:?}"
    );
    assert!(
        abused_commits >= 100,
        "only {abused_commits} commits in 12 s of abuse"
    );
    for (i, &rss) in abused_rss.iter().enumerate() {
        assert!(
            rss <= RSS_BOUND_MIB as f64,
            "node {} reached {rss:.1} MiB (bound {RSS_BOUND_MIB} MiB)",
            i + 1
        );
    }
    drop(nodes);
}
