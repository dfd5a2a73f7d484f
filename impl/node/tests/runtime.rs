//! The event loop and the host at their edges: a round takes at most `MAX_BATCH` inputs, so a flood cannot
//! hold back the save and the clock; ticks missed during a stall are not fired in a burst; every proposal
//! gets exactly one answer, through a re-election that proposes again where old tickets wait, and when the
//! loop stops.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use raft::{AppendEntries, Config, Envelope, Message, Ready, Role};
use raft_node::host::{Host, HostError, Outcome, Settings, Status};
use raft_node::machine::CommandLog;
use raft_node::memory::Volatile;
use raft_node::runtime::{Answer, Input, Runtime, Transport, MAX_BATCH};
use raft_node::storage::{Recovered, Storage, StorageError};

fn settings(id: u64, peers: &[u64]) -> Settings {
    Settings {
        id,
        peers: peers.to_vec(),
        config: Config::default(),
        seed: 40 + id,
        snapshot_every: 0,
    }
}

/// A transport that drops everything.
struct Nowhere;

impl Transport for Nowhere {
    fn send(&mut self, _: Envelope) {}
}

/// Storage that tells the test each time a save starts (with the length of the log it saves) and waits for
/// the test's go-ahead before it returns.
struct Rendezvous {
    started: Sender<usize>,
    go: Receiver<()>,
}

impl Storage for Rendezvous {
    fn save(&mut self, ready: &Ready) -> Result<(), StorageError> {
        if let Some(state) = ready.persist() {
            self.started.send(state.log.len()).unwrap();
            self.go.recv().unwrap();
        }
        Ok(())
    }
}

/// A single-node cluster's loop on its own thread, without peers.
struct SingleNode<S> {
    inbox: Sender<Input<u64>>,
    answered: Receiver<(u64, Answer)>,
    /// Gives back the host when the loop ends.
    thread: JoinHandle<Result<Host<S, CommandLog, u64>, HostError>>,
}

/// Starts a [`SingleNode`] on `storage`.
fn single_node<S: Storage + Send + 'static>(storage: S, runtime: Runtime) -> SingleNode<S> {
    let host = Host::new(
        &settings(0, &[0]),
        storage,
        Recovered::default(),
        CommandLog::default(),
    )
    .unwrap();
    let (inbox, inputs) = channel();
    let (answers, answered) = channel();
    let thread = std::thread::spawn(move || {
        runtime.run(host, inputs, Nowhere, move |t, a| {
            let _ = answers.send((t, a));
        })
    });
    SingleNode {
        inbox,
        answered,
        thread,
    }
}

