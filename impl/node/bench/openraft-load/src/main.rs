//! `openraft-load`: committed writes per second and their latency for a three-node openraft cluster in one
//! process, set up as openraft's own `bench-minimal` is (each node a task on one tokio runtime, the network
//! a function call into the target node, storage in memory) and loaded as `raft-bench --tier 1` loads
//! raft-node's runtime: `--clients` closed-loop writers, each with one 8-byte write outstanding, awaiting
//! `client_write` on the leader.
//!
//! The store and state machine are this crate's own: they keep entries as values, never encoded (the
//! crates.io `openraft-memstore` encodes each entry as JSON, which would count against openraft). Nothing is
//! encoded on the way between nodes either, where tier 1 encodes and decodes every message: the setup
//! favours openraft.
//!
//! A run fails unless every node has applied every write answered, within 10 s of the last answer.
//!
//! Prints `bench: openraft clients=<n> workers=<n> ops=<n> secs=<s> ops_per_sec=<n> p50_us=<n> p99_us=<n>
//! msgs_per_op=<x>`, where messages are counted as raft-bench counts them: each AppendEntries or vote
//! request is one message and its reply another.

#[path = "../../closed_loop.rs"]
mod closed_loop;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Config, EmptyNode, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, SnapshotPolicy, StorageError, StoredMembership, Vote,
};

/// A client's write: who wrote it and 8 bytes of value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    client: u64,
    value: [u8; 8],
}

/// What applying a write answers: the number of writes applied so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied(u64);

openraft::declare_raft_types!(
    pub Cfg:
        D = Write,
        R = Applied,
        NodeId = u64,
        Node = EmptyNode,
        Entry = Entry<Cfg>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

type Raft = openraft::Raft<Cfg>;
type NodeId = u64;

#[derive(Parser)]
#[command(
    name = "openraft-load",
    about = "Closed-loop writes against three openraft nodes in memory: writes/s, p50 and p99"
)]
struct Cli {
    /// Concurrent writers, each with one write outstanding.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    clients: u64,
    /// How long to measure, in seconds (after the leader has committed a first write).
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Worker threads of the tokio runtime that runs the nodes and the writers.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    workers: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !closed_loop::secs_in_range(cli.secs) {
        eprintln!("error: --secs must be above 0 and at most 3600");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.workers as usize)
        .enable_all()
        .build();
    closed_loop::run_and_report(runtime, run(&cli))
}

async fn run(cli: &Cli) -> Result<String, String> {
    let config = Config {
        // No snapshots during a run of seconds, as `raft-bench` takes none: the log stays in memory.
        snapshot_policy: SnapshotPolicy::Never,
        ..Config::default()
    };
    let config = Arc::new(config.validate().map_err(|e| e.to_string())?);
    let router = Router::default();
    let mut rafts = Vec::new();
    // Each node's count of the writes it applied, read once the writers are done.
    let applied: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::default()).collect();
    for id in 0..3 {
        let raft = Raft::new(
            id,
            config.clone(),
            router.clone(),
            LogStore::default(),
            StateMachine {
                applied: applied[id as usize].clone(),
                ..StateMachine::default()
            },
        )
        .await
        .map_err(|e| format!("node {id} did not start: {e}"))?;
        rafts.push(raft);
    }
    if router.rafts.set(rafts.clone()).is_err() {
        unreachable!("the router's nodes are set once, here");
    }
    rafts[0]
        .initialize(BTreeMap::from([0, 1, 2].map(|id| (id, EmptyNode {}))))
        .await
        .map_err(|e| format!("the cluster did not initialize: {e}"))?;
    let leader = rafts[0]
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .map_err(|e| format!("no leader within 10 s: {e}"))?
        .current_leader
        .expect("waited for");
    let leader = rafts[leader as usize].clone();
    // One write before the clock starts: the leader has committed in its term.
    leader
        .client_write(Write {
            client: u64::MAX,
            value: [0; 8],
        })
        .await
        .map_err(|e| format!("the first write failed: {e}"))?;

    let measure = Duration::from_secs_f64(cli.secs);
    let messages_before = router.messages.load(Ordering::Relaxed);
    let begin = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for client in 0..cli.clients {
        let leader = leader.clone();
        writers.spawn(async move {
            let mut latencies_ns = Vec::new();
            let mut n = 0u64;
            while begin.elapsed() < measure {
                n += 1;
                let start = Instant::now();
                leader
                    .client_write(Write {
                        client,
                        value: n.to_le_bytes(),
                    })
                    .await
                    .map_err(|e| format!("a write failed: {e}"))?;
                latencies_ns.push(start.elapsed().as_nanos() as u64);
            }
            Ok::<_, String>(latencies_ns)
        });
    }
    let mut latencies_ns = Vec::new();
    while let Some(done) = writers.join_next().await {
        latencies_ns.extend(done.map_err(|e| e.to_string())??);
    }
    let secs = begin.elapsed().as_secs_f64();
    let messages = router.messages.load(Ordering::Relaxed) - messages_before;
    // Every write answered was applied by the leader; the run counts only if the followers apply them too
    // (the cluster replicated, rather than the leader committing alone).
    let answered = latencies_ns.len() as u64 + 1;
    let caught_up_by = Instant::now() + Duration::from_secs(10);
    while applied.iter().any(|a| a.load(Ordering::Relaxed) < answered) {
        if Instant::now() > caught_up_by {
            let counts: Vec<u64> = applied.iter().map(|a| a.load(Ordering::Relaxed)).collect();
            return Err(format!(
                "{answered} writes answered, but the nodes applied {counts:?} within 10 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for raft in &rafts {
        raft.shutdown().await.map_err(|e| e.to_string())?;
    }
    if latencies_ns.is_empty() {
        return Err("no write completed".into());
    }
    latencies_ns.sort_unstable();
    // As raft-bench computes them.
    let at = |q: f64| closed_loop::quantile_us(&latencies_ns, q);
    let ops = latencies_ns.len();
    Ok(format!(
        "bench: openraft clients={} workers={} ops={ops} secs={secs:.2} ops_per_sec={:.0} p50_us={} p99_us={} msgs_per_op={:.2}",
        cli.clients,
        cli.workers,
        ops as f64 / secs,
        at(0.50),
        at(0.99),
        messages as f64 / ops as f64
    ))
}

/// The network: a call into the target node's `Raft`, counting two messages (the request and its reply)
/// per call.
#[derive(Clone, Default)]
struct Router {
    rafts: Arc<OnceLock<Vec<Raft>>>,
    messages: Arc<AtomicU64>,
}

impl Router {
    /// The node `target`, once the cluster is set up.
    fn target(&self, target: NodeId) -> Option<&Raft> {
        self.messages.fetch_add(2, Ordering::Relaxed);
        self.rafts.get().and_then(|r| r.get(target as usize))
    }
}

/// The error of a call made before the cluster is set up.
fn not_set_up<E: std::error::Error>() -> RPCError<NodeId, EmptyNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(
        "the cluster is not yet set up",
    )))
}

