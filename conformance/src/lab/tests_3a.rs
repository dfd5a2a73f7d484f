//! Part 3A: the key-value service without snapshots (`specs/lab3-tester.md`, `## 3A`), and the
//! helpers of Go's kvraft `test_test.go` that part 3B shares: the counted and logged operations,
//! the append checks, the partitioner, `GenericTest` and `GenericTestSpeed`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use super::config::fatal;
use super::kvconfig::{Clerk, KvConfig, ELECTION_TIMEOUT_MS};
use crate::linearizability::{History, Input, Output};
use crate::sim::{JoinHandle, Sim, MS};

/// The history of the operations a test logs (Go's `OpLog`), for the linearizability check. Its
/// clock is the order in which calls and returns happen, which keeps every real-time order the
/// simulation produced, even between events at one virtual instant.
#[derive(Clone, Default)]
pub struct OpLog {
    history: Rc<RefCell<History>>,
}

impl OpLog {
    /// An empty log.
    pub fn new() -> OpLog {
        OpLog::default()
    }

    /// Fails the test if the history is not linearizable (Go's `porcupine.CheckOperationsVerbose`,
    /// which here decides every history: there is no timeout that passes one).
    ///
    /// With `LAB_HISTORY_DIR` set, the history is also written there, as `history-<pid>-<n>.jsonl` in the
    /// format of `specs/history-format.md` (for `lincheck` and the checker's bench).
    pub fn check_linearizable(&self) {
        if let Some(dir) = std::env::var_os("LAB_HISTORY_DIR") {
            self.write_history(std::path::Path::new(&dir));
        }
        let report = self
            .history
            .borrow()
            .check()
            .unwrap_or_else(|e| panic!("the recorded history is malformed: {e}"));
        if !report.is_linearizable() {
            fatal(format!("history is not linearizable\n{report}"));
        }
    }

    /// Writes the history into `dir` as `history-<pid>-<n>.jsonl`, the next `n` of this process.
    fn write_history(&self, dir: &std::path::Path) {
        static WRITTEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("history-{}-{n}.jsonl", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::File::create(&path))
            .and_then(|file| {
                crate::linearizability::jsonl::write(
                    self.history.borrow().operations(),
                    std::io::BufWriter::new(file),
                )
            });
        if let Err(e) = written {
            panic!("cannot write the history to {}: {e}", path.display());
        }
    }

    /// Runs `op` as client `client`'s `input`, recording its call and its return with `output`.
    async fn record<T>(
        log: Option<&OpLog>,
        client: usize,
        input: Input,
        op: impl Future<Output = T>,
        output: impl FnOnce(&T) -> Output,
    ) -> T {
        let id = log.map(|log| log.history.borrow_mut().call(client as u64, input));
        let result = op.await;
        if let (Some(log), Some(id)) = (log, id) {
            log.history.borrow_mut().returned(id, output(&result));
        }
        result
    }
}

/// Go's `Get(cfg, ck, key, log, cli)`: a counted get, logged if `log` is given.
pub async fn get(cfg: &KvConfig, ck: &Clerk, key: &str, log: Option<&OpLog>, cli: usize) -> String {
    let input = Input::Get { key: key.into() };
    let v = OpLog::record(log, cli, input, ck.get(key), |v| Output::Value(v.clone())).await;
    cfg.op();
    v
}

/// Go's `Put(cfg, ck, key, value, log, cli)`.
pub async fn put(
    cfg: &KvConfig,
    ck: &Clerk,
    key: &str,
    value: &str,
    log: Option<&OpLog>,
    cli: usize,
) {
    let input = Input::Put {
        key: key.into(),
        value: value.into(),
    };
    OpLog::record(log, cli, input, ck.put(key, value), |_| Output::Ack).await;
    cfg.op();
}

/// Go's `Append(cfg, ck, key, value, log, cli)`.
pub async fn append(
    cfg: &KvConfig,
    ck: &Clerk,
    key: &str,
    value: &str,
    log: Option<&OpLog>,
    cli: usize,
) {
    let input = Input::Append {
        key: key.into(),
        value: value.into(),
    };
    OpLog::record(log, cli, input, ck.append(key, value), |_| Output::Ack).await;
    cfg.op();
}

/// Go's `check(cfg, t, ck, key, value)`: a counted get that must read `value`.
pub async fn check(cfg: &KvConfig, ck: &Clerk, key: &str, value: &str) {
    let v = get(cfg, ck, key, None, 0).await;
    if v != value {
        fatal(format!("Get({key}): expected:\n{value}\nreceived:\n{v}"));
    }
}

