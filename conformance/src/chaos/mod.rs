//! `raft-chaos`: the real `raft-node` processes under a nemesis, tested as Jepsen tests a database.
//!
//! A run starts N processes on loopback, each reaching its peers through a fault-injecting proxy
//! ([`proxy`]); client threads run a workload through the service's `Clerk` ([`workload`]) while the
//! nemesis applies a schedule of faults ([`nemesis`]): kills, pauses, partitions, message faults and power
//! loss. Then everything heals, every node is killed and started again, every key is read, and the run is
//! checked:
//!
//! * the history is linearizable ([`crate::linearizability`], per key; an operation without a definite
//!   answer may or may not have taken effect);
//! * the nodes' traces (`raft-node --trace`), merged by causality, are valid against the model;
//! * every acknowledged append is in the final list, once, and every read of a list is a prefix of it;
//! * no node exited by itself.

pub mod cluster;
pub mod nemesis;
pub mod proxy;
pub mod workload;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::linearizability::{jsonl, History};
use crate::trace::merge::merge;
use crate::trace::{check, Trace};
use cluster::{artifact, Cluster, Disk, Setup};
use nemesis::{Kind, Step};
use workload::{ClientSetup, Tally, Workload};

/// A deliberate bug, to show that a run notices it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Bug {
    /// A leader answers reads from its own state without ReadIndex (`raft-node --test-bug local-reads`).
    StaleRead,
    /// Clients retry a write that got no answer as a new write (no sessions): a retried append can be
    /// applied twice.
    NoSessions,
    /// The nodes' disk never syncs (`--test-disk power-loss-no-sync`), under power loss.
    NoSync,
    /// The nodes send a round's messages before its save is synced (`raft-node --test-bug
    /// send-before-save`).
    SendBeforeSave,
    /// The nodes' receiving transport loses the last entry of one AppendEntries in a hundred that carry
    /// entries (`raft-node --test-bug lossy-decode`). Raft stays safe; the traces show the message decoded as
    /// something else than was sent (and, without that report, a reply other than the model's).
    LossyDecode,
}

/// One run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Its number in the campaign.
    pub number: usize,
    /// How many nodes.
    pub nodes: u64,
    /// The workload.
    pub workload: Workload,
    /// The kinds of fault.
    pub kinds: Vec<Kind>,
    /// How long the workload runs.
    pub secs: u64,
    /// Seeds the schedule, the clients and the network's faults.
    pub seed: u64,
    /// A deliberate bug.
    pub bug: Option<Bug>,
    /// A mutant of the core for the nodes.
    pub mutant: Option<String>,
    /// Client threads.
    pub clients: u64,
    /// The most operations the clients begin.
    pub max_ops: u64,
    /// Operations per second the clients begin together, at most (0: as fast as they can).
    pub rate: u64,
    /// Keep the run's directory (traces, history, node logs) even if it passes.
    pub keep: bool,
}

impl RunSpec {
    /// The disk the nodes run on: one that loses what was not synced when power loss is among the
    /// faults (every SIGKILL is then a power cut).
    pub fn disk(&self) -> Disk {
        match (self.kinds.contains(&Kind::Power), self.bug) {
            (true, Some(Bug::NoSync)) => Disk::PowerLossNoSync,
            (true, _) => Disk::PowerLoss,
            (false, _) => Disk::Fs,
        }
    }

    /// The command that replays this run's schedule.
    pub fn replay(&self) -> String {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        let mut command = format!(
            "raft-chaos --runs 1 --seed {} --nodes {} --workload {} --faults {} --run-secs {} \
             --clients {} --max-ops {} --rate {}",
            self.seed,
            self.nodes,
            self.workload.name(),
            kinds.join(","),
            self.secs,
            self.clients,
            self.max_ops,
            self.rate
        );
        if let Some(mutant) = &self.mutant {
            command += &format!(" --mutant {mutant}");
        }
        if let Some(bug) = self.bug {
            command += &format!(
                " --bug {}",
                clap::ValueEnum::to_possible_value(&bug).unwrap().get_name()
            );
        }
        command
    }
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The run.
    pub spec: RunSpec,
    /// The clients' counts.
    pub tally: Tally,
    /// The faults applied, each with its time from the start of the workload.
    pub faults: Vec<(Duration, String)>,
    /// Faults applied, by kind.
    pub kinds: BTreeMap<Kind, u64>,
    /// Whether the history is linearizable (`None`: it could not be checked).
    pub linearizable: Option<bool>,
    /// Acknowledged writes missing at the end.
    pub lost_acked: u64,
    /// What went wrong, in words (empty for a good run).
    pub problems: Vec<String>,
    /// The run's wall time.
    pub secs: f64,
    /// Where its artifacts are, when kept.
    pub kept: Option<PathBuf>,
    /// What the proxies did.
    pub net: proxy::Counts,
    /// The time the linearizability check took.
    pub check_secs: f64,
    /// Whether the processes' traces, merged, are valid against the model (`None`: they could not be read
    /// or merged).
    pub traces_valid: Option<bool>,
    /// The events of the merged trace.
    pub trace_events: usize,
    /// The time reading, merging and checking the traces took.
    pub trace_secs: f64,
}

