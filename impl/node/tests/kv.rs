//! The key-value store served by real `raft-node` processes on loopback: the commands `local-cluster`
//! prints work as printed, and a write retried across a leader change (the leader killed with SIGKILL) is
//! applied once.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use raft::Role;
use raft_kv::{Command as KvCommand, Reply as KvReply, Write};
use raft_node::client::{Client, Reply, Request};

const EXE: &str = env!("CARGO_BIN_EXE_raft-node");

fn free_addr() -> SocketAddr {
    raft_node::tcp::restartable_addr().expect("a free port")
}

/// A base port for `local-cluster` with `n` nodes: BASE..BASE+n and BASE+100..BASE+100+n free.
fn free_base(n: u16) -> u16 {
    let start = 20_000 + (std::process::id() % 20_000) as u16;
    (start..start + 5_000)
        .step_by(7)
        .find(|&base| {
            let ports = (base..base + n).chain(base + 100..base + 100 + n);
            let held: Vec<_> = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect();
            held.iter().all(Result::is_ok)
        })
        .expect("a free range of ports")
}

/// A process killed (SIGKILL) with its whole process group when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().unwrap()
}

/// Runs one of the lines `local-cluster` printed (`raft-node kv ...`) until it exits 0 (the cluster may
/// still be electing its first leader), and returns its standard output.
fn run_example(line: &str) -> String {
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(&args);
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_commands_local_cluster_prints_work_as_printed() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(3).to_string();
    let mut child = Command::new(EXE)
        .args([
            "local-cluster",
            "--nodes",
            "3",
            "--base-port",
            &base,
            "--dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let _cluster = Group(child);
    let examples: Vec<String> = stdout
        .lines()
        .map(Result::unwrap)
        .take_while(|l| !l.contains("raft-node status"))
        .filter_map(|l| {
            l.trim()
                .strip_prefix("raft-node kv ")
                .map(|rest| format!("raft-node kv {rest}"))
        })
        .collect();
    let ops: Vec<&str> = examples
        .iter()
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(ops, ["put", "get", "append", "cas"], "{examples:?}");
    assert_eq!(run_example(&examples[0]), "", "put prints nothing");
    assert_eq!(run_example(&examples[1]), "1\n", "get prints the value");
    assert_eq!(run_example(&examples[2]), "", "append prints nothing");
    assert_eq!(
        run_example(&examples[3]),
        "true\n",
        "cas prints whether it swapped"
    );
    let get = examples[1].clone();
    assert_eq!(run_example(&get), "3\n");
    assert_eq!(run_example(&examples[3]), "false\n", "12 is gone");
    assert_eq!(
        run_example(&get.replace(" get a", " get missing")),
        "\n",
        "a missing key reads as an empty line"
    );
    // An unreachable cluster is an error on standard error and a non-zero exit, within the timeout.
    let nowhere = format!("1={}", free_addr());
    let out = run(&["kv", "--nodes", &nowhere, "--timeout", "1", "put", "a", "1"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("may or may not have been applied"), "{err}");
}

/// One node process.
struct Node {
    child: Child,
    client: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call(addr: SocketAddr, request: Request) -> Option<Reply> {
    Client::connect(addr, Duration::from_secs(2))
        .ok()?
        .call(request)
        .ok()
}

/// The live node that leads, waiting for one.
fn leader(nodes: &[Option<Node>]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (i, node) in nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            if let Some(Reply::Status(s)) = call(node.client, Request::Status) {
                if s.role == Role::Leader {
                    return i;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Proposes `command` to whichever node leads until one commits it; returns the store's reply.
fn propose(nodes: &[Option<Node>], command: &KvCommand) -> KvReply {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l = leader(nodes);
        let client = nodes[l].as_ref().unwrap().client;
        if let Some(Reply::Committed { response, .. }) =
            call(client, Request::Propose(raft_kv::encode(command)))
        {
            return raft_kv::decode(&response).unwrap();
        }
        assert!(Instant::now() < deadline, "{command:?} never committed");
    }
}

fn read(nodes: &[Option<Node>], key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l = leader(nodes);
        let client = nodes[l].as_ref().unwrap().client;
        if let Some(Reply::Value(v)) = call(client, Request::Read(key.as_bytes().to_vec())) {
            return String::from_utf8(v).unwrap();
        }
        assert!(Instant::now() < deadline, "no read of {key}");
    }
}

/// A client registers, appends once, and sends the same append again (same client, same sequence
/// number) after the leader that committed it was killed: the new leader answers from the session and the
/// value holds the argument once. A new sequence number appends again.
#[test]
fn a_write_retried_across_a_leader_change_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let peer_list = (0..3)
        .map(|i| format!("{}={}", i + 1, peers[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Option<Node>> = (0..3)
        .map(|i| {
            let client = free_addr();
            let child = Command::new(EXE)
                .args(["--id", &(i + 1).to_string(), "--peers", &peer_list])
                .arg("--data-dir")
                .arg(dir.path().join(format!("node-{}", i + 1)))
                .args(["--client-addr", &client.to_string()])
                .arg("--secret-file")
                .arg(&secret)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            Some(Node { child, client })
        })
        .collect();
    let KvReply::Registered(client) = propose(&nodes, &KvCommand::Register) else {
        panic!("not registered");
    };
    let append = KvCommand::Write {
        client,
        seq: 1,
        write: Write::Append {
            key: "k".into(),
            arg: "x".into(),
        },
    };
    assert_eq!(propose(&nodes, &append), KvReply::Done);
    let old = leader(&nodes);
    nodes[old] = None; // SIGKILL
    let new = leader(&nodes);
    assert_ne!(old, new);
    assert_eq!(propose(&nodes, &append), KvReply::Done, "answered again");
    assert_eq!(read(&nodes, "k"), "x", "applied once");
    // The check bites: the next sequence number is a new write.
    let again = KvCommand::Write {
        client,
        seq: 2,
        write: Write::Append {
            key: "k".into(),
            arg: "x".into(),
        },
    };
    assert_eq!(propose(&nodes, &again), KvReply::Done);
    assert_eq!(read(&nodes, "k"), "xx");
}
