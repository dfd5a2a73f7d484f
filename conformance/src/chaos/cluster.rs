//! The `raft-node` processes of one run: started, killed, paused and restarted, each reaching its peers
//! through the faulty [`Network`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use raft::{ConfChange, NodeId};
use raft_node::client::{AdminRequest, Client, Reply, Request};
use raft_node::host::Status;
use raft_node::tcp::restartable_addr;
use raft_node::tcp::Secret;

use super::proxy::{Network, CLIENTS};

/// The process ids of every node started and not yet reaped, so that Ctrl-C can kill them all.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every node process still running (for Ctrl-C).
pub fn kill_all_children() {
    for &pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        signal(pid, libc::SIGCONT);
        signal(pid, libc::SIGKILL);
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) takes any pid and signal; a wrong one fails with an error, which is ignored.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// The disk under the nodes' storage (`raft-node --test-disk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disk {
    /// The file system: a SIGKILL loses nothing written.
    Fs,
    /// Writes reach the file only at a sync, so a SIGKILL loses what a power cut would.
    PowerLoss,
    /// As `PowerLoss`, and every sync does nothing (a bug, to show that the checks notice).
    PowerLossNoSync,
}

impl Disk {
    fn arg(self) -> &'static str {
        match self {
            Disk::Fs => "fs",
            Disk::PowerLoss => "power-loss",
            Disk::PowerLossNoSync => "power-loss-no-sync",
        }
    }
}

/// How the nodes run.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The `raft-node` executable.
    pub exe: PathBuf,
    /// Where the nodes keep their data and logs.
    pub dir: PathBuf,
    /// How many nodes.
    pub nodes: u64,
    /// Their disk.
    pub disk: Disk,
    /// A deliberate bug for the nodes (`raft-node --test-bug`).
    pub node_bug: Option<String>,
    /// A mutant of the core for the nodes (`RAFT_MUTANT`; needs a raft-node built with `--features mutants`).
    pub mutant: Option<String>,
    /// Snapshot every this many entries.
    pub snapshot_every: u64,
    /// Seeds the network's faults.
    pub seed: u64,
    /// The nodes elect as Figure 2 says, without PreVote and CheckQuorum (for comparison).
    pub figure2_elections: bool,
}

struct Process {
    child: Option<Child>,
    paused: bool,
}

/// The node processes and the network between them.
pub struct Cluster {
    setup: Setup,
    secret: PathBuf,
    peer: BTreeMap<NodeId, SocketAddr>,
    client: BTreeMap<NodeId, SocketAddr>,
    net: Network,
    procs: BTreeMap<NodeId, Process>,
    /// Nodes a membership fault removed, to be added back when it heals.
    removed: BTreeSet<NodeId>,
    /// The cluster's secret, for administrative requests.
    admin: Secret,
}