impl RunResult {
    /// Whether every check held.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
            && self.linearizable == Some(true)
            && self.lost_acked == 0
            && self.traces_valid == Some(true)
    }
}

/// Set by Ctrl-C.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs `spec` with the `raft-node` at `exe`, in a directory of its own under `base`, which is removed when
/// every check held and kept (with the history and the schedule) when one did not. A run that cannot go
/// on (no node leads within 20 s of the start, a node that cannot be started again) is a failed run, with
/// the reason among its problems.
pub fn run(spec: &RunSpec, exe: &Path, base: &Path) -> RunResult {
    let started = Instant::now();
    let dir = base.join(format!("run-{}-seed-{}", spec.number, spec.seed));
    let _ = std::fs::remove_dir_all(&dir);
    match run_in(spec, exe, &dir, started) {
        Ok(result) => result,
        Err(e) => RunResult {
            spec: spec.clone(),
            tally: Tally::default(),
            faults: Vec::new(),
            kinds: BTreeMap::new(),
            linearizable: None,
            lost_acked: 0,
            problems: vec![format!("the run could not go on: {e:#}")],
            secs: started.elapsed().as_secs_f64(),
            kept: dir.exists().then_some(dir),
            net: proxy::Counts::default(),
            check_secs: 0.0,
            traces_valid: None,
            trace_events: 0,
            trace_secs: 0.0,
        },
    }
}

fn run_in(spec: &RunSpec, exe: &Path, dir: &Path, started: Instant) -> Result<RunResult> {
    let dir = dir.to_path_buf();
    let setup = Setup {
        exe: exe.to_path_buf(),
        dir: dir.clone(),
        nodes: spec.nodes,
        disk: spec.disk(),
        node_bug: match spec.bug {
            Some(Bug::StaleRead) => Some("local-reads".to_string()),
            Some(Bug::SendBeforeSave) => Some("send-before-save".to_string()),
            Some(Bug::LossyDecode) => Some("lossy-decode".to_string()),
            _ => None,
        },
        mutant: spec.mutant.clone(),
        snapshot_every: 200,
        seed: spec.seed,
        figure2_elections: false,
    };
    let mut cluster = Cluster::start(setup)?;
    let clients = ClientSetup {
        nodes: cluster.client_addrs(),
        workload: spec.workload,
        call_timeout: Duration::from_millis(1000),
        op_timeout: Duration::from_secs(4),
        no_sessions: spec.bug == Some(Bug::NoSessions),
        interval: match spec.rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs_f64(spec.clients as f64 / rate as f64),
        },
    };
    let schedule = nemesis::schedule(spec.seed, &spec.kinds, Duration::from_secs(spec.secs));
    let history = Mutex::new(History::new());
    let stop = AtomicBool::new(false);
    let budget = AtomicU64::new(spec.max_ops);
    let mut faults = Vec::new();
    let mut kinds = BTreeMap::new();
    let mut problems = Vec::new();
    let tally = std::thread::scope(|scope| -> Result<Tally> {
        let handles: Vec<_> = (0..spec.clients)
            .map(|c| {
                let (clients, history, stop, budget) = (&clients, &history, &stop, &budget);
                let seed = spec.seed.wrapping_mul(1000).wrapping_add(c);
                scope.spawn(move || workload::run_client(c, clients, seed, history, stop, budget))
            })
            .collect();
        let nemesis = drive(&schedule, &mut cluster, spec.secs, &mut faults, &mut kinds);
        stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for h in handles {
            tally.add(h.join().expect("a client thread panicked"));
        }
        nemesis?;
        Ok(tally)
    })?;
    for (id, status) in cluster.exited() {
        problems.push(format!(
            "node {id} exited by itself ({status}): see {}",
            cluster.log_path(id).display()
        ));
    }
    cluster.heal_all()?;
    // Then every node at once is killed and started again (on a power-loss disk, a last power cut): what
    // was acknowledged must have been durable.
    for id in cluster.ids() {
        cluster.kill(id);
    }
    cluster.heal_all()?;
    if cluster.await_leader(Duration::from_secs(30)).is_err() {
        problems
            .push("no leader within 30 s after every fault healed and every node restarted".into());
    }
    let finals = workload::final_reads(spec.clients, &clients, &history);
    for (id, status) in cluster.exited() {
        problems.push(format!("node {id} exited by itself ({status})"));
    }
    let net = cluster.net().counts();
    let traces: Vec<PathBuf> = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.trace_path(id))
        .collect();
    drop(cluster);
    let checking_traces = Instant::now();
    let trace = check_traces(&traces, &mut problems);
    let trace_secs = checking_traces.elapsed().as_secs_f64();
    let history = history.into_inner().unwrap();
    let checking = Instant::now();
    let (linearizable, mut lost_acked) = (check_history(&history, &mut problems), 0);
    let check_secs = checking.elapsed().as_secs_f64();
    if spec.workload == Workload::ListAppend {
        let (lost, anomalies) = workload::check_lists(history.operations(), &finals);
        lost_acked = lost;
        problems.extend(anomalies);
    } else {
        for (key, value) in &finals {
            if value.is_none() {
                problems.push(format!("{key}: no final read answered"));
            }
        }
    }
    let mut result = RunResult {
        spec: spec.clone(),
        tally,
        faults,
        kinds,
        linearizable,
        lost_acked,
        problems,
        secs: started.elapsed().as_secs_f64(),
        kept: None,
        net,
        check_secs,
        traces_valid: trace.map(|(valid, _)| valid),
        trace_events: trace.map_or(0, |(_, events)| events),
        trace_secs,
    };
    if result.ok() && !spec.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        keep(&result, &history, &schedule, &dir)?;
        result.kept = Some(dir);
    }
    Ok(result)
}

