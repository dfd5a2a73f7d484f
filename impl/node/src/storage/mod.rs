//! Durable storage for a [`raft::Node`]: what [`raft::Ready::persist`] asks for, made durable before the
//! `Ready` is released.
//!
//! [`FileStorage`] keeps a directory of
//! * write-ahead log segments `wal-<n>.log`, each a sequence of records ([`record`]) whose headers and
//!   payloads are checksummed and tied to their file and place in it: a segment starts with a checkpoint
//!   (the whole state at its start, and whose directory it is), then one record per save holding only what
//!   changed: the term and vote (together, so no crash can split them), the snapshot's last index and term,
//!   the configuration at the snapshot's index (see [`raft::PersistentState::membership`]), and the log from
//!   the first changed index on. An append writes the new entries only. A segment is
//!   written as `wal-<n>.log.tmp`, synced and renamed into place, so its checkpoint is never torn.
//! * the snapshot `snapshot`, written to `snapshot.tmp`, synced, renamed into place, and the directory synced.
//!
//! A save returns only after its sync (`fdatasync`) returned, and writes everything a `Ready` holds with one
//! sync: the proposals that a `Ready` gathers share it (group commit). No record is longer than
//! [`Options::max_record`] (at most [`record::MAX_PAYLOAD`], which recovery refuses past): a log too long for
//! one record is split over several, and a save that cannot be split to fit (one entry, or a snapshot, over
//! the limit) fails before anything is written. When a segment has grown past [`Options::segment_bytes`]
//! and twice its checkpoint, the next save starts a new one and removes the older segments, so the log's
//! size follows the state's.
//!
//! Recovery replays the segments in order. A bad record at the end of the last segment is the torn tail of a
//! save that never returned only if it looks like one ([`record::is_torn_tail`]: nothing valid after it, and
//! a crash's damage, not a flipped bit): it is cut off, with a warning. Any other damage, a missing segment,
//! a snapshot file that does not match the log, or a file of another cluster, node or format stops the node
//! with a [`StorageError`] naming the file and the offset; nothing is dropped silently.

pub mod disk;
pub mod faulty;
pub mod record;

use std::io;

use raft::{Entry, Index, Membership, NodeId, PersistentState, Ready, Term};

use self::disk::Disk;
pub use self::record::Identity;
use self::record::{
    frame, is_torn_tail, unframe, Place, Record, RecordRef, Snapshot, SnapshotRef, TooLarge,
    FORMAT, MAX_PAYLOAD, SNAPSHOT_FILE,
};

/// The snapshot file.
pub const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";

/// The name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("wal-{n:016}.log")
}

fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Why storage failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused a read or write.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        source: io::Error,
    },
    /// A file's content is damaged or impossible.
    #[error("{file}, offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// Where in it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file belongs to another cluster or node, or is of another format.
    #[error("{file} is {found}, not {expected}")]
    Foreign {
        /// The file.
        file: String,
        /// What it says it is.
        found: String,
        /// What this node is.
        expected: String,
    },
    /// A segment between two others is missing.
    #[error("{file} is missing (the log has {before} and {after})")]
    MissingSegment {
        /// The missing segment's name.
        file: String,
        /// The segment before it.
        before: String,
        /// The segment after it.
        after: String,
    },
    /// A record would be longer than the limit: nothing of the save was written.
    #[error("{file}: {source}")]
    TooLarge {
        /// The file it was for.
        file: String,
        /// How long it was.
        source: TooLarge,
    },
    /// An earlier save failed: what is on disk is unknown until the storage is opened again.
    #[error("an earlier write failed; reopen the storage to recover")]
    Failed,
}

fn io_error(file: &str) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        file: file.to_string(),
        source,
    }
}

