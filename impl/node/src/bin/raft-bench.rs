//! `raft-bench`: committed writes per second and their latency. Clients are closed loops, each with one
//! 8-byte write outstanding (`--clients`; by default 1, 64 and 1024 in turn for tiers 0 and 1, 64 for tier 2).
//!
//! * Tier 0, the core's cost per commit: three `Host`s (core, storage, state machine, answering clients) in
//!   one process, driven by one thread; storage that keeps nothing; envelopes handed from node to node by
//!   value, never encoded.
//! * Tier 1, the runtime in memory: three `Runtime` event loops, a thread each, over `memory::Network`;
//!   every message encoded and decoded with the wire's codec on its way; storage that keeps nothing; the
//!   clients submit `Input::Propose` to the leader's loop, as `raft-node`'s client connections do, and wait
//!   for its `Answer` (one client thread drives them all). Each loop polls its inbox for `--poll-us` (50 µs
//!   by default) when it finds it empty before it blocks (`Runtime::poll`), and the client thread polls for
//!   its answers the same way; `--poll-us 0` blocks at once.
//! * Tier 2: three `raft-node` processes over loopback TCP with file storage and fsync; the clients share
//!   one connection to the leader, pipelined; the nodes run with `--poll-us` as given.
//!
//! Prints one line per run: `bench: tier=<0|1|2> clients=<n> ops=<n> secs=<s> ops_per_sec=<n> p50_us=<n>
//! p99_us=<n>`; tiers 0 and 1 add `msgs_per_op=<x>`, the messages all three nodes sent per committed write
//! while measuring, and tier 2 adds `fsyncs_per_sec=<n>`.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// The core copies each command a few times on its way (log, messages, applies): a fast allocator pays for
/// that less than the system's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use raft::{Config, Envelope, Index};
use raft_node::host::{Host, Outcome, Settings, StateMachine};
use raft_node::memory::Volatile;
use raft_node::storage::Recovered;

#[derive(Parser)]
#[command(
    name = "raft-bench",
    about = "Committed writes per second and their latency (p50, p99)"
)]
struct Cli {
    /// 0: the core's cost per commit (three nodes driven by one thread); 1: three event loops on threads,
    /// in memory, messages encoded; 2: three processes over loopback TCP with fsync.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    tier: u8,
    /// Concurrent clients, each with one write outstanding [default: 1, 64 and 1024 for tiers 0 and 1; 64
    /// for tier 2].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    clients: Option<u64>,
    /// How long each run measures, in seconds.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// How long each node's loop polls its empty inbox before it blocks, in microseconds (`Runtime::poll`,
    /// `raft-node --poll-us`); tiers 1 and 2.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    poll_us: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !(cli.secs > 0.0 && cli.secs <= 3600.0) {
        eprintln!("error: --secs must be above 0 and at most 3600");
        return ExitCode::from(2);
    }
    let runs: Vec<u64> = match (cli.tier, cli.clients) {
        (_, Some(n)) => vec![n],
        (0 | 1, None) => vec![1, 64, 1024],
        (_, None) => vec![64],
    };
    for clients in runs {
        let measure = Duration::from_secs_f64(cli.secs);
        let poll = Duration::from_micros(cli.poll_us);
        let result = match cli.tier {
            0 => Ok(tier0(clients, measure)),
            1 => tier1::run(clients, measure, poll),
            _ => tier2::run(clients, measure, poll),
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("{}", result.line(cli.tier, clients));
    }
    ExitCode::SUCCESS
}

/// What a run measured.
struct Measured {
    ops: u64,
    secs: f64,
    latencies_ns: Vec<u64>,
    /// Messages all nodes sent while measuring.
    messages: Option<u64>,
    fsyncs_per_sec: Option<f64>,
}

