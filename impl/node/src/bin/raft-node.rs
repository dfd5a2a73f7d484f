//! `raft-node`: one Raft node as a process, serving the replicated key-value store (or the built-in command
//! log); or a whole local cluster; or a client of one.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use raft::{ConfChange, Config, Envelope};
use raft_node::client::{self, AdminRequest, Client, Reply, Request};
use raft_node::host::{Host, Settings, StateMachine, TestBug};
use raft_node::machine::CommandLog;
use raft_node::runtime::{InboxBytes, Input, Runtime};
use raft_node::storage::disk::{Disk, FsDisk, WriteBackDisk};
use raft_node::storage::{FileStorage, Identity, Options, Storage};
use raft_node::tcp::{self, Limits, Secret, TcpTransport, Wire};
use raft_node::trace::Tracer;

/// Node ids and addresses: `1=127.0.0.1:7001,2=127.0.0.1:7002,...`.
#[derive(Clone, Debug)]
struct Addrs(BTreeMap<u64, SocketAddr>);

fn parse_addrs(text: &str) -> Result<Addrs, String> {
    let mut addrs = BTreeMap::new();
    for item in text.split(',').filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("'{id}' is not a node id (a number)"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("'{addr}' is not an address (HOST:PORT, e.g. 127.0.0.1:7001)"))?;
        if addrs.insert(id, addr).is_some() {
            return Err(format!("node {id} is listed twice"));
        }
    }
    if addrs.is_empty() {
        return Err("no nodes listed".into());
    }
    Ok(Addrs(addrs))
}

#[derive(Parser)]
#[command(
    name = "raft-node",
    about = "Runs a Raft node (the raft core with durable storage and TCP), a local cluster, or a client.",
    long_about = "Runs a Raft node: the raft core with a write-ahead log and snapshots in --data-dir, TCP \
between peers, and a replicated key-value store with exactly-once writes and linearizable reads (or, with \
--machine log, a state machine that keeps the log of every command applied).\n\n\
A node:         raft-node --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data-dir DIR \
--secret-file FILE\n\
A local cluster: raft-node local-cluster --nodes 3 --dir DIR\n\
A client:        raft-node kv --nodes 1=127.0.0.1:7101,... put KEY VALUE   (and: get, append, cas; status)\n\n\
Clients talk to a node on its client address (--client-addr; by default its peer port + 100).",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args, Clone)]
struct NodeArgs {
    /// This node's id: one of the ids in --peers.
    #[arg(long, required = true)]
    id: Option<u64>,
    /// The nodes of the cluster with their peer addresses, this one included: 1=HOST:PORT,2=HOST:PORT,...
    /// On a node's first start (an empty data directory) without --join, these are the voters of a new
    /// cluster. After that the configuration comes from the node's log and snapshot, and changes only by
    /// `raft-node admin`. The addresses given here are where this node reaches the servers they name;
    /// the configuration's addresses reach the others (servers added later).
    #[arg(long, required = true, value_parser = parse_addrs)]
    peers: Option<Addrs>,
    /// This node joins a running cluster: it starts with no configuration, and waits (without ever
    /// standing for election) until the leader adds it (`raft-node admin add-learner`) and sends it the
    /// log. --peers then lists where to reach the cluster's nodes, and this one. Ignored once the data
    /// directory holds a state.
    #[arg(long)]
    join: bool,
    /// The directory for this node's log and snapshot (created if missing; one per node).
    #[arg(long, required = true)]
    data_dir: Option<PathBuf>,
    /// Where clients reach this node [default: its peer address with the port + 100].
    #[arg(long)]
    client_addr: Option<SocketAddr>,
    /// The cluster's id: nodes of another cluster are refused, and so is another cluster's data directory.
    #[arg(long, default_value_t = 1)]
    cluster: u64,
    /// A file holding the cluster's secret (at least 16 bytes; one trailing newline is not part of it),
    /// the same on every node: peers prove to each other that they hold it when they connect, and a peer
    /// that does not is refused. Make one with: head -c 32 /dev/urandom | base64 > FILE
    #[arg(long, required = true)]
    secret_file: Option<PathBuf>,
    /// The length of one tick of the core's clock, in milliseconds (elections take 30 to 60 ticks,
    /// heartbeats go every 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    tick_ms: u64,
    /// How long the node's loop polls its inbox, in microseconds, when it finds it empty, before it
    /// blocks (`Runtime::poll`): less latency per write with few clients, for a core's time while it polls.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    poll_us: u64,
    /// The state machine is snapshotted (and the log compacted) every this many entries; 0: never.
    #[arg(long, default_value_t = 1000)]
    snapshot_every: u64,
    /// PreVote: a node whose election timer fires asks whether a majority would vote for it before it
    /// raises its term (`raft::Config::pre_vote`). Every node of a cluster should run with the same value.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pre_vote: bool,
    /// CheckQuorum and the leader lease: a leader that has not heard from a majority within an election
    /// timeout steps down, and a node that hears from its leader ignores vote requests of higher terms
    /// (`raft::Config::check_quorum`). Every node of a cluster should run with the same value.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    check_quorum: bool,
    /// For tests only: the disk under the node's storage. `fs` is the file system. `power-loss` keeps
    /// every write that was not synced inside the process (a write-back cache that reaches the file only at
    /// the sync), so that killing the process with SIGKILL loses exactly what a power cut would lose;
    /// `power-loss-no-sync` also makes every sync do nothing, for showing that a test notices.
    #[arg(long, value_enum, default_value_t = TestDisk::Fs)]
    test_disk: TestDisk,
    /// The state machine the node serves: the key-value store (`raft-node kv`), or the log of every command
    /// applied (`raft-node propose` and `get`).
    #[arg(long, value_enum, default_value_t = Machine::Kv)]
    machine: Machine,
    /// For tests only: a deliberate bug, so that a test can show it notices. `local-reads`: a leader
    /// answers reads at once from its own state, without ReadIndex (a deposed leader answers stale reads).
    /// `send-before-save`: a round's messages leave before its save is synced (the sync comes with the
    /// next round). `lossy-decode`: the receiving transport loses the last entry of one AppendEntries in a
    /// hundred that carry entries (Raft stays safe: the follower acknowledges less and the leader sends it
    /// again).
    #[arg(long, value_enum)]
    test_bug: Option<TestBugArg>,
    /// Write the node's trace to this file (specs/trace-format.md), for `tracecheck` to hold against the
    /// model with the other nodes' traces; a restart appends to it.
    #[arg(long)]
    trace: Option<PathBuf>,
}

