//! The clients of a run: threads that each drive one [`Clerk`] over the client protocol of `raft-node`,
//! as the `raft-node kv` command does, and record what they asked and saw in a shared [`History`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use raft_kv::{Clerk, Op, Progress};
use raft_node::client::{Client, Reply, Request};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::linearizability::{History, Input, Output};

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Read, write and compare-and-swap on a few keys.
    Registers,
    /// Append unique values to a few lists, and read them.
    ListAppend,
}

impl Workload {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Registers => "registers",
            Workload::ListAppend => "list-append",
        }
    }

    /// The keys it uses.
    pub fn keys(self) -> Vec<String> {
        let prefix = match self {
            Workload::Registers => "r",
            Workload::ListAppend => "l",
        };
        (0..KEYS).map(|k| format!("{prefix}{k}")).collect()
    }
}

/// Keys per workload.
const KEYS: usize = 3;
/// The end of each appended element of a list.
pub const SEPARATOR: char = ';';

/// How clients behave.
#[derive(Clone, Debug)]
pub struct ClientSetup {
    /// The nodes' client addresses, in id order.
    pub nodes: Vec<SocketAddr>,
    /// The workload.
    pub workload: Workload,
    /// How long one call to one node may take before the clerk tries the next.
    pub call_timeout: Duration,
    /// How long one operation may take before it is given up (its outcome then unknown).
    pub op_timeout: Duration,
    /// The pause between the starts of two operations of one client (zero: none).
    pub interval: Duration,
    /// The bug: a write that got no answer is begun again as a new write, with a new sequence number,
    /// as a client without sessions would retry it.
    pub no_sessions: bool,
}

/// What one client counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Operations with a definite answer.
    pub ok: u64,
    /// Operations that ended without effect: reads with no answer, writes the store refused.
    pub failed: u64,
    /// Writes that ended without a definite answer: they may or may not have been applied.
    pub indeterminate: u64,
}

impl Tally {
    /// Adds another's counts.
    pub fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.indeterminate += other.indeterminate;
    }
}

/// What one operation ended with.
pub enum Ended {
    /// A definite answer.
    Done(raft_kv::Output),
    /// No definite answer: a write that may or may not have been applied, or a read never answered.
    Unknown,
    /// The clerk failed it without effect... or not: see the failure.
    Failed(raft_kv::Failure),
}

/// One client: runs operations until `stop`, or until `budget` runs out, recording them in `history`.
pub fn run_client(
    client: u64,
    setup: &ClientSetup,
    seed: u64,
    history: &Mutex<History>,
    stop: &AtomicBool,
    budget: &AtomicU64,
) -> Tally {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut clerk = Clerk::new(setup.nodes.len());
    let mut connections = BTreeMap::new();
    let mut tally = Tally::default();
    let mut last_read: BTreeMap<String, String> = BTreeMap::new();
    let keys = setup.workload.keys();
    let mut n = 0u64;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Paced: a client that fell behind does not make up for it in a burst.
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next = next.max(now) + setup.interval;
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_err()
        {
            break;
        }
        n += 1;
        let key = keys[rng.random_range(0..keys.len())].clone();
        let value = format!("c{client}n{n}");
        let (op, input) = match (setup.workload, rng.random_range(0..10)) {
            (_, 0..=3) => (Op::get(&key), Input::Get { key: key.clone() }),
            (Workload::Registers, 4..=6) => (
                Op::put(&key, &value),
                Input::Put {
                    key: key.clone(),
                    value,
                },
            ),
            (Workload::Registers, _) => {
                let expected = last_read.get(&key).cloned().unwrap_or_default();
                (
                    Op::cas(&key, &expected, &value),
                    Input::Cas {
                        key: key.clone(),
                        expected,
                        value,
                    },
                )
            }
            (Workload::ListAppend, _) => {
                let element = format!("{value}{SEPARATOR}");
                (
                    Op::append(&key, &element),
                    Input::Append {
                        key: key.clone(),
                        value: element,
                    },
                )
            }
        };
        let is_read = matches!(op, Op::Get { .. });
        let id = history.lock().unwrap().call(client, input);
        match execute(&mut clerk, &mut connections, op, setup, stop) {
            Ended::Done(output) => {
                let output = match output {
                    raft_kv::Output::Value(v) => {
                        last_read.insert(key, v.clone());
                        Output::Value(v)
                    }
                    raft_kv::Output::Ok => Output::Ack,
                    raft_kv::Output::Swapped(s) => Output::Swapped(s),
                };
                history.lock().unwrap().returned(id, output);
                tally.ok += 1;
            }
            Ended::Unknown if is_read => tally.failed += 1,
            Ended::Unknown | Ended::Failed(raft_kv::Failure::SessionExpired) => {
                tally.indeterminate += 1
            }
            Ended::Failed(_) => {
                // Stale, malformed or a reply that does not fit: the store did not apply it as asked.
                // It may still have been applied (a protocol error comes after the fact), so it stays
                // open in the history, which is the weaker claim.
                tally.failed += 1;
            }
        }
    }
    tally
}