impl Measured {
    fn line(mut self, tier: u8, clients: u64) -> String {
        self.latencies_ns.sort_unstable();
        let pct = |p: f64| {
            let l = &self.latencies_ns;
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(0, |ns| (ns + 500) / 1000)
        };
        let mut line = format!(
            "bench: tier={tier} clients={clients} ops={} secs={:.2} ops_per_sec={:.0} p50_us={} p99_us={}",
            self.ops,
            self.secs,
            self.ops as f64 / self.secs,
            pct(0.50),
            pct(0.99)
        );
        if let Some(m) = self.messages {
            line.push_str(&format!(
                " msgs_per_op={:.2}",
                m as f64 / self.ops.max(1) as f64
            ));
        }
        if let Some(f) = self.fsyncs_per_sec {
            line.push_str(&format!(" fsyncs_per_sec={f:.0}"));
        }
        line
    }
}

/// The benchmark's state machine: a running sum of the commands' first bytes (constant memory).
#[derive(Default)]
struct Sum(u64);

impl StateMachine for Sum {
    fn apply(&mut self, _: Index, command: &[u8]) -> Vec<u8> {
        self.0 += command.first().copied().unwrap_or(0) as u64;
        Vec::new()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = snapshot.try_into().map_err(|_| "not 8 bytes".to_string())?;
        self.0 = u64::from_le_bytes(bytes);
        Ok(())
    }
    fn check(&self, snapshot: &[u8]) -> Result<(), String> {
        <[u8; 8]>::try_from(snapshot)
            .map(drop)
            .map_err(|_| "not 8 bytes".to_string())
    }
    fn query(&self, _: &[u8]) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
}

type BenchHost = Host<Volatile, Sum, u32>;

/// Tier 0: see the module documentation.
fn tier0(clients: u64, measure: Duration) -> Measured {
    let peers = vec![0, 1, 2];
    let mut hosts: Vec<BenchHost> = peers
        .iter()
        .map(|&id| {
            let settings = Settings {
                id,
                peers: peers.clone(),
                config: Config::default(),
                seed: 7 + id,
                snapshot_every: 100_000,
            };
            Host::new(&settings, Volatile, Recovered::default(), Sum::default()).expect("valid")
        })
        .collect();
    let mut queue: VecDeque<Envelope> = VecDeque::new();
    let mut sent = Vec::new();
    let mut done = Vec::new();
    let messages = std::cell::Cell::new(0u64);
    // Deliver everything in flight, flushing each receiver: returns the answered proposals in `done`.
    let mut pump = |hosts: &mut Vec<BenchHost>, done: &mut Vec<(u32, Outcome)>| {
        for h in hosts.iter_mut() {
            h.flush(&mut sent, done)
                .expect("volatile storage does not fail");
            messages.set(messages.get() + sent.len() as u64);
            queue.extend(sent.drain(..));
        }
        while let Some(e) = queue.pop_front() {
            let to = e.to as usize;
            let _ = hosts[to].step(e);
            hosts[to]
                .flush(&mut sent, done)
                .expect("volatile storage does not fail");
            messages.set(messages.get() + sent.len() as u64);
            queue.extend(sent.drain(..));
        }
    };
    while !hosts[0].node().is_leader() {
        hosts[0].tick();
        pump(&mut hosts, &mut done);
    }
    pump(&mut hosts, &mut done);
    done.clear();

    let command = vec![1u8; 8];
    let mut started = vec![Instant::now(); clients as usize];
    let mut latencies_ns = Vec::with_capacity(1 << 20);
    for (ticket, start) in started.iter_mut().enumerate() {
        *start = Instant::now();
        hosts[0]
            .propose(command.clone(), ticket as u32)
            .map_err(|_| ())
            .expect("node 0 leads");
    }
    let begin = Instant::now();
    let messages_before = messages.get();
    let mut ops = 0u64;
    let mut ticks = Instant::now();
    loop {
        pump(&mut hosts, &mut done);
        let now = Instant::now();
        for (ticket, outcome) in done.drain(..) {
            assert!(matches!(outcome, Outcome::Committed { .. }), "{outcome:?}");
            latencies_ns.push((now - started[ticket as usize]).as_nanos() as u64);
            ops += 1;
            started[ticket as usize] = now;
            hosts[0]
                .propose(command.clone(), ticket)
                .map_err(|_| ())
                .expect("node 0 still leads");
        }
        // Real time passes for the timers too (the leader's heartbeats), every 10 ms.
        if now - ticks >= Duration::from_millis(10) {
            ticks = now;
            for h in hosts.iter_mut() {
                h.tick();
            }
        }
        if now - begin >= measure {
            return Measured {
                ops,
                secs: (now - begin).as_secs_f64(),
                latencies_ns,
                messages: Some(messages.get() - messages_before),
                fsyncs_per_sec: None,
            };
        }
    }
}

