//! Storage: a real three-node cluster's states saved and recovered; a crash at every write and sync point of
//! one node's storage, with each fault a crash can add, after which recovery keeps every acknowledged save;
//! damage that recovery must refuse, each named with its file and offset.

use std::collections::VecDeque;

use raft::{Config, Envelope, Node, PersistentState, Ready};
use raft_node::storage::disk::{Disk, FsDisk};
use raft_node::storage::faulty::{Fault, FaultyDisk, Lie};
use raft_node::storage::record::{HEADER, SECTOR};
use raft_node::storage::{
    segment_name, FileStorage, Identity, Options, Recovered, Saved as Report, Storage,
    StorageError, SNAPSHOT,
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
    run_cluster_for(60, save)
}

/// [`run_cluster`] with `proposals` proposals.
fn run_cluster_for(proposals: u64, save: &mut dyn FnMut(&Ready) -> bool) -> usize {
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
    for k in 1..=proposals {
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
    Options {
        segment_bytes: 512,
        ..Options::default()
    }
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

/// Each save is reported once its sync has returned, as recovery would load it after a crash right then:
/// the term and vote, the snapshot's index and term, the last index, the entries written (the recovered
/// log's from where they start) and the snapshot written. Under deferred syncs (a deliberate bug) a save
/// that appended to the log is reported only when its sync comes.
#[test]
fn a_save_is_reported_as_recovery_would_load_it() {
    use std::sync::{Arc, Mutex};
    for defer in [false, true] {
        let (mut storage, _) = FileStorage::open(FaultyDisk::new(), ID, small_segments()).unwrap();
        let reports: Arc<Mutex<Vec<Report>>> = Arc::default();
        let sink = reports.clone();
        assert!(storage.report_saves(Box::new(move |s: &Report| {
            sink.lock().unwrap().push(s.clone())
        })));
        if defer {
            assert!(storage.defer_syncs());
        }
        // Checks the report of the save just made, if there is one, against a crash now.
        let check = |storage: &FileStorage<FaultyDisk>, counts: &mut [usize; 3]| -> bool {
            let Some(report) = reports.lock().unwrap().pop() else {
                return false;
            };
            assert!(reports.lock().unwrap().is_empty(), "one report per save");
            counts[0] += 1;
            let crashed = storage.disk().after_crash(Fault::LoseUnsynced);
            let recovered = FileStorage::open(crashed, ID, small_segments()).unwrap().1;
            let state = recovered.state.unwrap();
            assert_eq!(report.hard, (state.current_term, state.voted_for));
            let snap = (state.last_included_index, state.last_included_term);
            assert_eq!(report.snapshot, snap);
            assert_eq!(report.last, snap.0 + state.log.len() as u64);
            if let Some((from, written)) = &report.entries {
                counts[1] += 1;
                assert_eq!(&state.log[(from - snap.0 - 1) as usize..], &written[..]);
            }
            if let Some(data) = &report.snapshot_data {
                counts[2] += 1;
                assert_eq!(recovered.snapshot.as_ref(), Some(data));
            }
            true
        };
        let mut counts = [0; 3];
        let mut deferred = 0;
        let saves = run_cluster(&mut |ready| {
            storage.save(ready).unwrap();
            if !check(&storage, &mut counts) {
                assert!(defer, "a save is reported once it returns");
                storage.sync_deferred().unwrap();
                assert!(check(&storage, &mut counts), "reported once synced");
                deferred += 1;
            }
            true
        });
        assert_eq!(counts[0], saves);
        assert!(counts[1] >= 20 && counts[2] >= 3, "{counts:?}");
        assert!(!defer || deferred >= 20, "{deferred} deferred");
    }
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
/// a crash loses a save that was acknowledged, or leaves a segment that recovery refuses (its checkpoint was
/// renamed into place unsynced), and the test says which.
#[test]
fn the_crash_test_catches_a_disk_that_lies_about_syncing() {
    for lie in [Lie::Files, Lie::Directory] {
        let error = crash_everywhere(|| {
            let mut disk = FaultyDisk::new();
            disk.lie_about_sync(lie);
            disk
        })
        .expect_err("a lying disk loses acknowledged saves");
        let refused = error.contains(", offset ");
        assert!(
            error.contains("acknowledged Some") || refused,
            "{lie:?}: {error}"
        );
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
    let mut recovery_crashes = 0;
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
            let after = crashed.after_crash(fault);
            let recovered = FileStorage::open(after.clone(), ID, small_segments())
                .map_err(|e| format!("crash at step {crash_at}, {fault:?}: {e}"))?
                .1;
            let got = recovered_as(&recovered);
            recovery_crashes += open_crashes(&after, &got)
                .map_err(|e| format!("crash at step {crash_at}, {fault:?}: {e}"))?;
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
    println!("{recovery_crashes} crash points inside recovery, each with three faults");
    Ok(outcomes)
}

/// Recovery itself crashes at each of its writes and syncs on `disk` (a disk as a crash left it), with each
/// fault, and the next recovery still returns `expected`; and a recovery run twice returns the same state,
/// the second time with nothing to repair.
fn open_crashes(disk: &FaultyDisk, expected: &Option<Saved>) -> Result<u64, String> {
    let mut once = disk.clone();
    FileStorage::open(&mut once, ID, small_segments()).map_err(|e| e.to_string())?;
    let steps = once.steps();
    let (_, twice) = FileStorage::open(once, ID, small_segments()).map_err(|e| e.to_string())?;
    if recovered_as(&twice) != *expected || !twice.warnings.is_empty() {
        return Err(format!(
            "the second recovery gave {:?} with warnings {:?}, the first {expected:?}",
            recovered_as(&twice),
            twice.warnings
        ));
    }
    for step in 0..steps {
        let mut crashing = disk.clone();
        crashing.crash_at(step);
        if FileStorage::open(&mut crashing, ID, small_segments()).is_ok() {
            return Err(format!("recovery did not reach its step {step}"));
        }
        for fault in [Fault::LoseUnsynced, Fault::TornLastWrite, Fault::ZeroSector] {
            let (_, recovered) =
                FileStorage::open(crashing.after_crash(fault), ID, small_segments())
                    .map_err(|e| format!("recovery crashed at its step {step}, {fault:?}: {e}"))?;
            if recovered_as(&recovered) != *expected {
                return Err(format!(
                    "recovery crashed at its step {step}, {fault:?}: recovered {:?}, not {expected:?}",
                    recovered_as(&recovered)
                ));
            }
        }
    }
    Ok(steps)
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
            grew <= HEADER + 16 + 20 * appended,
            "a save of {appended} entries wrote {grew} bytes: {sizes:?}"
        );
    }
}

/// Storage on an empty in-memory disk that never rolls to a second segment.
fn one_segment_storage() -> FileStorage<FaultyDisk> {
    let options = Options {
        segment_bytes: u64::MAX,
        ..Options::default()
    };
    FileStorage::open(FaultyDisk::new(), ID, options).unwrap().0
}

/// A disk with a few saves on it, and the name of its segment.
fn saved_disk() -> (FaultyDisk, String) {
    saved_disk_after(60)
}

/// A disk with the saves of a run of `proposals` proposals on it, and the name of its segment.
fn saved_disk_after(proposals: u64) -> (FaultyDisk, String) {
    let mut storage = one_segment_storage();
    run_cluster_for(proposals, &mut |ready| storage.save(ready).is_ok());
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
        at += HEADER + len;
    }
    offsets
}

fn open_error(disk: FaultyDisk, identity: Identity) -> String {
    match FileStorage::open(disk, identity, Options::default()) {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    }
}

/// A save that never returned left a prefix of its record, or its record with a sector reading as zeros:
/// recovery cuts it off with a warning.
#[test]
fn a_torn_last_record_is_cut_off_with_a_warning() {
    let (disk, wal) = saved_disk();
    let bytes = disk.clone().read(&wal).unwrap();
    let last = *record_offsets(&bytes).last().unwrap();
    let expected = {
        let mut shorter = disk.clone();
        shorter.put(&wal, &bytes[..last]);
        FileStorage::open(shorter, ID, Options::default())
            .unwrap()
            .1
            .state
    };
    // A crash that zeroes the unsynced write's sectors: the record's bytes after its first three, and the
    // sector after them (the last record, here 46 bytes, may be shorter than a sector).
    let mut zeroed = bytes.clone();
    zeroed[last + 3..].fill(0);
    zeroed.resize((bytes.len() / SECTOR + 2) * SECTOR, 0);
    for (what, torn) in [
        ("a prefix of its header", bytes[..last + 5].to_vec()),
        ("a prefix of its payload", bytes[..bytes.len() - 1].to_vec()),
        ("zeros", zeroed),
    ] {
        let mut disk = disk.clone();
        disk.put(&wal, &torn);
        let (_, recovered) = FileStorage::open(disk, ID, Options::default()).unwrap();
        assert_eq!(
            recovered.warnings.len(),
            1,
            "{what}: {:?}",
            recovered.warnings
        );
        assert!(
            recovered.warnings[0]
                .contains(&format!("{wal}: cut off a torn record at offset {last}")),
            "{what}: {:?}",
            recovered.warnings
        );
        assert_eq!(recovered.state, expected, "{what}");
    }
}

/// A flipped bit in the last record, acknowledged and whole, is damage, not a torn write: the node stops
/// and says where.
#[test]
fn a_flipped_bit_in_the_last_record_stops_the_node() {
    let (disk, wal) = saved_disk();
    let bytes = disk.clone().read(&wal).unwrap();
    let last = *record_offsets(&bytes).last().unwrap();
    for (offset, reason) in [
        (last, "header checksum mismatch"),
        (last + 17, "header checksum mismatch"),
        (bytes.len() - 1, "payload checksum mismatch"),
    ] {
        let mut disk = disk.clone();
        disk.flip(&wal, offset, 0);
        assert_eq!(
            open_error(disk, ID),
            format!("{wal}, offset {last}: {reason}")
        );
    }
}

#[test]
fn damage_before_the_last_record_stops_the_node() {
    let (disk, wal) = saved_disk();
    let bytes = disk.clone().read(&wal).unwrap();
    let offsets = record_offsets(&bytes);
    let middle = offsets[offsets.len() / 2];
    // The length, the sequence number, the payload.
    for (offset, reason) in [
        (middle + 1, "header checksum mismatch"),
        (middle + 9, "header checksum mismatch"),
        (middle + HEADER + 1, "payload checksum mismatch"),
    ] {
        let mut disk = disk.clone();
        disk.corrupt(&wal, offset);
        let error = open_error(disk, ID);
        assert_eq!(error, format!("{wal}, offset {middle}: {reason}"));
    }
    // A whole record of this segment in another record's place.
    let next = offsets[offsets.len() / 2 + 1];
    let mut swapped = bytes[..middle].to_vec();
    swapped.extend_from_slice(&bytes[next..offsets[offsets.len() / 2 + 2]]);
    swapped.extend_from_slice(&bytes[middle..next]);
    swapped.extend_from_slice(&bytes[offsets[offsets.len() / 2 + 2]..]);
    let mut disk = disk.clone();
    disk.put(&wal, &swapped);
    let error = open_error(disk, ID);
    assert!(
        error.starts_with(&format!("{wal}, offset {middle}: record ")),
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
    disk.corrupt(SNAPSHOT, HEADER + 2);
    assert_eq!(
        open_error(disk, ID),
        "snapshot, offset 0: payload checksum mismatch"
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
    use raft_node::storage::record::{frame, Place, RecordRef, FORMAT, MAX_PAYLOAD};
    let place = |seq| Place { file: 1, seq };
    let checkpoint = |snapshot: u64, seq| {
        let record = RecordRef::Checkpoint {
            format: FORMAT,
            identity: ID,
            hard: (1, None),
            snapshot: (snapshot, 1),
            membership: &raft::Membership::default(),
            log: &[],
        };
        frame(&record, place(seq), MAX_PAYLOAD).unwrap()
    };
    let mut disk = FaultyDisk::new();
    disk.put(&segment_name(1), &checkpoint(u64::MAX, 0));
    let error = open_error(disk, ID);
    assert!(
        error.contains("offset 0: an impossible snapshot index"),
        "{error}"
    );

    let mut bytes = checkpoint(0, 0);
    let offset = bytes.len();
    let batch = RecordRef::Batch {
        hard: None,
        snapshot: Some((u64::MAX - 1, 1)),
        membership: None,
        entries: None,
    };
    bytes.extend(frame(&batch, place(1), MAX_PAYLOAD).unwrap());
    bytes.extend(checkpoint(0, 2)); // not the last record: no torn tail
    let mut disk = FaultyDisk::new();
    disk.put(&segment_name(1), &bytes);
    let error = open_error(disk, ID);
    assert!(
        error.contains(&format!("offset {offset}: an impossible log index")),
        "{error}"
    );
}

/// A single-server node that leads, and the storage it saves to, with records of at most 4 KiB.
fn small_records() -> (Node, FileStorage<FaultyDisk>) {
    let options = Options {
        max_record: 4096,
        ..Options::default()
    };
    let (mut storage, _) = FileStorage::open(FaultyDisk::new(), ID, options).unwrap();
    let mut node = Node::new(0, &[0], Config::default(), None, None, 3).unwrap();
    while !node.is_leader() {
        node.tick();
    }
    let ready = node.ready();
    storage.save(&ready).unwrap();
    ready.persisted();
    (node, storage)
}

/// One size limit, checked when writing: a log longer than a record is split over several, which recovery
/// reads back; an entry or a snapshot over the limit fails the save before anything is written, so nothing
/// is acknowledged that recovery could not load.
#[test]
fn a_save_over_the_size_limit_fails_before_writing_anything() {
    let options = Options {
        max_record: 4096,
        ..Options::default()
    };
    // Ten entries of 1 KiB in one save: three records or more.
    let (mut node, mut storage) = small_records();
    for k in 0..10u8 {
        node.propose(vec![k; 1024]).unwrap();
    }
    let ready = node.ready();
    let before = storage.disk().clone().read(&segment_name(1)).unwrap().len();
    storage.save(&ready).unwrap();
    let state = ready.persist().unwrap().clone();
    ready.persisted();
    let mut disk = storage.disk().clone();
    let bytes = disk.read(&segment_name(1)).unwrap();
    let records = record_offsets(&bytes[before..]);
    assert!(records.len() >= 3, "{} records", records.len());
    let (_, recovered) = FileStorage::open(disk, ID, options).unwrap();
    assert_eq!(recovered.state, Some(state));

    // One entry over the limit.
    let (mut node, mut storage) = small_records();
    node.propose(vec![7; 5000]).unwrap();
    let steps = storage.disk().steps();
    let error = storage.save(&node.ready()).unwrap_err().to_string();
    assert!(error.contains("over the limit of 4096"), "{error}");
    assert_eq!(storage.disk().steps(), steps, "the failed save wrote");

    // A snapshot over the limit.
    let (mut node, mut storage) = small_records();
    node.propose(vec![1]).unwrap();
    while node.has_ready() {
        let ready = node.ready();
        storage.save(&ready).unwrap();
        ready.persisted();
    }
    node.snapshot(node.last_applied(), vec![0; 5000]).unwrap();
    let steps = storage.disk().steps();
    let error = storage.save(&node.ready()).unwrap_err().to_string();
    assert!(
        error.starts_with("snapshot: ") && error.contains("over the limit"),
        "{error}"
    );
    assert_eq!(storage.disk().steps(), steps, "the failed save wrote");
}

/// Creating the data directory syncs the parent of each directory created, so that the creation survives
/// a power loss.
#[test]
fn creating_the_data_directory_syncs_its_parents() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a").join("b");
    let synced = raft_node::storage::disk::create_dir_durably(&dir).unwrap();
    assert_eq!(
        synced,
        vec![root.path().to_path_buf(), root.path().join("a")]
    );
    assert!(dir.is_dir());
    // Nothing to create, nothing to sync.
    assert!(raft_node::storage::disk::create_dir_durably(&dir)
        .unwrap()
        .is_empty());
}

/// What a bit-flip sweep found.
#[derive(Debug, Default)]
struct Sweep {
    flips: usize,
    refused: usize,
    recovered: usize,
}

/// Flips, one at a time, every bit of every record header of the segment `wal` and of the snapshot file,
/// and every bit of sampled payload bytes (the first, the last and every fifth), and recovers with `open`
/// each time. Each recovery must refuse, naming the damaged file and the offset of the record the flip hit,
/// or return exactly the state recovered from the undamaged disk; it never returns less without an error,
/// and never panics.
fn sweep(
    disk: &FaultyDisk,
    wal: &str,
    open: &dyn Fn(FaultyDisk) -> Result<Recovered, StorageError>,
) -> Result<Sweep, String> {
    let expected = recovered_as(&open(disk.clone()).map_err(|e| e.to_string())?);
    assert!(expected.as_ref().is_some_and(|s| s.snapshot.is_some()));
    let mut found = Sweep::default();
    for file in [wal, SNAPSHOT] {
        let bytes = disk.clone().read(file).unwrap();
        let offsets = record_offsets(&bytes);
        for (k, &record) in offsets.iter().enumerate() {
            let end = offsets.get(k + 1).copied().unwrap_or(bytes.len());
            let payload = record + HEADER..end;
            let sampled = (record..record + HEADER)
                .chain(payload.clone().step_by(5))
                .chain([end - 1]);
            for at in sampled {
                for bit in 0..8 {
                    let mut damaged = disk.clone();
                    damaged.flip(file, at, bit);
                    found.flips += 1;
                    let what = format!("bit {bit} of byte {at} of {file} (record at {record})");
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open(damaged)))
                            .map_err(|_| format!("{what}: recovery panicked"))?;
                    match result {
                        Err(StorageError::Corrupt {
                            file: named,
                            offset,
                            ..
                        }) if named == file && offset == record as u64 => found.refused += 1,
                        Err(e) => return Err(format!("{what}: refused, but {e}")),
                        Ok(r) if recovered_as(&r) == expected => found.recovered += 1,
                        Ok(r) => {
                            return Err(format!(
                                "{what}: recovered {:?} without an error, not {expected:?}",
                                recovered_as(&r)
                            ))
                        }
                    }
                }
            }
        }
    }
    Ok(found)
}

