//! Benchmark of the linearizability checker on histories shaped like the Lab 3 test
//! `TestPersistPartitionUnreliableLinearizable3A` (6.5840 kvraft: `GenericTest(t, "3A", 15, 7, true, true, true,
//! -1, true)`: 15 clients on 7 servers, each doing random Get/Put/Append on random keys among 15, for three
//! rounds of 5 s with the network unreliable and repartitioned every 1-1.2 s, the servers crashed and restarted
//! after each round, and a Get of every key at the end of each round).
//!
//! ```text
//! cargo bench -p conformance --bench lincheck              # the generated histories
//! cargo bench -p conformance --bench lincheck -- A.jsonl   # also these files (specs/history-format.md)
//! ```
//!
//! The histories are generated from seeded RNGs by simulating a linearizable store: each operation takes
//! effect at a random point late in its interval (the last attempt), the intervals come from a model of the
//! test's network (attempts of 10-60 ms, 30% of them lost or sent to a follower and retried 100-400 ms later,
//! and stalls of 0.5-1.5 s when a partition cuts off the leader, during which every client's operation
//! waits), and one operation in 200 never returns (half of those take effect). To measure other histories,
//! pass files, or call `measure` with a `Vec` of them. Each line: `<name>: <n> histories, <ops> ops each (<per
//! key> per key, up to <k> overlapping on a key), <pending> never returned; decided in <ms> ms mean, <ms> ms
//! max; <ops/s> ops/s (best of 3)`. Then, for three of them, one read is made stale and the time to decide
//! and to find the minimal set is printed.
//!
//! Besides the test's shape: the same with 5 clients and 5 keys; all on one key with 5 clients (like
//! `TestUnreliableOneKey3A`) and with 15 (26 operations in flight at once on the key: a stress case); and the
//! test's shape 10 times as long.
//!
//! The anchor is Porcupine, which the lab uses with a 1 s timeout per history (a history it cannot decide in
//! time passes): its README reports it "generally 1,000x-10,000x faster" than Knossos on Jepsen's etcd
//! histories, and its author's post ("Testing Distributed Systems for Linearizability", 2017) that it "is
//! capable of checking histories of thousands of events in a couple seconds".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use conformance::linearizability::{check, jsonl, Input, Operation, Output};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The shape of a generated history.
struct Shape {
    clients: u64,
    keys: u64,
    /// Rounds of client activity, each followed by a crash and restart of the servers and a Get of every key.
    rounds: u64,
    /// The length of a round of client activity, in µs.
    round: u64,
    /// The probability that an operation never returns (the client gives up after 2 s).
    timeout: f64,
}

/// The test's own shape.
const LAB3: Shape = Shape {
    clients: 15,
    keys: 15,
    rounds: 3,
    round: 5_000_000,
    timeout: 0.005,
};

const MS: u64 = 1_000;

/// An operation as planned: when it takes effect (`None`: never).
struct Planned {
    op: Operation,
    takes_effect: Option<u64>,
}