mod tier1 {
    //! Three `Runtime` loops on threads over `memory::Network`, each message encoded and decoded on its way;
    //! one client thread with `clients` proposals outstanding at the leader's loop.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{self, Receiver, Sender};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use raft::{Config, Envelope, Role};
    use raft_node::host::{Host, Outcome, Settings};
    use raft_node::memory::{Network, Volatile};
    use raft_node::runtime::{self, Answer, Input, Runtime, Transport};
    use raft_node::storage::Recovered;

    use super::{Measured, Sum};

    /// A proposal's ticket: the client that waits for it.
    type Ticket = u32;

    /// The in-memory network, with every message encoded and decoded as the TCP transport does (on the
    /// sender's thread, so that the work is paid once per message).
    struct Wire(Network<Ticket>, Arc<AtomicU64>);

    impl Transport for Wire {
        fn send(&mut self, envelope: Envelope) {
            self.1.fetch_add(1, Ordering::Relaxed);
            let bytes = raft::encode(&envelope);
            match raft::decode::<Envelope>(&bytes) {
                Ok(decoded) => self.0.send(decoded),
                Err(e) => unreachable!("an envelope that does not decode: {e}"),
            }
        }
    }

    struct Cluster {
        inboxes: Vec<Sender<Input<Ticket>>>,
        loops: Vec<JoinHandle<()>>,
        /// Messages sent by all nodes so far.
        messages: Arc<AtomicU64>,
    }

    impl Cluster {
        fn start(answers: &Sender<(Ticket, Answer)>, poll: Duration) -> Cluster {
            let ids = [0u64, 1, 2];
            let (inboxes, receivers): (Vec<_>, Vec<_>) =
                ids.iter().map(|_| mpsc::channel()).unzip();
            let network = Network::new(inboxes.clone());
            let messages = Arc::new(AtomicU64::new(0));
            let loops = ids
                .iter()
                .zip(receivers)
                .map(|(&id, inbox)| {
                    let settings = Settings {
                        id,
                        peers: ids.to_vec(),
                        config: Config::default(),
                        seed: 7 + id,
                        snapshot_every: 100_000,
                    };
                    let host = Host::new(&settings, Volatile, Recovered::default(), Sum::default())
                        .expect("valid settings");
                    let wire = Wire(network.clone(), Arc::clone(&messages));
                    let answers = answers.clone();
                    std::thread::spawn(move || {
                        let answer = move |ticket, a| {
                            let _ = answers.send((ticket, a));
                        };
                        let runtime = Runtime {
                            poll,
                            ..Runtime::default()
                        };
                        runtime
                            .run(host, inbox, wire, answer)
                            .map(drop)
                            .expect("volatile storage does not fail");
                    })
                })
                .collect();
            Cluster {
                inboxes,
                loops,
                messages,
            }
        }