fn open_recovered(disk: FaultyDisk) -> Result<Recovered, StorageError> {
    FileStorage::open(disk, ID, Options::default()).map(|(_, r)| r)
}

/// The bit-flip sweep over a write-ahead log of a real cluster run (more than 50 records, and a snapshot):
/// every flip is refused with its file and offset, or recovers exactly what was acknowledged.
#[test]
fn no_flipped_bit_loses_acknowledged_data_silently() {
    let (disk, wal) = saved_disk_after(100);
    let records = record_offsets(&disk.clone().read(&wal).unwrap()).len();
    assert!(records >= 50, "{records} records");
    let found = sweep(&disk, &wal, &open_recovered).unwrap_or_else(|e| panic!("{e}"));
    println!("{records} records: {found:?}");
    assert_eq!(found.flips, found.refused + found.recovered);
    assert!(found.flips > 10_000, "{found:?}");
}

/// The sweep bites: a recovery that cuts a segment where the damage is and carries on (what trusting a
/// damaged length did) loses acknowledged records, and the sweep says where.
#[test]
fn the_sweep_catches_a_recovery_that_cuts_at_the_damage() {
    let (disk, wal) = saved_disk();
    let cut_at_damage = |disk: FaultyDisk| match open_recovered(disk.clone()) {
        Err(StorageError::Corrupt { file, offset, .. }) if file.starts_with("wal-") => {
            let mut cut = disk;
            let bytes = cut.read(&file).unwrap();
            cut.put(&file, &bytes[..offset as usize]);
            open_recovered(cut)
        }
        other => other,
    };
    let error = sweep(&disk, &wal, &cut_at_damage).unwrap_err();
    assert!(error.contains("without an error"), "{error}");
}
