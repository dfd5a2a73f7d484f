//! Part 2B: log replication (`specs/lab-tester.md`, `## 2B`).

use super::cmd::Cmd;
use super::config::{fatal, Config, RAFT_ELECTION_TIMEOUT_MS};
use crate::sim::Sim;

/// Formats a list like Go's `%v` of a slice: `[1 2 3]`.
pub(crate) fn go_list<T: std::fmt::Display>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `randstring(n)`: `n` characters of URL-safe base64 of random bytes.
fn randstring(cfg: &Config, n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..n)
        .map(|_| ALPHABET[cfg.sim().rand_below(64) as usize] as char)
        .collect()
}

/// TestBasicAgree2B.
pub async fn basic_agree_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): basic agreement");

    let iters = 3;
    for index in 1..=iters {
        let (nd, _) = cfg.n_committed(index);
        if nd > 0 {
            fatal("some have committed before Start()");
        }
        let xindex = cfg.one(index as i64 * 100, servers, false).await;
        if xindex != index {
            fatal(format!("got index {xindex} but expected {index}"));
        }
    }

    cfg.end();
    cfg.cleanup();
}

/// TestRPCBytes2B: each command should be sent to each peer just once.
pub async fn rpc_bytes_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): RPC byte count");

    cfg.one(99, servers, false).await;
    let bytes0 = cfg.bytes_total();

    let iters = 10;
    let mut sent: u64 = 0;
    for index in 2..iters + 2 {
        let cmd = randstring(&cfg, 5000);
        let len = cmd.len() as u64;
        let xindex = cfg.one(Cmd::Str(cmd), servers, false).await;
        if xindex != index {
            fatal(format!("got index {xindex} but expected {index}"));
        }
        sent += len;
    }

    let bytes1 = cfg.bytes_total();
    let got = bytes1 - bytes0;
    let expected = servers as u64 * sent;
    if got > expected + 50000 {
        fatal(format!(
            "too many RPC bytes; got {got}, expected {expected}"
        ));
    }

    cfg.end();
    cfg.cleanup();
}

/// TestFollowerFailure2B (in 2023 tables TestFor2023TestFollowerFailure2B).
pub async fn follower_failure_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): test progressive failure of followers");

    cfg.one(101, servers, false).await;

    // Disconnect one follower from the network.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect((leader1 + 1) % servers);

    // The leader and remaining follower should be able to agree despite the disconnected
    // follower.
    cfg.one(102, servers - 1, false).await;
    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
    cfg.one(103, servers - 1, false).await;

    // Disconnect the remaining follower.
    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect((leader2 + 1) % servers);
    cfg.disconnect((leader2 + 2) % servers);

    // Submit a command.
    let (index, _, ok) = cfg.start(leader2, &Cmd::Int(104));
    if !ok {
        fatal("leader rejected Start()");
    }
    if index != 4 {
        fatal(format!("expected index 4, got {index}"));
    }

    cfg.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;

    // Check that command 104 did not commit.
    let (n, _) = cfg.n_committed(index);
    if n > 0 {
        fatal(format!("{n} committed but no majority"));
    }

    cfg.end();
    cfg.cleanup();
}

/// TestLeaderFailure2B (in 2023 tables TestFor2023TestLeaderFailure2B).
pub async fn leader_failure_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): test failure of leaders");

    cfg.one(101, servers, false).await;

    // Disconnect the first leader.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);

    // The remaining followers should elect a new leader.
    cfg.one(102, servers - 1, false).await;
    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
    cfg.one(103, servers - 1, false).await;

    // Disconnect the new leader.
    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);

    // Submit a command to each server.
    for i in 0..servers {
        cfg.start(i, &Cmd::Int(104));
    }

    cfg.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;

    // Check that command 104 did not commit.
    let (n, _) = cfg.n_committed(4);
    if n > 0 {
        fatal(format!("{n} committed but no majority"));
    }

    cfg.end();
    cfg.cleanup();
}