fn corrupt(file: &str, offset: usize, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_string(),
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// The door to durable state that a runtime uses; tests can put another behind it.
pub trait Storage {
    /// Makes what `ready` asks to persist durable, and returns only once it is. After an error nothing of
    /// `ready` may be released: the caller stops, and recovers by opening the storage again.
    fn save(&mut self, ready: &Ready) -> Result<(), StorageError>;

    /// For tests only (a deliberate bug): from now on `save` returns before the log it wrote is synced,
    /// leaving the sync to [`Storage::sync_deferred`]. Returns whether this storage can.
    fn defer_syncs(&mut self) -> bool {
        false
    }

    /// Syncs what a save left unsynced under [`Storage::defer_syncs`].
    fn sync_deferred(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// How many syncs (of files and of the directory) the storage has made since it was opened.
    fn syncs(&self) -> u64 {
        0
    }

    /// From now on, hands `report` what each save made durable, as the storage wrote it, once its sync has
    /// returned (`raft-node --trace` writes it as the save's `Persist` event). Returns whether this storage
    /// can; one that cannot leaves the caller to report what it was asked to save.
    fn report_saves(&mut self, report: SaveReport) -> bool {
        let _ = report;
        false
    }
}

/// What one save made durable, as the storage wrote it: the state its log holds after the save (what
/// recovery would load), with the entries and the snapshot the save wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The term and vote.
    pub hard: (Term, Option<NodeId>),
    /// The snapshot's last index and term.
    pub snapshot: (Index, Term),
    /// The last index of the log.
    pub last: Index,
    /// The entries the save wrote, replacing the log from the index on (`None`: it wrote no entries).
    pub entries: Option<(Index, Vec<Entry>)>,
    /// The snapshot the save wrote (`None`: it wrote none).
    pub snapshot_data: Option<Vec<u8>>,
}

/// Where a storage reports its saves ([`Storage::report_saves`]).
pub type SaveReport = Box<dyn FnMut(&Saved) + Send>;

/// What a node starts from.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The state last saved (`None` if nothing was ever saved).
    pub state: Option<PersistentState>,
    /// The snapshot saved with it, if any.
    pub snapshot: Option<Vec<u8>>,
    /// What recovery repaired (a torn tail cut off), one line each.
    pub warnings: Vec<String>,
}

/// Tuning.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// A segment is closed once it holds this many bytes (and twice its checkpoint).
    pub segment_bytes: u64,
    /// The longest record written (capped at [`MAX_PAYLOAD`], the longest recovery reads).
    pub max_record: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_bytes: 64 << 20,
            max_record: MAX_PAYLOAD,
        }
    }
}

/// Postcard's bytes for an entry besides its command, at most: the term and the command's length as
/// varints, and the command's tag.
const ENTRY_OVERHEAD: usize = 24;

/// Cuts `log` into runs whose commands (and their overhead) take at most `budget` bytes; a run holds one
/// entry at least.
fn runs(log: &[Entry], budget: usize) -> Vec<&[Entry]> {
    let mut runs = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (k, entry) in log.iter().enumerate() {
        let more = entry.bytes().len() + ENTRY_OVERHEAD;
        if k > start && size + more > budget {
            runs.push(&log[start..k]);
            (start, size) = (k, 0);
        }
        size += more;
    }
    if start < log.len() || runs.is_empty() {
        runs.push(&log[start..]);
    }
    runs
}

/// The state as replayed from the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Replayed {
    hard: (Term, Option<NodeId>),
    snapshot: (Index, Term),
    membership: Membership,
    log: Vec<Entry>,
}

impl Replayed {
    fn last_index(&self) -> Index {
        self.snapshot.0 + self.log.len() as Index
    }

    /// Moves the snapshot to `(index, term)`: the entries through it leave the log, and the rest stays only
    /// if the log holds the snapshot's last entry (Figure 13, steps 6 and 7).
    fn compact(&mut self, (index, term): (Index, Term)) {
        let at = index.checked_sub(self.snapshot.0 + 1).map(|k| k as usize);
        match at {
            Some(k) if k < self.log.len() && self.log[k].term == term => {
                self.log.drain(..=k);
            }
            _ => self.log.clear(),
        }
        self.snapshot = (index, term);
    }

