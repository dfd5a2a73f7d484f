//! Storage: a real three-node cluster's states saved and recovered; a crash at every write and sync point of
//! one node's storage, with each fault a crash can add, after which recovery keeps every acknowledged save;
//! damage that recovery must refuse, each named with its file and offset.

use std::collections::VecDeque;

use raft::{Config, Envelope, Node, PersistentState, Ready};
use raft_node::storage::disk::{Disk, FsDisk};
use raft_node::storage::faulty::{Fault, FaultyDisk, Lie};
use raft_node::storage::{
    segment_name, FileStorage, Identity, Options, Recovered, Storage, StorageError, SNAPSHOT,
};

const ID: Identity = Identity {
    cluster: 7,
    node: 2,
};

/// What a save was asked to make durable.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Saved {
    state: PersistentState,
    snapshot: Option<Vec<u8>>,
}

/// Runs a three-node cluster through a script that exercises every kind of save: elections, appends one by
/// one, snapshots by every service every 8 entries, and node 2 cut off for a while, so that it gets the
/// leader's snapshot on return (replacing its log). Node 2's `Ready`s go through `save` before release;
/// the run stops at the first save that fails. Returns how many saves succeeded.
fn run_cluster(save: &mut dyn FnMut(&Ready) -> bool) -> usize {
    let peers = [0, 1, 2];
    let mut nodes: Vec<Node> = peers
        .iter()
        .map(|&id| Node::new(id, &peers, Config::default(), None, None, 11).unwrap())
        .collect();
    let mut queue: VecDeque<Envelope> = VecDeque::new();
    let mut saves = 0;
    let mut cut = false;
    // Takes node i's output: node 2's is saved first.
    let mut release = |nodes: &mut Vec<Node>, i: usize, queue: &mut VecDeque<Envelope>| -> bool {
        let ready = nodes[i].ready();
        if i == 2 && ready.persist().is_some() {
            if !save(&ready) {
                return false;
            }
            saves += 1;
        }
        queue.extend(ready.persisted().messages);
        true
    };
    macro_rules! settle {
        () => {
            while let Some(e) = queue.pop_front() {
                if cut && (e.to == 2 || e.from == 2) {
                    continue;
                }
                let to = e.to as usize;
                nodes[to].step(e).unwrap();
                if !release(&mut nodes, to, &mut queue) {
                    return saves;
                }
            }
        };
    }
    for i in 0..3 {
        if !release(&mut nodes, i, &mut queue) {
            return saves;
        }
    }
    while !nodes[0].is_leader() {
        nodes[0].tick();
        if !release(&mut nodes, 0, &mut queue) {
            return saves;
        }
        settle!();
    }
    for k in 1..=60u64 {
        cut = (12..=40).contains(&k);
        nodes[0].propose(vec![k as u8; 16]).unwrap();
        if !release(&mut nodes, 0, &mut queue) {
            return saves;
        }
        settle!();
        if k % 8 == 0 {
            for i in 0..3 {
                let applied = nodes[i].last_applied();
                if applied > nodes[i].last_included_index() {
                    nodes[i]
                        .snapshot(applied, applied.to_le_bytes().to_vec())
                        .unwrap();
                    if !release(&mut nodes, i, &mut queue) {
                        return saves;
                    }
                }
            }
        }
        // Heartbeats bring node 2 back once it is reconnected.
        for _ in 0..10 {
            nodes[0].tick();
            if !release(&mut nodes, 0, &mut queue) {
                return saves;
            }
            settle!();
        }
    }
    saves
}

fn small_segments() -> Options {
    Options { segment_bytes: 512 }
}

fn recovered_as(r: &Recovered) -> Option<Saved> {
    r.state.clone().map(|state| Saved {
        state,
        snapshot: r.snapshot.clone(),
    })
}

