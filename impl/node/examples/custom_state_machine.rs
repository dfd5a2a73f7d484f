//! A state machine of your own behind `raft-node`'s runtime: a replicated counter.
//!
//! Implement [`StateMachine`] (apply a committed command, take and restore snapshots, answer queries), give
//! it to a [`Host`] with its storage, and run the host in a [`Runtime`] loop: the runtime ticks the node,
//! saves before it sends or applies, and answers each proposal once it commits. Here three nodes run in one
//! process, over the in-memory network, each with its own write-ahead log in a temporary directory.
//!
//! `cargo run --release -p raft-node --example custom_state_machine`

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use raft::{Config, Index};
use raft_node::host::{Host, Outcome, Settings, StateMachine};
use raft_node::memory::Network;
use raft_node::runtime::{Answer, Input, Runtime};
use raft_node::storage::disk::FsDisk;
use raft_node::storage::{FileStorage, Identity, Options};

/// The replicated service: a counter. A command is an amount to add (8 bytes, little-endian); its answer,
/// and a query's, is the total.
#[derive(Default)]
struct Counter {
    total: i64,
}

fn amount(bytes: &[u8]) -> Result<i64, String> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| format!("{} bytes, not 8", bytes.len()))?;
    Ok(i64::from_le_bytes(bytes))
}

impl StateMachine for Counter {
    fn apply(&mut self, _index: Index, command: &[u8]) -> Vec<u8> {
        // Each new leader's empty command is applied too: it adds nothing. A command that is no amount is
        // answered, and changes nothing, on every node alike.
        if let Ok(n) = amount(command) {
            self.total = self.total.wrapping_add(n);
        }
        self.total.to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.total.to_le_bytes().to_vec()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.total = amount(snapshot)?;
        Ok(())
    }

    fn check(&self, snapshot: &[u8]) -> Result<(), String> {
        amount(snapshot).map(drop)
    }

    fn query(&self, _request: &[u8]) -> Vec<u8> {
        self.total.to_le_bytes().to_vec()
    }
}

/// Sends `input` (made with a ticket) to whichever node leads, following the leader it names when a node
/// does not lead, and waits for the answer: its outcome. (A command taken by a leader is answered once its
/// fate is known; it is never sent twice, so it is never applied twice.)
fn ask(
    inboxes: &[Sender<Input<u64>>],
    answers: &Receiver<(u64, Answer)>,
    ticket: &mut u64,
    input: impl Fn(u64) -> Input<u64>,
) -> Outcome {
    let mut target = 0;
    loop {
        *ticket += 1;
        inboxes[target].send(input(*ticket)).expect("the node runs");
        let answer = loop {
            let (t, answer) = answers.recv().expect("the nodes run");
            if t == *ticket {
                break answer;
            }
        };
        match answer {
            Answer::Done(outcome) => return outcome,
            // Not the leader: ask the one it names, or the next node, after a moment.
            Answer::NotLeader(n) => {
                target = n
                    .leader
                    .map_or((target + 1) % inboxes.len(), |l| l as usize);
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("node {target} answered {other:?}"),
        }
    }
}

fn main() {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("a temporary directory"))
        .collect();
    let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| channel()).unzip();
    let network = Network::new(inboxes.clone());
    let (answers_tx, answers) = channel();
    let mut threads = Vec::new();
    for (i, inbox) in receivers.into_iter().enumerate() {
        let disk = FsDisk::new(dirs[i].path()).expect("a usable directory");
        let identity = Identity {
            cluster: 1,
            node: i as u64,
        };
        let (storage, recovered) =
            FileStorage::open(disk, identity, Options::default()).expect("a usable directory");
        let settings = Settings {
            id: i as u64,
            peers: vec![0, 1, 2],
            config: Config::default(),
            seed: i as u64,
            snapshot_every: 4,
        };
        let host =
            Host::new(&settings, storage, recovered, Counter::default()).expect("a new node");
        let (network, answers) = (network.clone(), answers_tx.clone());
        threads.push(std::thread::spawn(move || {
            Runtime::default().run(host, inbox, network, move |ticket, answer| {
                let _ = answers.send((ticket, answer));
            })
        }));
    }

    let mut ticket = 0;
    for n in 1..=10i64 {
        let outcome = ask(&inboxes, &answers, &mut ticket, |t| {
            Input::Propose(n.to_le_bytes().to_vec(), t)
        });
        match outcome {
            Outcome::Committed { index, response } => {
                println!(
                    "add {n:2}: committed at index {index:2}, total {}",
                    amount(&response).unwrap()
                )
            }
            other => println!("add {n:2}: {other:?} (it may or may not have been applied)"),
        }
    }
    // A linearizable read: answered once a majority confirmed the leader, from a state with every write
    // committed before it.
    let Outcome::Read(total) = ask(&inboxes, &answers, &mut ticket, |t| {
        Input::Read(Vec::new(), t)
    }) else {
        panic!("a read is answered with a value");
    };
    let total = amount(&total).unwrap();
    println!("read: total {total}");
    assert_eq!(total, (1..=10).sum::<i64>());

    for inbox in &inboxes {
        inbox.send(Input::Stop).expect("the node runs");
    }
    for thread in threads {
        let host = thread.join().expect("no panic").expect("the node ran");
        println!(
            "node {} stopped: total {}, applied through index {}, snapshot at {}",
            host.node().id(),
            host.machine().total,
            host.node().last_applied(),
            host.node().last_included_index()
        );
    }
}