        /// The node that leads, once one does and the others follow it (within 10 s).
        fn leader(&self) -> Result<usize, String> {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let roles: Vec<(Role, Option<u64>)> = self
                    .inboxes
                    .iter()
                    .map(|inbox| {
                        let (tx, rx) = mpsc::channel();
                        inbox.send(Input::Status(tx)).expect("the loop runs");
                        let s = rx.recv().expect("the loop answers");
                        (s.role, s.leader)
                    })
                    .collect();
                if let Some(l) = roles.iter().position(|(r, _)| *r == Role::Leader) {
                    if roles.iter().all(|(_, leader)| *leader == Some(l as u64)) {
                        return Ok(l);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err("no leader within 10 s".to_string())
        }
    }

    /// The loops stop, however the run ends.
    impl Drop for Cluster {
        fn drop(&mut self) {
            for inbox in &self.inboxes {
                let _ = inbox.send(Input::Stop);
            }
            for l in self.loops.drain(..) {
                let _ = l.join();
            }
        }
    }

    /// The next answer within `left`: the client thread polls for one for `poll`, as the loops poll their
    /// inboxes, and then blocks.
    fn receive<T>(answered: &Receiver<T>, poll: Duration, left: Duration) -> Option<T> {
        runtime::poll(answered, poll.min(left))
            .or_else(|| answered.recv_timeout(left.saturating_sub(poll)).ok())
    }

    pub fn run(clients: u64, measure: Duration, poll: Duration) -> Result<Measured, String> {
        let (answers, answered) = mpsc::channel::<(Ticket, Answer)>();
        let cluster = Cluster::start(&answers, poll);
        let mut leader = cluster.leader()?;
        let command = vec![1u8; 8];
        let propose = |leader: usize, ticket: Ticket| {
            cluster.inboxes[leader]
                .send(Input::Propose(command.clone(), ticket))
                .expect("the loop runs");
        };
        let mut started = vec![Instant::now(); clients as usize];
        let mut latencies_ns = Vec::with_capacity(1 << 20);
        for (ticket, start) in started.iter_mut().enumerate() {
            *start = Instant::now();
            propose(leader, ticket as Ticket);
        }
        let begin = Instant::now();
        let messages_before = cluster.messages.load(Ordering::Relaxed);
        let mut ops = 0u64;
        loop {
            let left = measure.saturating_sub(begin.elapsed());
            let Some((ticket, answer)) = receive(&answered, poll, left) else {
                break;
            };
            let now = Instant::now();
            match answer {
                Answer::Done(Outcome::Committed { .. }) => {
                    latencies_ns.push((now - started[ticket as usize]).as_nanos() as u64);
                    ops += 1;
                }
                // The leadership moved (or the proposal's index went to another entry): ask the leader.
                Answer::NotLeader(_) | Answer::Done(Outcome::Lost | Outcome::Unknown) => {
                    leader = cluster.leader()?;
                }
                other => unreachable!("a write answered with {other:?}"),
            }
            started[ticket as usize] = now;
            propose(leader, ticket);
            if now - begin >= measure {
                break;
            }
        }
        let secs = begin.elapsed().as_secs_f64();
        let messages = cluster.messages.load(Ordering::Relaxed) - messages_before;
        Ok(Measured {
            ops,
            secs,
            latencies_ns,
            messages: Some(messages),
            fsyncs_per_sec: None,
        })
    }
}

mod tier2 {
    //! Three `raft-node` processes (the binary beside this one) on loopback, file storage in a temporary
    //! directory; one client connection to the leader with `clients` proposals outstanding.