/// Every save, recovered exactly by a reopen, on the real file system, segments rolling over.
#[test]
fn every_save_is_recovered_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, recovered) =
        FileStorage::open(FsDisk::new(dir.path()).unwrap(), ID, small_segments()).unwrap();
    assert_eq!(recovered, Recovered::default());
    let mut last = None;
    let mut snapshot = None;
    let mut kinds = (0, 0);
    let saves = run_cluster(&mut |ready| {
        storage.save(ready).unwrap();
        if let Some(s) = ready.snapshot() {
            snapshot = Some(s.to_vec());
            kinds.0 += 1;
        }
        if ready.log_changed_from().is_some() {
            kinds.1 += 1;
        }
        last = Some(ready.persist().unwrap().clone());
        true
    });
    assert!(saves >= 30, "{saves} saves");
    assert!(kinds.1 >= 20, "log writes: {}", kinds.1);
    assert!(kinds.0 >= 3, "snapshots saved: {}", kinds.0);
    drop(storage);
    let (_, recovered) =
        FileStorage::open(FsDisk::new(dir.path()).unwrap(), ID, small_segments()).unwrap();
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
    assert_eq!(recovered.state, last);
    assert_eq!(recovered.snapshot, snapshot);
    // Segments rolled and the old ones went: one is left.
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("wal-")
        })
        .count();
    assert_eq!(segments, 1);
}

/// A crash at every mutating step of node 2's storage (opening included), with each fault: recovery
/// succeeds and returns exactly the last acknowledged save, or the one in progress if it reached the disk
/// whole. (A crash after a snapshot file is in place and before the log record that refers to it recovers
/// the snapshot and the log that matches it; in this run that is always the save in progress.)
#[test]
fn a_crash_at_every_step_keeps_every_acknowledged_save() {
    let outcomes = crash_everywhere(FaultyDisk::new).unwrap_or_else(|e| panic!("{e}"));
    // Both outcomes happen: the test sees crashes before a save's sync and after it.
    assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
}

/// The crash test bites: on a disk that acknowledges syncs it does not do, of files or of the directory,
/// a crash loses a save that was acknowledged, and the test says which.
#[test]
fn the_crash_test_catches_a_disk_that_lies_about_syncing() {
    for lie in [Lie::Files, Lie::Directory] {
        let error = crash_everywhere(|| {
            let mut disk = FaultyDisk::new();
            disk.lie_about_sync(lie);
            disk
        })
        .expect_err("a lying disk loses acknowledged saves");
        assert!(error.contains("acknowledged Some"), "{lie:?}: {error}");
    }
}

/// Crashes a run at every mutating step of node 2's disk in turn, recovers with each fault, and checks the
/// recovered state. Returns how often it was the acknowledged save and how often the one in progress.
fn crash_everywhere(new_disk: impl Fn() -> FaultyDisk) -> Result<[usize; 2], String> {
    // Count the steps of an uncrashed run.
    let total = {
        let (mut storage, _) = FileStorage::open(new_disk(), ID, small_segments()).unwrap();
        run_cluster(&mut |ready| storage.save(ready).is_ok());
        storage.disk().steps()
    };
    assert!(total > 100, "{total} steps");
    println!("{total} crash points");
    let mut outcomes = [0usize; 2];
    for crash_at in 0..total {
        let mut disk = new_disk();
        disk.crash_at(crash_at);
        let mut acked: Option<Saved> = None;
        let mut pending: Option<Saved> = None;
        let crashed = match FileStorage::open(disk.clone(), ID, small_segments()) {
            Err(_) => disk,
            Ok((mut storage, _)) => {
                let mut snapshot = None;
                run_cluster(&mut |ready| {
                    let next = Saved {
                        state: ready.persist().unwrap().clone(),
                        snapshot: ready.snapshot().map(<[u8]>::to_vec).or(snapshot.clone()),
                    };
                    pending = Some(next.clone());
                    if storage.save(ready).is_err() {
                        return false;
                    }
                    snapshot = next.snapshot.clone();
                    acked = Some(next);
                    pending = None;
                    true
                });
                assert!(storage.disk().has_crashed(), "step {crash_at} never came");
                storage.disk().clone()
            }
        };
        for fault in [Fault::LoseUnsynced, Fault::TornLastWrite, Fault::ZeroSector] {
            let recovered = FileStorage::open(crashed.after_crash(fault), ID, small_segments())
                .map_err(|e| format!("crash at step {crash_at}, {fault:?}: {e}"))?
                .1;
            let got = recovered_as(&recovered);
            if got == acked {
                outcomes[0] += 1;
            } else if pending.is_some() && got == pending {
                outcomes[1] += 1;
            } else {
                return Err(format!(
                    "crash at step {crash_at}, {fault:?}: recovered {got:?}\nacknowledged {acked:?}\nin progress {pending:?}"
                ));
            }
        }
    }
    Ok(outcomes)
}

