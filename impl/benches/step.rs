//! Micro-benchmark of the core: a three-server cluster in memory replicating one command after another (each
//! proposal is stepped through to commit on every server), timed per `step`. Run with
//! `cargo bench -p raft --bench step`; `-- observed` attaches an observer that does nothing, to show what the
//! hook itself costs.
//!
//! Prints `step: <ns> ns/step (<steps> steps, best of 5)`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use raft::{Config, Envelope, Node, Observer, Output, Step};

struct Nothing;

impl Observer for Nothing {
    fn step(&self, node: &Node, step: &Step<'_>) {
        black_box((node.term(), step));
    }
    fn released(&self, node: u64, output: &Output<'_>) {
        black_box((node, output.messages.len()));
    }
}

fn cluster(observed: bool) -> Vec<Node> {
    let peers = [0, 1, 2];
    let mut nodes: Vec<Node> = peers
        .iter()
        .map(|&id| Node::new(id, &peers, Config::default(), None, None, 1).unwrap())
        .collect();
    if observed {
        let o: Arc<dyn Observer> = Arc::new(Nothing);
        for n in &mut nodes {
            n.set_observer(o.clone());
        }
    }
    // Elect node 0.
    while !nodes[0].is_leader() {
        nodes[0].tick();
        let msgs = drain(&mut nodes, 0);
        run(&mut nodes, msgs);
    }
    nodes
}

fn drain(nodes: &mut [Node], i: usize) -> Vec<Envelope> {
    nodes[i].ready().persisted().messages
}

/// Delivers messages until none is left; returns the number of steps.
fn run(nodes: &mut [Node], mut queue: Vec<Envelope>) -> u64 {
    let mut steps = 0;
    while let Some(e) = queue.pop() {
        let to = e.to as usize;
        nodes[to].step(e).unwrap();
        steps += 1;
        queue.extend(drain(nodes, to));
    }
    steps
}

fn main() {
    let observed = std::env::args().any(|a| a == "observed");
    let rounds = 200_000;
    let mut best = f64::MAX;
    let mut steps = 0;
    for _ in 0..5 {
        let mut nodes = cluster(observed);
        let started = Instant::now();
        steps = 0;
        for k in 0..rounds {
            nodes[0].propose(vec![k as u8; 8]).unwrap();
            let msgs = drain(&mut nodes, 0);
            steps += run(&mut nodes, msgs);
            if k % 64 == 0 {
                // Keep the logs short: snapshot everything applied.
                for n in nodes.iter_mut() {
                    let applied = n.last_applied();
                    n.snapshot(applied, vec![1]).unwrap();
                    let msgs = n.ready().persisted().messages;
                    black_box(msgs);
                }
            }
        }
        let ns = started.elapsed().as_nanos() as f64 / steps as f64;
        best = best.min(ns);
    }
    println!(
        "step{}: {best:.1} ns/step ({steps} steps, best of 5)",
        if observed { " (observed)" } else { "" }
    );
}
