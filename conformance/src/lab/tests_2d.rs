//! Part 2D: log compaction (`specs/lab-tester.md`, `## 2D`). Every test runs its servers with the
//! snapshot applier (`### applierSnap`), which makes Raft snapshot every ten indexes and checks
//! that applies and installed snapshots reach the service strictly in order.

use super::config::{fatal, Config, MAX_LOG_SIZE, SNAPSHOT_INTERVAL};
use crate::sim::Sim;

/// Go's `snapcommon(t, name, disconnect, reliable, crash)`: the body of the five install tests
/// (`### snapcommon`). Each of 30 iterations cuts off a victim (a follower, or every third time the
/// leader) by disconnecting or crashing it, starts 5 to 14 commands on the sender, and brings the
/// victim back, which usually needs an InstallSnapshot to catch up.
async fn snapcommon(sim: Sim, name: &str, disconnect: bool, reliable: bool, crash: bool) {
    let iters = 30;
    let servers = 3;
    let cfg = Config::make_with(&sim, servers, !reliable, true);

    cfg.begin(name);

    cfg.one(cfg.rand_int(), servers, true).await;
    let mut leader1 = cfg.check_one_leader().await;

    for i in 0..iters {
        let mut victim = (leader1 + 1) % servers;
        let mut sender = leader1;
        if i % 3 == 1 {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }

        if disconnect {
            cfg.disconnect(victim);
            cfg.one(cfg.rand_int(), servers - 1, true).await;
        }
        if crash {
            cfg.crash1(victim);
            cfg.one(cfg.rand_int(), servers - 1, true).await;
        }

        // Perhaps send enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rand_int() as u64 % SNAPSHOT_INTERVAL;
        for _ in 0..nn {
            cfg.start(sender, &cfg.rand_int().into());
        }

        // Let applier threads catch up with the Start()'s.
        if !disconnect && !crash {
            // Make sure all followers have caught up, so that an InstallSnapshot RPC isn't
            // required for TestSnapshotBasic2D().
            cfg.one(cfg.rand_int(), servers, true).await;
        } else {
            cfg.one(cfg.rand_int(), servers - 1, true).await;
        }

        if cfg.log_size() >= MAX_LOG_SIZE {
            fatal("Log size too large");
        }
        if disconnect {
            // Reconnect a follower, who maybe behind and needs to receive a snapshot to catch up.
            cfg.connect(victim);
            cfg.one(cfg.rand_int(), servers, true).await;
            leader1 = cfg.check_one_leader().await;
        }
        if crash {
            cfg.start1(victim);
            cfg.connect(victim);
            cfg.one(cfg.rand_int(), servers, true).await;
            leader1 = cfg.check_one_leader().await;
        }
    }
    cfg.end();
    cfg.cleanup();
}

/// TestSnapshotBasic2D.
pub async fn snapshot_basic_2d(sim: Sim) {
    snapcommon(sim, "Test (2D): snapshots basic", false, true, false).await;
}

/// TestSnapshotInstall2D.
pub async fn snapshot_install_2d(sim: Sim) {
    snapcommon(
        sim,
        "Test (2D): install snapshots (disconnect)",
        true,
        true,
        false,
    )
    .await;
}

/// TestSnapshotInstallUnreliable2D.
pub async fn snapshot_install_unreliable_2d(sim: Sim) {
    snapcommon(
        sim,
        "Test (2D): install snapshots (disconnect+unreliable)",
        true,
        false,
        false,
    )
    .await;
}

/// TestSnapshotInstallCrash2D.
pub async fn snapshot_install_crash_2d(sim: Sim) {
    snapcommon(
        sim,
        "Test (2D): install snapshots (crash)",
        false,
        true,
        true,
    )
    .await;
}

/// TestSnapshotInstallUnCrash2D.
pub async fn snapshot_install_uncrash_2d(sim: Sim) {
    snapcommon(
        sim,
        "Test (2D): install snapshots (unreliable+crash)",
        false,
        false,
        true,
    )
    .await;
}

/// Crashes every server, then restarts and reconnects each in turn.
fn crash_and_revive_all(cfg: &Config) {
    for i in 0..cfg.n() {
        cfg.crash1(i);
    }
    for i in 0..cfg.n() {
        cfg.start1(i);
        cfg.connect(i);
    }
}

/// TestSnapshotAllCrash2D: every server must restart from its snapshot and persisted log
/// tail, and the log must go on from there.
pub async fn snapshot_all_crash_2d(sim: Sim) {
    let servers = 3;
    let iters = 5;
    let cfg = Config::make_with(&sim, servers, false, true);

    cfg.begin("Test (2D): crash and restart all servers");

    cfg.one(cfg.rand_int(), servers, true).await;

    for _ in 0..iters {
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rand_int() as u64 % SNAPSHOT_INTERVAL;
        for _ in 0..nn {
            cfg.one(cfg.rand_int(), servers, true).await;
        }

        let index1 = cfg.one(cfg.rand_int(), servers, true).await;

        crash_and_revive_all(&cfg);

        let index2 = cfg.one(cfg.rand_int(), servers, true).await;
        if index2 < index1 + 1 {
            fatal(format!("index decreased from {index1} to {index2}"));
        }
    }
    cfg.end();
    cfg.cleanup();
}

/// TestSnapshotInit2D: a restarted server must load its snapshot in Make, or the next
/// save (which replaces state and snapshot together) would lose it.
pub async fn snapshot_init_2d(sim: Sim) {
    let servers = 3;
    let cfg = Config::make_with(&sim, servers, false, true);

    cfg.begin("Test (2D): snapshot initialization after crash");
    cfg.one(cfg.rand_int(), servers, true).await;

    // Enough ops to make a snapshot.
    let nn = SNAPSHOT_INTERVAL + 1;
    for _ in 0..nn {
        cfg.one(cfg.rand_int(), servers, true).await;
    }

    crash_and_revive_all(&cfg);

    // A single op, to get something to be written back to persistent storage.
    cfg.one(cfg.rand_int(), servers, true).await;

    crash_and_revive_all(&cfg);

    // Do another op to trigger potential bug.
    cfg.one(cfg.rand_int(), servers, true).await;
    cfg.end();
    cfg.cleanup();
}