/// An append writes the new entries, not the log: a save adds to the segment a record of at most a few
/// bytes more than the entries it appended (about 18 bytes each: a 16-byte command and its term), whatever
/// the log's length.
#[test]
fn an_append_writes_only_what_changed() {
    let mut storage = one_segment_storage();
    let mut sizes = Vec::new();
    run_cluster(&mut |ready| {
        storage.save(ready).unwrap();
        let mut disk = storage.disk().clone();
        let names = disk.list().unwrap();
        let wal = names.iter().find(|n| n.starts_with("wal-")).unwrap();
        sizes.push((
            disk.read(wal).unwrap().len(),
            ready.persist().unwrap().log.len(),
        ));
        true
    });
    let longest = sizes.iter().map(|s| s.1).max().unwrap();
    assert!(longest >= 8, "the log reached {longest} entries");
    for pair in sizes.windows(2) {
        let grew = pair[1].0 - pair[0].0;
        let appended = pair[1].1.saturating_sub(pair[0].1).max(1);
        assert!(
            grew <= 24 + 20 * appended,
            "a save of {appended} entries wrote {grew} bytes: {sizes:?}"
        );
    }
}

/// Storage on an empty in-memory disk that never rolls to a second segment.
fn one_segment_storage() -> FileStorage<FaultyDisk> {
    let options = Options {
        segment_bytes: u64::MAX,
    };
    FileStorage::open(FaultyDisk::new(), ID, options).unwrap().0
}

/// A disk with a few saves on it, and the name of its segment.
fn saved_disk() -> (FaultyDisk, String) {
    let mut storage = one_segment_storage();
    run_cluster(&mut |ready| storage.save(ready).is_ok());
    let mut disk = storage.disk().clone();
    let wal = disk
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.starts_with("wal-"))
        .unwrap();
    (disk, wal)
}

/// The offsets at which the segment's records start.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    offsets
}