fn status(inbox: &Sender<Input<u64>>) -> Status {
    let (tx, rx) = channel();
    inbox.send(Input::Status(tx)).unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// A flood of proposals queued while the loop is busy is taken in rounds of at most `MAX_BATCH` inputs:
/// each round saves (so no save holds more than `MAX_BATCH` new entries), and each round's due tick fires.
#[test]
fn a_flood_of_input_is_taken_in_rounds_that_save_and_tick() {
    let (started, saves) = channel();
    let (go, wait) = channel();
    let storage = Rendezvous { started, go: wait };
    let runtime = Runtime {
        tick: Duration::from_millis(1),
        ..Runtime::default()
    };
    let SingleNode {
        inbox,
        answered,
        thread,
    } = single_node(storage, runtime);
    // The single node elects itself; the save that holds its first entry (the leader's empty command)
    // blocks the loop, and the flood is queued behind it.
    let mut lengths = vec![];
    loop {
        let len = saves.recv_timeout(Duration::from_secs(10)).unwrap();
        lengths.push(len);
        if len >= 1 {
            break;
        }
        go.send(()).unwrap();
    }
    // The saves from here on are the flood's (a new node's first save, of its configuration, and its
    // election's came before).
    let flood_from = lengths.len() - 1;
    let flood = 3 * MAX_BATCH + 10;
    let (first, first_status) = channel();
    inbox.send(Input::Status(first)).unwrap();
    for k in 0..flood as u64 {
        inbox
            .send(Input::Propose(k.to_le_bytes().to_vec(), k))
            .unwrap();
    }
    let (last, last_status) = channel();
    inbox.send(Input::Status(last)).unwrap();
    // Each save now waits a few ticks, so that a tick is due in every round.
    let expected = lengths[lengths.len() - 1] + flood;
    loop {
        std::thread::sleep(Duration::from_millis(3));
        go.send(()).unwrap();
        if *lengths.last().unwrap() >= expected {
            break;
        }
        lengths.push(saves.recv_timeout(Duration::from_secs(10)).unwrap());
    }
    let (first, last) = (first_status.recv().unwrap(), last_status.recv().unwrap());
    inbox.send(Input::Stop).unwrap();
    // Release any save the loop still makes.
    std::thread::spawn(move || while saves.recv().is_ok() {});
    drop(go);
    thread.join().unwrap().unwrap();

    let grew: Vec<usize> = lengths[flood_from..]
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    let rounds = grew.iter().filter(|&&g| g > 0).count();
    assert!(
        grew.iter().all(|&g| g <= MAX_BATCH),
        "a save holds more than {MAX_BATCH} new entries: {grew:?}"
    );
    assert!(rounds >= 4, "the flood took {rounds} rounds: {grew:?}");
    assert!(
        last.ticks - first.ticks >= rounds as u64 - 1,
        "{} ticks over {rounds} rounds",
        last.ticks - first.ticks
    );
    let committed = answered
        .try_iter()
        .filter(|(_, a)| matches!(a, Answer::Done(Outcome::Committed { .. })))
        .count();
    assert_eq!(committed, flood);
}

/// Storage that stalls once, in the first save that persists something.
struct StallOnce(Option<Duration>);

impl Storage for StallOnce {
    fn save(&mut self, ready: &Ready) -> Result<(), StorageError> {
        if ready.persist().is_some() {
            if let Some(stall) = self.0.take() {
                std::thread::sleep(stall);
            }
        }
        Ok(())
    }
}

/// A follower whose disk stalls for three election timeouts does not start an election when it comes back:
/// the ticks it missed are not fired at once (they would all count toward its election timeout).
#[test]
fn ticks_missed_in_a_stall_do_not_fire_at_once() {
    let peers = [0, 1, 2];
    let host: Host<_, _, u64> = Host::new(
        &settings(0, &peers),
        StallOnce(Some(Duration::from_millis(1800))),
        Recovered::default(),
        CommandLog::default(),
    )
    .unwrap();
    let (inbox, inputs) = channel();
    let thread =
        std::thread::spawn(move || Runtime::default().run(host, inputs, Nowhere, |_, _| {}));
    // A heartbeat of leader 1 in term 1: the follower saves the term, and the save stalls.
    let heartbeat = Envelope {
        from: 1,
        to: 0,
        seq: 0,
        message: Message::AppendEntries(AppendEntries {
            term: 1,
            leader_id: 1,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round: 0,
        }),
    };
    inbox.send(Input::Message(heartbeat)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Answered in the first round after the stall, before its tick; the second status comes a round later.
    let before = status(&inbox);
    let between = std::time::Instant::now();
    let after = status(&inbox);
    let elapsed = between.elapsed();
    inbox.send(Input::Stop).unwrap();
    thread.join().unwrap().unwrap();
    assert_eq!((before.term, before.role), (1, Role::Follower));
    assert_eq!(
        (after.term, after.role),
        (1, Role::Follower),
        "the node started an election after the stall ({} ticks fired)",
        after.ticks - before.ticks
    );
    // One tick for the round after the stall, and one for each 10 ms that passed since.
    let allowed = 2 + elapsed.as_millis() as u64 / 10;
    assert!(
        after.ticks - before.ticks <= allowed,
        "{} ticks in {elapsed:?}",
        after.ticks - before.ticks
    );
}

/// A loop that polls its empty inbox (`Runtime::poll`) for longer than a tick still ticks on time (a single
/// node elects itself), takes what arrives while it polls (a proposal commits), and ends when its inbox
/// has no senders left.
#[test]
fn a_polling_loop_ticks_on_time_and_takes_what_arrives() {
    let runtime = Runtime {
        poll: Duration::from_secs(1),
        ..Runtime::default()
    };
    let SingleNode {
        inbox,
        answered,
        thread,
    } = single_node(Volatile, runtime);
    // An election takes 30 to 60 ticks of 10 ms; polling a second per round instead of ticking would take
    // 30 s or more.
    std::thread::sleep(Duration::from_secs(2));
    let s = status(&inbox);
    assert_eq!(s.role, Role::Leader, "after {} ticks", s.ticks);
    inbox.send(Input::Propose(b"x".to_vec(), 7)).unwrap();
    match answered.recv_timeout(Duration::from_secs(10)).unwrap() {
        (7, Answer::Done(Outcome::Committed { .. })) => {}
        (t, a) => panic!("ticket {t}: {a:?}"),
    }
    drop(inbox);
    thread.join().unwrap().unwrap();
}

/// When the loop stops, a proposal still waiting is answered (it may or may not commit), and so is one
/// still in the inbox behind the stop.
#[test]
fn a_waiting_proposal_is_answered_when_the_loop_stops() {
    let mut cluster = Hosts::new(3);
    cluster.elect(0, &|_, _| true);
    let mut host = cluster.hosts.remove(0);
    // No follower hears of it: it cannot commit.
    host.propose(b"never".to_vec(), 7).unwrap();
    let (inbox, inputs) = channel();
    inbox.send(Input::Stop).unwrap();
    // Behind the stop: never taken by the loop, answered all the same.
    inbox.send(Input::Propose(b"late".to_vec(), 8)).unwrap();
    let mut answers = vec![];
    Runtime::default()
        .run(host, inputs, Nowhere, |t, a| answers.push((t, a)))
        .unwrap();
    assert!(
        matches!(answers[..], [(7, Answer::Stopped), (8, Answer::Stopped)]),
        "{answers:?}"
    );
}

type TestHost = Host<Volatile, CommandLog, u64>;

/// Hosts stepped by hand: a deterministic cluster in which the test decides who ticks and which messages
/// arrive.
struct Hosts {
    hosts: Vec<TestHost>,
    queue: VecDeque<Envelope>,
    answers: BTreeMap<u64, Vec<Outcome>>,
}

impl Hosts {
    fn new(n: u64) -> Hosts {
        let peers: Vec<u64> = (0..n).collect();
        let hosts = peers
            .iter()
            .map(|&id| {
                // The tests elect by ticking only the node that is to win: with CheckQuorum, a follower
                // that does not tick would stay in its leader lease and ignore it.
                let settings = Settings {
                    config: Config {
                        check_quorum: false,
                        ..Config::default()
                    },
                    ..settings(id, &peers)
                };
                Host::new(
                    &settings,
                    Volatile,
                    Recovered::default(),
                    CommandLog::default(),
                )
                .unwrap()
            })
            .collect();
        Hosts {
            hosts,
            queue: VecDeque::new(),
            answers: BTreeMap::new(),
        }
    }

    fn flush(&mut self, i: usize) {
        let (mut sent, mut done) = (vec![], vec![]);
        self.hosts[i].flush(&mut sent, &mut done).unwrap();
        self.queue.extend(sent);
        for (ticket, outcome) in done {
            self.answers.entry(ticket).or_default().push(outcome);
        }
    }

    /// Delivers messages until none is left; `link(from, to)` says which arrive.
    fn settle(&mut self, link: &dyn Fn(u64, u64) -> bool) {
        while let Some(e) = self.queue.pop_front() {
            if link(e.from, e.to) {
                let to = e.to as usize;
                self.hosts[to].step(e).unwrap();
                self.flush(to);
            }
        }
    }

    /// Ticks node `i` alone until it leads, then lets the cluster settle.
    fn elect(&mut self, i: usize, link: &dyn Fn(u64, u64) -> bool) {
        for _ in 0..1000 {
            if self.hosts[i].node().is_leader() {
                self.flush(i);
                self.settle(link);
                return;
            }
            self.hosts[i].tick();
            self.flush(i);
            self.settle(link);
        }
        panic!("node {i} was not elected");
    }

    /// Lets the leader `i` send heartbeats for a while.
    fn heartbeats(&mut self, i: usize, link: &dyn Fn(u64, u64) -> bool) {
        for _ in 0..25 {
            self.hosts[i].tick();
            self.flush(i);
            self.settle(link);
        }
    }
}

/// A leader is cut off with three proposals, another leader replaces them, and the first is elected again
/// and proposes at an index where a ticket of its first term still waits. Each of the four proposals gets
/// exactly one answer, and each answer is right.
#[test]
fn every_proposal_gets_one_answer_through_a_re_election() {
    let mut c = Hosts::new(3);
    let all = |_: u64, _: u64| true;
    c.elect(0, &all);
    c.heartbeats(0, &all);
    // Node 0 alone: its proposals at indexes 2, 3 and 4 (term 1) reach nobody.
    let alone = |from: u64, to: u64| from != 0 && to != 0;
    for ticket in 1..=3 {
        c.hosts[0]
            .propose(format!("x{ticket}").into_bytes(), ticket)
            .unwrap();
    }
    c.flush(0);
    c.settle(&alone);
    // Node 1 leads term 2 with node 2, and commits its empty command at index 2.
    c.elect(1, &alone);
    c.heartbeats(1, &alone);
    // Node 0 hears from node 1: its entries at 2, 3 and 4 go, index 2 commits (ticket 1 is lost there).
    let without_2 = |from: u64, to: u64| from != 2 && to != 2;
    c.heartbeats(1, &without_2);
    assert_eq!(c.hosts[0].node().last_index(), 2);
    // Node 1 is gone; node 0 leads term 3 with node 2 (its empty command at 3) and proposes at index 4,
    // where ticket 3 still waits.
    let without_1 = |from: u64, to: u64| from != 1 && to != 1;
    c.elect(0, &without_1);
    let index = c.hosts[0].propose(b"w".to_vec(), 4).unwrap();
    assert_eq!(index, 4);
    c.flush(0);
    c.settle(&without_1);
    c.heartbeats(0, &without_1);

    assert_eq!(c.hosts[0].waiting(), 0);
    let got: Vec<(u64, Vec<Outcome>)> = c.answers.clone().into_iter().collect();
    let committed = Outcome::Committed {
        index: 4,
        response: 4u64.to_le_bytes().to_vec(),
    };
    assert_eq!(
        got,
        vec![
            (1, vec![Outcome::Lost]),
            (2, vec![Outcome::Lost]),
            (3, vec![Outcome::Lost]),
            (4, vec![committed]),
        ]
    );
}

/// A leader's snapshot that the state machine cannot load is refused before the core takes it: nothing of
/// it is made durable, and the node keeps running and restarts as before. A good one is taken.
#[test]
fn a_poisoned_snapshot_is_refused_before_it_is_made_durable() {
    use raft::InstallSnapshot;
    use raft_node::host::Refused;
    use raft_node::storage::disk::Disk;
    use raft_node::storage::faulty::FaultyDisk;
    use raft_node::storage::{FileStorage, Identity, Options};

    let identity = Identity {
        cluster: 1,
        node: 0,
    };
    let open = |disk: FaultyDisk| {
        let (storage, recovered) = FileStorage::open(disk, identity, Options::default()).unwrap();
        let host: Host<_, _, u64> = Host::new(
            &settings(0, &[0, 1, 2]),
            storage,
            recovered,
            CommandLog::default(),
        )
        .unwrap();
        host
    };
    let install = |data: Vec<u8>| Envelope {
        from: 1,
        to: 0,
        seq: 0,
        message: Message::InstallSnapshot(InstallSnapshot {
            term: 2,
            leader_id: 1,
            last_included_index: 3,
            last_included_term: 2,
            membership: Box::new(raft::Membership::of_voters([0, 1, 2])),
            data: data.into(),
        }),
    };
    let (mut sent, mut done) = (vec![], vec![]);
    let mut host = open(FaultyDisk::new());
    let refused = host.step(install(b"garbage".to_vec()));
    assert!(
        matches!(
            refused,
            Err(Refused::Snapshot {
                from: 1,
                index: 3,
                ..
            })
        ),
        "{refused:?}"
    );
    host.flush(&mut sent, &mut done).unwrap();
    assert_eq!(host.node().term(), 0);
    let mut disk = host.storage().disk().clone();
    assert!(!disk.list().unwrap().iter().any(|n| n == "snapshot"));
    let mut restarted = open(disk);
    restarted.flush(&mut sent, &mut done).unwrap();

    let good = CommandLog {
        commands: vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
    };
    host.step(install(raft_node::host::StateMachine::snapshot(&good)))
        .unwrap();
    host.flush(&mut sent, &mut done).unwrap();
    assert_eq!(host.machine(), &good);
    let mut restarted = open(host.storage().disk().clone());
    restarted.flush(&mut sent, &mut done).unwrap();
    assert_eq!(restarted.machine(), &good);
}

/// The inbox bound: a reservation waits while the inbox is full, and gets in once the loop gives bytes
/// back; a message larger than the bound gets into an empty inbox.
#[test]
fn the_inbox_bound_holds_back_deliveries_until_the_loop_takes_them() {
    use raft_node::runtime::InboxBytes;
    let bound = InboxBytes::new(1000);
    assert!(bound.reserve(600, Duration::ZERO));
    assert!(!bound.reserve(600, Duration::from_millis(50)));
    let releaser = {
        let bound = bound.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            bound.release(600);
        })
    };
    assert!(bound.reserve(600, Duration::from_secs(5)));
    releaser.join().unwrap();
    assert_eq!(bound.used(), 600);
    bound.release(600);
    assert!(bound.reserve(5000, Duration::ZERO));
}