/// TestFailAgree2B.
pub async fn fail_agree_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): agreement after follower reconnects");

    cfg.one(101, servers, false).await;

    // Disconnect one follower from the network.
    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 1) % servers);

    // The leader and remaining follower should be able to agree despite the disconnected
    // follower.
    cfg.one(102, servers - 1, false).await;
    cfg.one(103, servers - 1, false).await;
    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
    cfg.one(104, servers - 1, false).await;
    cfg.one(105, servers - 1, false).await;

    // Re-connect.
    cfg.connect((leader + 1) % servers);

    // The full set of servers should preserve previous agreements, and be able to agree on new
    // commands.
    cfg.one(106, servers, true).await;
    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
    cfg.one(107, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestFailNoAgree2B.
pub async fn fail_no_agree_2b(sim: Sim) {
    let servers = 5;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): no agreement if too many followers disconnect");

    cfg.one(10, servers, false).await;

    // 3 of 5 followers disconnect.
    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 1) % servers);
    cfg.disconnect((leader + 2) % servers);
    cfg.disconnect((leader + 3) % servers);

    let (index, _, ok) = cfg.start(leader, &Cmd::Int(20));
    if !ok {
        fatal("leader rejected Start()");
    }
    if index != 2 {
        fatal(format!("expected index 2, got {index}"));
    }

    cfg.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;

    let (n, _) = cfg.n_committed(index);
    if n > 0 {
        fatal(format!("{n} committed but no majority"));
    }

    // Repair.
    cfg.connect((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.connect((leader + 3) % servers);

    // The disconnected majority may have chosen a leader from among their own ranks, forgetting
    // index 2.
    let leader2 = cfg.check_one_leader().await;
    let (index2, _, ok2) = cfg.start(leader2, &Cmd::Int(30));
    if !ok2 {
        fatal("leader2 rejected Start()");
    }
    if !(2..=3).contains(&index2) {
        fatal(format!("unexpected index {index2}"));
    }

    cfg.one(1000, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestConcurrentStarts2B.
pub async fn concurrent_starts_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): concurrent Start()s");

    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            // Give the solution some time to settle.
            cfg.sleep_ms(3000).await;
        }

        let leader = cfg.check_one_leader().await;
        let (_, term, ok) = cfg.start(leader, &Cmd::Int(1));
        if !ok {
            // Leader moved on really quickly.
            continue;
        }

        let iters = 5;
        // Go runs the five Start()s in goroutines, in whatever order the scheduler picks; the
        // simulator runs tasks in spawn order, so spawn them in a random order.
        let mut order: Vec<i64> = (0..iters).collect();
        for k in (1..order.len()).rev() {
            let j = cfg.sim().rand_below(k as u64 + 1) as usize;
            order.swap(k, j);
        }
        let mut handles = Vec::new();
        for i in order {
            let c = cfg.clone();
            handles.push(cfg.sim().spawn(async move {
                let (index, term1, ok) = c.start(leader, &Cmd::Int(100 + i));
                (term1 == term && ok).then_some(index)
            }));
        }
        let mut is = Vec::new();
        for h in handles {
            if let Some(index) = h.await {
                is.push(index);
            }
        }

        for j in 0..servers {
            if cfg.get_state(j).0 != term {
                // Term changed -- can't expect low RPC counts.
                continue 'tries;
            }
        }

        let mut cmds = Vec::new();
        for index in is {
            match cfg.wait(index, servers, term as i64).await {
                // Peers have moved on to later terms, so we can't expect all Start()s to have
                // succeeded.
                None => continue 'tries,
                Some(Cmd::Int(ix)) => cmds.push(ix),
                Some(cmd) => fatal(format!("value {cmd} is not an int")),
            }
        }

        for ii in 0..iters {
            let x = 100 + ii;
            if !cmds.contains(&x) {
                fatal(format!("cmd {x} missing in {}", go_list(&cmds)));
            }
        }

        success = true;
        break;
    }

    if !success {
        fatal("term changed too often");
    }

    cfg.end();
    cfg.cleanup();
}