    /// What a save's records write: the term and vote, the snapshot's last index and term, the entries
    /// from an index on. Entries are kept by their term alone (the storage's view of what its log holds).
    fn write(
        &mut self,
        hard: Option<(Term, Option<NodeId>)>,
        snapshot: Option<(Index, Term)>,
        membership: Option<&Membership>,
        entries: Option<(Index, &[Entry])>,
    ) {
        if let Some(hard) = hard {
            self.hard = hard;
        }
        if let Some(snapshot) = snapshot {
            self.compact(snapshot);
        }
        if let Some(membership) = membership {
            self.membership = membership.clone();
        }
        if let Some((from, es)) = entries {
            self.log.truncate((from - self.snapshot.0 - 1) as usize);
            self.log
                .extend(es.iter().map(|e| Entry::command(e.term, Vec::new())));
        }
    }

    fn into_state(self) -> PersistentState {
        PersistentState {
            current_term: self.hard.0,
            voted_for: self.hard.1,
            last_included_index: self.snapshot.0,
            last_included_term: self.snapshot.1,
            membership: self.membership,
            log: self.log,
        }
    }
}

/// Storage in a directory: see the module documentation.
pub struct FileStorage<D: Disk> {
    disk: D,
    identity: Identity,
    options: Options,
    /// The segment appended to.
    segment: u64,
    /// The sequence number of its next record.
    seq: u64,
    segment_len: u64,
    checkpoint_len: u64,
    /// What is durable: what the log's records hold (entries by their term alone).
    durable: Replayed,
    failed: bool,
    syncs: u64,
    /// The bug of [`Storage::defer_syncs`] is on.
    defer_syncs: bool,
    /// The segment an append left unsynced, under that bug.
    unsynced: Option<String>,
    /// Where saves are reported, if anywhere.
    report: Option<SaveReport>,
    /// Saves not yet reported: their sync is deferred.
    unreported: Vec<Saved>,
}

