//! `etcd-load`: committed writes per second and their latency against an etcd cluster, measured as
//! `raft-bench --tier 2` measures three `raft-node` processes: `--clients` closed-loop writers, each with one
//! put outstanding, driven by one client thread; each put writes an 8-byte value. The writers share
//! `--conns` gRPC connections to the leader, in turn (by default one per 100 writers, as etcd's own
//! benchmark is run with 100 connections for 1,000 clients: over one connection, 1,024 writers had it
//! reset). Prints `bench: etcd clients=<n> conns=<n> ops=<n> secs=<s> ops_per_sec=<n> p50_us=<n>
//! p99_us=<n>`.

#[path = "../../closed_loop.rs"]
mod closed_loop;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use etcd_client::Client;

#[derive(Parser)]
#[command(
    name = "etcd-load",
    about = "Closed-loop puts against etcd: writes/s, p50 and p99"
)]
struct Cli {
    /// The member to connect to (the leader), as host:port.
    #[arg(long)]
    endpoint: String,
    /// Concurrent writers, each with one put outstanding.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    clients: u64,
    /// gRPC connections the writers share [default: one per 100 writers, at least one].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    conns: Option<u64>,
    /// How long to measure, in seconds (after every writer has sent its first put).
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !closed_loop::secs_in_range(cli.secs) {
        eprintln!("error: --secs must be above 0 and at most 3600");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    closed_loop::run_and_report(runtime, run(&cli))
}

async fn run(cli: &Cli) -> Result<String, String> {
    let conns = cli.conns.unwrap_or(cli.clients.div_ceil(100));
    let mut clients = Vec::new();
    for _ in 0..conns {
        let client = tokio::time::timeout(
            Duration::from_secs(10),
            Client::connect([cli.endpoint.as_str()], None),
        )
        .await
        .map_err(|_| format!("cannot reach {} within 10 s", cli.endpoint))?
        .map_err(|e| format!("cannot connect to {}: {e}", cli.endpoint))?;
        clients.push(client);
    }
    // Each connection writes once before the clock starts: a member that has just been elected may still
    // drop a connection or two while it gets ready to serve.
    let ready_by = Instant::now() + Duration::from_secs(10);
    for client in &mut clients {
        while let Err(e) = client.put("etcd-load", "ready", None).await {
            if Instant::now() > ready_by {
                return Err(format!("{} took no put within 10 s: {e}", cli.endpoint));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let measure = Duration::from_secs_f64(cli.secs);
    let begin = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..cli.clients {
        let mut kv = clients[(w % conns) as usize].kv_client();
        writers.spawn(async move {
            let key = format!("k{w:07}");
            let mut latencies_ns = Vec::new();
            while begin.elapsed() < measure {
                let start = Instant::now();
                kv.put(key.as_str(), vec![1u8; 8], None)
                    .await
                    .map_err(|e| format!("a put failed: {e}"))?;
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
    if latencies_ns.is_empty() {
        return Err("no put completed".into());
    }
    latencies_ns.sort_unstable();
    // As raft-bench computes them.
    let at = |q: f64| closed_loop::quantile_us(&latencies_ns, q);
    let ops = latencies_ns.len();
    Ok(format!(
        "bench: etcd clients={} conns={conns} ops={ops} secs={secs:.2} ops_per_sec={:.0} p50_us={} p99_us={}",
        cli.clients,
        ops as f64 / secs,
        at(0.50),
        at(0.99)
    ))
}