fn open_error(disk: FaultyDisk, identity: Identity) -> String {
    match FileStorage::open(disk, identity, Options::default()) {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_torn_last_record_is_cut_off_with_a_warning() {
    let (mut disk, wal) = saved_disk();
    let bytes = disk.read(&wal).unwrap();
    let last = *record_offsets(&bytes).last().unwrap();
    disk.corrupt(&wal, bytes.len() - 1);
    let (_, recovered) = FileStorage::open(disk, ID, Options::default()).unwrap();
    assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
    assert!(
        recovered.warnings[0].contains(&format!("{wal}: cut off a torn record at offset {last}")),
        "{:?}",
        recovered.warnings
    );
}

#[test]
fn damage_before_the_last_record_stops_the_node() {
    let (mut disk, wal) = saved_disk();
    let bytes = disk.read(&wal).unwrap();
    let offsets = record_offsets(&bytes);
    let middle = offsets[offsets.len() / 2];
    disk.corrupt(&wal, middle + 9);
    let error = open_error(disk, ID);
    assert_eq!(
        error,
        format!("{wal}, offset {middle}: checksum mismatch"),
        "{error}"
    );
}

#[test]
fn a_missing_segment_stops_the_node() {
    let (mut disk, wal) = saved_disk();
    let bytes = disk.read(&wal).unwrap();
    // Two segments after it; the first of them lost.
    let n: u64 = wal[4..20].parse().unwrap();
    disk.put(&segment_name(n + 1), &bytes);
    disk.put(&segment_name(n + 2), &bytes);
    disk.lose(&segment_name(n + 1));
    let error = open_error(disk, ID);
    assert!(
        error.contains(&format!("{} is missing", segment_name(n + 1))),
        "{error}"
    );
}

#[test]
fn another_clusters_or_nodes_directory_is_refused() {
    let (disk, wal) = saved_disk();
    for other in [
        Identity {
            cluster: 8,
            node: 2,
        },
        Identity {
            cluster: 7,
            node: 1,
        },
    ] {
        let error = open_error(disk.clone(), other);
        assert!(
            error.contains("cluster 7 node 2's")
                && error.contains(&format!("cluster {} node {}'s", other.cluster, other.node)),
            "{error}"
        );
        // The snapshot is checked first, or the segment: either way a file is named.
        assert!(
            error.starts_with(SNAPSHOT) || error.starts_with(&wal),
            "{error}"
        );
    }
}

#[test]
fn a_damaged_or_missing_snapshot_stops_the_node() {
    let (mut disk, _) = saved_disk();
    let mut lost = disk.clone();
    disk.corrupt(SNAPSHOT, 20);
    assert_eq!(
        open_error(disk, ID),
        "snapshot, offset 0: checksum mismatch"
    );
    lost.lose(SNAPSHOT);
    let error = open_error(lost, ID);
    assert!(error.contains("the file is missing"), "{error}");
}

#[test]
fn garbage_in_a_segment_is_refused_not_replayed() {
    let mut disk = FaultyDisk::new();
    // A segment that is not the last, full of bytes that are no record.
    disk.put(&segment_name(1), &[0x5a; 300]);
    disk.put(&segment_name(2), &[]);
    let error = open_error(disk, ID);
    assert!(
        error.starts_with(&format!("{}, offset 0:", segment_name(1))),
        "{error}"
    );
}

/// A storage whose write failed refuses every later save: nothing after the failure may be acknowledged.
#[test]
fn after_a_failed_write_every_save_fails() {
    let mut disk = FaultyDisk::new();
    disk.crash_at(5);
    let (mut storage, _) = FileStorage::open(disk, ID, small_segments()).unwrap();
    let mut results = Vec::new();
    run_cluster(&mut |ready| {
        results.push(storage.save(ready).map_err(|e| e.to_string()));
        true
    });
    let first = results.iter().position(Result::is_err).unwrap();
    assert!(results[first + 1..]
        .iter()
        .all(|r| r.as_ref().unwrap_err() == &StorageError::Failed.to_string()));
}

/// Records with valid checksums and impossible indexes (a file written by something else, or by a bug)
/// are refused with the file and offset, not replayed into an overflow.
#[test]
fn impossible_indexes_are_refused_not_replayed() {
    use raft_node::storage::record::{frame, RecordRef, FORMAT};
    let checkpoint = |snapshot: u64| {
        frame(&RecordRef::Checkpoint {
            format: FORMAT,
            identity: ID,
            hard: (1, None),
            snapshot: (snapshot, 1),
            log: &[],
        })
    };
    let mut disk = FaultyDisk::new();
    disk.put(&segment_name(1), &checkpoint(u64::MAX));
    let error = open_error(disk, ID);
    assert!(
        error.contains("offset 0: an impossible snapshot index"),
        "{error}"
    );

    let mut bytes = checkpoint(0);
    let offset = bytes.len();
    bytes.extend(frame(&RecordRef::Batch {
        hard: None,
        snapshot: Some((u64::MAX - 1, 1)),
        entries: None,
    }));
    bytes.extend(checkpoint(0)); // not the last record: no torn tail
    let mut disk = FaultyDisk::new();
    disk.put(&segment_name(1), &bytes);
    let error = open_error(disk, ID);
    assert!(
        error.contains(&format!("offset {offset}: an impossible log index")),
        "{error}"
    );
}