/// One node's connection to `target`.
struct Connection {
    router: Router,
    target: NodeId,
}

impl RaftNetworkFactory<Cfg> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

impl RaftNetwork<Cfg> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Cfg>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, EmptyNode, RaftError<NodeId>>> {
        let target = self.target;
        self.router
            .target(target)
            .ok_or_else(not_set_up)?
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Cfg>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, EmptyNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let target = self.target;
        self.router
            .target(target)
            .ok_or_else(not_set_up)?
            .install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, EmptyNode, RaftError<NodeId>>> {
        let target = self.target;
        self.router
            .target(target)
            .ok_or_else(not_set_up)?
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }
}

/// A node's log and vote, in memory.
#[derive(Default)]
struct Log {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<Cfg>>,
}

/// The log store; its readers share it.
#[derive(Clone, Default)]
struct LogStore(Arc<Mutex<Log>>);

impl LogStore {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().expect("no thread panics holding the log")
    }
}

impl RaftLogReader<Cfg> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Cfg>>, StorageError<NodeId>> {
        Ok(self
            .log()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<Cfg> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<Cfg>, StorageError<NodeId>> {
        let log = self.log();
        let last = log.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: log.last_purged,
            last_log_id: last.or(log.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.log().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Cfg>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<Cfg>> + Send,
        I::IntoIter: Send,
    {
        {
            let mut log = self.log();
            for entry in entries {
                log.entries.insert(entry.log_id.index, entry);
            }
        }
        // In memory, the entries are "durable" as soon as they are in the map.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.log();
        let kept = log.entries.split_off(&(log_id.index + 1));
        log.entries = kept;
        log.last_purged = Some(log_id);
        Ok(())
    }
}

/// The last snapshot built or installed: its meta and its data (the count, 8 bytes).
type Shared = Arc<Mutex<Option<(SnapshotMeta<NodeId, EmptyNode>, Vec<u8>)>>>;

/// The state machine: it counts the writes it applies and keeps nothing else of them, as `raft-bench`'s
/// storage keeps nothing.
#[derive(Default)]
struct StateMachine {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, EmptyNode>,
    /// Writes applied (shared with the harness, which reads it once the writers are done).
    applied: Arc<AtomicU64>,
    /// The last snapshot built or installed.
    snapshot: Shared,
}

/// A snapshot of the state machine as it stood when the builder was asked for.
struct SnapshotBuilder {
    meta: SnapshotMeta<NodeId, EmptyNode>,
    applied: u64,
    snapshot: Shared,
}

impl RaftSnapshotBuilder<Cfg> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Cfg>, StorageError<NodeId>> {
        let data = self.applied.to_le_bytes().to_vec();
        *self.snapshot.lock().expect("no thread panics holding it") =
            Some((self.meta.clone(), data.clone()));
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<Cfg> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, EmptyNode>), StorageError<NodeId>>
    {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<Cfg>> + Send,
        I::IntoIter: Send,
    {
        let mut answers = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(_) => {
                    self.applied.fetch_add(1, Ordering::Relaxed);
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m)
                }
            }
            answers.push(Applied(self.applied.load(Ordering::Relaxed)));
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let applied = self.applied.load(Ordering::Relaxed);
        SnapshotBuilder {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id: format!("{applied}"),
            },
            applied,
            snapshot: self.snapshot.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, EmptyNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let bytes: [u8; 8] = data.as_slice().try_into().map_err(|_| {
            StorageError::from_io_error(
                openraft::ErrorSubject::Snapshot(Some(meta.signature())),
                openraft::ErrorVerb::Read,
                std::io::Error::other("a snapshot is 8 bytes"),
            )
        })?;
        self.applied
            .store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        *self.snapshot.lock().expect("no thread panics holding it") = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<Cfg>>, StorageError<NodeId>> {
        let snapshot = self.snapshot.lock().expect("no thread panics holding it");
        Ok(snapshot.clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
