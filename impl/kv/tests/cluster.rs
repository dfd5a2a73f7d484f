//! Clerks against a simulated unreliable cluster of three replicas of the store: requests and replies are
//! dropped, proposals are duplicated and delayed (a copy may commit long after its client moved on), the
//! leader changes (each new leader commits an empty entry), followers lag, install the leader's snapshot,
//! and restart from their own last snapshot.
//!
//! The committed log is then replayed against a reference written here, independently of the store: a
//! plain map and a list of sessions with the expiry rule. The checks:
//! * every replica, and a fresh store applying the whole log, answers each entry as the reference does
//!   and ends in the reference's state;
//! * every client operation (known by its unique token) was applied at most once, and a client's
//!   operations were applied in the order it issued them;
//! * every operation a clerk reported done was applied, with the answer the clerk reported, and every
//!   read returned the reference's value at the point it was served;
//! * with sessions enough for every client, every operation is done (none fails).
//!
//! Two mutants of the harness show that the checks bite: retries sent with a fresh sequence number
//! (writes applied twice), and a session expiry reported as success.

use std::collections::{BTreeMap, HashMap};

use raft_kv::{
    decode, encode, Clerk, Command, Failure, Op, Output, Progress, Reply, Request, Response, Store,
    Write,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SERVERS: usize = 3;

/// A deliberate bug in the harness, to show the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutant {
    None,
    /// Every send of a write carries a new sequence number, so the store cannot tell a retry.
    FreshSeqOnRetry,
    /// A write that failed with an expired session is reported done.
    ExpiryIsSuccess,
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    clients: usize,
    ops: usize,
    max_sessions: usize,
    mutant: Mutant,
}

/// What happened in a run, to see that the faults the test is about did happen.
#[derive(Clone, Debug, Default)]
struct Stats {
    done: usize,
    expired_ops: usize,
    /// Log entries answered from a session (a write applied already).
    repeats: usize,
    stale: usize,
    expired_entries: usize,
    leader_changes: usize,
    installs: usize,
    restarts: usize,
    delayed: usize,
    reads: usize,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.done += other.done;
        self.expired_ops += other.expired_ops;
        self.repeats += other.repeats;
        self.stale += other.stale;
        self.expired_entries += other.expired_entries;
        self.leader_changes += other.leader_changes;
        self.installs += other.installs;
        self.restarts += other.restarts;
        self.delayed += other.delayed;
        self.reads += other.reads;
    }
}

/// A read as served: after `applied` entries, `key` had `value`.
struct Read {
    applied: usize,
    key: String,
    value: String,
}

/// The replicas, the committed log, and the network's delayed copies.
struct Cluster {
    rng: ChaCha8Rng,
    max_sessions: usize,
    /// The committed log: the entry at index `i` is `log[i - 1]`.
    log: Vec<Vec<u8>>,
    replicas: Vec<Store>,
    /// Each replica's last snapshot on disk.
    saved: Vec<Option<Vec<u8>>>,
    leader: usize,
    /// Proposals on their way to a leader, to be committed later.
    delayed: Vec<Vec<u8>>,
    reads: Vec<Read>,
    stats: Stats,
}

