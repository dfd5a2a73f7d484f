//! Three `raft-node` processes on loopback. A client proposes without pause while the leader is killed
//! with SIGKILL and restarted, again and again (and every third time, the whole cluster); then every
//! proposal that was reported committed is present at its index, on every node. The run is made on the
//! file system, and on the power-loss disk (`--test-disk power-loss`), where SIGKILL loses every write
//! that was not synced; with syncs that do nothing there, the run loses acknowledged proposals and says so.
//! Also: the leadership handed from node to node on request while the client writes, and the command
//! line's errors.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft::Role;
use raft_node::client::{Client, Reply, Request};
use raft_node::host::Status;

const EXE: &str = env!("CARGO_BIN_EXE_raft-node");

/// A proposal reported committed: its index and command.
type Committed = (u64, Vec<u8>);

fn free_addr() -> SocketAddr {
    raft_node::tcp::restartable_addr().expect("a free port")
}

struct Node {
    args: Vec<String>,
    client: SocketAddr,
    child: Child,
}

impl Node {
    fn start(args: Vec<String>, client: SocketAddr) -> Node {
        let child = Command::new(EXE)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Node {
            args,
            client,
            child,
        }
    }

    /// SIGKILL (nothing if it is dead already).
    fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }

    fn restart(&mut self) {
        self.kill();
        *self = Node::start(self.args.clone(), self.client);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call(addr: SocketAddr, request: Request) -> Option<Reply> {
    Client::connect(addr, Duration::from_secs(1))
        .ok()?
        .call(request)
        .ok()
}

fn status(addr: SocketAddr) -> Option<Status> {
    match call(addr, Request::Status)? {
        Reply::Status(s) => Some(s),
        _ => None,
    }
}

#[test]
fn committed_proposals_survive_the_leader_killed_again_and_again() {
    let committed = kill_again_and_again(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(committed >= 20, "{committed} proposals committed");
}

/// The same run on the power-loss disk: a SIGKILL loses every write that was not synced, as a power cut
/// would, and every committed proposal survives all the same.
#[test]
fn committed_proposals_survive_power_loss_again_and_again() {
    let started = Instant::now();
    let committed =
        kill_again_and_again(&["--test-disk", "power-loss"]).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "power-loss run: {committed} proposals committed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(committed >= 20, "{committed} proposals committed");
}

/// The power-loss test bites: with syncs that do nothing, the killed nodes lose acknowledged proposals,
/// and the run says which.
#[test]
fn the_power_loss_test_catches_a_sync_that_does_nothing() {
    let error = kill_again_and_again(&["--test-disk", "power-loss-no-sync"])
        .expect_err("nothing is ever made durable");
    assert!(error.contains("was lost"), "{error}");
}

/// Three nodes of the command log, with `extra` flags; their data directories live as long as it does.
struct Cluster {
    nodes: Vec<Node>,
    clients: Vec<SocketAddr>,
    peers: Vec<SocketAddr>,
    secret: std::path::PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

/// `id=address,...` for the nodes at `addrs` (node `i + 1` at `addrs[i]`).
fn id_list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// The flags of node `id` of the command log.
fn node_args(id: usize, peers: &str, dir: &Path, client: SocketAddr, secret: &Path) -> Vec<String> {
    vec![
        "--id".to_string(),
        id.to_string(),
        "--peers".into(),
        peers.to_string(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--client-addr".into(),
        client.to_string(),
        "--snapshot-every".into(),
        "40".into(),
        "--secret-file".into(),
        secret.display().to_string(),
        // The command log: the test reads each proposal back at its index.
        "--machine".into(),
        "log".into(),
    ]
}

fn start_cluster(extra: &[&str]) -> Cluster {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = dirs[0].path().join("secret");
    std::fs::write(&secret, "the test cluster's secret\n").unwrap();
    let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let clients: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let mut args = node_args(i + 1, &id_list(&peers), dirs[i].path(), clients[i], &secret);
            args.extend(extra.iter().map(|a| a.to_string()));
            Node::start(args, clients[i])
        })
        .collect();
    Cluster {
        nodes,
        clients,
        peers,
        secret,
        _dirs: dirs,
    }
}

/// A client that proposes one command at a time, to whichever node leads, until told to stop; it keeps
/// what was reported committed.
struct Proposer {
    committed: Arc<Mutex<Vec<Committed>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Proposer {
    fn start(clients: &[SocketAddr]) -> Proposer {
        let committed: Arc<Mutex<Vec<Committed>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (committed, stop, clients) = (committed.clone(), stop.clone(), clients.to_vec());
            std::thread::spawn(move || {
                let mut target = 0;
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let command = format!("command {k}").into_bytes();
                    match call(clients[target], Request::Propose(command.clone())) {
                        Some(Reply::Committed { index, .. }) => {
                            committed.lock().unwrap().push((index, command));
                            k += 1;
                        }
                        Some(Reply::NotLeader(Some(leader))) => target = leader as usize - 1,
                        _ => {
                            target = (target + 1) % clients.len();
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            })
        };
        Proposer {
            committed,
            stop,
            thread,
        }
    }

    fn count(&self) -> usize {
        self.committed.lock().unwrap().len()
    }

    /// Stops the client; what it was told committed.
    fn stop(self) -> Vec<Committed> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        let committed = self.committed.lock().unwrap().clone();
        committed
    }
}

/// The node that leads the highest term, if any (by position).
fn leader(clients: &[SocketAddr]) -> Option<usize> {
    let statuses: Vec<Status> = clients.iter().filter_map(|&a| status(a)).collect();
    let top = statuses.iter().map(|s| s.term).max()?;
    statuses
        .iter()
        .find(|s| s.term == top && s.role == Role::Leader)
        .map(|s| s.id as usize - 1)
}

/// Every node catches up, and has every committed proposal at its index.
fn every_node_has(clients: &[SocketAddr], committed: &[Committed]) -> Result<(), String> {
    let last = committed.iter().map(|c| c.0).max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut caught_up = true;
    while clients
        .iter()
        .any(|&a| status(a).is_none_or(|s| s.last_applied < last))
    {
        if Instant::now() > deadline {
            caught_up = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for &addr in clients {
        for (index, command) in committed {
            let got = call(addr, Request::Query(index.to_le_bytes().to_vec()));
            if got != Some(Reply::Value(command.clone())) {
                return Err(format!(
                    "{:?}, committed at index {index}, was lost: {addr} has {got:?} there",
                    String::from_utf8_lossy(command)
                ));
            }
        }
    }
    if !caught_up {
        return Err(format!(
            "the nodes did not catch up to {last}: {:?}",
            clients.iter().map(|&a| status(a)).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// Three nodes (with `extra` arguments) and a client that proposes without pause while the leader is
/// killed with SIGKILL and restarted, eight times, every third time the whole cluster. Returns how many
/// proposals were reported committed, or the first one that a node lost.
fn kill_again_and_again(extra: &[&str]) -> Result<usize, String> {
    // `_dirs` keeps the data directories for the whole run.
    let Cluster {
        mut nodes,
        clients,
        _dirs,
        ..
    } = start_cluster(extra);
    let proposer = Proposer::start(&clients);
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while kills < 8 {
        if Instant::now() > deadline {
            proposer.stop();
            return Err(format!("only {kills} kills in 60 s"));
        }
        std::thread::sleep(Duration::from_millis(300));
        let before = proposer.count();
        if let Some(l) = leader(&clients) {
            // Kill it only once it has committed something since the last kill. Every third time, kill
            // every node: then what was committed survives only on disk.
            if before > 0 {
                if kills % 3 == 2 {
                    for node in &mut nodes {
                        node.kill();
                    }
                    for node in &mut nodes {
                        node.restart();
                    }
                } else {
                    nodes[l].restart();
                }
                kills += 1;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let committed = proposer.stop();
    every_node_has(&clients, &committed)?;
    for node in &mut nodes {
        node.kill();
    }
    Ok(committed.len())
}

/// `raft-node admin transfer-leader`: while a client writes without pause, the leadership moves to each
/// follower in turn, and the command says so once it has; every write acknowledged is at its index on
/// every node in the end. A node not in the list is a usage error.
#[test]
fn leadership_moves_where_it_is_asked_while_a_client_writes() {
    let cluster = start_cluster(&[]);
    let clients = &cluster.clients;
    let list = (0..3)
        .map(|i| format!("{}={}", i + 1, clients[i]))
        .collect::<Vec<_>>()
        .join(",");
    let deadline = Instant::now() + Duration::from_secs(10);
    while leader(clients).is_none() {
        assert!(Instant::now() < deadline, "no leader within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let proposer = Proposer::start(clients);
    for round in 0..4 {
        let from = leader(clients).expect("a leader");
        let to = (from + 1 + round % 2) % 3;
        let out = Command::new(EXE)
            .args(["admin", "--nodes", &list, "--secret-file"])
            .arg(&cluster.secret)
            .arg("transfer-leader")
            .arg((to + 1).to_string())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.starts_with(&format!("node {} leads term ", to + 1)),
            "{said}"
        );
        let now = status(clients[to]).expect("the new leader answers");
        assert_eq!(now.role, Role::Leader, "{now:?}");
    }
    let out = Command::new(EXE)
        .args(["admin", "--nodes", &list, "--secret-file"])
        .arg(&cluster.secret)
        .args(["transfer-leader", "9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("node 9 is not in --nodes"));
    std::thread::sleep(Duration::from_millis(300));
    let committed = proposer.stop();
    assert!(committed.len() > 10, "{} writes", committed.len());
    every_node_has(clients, &committed).unwrap();
}

/// Runs `raft-node admin --nodes LIST --secret-file SECRET ARGS`; its standard output, or what it said on
/// failure.
fn admin(list: &str, secret: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(EXE)
        .args(["admin", "--nodes", list, "--secret-file"])
        .arg(secret)
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(said)
    } else {
        Err(format!(
            "admin {args:?}: {:?}: {said}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Waits until `until` holds of node `addr`'s status, at most 20 s.
fn wait_for(addr: SocketAddr, what: &str, until: impl Fn(&Status) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = status(addr);
        if now.as_ref().is_some_and(&until) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 20 s: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A node is replaced while a client writes without pause: a fourth process starts with `--join`, is added
/// as a learner, catches up and is promoted; then the leader is removed and its process killed. The
/// cluster goes on committing without it, the new node survives a restart (its configuration comes from
/// its log, not from its flags), and every acknowledged write is at its index on every remaining node.
#[test]
fn a_node_is_replaced_while_a_client_writes_and_every_acknowledged_write_survives() {
    let mut cluster = start_cluster(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (peer, client) = (free_addr(), free_addr());
    cluster.peers.push(peer);
    cluster.clients.push(client);
    let clients = cluster.clients.clone();
    let list = id_list(&clients[..3]);
    wait_for(clients[0], "a leader", |s| s.leader.is_some());
    let proposer = Proposer::start(&clients);
    std::thread::sleep(Duration::from_millis(300));

    // The new node: told where the others are, and that it joins.
    let mut args = node_args(
        4,
        &id_list(&cluster.peers),
        dir.path(),
        client,
        &cluster.secret,
    );
    args.push("--join".into());
    cluster.nodes.push(Node::start(args, client));
    wait_for(client, "the new node answers", |s| {
        s.membership.voters.is_empty() && s.role == Role::Follower
    });
    let said = admin(
        &list,
        &cluster.secret,
        &["add-learner", "4", &peer.to_string()],
    )
    .unwrap();
    assert!(said.contains("voters 1,2,3, learners 4"), "{said}");
    // Asked again, the change is found made.
    let again = admin(
        &list,
        &cluster.secret,
        &["add-learner", "4", &peer.to_string()],
    )
    .unwrap();
    assert!(again.contains("learners 4"), "{again}");
    let leading = status(clients[leader(&clients[..3]).expect("a leader")]).unwrap();
    wait_for(client, "the learner catches up", |s| {
        s.membership.learners.contains(&4) && s.last_applied >= leading.commit_index
    });
    let said = admin(&list, &cluster.secret, &["promote", "4"]).unwrap();
    assert!(said.contains("voters 1,2,3,4, learners -"), "{said}");
    assert!(admin(&list, &cluster.secret, &["promote", "9"])
        .unwrap_err()
        .contains("refused"));
    // Without the cluster's secret, nothing changes.
    let stranger = dir.path().join("not-the-secret");
    std::fs::write(&stranger, "some other secret of sixteen bytes\n").unwrap();
    let refused = admin(&list, &stranger, &["remove", "1"]).unwrap_err();
    assert!(refused.contains("not authenticated"), "{refused}");
    let forged = Client::connect(clients[0], Duration::from_secs(1))
        .unwrap()
        .call(Request::Admin(
            raft_node::client::AdminRequest::ChangeMembership(
                raft::ConfChange::Remove(1),
                Default::default(),
            ),
            [0; 32],
        ))
        .unwrap();
    assert!(
        matches!(&forged, Reply::Refused(why) if why.contains("not authenticated")),
        "{forged:?}"
    );
    wait_for(clients[0], "node 1 still a voter", |s| {
        s.membership.voters.contains(&1)
    });

    // The leader leaves; the other three go on.
    let removed = leader(&clients[..3]).expect("a leader");
    let before = proposer.count();
    let all = id_list(&clients);
    let said = admin(
        &all,
        &cluster.secret,
        &["remove", &(removed + 1).to_string()],
    )
    .unwrap();
    let voters: Vec<String> = (1..=4)
        .filter(|&id| id != removed + 1)
        .map(|id| id.to_string())
        .collect();
    assert!(
        said.contains(&format!("voters {}, learners -", voters.join(","))),
        "{said}"
    );
    cluster.nodes[removed].kill();
    let rest: Vec<SocketAddr> = (0..4)
        .filter(|&i| i != removed)
        .map(|i| clients[i])
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while proposer.count() < before + 20 {
        assert!(Instant::now() < deadline, "no writes after the removal");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The new node's configuration survives its restart.
    cluster.nodes[3].restart();
    wait_for(client, "the new node is back as a voter", |s| {
        s.membership.voters.contains(&4) && !s.membership.is_member(removed as u64 + 1)
    });
    std::thread::sleep(Duration::from_millis(300));
    let committed = proposer.stop();
    every_node_has(&rest, &committed).unwrap();
}

#[test]
fn bad_flags_and_unusable_directories_are_clear_errors_with_status_2() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "sixteen bytes or more\n").unwrap();
    let secret = secret.path().display().to_string();
    let run = |args: &[&str]| {
        let out = Command::new(EXE)
            .args(args)
            .args(["--secret-file", &secret])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--id", "1", "--peers", "1=nowhere", "--data-dir", "x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("'nowhere' is not an address"), "{err}");
    let (code, err) = run(&["--id", "4", "--peers", "1=127.0.0.1:1", "--data-dir", "x"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--id 4 is not one of the ids in --peers"),
        "{err}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let (code, err) = run(&[
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:1",
        "--data-dir",
        &file.path().display().to_string(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot use data directory"), "{err}");
    let (code, err) = run(&["--peers", "1=127.0.0.1:1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--id"), "{err}");

    // The secret: required, readable, long enough.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let node = ["--id", "1", "--peers", "1=127.0.0.1:1", "--data-dir", &data];
    let out = Command::new(EXE).args(node).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret-file"));
    let short = dir.path().join("short");
    std::fs::write(&short, "too short\n").unwrap();
    for (file, says) in [
        (short, "a secret of 9 bytes is too short"),
        (dir.path().join("missing"), "missing: No such file"),
    ] {
        let out = Command::new(EXE)
            .args(node)
            .arg("--secret-file")
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("cannot use --secret-file") && err.contains(says),
            "{err}"
        );
    }
    let (code, out) = {
        let out = Command::new(EXE).arg("--help").output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0));
    for word in [
        "--peers",
        "--data-dir",
        "--client-addr",
        "--secret-file",
        "--test-disk",
        "--machine",
        "local-cluster",
        "propose",
        "kv",
        "status",
    ] {
        assert!(out.contains(word), "--help does not mention {word}");
    }
}
