//! A three-node cluster whose storages crash at random writes and syncs, each crash with a fault on what
//! was not synced (lost, torn, a sector of zeros), and which restarts from what the disk kept: Raft's safety
//! properties hold throughout (one leader per term; one command per index on every node, applied in the
//! same order), and every write acknowledged to a client is, in the end, applied at its index everywhere.
//! A disk that acknowledges syncs it does not do breaks them, and the test finds it.

use std::collections::BTreeMap;

use raft::{Config, Envelope, Role};
use raft_node::host::{Host, Outcome, Settings};
use raft_node::machine::CommandLog;
use raft_node::storage::faulty::{Fault, FaultyDisk, Lie};
use raft_node::storage::{FileStorage, Identity, Options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type NodeHost = Host<FileStorage<FaultyDisk>, CommandLog, u64>;

const FAULTS: [Fault; 3] = [Fault::LoseUnsynced, Fault::TornLastWrite, Fault::ZeroSector];

struct Sim {
    rng: ChaCha8Rng,
    lie: Option<Lie>,
    hosts: Vec<Option<NodeHost>>,
    /// A dead node's disk as it came back from its crash.
    down: Vec<Option<FaultyDisk>>,
    queue: Vec<Envelope>,
    /// How far each node's applied commands were checked.
    checked: Vec<usize>,
    /// The command first applied at each index, anywhere.
    applied: BTreeMap<u64, Vec<u8>>,
    leaders: BTreeMap<u64, u64>,
    acked: Vec<(u64, Vec<u8>)>,
    next_ticket: u64,
    crashes: usize,
}

impl Sim {
    fn new(seed: u64, lie: Option<Lie>) -> Sim {
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            lie,
            hosts: vec![None, None, None],
            down: (0..3).map(|_| Some(sim_disk(lie))).collect(),
            queue: Vec::new(),
            checked: vec![0; 3],
            applied: BTreeMap::new(),
            leaders: BTreeMap::new(),
            acked: Vec::new(),
            next_ticket: 0,
            crashes: 0,
        };
        for i in 0..3 {
            sim.restart(i).expect("a fresh disk");
        }
        sim
    }

    /// Starts node `i` from its disk; an unrecoverable disk is a failure.
    fn restart(&mut self, i: usize) -> Result<(), String> {
        let disk = self.down[i].take().expect("a dead node");
        let identity = Identity {
            cluster: 1,
            node: i as u64,
        };
        let (storage, recovered) = FileStorage::open(
            disk,
            identity,
            Options {
                segment_bytes: 2048,
                ..Options::default()
            },
        )
        .map_err(|e| format!("node {i} cannot recover: {e}"))?;
        let settings = Settings {
            id: i as u64,
            peers: vec![0, 1, 2],
            config: Config::default(),
            seed: self.rng.random(),
            snapshot_every: 7,
        };
        self.hosts[i] =
            Some(Host::new(&settings, storage, recovered, CommandLog::default()).unwrap());
        self.checked[i] = 0;
        self.flush(i)
    }

    /// Crashes node `i`: its disk comes back with a fault on what was not synced.
    fn crash(&mut self, i: usize) {
        let host = self.hosts[i].take().expect("a live node");
        let fault = FAULTS[self.rng.random_range(0..3)];
        let mut disk = host_disk(&host).after_crash(fault);
        if let Some(lie) = self.lie {
            disk.lie_about_sync(lie);
        }
        self.down[i] = Some(disk);
        self.crashes += 1;
    }

    /// Saves, sends and applies node `i`'s output, then checks the safety properties. A failed save is a
    /// crash.
    fn flush(&mut self, i: usize) -> Result<(), String> {
        let host = self.hosts[i].as_mut().expect("a live node");
        let (mut sent, mut done) = (Vec::new(), Vec::new());
        if host.flush(&mut sent, &mut done).is_err() {
            self.crash(i);
            return Ok(());
        }
        self.queue.extend(sent);
        for (ticket, outcome) in done {
            if let Outcome::Committed { index, .. } = outcome {
                self.acked
                    .push((index, format!("command {ticket}").into_bytes()));
            }
        }
        let host = self.hosts[i].as_ref().expect("still live");
        let status = host.status();
        if status.role == Role::Leader {
            let first = *self.leaders.entry(status.term).or_insert(i as u64);
            if first != i as u64 {
                return Err(format!(
                    "two leaders in term {}: {first} and {i}",
                    status.term
                ));
            }
        }
        let commands = &host.machine().commands;
        for (k, command) in commands.iter().enumerate().skip(self.checked[i]) {
            let index = k as u64 + 1;
            let first = self.applied.entry(index).or_insert_with(|| command.clone());
            if first != command {
                return Err(format!(
                    "node {i} applied {:?} at index {index}, another node {:?}",
                    String::from_utf8_lossy(command),
                    String::from_utf8_lossy(first)
                ));
            }
        }
        self.checked[i] = commands.len();
        Ok(())
    }

    fn step(&mut self) -> Result<(), String> {
        let i = self.rng.random_range(0..3);
        match self.rng.random_range(0..100) {
            // Deliver a message (to a dead node: lost).
            0..60 if !self.queue.is_empty() => {
                let k = self.rng.random_range(0..self.queue.len());
                let e = self.queue.swap_remove(k);
                let to = e.to as usize;
                if let Some(host) = self.hosts[to].as_mut() {
                    let _ = host.step(e);
                    self.flush(to)?;
                }
            }
            60..63 if !self.queue.is_empty() => {
                let k = self.rng.random_range(0..self.queue.len());
                self.queue.swap_remove(k);
            }
            // Time passes for a node.
            0..80 => {
                if let Some(host) = self.hosts[i].as_mut() {
                    for _ in 0..5 {
                        host.tick();
                    }
                    self.flush(i)?;
                }
            }
            // A client writes to a node (refused unless it leads).
            80..93 => {
                self.next_ticket += 1;
                let ticket = self.next_ticket;
                if let Some(host) = self.hosts[i].as_mut() {
                    let command = format!("command {ticket}").into_bytes();
                    if host.propose(command, ticket).is_ok() {
                        self.flush(i)?;
                    }
                }
            }
            // A node's disk will fail at one of its next few writes or syncs.
            93..95 => {
                if let Some(host) = self.hosts[i].as_mut() {
                    let at = host_disk(host).steps() + self.rng.random_range(0..6);
                    disk_of(host).crash_at(at);
                }
            }
            // A dead node comes back.
            _ => {
                if self.hosts[i].is_none() {
                    self.restart(i)?;
                }
            }
        }
        Ok(())
    }

    /// Brings every node back and runs without faults until all have applied every acknowledged write.
    fn settle(&mut self) -> Result<(), String> {
        for i in 0..3 {
            if self.hosts[i].is_none() {
                self.restart(i)?;
            }
            // No more crashes.
            disk_of(self.hosts[i].as_mut().expect("restarted")).crash_at(u64::MAX);
        }
        let mut rounds = 0;
        loop {
            // Writes still in flight may be acknowledged while the cluster settles.
            let last = self.acked.iter().map(|a| a.0).max().unwrap_or(0);
            let behind = self
                .hosts
                .iter()
                .any(|h| h.as_ref().is_none_or(|h| h.status().last_applied < last));
            if !behind {
                break;
            }
            rounds += 1;
            if rounds > 20_000 {
                return Err(format!(
                    "the cluster did not catch up to index {last}: {:?}",
                    self.hosts
                        .iter()
                        .map(|h| h.as_ref().map(|h| h.status()))
                        .collect::<Vec<_>>()
                ));
            }
            if self.queue.is_empty() {
                let i = self.rng.random_range(0..3);
                if let Some(host) = self.hosts[i].as_mut() {
                    for _ in 0..5 {
                        host.tick();
                    }
                    self.flush(i)?;
                }
            } else {
                let e = self.queue.remove(0);
                let to = e.to as usize;
                if let Some(host) = self.hosts[to].as_mut() {
                    let _ = host.step(e);
                    self.flush(to)?;
                }
            }
        }
        for (i, host) in self.hosts.iter().enumerate() {
            let commands = &host.as_ref().expect("all live").machine().commands;
            for (index, command) in &self.acked {
                let got = commands.get(*index as usize - 1);
                if got != Some(command) {
                    return Err(format!(
                        "node {i} has {:?} at index {index}, where {:?} was acknowledged (it applied {} entries)",
                        got.map(|c| String::from_utf8_lossy(c)),
                        String::from_utf8_lossy(command),
                        commands.len(),
                    ) + &format!(
                        "; statuses {:?}",
                        self.hosts.iter().map(|h| h.as_ref().map(|h| h.status())).collect::<Vec<_>>()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn sim_disk(lie: Option<Lie>) -> FaultyDisk {
    let mut disk = FaultyDisk::new();
    if let Some(lie) = lie {
        disk.lie_about_sync(lie);
    }
    disk
}

fn host_disk(host: &NodeHost) -> &FaultyDisk {
    host.storage().disk()
}

fn disk_of(host: &mut NodeHost) -> &mut FaultyDisk {
    host.storage_mut().disk_mut()
}

/// Runs one seed; returns the first broken property, if any, the number of crashes and the number of
/// acknowledged writes.
fn run(seed: u64, lie: Option<Lie>) -> (Result<(), String>, usize, usize) {
    let mut sim = Sim::new(seed, lie);
    for _ in 0..10_000 {
        if let Err(e) = sim.step() {
            return (Err(e), sim.crashes, sim.acked.len());
        }
    }
    let settled = sim.settle();
    (settled, sim.crashes, sim.acked.len())
}

#[test]
fn raft_stays_safe_through_crashes_at_any_write() {
    let (mut crashes, mut acked) = (0, 0);
    for seed in 0..60 {
        let (result, c, a) = run(seed, None);
        if let Err(e) = result {
            panic!("seed {seed}: {e}");
        }
        crashes += c;
        acked += a;
    }
    println!("{crashes} crashes, {acked} acknowledged writes");
    assert!(
        crashes > 300 && acked > 1000,
        "{crashes} crashes, {acked} acknowledged writes"
    );
}

#[test]
fn a_disk_that_lies_about_syncing_breaks_raft_and_the_test_sees_it() {
    // Some runs end with a disk that cannot be recovered at all; the test wants a run where Raft itself
    // broke: a second leader in a term, two commands at one index, or an acknowledged write lost. With
    // PreVote and CheckQuorum there are fewer elections for a lost vote or term to spoil: the first such
    // seed is 64 (it was below 60 without them).
    let broken = (0..200).find_map(|seed| {
        let error = run(seed, Some(Lie::Files)).0.err()?;
        (!error.contains("cannot recover")).then_some((seed, error))
    });
    let (seed, error) = broken.expect("no seed broke a property of Raft");
    println!("seed {seed}: {error}");
}
