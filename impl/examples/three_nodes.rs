//! Three `raft` nodes in one process, with a network and disks in memory: how a host drives the core.
//!
//! The loop a host runs, for each node: feed it time (`tick`) and messages (`step`), hand it commands
//! (`propose`), then take its `Ready`: save what it says to persist, and only then send its messages and
//! apply its committed entries. Here a node also crashes and restarts from what it saved.
//!
//! `cargo run --release -p raft --example three_nodes`

use std::collections::VecDeque;

use raft::{Apply, Config, Envelope, Node, PersistentState};

/// One server: its node, what it saved (its "disk"), and the commands it applied (its state machine).
struct Server {
    node: Node,
    disk: Option<PersistentState>,
    applied: Vec<String>,
}

const IDS: [u64; 3] = [0, 1, 2];

fn start(id: u64, disk: Option<PersistentState>) -> Node {
    // The seed only draws election timeouts; give each server its own.
    Node::new(id, &IDS, Config::default(), disk, None, 42 + id).expect("a valid configuration")
}

/// Takes server `i`'s output: saves its state first, then sends and applies.
fn handle_ready(servers: &mut [Server], i: usize, network: &mut VecDeque<Envelope>) {
    let server = &mut servers[i];
    while server.node.has_ready() {
        let ready = server.node.ready();
        if let Some(state) = ready.persist() {
            // A real host writes this to disk and syncs before going on.
            server.disk = Some(state.clone());
        }
        let released = ready.persisted();
        network.extend(released.messages);
        for apply in released.applies {
            if let Apply::Command { index, command, .. } = apply {
                let text = String::from_utf8_lossy(&command).into_owned();
                println!("  node {i} applies index {index}: {text:?}");
                server.applied.push(text);
            }
        }
    }
}

/// Runs the cluster for `ticks` ticks, delivering every message (except to a crashed server).
fn run(
    servers: &mut [Server],
    network: &mut VecDeque<Envelope>,
    ticks: usize,
    down: Option<usize>,
) {
    for _ in 0..ticks {
        for i in 0..servers.len() {
            if Some(i) != down {
                servers[i].node.tick();
                handle_ready(servers, i, network);
            }
        }
        while let Some(envelope) = network.pop_front() {
            let to = envelope.to as usize;
            if Some(to) == down {
                continue; // lost: Raft sends again what matters
            }
            if let Err(e) = servers[to].node.step(envelope) {
                println!("  node {to} refused a message: {e}");
            }
            handle_ready(servers, to, network);
        }
    }
}

/// The server that leads, leaving out a crashed one.
fn leader(servers: &[Server], down: Option<usize>) -> Option<usize> {
    (0..servers.len()).find(|&i| Some(i) != down && servers[i].node.is_leader())
}

fn main() {
    let mut servers: Vec<Server> = IDS
        .iter()
        .map(|&id| Server {
            node: start(id, None),
            disk: None,
            applied: Vec::new(),
        })
        .collect();
    let mut network = VecDeque::new();

    println!("electing a leader:");
    run(&mut servers, &mut network, 100, None);
    let first = leader(&servers, None).expect("a leader within 100 ticks");
    println!("  node {first} leads term {}", servers[first].node.term());

    println!("proposing three commands to the leader:");
    for command in ["x = 1", "y = 2", "x = 3"] {
        servers[first]
            .node
            .propose(command.into())
            .expect("the leader takes commands");
        handle_ready(&mut servers, first, &mut network);
    }
    run(&mut servers, &mut network, 20, None);

    println!("node {first} crashes; the other two elect a new leader and go on:");
    run(&mut servers, &mut network, 100, Some(first));
    let second = leader(&servers, Some(first)).expect("a new leader");
    servers[second]
        .node
        .propose("y = 4".into())
        .expect("the leader takes commands");
    handle_ready(&mut servers, second, &mut network);
    run(&mut servers, &mut network, 20, Some(first));

    println!("node {first} restarts from what it saved, and catches up:");
    let disk = servers[first].disk.clone();
    servers[first].node = start(first as u64, disk);
    // A restarted node applies its log again from the start (or from its snapshot): the state machine too
    // starts over.
    servers[first].applied.clear();
    run(&mut servers, &mut network, 50, None);

    for s in &servers {
        assert_eq!(
            s.applied, servers[second].applied,
            "every server applied the same"
        );
    }
    println!(
        "every server applied {:?}; node {} leads term {}",
        servers[second].applied,
        leader(&servers, None).expect("a leader"),
        servers[second].node.term()
    );
}
