//! `raft-chaos`: its network faults do what they say, a clean run passes, and deliberate bugs are caught, each
//! in a schedule that exposes it for certain (a stale read, which needs a client to read from a deposed
//! leader after a new one committed, is caught by most runs but not all, and is measured, not tested here).
//!
//! The runs need the `raft-node` executable beside `raft-chaos` (`cargo test --workspace` builds both; else
//! `cargo build --release -p raft-node` first).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use conformance::chaos::nemesis::{schedule, Fault, Kind, Who};
use conformance::chaos::proxy::{LinkFaults, Network, CLIENTS};

/// A server that records every length-prefixed frame it receives, in order.
fn frame_sink() -> (SocketAddr, Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || loop {
                let mut header = [0u8; 4];
                if stream.read_exact(&mut header).is_err() {
                    return;
                }
                let mut payload = vec![0u8; u32::from_le_bytes(header) as usize];
                if stream.read_exact(&mut payload).is_err() || tx.send(payload).is_err() {
                    return;
                }
            });
        }
    });
    (addr, rx)
}

fn frame(k: u32) -> Vec<u8> {
    let mut bytes = 4u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&k.to_le_bytes());
    bytes
}

/// Sends frames 0..count through a client link with `faults`; returns what arrived within a second of the
/// last, as numbers.
fn through(faults: LinkFaults, count: u32) -> (Vec<u32>, conformance::chaos::proxy::Counts) {
    let (target, received) = frame_sink();
    let net = Network::start(&BTreeMap::new(), &BTreeMap::from([(1, target)]), 7).unwrap();
    net.set_faults(faults);
    let mut stream = TcpStream::connect(net.addr(CLIENTS, 1)).unwrap();
    for k in 0..count {
        stream.write_all(&frame(k)).unwrap();
    }
    let mut got = Vec::new();
    while let Ok(payload) = received.recv_timeout(Duration::from_secs(1)) {
        got.push(u32::from_le_bytes(payload.try_into().unwrap()));
    }
    (got, net.counts())
}

#[test]
fn a_link_without_faults_delivers_every_message_once_in_order() {
    let (got, counts) = through(LinkFaults::default(), 1000);
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(
        (counts.dropped, counts.duplicated, counts.reordered),
        (0, 0, 0)
    );
}

#[test]
fn loss_duplication_and_reordering_happen_as_counted() {
    let lossy = LinkFaults {
        drop: 0.2,
        ..LinkFaults::default()
    };
    let (got, counts) = through(lossy, 1000);
    assert_eq!(got.len() as u64, 1000 - counts.dropped);
    assert!((100..300).contains(&counts.dropped), "{counts:?}");
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "loss alone keeps the order"
    );

    let doubling = LinkFaults {
        duplicate: 0.2,
        ..LinkFaults::default()
    };
    let (got, counts) = through(doubling, 1000);
    assert_eq!(got.len() as u64, 1000 + counts.duplicated);
    assert!((100..300).contains(&counts.duplicated), "{counts:?}");

    let shuffling = LinkFaults {
        reorder: 0.2,
        ..LinkFaults::default()
    };
    let (got, counts) = through(shuffling, 1000);
    let out_of_order = got.windows(2).filter(|w| w[0] > w[1]).count() as u64;
    assert!(counts.reordered > 50, "{counts:?}");
    // Each message held back comes right after the next one; the last may still be held.
    assert!(
        out_of_order + 1 >= counts.reordered,
        "{out_of_order} {counts:?}"
    );
    assert!(got.len() >= 999);
}

#[test]
fn a_delay_holds_every_message_back() {
    let (target, received) = frame_sink();
    let net = Network::start(&BTreeMap::new(), &BTreeMap::from([(1, target)]), 7).unwrap();
    net.set_faults(LinkFaults {
        delay: Duration::from_millis(200),
        ..LinkFaults::default()
    });
    let mut stream = TcpStream::connect(net.addr(CLIENTS, 1)).unwrap();
    let sent = Instant::now();
    stream.write_all(&frame(1)).unwrap();
    received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(sent.elapsed() >= Duration::from_millis(200));
}