impl<D: Disk> FileStorage<D> {
    /// Opens the storage on `disk` for `identity`, recovers what it holds, and starts a new segment from it.
    pub fn open(
        mut disk: D,
        identity: Identity,
        options: Options,
    ) -> Result<(FileStorage<D>, Recovered), StorageError> {
        let mut warnings = Vec::new();
        let names = disk.list().map_err(io_error("."))?;
        for tmp in names.iter().filter(|n| n.ends_with(".tmp")) {
            // A snapshot or segment write that never completed: its rename never happened, so nothing refers
            // to it.
            disk.remove(tmp).map_err(io_error(tmp))?;
            warnings.push(format!("removed {tmp}, a write that never completed"));
        }
        let mut segments: Vec<u64> = names.iter().filter_map(|n| segment_number(n)).collect();
        segments.sort_unstable();
        for pair in segments.windows(2) {
            if pair[1] != pair[0] + 1 {
                return Err(StorageError::MissingSegment {
                    file: segment_name(pair[0] + 1),
                    before: segment_name(pair[0]),
                    after: segment_name(pair[1]),
                });
            }
        }
        let snapshot = if names.iter().any(|n| n == SNAPSHOT) {
            Some(read_snapshot(&mut disk, identity)?)
        } else {
            None
        };

        let mut replayed: Option<Replayed> = None;
        for (k, &n) in segments.iter().enumerate() {
            let last = k + 1 == segments.len();
            let name = segment_name(n);
            let bytes = disk.read(&name).map_err(io_error(&name))?;
            let end = replay(n, &bytes, last, identity, &mut replayed)?;
            if end < bytes.len() {
                warnings.push(format!(
                    "{name}: cut off a torn record at offset {end} ({} bytes), a save that never returned",
                    bytes.len() - end
                ));
                disk.truncate(&name, end as u64).map_err(io_error(&name))?;
            }
        }

        let mut snapshot_data = None;
        if let Some(file) = snapshot {
            let state = replayed.get_or_insert_with(Replayed::default);
            if file.index < state.snapshot.0 {
                return Err(corrupt(
                    SNAPSHOT,
                    0,
                    format!(
                        "the snapshot is through index {}, but the log's is through {}",
                        file.index, state.snapshot.0
                    ),
                ));
            }
            if file.index > state.snapshot.0 {
                // The snapshot was made durable, and the save that wrote its marker to the log did not
                // return: take it as that save would have.
                state.compact((file.index, file.term));
                state.membership = file.membership;
            } else if file.term != state.snapshot.1 {
                return Err(corrupt(
                    SNAPSHOT,
                    0,
                    format!(
                        "the snapshot's last term is {}, but the log says {}",
                        file.term, state.snapshot.1
                    ),
                ));
            }
            snapshot_data = Some(file.data);
        } else if let Some(state) = &replayed {
            if state.snapshot.0 > 0 {
                return Err(StorageError::Io {
                    file: SNAPSHOT.into(),
                    source: io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "the log has a snapshot through index {}, and the file is missing",
                            state.snapshot.0
                        ),
                    ),
                });
            }
        }

        let start = replayed.clone().unwrap_or_default();
        let mut storage = FileStorage {
            disk,
            identity,
            options,
            segment: segments.last().copied().unwrap_or(0),
            seq: 0,
            segment_len: 0,
            checkpoint_len: 0,
            durable: Replayed {
                hard: start.hard,
                snapshot: start.snapshot,
                membership: start.membership.clone(),
                log: Vec::new(),
            },
            failed: false,
            syncs: 0,
            defer_syncs: false,
            unsynced: None,
            report: None,
            unreported: Vec::new(),
        };
        storage
            .durable
            .write(None, None, None, Some((start.snapshot.0 + 1, &start.log)));
        storage.roll(start.hard, start.snapshot, &start.membership, &start.log)?;
        let recovered = Recovered {
            // A directory holding only the first checkpoint of a new node has nothing saved in it.
            state: replayed
                .filter(|r| *r != Replayed::default())
                .map(Replayed::into_state),
            snapshot: snapshot_data,
            warnings,
        };
        for w in &recovered.warnings {
            tracing::warn!("{w}");
        }
        Ok((storage, recovered))
    }

    fn sync(&mut self, name: &str) -> Result<(), StorageError> {
        self.syncs += 1;
        self.disk.sync(name).map_err(io_error(name))
    }

    fn sync_dir(&mut self) -> Result<(), StorageError> {
        self.syncs += 1;
        self.disk.sync_dir().map_err(io_error("."))
    }

    /// The disk (for tests that crash it).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk, to change (tests that make it crash).
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Starts segment `self.segment + 1` with a checkpoint of the given state, makes it durable, and removes
    /// the segments before it.
    fn roll(
        &mut self,
        hard: (Term, Option<NodeId>),
        snapshot: (Index, Term),
        membership: &Membership,
        log: &[Entry],
    ) -> Result<(), StorageError> {
        self.sync_pending()?;
        let next = self.segment + 1;
        let name = segment_name(next);
        let tmp = format!("{name}.tmp");
        // The checkpoint, and the rest of the log in batches if it is too large for one record.
        let budget = self.budget();
        let runs = runs(log, budget);
        let mut from = snapshot.0 + 1;
        let mut bytes = Vec::new();
        for (seq, run) in runs.iter().enumerate() {
            let record = if seq == 0 {
                RecordRef::Checkpoint {
                    format: FORMAT,
                    identity: self.identity,
                    hard,
                    snapshot,
                    membership,
                    log: run,
                }
            } else {
                RecordRef::Batch {
                    hard: None,
                    snapshot: None,
                    membership: None,
                    entries: Some((from, run)),
                }
            };
            let place = Place {
                file: next,
                seq: seq as u64,
            };
            bytes.extend(self.frame(&name, &record, place)?);
            from += run.len() as Index;
        }
        self.disk.append(&tmp, &bytes).map_err(io_error(&tmp))?;
        self.sync(&tmp)?;
        self.disk.rename(&tmp, &name).map_err(io_error(&name))?;
        self.sync_dir()?;
        // The new segment stands alone now: the older ones can go, oldest first, so that a crash in between
        // leaves a run of segments without a gap.
        let mut old: Vec<u64> = self
            .disk
            .list()
            .map_err(io_error("."))?
            .iter()
            .filter_map(|n| segment_number(n))
            .filter(|&n| n < next)
            .collect();
        old.sort_unstable();
        for n in &old {
            let old_name = segment_name(*n);
            self.disk.remove(&old_name).map_err(io_error(&old_name))?;
        }
        if !old.is_empty() {
            self.sync_dir()?;
        }
        self.segment = next;
        self.seq = runs.len() as u64;
        self.segment_len = bytes.len() as u64;
        self.checkpoint_len = bytes.len() as u64;
        Ok(())
    }

    /// The bytes of commands a record may hold, leaving room for the rest of it.
    fn budget(&self) -> usize {
        self.options.max_record.min(MAX_PAYLOAD).saturating_sub(256)
    }

    /// `record` framed for `place` in `file`, or why it is too large.
    fn frame(
        &self,
        file: &str,
        record: &impl serde::Serialize,
        place: Place,
    ) -> Result<Vec<u8>, StorageError> {
        frame(record, place, self.options.max_record).map_err(|source| StorageError::TooLarge {
            file: file.to_string(),
            source,
        })
    }

    fn save_inner(&mut self, ready: &Ready) -> Result<(), StorageError> {
        let Some(state) = ready.persist() else {
            return Ok(());
        };
        let snapshot = (state.last_included_index, state.last_included_term);
        let hard = (state.current_term, state.voted_for);
        let name = segment_name(self.segment);
        // Everything is framed before anything is written: a save over the size limit fails having written
        // nothing.
        let mut seq = self.seq;
        let mut place = || {
            seq += 1;
            Place {
                file: self.segment,
                seq: seq - 1,
            }
        };
        // A snapshot that comes with a new term (a leader's, installed): the term goes to the log first, so
        // that a crash after the snapshot file is in place and before the record that refers to it never
        // recovers a snapshot newer than the term.
        let term_first = ready.snapshot().is_some() && hard != self.durable.hard;
        let term_record = if term_first {
            let record = RecordRef::Batch {
                hard: Some(hard),
                snapshot: None,
                membership: None,
                entries: None,
            };
            Some(self.frame(&name, &record, place())?)
        } else {
            None
        };
        let snapshot_file = match ready.snapshot() {
            Some(data) => {
                let file = SnapshotRef {
                    format: FORMAT,
                    identity: self.identity,
                    index: snapshot.0,
                    term: snapshot.1,
                    membership: &state.membership,
                    data,
                };
                let place = Place {
                    file: SNAPSHOT_FILE,
                    seq: 0,
                };
                Some(self.frame(SNAPSHOT, &file, place)?)
            }
            None => None,
        };
        let hard_changed = (hard != self.durable.hard && !term_first).then_some(hard);
        let snapshot_changed = (snapshot != self.durable.snapshot).then_some(snapshot);
        let membership_changed =
            (state.membership != self.durable.membership).then_some(&state.membership);
        let entries = ready.log_changed_from().map(|from| {
            let from = from.max(snapshot.0 + 1);
            let skip = ((from - snapshot.0 - 1) as usize).min(state.log.len());
            (from, &state.log[skip..])
        });
        let mut batch = Vec::new();
        match entries {
            Some((from, written)) => {
                let mut at = from;
                for (k, run) in runs(written, self.budget()).into_iter().enumerate() {
                    let record = RecordRef::Batch {
                        hard: hard_changed.filter(|_| k == 0),
                        snapshot: snapshot_changed.filter(|_| k == 0),
                        membership: membership_changed.filter(|_| k == 0),
                        entries: Some((at, run)),
                    };
                    batch.extend(self.frame(&name, &record, place())?);
                    at += run.len() as Index;
                }
            }
            None if hard_changed.is_some()
                || snapshot_changed.is_some()
                || membership_changed.is_some() =>
            {
                let record = RecordRef::Batch {
                    hard: hard_changed,
                    snapshot: snapshot_changed,
                    membership: membership_changed,
                    entries: None,
                };
                batch = self.frame(&name, &record, place())?;
            }
            None => {}
        }

        if let Some(bytes) = term_record {
            self.append(&bytes, 1)?;
            self.durable.write(Some(hard), None, None, None);
        }
        if let Some(bytes) = snapshot_file {
            self.disk
                .append(SNAPSHOT_TMP, &bytes)
                .map_err(io_error(SNAPSHOT_TMP))?;
            self.sync(SNAPSHOT_TMP)?;
            self.disk
                .rename(SNAPSHOT_TMP, SNAPSHOT)
                .map_err(io_error(SNAPSHOT))?;
            self.sync_dir()?;
        }
        if !batch.is_empty() {
            self.append(&batch, seq - self.seq)?;
            self.durable
                .write(hard_changed, snapshot_changed, membership_changed, entries);
        }
        if self.report.is_some() {
            let saved = Saved {
                hard: self.durable.hard,
                snapshot: self.durable.snapshot,
                last: self.durable.last_index(),
                entries: entries.map(|(from, es)| (from, es.to_vec())),
                snapshot_data: ready.snapshot().map(<[u8]>::to_vec),
            };
            self.unreported.push(saved);
            if self.unsynced.is_none() {
                self.report_synced();
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        if self.segment_len >= self.options.segment_bytes.max(2 * self.checkpoint_len) {
            self.roll(hard, snapshot, &state.membership, &state.log)?;
        }
        Ok(())
    }

    /// Appends `records` (`count` of them, framed) to the segment and syncs it.
    fn append(&mut self, records: &[u8], count: u64) -> Result<(), StorageError> {
        let name = segment_name(self.segment);
        self.disk.append(&name, records).map_err(io_error(&name))?;
        if self.defer_syncs {
            self.unsynced = Some(name);
        } else {
            self.sync(&name)?;
        }
        self.seq += count;
        self.segment_len += records.len() as u64;
        Ok(())
    }

    /// Syncs the segment an append left unsynced, if any.
    fn sync_pending(&mut self) -> Result<(), StorageError> {
        if let Some(name) = self.unsynced.take() {
            self.sync(&name)?;
        }
        self.report_synced();
        Ok(())
    }

    /// Reports the saves whose sync has returned.
    fn report_synced(&mut self) {
        if let Some(report) = &mut self.report {
            for saved in self.unreported.drain(..) {
                report(&saved);
            }
        }
    }
}

impl<D: Disk> Storage for FileStorage<D> {
    fn save(&mut self, ready: &Ready) -> Result<(), StorageError> {
        if self.failed {
            return Err(StorageError::Failed);
        }
        let result = self.save_inner(ready);
        self.failed = result.is_err();
        result
    }

    fn syncs(&self) -> u64 {
        self.syncs
    }

    fn defer_syncs(&mut self) -> bool {
        self.defer_syncs = true;
        true
    }

    fn sync_deferred(&mut self) -> Result<(), StorageError> {
        self.sync_pending()
    }

    fn report_saves(&mut self, report: SaveReport) -> bool {
        self.report = Some(report);
        true
    }
}

/// Reads and checks the snapshot file.
fn read_snapshot(disk: &mut impl Disk, identity: Identity) -> Result<Snapshot, StorageError> {
    let bytes = disk.read(SNAPSHOT).map_err(io_error(SNAPSHOT))?;
    let place = Place {
        file: SNAPSHOT_FILE,
        seq: 0,
    };
    let (payload, end) =
        unframe(&bytes, 0, place).map_err(|bad| corrupt(SNAPSHOT, 0, bad.to_string()))?;
    if end != bytes.len() {
        return Err(corrupt(SNAPSHOT, end, "bytes after the snapshot"));
    }
    let file: Snapshot = postcard::from_bytes(payload)
        .map_err(|e| corrupt(SNAPSHOT, record::HEADER, format!("undecodable: {e}")))?;
    check_identity(SNAPSHOT, file.format, file.identity, identity)?;
    Ok(file)
}

fn check_identity(
    file: &str,
    format: u32,
    found: Identity,
    expected: Identity,
) -> Result<(), StorageError> {
    if format != FORMAT {
        return Err(StorageError::Foreign {
            file: file.into(),
            found: format!("of format {format}"),
            expected: format!("format {FORMAT}"),
        });
    }
    if found != expected {
        return Err(StorageError::Foreign {
            file: file.into(),
            found: format!("cluster {} node {}'s", found.cluster, found.node),
            expected: format!("cluster {} node {}'s", expected.cluster, expected.node),
        });
    }
    Ok(())
}

/// Whether a log that starts after index `base` and holds `len` entries stays far from overflowing the
/// index arithmetic (an index of 2^62 or more is damage, not a log).
fn sane(base: Index, len: usize) -> bool {
    base.checked_add(len as Index)
        .is_some_and(|end| end < 1 << 62)
}

/// Replays segment number `n` into `state`; returns where its valid records end (before a torn tail, which
/// only the `last` segment may have, and never in its checkpoint, which was renamed into place whole).
fn replay(
    n: u64,
    bytes: &[u8],
    last: bool,
    identity: Identity,
    state: &mut Option<Replayed>,
) -> Result<usize, StorageError> {
    let name = &segment_name(n);
    let mut offset = 0;
    let mut seq = 0;
    while offset < bytes.len() {
        let place = Place { file: n, seq };
        let (payload, next) = match unframe(bytes, offset, place) {
            Ok(ok) => ok,
            Err(bad) if last && offset > 0 && is_torn_tail(bytes, offset, n, &bad) => {
                return Ok(offset)
            }
            Err(bad) => return Err(corrupt(name, offset, bad.to_string())),
        };
        seq += 1;
        let record: Record = postcard::from_bytes(payload)
            .map_err(|e| corrupt(name, offset, format!("undecodable record: {e}")))?;
        match record {
            Record::Checkpoint {
                format,
                identity: found,
                hard,
                snapshot,
                membership,
                log,
            } => {
                check_identity(name, format, found, identity)?;
                if offset != 0 {
                    return Err(corrupt(name, offset, "a checkpoint inside a segment"));
                }
                if !sane(snapshot.0, log.len()) {
                    return Err(corrupt(name, offset, "an impossible snapshot index"));
                }
                *state = Some(Replayed {
                    hard,
                    snapshot,
                    membership,
                    log,
                });
            }
            Record::Batch {
                hard,
                snapshot,
                membership,
                entries,
            } => {
                let Some(s) = state.as_mut().filter(|_| offset > 0) else {
                    return Err(corrupt(
                        name,
                        offset,
                        "the segment does not start with a checkpoint",
                    ));
                };
                if let Some(hard) = hard {
                    s.hard = hard;
                }
                let too_large = snapshot.is_some_and(|(index, _)| !sane(index, 0))
                    || entries
                        .as_ref()
                        .is_some_and(|(from, es)| !sane(*from, es.len()));
                if too_large {
                    return Err(corrupt(name, offset, "an impossible log index"));
                }
                if let Some(snapshot) = snapshot {
                    if snapshot.0 < s.snapshot.0 {
                        return Err(corrupt(
                            name,
                            offset,
                            format!(
                                "the snapshot goes back from index {} to {}",
                                s.snapshot.0, snapshot.0
                            ),
                        ));
                    }
                    s.compact(snapshot);
                }
                if let Some(membership) = membership {
                    s.membership = membership;
                }
                if let Some((from, es)) = entries {
                    if from <= s.snapshot.0 || from > s.last_index() + 1 {
                        return Err(corrupt(
                            name,
                            offset,
                            format!(
                                "entries from index {from} do not continue the log (snapshot through {}, last index {})",
                                s.snapshot.0,
                                s.last_index()
                            ),
                        ));
                    }
                    s.log.truncate((from - s.snapshot.0 - 1) as usize);
                    s.log.extend(es);
                }
            }
        }
        offset = next;
    }
    Ok(offset)
}