impl Cluster {
    /// Starts the nodes and waits until one leads (at most 20 s).
    pub fn start(setup: Setup) -> Result<Cluster> {
        std::fs::create_dir_all(&setup.dir)
            .with_context(|| format!("cannot create {}", setup.dir.display()))?;
        let secret = setup.dir.join("secret");
        let bytes: [u8; 32] = rand::random();
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&secret, text + "\n")?;
        let (mut peer, mut client) = (BTreeMap::new(), BTreeMap::new());
        for id in 1..=setup.nodes {
            peer.insert(id, restartable_addr()?);
            client.insert(id, restartable_addr()?);
        }
        let net = Network::start(&peer, &client, setup.seed).context("cannot start the proxies")?;
        let admin = Secret::read(&secret).map_err(anyhow::Error::msg)?;
        let mut cluster = Cluster {
            setup,
            secret,
            peer,
            client,
            net,
            procs: BTreeMap::new(),
            removed: BTreeSet::new(),
            admin,
        };
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        cluster.await_leader(Duration::from_secs(20))?;
        Ok(cluster)
    }

    /// The nodes' ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.peer.keys().copied().collect()
    }

    /// The network between them.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Where clients reach the nodes (through the proxies), in id order.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.ids()
            .into_iter()
            .map(|id| self.net.addr(CLIENTS, id))
            .collect()
    }

    /// The directory of node `id`'s data.
    fn data_dir(&self, id: NodeId) -> PathBuf {
        self.setup.dir.join(format!("node-{id}"))
    }

    /// Where node `id` writes its trace.
    pub fn trace_path(&self, id: NodeId) -> PathBuf {
        self.setup.dir.join(format!("node-{id}.trace.jsonl"))
    }

    /// Where node `id` logs.
    pub fn log_path(&self, id: NodeId) -> PathBuf {
        self.setup.dir.join(format!("node-{id}.log"))
    }

    /// Starts node `id` (again).
    pub fn spawn(&mut self, id: NodeId) -> Result<()> {
        let peers: Vec<String> = self
            .ids()
            .into_iter()
            .map(|j| {
                let addr = if j == id {
                    self.peer[&id]
                } else {
                    self.net.addr(id, j)
                };
                format!("{j}={addr}")
            })
            .collect();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))?;
        let mut command = Command::new(&self.setup.exe);
        command
            .args(["--id", &id.to_string(), "--peers", &peers.join(",")])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .args(["--client-addr", &self.client[&id].to_string()])
            .arg("--secret-file")
            .arg(&self.secret)
            .args(["--snapshot-every", &self.setup.snapshot_every.to_string()])
            .args(["--test-disk", self.setup.disk.arg()])
            .arg("--trace")
            .arg(self.trace_path(id))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        if let Some(bug) = &self.setup.node_bug {
            command.args(["--test-bug", bug]);
        }
        if self.setup.figure2_elections {
            command.args(["--pre-vote", "false", "--check-quorum", "false"]);
        }
        if let Some(mutant) = &self.setup.mutant {
            command.env("RAFT_MUTANT", mutant);
        }
        // SAFETY: prctl is async-signal-safe; between fork and exec nothing else runs in the child.
        unsafe {
            command.pre_exec(|| {
                // The node dies with this process, whatever ends it.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.setup.exe.display()))?;
        CHILDREN.lock().unwrap().push(child.id());
        self.procs.insert(
            id,
            Process {
                child: Some(child),
                paused: false,
            },
        );
        Ok(())
    }

    /// Whether node `id` runs (paused or not).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.procs.get(&id).is_some_and(|p| p.child.is_some())
    }

    /// Whether node `id` is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.procs.get(&id).is_some_and(|p| p.paused)
    }

    /// Kills node `id` with SIGKILL (a crash; with a power-loss disk, a power cut) and reaps it.
    pub fn kill(&mut self, id: NodeId) {
        if let Some(p) = self.procs.get_mut(&id) {
            if let Some(mut child) = p.child.take() {
                let _ = child.kill();
                let _ = child.wait();
                CHILDREN.lock().unwrap().retain(|&pid| pid != child.id());
            }
            p.paused = false;
        }
    }

    /// Pauses node `id` (SIGSTOP).
    pub fn pause(&mut self, id: NodeId) {
        if let Some(p) = self.procs.get_mut(&id) {
            if let Some(child) = &p.child {
                signal(child.id(), libc::SIGSTOP);
                p.paused = true;
            }
        }
    }

    /// Resumes node `id` (SIGCONT).
    pub fn resume(&mut self, id: NodeId) {
        if let Some(p) = self.procs.get_mut(&id) {
            if let Some(child) = &p.child {
                signal(child.id(), libc::SIGCONT);
            }
            p.paused = false;
        }
    }

    /// Ends every fault: the network healed, paused nodes resumed, dead ones started again.
    pub fn heal_all(&mut self) -> Result<()> {
        self.net.heal();
        for id in self.ids() {
            if self.is_paused(id) {
                self.resume(id);
            }
            if !self.is_up(id) {
                self.spawn(id)?;
            }
        }
        if !self.removed.is_empty() {
            self.restore_members(Duration::from_secs(20))?;
        }
        Ok(())
    }

    /// Asks node `leader` to change the membership, waiting at most 2 s for the change to commit; what
    /// came of it, in words.
    fn change_membership(&self, leader: NodeId, change: ConfChange) -> String {
        if !self.is_up(leader) || self.is_paused(leader) {
            return "not running".into();
        }
        let mut addresses = BTreeMap::new();
        if let ConfChange::AddLearner(id) = change {
            addresses.insert(id, self.peer[&id].to_string());
        }
        let reply = Client::connect(self.client[&leader], Duration::from_secs(2))
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                c.admin(
                    &self.admin,
                    AdminRequest::ChangeMembership(change, addresses),
                )
                .map_err(|e| e.to_string())
            });
        match reply {
            Ok(Reply::Committed { index, .. }) => format!("committed at {index}"),
            Ok(other) => format!("{other:?}"),
            Err(e) => e,
        }
    }

    /// Asks node `leader` to remove node `id` (which runs on, outside the cluster, until the fault heals);
    /// what came of it, in words.
    pub fn remove_member(&mut self, leader: NodeId, id: NodeId) -> String {
        self.removed.insert(id);
        self.change_membership(leader, ConfChange::Remove(id))
    }

    /// Adds back the nodes that were removed, each as a learner and then a voter, until the leader's
    /// committed configuration has every node as a voter again; fails after `patience`.
    fn restore_members(&mut self, patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        let all: BTreeSet<NodeId> = self.ids().into_iter().collect();
        let mut last = String::new();
        while Instant::now() < deadline {
            let leading = self
                .leader()
                .and_then(|l| self.status(l, Duration::from_millis(300)));
            let Some(status) = leading else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let m = &status.membership;
            if m.voters == all && !m.is_joint() && m.learners.is_empty() {
                if status.membership_index <= status.commit_index {
                    self.removed.clear();
                    return Ok(());
                }
            } else if let Some(&id) = all.iter().find(|&id| !m.voters.contains(id)) {
                let change = if m.learners.contains(&id) {
                    ConfChange::Promote(id)
                } else {
                    ConfChange::AddLearner(id)
                };
                last = format!(
                    "{change:?}: {}",
                    self.change_membership(status.id, change.clone())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the removed nodes {:?} were not all voters again within {} s (last: {last})",
            self.removed,
            patience.as_secs()
        )
    }

    /// Checks that no node exited by itself (a crash of the process is a failure of the run).
    pub fn exited(&mut self) -> Vec<(NodeId, String)> {
        let mut exited = Vec::new();
        for (&id, p) in self.procs.iter_mut() {
            if let Some(child) = &mut p.child {
                if let Ok(Some(status)) = child.try_wait() {
                    exited.push((id, status.to_string()));
                    CHILDREN.lock().unwrap().retain(|&pid| pid != child.id());
                    p.child = None;
                }
            }
        }
        exited
    }

    /// Node `id`'s status, if it answers within `patience`.
    pub fn status(&self, id: NodeId, patience: Duration) -> Option<Status> {
        if !self.is_up(id) || self.is_paused(id) {
            return None;
        }
        let mut client = Client::connect(self.client[&id], patience).ok()?;
        match client.call(Request::Status).ok()? {
            Reply::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Asks node `leader` to hand its leadership over to `target`; whether it began the transfer.
    pub fn transfer_leader(&self, leader: NodeId, target: NodeId) -> bool {
        if !self.is_up(leader) || self.is_paused(leader) {
            return false;
        }
        Client::connect(self.client[&leader], Duration::from_millis(300))
            .ok()
            .and_then(|mut c| {
                c.admin(&self.admin, AdminRequest::TransferLeader(target))
                    .ok()
            })
            == Some(Reply::TransferStarted)
    }

    /// The node that leads in the highest term any node reports, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.ids()
            .into_iter()
            .filter_map(|id| self.status(id, Duration::from_millis(300)))
            .filter(|s| s.role == raft::Role::Leader)
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    /// Waits until some node leads.
    pub fn await_leader(&self, patience: Duration) -> Result<NodeId> {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Some(leader) = self.leader() {
                return Ok(leader);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "no node led within {} s (see the logs in {})",
            patience.as_secs(),
            self.setup.dir.display()
        )
    }

    /// The directory of the run.
    pub fn dir(&self) -> &Path {
        &self.setup.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }
}

/// Opens a file for a run's artifact.
pub fn artifact(dir: &Path, name: &str) -> Result<File> {
    File::create(dir.join(name))
        .with_context(|| format!("cannot write {}", dir.join(name).display()))
}