/// TestRejoin2B.
pub async fn rejoin_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): rejoin of partitioned leader");

    cfg.one(101, servers, true).await;

    // Leader network failure.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);

    // Make the old leader try to agree on some entries.
    cfg.start(leader1, &Cmd::Int(102));
    cfg.start(leader1, &Cmd::Int(103));
    cfg.start(leader1, &Cmd::Int(104));

    // New leader commits, also for index=2.
    cfg.one(103, 2, true).await;

    // New leader network failure.
    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);

    // Old leader connected again.
    cfg.connect(leader1);

    cfg.one(104, 2, true).await;

    // All together now.
    cfg.connect(leader2);

    cfg.one(105, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestBackup2B.
pub async fn backup_2b(sim: Sim) {
    let servers = 5;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): leader backs up quickly over incorrect follower logs");

    cfg.one(cfg.rand_int(), servers, true).await;

    // Put the leader and one follower in a partition.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect((leader1 + 2) % servers);
    cfg.disconnect((leader1 + 3) % servers);
    cfg.disconnect((leader1 + 4) % servers);

    // Submit lots of commands that won't commit.
    for _ in 0..50 {
        cfg.start(leader1, &Cmd::Int(cfg.rand_int()));
    }

    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS / 2).await;

    cfg.disconnect(leader1 % servers);
    cfg.disconnect((leader1 + 1) % servers);

    // Allow the other partition to recover.
    cfg.connect((leader1 + 2) % servers);
    cfg.connect((leader1 + 3) % servers);
    cfg.connect((leader1 + 4) % servers);

    // Lots of successful commands to the new group.
    for _ in 0..50 {
        cfg.one(cfg.rand_int(), 3, true).await;
    }

    // Now another partitioned leader and one follower.
    let leader2 = cfg.check_one_leader().await;
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    cfg.disconnect(other);

    // Lots more commands that won't commit.
    for _ in 0..50 {
        cfg.start(leader2, &Cmd::Int(cfg.rand_int()));
    }

    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS / 2).await;

    // Bring the original leader back to life.
    for i in 0..servers {
        cfg.disconnect(i);
    }
    cfg.connect(leader1 % servers);
    cfg.connect((leader1 + 1) % servers);
    cfg.connect(other);

    // Lots of successful commands to the new group.
    for _ in 0..50 {
        cfg.one(cfg.rand_int(), 3, true).await;
    }

    // Now everyone.
    for i in 0..servers {
        cfg.connect(i);
    }
    cfg.one(cfg.rand_int(), servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestCount2B.
pub async fn count_2b(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2B): RPC counts aren't too high");

    let rpcs = |cfg: &Config| -> u64 { (0..servers).map(|j| cfg.rpc_count(j)).sum() };

    let _ = cfg.check_one_leader().await;

    let total1 = rpcs(&cfg);
    if !(1..=30).contains(&total1) {
        fatal(format!(
            "too many or few RPCs ({total1}) to elect initial leader"
        ));
    }

    let mut total2 = 0;
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            // Give the solution some time to settle.
            cfg.sleep_ms(3000).await;
        }

        let leader = cfg.check_one_leader().await;
        let total1 = rpcs(&cfg);

        let iters: u64 = 10;
        let (starti, term, ok) = cfg.start(leader, &Cmd::Int(1));
        if !ok {
            // Leader moved on really quickly.
            continue;
        }
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            // Go's rand.Int31(): a non-negative 31-bit integer.
            let x = cfg.rand_int() >> 32;
            cmds.push(x);
            let (index1, term1, ok) = cfg.start(leader, &Cmd::Int(x));
            if term1 != term {
                // Term changed while starting.
                continue 'tries;
            }
            if !ok {
                // No longer the leader, so the term has changed.
                continue 'tries;
            }
            if starti + i != index1 {
                fatal("Start() failed");
            }
        }

        for i in 1..iters + 1 {
            let cmd = cfg.wait(starti + i, servers, term as i64).await;
            match cmd {
                // Term changed -- try again.
                None => continue 'tries,
                Some(Cmd::Int(ix)) if ix == cmds[(i - 1) as usize] => {}
                Some(cmd) => fatal(format!(
                    "wrong value {cmd} committed for index {}; expected {}",
                    starti + i,
                    go_list(&cmds)
                )),
            }
        }

        let mut failed = false;
        total2 = 0;
        for j in 0..servers {
            if cfg.get_state(j).0 != term {
                // Term changed -- can't expect low RPC counts; keep going to update total2.
                failed = true;
            }
            total2 += cfg.rpc_count(j);
        }

        if failed {
            continue 'tries;
        }

        if total2 - total1 > (iters + 1 + 3) * 3 {
            fatal(format!(
                "too many RPCs ({}) for {iters} entries",
                total2 - total1
            ));
        }

        success = true;
        break;
    }

    if !success {
        fatal("term changed too often");
    }

    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;

    let total3: u64 = rpcs(&cfg);
    if total3 - total2 > 3 * 20 {
        fatal(format!(
            "too many RPCs ({}) for 1 second of idleness",
            total3 - total2
        ));
    }

    cfg.end();
    cfg.cleanup();
}
