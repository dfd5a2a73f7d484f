//! A three-node cluster in one process: real threads and time, files for storage, the in-process network.
//! A stream of proposals runs while the leader is stopped and restarted from its directory and a follower
//! is cut off and reconnected; afterwards every proposal reported committed is on every node, in order.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::Config;
use raft_node::host::{Host, HostError, Outcome, Settings, Status};
use raft_node::machine::CommandLog;
use raft_node::memory::Network;
use raft_node::runtime::{Answer, Input, Runtime};
use raft_node::storage::disk::FsDisk;
use raft_node::storage::{FileStorage, Identity, Options};

type Ticket = u64;
type NodeHost = Host<FileStorage<FsDisk>, CommandLog, Ticket>;

struct Cluster {
    dirs: Vec<tempfile::TempDir>,
    inboxes: Vec<Sender<Input<Ticket>>>,
    receivers: Vec<Option<Receiver<Input<Ticket>>>>,
    threads: Vec<Option<JoinHandle<Result<NodeHost, HostError>>>>,
    network: Network<Ticket>,
    answers: Sender<(Ticket, Answer)>,
}

impl Cluster {
    fn new(n: usize, answers: Sender<(Ticket, Answer)>) -> Cluster {
        let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| channel()).unzip();
        let network = Network::new(inboxes.clone());
        let mut c = Cluster {
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            inboxes,
            receivers: receivers.into_iter().map(Some).collect(),
            threads: (0..n).map(|_| None).collect(),
            network,
            answers,
        };
        for i in 0..n {
            c.start(i);
        }
        c
    }

    /// Starts node `i` from its directory.
    fn start(&mut self, i: usize) {
        let peers: Vec<u64> = (0..self.dirs.len() as u64).collect();
        let disk = FsDisk::new(self.dirs[i].path()).unwrap();
        let identity = Identity {
            cluster: 1,
            node: i as u64,
        };
        let (storage, recovered) = FileStorage::open(disk, identity, Options::default()).unwrap();
        let settings = Settings {
            id: i as u64,
            peers,
            config: Config::default(),
            seed: 100 + i as u64,
            snapshot_every: 50,
        };
        let host = Host::new(&settings, storage, recovered, CommandLog::default()).unwrap();
        let inbox = self.receivers[i].take().expect("a stopped node's inbox");
        let network = self.network.clone();
        let answers = self.answers.clone();
        self.threads[i] = Some(std::thread::spawn(move || {
            Runtime::default().run(host, inbox, network, move |t, a| {
                let _ = answers.send((t, a));
            })
        }));
    }

    /// Stops node `i` and starts it again from its directory, with a new inbox (what was queued is lost).
    fn restart(&mut self, i: usize) {
        self.inboxes[i].send(Input::Stop).unwrap();
        self.threads[i].take().unwrap().join().unwrap().unwrap();
        let (tx, rx) = channel();
        self.network.set_inbox(i, tx.clone());
        self.inboxes[i] = tx;
        self.receivers[i] = Some(rx);
        self.start(i);
    }

    fn status(&self, i: usize) -> Status {
        let (tx, rx) = channel();
        self.inboxes[i].send(Input::Status(tx)).unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let statuses: Vec<Status> = (0..self.dirs.len()).map(|i| self.status(i)).collect();
            let top = statuses.iter().map(|s| s.term).max().unwrap();
            if let Some(s) = statuses
                .iter()
                .find(|s| s.term == top && s.role == raft::Role::Leader)
            {
                return s.id as usize;
            }
            assert!(Instant::now() < deadline, "no leader: {statuses:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> Vec<NodeHost> {
        for i in 0..self.dirs.len() {
            self.inboxes[i].send(Input::Stop).unwrap();
        }
        self.threads
            .iter_mut()
            .map(|t| t.take().unwrap().join().unwrap().unwrap())
            .collect()
    }
}

#[test]
fn a_three_node_cluster_commits_through_restarts_and_a_partition() {
    let (answers_tx, answers) = channel();
    let mut cluster = Cluster::new(3, answers_tx);
    let mut committed: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut ticket = 0;
    for k in 0..300u32 {
        if k == 100 {
            let leader = cluster.leader();
            cluster.restart(leader);
        }
        if k == 150 {
            cluster.network.set_cut((cluster.leader() + 1) % 3, true);
        }
        if k == 220 {
            for i in 0..3 {
                cluster.network.set_cut(i, false);
            }
        }
        let command = format!("command {k}").into_bytes();
        // Propose until it commits: a lost or unanswered proposal is proposed again (a duplicate may then
        // commit twice; the check below is about what was reported committed).
        let index = loop {
            ticket += 1;
            let leader = cluster.leader();
            cluster.inboxes[leader]
                .send(Input::Propose(command.clone(), ticket))
                .unwrap();
            match answers.recv_timeout(Duration::from_secs(2)) {
                Ok((t, Answer::Done(Outcome::Committed { index, .. }))) if t == ticket => {
                    break index
                }
                Ok(_) | Err(_) => continue,
            }
        };
        committed.push((index, command));
    }
    // Every node catches up.
    let last = committed.last().unwrap().0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (0..3).any(|i| cluster.status(i).last_applied < last) {
        assert!(Instant::now() < deadline, "the nodes did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let hosts = cluster.stop();
    for host in &hosts {
        let log = &host.machine().commands;
        for (index, command) in &committed {
            assert_eq!(
                log.get(*index as usize - 1),
                Some(command),
                "node {}: index {index}",
                host.node().id()
            );
        }
    }
    let shortest = hosts
        .iter()
        .map(|h| h.machine().commands.len())
        .min()
        .unwrap();
    for host in &hosts[1..] {
        assert_eq!(
            host.machine().commands[..shortest],
            hosts[0].machine().commands[..shortest]
        );
    }
}
