//! Part 3B: the key-value service with snapshots (`specs/lab3-tester.md`, `## 3B`). The servers
//! snapshot once their persisted Raft state reaches `maxraftstate` bytes, which must keep it below
//! eight times that.

use super::config::fatal;
use super::kvconfig::{KvConfig, ELECTION_TIMEOUT_MS};
use super::tests_3a::{check, generic_test, generic_test_speed, put, Generic};
use crate::sim::Sim;

/// Fails with Go's message if some server's persisted Raft state exceeds 8 × `maxraftstate`.
fn check_log_trimmed(cfg: &KvConfig, maxraftstate: usize) {
    let sz = cfg.log_size();
    if sz > 8 * maxraftstate {
        fatal(format!("logs were not trimmed ({sz} > 8*{maxraftstate})"));
    }
}

/// TestSnapshotRPC3B: a server cut off while the majority writes (and trims its log) must catch up
/// through InstallSnapshot when the majority needs it.
pub async fn snapshot_rpc_3b(sim: Sim) {
    const NSERVERS: usize = 3;
    let maxraftstate = 1000;
    let cfg = KvConfig::make(&sim, NSERVERS, false, maxraftstate as i64);
    let ck = cfg.make_client(&cfg.all());
    cfg.begin("Test: InstallSnapshot RPC (3B)");

    put(&cfg, &ck, "a", "A", None, 0).await;
    check(&cfg, &ck, "a", "A").await;

    // A bunch of puts into the majority partition.
    cfg.partition(&[0, 1], &[2]);
    {
        let ck1 = cfg.make_client(&[0, 1]);
        for i in 0..50 {
            put(&cfg, &ck1, &i.to_string(), &i.to_string(), None, 0).await;
        }
        cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
        put(&cfg, &ck1, "b", "B", None, 0).await;
    }

    // The majority must have thrown away most of its log.
    check_log_trimmed(&cfg, maxraftstate);

    // A group that needs the lagging server, which must catch up.
    cfg.partition(&[0, 2], &[1]);
    {
        let ck1 = cfg.make_client(&[0, 2]);
        put(&cfg, &ck1, "c", "C", None, 0).await;
        put(&cfg, &ck1, "d", "D", None, 0).await;
        check(&cfg, &ck1, "a", "A").await;
        check(&cfg, &ck1, "b", "B").await;
        check(&cfg, &ck1, "1", "1").await;
        check(&cfg, &ck1, "49", "49").await;
    }

    // Now everybody.
    cfg.partition(&[0, 1, 2], &[]);
    put(&cfg, &ck, "e", "E", None, 0).await;
    check(&cfg, &ck, "c", "C").await;
    check(&cfg, &ck, "e", "E").await;
    check(&cfg, &ck, "1", "1").await;

    cfg.end();
    cfg.cleanup();
}

/// TestSnapshotSize3B: 800 operations on one key; the logs must be trimmed and the snapshots stay
/// within 500 bytes.
pub async fn snapshot_size_3b(sim: Sim) {
    const NSERVERS: usize = 3;
    let maxraftstate = 1000;
    let maxsnapshotstate = 500;
    let cfg = KvConfig::make(&sim, NSERVERS, false, maxraftstate as i64);
    let ck = cfg.make_client(&cfg.all());
    cfg.begin("Test: snapshot size is reasonable (3B)");

    for _ in 0..200 {
        put(&cfg, &ck, "x", "0", None, 0).await;
        check(&cfg, &ck, "x", "0").await;
        put(&cfg, &ck, "x", "1", None, 0).await;
        check(&cfg, &ck, "x", "1").await;
    }

    // The servers must have thrown away most of their logs,
    check_log_trimmed(&cfg, maxraftstate);
    // and their snapshots must not be unreasonably large.
    let ssz = cfg.snapshot_size();
    if ssz > maxsnapshotstate {
        fatal(format!("snapshot too large ({ssz} > {maxsnapshotstate})"));
    }

    cfg.end();
    cfg.cleanup();
}

/// TestSpeed3B.
pub async fn speed_3b(sim: Sim) {
    generic_test_speed(sim, "3B", 1000).await;
}

/// The 3B `GenericTest` with `maxraftstate` 1000: `nclients` clients on five servers,
/// `unreliable`, `crash`, `partitions`.
fn generic_3b(nclients: usize, unreliable: bool, crash: bool, partitions: bool) -> Generic {
    Generic {
        part: "3B",
        nclients,
        nservers: 5,
        unreliable,
        crash,
        partitions,
        maxraftstate: 1000,
        randomkeys: false,
    }
}

/// TestSnapshotRecover3B: one client, restarts.
pub async fn snapshot_recover_3b(sim: Sim) {
    generic_test(sim, generic_3b(1, false, true, false)).await;
}

/// TestSnapshotRecoverManyClients3B: twenty clients, restarts.
pub async fn snapshot_recover_many_clients_3b(sim: Sim) {
    generic_test(sim, generic_3b(20, false, true, false)).await;
}

/// TestSnapshotUnreliable3B: five clients, unreliable network.
pub async fn snapshot_unreliable_3b(sim: Sim) {
    generic_test(sim, generic_3b(5, true, false, false)).await;
}

/// TestSnapshotUnreliableRecover3B: five clients, unreliable network, restarts.
pub async fn snapshot_unreliable_recover_3b(sim: Sim) {
    generic_test(sim, generic_3b(5, true, true, false)).await;
}

/// TestSnapshotUnreliableRecoverConcurrentPartition3B: five clients, unreliable network,
/// restarts, a partitioner.
pub async fn snapshot_unreliable_recover_concurrent_partition_3b(sim: Sim) {
    generic_test(sim, generic_3b(5, true, true, true)).await;
}

/// TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable3B: fifteen clients on random keys,
/// seven servers, unreliable network, restarts, a partitioner; checked by linearizability alone.
pub async fn snapshot_unreliable_recover_concurrent_partition_linearizable_3b(sim: Sim) {
    generic_test(
        sim,
        Generic {
            nservers: 7,
            randomkeys: true,
            ..generic_3b(15, true, true, true)
        },
    )
    .await;
}