/// The value client `clnt` appends as its `j`-th element.
fn element(clnt: usize, j: usize) -> String {
    format!("x {clnt} {j} y")
}

/// Go's `checkClntAppends`: client `clnt`'s elements `0..count` are each in `v` once, in order.
pub fn check_clnt_appends(clnt: usize, v: &str, count: usize) {
    let mut lastoff: Option<usize> = None;
    for j in 0..count {
        let wanted = element(clnt, j);
        let Some(off) = v.find(&wanted) else {
            fatal(format!(
                "{clnt} missing element {wanted} in Append result {v}"
            ));
        };
        if v.rfind(&wanted) != Some(off) {
            fatal(format!("duplicate element {wanted} in Append result"));
        }
        if lastoff.is_some_and(|last| off <= last) {
            fatal(format!("wrong order for element {wanted} in Append result"));
        }
        lastoff = Some(off);
    }
}

/// Go's `checkConcurrentAppends`: each client's elements are in `v` once each, in its order.
pub fn check_concurrent_appends(v: &str, counts: &[usize]) {
    for (i, &count) in counts.iter().enumerate() {
        check_clnt_appends(i, v, count);
    }
}

/// Waits for `task` for at most `ms` milliseconds: whether it finished in time (Go's `select` on a
/// task's channel and `time.After`).
async fn finishes_within<T>(sim: &Sim, task: &mut JoinHandle<T>, ms: u64) -> bool {
    let mut timeout = sim.sleep_ms(ms);
    std::future::poll_fn(|cx| {
        if Pin::new(&mut *task).poll(cx).is_ready() {
            Poll::Ready(true)
        } else if Pin::new(&mut timeout).poll(cx).is_ready() {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Go's `partitioner`: until `done`, splits the servers at random into two groups, each group
/// connected within itself, for about an election timeout each time.
async fn partitioner(cfg: KvConfig, done: Rc<Cell<bool>>) {
    while !done.get() {
        let a: Vec<i64> = (0..cfg.n()).map(|_| cfg.rand_int() % 2).collect();
        let pa: Vec<Vec<usize>> = (0..2)
            .map(|g| (0..cfg.n()).filter(|&j| a[j] == g).collect())
            .collect();
        cfg.partition(&pa[0], &pa[1]);
        let ms = ELECTION_TIMEOUT_MS + (cfg.rand_int() % 200) as u64;
        cfg.sleep_ms(ms).await;
    }
}

/// The parameters of Go's `GenericTest`.
#[derive(Clone, Copy, Debug)]
pub struct Generic {
    /// "3A" or "3B".
    pub part: &'static str,
    /// Concurrent clients.
    pub nclients: usize,
    /// Servers.
    pub nservers: usize,
    /// The network drops and delays RPCs.
    pub unreliable: bool,
    /// All servers are shut down and restarted after each round.
    pub crash: bool,
    /// A partitioner repartitions the servers while the clients run.
    pub partitions: bool,
    /// Go's `maxraftstate` (-1: no snapshots).
    pub maxraftstate: i64,
    /// Clients use random keys (and Puts), and are checked by linearizability alone.
    pub randomkeys: bool,
}

impl Generic {
    /// Go's title of the test.
    fn title(&self) -> String {
        let mut title = String::from("Test: ");
        if self.unreliable {
            title.push_str("unreliable net, ");
        }
        if self.crash {
            title.push_str("restarts, ");
        }
        if self.partitions {
            title.push_str("partitions, ");
        }
        if self.maxraftstate != -1 {
            title.push_str("snapshots, ");
        }
        if self.randomkeys {
            title.push_str("random keys, ");
        }
        title.push_str(if self.nclients > 1 {
            "many clients"
        } else {
            "one client"
        });
        format!("{title} ({})", self.part)
    }
}

/// One client of `GenericTest` (the function `run_client` runs): appends, gets and, with random
/// keys, puts, until `done`; returns how many elements it appended or put.
async fn generic_client(
    cfg: KvConfig,
    g: Generic,
    cli: usize,
    log: OpLog,
    done: Rc<Cell<bool>>,
) -> usize {
    // `run_client`: a clerk of its own for each round.
    let ck = cfg.make_client(&cfg.all());
    let mut j = 0;
    let mut last = String::new(); // only used without random keys
    if !g.randomkeys {
        put(&cfg, &ck, &cli.to_string(), &last, Some(&log), cli).await;
    }
    while !done.get() {
        let key = if g.randomkeys {
            cfg.rand_intn(g.nclients).to_string()
        } else {
            cli.to_string()
        };
        let nv = element(cli, j);
        if cfg.rand_int() % 1000 < 500 {
            append(&cfg, &ck, &key, &nv, Some(&log), cli).await;
            if !g.randomkeys {
                last.push_str(&nv);
            }
            j += 1;
        } else if g.randomkeys && cfg.rand_int() % 1000 < 100 {
            // Only with random keys: a put would break the check after a get.
            put(&cfg, &ck, &key, &nv, Some(&log), cli).await;
            j += 1;
        } else {
            let v = get(&cfg, &ck, &key, Some(&log), cli).await;
            if !g.randomkeys && v != last {
                fatal(format!(
                    "get wrong value, key {key}, wanted:\n{last}\n, got\n{v}\n"
                ));
            }
        }
    }
    cfg.delete_client(&ck);
    j
}

/// Go's `GenericTest`: for three rounds, clients run for 5 s (with a partitioner, from 1 s on),
/// then the network heals, the servers may all restart, and each client's appends are checked;
/// the Raft state must stay below 8 × `maxraftstate` (or no snapshot may exist without one), and
/// the whole history must be linearizable.
pub async fn generic_test(sim: Sim, g: Generic) {
    let cfg = KvConfig::make(&sim, g.nservers, g.unreliable, g.maxraftstate);
    cfg.begin(&g.title());
    let log = OpLog::new();
    let ck = cfg.make_client(&cfg.all());
    let done_partitioner = Rc::new(Cell::new(false));
    let done_clients = Rc::new(Cell::new(false));
    for _ in 0..3 {
        done_clients.set(false);
        done_partitioner.set(false);
        let clients: Vec<_> = (0..g.nclients)
            .map(|cli| {
                sim.spawn(generic_client(
                    cfg.clone(),
                    g,
                    cli,
                    log.clone(),
                    done_clients.clone(),
                ))
            })
            .collect();
        let mut partitions = None;
        if g.partitions {
            // Let the clients do some operations without interruption.
            cfg.sleep_ms(1000).await;
            partitions = Some(sim.spawn(partitioner(cfg.clone(), done_partitioner.clone())));
        }
        cfg.sleep_ms(5000).await;
        done_clients.set(true);
        done_partitioner.set(true);
        if let Some(partitioner) = partitions {
            partitioner.await;
            // A client may have submitted a request in a minority: it returns once that server
            // learns of a new term.
            cfg.connect_all();
            cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
        }
        if g.crash {
            for i in 0..g.nservers {
                cfg.shutdown_server(i);
            }
            cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
            for i in 0..g.nservers {
                cfg.start_server(i);
            }
            cfg.connect_all();
        }
        for (i, client) in clients.into_iter().enumerate() {
            let j = client.await;
            let key = i.to_string();
            let v = get(&cfg, &ck, &key, Some(&log), 0).await;
            if !g.randomkeys {
                check_clnt_appends(i, &v, j);
            }
        }
        if g.maxraftstate > 0 {
            // After the servers have processed every request and had time to snapshot.
            let sz = cfg.log_size();
            if sz as i64 > 8 * g.maxraftstate {
                fatal(format!(
                    "logs were not trimmed ({sz} > 8*{})",
                    g.maxraftstate
                ));
            }
        }
        if g.maxraftstate < 0 {
            let ssz = cfg.snapshot_size();
            if ssz > 0 {
                fatal(format!(
                    "snapshot too large ({ssz}), should not be used when maxraftstate = {}",
                    g.maxraftstate
                ));
            }
        }
    }
    log.check_linearizable();
    cfg.end();
    cfg.cleanup();
}

/// A duration as Go's `time.Duration` prints it (`33.333333ms`, `1.5s`).
pub fn go_duration(ns: u64) -> String {
    fn trimmed(whole: u64, frac: u64, digits: usize, unit: &str) -> String {
        let frac = format!("{frac:0digits$}");
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            format!("{whole}{unit}")
        } else {
            format!("{whole}.{frac}{unit}")
        }
    }
    match ns {
        0 => "0s".into(),
        ns if ns < 1_000 => format!("{ns}ns"),
        ns if ns < 1_000_000 => trimmed(ns / 1_000, ns % 1_000, 3, "µs"),
        ns if ns < 1_000_000_000 => trimmed(ns / 1_000_000, ns % 1_000_000, 6, "ms"),
        ns => trimmed(ns / 1_000_000_000, ns % 1_000_000_000, 9, "s"),
    }
}

/// Go's `GenericTestSpeed`: 1000 appends by one clerk must take less than a third of a heartbeat
/// interval (100 ms) each on average.
pub async fn generic_test_speed(sim: Sim, part: &str, maxraftstate: i64) {
    const NSERVERS: usize = 3;
    const NUM_OPS: u64 = 1000;
    let cfg = KvConfig::make(&sim, NSERVERS, false, maxraftstate);
    let ck = cfg.make_client(&cfg.all());
    cfg.begin(&format!("Test: ops complete fast enough ({part})"));
    // Once the first operation completes, a leader is elected and the servers serve.
    ck.get("x").await;
    let start = sim.now();
    for i in 0..NUM_OPS {
        ck.append("x", &format!("x 0 {i} y")).await;
    }
    let dur_ns = (sim.now() - start) * 1_000;
    let v = ck.get("x").await;
    check_clnt_appends(0, &v, NUM_OPS as usize);
    // The heartbeat interval should be about 100 ms; require at least 3 operations per interval.
    const HEARTBEAT_INTERVAL_NS: u64 = 100 * MS * 1_000;
    const OPS_PER_INTERVAL: u64 = 3;
    const TIME_PER_OP_NS: u64 = HEARTBEAT_INTERVAL_NS / OPS_PER_INTERVAL;
    if dur_ns > NUM_OPS * TIME_PER_OP_NS {
        fatal(format!(
            "Operations completed too slowly {}/op > {}/op\n",
            go_duration(dur_ns / NUM_OPS),
            go_duration(TIME_PER_OP_NS)
        ));
    }
    cfg.end();
    cfg.cleanup();
}

/// TestBasic3A: one client, five servers.
pub async fn basic_3a(sim: Sim) {
    generic_test(
        sim,
        Generic {
            part: "3A",
            nclients: 1,
            nservers: 5,
            unreliable: false,
            crash: false,
            partitions: false,
            maxraftstate: -1,
            randomkeys: false,
        },
    )
    .await;
}

/// TestSpeed3A.
pub async fn speed_3a(sim: Sim) {
    generic_test_speed(sim, "3A", -1).await;
}

/// The 3A `GenericTest` with five servers and no snapshots: `nclients` clients, `unreliable`,
/// `crash`, `partitions`.
fn generic_3a(nclients: usize, unreliable: bool, crash: bool, partitions: bool) -> Generic {
    Generic {
        part: "3A",
        nclients,
        nservers: 5,
        unreliable,
        crash,
        partitions,
        maxraftstate: -1,
        randomkeys: false,
    }
}

/// TestConcurrent3A: five clients.
pub async fn concurrent_3a(sim: Sim) {
    generic_test(sim, generic_3a(5, false, false, false)).await;
}

/// TestUnreliable3A: five clients, unreliable network.
pub async fn unreliable_3a(sim: Sim) {
    generic_test(sim, generic_3a(5, true, false, false)).await;
}

/// TestUnreliableOneKey3A: five clients append ten elements each to one key over an unreliable
/// network; each client's elements must be there once each, in order.
pub async fn unreliable_one_key_3a(sim: Sim) {
    const NSERVERS: usize = 3;
    let cfg = KvConfig::make(&sim, NSERVERS, true, -1);
    let ck = cfg.make_client(&cfg.all());
    cfg.begin("Test: concurrent append to same key, unreliable (3A)");
    put(&cfg, &ck, "k", "", None, 0).await;
    const NCLIENT: usize = 5;
    const UPTO: usize = 10;
    let clients: Vec<_> = (0..NCLIENT)
        .map(|me| {
            let cfg = cfg.clone();
            sim.spawn(async move {
                let myck = cfg.make_client(&cfg.all());
                for n in 0..UPTO {
                    append(&cfg, &myck, "k", &element(me, n), None, 0).await;
                }
                cfg.delete_client(&myck);
            })
        })
        .collect();
    for client in clients {
        client.await;
    }
    let counts = vec![UPTO; NCLIENT];
    let vx = get(&cfg, &ck, "k", None, 0).await;
    check_concurrent_appends(&vx, &counts);
    cfg.end();
    cfg.cleanup();
}

/// TestOnePartition3A: with the leader in a minority, a clerk of the majority makes progress,
/// clerks of the minority do not (for a second), and both finish once the partition heals.
pub async fn one_partition_3a(sim: Sim) {
    const NSERVERS: usize = 5;
    let cfg = KvConfig::make(&sim, NSERVERS, false, -1);
    let ck = cfg.make_client(&cfg.all());
    put(&cfg, &ck, "1", "13", None, 0).await;

    cfg.begin("Test: progress in majority (3A)");
    let (p1, p2) = cfg.make_partition();
    cfg.partition(&p1, &p2);
    let ckp1 = cfg.make_client(&p1); // connected to p1
    let ckp2a = cfg.make_client(&p2); // connected to p2
    let ckp2b = cfg.make_client(&p2); // connected to p2
    put(&cfg, &ckp1, "1", "14", None, 0).await;
    check(&cfg, &ckp1, "1", "14").await;
    cfg.end();

    cfg.begin("Test: no progress in minority (3A)");
    let mut done0 = {
        let (cfg, ck) = (cfg.clone(), ckp2a.clone());
        sim.spawn(async move { put(&cfg, &ck, "1", "15", None, 0).await })
    };
    let done1 = {
        let (cfg, ck) = (cfg.clone(), ckp2b.clone());
        sim.spawn(async move { get(&cfg, &ck, "1", None, 0).await }) // a different clerk in p2
    };
    cfg.sleep_ms(1000).await;
    if done0.is_finished() {
        fatal("Put in minority completed");
    }
    if done1.is_finished() {
        fatal("Get in minority completed");
    }
    check(&cfg, &ckp1, "1", "14").await;
    put(&cfg, &ckp1, "1", "16", None, 0).await;
    check(&cfg, &ckp1, "1", "16").await;
    cfg.end();

    cfg.begin("Test: completion after heal (3A)");
    cfg.connect_all();
    cfg.connect_client(&ckp2a, &cfg.all());
    cfg.connect_client(&ckp2b, &cfg.all());
    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    if !finishes_within(&sim, &mut done0, 30 * 100).await {
        fatal("Put did not complete");
    }
    // Go only looks at the Get (a select with a default case): it may still be going on.
    check(&cfg, &ck, "1", "15").await;
    cfg.end();
    cfg.cleanup();
}

/// TestManyPartitionsOneClient3A: one client, a partitioner.
pub async fn many_partitions_one_client_3a(sim: Sim) {
    generic_test(sim, generic_3a(1, false, false, true)).await;
}

/// TestManyPartitionsManyClients3A: five clients, a partitioner.
pub async fn many_partitions_many_clients_3a(sim: Sim) {
    generic_test(sim, generic_3a(5, false, false, true)).await;
}

/// TestPersistOneClient3A: one client, every server restarted after each round.
pub async fn persist_one_client_3a(sim: Sim) {
    generic_test(sim, generic_3a(1, false, true, false)).await;
}

/// TestPersistConcurrent3A: five clients, restarts.
pub async fn persist_concurrent_3a(sim: Sim) {
    generic_test(sim, generic_3a(5, false, true, false)).await;
}

/// TestPersistConcurrentUnreliable3A: five clients, unreliable network, restarts.
pub async fn persist_concurrent_unreliable_3a(sim: Sim) {
    generic_test(sim, generic_3a(5, true, true, false)).await;
}

/// TestPersistPartition3A: five clients, restarts, a partitioner.
pub async fn persist_partition_3a(sim: Sim) {
    generic_test(sim, generic_3a(5, false, true, true)).await;
}

/// TestPersistPartitionUnreliable3A: five clients, unreliable network, restarts, a partitioner.
pub async fn persist_partition_unreliable_3a(sim: Sim) {
    generic_test(sim, generic_3a(5, true, true, true)).await;
}

/// TestPersistPartitionUnreliableLinearizable3A: fifteen clients on random keys, seven servers,
/// unreliable network, restarts, a partitioner; checked by linearizability alone.
pub async fn persist_partition_unreliable_linearizable_3a(sim: Sim) {
    generic_test(
        sim,
        Generic {
            nservers: 7,
            randomkeys: true,
            ..generic_3a(15, true, true, true)
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        assert_eq!(go_duration(33_333_333), "33.333333ms");
        assert_eq!(go_duration(10_000_000), "10ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(2_500), "2.5µs");
        assert_eq!(go_duration(0), "0s");
    }
}