/// A history of `shape` from `seed`, linearizable by construction.
fn lab3_history(shape: &Shape, seed: u64) -> Vec<Operation> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut planned: Vec<Planned> = Vec::new();
    let mut start = 0;
    for _ in 0..shape.rounds {
        let end = start + shape.round;
        // After the first second the network is repartitioned every 1-1.2 s; about half the time the leader
        // ends up in the minority, and nothing commits until a new leader is elected.
        let mut stalls = Vec::new();
        let mut t = start + 1000 * MS;
        while t < end {
            if rng.random_bool(0.5) {
                stalls.push((t, t + rng.random_range(500 * MS..1500 * MS)));
            }
            t += rng.random_range(1000 * MS..=1200 * MS);
        }
        let mut quiet = end;
        for client in 0..shape.clients {
            let mut t = start + rng.random_range(0..5 * MS);
            let mut j = 0;
            while t < end {
                let key = rng.random_range(0..shape.keys).to_string();
                let value = format!("x {client} {j} y");
                let input = if rng.random_bool(0.5) {
                    j += 1;
                    Input::Append { key, value }
                } else if rng.random_bool(0.1) {
                    j += 1;
                    Input::Put { key, value }
                } else {
                    Input::Get { key }
                };
                let call = t;
                if rng.random_bool(shape.timeout) {
                    let takes_effect = rng
                        .random_bool(0.5)
                        .then(|| call + rng.random_range(0..2000 * MS));
                    planned.push(Planned {
                        op: Operation {
                            client,
                            call,
                            ret: None,
                            input,
                            output: Output::Unknown,
                        },
                        takes_effect,
                    });
                    t = call + 2000 * MS;
                    continue;
                }
                let (ret, took) = attempt(&mut rng, &stalls, call);
                planned.push(Planned {
                    op: Operation {
                        client,
                        call,
                        ret: Some(ret),
                        input,
                        output: Output::Ack,
                    },
                    takes_effect: Some(ret - rng.random_range(0..=took)),
                });
                t = ret + rng.random_range(0..MS);
            }
            quiet = quiet.max(t);
        }
        // Crash and restart, then the tester reads every key.
        let mut t = quiet + 1000 * MS;
        for key in 0..shape.keys {
            let (ret, took) = attempt(&mut rng, &[], t);
            planned.push(Planned {
                op: Operation {
                    client: shape.clients,
                    call: t,
                    ret: Some(ret),
                    input: Input::Get {
                        key: key.to_string(),
                    },
                    output: Output::Ack,
                },
                takes_effect: Some(ret - rng.random_range(0..=took)),
            });
            t = ret + rng.random_range(0..MS);
        }
        start = t;
    }
    // Run the store in the order the operations took effect, and record what each returned.
    let mut order: Vec<(u64, usize)> = planned
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.takes_effect.map(|at| (at, i)))
        .collect();
    order.sort_unstable();
    let mut store: BTreeMap<String, String> = BTreeMap::new();
    for (_, i) in order {
        let op = &mut planned[i].op;
        let value = store.entry(op.input.key().to_owned()).or_default();
        let output = match &op.input {
            Input::Get { .. } => Output::Value(value.clone()),
            Input::Put { value: new, .. } => {
                *value = new.clone();
                Output::Ack
            }
            Input::Append { value: suffix, .. } => {
                value.push_str(suffix);
                Output::Ack
            }
            Input::Cas {
                expected,
                value: new,
                ..
            } => {
                let swaps = value == expected;
                if swaps {
                    *value = new.clone();
                }
                Output::Swapped(swaps)
            }
        };
        if op.ret.is_some() {
            op.output = output;
        }
    }
    // A get that never took effect and never returned: its output stays unknown; one that returned always
    // took effect.
    planned.into_iter().map(|p| p.op).collect()
}

/// One client request from `call`: attempts of 10-60 ms, 30% of them lost or sent to a server that is not
/// the leader (costing 100-400 ms before the retry), and any attempt that starts during a stall waits for its
/// end. Returns the return time and how long the successful attempt took.
fn attempt(rng: &mut ChaCha8Rng, stalls: &[(u64, u64)], call: u64) -> (u64, u64) {
    let mut t = call;
    loop {
        if let Some(&(_, until)) = stalls.iter().find(|&&(from, until)| from <= t && t < until) {
            t = until;
        }
        let took = rng.random_range(10 * MS..60 * MS);
        if rng.random_bool(0.3) {
            t += rng.random_range(100 * MS..400 * MS);
            continue;
        }
        return (t + took, took);
    }
}

/// The most operations on one key whose intervals share a point (an operation that never returned stays
/// open to the end).
fn overlap(history: &[Operation]) -> usize {
    let mut by_key: BTreeMap<&str, Vec<(u64, i32)>> = BTreeMap::new();
    for op in history {
        let events = by_key.entry(op.input.key()).or_default();
        events.push((op.call, -1)); // calls first at equal times: equal times overlap
        events.push((op.ret.unwrap_or(u64::MAX), 1));
    }
    by_key
        .values_mut()
        .map(|events| {
            events.sort_unstable();
            let (mut open, mut most) = (0i32, 0i32);
            for &(_, delta) in events.iter() {
                open -= delta;
                most = most.max(open);
            }
            most as usize
        })
        .max()
        .unwrap_or(0)
}

