//! The linearizability checker (`conformance::linearizability`): histories it must reject, with the minimal
//! set of operations it must name; histories it must accept; malformed records; and a cross-check against
//! stateright's `LinearizabilityTester` on random small histories.

use std::collections::BTreeMap;

use conformance::linearizability::{
    check, jsonl, History, HistoryError, Input, Invalid, Operation, Output, Report,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

// ---------------------------------------------------------------------------------------------------------
// Writing histories by hand.

fn get(key: &str, read: &str) -> (Input, Output) {
    let key = key.to_owned();
    (Input::Get { key }, Output::Value(read.to_owned()))
}

fn put(key: &str, value: &str) -> (Input, Output) {
    let (key, value) = (key.to_owned(), value.to_owned());
    (Input::Put { key, value }, Output::Ack)
}

fn append(key: &str, value: &str) -> (Input, Output) {
    let (key, value) = (key.to_owned(), value.to_owned());
    (Input::Append { key, value }, Output::Ack)
}

fn cas(key: &str, expected: &str, value: &str, swapped: bool) -> (Input, Output) {
    let (key, expected, value) = (key.to_owned(), expected.to_owned(), value.to_owned());
    let input = Input::Cas {
        key,
        expected,
        value,
    };
    (input, Output::Swapped(swapped))
}

/// An operation of `client` called at `call` that returned at `ret`.
fn done(client: u64, call: u64, ret: u64, (input, output): (Input, Output)) -> Operation {
    Operation {
        client,
        call,
        ret: Some(ret),
        input,
        output,
    }
}

/// An operation of `client` called at `call` that never returned.
fn pending(client: u64, call: u64, (input, _): (Input, Output)) -> Operation {
    Operation {
        client,
        call,
        ret: None,
        input,
        output: Output::Unknown,
    }
}

fn verdict(history: &[Operation]) -> Report {
    check(history).expect("a well-formed history")
}

/// Asserts that `history` is not linearizable on `key`, and that the minimal set is exactly `minimal`.
fn assert_rejected(history: &[Operation], key: &str, minimal: &[usize]) {
    let report = verdict(history);
    let violation = report
        .violation
        .as_ref()
        .unwrap_or_else(|| panic!("accepted: {report}"));
    assert_eq!(violation.key, key, "{report}");
    assert_eq!(report.minimal_indices(), minimal, "{report}");
    // The minimal set cannot be ordered on its own either.
    let alone: Vec<Operation> = violation.minimal.iter().map(|(_, op)| op.clone()).collect();
    assert!(!verdict(&alone).is_linearizable(), "{report}");
}

fn assert_accepted(history: &[Operation]) {
    let report = verdict(history);
    assert!(report.is_linearizable(), "{report}");
}

// ---------------------------------------------------------------------------------------------------------
// It bites.

#[test]
fn a_stale_read_is_rejected_and_the_write_it_missed_is_named() {
    let history = [
        done(1, 0, 10, put("x", "a")),
        done(2, 12, 14, get("x", "a")),
        done(1, 20, 30, put("x", "b")),
        done(3, 40, 50, get("x", "a")), // b was written before this read began
        done(4, 0, 100, put("y", "z")),
        done(5, 50, 60, get("y", "z")),
    ];
    // The put of a stays free to explain the a; the put of b and the read that missed it cannot be ordered.
    assert_rejected(&history, "x", &[2, 3]);
}

#[test]
fn a_stale_read_of_the_initial_value_names_the_write_and_the_read() {
    let history = [
        done(1, 0, 10, put("x", "a")),
        done(2, 5, 8, get("x", "")), // overlaps the put: fine
        done(3, 20, 30, get("x", "")),
    ];
    assert_rejected(&history, "x", &[0, 2]);
}

#[test]
fn a_lost_write_is_rejected_and_named() {
    let history = [
        done(1, 0, 10, append("x", "1 ")),
        done(2, 20, 30, append("x", "2 ")),
        done(3, 40, 50, get("x", "2 ")), // the first append is lost
    ];
    assert_rejected(&history, "x", &[0, 2]);

    let lost_put = [
        done(1, 0, 10, put("x", "a")),
        done(2, 11, 20, put("x", "b")),
        done(1, 21, 30, get("x", "a")),
        done(2, 31, 40, get("x", "b")),
    ];
    // After both writes finished, the reads see a and then b: with the writes free, that still cannot be
    // ordered (whichever write is last, the value cannot change after 20).
    assert_rejected(&lost_put, "x", &[2, 3]);
}

#[test]
fn a_duplicated_append_is_rejected_and_the_read_is_named() {
    let history = [
        done(1, 0, 10, append("x", "a")),
        done(2, 20, 30, append("x", "b")),
        done(3, 40, 50, get("x", "aba")), // a applied twice
        done(3, 60, 70, get("y", "")),
    ];
    // No order of the appends, each once or not at all, makes "aba": the read alone cannot be ordered.
    assert_rejected(&history, "x", &[2]);
}

#[test]
fn a_read_of_a_value_never_written_is_rejected() {
    let history = [done(1, 0, 10, put("x", "a")), done(2, 5, 15, get("x", "q"))];
    assert_rejected(&history, "x", &[1]);
}

#[test]
fn a_cas_must_agree_with_the_value_it_found() {
    // It swapped although x never held b.
    assert_rejected(
        &[
            done(1, 0, 10, put("x", "a")),
            done(2, 20, 30, cas("x", "b", "c", true)),
        ],
        "x",
        &[1],
    );
    // It did not swap although x held a.
    assert_rejected(
        &[
            done(1, 0, 10, put("x", "a")),
            done(2, 20, 30, cas("x", "a", "c", false)),
        ],
        "x",
        &[0, 1],
    );
    // A swap takes effect: a later read must see it.
    assert_rejected(
        &[
            done(1, 0, 10, cas("x", "", "c", true)),
            done(2, 20, 30, get("x", "")),
        ],
        "x",
        &[0, 1],
    );
}

#[test]
fn a_pending_write_seen_once_cannot_be_unseen() {
    let history = [
        pending(1, 0, put("x", "a")),
        done(2, 10, 20, get("x", "a")),
        done(3, 30, 40, get("x", "")),
    ];
    // The put never returned, so it is free already: the two reads are the set.
    assert_rejected(&history, "x", &[1, 2]);
}

#[test]
fn a_pending_write_takes_effect_only_after_its_call() {
    let history = [done(2, 0, 10, get("x", "a")), pending(1, 20, put("x", "a"))];
    assert_rejected(&history, "x", &[0]);
}

#[test]
fn the_first_failing_key_is_reported_and_the_others_counted() {
    let history = [
        done(1, 0, 10, put("b", "1")),
        done(1, 20, 30, get("b", "")),
        done(2, 0, 10, put("a", "1")),
        done(2, 20, 30, get("a", "")),
        done(3, 0, 10, put("c", "1")),
        done(3, 20, 30, get("c", "1")),
    ];
    let report = verdict(&history);
    assert_eq!(report.failing_keys, 2);
    assert_eq!(report.keys, 3);
    assert_eq!(report.violation.as_ref().unwrap().key, "a");
    assert_eq!(report.minimal_indices(), [2, 3]);
    let shown = report.to_string();
    assert!(
        shown.starts_with("not linearizable: key \"a\" (the first of 2 keys"),
        "{shown}"
    );
    assert!(
        shown.contains("  #2 client 2 [0, 10] put(\"a\", \"1\")\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  #3 client 2 [20, 30] get(\"a\") -> \"\"\n"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// It accepts what it must.

#[test]
fn concurrent_operations_may_take_effect_in_either_order() {
    for last in ["a", "b"] {
        assert_accepted(&[
            done(1, 0, 10, put("x", "a")),
            done(2, 5, 15, put("x", "b")),
            done(3, 20, 30, get("x", last)),
        ]);
    }
    for seen in ["ab", "ba"] {
        assert_accepted(&[
            done(1, 0, 10, append("x", "a")),
            done(2, 5, 15, append("x", "b")),
            done(3, 20, 30, get("x", seen)),
        ]);
    }
    // A read concurrent with a write may see either value, and two such reads may disagree in real-time
    // order only one way: first old, then new.
    assert_accepted(&[
        done(1, 0, 100, put("x", "a")),
        done(2, 10, 20, get("x", "")),
        done(3, 30, 40, get("x", "a")),
    ]);
    assert_rejected(
        &[
            done(1, 0, 100, put("x", "a")),
            done(2, 10, 20, get("x", "a")),
            done(3, 30, 40, get("x", "")),
        ],
        "x",
        &[1, 2],
    );
}

#[test]
fn a_pending_write_may_be_observed_or_not() {
    for read in ["", "a"] {
        assert_accepted(&[
            pending(1, 0, put("x", "a")),
            done(2, 10, 20, get("x", read)),
            done(3, 30, 40, get("x", read)),
        ]);
    }
    // Observed long after its client gave up, after another client's write.
    assert_accepted(&[
        pending(1, 0, append("x", "a")),
        done(1, 5, 10, put("x", "b")),
        done(2, 1000, 1010, get("x", "ba")),
    ]);
    // A cas that never returned may have swapped or not.
    for read in ["", "c"] {
        assert_accepted(&[
            pending(1, 0, cas("x", "", "c", true)),
            done(2, 10, 20, get("x", read)),
        ]);
    }
    // A get that never returned constrains nothing.
    assert_accepted(&[pending(1, 0, get("x", "nonsense"))]);
}

#[test]
fn equal_times_overlap() {
    assert_accepted(&[done(1, 0, 10, put("x", "a")), done(2, 10, 20, get("x", ""))]);
    assert_rejected(
        &[done(1, 0, 10, put("x", "a")), done(2, 11, 20, get("x", ""))],
        "x",
        &[0, 1],
    );
}

#[test]
fn keys_are_independent_and_start_empty() {
    assert_accepted(&[
        done(1, 0, 10, put("x", "a")),
        done(2, 20, 30, get("y", "")),
        done(2, 40, 50, cas("z", "", "q", true)),
        done(1, 60, 70, get("z", "q")),
        done(1, 80, 90, get("x", "a")),
    ]);
    assert_accepted(&[]);
    let report = verdict(&[]);
    assert_eq!((report.ops, report.keys), (0, 0));
    assert_eq!(report.to_string().lines().count(), 1);
}

#[test]
fn a_recorded_history_orders_by_recording() {
    let mut history = History::new();
    let write = history.call(1, put("x", "a").0);
    let read = history.call(2, get("x", "").0);
    history.returned(read, Output::Value(String::new())); // concurrent with the write: fine
    history.returned(write, Output::Ack);
    assert!(history.check().unwrap().is_linearizable());
    let late = history.call(2, get("x", "").0);
    history.returned(late, Output::Value(String::new()));
    let timed_out = history.call(3, append("x", "b").0);
    drop(timed_out); // never returns
    let report = history.check().unwrap();
    assert_eq!(report.minimal_indices(), [0, 2], "{report}");
    assert_eq!(history.operations()[3].ret, None);
    assert_eq!(history.operations()[3].output, Output::Unknown);
}

#[test]
fn malformed_records_are_errors_not_verdicts() {
    let backwards = done(1, 10, 5, put("x", "a"));
    assert_eq!(
        check(&[done(1, 0, 1, put("x", "a")), backwards]).unwrap_err(),
        HistoryError {
            index: 1,
            problem: Invalid::ReturnBeforeCall { call: 10, ret: 5 }
        }
    );
    let mut wrong = done(1, 0, 1, get("x", ""));
    wrong.output = Output::Ack;
    assert_eq!(
        check(&[wrong]).unwrap_err().to_string(),
        "operation 0: a get that returned cannot have output Ack"
    );
    let mut unknown = done(1, 0, 1, put("x", ""));
    unknown.output = Output::Unknown;
    assert!(check(&[unknown]).is_err());
    let mut answered = pending(1, 0, cas("x", "", "", true));
    answered.output = Output::Swapped(true);
    assert_eq!(
        check(&[answered]).unwrap_err().to_string(),
        "operation 0: a cas that never returned cannot have output Swapped"
    );
}

#[test]
fn the_file_format_reads_back_what_it_writes() {
    let history = vec![
        done(3, 120, 150, put("k", "v")),
        done(1, 130, 160, get("k", "v")),
        done(2, 140, 170, append("k\"\n", "é\t")),
        done(2, 180, 190, cas("k", "v", "w", false)),
        pending(4, 200, cas("k", "v", "w", true)),
        pending(5, 210, get("k", "")),
    ];
    let mut text = Vec::new();
    jsonl::write(&history, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        r#"{"client":3,"op":"put","key":"k","value":"v","call":120,"return":150}"#
    );
    assert!(text.contains(r#""expected":"v","value":"w","call":200,"return":null}"#));
    let records = jsonl::parse(&format!("\n{text}\n")).unwrap();
    let read: Vec<Operation> = records.iter().map(|r| r.op.clone()).collect();
    assert_eq!(read, history);
    assert_eq!(records[0].line, 2);
}

/// A longer history, linearizable by construction: `clients` clients each call operations one after another
/// on `keys` keys, with random intervals; each takes effect at a random point of its interval, and one in
/// fifty never returns (half of those take effect).
fn simulated(seed: u64, clients: u64, keys: u64, per_client: usize) -> Vec<Operation> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ops: Vec<(Operation, Option<u64>)> = Vec::new();
    for client in 0..clients {
        let mut t = rng.random_range(0..20);
        for j in 0..per_client {
            let key = format!("k{}", rng.random_range(0..keys));
            let value = format!("{client}.{j} ");
            let (input, output) = match rng.random_range(0..10) {
                0..=3 => get(&key, ""),
                4..=6 => append(&key, &value),
                7 | 8 => put(&key, &value),
                _ => cas(&key, "", &value, false),
            };
            let call = t;
            let ret = call + rng.random_range(1..60);
            let pending = rng.random_bool(0.02);
            let at = rng.random_range(call..=ret);
            let takes_effect = !pending || rng.random_bool(0.5);
            ops.push((
                Operation {
                    client,
                    call,
                    ret: (!pending).then_some(ret),
                    input,
                    output: if pending { Output::Unknown } else { output },
                },
                takes_effect.then_some(at),
            ));
            t = ret + rng.random_range(1..10);
        }
    }
    let mut order: Vec<(u64, usize)> = (0..ops.len())
        .filter_map(|i| ops[i].1.map(|at| (at, i)))
        .collect();
    order.sort_unstable();
    let mut store = Kv::default();
    for (_, i) in order {
        let op = &mut ops[i].0;
        let kv = match op.input.clone() {
            Input::Get { key } => KvOp::Get(key),
            Input::Put { key, value } => KvOp::Put(key, value),
            Input::Append { key, value } => KvOp::Append(key, value),
            Input::Cas { key, value, .. } => {
                // The client expects what is there half the time, so that some swap.
                let current = store.0.get(&key).cloned().unwrap_or_default();
                let expected = if i % 2 == 0 { current } else { "x".to_owned() };
                op.input = Input::Cas {
                    key: key.clone(),
                    expected: expected.clone(),
                    value: value.clone(),
                };
                KvOp::Cas(key, expected, value)
            }
        };
        let ret = store.invoke(&kv);
        if op.ret.is_some() {
            op.output = match ret {
                KvRet::Value(value) => Output::Value(value),
                KvRet::Ack => Output::Ack,
                KvRet::Swapped(swapped) => Output::Swapped(swapped),
            };
        }
    }
    ops.into_iter().map(|(op, _)| op).collect()
}

#[test]
fn longer_simulated_histories_are_accepted_and_a_stale_read_in_them_is_found() {
    let mut rejected = 0;
    for seed in 0..40 {
        let mut history = simulated(seed, 6, 3, 60);
        let report = verdict(&history);
        assert!(report.is_linearizable(), "seed {seed}: {report}");
        assert_eq!(report.ops, 360);
        // Make the last read of a key that saw a value see what an earlier read of it saw instead.
        let reads: Vec<usize> = (0..history.len())
            .filter(|&i| matches!(&history[i].output, Output::Value(v) if !v.is_empty()))
            .collect();
        let Some((early, late)) = reads.iter().rev().find_map(|&late| {
            reads
                .iter()
                .find(|&&early| {
                    history[early].input.key() == history[late].input.key()
                        && history[early].output != history[late].output
                        && history[early].ret.unwrap() < history[late].call
                })
                .map(|&early| (early, late))
        }) else {
            continue;
        };
        history[late].output = history[early].output.clone();
        let report = verdict(&history);
        let Some(violation) = &report.violation else {
            continue; // the old value may have come back
        };
        rejected += 1;
        assert!(violation.one_minimal, "seed {seed}: {report}");
        assert!(
            report.minimal_indices().contains(&late),
            "seed {seed}: {report}"
        );
        let alone: Vec<Operation> = violation.minimal.iter().map(|(_, op)| op.clone()).collect();
        assert!(!verdict(&alone).is_linearizable(), "seed {seed}: {report}");
    }
    assert!(rejected >= 20, "{rejected}");
}

// ---------------------------------------------------------------------------------------------------------
// The cross-check against stateright's tester.

/// The store as a stateright sequential specification, written independently of the checker's model.
#[derive(Clone, Debug, Default)]
struct Kv(BTreeMap<String, String>);

#[derive(Clone, Debug, PartialEq)]
enum KvOp {
    Get(String),
    Put(String, String),
    Append(String, String),
    Cas(String, String, String),
}

#[derive(Clone, Debug, PartialEq)]
enum KvRet {
    Value(String),
    Ack,
    Swapped(bool),
}

impl SequentialSpec for Kv {
    type Op = KvOp;
    type Ret = KvRet;

    fn invoke(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Get(k) => KvRet::Value(self.0.get(k).cloned().unwrap_or_default()),
            KvOp::Put(k, v) => {
                self.0.insert(k.clone(), v.clone());
                KvRet::Ack
            }
            KvOp::Append(k, v) => {
                self.0.entry(k.clone()).or_default().push_str(v);
                KvRet::Ack
            }
            KvOp::Cas(k, expected, v) => {
                let current = self.0.entry(k.clone()).or_default();
                let swaps = current == expected;
                if swaps {
                    *current = v.clone();
                }
                KvRet::Swapped(swaps)
            }
        }
    }
}

/// One event of a generated history.
#[derive(Clone, Debug)]
enum Event {
    /// Operation `op` (its index) was called by `client`.
    Call { op: usize, client: u64, kv: KvOp },
    /// Operation `op` returned.
    Return { op: usize, ret: KvRet },
}

/// A client of the simulated store: idle, or waiting for operation `op`, whose result is `Some` once it
/// has taken effect.
#[derive(Clone, Debug)]
enum Client {
    Idle,
    Waiting { op: usize, result: Option<KvRet> },
}

const CLIENTS: usize = 3;
/// At most this many operations a history: stateright's tester has no memoization, and its search grows
/// factorially with the operations that overlap.
const MAX_OPS: usize = 9;
const KEYS: [&str; 2] = ["x", "y"];
const VALUES: [&str; 3] = ["", "a", "b"];
/// What a corrupted read returns: some never written, some written, some that appends can make.
const READS: [&str; 6] = ["", "a", "b", "ab", "ba", "aa"];

/// A concurrent history from a list of choices (so that proptest can shrink it): three clients use a store
/// that applies each operation atomically at some point while it is outstanding (so the history, as the
/// store ran it, is linearizable), and then some results are corrupted (so some histories are not).
/// Each choice acts for client `c % 3`: an idle client calls a new operation (get, put, append or cas on one
/// of two keys with a small alphabet), or applies one that an earlier client gave up on; a waiting client's
/// operation takes effect, returns (one return in three with a corrupted result), or is given up (it never
/// returns, but may still take effect later). At the end every waiting client's operation returns, but one
/// client's.
fn generate(choices: &[u32]) -> Vec<Event> {
    let mut store = Kv::default();
    let mut clients = vec![Client::Idle; CLIENTS];
    let mut ops: Vec<KvOp> = Vec::new();
    let mut abandoned: Vec<usize> = Vec::new(); // given up and not yet applied
    let mut events = Vec::new();
    for &c in choices {
        let client = c as usize % CLIENTS;
        let bits = c / CLIENTS as u32;
        match clients[client].clone() {
            Client::Idle if bits % 8 == 7 && !abandoned.is_empty() => {
                let op = abandoned.remove(0);
                store.invoke(&ops[op]);
            }
            Client::Idle if ops.len() == MAX_OPS => {}
            Client::Idle => {
                let key = KEYS[(bits / 4 % 2) as usize].to_owned();
                let value = VALUES[1 + (bits / 8 % 2) as usize].to_owned();
                let kv = match bits % 4 {
                    0 => KvOp::Get(key),
                    1 => KvOp::Put(key, value),
                    2 => KvOp::Append(key, value),
                    _ => KvOp::Cas(key, VALUES[(bits / 16 % 3) as usize].to_owned(), value),
                };
                let op = ops.len();
                ops.push(kv.clone());
                events.push(Event::Call {
                    op,
                    client: client as u64,
                    kv,
                });
                clients[client] = Client::Waiting { op, result: None };
            }
            Client::Waiting { op, result } => match (bits % 8, result) {
                (0..=3, None) => {
                    let result = Some(store.invoke(&ops[op]));
                    clients[client] = Client::Waiting { op, result };
                }
                (0..=6, Some(ret)) => {
                    let ret = if (bits / 8).is_multiple_of(3) {
                        corrupt(ret, bits / 48)
                    } else {
                        ret
                    };
                    events.push(Event::Return { op, ret });
                    clients[client] = Client::Idle;
                }
                (7, result) => {
                    if result.is_none() {
                        abandoned.push(op);
                    }
                    clients[client] = Client::Idle;
                }
                _ => {} // waits
            },
        }
    }
    // The end: every client's operation takes effect and returns, but one client's (if it is waiting).
    let stays = choices.len() % (CLIENTS + 1);
    for (client, state) in clients.into_iter().enumerate() {
        if let Client::Waiting { op, result } = state {
            if client != stays {
                let ret = result.unwrap_or_else(|| store.invoke(&ops[op]));
                events.push(Event::Return { op, ret });
            }
        }
    }
    events
}

fn corrupt(ret: KvRet, bits: u32) -> KvRet {
    match ret {
        KvRet::Value(_) => KvRet::Value(READS[(bits % 6) as usize].to_owned()),
        KvRet::Swapped(swapped) => KvRet::Swapped(!swapped),
        KvRet::Ack => KvRet::Ack,
    }
}

/// The history as the checker reads it: times are event positions, so no two are equal.
fn operations(events: &[Event]) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::new();
    for (time, event) in events.iter().enumerate() {
        match event {
            Event::Call { client, kv, .. } => {
                let (key, input) = match kv.clone() {
                    KvOp::Get(key) => (key.clone(), Input::Get { key }),
                    KvOp::Put(key, value) => (key.clone(), Input::Put { key, value }),
                    KvOp::Append(key, value) => (key.clone(), Input::Append { key, value }),
                    KvOp::Cas(key, expected, value) => (
                        key.clone(),
                        Input::Cas {
                            key,
                            expected,
                            value,
                        },
                    ),
                };
                debug_assert_eq!(input.key(), key);
                ops.push(Operation {
                    client: *client,
                    call: time as u64,
                    ret: None,
                    input,
                    output: Output::Unknown,
                });
            }
            Event::Return { op, ret } => {
                ops[*op].ret = Some(time as u64);
                ops[*op].output = match ret.clone() {
                    KvRet::Value(value) => Output::Value(value),
                    KvRet::Ack => Output::Ack,
                    KvRet::Swapped(swapped) => Output::Swapped(swapped),
                };
            }
        }
    }
    ops
}

/// stateright's verdict on the same history.
///
/// Its tester allows a thread one operation in flight at a time, and an operation that never returns must
/// be its thread's last: it cannot say "the client gave up and went on". An operation that never returns is
/// therefore given a thread of its own, which means the same thing: threads only order operations that are
/// sequential in real time anyway, and the tester orders an operation after every operation that completed
/// (on any thread) before it was invoked. Its in-flight operations may be linearized or not, with their
/// results ignored: the checker's operations that never returned.
fn stateright_verdict(events: &[Event]) -> bool {
    let returns: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Return { op, .. } => Some(*op),
            Event::Call { .. } => None,
        })
        .collect();
    let mut thread = BTreeMap::new();
    let mut tester = LinearizabilityTester::new(Kv::default());
    for event in events {
        match event {
            Event::Call { op, client, kv } => {
                let t = if returns.contains(op) {
                    *client
                } else {
                    1000 + *op as u64
                };
                thread.insert(*op, t);
                tester.on_invoke(t, kv.clone()).expect("a valid history");
            }
            Event::Return { op, ret } => {
                tester
                    .on_return(thread[op], ret.clone())
                    .expect("a valid history");
            }
        }
    }
    tester.is_consistent()
}

/// Checks one generated history both ways; `Err` if they disagree, else the verdict.
fn agree(choices: &[u32]) -> Result<bool, String> {
    let events = generate(choices);
    let ops = operations(&events);
    let ours = verdict(&ops);
    let theirs = stateright_verdict(&events);
    if ours.is_linearizable() != theirs {
        let mut text = Vec::new();
        jsonl::write(&ops, &mut text).unwrap();
        return Err(format!(
            "stateright says {theirs}, the checker says {ours}\n{}",
            String::from_utf8_lossy(&text)
        ));
    }
    if let Some(violation) = &ours.violation {
        // The minimal set cannot be ordered on its own.
        let alone: Vec<Operation> = violation.minimal.iter().map(|(_, op)| op.clone()).collect();
        if verdict(&alone).is_linearizable() {
            return Err(format!("the minimal set can be ordered: {ours}"));
        }
    }
    Ok(theirs)
}

/// The length of the choice lists: up to about ten operations, which keeps stateright's search (which has no
/// memoization) fast.
const CHOICES: std::ops::Range<usize> = 4..40;

#[test]
fn agrees_with_stateright_on_random_small_histories() {
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    let verdicts = std::cell::Cell::new((0u32, 0u32));
    runner
        .run(&vec(any::<u32>(), CHOICES), |choices| {
            let linearizable = agree(&choices).map_err(TestCaseError::fail)?;
            let (yes, no) = verdicts.get();
            verdicts.set(if linearizable {
                (yes + 1, no)
            } else {
                (yes, no + 1)
            });
            Ok(())
        })
        .unwrap();
    let (yes, no) = verdicts.get();
    println!(
        "stateright and the checker agree on {} histories: {yes} linearizable, {no} not",
        yes + no
    );
    assert!(yes + no >= 10_000);
}

#[test]
fn the_random_histories_have_both_verdicts_many_times() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut yes, mut no, mut ops, mut pending) = (0, 0, 0, 0);
    for _ in 0..10_000 {
        let len = rng.random_range(CHOICES);
        let choices: Vec<u32> = (0..len).map(|_| rng.random()).collect();
        let events = generate(&choices);
        let history = operations(&events);
        ops += history.len();
        pending += history.iter().filter(|op| op.ret.is_none()).count();
        match agree(&choices) {
            Ok(true) => yes += 1,
            Ok(false) => no += 1,
            Err(disagreement) => panic!("{disagreement}"),
        }
    }
    println!(
        "10,000 seeded histories: {yes} linearizable, {no} not; {:.1} operations each, {:.1} never returned",
        ops as f64 / 10_000.0,
        pending as f64 / 10_000.0
    );
    assert!(yes >= 2_500 && no >= 2_500, "{yes} linearizable, {no} not");
    assert!(
        ops >= 50_000 && pending >= 5_000,
        "{ops} ops, {pending} pending"
    );
}
