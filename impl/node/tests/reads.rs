//! Linearizable reads through the runtime (`Input::Read`, `Host::read`): three nodes in one process serving
//! the key-value store. A leader answers a read with what was written; a follower names the leader; a
//! leader cut off from the others never answers a read from its stale state, even while a new leader
//! commits a write: once it hears of the new term it tells its client to ask again (or, elected again,
//! answers with the new value).

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use raft::{Config, Role};
use raft_kv::{Command, Reply, Write};
use raft_node::host::{Host, Outcome, Settings};
use raft_node::memory::{Network, Volatile};
use raft_node::runtime::{Answer, Input, Runtime};
use raft_node::storage::Recovered;

type Ticket = u64;

struct Cluster {
    inboxes: Vec<Sender<Input<Ticket>>>,
    network: Network<Ticket>,
    answers: Receiver<(Ticket, Answer)>,
    /// Answers that came while another was awaited.
    early: BTreeMap<Ticket, Answer>,
    next_ticket: Ticket,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| channel()).unzip();
        let network = Network::new(inboxes.clone());
        let (answer_tx, answers) = channel();
        for (i, inbox) in receivers.into_iter().enumerate() {
            let settings = Settings {
                id: i as u64,
                peers: (0..n as u64).collect(),
                config: Config::default(),
                seed: 7 + i as u64,
                snapshot_every: 0,
            };
            let host = Host::<_, _, Ticket>::new(
                &settings,
                Volatile,
                Recovered::default(),
                raft_kv::Store::new(),
            )
            .unwrap();
            let (network, answers) = (network.clone(), answer_tx.clone());
            std::thread::spawn(move || {
                Runtime::default().run(host, inbox, network, move |t, a| {
                    let _ = answers.send((t, a));
                })
            });
        }
        Cluster {
            inboxes,
            network,
            answers,
            early: BTreeMap::new(),
            next_ticket: 0,
        }
    }

    fn role(&self, i: usize) -> Role {
        let (tx, rx) = channel();
        self.inboxes[i].send(Input::Status(tx)).unwrap();
        rx.recv().unwrap().role
    }

    /// A node that leads, among `among`, waiting for one.
    fn leader(&self, among: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(&l) = among.iter().find(|&&i| self.role(i) == Role::Leader) {
                return l;
            }
            assert!(Instant::now() < deadline, "no leader among {among:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, i: usize, input: impl FnOnce(Ticket) -> Input<Ticket>) -> Ticket {
        self.next_ticket += 1;
        self.inboxes[i].send(input(self.next_ticket)).unwrap();
        self.next_ticket
    }

    /// The answer to `ticket`, if one comes within `patience`.
    fn answer(&mut self, ticket: Ticket, patience: Duration) -> Option<Answer> {
        if let Some(a) = self.early.remove(&ticket) {
            return Some(a);
        }
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok((t, a)) if t == ticket => return Some(a),
                Ok((t, a)) => {
                    self.early.insert(t, a);
                }
                Err(_) => return None,
            }
        }
    }

    /// Proposes `command` at the leader among `among` until it commits; returns the store's reply.
    fn propose(&mut self, among: &[usize], command: &Command) -> Reply {
        loop {
            let l = self.leader(among);
            let bytes = raft_kv::encode(command);
            let t = self.send(l, |t| Input::Propose(bytes, t));
            if let Some(Answer::Done(Outcome::Committed { response, .. })) =
                self.answer(t, Duration::from_secs(5))
            {
                return raft_kv::decode(&response).unwrap();
            }
        }
    }

    fn put(&mut self, among: &[usize], client: u64, seq: u64, value: &str) {
        let put = Command::Write {
            client,
            seq,
            write: Write::Put {
                key: "k".into(),
                value: value.into(),
            },
        };
        assert_eq!(self.propose(among, &put), Reply::Done);
    }
}

#[test]
fn reads_are_answered_by_a_confirmed_leader_only() {
    let mut c = Cluster::new(3);
    let all = [0, 1, 2];
    let Reply::Registered(client) = c.propose(&all, &Command::Register) else {
        panic!("not registered");
    };
    c.put(&all, client, 1, "v1");

    // The leader answers with what was written; a follower names the leader.
    let old = c.leader(&all);
    let t = c.send(old, |t| Input::Read(b"k".to_vec(), t));
    match c.answer(t, Duration::from_secs(5)) {
        Some(Answer::Done(Outcome::Read(v))) => assert_eq!(v, b"v1"),
        other => panic!("{other:?}"),
    }
    let follower = (old + 1) % 3;
    let t = c.send(follower, |t| Input::Read(b"k".to_vec(), t));
    match c.answer(t, Duration::from_secs(5)) {
        Some(Answer::NotLeader(n)) => assert_eq!(n.leader, Some(old as u64)),
        other => panic!("{other:?}"),
    }

    // Cut off, the old leader cannot confirm a read, and must not answer it from its state, while the
    // others elect a leader and overwrite the key.
    c.network.set_cut(old, true);
    let stale = c.send(old, |t| Input::Read(b"k".to_vec(), t));
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != old).collect();
    c.put(&others, client, 2, "v2");
    // With CheckQuorum it steps down at its next quorum check, which drops the read: aborted (ask again).
    // Without, it leads on until it hears of the new term.
    match c.answer(stale, Duration::from_millis(500)) {
        None => {}
        Some(Answer::Done(Outcome::ReadAborted(_))) => return,
        other => panic!("a leader cut off from its majority answered a read: {other:?}"),
    }
    // Reconnected, it learns of the new term: the read is aborted (ask again), or, if it is elected again,
    // answered with the new value. Never the old one.
    c.network.set_cut(old, false);
    match c.answer(stale, Duration::from_secs(10)) {
        Some(Answer::Done(Outcome::ReadAborted(_))) => {}
        Some(Answer::Done(Outcome::Read(v))) => assert_eq!(v, b"v2"),
        other => panic!("{other:?}"),
    }
}