    use std::collections::HashMap;
    use std::io::{BufReader, BufWriter, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use raft::Role;
    use raft_node::client::{Client, Reply, Request};
    use raft_node::host::Status;
    use raft_node::tcp::{read_payload, write_payload, MAX_FRAME};

    use super::Measured;

    struct Cluster {
        children: Vec<Child>,
        dir: PathBuf,
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn free_addr() -> Result<SocketAddr, String> {
        let socket = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
        socket.local_addr().map_err(|e| e.to_string())
    }

    fn status(addr: SocketAddr) -> Option<Status> {
        match Client::connect(addr, Duration::from_secs(1))
            .ok()?
            .call(Request::Status)
            .ok()?
        {
            Reply::Status(s) => Some(s),
            _ => None,
        }
    }

    pub fn run(clients: u64, measure: Duration, poll: Duration) -> Result<Measured, String> {
        let exe = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("raft-node");
        if !exe.exists() {
            return Err(format!(
                "{} is missing: build it first (cargo build --release -p raft-node)",
                exe.display()
            ));
        }
        let dir = std::env::temp_dir().join(format!("raft-bench-{}", std::process::id()));
        let mut cluster = Cluster {
            children: Vec::new(),
            dir: dir.clone(),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let secret = dir.join("secret");
        std::fs::write(&secret, "the benchmark's cluster secret\n")
            .map_err(|e| format!("cannot write {}: {e}", secret.display()))?;
        let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let client_addrs: Vec<SocketAddr> =
            (0..3).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let peer_list = (0..3)
            .map(|i| format!("{}={}", i + 1, peers[i]))
            .collect::<Vec<_>>()
            .join(",");
        for (i, client_addr) in client_addrs.iter().enumerate() {
            let child = Command::new(&exe)
                .args([
                    "--id",
                    &(i + 1).to_string(),
                    "--peers",
                    &peer_list,
                    "--data-dir",
                ])
                .arg(dir.join(format!("node-{}", i + 1)))
                .args(["--client-addr", &client_addr.to_string()])
                .args(["--snapshot-every", "100000"])
                .args(["--poll-us", &poll.as_micros().to_string()])
                // Opaque 8-byte commands: the command log, as measured before the key-value store.
                .args(["--machine", "log"])
                .arg("--secret-file")
                .arg(&secret)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
            cluster.children.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let leader = loop {
            if let Some(s) = client_addrs
                .iter()
                .filter_map(|&a| status(a))
                .find(|s| s.role == Role::Leader)
            {
                break client_addrs[s.id as usize - 1];
            }
            if Instant::now() > deadline {
                return Err("no leader within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };

        let stream = TcpStream::connect(leader).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut input = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut output = BufWriter::new(stream);
        let mut started: HashMap<u64, Instant> = HashMap::new();
        let mut next_id = 0u64;
        let mut send = |output: &mut BufWriter<TcpStream>, started: &mut HashMap<u64, Instant>| {
            next_id += 1;
            started.insert(next_id, Instant::now());
            write_payload(output, &(next_id, Request::Propose(vec![1u8; 8])))
        };
        let syncs_before = status(leader).map_or(0, |s| s.syncs);
        for _ in 0..clients {
            send(&mut output, &mut started).map_err(|e| e.to_string())?;
        }
        output.flush().map_err(|e| e.to_string())?;
        let begin = Instant::now();
        let mut latencies_ns = Vec::new();
        while begin.elapsed() < measure {
            let payload = read_payload(&mut input, MAX_FRAME).map_err(|e| e.to_string())?;
            let (id, reply): (u64, Reply) =
                postcard::from_bytes(&payload).map_err(|e| e.to_string())?;
            match reply {
                Reply::Committed { .. } => {
                    let start = started.remove(&id).ok_or("a reply to no request")?;
                    latencies_ns.push(start.elapsed().as_nanos() as u64);
                }
                other => return Err(format!("the leader answered {other:?}")),
            }
            send(&mut output, &mut started).map_err(|e| e.to_string())?;
            output.flush().map_err(|e| e.to_string())?;
        }
        let secs = begin.elapsed().as_secs_f64();
        let syncs = status(leader).map_or(0, |s| s.syncs) - syncs_before;
        Ok(Measured {
            ops: latencies_ns.len() as u64,
            secs,
            latencies_ns,
            messages: None,
            fsyncs_per_sec: Some(syncs as f64 / secs),
        })
    }
}