#[test]
fn a_cut_link_forwards_nothing_and_its_connections_close_when_it_heals() {
    let (target, received) = frame_sink();
    let net = Network::start(&BTreeMap::new(), &BTreeMap::from([(1, target)]), 7).unwrap();
    let mut stream = TcpStream::connect(net.addr(CLIENTS, 1)).unwrap();
    stream.write_all(&frame(1)).unwrap();
    assert!(received.recv_timeout(Duration::from_secs(5)).is_ok());
    net.cut(CLIENTS, 1);
    stream.write_all(&frame(2)).unwrap();
    assert!(
        received.recv_timeout(Duration::from_millis(500)).is_err(),
        "a cut link forwarded"
    );
    net.heal();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(stream.read(&mut byte), Ok(0) | Err(_)),
        "a connection that lived through a cut stays open"
    );
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
    assert_eq!(net.counts().reset, 1);
}

/// One raft-chaos run at a time: the machine has two cores, and runs are timed by the wall clock.
static RUNS: Mutex<()> = Mutex::new(());

fn raft_chaos(args: &[&str]) -> (bool, String) {
    let _one = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_raft-chaos"));
    let node = exe.with_file_name("raft-node");
    assert!(
        node.is_file(),
        "{} is missing: build it first (cargo build --release -p raft-node)",
        node.display()
    );
    let out = Command::new(&exe)
        .args(args)
        .output()
        .expect("raft-chaos runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn a_run_under_every_fault_passes_its_checks() {
    // 35 s: room for the seven kinds of fault, each at least once.
    let kinds: std::collections::BTreeSet<Kind> = schedule(3, &Kind::ALL, Duration::from_secs(35))
        .iter()
        .map(|s| s.fault.kind())
        .collect();
    assert_eq!(kinds.len(), Kind::ALL.len(), "{kinds:?}");
    let (ok, out) = raft_chaos(&[
        "--runs",
        "1",
        "--run-secs",
        "35",
        "--seed",
        "3",
        "--nodes",
        "3",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("chaos: runs=1 "), "{out}");
    assert!(out.contains("linearizable=1 "), "{out}");
    assert!(out.contains("lost_acked=0 "), "{out}");
    assert!(out.contains("invalid_traces=0 "), "{out}");
}

#[test]
fn a_disk_that_never_syncs_loses_acknowledged_writes_to_a_power_cut() {
    // The first seed whose schedule cuts the power of every node first: what was acknowledged is gone, so
    // the history and the traces must both say so.
    let run = Duration::from_secs(8);
    let seed = (1..)
        .find(|&seed| {
            schedule(seed, &[Kind::Power], run)
                .first()
                .is_some_and(|s| s.fault == Fault::Power(Who::All))
        })
        .unwrap()
        .to_string();
    let (ok, out) = raft_chaos(&[
        "--runs",
        "1",
        "--run-secs",
        "8",
        "--seed",
        &seed,
        "--nodes",
        "3",
        "--faults",
        "power",
        "--bug",
        "no-sync",
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("not linearizable"), "{out}");
    assert!(out.contains("invalid_traces=1 "), "{out}");
}

/// A run of 5 s with `--bug bug` under link faults fails, and its traces say `reason`.
fn caught_by_traces(bug: &str, reason: &str) {
    let (ok, out) = raft_chaos(&[
        "--runs",
        "1",
        "--run-secs",
        "5",
        "--seed",
        "3",
        "--nodes",
        "3",
        "--faults",
        "link",
        "--bug",
        bug,
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains(reason), "{out}");
    assert!(out.contains("invalid_traces=1 "), "{out}");
}

#[test]
fn a_host_that_sends_before_its_save_is_durable_is_caught_by_its_traces() {
    caught_by_traces(
        "send-before-save",
        "before the state it depends on was durable",
    );
}

#[test]
fn a_transport_that_decodes_a_message_wrongly_is_caught_by_its_traces() {
    caught_by_traces("lossy-decode", "transport decoded message");
}
