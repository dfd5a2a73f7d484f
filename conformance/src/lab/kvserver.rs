//! The key-value server of Lab 3 (Go's `server.go`), one per Raft server, on the simulator
//! (`specs/lab3-tester.md`, `## The key-value server`).
//!
//! The state machine is `raft_kv`'s [`Store`]; the server is the glue between the clerks' calls,
//! its Raft instance (through the lab adapter) and the store:
//!
//! * **Writes** (`Request::Propose`: a `Register` or a `Put`/`Append` with the clerk's session
//!   and sequence number) go through the log. The server remembers each proposal's index and term
//!   and answers it when that index is applied: `Committed` with the store's answer if the entry
//!   there is its own (same term), `Lost` if another entry took the index, `Unknown` if a snapshot
//!   from the leader covered it. Retries carry the same sequence number, so the session in the
//!   store applies each write once.
//! * **Reads** (`Request::Read`) never touch the log: the server begins a ReadIndex read
//!   (`Node::read_index`) and, once its Raft hands the read back confirmed by a majority, answers
//!   it from the store as soon as the store has applied the read index.
//! * **Batching.** The server hands what its clients asked to Raft once per tick, in its loop,
//!   which runs just before its node's tick: one round of AppendEntries carries the writes that
//!   arrived since, and one read round confirms the reads. (This is also what makes an operation
//!   take virtual time on a reliable network, where a round trip takes none.)
//! * **Leadership.** A server whose Raft does not lead answers `NotLeader` with the leader it
//!   knows of, at once. The loop answers `NotLeader` to every proposal and unconfirmed read of an
//!   earlier term, or made while leading, once the node no longer leads in that term: the core
//!   drops pending reads silently when it steps down, and a write may still commit elsewhere, which
//!   the clerk's retry with the same sequence number finds out. A new leader proposes an empty
//!   command at its first loop, so that an entry of its term commits and reads are no longer
//!   refused (`ReadRefused::NoCommitInTerm`: such reads wait for the next loop).
//! * **Snapshots.** With `maxraftstate` set, the server snapshots (`Store::snapshot`, which holds
//!   the data and the sessions) right after applying an entry that leaves the persisted Raft state
//!   at `maxraftstate` bytes or more. A restarted server restores the persister's snapshot before
//!   its Raft starts, and restores a snapshot Raft installs from the leader.
//!
//! A killed server is dropped with the clerks' calls it was answering: labrpc fails them once it
//! sees the server gone.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use raft::{Index, NodeId, ReadRefused, ReadState};
use raft_kv::{Reply, Request, Response, Store};

use super::adapter::{self, Harness, NodeStatus};
use super::persister::Persister;

/// How a server answers one call of a clerk: labrpc's reply, given at most once. Dropping it
/// unanswered leaves the call to labrpc's checks (it fails once the server is found dead).
pub(crate) type Respond = Box<dyn FnOnce(Response)>;

/// A cluster that runs a key-value server beside each Raft instance.
pub(crate) trait KvCluster: Harness {
    /// Server `i`'s key-value server, `None` while the server is shut down.
    fn kv(&self, i: usize) -> &RefCell<Option<KvServer>>;
}

/// A write proposed and not yet decided.
struct Proposal {
    /// The term the entry was appended in.
    term: u64,
    respond: Respond,
}

/// A read begun (ReadIndex) and not yet confirmed.
struct PendingRead {
    key: String,
    /// The leader's term when it began.
    term: u64,
    respond: Respond,
}

/// A confirmed read, to answer once the store has applied `index`.
struct ConfirmedRead {
    index: Index,
    key: String,
    respond: Respond,
}

/// One key-value server (Go's `KVServer`): the store and the clerks' calls in progress.
pub(crate) struct KvServer {
    me: usize,
    /// The Raft instance this server runs with (its generation).
    generation: u64,
    /// Snapshot once the persisted Raft state reaches this many bytes (`None`: never).
    maxraftstate: Option<usize>,
    /// The persister its Raft saves to.
    persister: Persister,
    store: Store,
    /// Calls that arrived since the loop last ran.
    inbox: Vec<(Request, Respond)>,
    /// Writes in the log, by index (a leader re-elected may propose again at an index where an
    /// older proposal waits: the entry applied there decides each).
    proposals: BTreeMap<Index, Vec<Proposal>>,
    /// Reads begun, by the context given to `read_index`.
    reads: BTreeMap<u64, PendingRead>,
    /// Reads confirmed, waiting for the store to apply their index.
    confirmed: Vec<ConfirmedRead>,
    /// The last term in which this server proposed its empty command as leader.
    noop_term: u64,
    next_context: u64,
}