/// See `--test-bug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TestBugArg {
    LocalReads,
    SendBeforeSave,
    LossyDecode,
}

/// See `--machine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Machine {
    Kv,
    Log,
}

/// See `--test-disk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TestDisk {
    Fs,
    PowerLoss,
    PowerLossNoSync,
}

#[derive(Subcommand)]
enum Command {
    /// Starts a cluster of nodes on this machine, one process each, and says how to talk to it.
    LocalCluster {
        /// How many nodes.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
        nodes: u64,
        /// The directory for the nodes' data directories (node-1, node-2, ...).
        #[arg(long)]
        dir: PathBuf,
        /// Node i listens for peers on BASE-PORT + i - 1, for clients on that + 100.
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
        /// The state machine the nodes serve.
        #[arg(long, value_enum, default_value_t = Machine::Kv)]
        machine: Machine,
    },
    /// A client of the key-value store: writes exactly once (a retried write is applied once), reads
    /// linearizable. Prints `get`'s value on one line (an empty line for a missing key) and `cas`'s outcome
    /// (`true` or `false`); `put` and `append` print nothing. Exits 0 once the answer is definite.
    Kv {
        /// The nodes' client addresses: 1=HOST:PORT,... (the leader is found from there).
        #[arg(long, value_parser = parse_addrs)]
        nodes: Addrs,
        /// Give up after this many seconds without a definite answer (a write then may or may not have
        /// been applied).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
        #[command(subcommand)]
        op: KvOp,
    },
    /// Proposes a command; waits until it commits and prints its index.
    Propose {
        /// The nodes' client addresses: 1=HOST:PORT,... (the leader is found from there).
        #[arg(long, value_parser = parse_addrs)]
        nodes: Addrs,
        /// The command (any text).
        command: String,
    },
    /// Prints each node's metrics: term, role, leader, commit and applied index, log, lag of followers.
    Status {
        /// The nodes' client addresses: 1=HOST:PORT,...
        #[arg(long, value_parser = parse_addrs)]
        nodes: Addrs,
    },
    /// Administers the cluster: changes its membership, or hands its leadership over.
    Admin {
        /// The nodes' client addresses: 1=HOST:PORT,... (the leader is found from there).
        #[arg(long, value_parser = parse_addrs)]
        nodes: Addrs,
        /// The file holding the cluster's secret (as the nodes' --secret-file): a node takes an
        /// administrative request only from a client that proves it holds it.
        #[arg(long)]
        secret_file: PathBuf,
        #[command(subcommand)]
        op: AdminOp,
    },
    /// Prints the command applied at an index on one node.
    Get {
        /// The node's client address.
        #[arg(long)]
        node: SocketAddr,
        /// The index.
        index: u64,
    },
}