impl Cluster {
    fn new(seed: u64, max_sessions: usize) -> Cluster {
        Cluster {
            rng: ChaCha8Rng::seed_from_u64(seed),
            max_sessions,
            log: Vec::new(),
            replicas: vec![Store::with_max_sessions(max_sessions); SERVERS],
            saved: vec![None; SERVERS],
            leader: 0,
            delayed: Vec::new(),
            reads: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Applies the log to replica `r` through entry `upto`.
    fn catch_up(&mut self, r: usize, upto: usize) {
        let store = &mut self.replicas[r];
        while (store.last_applied() as usize) < upto {
            let index = store.last_applied() + 1;
            store.apply(index, &self.log[index as usize - 1]);
        }
    }

    /// Commits `command` through the leader; its answer.
    fn commit(&mut self, command: Vec<u8>) -> Reply {
        self.log.push(command);
        let index = self.log.len();
        self.catch_up(self.leader, index - 1);
        let answer = self.replicas[self.leader].apply(index as u64, &self.log[index - 1]);
        decode(&answer).expect("the store answers a Reply")
    }

    /// What server `s` responds to `request` (`None`: the request or its response was lost).
    fn serve(&mut self, s: usize, request: &Request) -> Option<Response> {
        if self.rng.random_bool(0.1) {
            return None;
        }
        let response = if s != self.leader {
            let hint = match self.rng.random_range(0..4) {
                0 => None,
                1 => Some(self.rng.random_range(0..SERVERS)), // stale or wrong
                _ => Some(self.leader),
            };
            Response::NotLeader(hint)
        } else {
            match request {
                Request::Read { key } => {
                    // ReadIndex: the leader answers once it has applied everything committed.
                    self.catch_up(s, self.log.len());
                    let value = self.replicas[s].get(key).to_string();
                    self.reads.push(Read {
                        applied: self.log.len(),
                        key: key.clone(),
                        value: value.clone(),
                    });
                    Response::Value(value)
                }
                Request::Propose(command) => self.propose(encode(command))?,
            }
        };
        if self.rng.random_bool(0.1) {
            None
        } else {
            Some(response)
        }
    }

    fn propose(&mut self, command: Vec<u8>) -> Option<Response> {
        match self.rng.random_range(0..20) {
            // Another leader's entry took its index.
            0 => Some(Response::Lost),
            // Committed or not, the node cannot tell.
            1 | 2 => {
                if self.rng.random_bool(0.5) {
                    self.commit(command);
                }
                Some(if self.rng.random_bool(0.5) {
                    Response::Unknown
                } else {
                    Response::Unavailable
                })
            }
            // The request is delayed in the network; the client hears nothing.
            3 | 4 => {
                self.delayed.push(command);
                None
            }
            _ => {
                if self.rng.random_bool(0.1) {
                    // The request is duplicated: a copy arrives later.
                    self.delayed.push(command.clone());
                }
                Some(Response::Committed(self.commit(command)))
            }
        }
    }

    /// Something happens to the cluster (not to a client).
    fn disturb(&mut self) {
        let r = self.rng.random_range(0..SERVERS);
        match self.rng.random_range(0..5) {
            0 => {
                self.leader = r;
                self.catch_up(r, self.log.len());
                self.commit(Vec::new());
                self.stats.leader_changes += 1;
            }
            1 if r != self.leader => {
                let applied = self.replicas[r].last_applied() as usize;
                let upto = self.rng.random_range(applied..=self.log.len());
                self.catch_up(r, upto);
            }
            2 if r != self.leader => {
                let leader = self.leader;
                self.catch_up(leader, self.log.len());
                if self.replicas[leader].last_applied() > self.replicas[r].last_applied() {
                    let snapshot = self.replicas[leader].snapshot();
                    self.replicas[r]
                        .check(&snapshot)
                        .expect("a leader's snapshot");
                    self.replicas[r].restore(&snapshot).expect("checked");
                    self.stats.installs += 1;
                }
            }
            3 => {
                if self.rng.random_bool(0.5) {
                    self.saved[r] = Some(self.replicas[r].snapshot());
                } else {
                    let mut store = Store::with_max_sessions(self.max_sessions);
                    if let Some(saved) = &self.saved[r] {
                        store.restore(saved).expect("its own snapshot");
                    }
                    self.replicas[r] = store;
                    self.stats.restarts += 1;
                }
            }
            _ if !self.delayed.is_empty() => {
                let k = self.rng.random_range(0..self.delayed.len());
                let command = self.delayed.swap_remove(k);
                self.commit(command);
                self.stats.delayed += 1;
            }
            _ => {}
        }
    }
}

/// One client: its clerk, its script of operations, and how each ended.
struct Client {
    clerk: Clerk,
    script: Vec<Op>,
    /// How each operation begun so far ended (`None`: in progress).
    ended: Vec<Option<Result<Output, Failure>>>,
    /// Sends of the operation in progress.
    sends: u64,
}

/// Client `c`'s script: appends, puts, Cas and gets on its own key and two shared ones; every write
/// carries a token of its own, so that the log tells which operation an entry is.
fn script(rng: &mut ChaCha8Rng, c: usize, ops: usize) -> Vec<Op> {
    let mut tokens: Vec<String> = vec![String::new()];
    (0..ops)
        .map(|n| {
            let key = match rng.random_range(0..3) {
                0 => format!("c{c}"),
                k => format!("s{k}"),
            };
            let token = format!("{c}.{n};");
            let op = match rng.random_range(0..10) {
                0..=3 => Op::append(key, &token),
                4 | 5 => Op::put(key, &token),
                6 | 7 => {
                    let expected = tokens[rng.random_range(0..tokens.len())].clone();
                    Op::cas(key, expected, &token)
                }
                _ => Op::get(key),
            };
            tokens.push(token);
            op
        })
        .collect()
}

/// The reference: the data, and sessions with the expiry rule, written without the store's code.
struct Reference {
    max_sessions: usize,
    data: BTreeMap<String, String>,
    /// client -> (last seq, its reply, last activity)
    sessions: BTreeMap<u64, (u64, Option<Reply>, u64)>,
}

impl Reference {
    /// The reply to the entry at `index`, and the write if it was applied now.
    fn apply(&mut self, index: u64, entry: &[u8]) -> (Reply, Option<Write>) {
        if entry.is_empty() {
            return (Reply::Done, None);
        }
        match decode::<Command>(entry).expect("the harness commits commands") {
            Command::Register => {
                if self.sessions.len() == self.max_sessions {
                    let oldest = *self
                        .sessions
                        .iter()
                        .min_by_key(|(client, (_, _, active))| (*active, **client))
                        .unwrap()
                        .0;
                    self.sessions.remove(&oldest);
                }
                self.sessions.insert(index, (0, None, index));
                (Reply::Registered(index), None)
            }
            Command::Write { client, seq, write } => {
                let Some((last, reply, active)) = self.sessions.get_mut(&client) else {
                    return (Reply::SessionExpired, None);
                };
                *active = index;
                if seq < *last || seq == 0 {
                    return (Reply::Stale, None);
                }
                if seq == *last {
                    return (reply.clone().expect("a write was applied"), None);
                }
                let key = write.key().to_string();
                let value = self.data.get(&key).cloned().unwrap_or_default();
                let (new, answer) = match &write {
                    Write::Put { value: new, .. } => (Some(new.clone()), Reply::Done),
                    Write::Append { arg, .. } => (Some(value + arg), Reply::Done),
                    Write::Cas { expected, new, .. } if value == *expected => {
                        (Some(new.clone()), Reply::Swapped(true))
                    }
                    Write::Cas { .. } => (None, Reply::Swapped(false)),
                };
                if let Some(new) = new {
                    self.data.insert(key, new);
                }
                *last = seq;
                *reply = Some(answer.clone());
                (answer, Some(write))
            }
        }
    }

    fn get(&self, key: &str) -> &str {
        self.data.get(key).map_or("", String::as_str)
    }
}

/// One run; `Err` says which check failed.
fn run(seed: u64, settings: Settings) -> Result<Stats, String> {
    let mut cluster = Cluster::new(seed, settings.max_sessions);
    let mut clients: Vec<Client> = (0..settings.clients)
        .map(|c| Client {
            clerk: Clerk::new(SERVERS),
            script: script(&mut cluster.rng, c, settings.ops),
            ended: Vec::new(),
            sends: 0,
        })
        .collect();
    let mut steps = 0;
    while clients
        .iter()
        .any(|c| c.ended.len() < c.script.len() || c.clerk.op().is_some())
    {
        steps += 1;
        if steps > 200_000 {
            return Err("no progress in 200,000 steps".into());
        }
        if cluster.rng.random_bool(0.2) {
            cluster.disturb();
            continue;
        }
        let c = cluster.rng.random_range(0..clients.len());
        let client = &mut clients[c];
        if client.clerk.op().is_none() {
            let Some(op) = client.script.get(client.ended.len()) else {
                continue;
            };
            client.clerk.begin(op.clone()).unwrap();
            client.ended.push(None);
            client.sends = 0;
        }
        let (server, mut request) = client.clerk.next_request().unwrap();
        if let Request::Propose(Command::Write { seq, .. }) = &mut request {
            if settings.mutant == Mutant::FreshSeqOnRetry {
                *seq = *seq * 1_000 + client.sends;
            }
            client.sends += 1;
        }
        let response = cluster.serve(server, &request);
        let served = response.clone();
        let ended = match client.clerk.on_reply(server, response) {
            Progress::Pending => continue,
            Progress::Done(Output::Value(value)) => {
                if served != Some(Response::Value(value.clone())) {
                    return Err(format!(
                        "a get of client {c} returned {value:?}, served {served:?}"
                    ));
                }
                Ok(Output::Value(value))
            }
            Progress::Done(output) => Ok(output),
            Progress::Failed(Failure::SessionExpired)
                if settings.mutant == Mutant::ExpiryIsSuccess =>
            {
                Ok(Output::Ok)
            }
            Progress::Failed(failure) => Err(failure),
        };
        *client.ended.last_mut().unwrap() = Some(ended);
    }
    for r in 0..SERVERS {
        cluster.catch_up(r, cluster.log.len());
    }
    check(&cluster, &clients, settings)
}

/// The checks of the module's doc, on a finished run.
fn check(cluster: &Cluster, clients: &[Client], settings: Settings) -> Result<Stats, String> {
    let mut stats = cluster.stats.clone();
    stats.reads = cluster.reads.len();
    // Which operation each write is, by its token.
    let mut owner: HashMap<&Write, (usize, usize)> = HashMap::new();
    for (c, client) in clients.iter().enumerate() {
        for (n, op) in client.script.iter().enumerate() {
            if let Op::Write(write) = op {
                owner.insert(write, (c, n));
            }
        }
    }
    let mut reference = Reference {
        max_sessions: settings.max_sessions,
        data: BTreeMap::new(),
        sessions: BTreeMap::new(),
    };
    let mut fresh = Store::with_max_sessions(settings.max_sessions);
    let mut applied: HashMap<(usize, usize), Reply> = HashMap::new();
    let mut last_applied: Vec<Option<usize>> = vec![None; clients.len()];
    let mut reads = cluster.reads.iter().peekable();
    let check_reads = |reads: &mut std::iter::Peekable<std::slice::Iter<Read>>,
                       reference: &Reference,
                       applied: usize|
     -> Result<(), String> {
        while let Some(read) = reads.next_if(|read| read.applied == applied) {
            if reference.get(&read.key) != read.value {
                return Err(format!(
                    "a read of {:?} after entry {applied} returned {:?}, not {:?}",
                    read.key,
                    read.value,
                    reference.get(&read.key)
                ));
            }
        }
        Ok(())
    };
    check_reads(&mut reads, &reference, 0)?;
    for (i, entry) in cluster.log.iter().enumerate() {
        let index = i as u64 + 1;
        let (expected, write) = reference.apply(index, entry);
        let answer: Reply = decode(&fresh.apply(index, entry)).unwrap();
        if answer != expected {
            return Err(format!(
                "entry {index}: the store answered {answer:?}, the reference {expected:?}"
            ));
        }
        match (&answer, &write) {
            (Reply::Stale, _) => stats.stale += 1,
            (Reply::SessionExpired, _) => stats.expired_entries += 1,
            (Reply::Done | Reply::Swapped(_), None) if !entry.is_empty() => stats.repeats += 1,
            _ => {}
        }
        if let Some(write) = write {
            let &(c, n) = owner
                .get(&write)
                .ok_or(format!("entry {index} is no client's write"))?;
            if applied.insert((c, n), answer).is_some() {
                return Err(format!("client {c}'s operation {n} was applied twice"));
            }
            if last_applied[c].is_some_and(|m| m > n) {
                return Err(format!(
                    "client {c}'s operation {n} was applied after its operation {}",
                    last_applied[c].unwrap()
                ));
            }
            last_applied[c] = Some(n);
        }
        check_reads(&mut reads, &reference, i + 1)?;
    }
    for (r, replica) in cluster.replicas.iter().enumerate() {
        if replica != &fresh {
            return Err(format!("replica {r} differs from the log applied afresh"));
        }
    }
    if fresh.data() != &reference.data {
        return Err("the store's data differs from the reference's".into());
    }
    for (c, client) in clients.iter().enumerate() {
        for (n, (op, ended)) in client.script.iter().zip(&client.ended).enumerate() {
            let ended = ended.as_ref().expect("every operation ended");
            match (op, ended) {
                (Op::Get { .. }, Ok(Output::Value(_))) => stats.done += 1,
                (Op::Write(_), Ok(output)) => {
                    stats.done += 1;
                    let reply = applied.get(&(c, n)).ok_or(format!(
                        "client {c}'s operation {n} was reported done, never applied"
                    ))?;
                    let expected = match reply {
                        Reply::Swapped(swapped) => Output::Swapped(*swapped),
                        _ => Output::Ok,
                    };
                    if *output != expected {
                        return Err(format!(
                            "client {c}'s operation {n} was reported {output:?}, applied as {reply:?}"
                        ));
                    }
                }
                (Op::Write(_), Err(Failure::SessionExpired))
                    if settings.max_sessions < settings.clients =>
                {
                    stats.expired_ops += 1
                }
                (op, ended) => {
                    return Err(format!(
                        "client {c}'s operation {n}: {op:?} ended {ended:?}"
                    ))
                }
            }
        }
    }
    Ok(stats)
}

/// Runs `seeds` seeds; panics with the first failing seed.
fn run_seeds(seeds: std::ops::Range<u64>, settings: Settings) -> Stats {
    let mut total = Stats::default();
    for seed in seeds {
        match run(seed, settings) {
            Ok(stats) => total.add(&stats),
            Err(e) => panic!("seed {seed} ({settings:?}): {e}"),
        }
    }
    println!("{total:?}");
    total
}

#[test]
fn every_operation_is_applied_exactly_once_in_order() {
    let settings = Settings {
        clients: 3,
        ops: 40,
        max_sessions: raft_kv::DEFAULT_MAX_SESSIONS,
        mutant: Mutant::None,
    };
    let stats = run_seeds(0..1_000, settings);
    // The faults the test is about happened, many times over.
    assert_eq!(stats.done, 1_000 * 3 * 40);
    assert!(stats.repeats > 100, "{stats:?}");
    assert!(stats.stale > 10, "{stats:?}");
    assert!(stats.leader_changes > 1_000, "{stats:?}");
    assert!(stats.installs > 100, "{stats:?}");
    assert!(stats.restarts > 100, "{stats:?}");
    assert!(stats.delayed > 1_000, "{stats:?}");
    assert!(stats.reads > 1_000, "{stats:?}");
    assert_eq!(stats.expired_entries, 0);
}

#[test]
fn with_sessions_expiring_no_failure_is_reported_as_success() {
    let settings = Settings {
        clients: 3,
        ops: 40,
        max_sessions: 2,
        mutant: Mutant::None,
    };
    let stats = run_seeds(0..1_000, settings);
    assert!(stats.expired_ops > 1_000, "{stats:?}");
    assert!(stats.expired_entries > 1_000, "{stats:?}");
    assert!(stats.done > 1_000 * 3 * 20, "{stats:?}");
}

/// The first seed at which `mutant` is caught, within `seeds`.
fn caught(mutant: Mutant, max_sessions: usize) -> Option<(u64, String)> {
    let settings = Settings {
        clients: 3,
        ops: 40,
        max_sessions,
        mutant,
    };
    (0..50).find_map(|seed| run(seed, settings).err().map(|e| (seed, e)))
}

#[test]
fn retries_with_fresh_sequence_numbers_are_caught() {
    let (seed, error) = caught(Mutant::FreshSeqOnRetry, raft_kv::DEFAULT_MAX_SESSIONS)
        .expect("writes applied twice are caught");
    println!("seed {seed}: {error}");
    assert!(error.contains("applied twice"), "{error}");
}

#[test]
fn an_expiry_reported_as_success_is_caught() {
    let (seed, error) =
        caught(Mutant::ExpiryIsSuccess, 2).expect("a success that was not applied is caught");
    println!("seed {seed}: {error}");
    assert!(error.contains("never applied"), "{error}");
}