/// Checks each history three times and prints the line described in the module documentation.
fn measure(name: &str, histories: &[Vec<Operation>]) {
    let n = histories.len() as f64;
    let ops: usize = histories.iter().map(Vec::len).sum();
    let keys: usize = histories
        .iter()
        .map(|h| check(h).expect("a well-formed history").keys)
        .sum();
    let pending: usize = histories
        .iter()
        .map(|h| h.iter().filter(|op| op.ret.is_none()).count())
        .sum();
    let most = histories.iter().map(|h| overlap(h)).max().unwrap_or(0);
    let mut total = 0.0;
    let mut slowest: f64 = 0.0;
    for history in histories {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let report = check(history).expect("a well-formed history");
            best = best.min(started.elapsed().as_secs_f64());
            assert!(report.is_linearizable(), "{name}: {report}");
        }
        total += best;
        slowest = slowest.max(best);
    }
    println!(
        "{name}: {} histories, {:.0} ops each ({:.0} per key, up to {most} overlapping on a key), {:.1} never returned; decided in {:.2} ms mean, {:.2} ms max; {:.0} ops/s (best of 3)",
        histories.len(),
        ops as f64 / n,
        ops as f64 / keys as f64,
        pending as f64 / n,
        total * 1e3 / n,
        slowest * 1e3,
        ops as f64 / total,
    );
}

/// Makes one read of `history` stale (it reads what an earlier read of its key saw, although a write that
/// the later read must see finished in between), and prints how long deciding and minimizing take.
fn measure_stale(name: &str, mut history: Vec<Operation>) {
    let reads: Vec<usize> = (0..history.len())
        .filter(|&i| matches!(history[i].output, Output::Value(_)))
        .collect();
    for (n, &late) in reads.iter().enumerate().rev() {
        let Some(&early) = reads[..n].iter().rev().find(|&&early| {
            history[early].input.key() == history[late].input.key()
                && history[early].output != history[late].output
        }) else {
            continue;
        };
        let stale = history[early].output.clone();
        let honest = std::mem::replace(&mut history[late].output, stale);
        let report = check(&history).expect("a well-formed history");
        if let Some(violation) = &report.violation {
            println!(
                "{name}: {} ops, one stale read: decided in {:.2} ms, minimized to {} of the key's {} ops in {:.2} ms{}",
                history.len(),
                report.elapsed.as_secs_f64() * 1e3,
                violation.minimal.len(),
                violation.key_ops,
                violation.minimize_elapsed.as_secs_f64() * 1e3,
                if violation.one_minimal { "" } else { " (out of budget: not known to be 1-minimal)" },
            );
            return;
        }
        history[late].output = honest;
    }
    println!("{name}: no read could be made stale");
}

fn main() {
    let files: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let history: Vec<Operation> = jsonl::parse(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .into_iter()
            .map(|record| record.op)
            .collect();
        measure(&file.display().to_string(), &[history]);
    }

    let seeds = 0..20;
    let generate = |shape: &Shape| -> Vec<Vec<Operation>> {
        seeds
            .clone()
            .map(|seed| lab3_history(shape, seed))
            .collect()
    };
    let lab3 = generate(&LAB3);
    measure("lab3 shape: 15 clients, 15 keys, 3 x 5 s", &lab3);
    let five = Shape {
        clients: 5,
        keys: 5,
        ..LAB3
    };
    measure("lab3 shape: 5 clients, 5 keys, 3 x 5 s", &generate(&five));
    let one_key = Shape {
        clients: 5,
        keys: 1,
        ..LAB3
    };
    let one_key = generate(&one_key);
    measure("5 clients on one key, 3 x 5 s", &one_key);
    let crowded = Shape { keys: 1, ..LAB3 };
    let crowded = generate(&crowded);
    measure("15 clients on one key, 3 x 5 s", &crowded);
    let long = Shape {
        round: 50_000_000,
        ..LAB3
    };
    let long: Vec<_> = (0..3).map(|seed| lab3_history(&long, seed)).collect();
    measure("lab3 shape x10: 15 clients, 15 keys, 3 x 50 s", &long);
    measure_stale("lab3 shape seed 0", lab3[0].clone());
    measure_stale("5 clients on one key seed 0", one_key[0].clone());
    measure_stale("15 clients on one key seed 0", crowded[0].clone());
}