/// An administrative operation. A membership change waits until it commits (at most --timeout), prints the
/// new configuration, and exits 0; asked again after it committed, it finds it done.
#[derive(Subcommand, Clone, Debug)]
enum AdminOp {
    /// Adds node ID, reached by its peers at ADDR (HOST:PORT), as a learner: it receives the log but
    /// neither votes nor counts. Start it first: raft-node --id ID --join --peers (the cluster's nodes and
    /// ID=ADDR) ... Promote it once it has caught up (`status` shows its lag on the leader).
    AddLearner {
        /// The new node's id.
        id: u64,
        /// Where its peers reach it.
        addr: SocketAddr,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
    /// Makes learner ID a voter.
    Promote {
        /// The learner.
        id: u64,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
    /// Removes node ID, a voter or a learner, from the cluster. Once the change commits, the removed node
    /// takes no part (a removed leader steps down) and can be stopped.
    Remove {
        /// The node to remove.
        id: u64,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
    /// Hands the leadership over to node ID (TimeoutNow, once it holds the leader's whole log); waits until
    /// ID leads, at most 10 s, and prints its term. Writes that keep coming may delay the hand-over: the
    /// leader waits for ID to hold them too, and is asked again if it gave up.
    TransferLeader {
        /// The node to lead.
        id: u64,
    },
}

/// An operation on the key-value store.
#[derive(Subcommand, Clone, Debug)]
enum KvOp {
    /// Sets KEY to VALUE.
    Put { key: String, value: String },
    /// Prints KEY's value.
    Get { key: String },
    /// Appends VALUE to KEY's value.
    Append { key: String, value: String },
    /// Sets KEY to NEW if its value is EXPECTED (a missing key's is empty); prints whether it did.
    Cas {
        key: String,
        expected: String,
        new: String,
    },
}

/// The bytes of peers' messages a node's inbox holds before its receivers wait.
const INBOX_BYTES: usize = 64 << 20;

/// `RAFT_MUTANT` names a deliberate bug of the core, for tests of the tests (`raft-chaos --mutant`): honoured
/// only by a build with the `mutants` feature, and refused by any other, so that it never silently does
/// nothing.
fn check_mutant() -> Result<(), Failure> {
    let Ok(name) = std::env::var("RAFT_MUTANT") else {
        return Ok(());
    };
    #[cfg(feature = "mutants")]
    {
        use raft::mutants::Mutant;
        if !Mutant::ALL.iter().any(|m| m.name() == name) {
            let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
            return Err(usage(format!(
                "RAFT_MUTANT={name} is no mutant; the mutants: {}",
                names.join(", ")
            )));
        }
        eprintln!("raft-node: the core's mutant {name} is on (RAFT_MUTANT), for tests only");
        Ok(())
    }
    #[cfg(not(feature = "mutants"))]
    Err(usage(format!(
        "RAFT_MUTANT={name} is set, but this raft-node was built without the mutants feature \
         (cargo build --release -p raft-node --features mutants)"
    )))
}

fn main() -> ExitCode {
    if let Err(Failure(code, message)) = check_mutant() {
        eprintln!("raft-node: {message}");
        return ExitCode::from(code);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        None => run_node(cli.node),
        Some(Command::LocalCluster {
            nodes,
            dir,
            base_port,
            machine,
        }) => local_cluster(nodes, &dir, base_port, machine),
        Some(Command::Kv { nodes, timeout, op }) => kv(&nodes, op, Duration::from_secs(timeout)),
        Some(Command::Propose { nodes, command }) => propose(&nodes, command.into_bytes()),
        Some(Command::Status { nodes }) => status(&nodes),
        Some(Command::Get { node, index }) => get(node, index),
        Some(Command::Admin {
            nodes,
            secret_file,
            op,
        }) => Secret::read(&secret_file)
            .map_err(|e| usage(format!("cannot use --secret-file: {e}")))
            .and_then(|secret| admin(&nodes, &secret, op)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// An exit status and what to say.
struct Failure(u8, String);

fn usage(message: impl Into<String>) -> Failure {
    Failure(2, message.into())
}

fn run_node(args: NodeArgs) -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let (id, Addrs(peers), dir) = (
        args.id.expect("required"),
        args.peers.expect("required"),
        args.data_dir.expect("required"),
    );
    let secret_file = args.secret_file.expect("required");
    let secret =
        Secret::read(&secret_file).map_err(|e| usage(format!("cannot use --secret-file: {e}")))?;
    let Some(&peer_addr) = peers.get(&id) else {
        return Err(usage(format!("--id {id} is not one of the ids in --peers")));
    };
    let client_addr = args.client_addr.unwrap_or_else(|| {
        let mut a = peer_addr;
        a.set_port(peer_addr.port().saturating_add(100));
        a
    });
    let unusable = |e: &dyn std::fmt::Display| {
        usage(format!("cannot use data directory {}: {e}", dir.display()))
    };
    let mut disk: Box<dyn Disk> = match args.test_disk {
        TestDisk::Fs => Box::new(FsDisk::new(&dir).map_err(|e| unusable(&e))?),
        TestDisk::PowerLoss | TestDisk::PowerLossNoSync => {
            let lie = args.test_disk == TestDisk::PowerLossNoSync;
            tracing::warn!("--test-disk {:?}: for tests only", args.test_disk);
            Box::new(WriteBackDisk::new(&dir, lie).map_err(|e| unusable(&e))?)
        }
    };
    let identity = Identity {
        cluster: args.cluster,
        node: id,
    };
    let (storage, recovered) =
        FileStorage::open(&mut *disk, identity, Options::default()).map_err(|e| unusable(&e))?;
    let peer_listener = TcpListener::bind(peer_addr)
        .map_err(|e| usage(format!("cannot listen for peers on {peer_addr}: {e}")))?;
    let client_listener = TcpListener::bind(client_addr).map_err(|e| {
        usage(format!(
            "cannot listen for clients on {client_addr} (--client-addr): {e}"
        ))
    })?;
    // `--peers` seeds the configuration of a new cluster only: a node that joins one starts without, and a
    // node that restarts has its configuration in its state.
    let restarted = recovered.state.is_some();
    let seeds = if restarted || args.join {
        Vec::new()
    } else {
        peers.keys().copied().collect()
    };
    let settings = Settings {
        id,
        peers: seeds,
        config: Config {
            pre_vote: args.pre_vote,
            check_quorum: args.check_quorum,
            ..Config::default()
        },
        seed: id
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        snapshot_every: args.snapshot_every,
    };
    let tracer = match &args.trace {
        Some(path) => Some(
            Tracer::open(
                path,
                peers.len() as u64,
                id,
                raft_trace::format::Features::of(&settings.config),
            )
            .map_err(|e| usage(format!("cannot use --trace {}: {e}", path.display())))?,
        ),
        None => None,
    };
    // The host's bugs go to the host; the transport's is this binary's receive path.
    let test_bug = args.test_bug.and_then(|bug| match bug {
        TestBugArg::LocalReads => Some(TestBug::LocalReads),
        TestBugArg::SendBeforeSave => Some(TestBug::SendBeforeSave),
        TestBugArg::LossyDecode => None,
    });
    let lossy_decode = args.test_bug == Some(TestBugArg::LossyDecode);
    if lossy_decode {
        tracing::warn!("this node has a deliberate bug, for tests only: lossy-decode");
    }
    let run = Run {
        cluster: args.cluster,
        tick: Duration::from_millis(args.tick_ms),
        poll: Duration::from_micros(args.poll_us),
        tracer: tracer.as_ref().map(|(t, _)| t.clone()),
        lossy_decode,
    };
    let listeners = Listeners {
        peer: peer_listener,
        peer_addr,
        client: client_listener,
        client_addr,
    };
    let seed_addresses: BTreeMap<u64, String> =
        peers.iter().map(|(&i, a)| (i, a.to_string())).collect();
    match args.machine {
        Machine::Kv => {
            let mut host = Host::new(&settings, storage, recovered, raft_kv::Store::new())
                .map_err(|e| unusable(&e))?;
            host.set_test_bug(test_bug);
            host.seed_addresses(seed_addresses);
            if let Some((tracer, next_seq)) = tracer {
                host.trace(tracer, next_seq);
            }
            serve(host, listeners, &run, &peers, secret, restarted, &dir)
        }
        Machine::Log => {
            let mut host = Host::new(&settings, storage, recovered, CommandLog::default())
                .map_err(|e| unusable(&e))?;
            host.set_test_bug(test_bug);
            host.seed_addresses(seed_addresses);
            if let Some((tracer, next_seq)) = tracer {
                host.trace(tracer, next_seq);
            }
            serve(host, listeners, &run, &peers, secret, restarted, &dir)
        }
    }
}

/// How a node runs.
struct Run {
    cluster: u64,
    tick: Duration,
    poll: Duration,
    tracer: Option<Arc<Tracer>>,
    /// The deliberate bug `--test-bug lossy-decode`: the receiving transport loses the last entry of one
    /// AppendEntries in a hundred that carry entries.
    lossy_decode: bool,
}

/// Where a node listens.
struct Listeners {
    peer: TcpListener,
    peer_addr: SocketAddr,
    client: TcpListener,
    client_addr: SocketAddr,
}

/// Runs `host` until it stops: its peers' and clients' listeners, its transport and its loop.
fn serve<S: Storage, M: StateMachine>(
    host: Host<S, M, client::Ticket>,
    listeners: Listeners,
    run: &Run,
    peers: &BTreeMap<u64, SocketAddr>,
    secret: Secret,
    restarted: bool,
    dir: &Path,
) -> Result<(), Failure> {
    let id = host.node().id();
    let Listeners {
        peer: peer_listener,
        peer_addr,
        client: client_listener,
        client_addr,
    } = listeners;
    let (inbox, inputs) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let wire = Wire {
        me: id,
        cluster: run.cluster,
        peers: peers.keys().copied().collect(),
        secret,
        limits: Limits::default(),
    };
    let inbox_bytes = InboxBytes::new(INBOX_BYTES);
    let deliver = {
        let (inbox, bound, stop) = (inbox.clone(), inbox_bytes.clone(), stop.clone());
        let (tracer, lossy_decode) = (run.tracer.clone(), run.lossy_decode);
        let appends = Arc::new(AtomicU64::new(0));
        move |mut e: Envelope| {
            if lossy_decode {
                if let raft::Message::AppendEntries(a) = &mut e.message {
                    if !a.entries.is_empty() && appends.fetch_add(1, Ordering::Relaxed) % 100 == 99
                    {
                        a.entries.pop();
                    }
                }
            }
            // Reported before the node can act on it.
            if let Some(tracer) = &tracer {
                tracer.decoded(id, &e);
            }
            // While the loop is behind, wait: this peer's connection then pushes back.
            let weight = tcp::weight(&e);
            while !bound.reserve(weight, Duration::from_millis(100)) {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
            }
            inbox.send(Input::Message(e)).is_ok()
        }
    };
    tcp::listen(peer_listener, wire.clone(), stop.clone(), deliver)
        .map_err(|e| Failure(1, format!("cannot start the peer listener: {e}")))?;
    client::serve(
        client_listener,
        inbox,
        wire.limits.clone(),
        Some(wire.secret.clone()),
        stop,
    )
    .map_err(|e| Failure(1, format!("cannot start the client listener: {e}")))?;
    let on_send = run
        .tracer
        .clone()
        .map(|tracer| -> tcp::SendHook { Arc::new(move |e: &Envelope| tracer.sent(e)) });
    let transport = TcpTransport::start_with(&wire, peers, on_send);
    tracing::info!(
        node = id,
        "{} with peers on {peer_addr}, clients on {client_addr}, data in {}",
        if restarted { "restarted" } else { "started" },
        dir.display()
    );
    let runtime = Runtime {
        tick: run.tick,
        inbox_bytes: Some(inbox_bytes),
        poll: run.poll,
    };
    match runtime.run(host, inputs, transport, client::answer) {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure(1, format!("node {id} stopped: {e}"))),
    }
}

fn local_cluster(nodes: u64, dir: &Path, base_port: u16, machine: Machine) -> Result<(), Failure> {
    let port = |i: u64, offset: u16| {
        base_port
            .checked_add((i - 1) as u16 + offset)
            .ok_or_else(|| {
                usage(format!(
                    "--base-port {base_port} leaves no room for {nodes} nodes"
                ))
            })
    };
    let mut peers = Vec::new();
    let mut clients = Vec::new();
    for i in 1..=nodes {
        peers.push(format!("{i}=127.0.0.1:{}", port(i, 0)?));
        clients.push(format!("{i}=127.0.0.1:{}", port(i, 100)?));
    }
    let (peers, clients) = (peers.join(","), clients.join(","));
    std::fs::create_dir_all(dir)
        .map_err(|e| usage(format!("cannot use directory {}: {e}", dir.display())))?;
    // The cluster's secret: made once, kept beside the nodes' data.
    let secret = dir.join("secret");
    if !secret.exists() {
        let bytes: [u8; 32] = rand::random();
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&secret, text + "\n")
            .map_err(|e| Failure(1, format!("cannot write {}: {e}", secret.display())))?;
    }
    let exe =
        std::env::current_exe().map_err(|e| Failure(1, format!("cannot find myself: {e}")))?;
    let mut children = Vec::new();
    for i in 1..=nodes {
        let data = dir.join(format!("node-{i}"));
        let child = std::process::Command::new(&exe)
            .args(["--id", &i.to_string(), "--peers", &peers, "--data-dir"])
            .arg(&data)
            .arg("--secret-file")
            .arg(&secret)
            .args(["--machine", machine_name(machine)])
            .spawn()
            .map_err(|e| Failure(1, format!("cannot start node {i}: {e}")))?;
        children.push(child);
    }
    println!(
        "a cluster of {nodes} nodes is running (data in {}); Ctrl-C stops it.",
        dir.display()
    );
    println!("  peers:   {peers}");
    println!("  clients: {clients}");
    println!("talk to it:");
    match machine {
        Machine::Kv => {
            println!("  raft-node kv --nodes {clients} put a 1");
            println!("  raft-node kv --nodes {clients} get a");
            println!("  raft-node kv --nodes {clients} append a 2");
            println!("  raft-node kv --nodes {clients} cas a 12 3");
        }
        Machine::Log => {
            println!("  raft-node propose --nodes {clients} 'hello'");
            // Index 1 holds the first leader's empty entry, which applies no command.
            println!(
                "  raft-node get --node 127.0.0.1:{} INDEX    # the index propose printed",
                port(1, 100)?
            );
        }
    }
    println!("  raft-node status --nodes {clients}");
    println!(
        "  raft-node admin --nodes {clients} --secret-file {} transfer-leader 2",
        secret.display()
    );
    for mut child in children {
        let _ = child.wait();
    }
    Ok(())
}

fn connect(addr: SocketAddr) -> Result<Client, Failure> {
    Client::connect(addr, Duration::from_secs(5))
        .map_err(|e| Failure(1, format!("cannot reach {addr}: {e}")))
}

fn propose(Addrs(nodes): &Addrs, command: Vec<u8>) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut target = *nodes.keys().next().expect("parse_addrs lists one at least");
    while Instant::now() < deadline {
        let reply = connect(nodes[&target]).and_then(|mut c| {
            c.call(Request::Propose(command.clone()))
                .map_err(|e| Failure(1, e.to_string()))
        });
        match reply {
            Ok(Reply::Committed { index, .. }) => {
                println!("committed at index {index}");
                return Ok(());
            }
            Ok(Reply::NotLeader(Some(leader))) if nodes.contains_key(&leader) => target = leader,
            Ok(Reply::Lost) => {}
            Ok(other) => move_on(nodes, &mut target, Some(&other)),
            Err(_) => move_on(nodes, &mut target, None),
        }
    }
    Err(Failure(
        1,
        "no leader committed the command within 10 s".into(),
    ))
}

/// After an answer that names no leader (`what`, if any, is logged), or none: asks the next node, shortly.
fn move_on(nodes: &BTreeMap<u64, SocketAddr>, asked: &mut u64, what: Option<&dyn std::fmt::Debug>) {
    if let Some(what) = what {
        tracing::debug!("{asked}: {what:?}");
    }
    *asked = next_after(nodes, *asked);
    std::thread::sleep(Duration::from_millis(50));
}

fn next_after(nodes: &BTreeMap<u64, SocketAddr>, id: u64) -> u64 {
    nodes
        .range(id + 1..)
        .next()
        .or_else(|| nodes.iter().next())
        .map(|(&i, _)| i)
        .expect("not empty")
}

fn status(Addrs(nodes): &Addrs) -> Result<(), Failure> {
    println!("node  term  role       leader  commit  applied  last  snapshot  configuration  lag");
    for (&id, &addr) in nodes {
        match connect(addr).and_then(|mut c| {
            c.call(Request::Status)
                .map_err(|e| Failure(1, e.to_string()))
        }) {
            Ok(Reply::Status(s)) => println!(
                "{:<5} {:<5} {:<10} {:<7} {:<7} {:<8} {:<5} {:<9} {:<14} {}",
                s.id,
                s.term,
                format!("{:?}", s.role).to_lowercase(),
                s.leader.map_or("-".into(), |l| l.to_string()),
                s.commit_index,
                s.last_applied,
                s.last_index,
                s.snapshot_index,
                short(&s.membership),
                s.lag
                    .iter()
                    .map(|(p, l)| format!("{p}:{l}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Ok(other) => println!("{id:<5} answered {other:?}"),
            Err(Failure(_, e)) => println!("{id:<5} unreachable: {e}"),
        }
    }
    Ok(())
}

/// A configuration in a few characters: `v1,2,3` for its voters, `o1,2` for C_old's while joint, `l4`
/// for its learners.
fn short(m: &raft::Membership) -> String {
    let ids = |set: &std::collections::BTreeSet<u64>| {
        set.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    };
    let mut text = format!("v{}", ids(&m.voters));
    if m.is_joint() {
        text += &format!(" o{}", ids(&m.old_voters));
    }
    if !m.learners.is_empty() {
        text += &format!(" l{}", ids(&m.learners));
    }
    text
}

fn admin(nodes: &Addrs, secret: &Secret, op: AdminOp) -> Result<(), Failure> {
    let secs = Duration::from_secs;
    match op {
        AdminOp::TransferLeader { id } => transfer_leader(nodes, secret, id),
        AdminOp::AddLearner { id, addr, timeout } => change_membership(
            nodes,
            secret,
            ConfChange::AddLearner(id),
            BTreeMap::from([(id, addr.to_string())]),
            secs(timeout),
        ),
        AdminOp::Promote { id, timeout } => change_membership(
            nodes,
            secret,
            ConfChange::Promote(id),
            BTreeMap::new(),
            secs(timeout),
        ),
        AdminOp::Remove { id, timeout } => change_membership(
            nodes,
            secret,
            ConfChange::Remove(id),
            BTreeMap::new(),
            secs(timeout),
        ),
    }
}

/// Whether `status`, a leader's, shows `change` made and committed.
fn change_done(status: &raft_node::host::Status, change: &ConfChange) -> bool {
    change.is_made_in(&status.membership) && status.membership_index <= status.commit_index
}

fn describe(m: &raft::Membership) -> String {
    let list = |set: &std::collections::BTreeSet<u64>| {
        let ids: Vec<String> = set.iter().map(u64::to_string).collect();
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.join(",")
        }
    };
    let mut text = format!("voters {}", list(&m.voters));
    if m.is_joint() {
        text += &format!(" (and old voters {})", list(&m.old_voters));
    }
    text + &format!(", learners {}", list(&m.learners))
}

/// Asks the leader for `change`, following it as it moves, until the change has committed: a change that
/// committed before (an earlier attempt whose answer was lost) counts as done.
fn change_membership(
    Addrs(nodes): &Addrs,
    secret: &Secret,
    change: ConfChange,
    addresses: BTreeMap<u64, String>,
    timeout: Duration,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let mut asked = *nodes.keys().next().expect("parse_addrs lists one at least");
    let status_of = |id: u64| match connect(nodes[&id]).and_then(|mut c| {
        c.call(Request::Status)
            .map_err(|e| Failure(1, e.to_string()))
    }) {
        Ok(Reply::Status(s)) => Some(s),
        _ => None,
    };
    let mut last_refusal = None;
    while Instant::now() < deadline {
        if let Some(status) = status_of(asked) {
            if status.role == raft::Role::Leader && change_done(&status, &change) {
                println!(
                    "committed at index {}: {}",
                    status.membership_index,
                    describe(&status.membership)
                );
                return Ok(());
            }
        }
        let reply = connect(nodes[&asked]).and_then(|mut c| {
            c.admin(
                secret,
                AdminRequest::ChangeMembership(change.clone(), addresses.clone()),
            )
            .map_err(|e| Failure(1, e.to_string()))
        });
        match reply {
            // Committed: the leader's status shows it at the top of the loop (it may have moved on).
            Ok(Reply::Committed { .. }) => {}
            Ok(Reply::NotLeader(Some(leader))) if nodes.contains_key(&leader) => asked = leader,
            Ok(Reply::Busy(why)) => {
                tracing::debug!("{asked}: {why}");
                std::thread::sleep(Duration::from_millis(50));
            }
            // Made already (by an attempt whose answer was lost) or never possible: the status says which.
            Ok(Reply::Refused(why)) => {
                let done = status_of(asked).is_some_and(|s| change_done(&s, &change));
                if !done {
                    return Err(Failure(
                        1,
                        format!("node {asked} refused the change: {why}"),
                    ));
                }
                last_refusal = Some(why);
            }
            Ok(other) => move_on(nodes, &mut asked, Some(&other)),
            Err(_) => move_on(nodes, &mut asked, None),
        }
    }
    Err(Failure(
        1,
        format!(
            "the change did not commit within {} s{}",
            timeout.as_secs(),
            last_refusal.map_or(String::new(), |why| format!(" (last refused: {why})"))
        ),
    ))
}

fn transfer_leader(Addrs(nodes): &Addrs, secret: &Secret, id: u64) -> Result<(), Failure> {
    let Some(&target_addr) = nodes.get(&id) else {
        return Err(Failure(2, format!("node {id} is not in --nodes")));
    };
    let leads = || match connect(target_addr).and_then(|mut c| {
        c.call(Request::Status)
            .map_err(|e| Failure(1, e.to_string()))
    }) {
        Ok(Reply::Status(s)) if s.role == raft::Role::Leader => Some(s.term),
        _ => None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut asked = *nodes.keys().next().expect("parse_addrs lists one at least");
    while Instant::now() < deadline {
        if let Some(term) = leads() {
            println!("node {id} leads term {term}");
            return Ok(());
        }
        let reply = connect(nodes[&asked]).and_then(|mut c| {
            c.admin(secret, AdminRequest::TransferLeader(id))
                .map_err(|e| Failure(1, e.to_string()))
        });
        match reply {
            // The hand-over takes an election: watch the target for a while before asking again.
            Ok(Reply::TransferStarted) => {
                let watch = Instant::now() + Duration::from_secs(1);
                while Instant::now() < watch.min(deadline) {
                    if let Some(term) = leads() {
                        println!("node {id} leads term {term}");
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Ok(Reply::NotLeader(Some(leader))) if nodes.contains_key(&leader) => asked = leader,
            Ok(Reply::Refused(why)) => return Err(Failure(1, why)),
            Ok(other) => move_on(nodes, &mut asked, Some(&other)),
            Err(_) => move_on(nodes, &mut asked, None),
        }
    }
    Err(Failure(
        1,
        format!("node {id} did not come to lead within 10 s"),
    ))
}

fn get(node: SocketAddr, index: u64) -> Result<(), Failure> {
    match connect(node)?
        .call(Request::Query(index.to_le_bytes().to_vec()))
        .map_err(|e| Failure(1, e.to_string()))?
    {
        Reply::Value(v) if v.is_empty() => Err(Failure(
            1,
            format!("nothing applied at index {index} on {node}"),
        )),
        Reply::Value(v) => {
            println!("{}", String::from_utf8_lossy(&v));
            Ok(())
        }
        other => Err(Failure(1, format!("{node} answered {other:?}"))),
    }
}

fn machine_name(machine: Machine) -> &'static str {
    match machine {
        Machine::Kv => "kv",
        Machine::Log => "log",
    }
}

/// Runs one operation on the key-value store with a [`raft_kv::Clerk`] over the client protocol: it finds
/// the leader, retries a write with the same sequence number (so it is applied once) across leader changes
/// and lost connections, and stops at the first definite answer, or at `timeout`.
fn kv(Addrs(nodes): &Addrs, op: KvOp, timeout: Duration) -> Result<(), Failure> {
    use raft_kv::{Clerk, Failure as KvFailure, Op, Output, Progress};
    let ids: Vec<u64> = nodes.keys().copied().collect();
    let op = match op {
        KvOp::Put { key, value } => Op::put(key, value),
        KvOp::Get { key } => Op::get(key),
        KvOp::Append { key, value } => Op::append(key, value),
        KvOp::Cas { key, expected, new } => Op::cas(key, expected, new),
    };
    let is_write = !matches!(op, Op::Get { .. });
    let mut clerk = Clerk::new(ids.len());
    clerk.begin(op).expect("a new clerk is idle");
    let deadline = Instant::now() + timeout;
    let mut connections: BTreeMap<u64, Client> = BTreeMap::new();
    while Instant::now() < deadline {
        let (server, request) = clerk
            .next_request()
            .expect("a clerk with an operation has a request");
        let id = ids[server];
        let request = match request {
            raft_kv::Request::Propose(command) => Request::Propose(raft_kv::encode(&command)),
            raft_kv::Request::Read { key } => Request::Read(key.into_bytes()),
        };
        let reply = call(&mut connections, id, nodes[&id], request);
        let response = match reply {
            Some(reply) => Some(kv_response(&ids, id, reply)?),
            None => None,
        };
        let failed = matches!(response, None | Some(raft_kv::Response::Unavailable));
        match clerk.on_reply(server, response) {
            Progress::Pending => {
                if failed {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Progress::Done(Output::Value(value)) => {
                println!("{value}");
                return Ok(());
            }
            Progress::Done(Output::Swapped(swapped)) => {
                println!("{swapped}");
                return Ok(());
            }
            Progress::Done(Output::Ok) => return Ok(()),
            Progress::Failed(KvFailure::SessionExpired) => {
                return Err(Failure(
                    1,
                    "the client's session expired: the write may or may not have been applied"
                        .into(),
                ))
            }
            Progress::Failed(f) => return Err(Failure(1, format!("the store refused: {f:?}"))),
        }
    }
    Err(Failure(
        1,
        if is_write {
            format!(
                "no definite answer within {} s: the write may or may not have been applied",
                timeout.as_secs()
            )
        } else {
            format!("no definite answer within {} s", timeout.as_secs())
        },
    ))
}

/// One call to node `id` on a kept connection; `None` if it failed (the connection is dropped then).
fn call(
    connections: &mut BTreeMap<u64, Client>,
    id: u64,
    addr: SocketAddr,
    request: Request,
) -> Option<Reply> {
    let client = match connections.entry(id) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(Client::connect(addr, Duration::from_secs(2)).ok()?)
        }
    };
    match client.call(request) {
        Ok(reply) => Some(reply),
        Err(e) => {
            tracing::debug!("node {id}: {e}");
            connections.remove(&id);
            None
        }
    }
}

/// A node's reply as the key-value clerk reads it.
fn kv_response(ids: &[u64], id: u64, reply: Reply) -> Result<raft_kv::Response, Failure> {
    let not_kv = || {
        Failure(
            1,
            format!(
                "node {id} does not serve the key-value store (is it running with --machine log?)"
            ),
        )
    };
    Ok(match reply {
        Reply::Committed { response, .. } => {
            raft_kv::Response::Committed(raft_kv::decode(&response).map_err(|_| not_kv())?)
        }
        Reply::NotLeader(leader) => {
            raft_kv::Response::NotLeader(leader.and_then(|l| ids.iter().position(|&i| i == l)))
        }
        Reply::Lost => raft_kv::Response::Lost,
        Reply::Unknown => raft_kv::Response::Unknown,
        Reply::Unavailable => raft_kv::Response::Unavailable,
        Reply::Value(value) => {
            raft_kv::Response::Value(String::from_utf8(value).map_err(|_| not_kv())?)
        }
        Reply::Status(_) => return Err(not_kv()),
        Reply::TransferStarted | Reply::Refused(_) | Reply::Busy(_) | Reply::Challenge(_) => {
            return Err(Failure(
                1,
                format!("node {id} answered {reply:?}, which no key-value request asks for"),
            ))
        }
    })
}
