//! Part 2C: persistence (`specs/lab-tester.md`, `## 2C`).

use super::cmd::Cmd;
use super::config::{fatal, Config, RAFT_ELECTION_TIMEOUT_MS};
use crate::sim::Sim;

/// TestPersist12C.
pub async fn persist1_2c(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2C): basic persistence");

    cfg.one(11, servers, true).await;

    // Crash and re-start all.
    for i in 0..servers {
        cfg.start1(i);
    }
    for i in 0..servers {
        cfg.disconnect(i);
        cfg.connect(i);
    }

    cfg.one(12, servers, true).await;

    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);
    cfg.start1(leader1);
    cfg.connect(leader1);

    cfg.one(13, servers, true).await;

    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);
    cfg.one(14, servers - 1, true).await;
    cfg.start1(leader2);
    cfg.connect(leader2);

    cfg.wait(4, servers, -1).await; // wait for leader2 to join before killing i3

    let i3 = (cfg.check_one_leader().await + 1) % servers;
    cfg.disconnect(i3);
    cfg.one(15, servers - 1, true).await;
    cfg.start1(i3);
    cfg.connect(i3);

    cfg.one(16, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestPersist22C.
pub async fn persist2_2c(sim: Sim) {
    let servers = 5;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2C): more persistence");

    let mut index = 1;
    for _ in 0..5 {
        cfg.one(10 + index, servers, true).await;
        index += 1;

        let leader1 = cfg.check_one_leader().await;

        cfg.disconnect((leader1 + 1) % servers);
        cfg.disconnect((leader1 + 2) % servers);

        cfg.one(10 + index, servers - 2, true).await;
        index += 1;

        cfg.disconnect(leader1 % servers);
        cfg.disconnect((leader1 + 3) % servers);
        cfg.disconnect((leader1 + 4) % servers);

        cfg.start1((leader1 + 1) % servers);
        cfg.start1((leader1 + 2) % servers);
        cfg.connect((leader1 + 1) % servers);
        cfg.connect((leader1 + 2) % servers);

        cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;

        cfg.start1((leader1 + 3) % servers);
        cfg.connect((leader1 + 3) % servers);

        cfg.one(10 + index, servers - 2, true).await;
        index += 1;

        cfg.connect((leader1 + 4) % servers);
        cfg.connect(leader1 % servers);
    }

    cfg.one(1000, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestPersist32C.
pub async fn persist3_2c(sim: Sim) {
    let servers = 3;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2C): partitioned leader and one follower crash, leader restarts");

    cfg.one(101, 3, true).await;

    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 2) % servers);

    cfg.one(102, 2, true).await;

    cfg.crash1(leader % servers);
    cfg.crash1((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.start1(leader % servers);
    cfg.connect(leader % servers);

    cfg.one(103, 2, true).await;

    cfg.start1((leader + 1) % servers);
    cfg.connect((leader + 1) % servers);

    cfg.one(104, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// Go's sleep in the Figure 8 tests: with probability 1/10 up to half an election timeout,
/// otherwise up to 12 ms.
async fn figure8_sleep(cfg: &Config) {
    let ms = if cfg.rand_int() % 1000 < 100 {
        cfg.rand_int() % (RAFT_ELECTION_TIMEOUT_MS as i64 / 2)
    } else {
        cfg.rand_int() % 13
    };
    cfg.sleep_ms(ms as u64).await;
}

/// TestFigure82C: the Figure 8 scenario, with leaders crashing at random.
pub async fn figure8_2c(sim: Sim) {
    let servers = 5;
    let cfg = Config::make(&sim, servers, false);
    cfg.begin("Test (2C): Figure 8");

    cfg.one(cfg.rand_int(), 1, true).await;

    let mut nup = servers;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..servers {
            if cfg.is_running(i) {
                let (_, _, ok) = cfg.start(i, &Cmd::Int(cfg.rand_int()));
                if ok {
                    leader = Some(i);
                }
            }
        }

        figure8_sleep(&cfg).await;

        if let Some(leader) = leader {
            cfg.crash1(leader);
            nup -= 1;
        }

        if nup < 3 {
            let s = cfg.rand_int() as usize % servers;
            if !cfg.is_running(s) {
                cfg.start1(s);
                cfg.connect(s);
                nup += 1;
            }
        }
    }

    for i in 0..servers {
        if !cfg.is_running(i) {
            cfg.start1(i);
            cfg.connect(i);
        }
    }

    cfg.one(cfg.rand_int(), servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestUnreliableAgree2C.
pub async fn unreliable_agree_2c(sim: Sim) {
    let servers = 5;
    let cfg = Config::make(&sim, servers, true);
    cfg.begin("Test (2C): unreliable agreement");

    let mut handles = Vec::new();
    for iters in 1..50i64 {
        for j in 0..4 {
            let c = cfg.clone();
            handles.push(cfg.sim().spawn(async move {
                c.one(100 * iters + j, 1, true).await;
            }));
        }
        cfg.one(iters, 1, true).await;
    }

    cfg.set_unreliable(false);

    for h in handles {
        h.await;
    }

    cfg.one(100, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// TestFigure8Unreliable2C.
pub async fn figure8_unreliable_2c(sim: Sim) {
    let servers = 5;
    let cfg = Config::make(&sim, servers, true);
    cfg.begin("Test (2C): Figure 8 (unreliable)");

    cfg.one(cfg.rand_int() % 10000, 1, true).await;

    let mut nup = servers;
    for iters in 0..1000 {
        if iters == 200 {
            cfg.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..servers {
            let (_, _, ok) = cfg.start(i, &Cmd::Int(cfg.rand_int() % 10000));
            if ok && cfg.is_connected(i) {
                leader = Some(i);
            }
        }

        figure8_sleep(&cfg).await;

        if let Some(leader) = leader {
            if cfg.rand_int() % 1000 < RAFT_ELECTION_TIMEOUT_MS as i64 / 2 {
                cfg.disconnect(leader);
                nup -= 1;
            }
        }

        if nup < 3 {
            let s = cfg.rand_int() as usize % servers;
            if !cfg.is_connected(s) {
                cfg.connect(s);
                nup += 1;
            }
        }
    }

    for i in 0..servers {
        if !cfg.is_connected(i) {
            cfg.connect(i);
        }
    }

    cfg.one(cfg.rand_int() % 10000, servers, true).await;

    cfg.end();
    cfg.cleanup();
}

/// One churn client (Go's `cfn`): submits random commands to whoever accepts them and records
/// those it saw committed. Returns `None` only if it failed (Go's nil list).
async fn churn_client(
    cfg: Config,
    me: u64,
    stop: std::rc::Rc<std::cell::Cell<bool>>,
) -> Option<Vec<i64>> {
    let servers = cfg.n();
    let mut values = Vec::new();
    while !stop.get() {
        let x = cfg.rand_int();
        let mut index = None;
        for i in 0..servers {
            // Try them all, maybe one of them is a leader.
            if cfg.is_running(i) {
                let (index1, _, ok1) = cfg.start(i, &Cmd::Int(x));
                if ok1 {
                    index = Some(index1);
                }
            }
        }
        match index {
            Some(index) => {
                // Maybe the leader will commit our value, maybe not; but don't wait forever.
                for to in [10, 20, 50, 100, 200] {
                    let (nd, cmd) = cfg.n_committed(index);
                    if nd > 0 {
                        match cmd {
                            Some(Cmd::Int(xx)) => {
                                if xx == x {
                                    values.push(x);
                                }
                            }
                            _ => fatal("wrong command type"),
                        }
                        break;
                    }
                    cfg.sleep_ms(to).await;
                }
            }
            None => cfg.sleep_ms(79 + me * 17).await,
        }
    }
    Some(values)
}

async fn internal_churn(sim: Sim, unreliable: bool) {
    let servers = 5;
    let cfg = Config::make(&sim, servers, unreliable);
    if unreliable {
        cfg.begin("Test (2C): unreliable churn");
    } else {
        cfg.begin("Test (2C): churn");
    }

    let stop = std::rc::Rc::new(std::cell::Cell::new(false));

    // Create concurrent clients.
    let ncli = 3;
    let clients: Vec<_> = (0..ncli)
        .map(|me| cfg.sim().spawn(churn_client(cfg.clone(), me, stop.clone())))
        .collect();

    for _ in 0..20 {
        if cfg.rand_int() % 1000 < 200 {
            let i = cfg.rand_int() as usize % servers;
            cfg.disconnect(i);
        }

        if cfg.rand_int() % 1000 < 500 {
            let i = cfg.rand_int() as usize % servers;
            if !cfg.is_running(i) {
                cfg.start1(i);
            }
            cfg.connect(i);
        }

        if cfg.rand_int() % 1000 < 200 {
            let i = cfg.rand_int() as usize % servers;
            if cfg.is_running(i) {
                cfg.crash1(i);
            }
        }

        // Make crash/restart infrequent enough that the Raft peers can still make progress.
        cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS * 7 / 10).await;
    }

    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
    cfg.set_unreliable(false);
    for i in 0..servers {
        if !cfg.is_running(i) {
            cfg.start1(i);
        }
        cfg.connect(i);
    }

    stop.set(true);

    let mut values = Vec::new();
    for c in clients {
        match c.await {
            Some(vv) => values.extend(vv),
            None => fatal("client failed"),
        }
    }

    cfg.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;

    let last_index = cfg.one(cfg.rand_int(), servers, true).await;

    let mut really = Vec::new();
    for index in 1..=last_index {
        match cfg.wait(index, servers, -1).await {
            Some(Cmd::Int(v)) => really.push(v),
            _ => fatal("not an int"),
        }
    }

    for v1 in &values {
        if !really.contains(v1) {
            fatal("didn't find a value");
        }
    }

    cfg.end();
    cfg.cleanup();
}

/// TestReliableChurn2C.
pub async fn reliable_churn_2c(sim: Sim) {
    internal_churn(sim, false).await
}

/// TestUnreliableChurn2C.
pub async fn unreliable_churn_2c(sim: Sim) {
    internal_churn(sim, true).await
}