impl KvServer {
    /// `StartKVServer`: a server restoring the snapshot in `persister`, if any.
    ///
    /// # Panics
    ///
    /// If the persister holds a snapshot the store refuses (only this server's own code wrote it).
    pub(crate) fn start(
        me: usize,
        generation: u64,
        persister: Persister,
        maxraftstate: Option<usize>,
    ) -> KvServer {
        let mut store = Store::new();
        let snapshot = persister.read_snapshot();
        if !snapshot.is_empty() {
            store
                .restore(&snapshot)
                .unwrap_or_else(|e| panic!("server {me}: cannot restore its snapshot: {e}"));
        }
        KvServer {
            me,
            generation,
            maxraftstate,
            persister,
            store,
            inbox: Vec::new(),
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
            confirmed: Vec::new(),
            noop_term: 0,
            next_context: 0,
        }
    }

    /// The store as applied so far.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Answers `NotLeader` to every proposal and unconfirmed read made in a term in which the node
    /// no longer leads.
    fn answer_stale(&mut self, status: NodeStatus) {
        let stale = |term: u64| !status.is_leader || term != status.term;
        let hint = hint(status.leader);
        for (index, waiting) in std::mem::take(&mut self.proposals) {
            let mut kept = Vec::new();
            for p in waiting {
                if stale(p.term) {
                    (p.respond)(Response::NotLeader(hint));
                } else {
                    kept.push(p);
                }
            }
            if !kept.is_empty() {
                self.proposals.insert(index, kept);
            }
        }
        let reads = std::mem::take(&mut self.reads);
        for (context, read) in reads {
            if stale(read.term) {
                (read.respond)(Response::NotLeader(hint));
            } else {
                self.reads.insert(context, read);
            }
        }
    }

    /// Applies the entry committed at `index` in `term`, answers the proposals waiting there and
    /// the reads it makes servable, and returns a snapshot through `index` if the persisted Raft
    /// state has reached `maxraftstate`.
    fn apply(&mut self, index: Index, term: u64, command: &[u8]) -> Option<Vec<u8>> {
        let answer = self.store.apply(index, command);
        if let Some(waiting) = self.proposals.remove(&index) {
            let reply: Reply = raft_kv::decode(&answer).expect("the store's own answer decodes");
            for p in waiting {
                (p.respond)(if p.term == term {
                    Response::Committed(reply.clone())
                } else {
                    Response::Lost
                });
            }
        }
        self.serve_confirmed();
        let size = self.persister.raft_state_size();
        self.maxraftstate
            .is_some_and(|max| size >= max)
            .then(|| self.store.snapshot())
    }

    /// Restores a snapshot through `index` that Raft handed over (one installed from the leader, or
    /// after a restart the one restored already); proposals it covers may or may not have committed.
    fn install(&mut self, index: Index, data: &[u8]) {
        if index > self.store.last_applied() {
            let me = self.me;
            self.store
                .restore(data)
                .unwrap_or_else(|e| panic!("server {me}: snapshot through {index} refused: {e}"));
        }
        let later = self.proposals.split_off(&(index + 1));
        for p in std::mem::replace(&mut self.proposals, later)
            .into_values()
            .flatten()
        {
            (p.respond)(Response::Unknown);
        }
        self.serve_confirmed();
    }

    /// Answers every confirmed read whose index the store has applied.
    fn serve_confirmed(&mut self) {
        let applied = self.store.last_applied();
        if self.confirmed.iter().all(|r| r.index > applied) {
            return;
        }
        for read in std::mem::take(&mut self.confirmed) {
            if read.index <= applied {
                (read.respond)(Response::Value(self.store.get(&read.key).to_owned()));
            } else {
                self.confirmed.push(read);
            }
        }
    }
}

/// A leader hint in the clerks' numbering of servers.
fn hint(leader: Option<NodeId>) -> Option<usize> {
    leader.map(|l| l as usize)
}

/// Runs `f` on server `i`'s key-value server, if it runs.
fn with_kv<H: KvCluster, R>(h: &H, i: usize, f: impl FnOnce(&mut KvServer) -> R) -> Option<R> {
    h.kv(i).borrow_mut().as_mut().map(f)
}