/// Applies the schedule while the clients run, then waits out the run's time.
fn drive(
    schedule: &[Step],
    cluster: &mut Cluster,
    secs: u64,
    faults: &mut Vec<(Duration, String)>,
    kinds: &mut BTreeMap<Kind, u64>,
) -> Result<()> {
    let start = Instant::now();
    let wait_until = |at: Duration| {
        while start.elapsed() < at && !INTERRUPTED.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20).min(at.saturating_sub(start.elapsed())));
        }
    };
    for step in schedule {
        wait_until(step.at);
        let what = nemesis::apply(step, cluster);
        faults.push((start.elapsed(), what));
        *kinds.entry(step.fault.kind()).or_insert(0) += 1;
        wait_until(step.at + step.lasts);
        cluster.heal_all()?;
        faults.push((start.elapsed(), "heal".into()));
    }
    wait_until(Duration::from_secs(secs));
    Ok(())
}

/// Checks the history's linearizability; `None` if it could not be checked (a malformed history).
fn check_history(history: &History, problems: &mut Vec<String>) -> Option<bool> {
    match history.check() {
        Ok(report) => {
            if let Some(v) = &report.violation {
                problems.push(format!(
                    "not linearizable: key {} cannot be ordered; a smallest set of its operations that \
                     cannot: {}",
                    v.key,
                    v.minimal
                        .iter()
                        .map(|(i, op)| format!("#{i} {}", jsonl::to_line(op)))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            Some(report.is_linearizable())
        }
        Err(e) => {
            problems.push(format!("the history cannot be checked: {e}"));
            None
        }
    }
}

/// Reads the processes' traces, merges them and checks the result against the model: whether it is valid
/// and how many events it has (`None` if the traces cannot be read or merged).
fn check_traces(paths: &[PathBuf], problems: &mut Vec<String>) -> Option<(bool, usize)> {
    let mut traces = Vec::new();
    for path in paths {
        let read = std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| Trace::read(std::io::BufReader::new(f)).map_err(|e| e.to_string()));
        match read {
            Ok(t) => traces.push(t),
            Err(e) => {
                problems.push(format!("trace {}: {e}", path.display()));
                return None;
            }
        }
    }
    let trace = match merge(traces) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("the traces cannot be merged: {e}"));
            return None;
        }
    };
    let events = trace.records.len();
    match check(&trace) {
        Ok(_) => Some((true, events)),
        Err(mismatch) => {
            problems.push(format!(
                "the traces, merged, leave the model at event {} of {events}: {}",
                mismatch.event, mismatch.reason
            ));
            Some((false, events))
        }
    }
}

/// Writes a failed run's history, schedule and findings beside its nodes' data and logs.
fn keep(result: &RunResult, history: &History, schedule: &[Step], dir: &Path) -> Result<()> {
    jsonl::write(history.operations(), artifact(dir, "history.jsonl")?)
        .context("cannot write the history")?;
    let mut out = artifact(dir, "schedule.txt")?;
    writeln!(out, "replay: {}", result.spec.replay())?;
    for step in schedule {
        writeln!(
            out,
            "at {:?} for {:?}: {} (pick {})",
            step.at, step.lasts, step.fault, step.pick
        )?;
    }
    writeln!(out, "\napplied:")?;
    for (at, what) in &result.faults {
        writeln!(out, "{:>8.3} s  {what}", at.as_secs_f64())?;
    }
    let mut out = artifact(dir, "problems.txt")?;
    for p in &result.problems {
        writeln!(out, "{p}")?;
    }
    Ok(())
}