/// Runs `op` to its end, or until the operation's timeout.
pub fn execute(
    clerk: &mut Clerk,
    connections: &mut BTreeMap<usize, Client>,
    op: Op,
    setup: &ClientSetup,
    stop: &AtomicBool,
) -> Ended {
    let deadline = Instant::now() + setup.op_timeout;
    clerk.begin(op.clone()).expect("one operation at a time");
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let (server, request) = clerk.next_request().expect("an operation is in progress");
        let request = match request {
            raft_kv::Request::Propose(command) => Request::Propose(raft_kv::encode(&command)),
            raft_kv::Request::Read { key } => Request::Read(key.into_bytes()),
        };
        let response = call(connections, server, setup, request).and_then(kv_response);
        let failed = matches!(response, None | Some(raft_kv::Response::Unavailable));
        if failed && setup.no_sessions && matches!(op, Op::Write(_)) {
            // The bug: the retry is a new write.
            clerk.abandon();
            clerk.begin(op.clone()).expect("abandoned");
            continue;
        }
        match clerk.on_reply(server, response) {
            Progress::Pending => {
                if failed {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Progress::Done(output) => return Ended::Done(output),
            Progress::Failed(failure) => return Ended::Failed(failure),
        }
    }
    clerk.abandon();
    Ended::Unknown
}

/// One call on a kept connection; `None` if it failed (the connection is dropped then).
fn call(
    connections: &mut BTreeMap<usize, Client>,
    server: usize,
    setup: &ClientSetup,
    request: Request,
) -> Option<Reply> {
    let client = match connections.entry(server) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(Client::connect(setup.nodes[server], setup.call_timeout).ok()?)
        }
    };
    match client.call(request) {
        Ok(reply) => Some(reply),
        Err(_) => {
            connections.remove(&server);
            None
        }
    }
}

/// A node's reply as the clerk reads it; `None` for one that is no answer of the key-value store.
fn kv_response(reply: Reply) -> Option<raft_kv::Response> {
    Some(match reply {
        Reply::Committed { response, .. } => {
            raft_kv::Response::Committed(raft_kv::decode(&response).ok()?)
        }
        Reply::NotLeader(leader) => {
            raft_kv::Response::NotLeader(leader.and_then(|l| (l as usize).checked_sub(1)))
        }
        Reply::Lost => raft_kv::Response::Lost,
        Reply::Unknown => raft_kv::Response::Unknown,
        Reply::Unavailable => raft_kv::Response::Unavailable,
        Reply::Value(value) => raft_kv::Response::Value(String::from_utf8(value).ok()?),
        Reply::Status(_)
        | Reply::TransferStarted
        | Reply::Refused(_)
        | Reply::Busy(_)
        | Reply::Challenge(_) => return None,
    })
}

/// Reads every key of `workload` once the faults are over, as a client of its own (`client`), recording the
/// reads in `history`: the final state, which every acknowledged write must be in.
pub fn final_reads(
    client: u64,
    setup: &ClientSetup,
    history: &Mutex<History>,
) -> BTreeMap<String, Option<String>> {
    let stop = AtomicBool::new(false);
    let mut clerk = Clerk::new(setup.nodes.len());
    let mut connections = BTreeMap::new();
    let patient = ClientSetup {
        op_timeout: Duration::from_secs(30),
        no_sessions: false,
        ..setup.clone()
    };
    let mut values = BTreeMap::new();
    for key in setup.workload.keys() {
        let id = history
            .lock()
            .unwrap()
            .call(client, Input::Get { key: key.clone() });
        let value = match execute(&mut clerk, &mut connections, Op::get(&key), &patient, &stop) {
            Ended::Done(raft_kv::Output::Value(v)) => {
                history
                    .lock()
                    .unwrap()
                    .returned(id, Output::Value(v.clone()));
                Some(v)
            }
            _ => None,
        };
        values.insert(key, value);
    }
    values
}

/// Checks the list-append histories beyond linearizability, with the final values: every element appears
/// at most once in the final list, every read is a prefix of it, and every acknowledged append is in it.
/// Returns the acknowledged appends missing (lost) and the anomalies found.
pub fn check_lists(
    ops: &[crate::linearizability::Operation],
    finals: &BTreeMap<String, Option<String>>,
) -> (u64, Vec<String>) {
    let mut lost = 0;
    let mut anomalies = Vec::new();
    for (key, value) in finals {
        let Some(value) = value else {
            anomalies.push(format!("{key}: no final read answered"));
            continue;
        };
        let elements: Vec<&str> = value.split_terminator(SEPARATOR).collect();
        let mut seen = std::collections::BTreeSet::new();
        for e in &elements {
            if !seen.insert(*e) {
                anomalies.push(format!(
                    "{key}: element {e} appears twice in the final list"
                ));
            }
        }
        for op in ops.iter().filter(|op| op.input.key() == key) {
            match (&op.input, &op.output) {
                (Input::Append { value: element, .. }, Output::Ack) => {
                    let element = element.trim_end_matches(SEPARATOR);
                    if !seen.contains(element) {
                        lost += 1;
                        anomalies.push(format!(
                            "{key}: acknowledged append {element} is not in the final list"
                        ));
                    }
                }
                (Input::Get { .. }, Output::Value(read)) if !value.starts_with(read.as_str()) => {
                    anomalies.push(format!(
                        "{key}: a read saw {read:?}, which is not a prefix of the final list"
                    ));
                }
                _ => {}
            }
        }
    }
    (lost, anomalies)
}