/// The RPC handler (`KVServer.Get`, `KVServer.PutAppend`) of server `i`'s instance `generation`:
/// answers at once if its Raft does not lead, else keeps the call for the next loop. A call that
/// reaches a server no longer running is dropped unanswered.
pub(crate) fn handle<H: KvCluster>(
    h: &Rc<H>,
    i: usize,
    generation: u64,
    request: Request,
    respond: Respond,
) {
    let Some(status) = adapter::status(&**h, i) else {
        return;
    };
    let mut slot = h.kv(i).borrow_mut();
    let Some(kv) = slot.as_mut().filter(|kv| kv.generation == generation) else {
        return;
    };
    if status.is_leader {
        kv.inbox.push((request, respond));
    } else {
        drop(slot);
        respond(Response::NotLeader(hint(status.leader)));
    }
}

/// The server's loop, run every tick just before its node's tick: answers what a change of
/// leadership left undecided, has a new leader propose its empty command, and hands the calls that
/// arrived since the last loop to Raft.
pub(crate) fn tick<H: KvCluster>(h: &Rc<H>, i: usize) {
    let Some(status) = adapter::status(&**h, i) else {
        return;
    };
    let Some((noop, inbox)) = with_kv(&**h, i, |kv| {
        kv.answer_stale(status);
        let noop = status.is_leader && kv.noop_term != status.term;
        if noop {
            kv.noop_term = status.term;
        }
        (noop, std::mem::take(&mut kv.inbox))
    }) else {
        return;
    };
    if noop {
        adapter::propose(h, i, Vec::new());
    }
    for (request, respond) in inbox {
        submit(h, i, status.term, request, respond);
    }
}

/// Hands one call to Raft: a proposal, or the beginning of a read.
fn submit<H: KvCluster>(h: &Rc<H>, i: usize, term: u64, request: Request, respond: Respond) {
    match request {
        Request::Propose(command) => {
            let start = adapter::propose(h, i, raft_kv::encode(&command))
                .expect("the loop runs only while the server runs");
            if !start.is_leader {
                respond(Response::NotLeader(hint(start.leader)));
                return;
            }
            with_kv(&**h, i, |kv| {
                kv.proposals.entry(start.index).or_default().push(Proposal {
                    term: start.term,
                    respond,
                })
            });
        }
        Request::Read { key } => {
            // Recorded before it begins, in case the node confirms it at once.
            let context = with_kv(&**h, i, |kv| {
                let context = kv.next_context;
                kv.next_context += 1;
                kv.reads.insert(context, PendingRead { key, term, respond });
                context
            })
            .expect("the loop runs only while the server runs");
            let refused = match adapter::read_index(h, i, context) {
                Some(Err(refused)) => refused,
                _ => return,
            };
            with_kv(&**h, i, |kv| {
                let Some(read) = kv.reads.remove(&context) else {
                    return;
                };
                match refused {
                    ReadRefused::NotLeader(not_leader) => {
                        (read.respond)(Response::NotLeader(hint(not_leader.leader)))
                    }
                    // The empty command of this term has not committed yet: again next loop.
                    ReadRefused::NoCommitInTerm => kv
                        .inbox
                        .push((Request::Read { key: read.key }, read.respond)),
                }
            });
        }
    }
}

/// Server `i` applies the entry committed at `index` (its applyCh); returns the snapshot to take.
pub(crate) fn on_command<H: KvCluster>(
    h: &H,
    i: usize,
    index: Index,
    term: u64,
    command: &[u8],
) -> Option<Vec<u8>> {
    with_kv(h, i, |kv| kv.apply(index, term, command)).flatten()
}

/// Server `i`'s Raft hands over a snapshot through `index`.
pub(crate) fn on_snapshot<H: KvCluster>(h: &H, i: usize, index: Index, data: &[u8]) {
    with_kv(h, i, |kv| kv.install(index, data));
}

/// Server `i`'s Raft confirmed these reads: each is answered once the store has applied its index.
pub(crate) fn on_reads<H: KvCluster>(h: &H, i: usize, reads: Vec<ReadState>) {
    with_kv(h, i, |kv| {
        for ReadState { context, index } in reads {
            if let Some(read) = kv.reads.remove(&context) {
                kv.confirmed.push(ConfirmedRead {
                    index,
                    key: read.key,
                    respond: read.respond,
                });
            }
        }
        kv.serve_confirmed();
    });
}
