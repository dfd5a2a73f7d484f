//! Coverage of the spec: which of the states the specification can reach within a set of bounds the
//! implementation reaches too.
//!
//! Both sides are compared on one projection ([`project`]): the spec state a run stands for (for the
//! implementation, [`ImplState::spec`], the trace checker's replay) without the search's bookkeeping and
//! without dead messages, named by an exact symmetry class. The implementation's side is every state of the
//! exhaustive exploration of the real nodes; the spec's side is every state of the model within the same
//! bounds ([`spec_actions`]). An implementation state outside the spec's set breaks refinement; a spec state
//! outside the implementation's set is a behaviour Raft allows and this implementation never shows. Those
//! are grouped by the spec step through which a run leaves the implementation's reach, and each step out is
//! tested for the two explanations that account for nearly all of them: it is halfway through a step the
//! implementation takes whole, or the implementation had spent the budget it needs.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;

use model::state::Body;
use model::{Action, RaftModel, State};
use rustc_hash::{FxHashMap, FxHashSet};
use stateright::Model;

use crate::implcheck::{self, Action as ImplAction, ImplModel, State as ImplState};

/// The spec's side of a comparison: its bounds and the room rule of the exploration of the implementation.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The spec's bounds; `max_inflight` caps only a leader's own sends (AppendEntries, InstallSnapshot).
    pub bounds: model::bounds::Bounds,
    /// A timer or a command is offered only while this leaves room for a message to every peer, a
    /// duplicate only while it leaves room for one, as the exploration of the implementation does.
    pub room: u8,
    /// Which of the spec's actions are taken.
    pub actions: Actions,
}

/// Which of the spec's actions the spec's side takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actions {
    /// The model checker's enumeration (`model check`): a leader sends everything from `next_index` (or
    /// none, or one entry), commits as far as it may, compacts once what it committed, a crash only where it
    /// loses something; plus every `next_index` a leader may move to, as the trace checker lets an
    /// implementation do.
    Canonical,
    /// Every action the guards allow, with every choice of parameters.
    All,
}

/// The spec's side that matches an exploration of the implementation within `b`: the same servers, terms,
/// log length and budgets, one client value (the explored leaders are always handed the same command),
/// the same room rule for the environment's choices; a leader's own sends, which the implementation makes
/// by itself in answer to what it receives, are capped at `cap` messages in flight (take the most the
/// implementation ever had, so that the cap hides nothing it did).
pub fn spec_for(b: &implcheck::Bounds, cap: u8, actions: Actions) -> Spec {
    Spec {
        bounds: spec_bounds(b, cap),
        room: b.max_inflight,
        actions,
    }
}

fn spec_bounds(b: &implcheck::Bounds, cap: u8) -> model::bounds::Bounds {
    model::bounds::Bounds {
        servers: b.servers,
        max_term: b.max_term.try_into().unwrap_or(u32::MAX),
        max_log: b.max_log.try_into().unwrap_or(u32::MAX),
        max_crashes: b.max_crashes,
        max_inflight: cap.max(b.max_inflight),
        max_drops: b.max_drops,
        max_dups: b.max_dups,
        values: 1,
        snapshots: b.snapshots,
        partial_batches: true,
        max_reads: b.max_reads,
        voters: if b.voters == 0 { b.servers } else { b.voters },
        max_changes: b.max_changes,
        joint: false,
        pre_vote: b.pre_vote,
        check_quorum: b.check_quorum,
        max_transfers: b.max_transfers,
    }
}

/// What both sides are compared on: the servers, the live messages in flight and the history (elections
/// and commits), under symmetry reduction. Left out: the witness flags and the budgets spent (bookkeeping of
/// the search, not Raft state), and dead messages (replies no one will ever act on: the model discards
/// them as soon as they die, the implementation's network carries them until delivered or lost).
pub fn project(mut s: State) -> State {
    s.flags = 0;
    s.crashes = 0;
    s.drops = 0;
    s.dups = 0;
    let mut network = std::mem::take(&mut s.network);
    network
        .messages
        .retain(|(m, _)| !model::raft::is_dead(&s, m));
    s.network = network;
    s.canonicalize();
    s
}

/// One name for each class of projected states that differ only by a renaming of the servers: the least
/// fingerprint over every renaming. (The model's `canonicalize` is a cheaper reduction, sound for a search,
/// but two renamings of one state may canonicalize apart; comparing two sets needs one name per class.)
struct Renamings(Vec<Vec<model::state::ServerId>>);

impl Renamings {
    fn new(servers: u8) -> Renamings {
        let mut all = vec![Vec::new()];
        for k in 0..servers {
            all = all
                .into_iter()
                .flat_map(|p: Vec<_>| {
                    (0..=p.len()).map(move |at| {
                        let mut q = p.clone();
                        q.insert(at, k);
                        q
                    })
                })
                .collect();
        }
        Renamings(all)
    }

    /// The fingerprint of each renaming of `s`.
    fn all<'a>(&'a self, s: &'a State) -> impl Iterator<Item = u64> + 'a {
        self.0.iter().map(move |order| {
            let mut r = s.clone();
            r.permute(order);
            fingerprint(&r)
        })
    }

    /// One name for the class: the least fingerprint over the renamings.
    fn fingerprint(&self, s: &State) -> u64 {
        self.all(s).min().expect("at least one renaming")
    }
}

/// A 64-bit fingerprint (as stateright keeps its visited states).
fn fingerprint(s: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The spec actions a run can leave the implementation's reach through, as the report groups them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// The initial state itself (only if the two sides start apart: a broken projection).
    Start,
    /// A timer fires.
    Timeout,
    /// A leader is handed a command.
    ClientRequest,
    /// A leader sends AppendEntries.
    AppendEntries,
    /// A leader commits.
    AdvanceCommitIndex,
    /// A server compacts its log.
    Compact,
    /// A leader sends its snapshot.
    InstallSnapshot,
    /// A leader moves a next_index.
    SetNextIndex,
    /// A RequestVote is handled.
    ReceiveRequestVote,
    /// A vote reply is handled.
    ReceiveRequestVoteReply,
    /// An AppendEntries is handled.
    ReceiveAppendEntries,
    /// An AppendEntries reply is handled.
    ReceiveAppendEntriesReply,
    /// An InstallSnapshot is handled.
    ReceiveInstallSnapshot,
    /// An InstallSnapshot reply is handled.
    ReceiveInstallSnapshotReply,
    /// A server crashes and restarts.
    Crash,
    /// A message is lost.
    Drop,
    /// A message is duplicated.
    Duplicate,
    /// A leader begins a read.
    ReadIndex,
    /// A leader changes the configuration.
    ChangeConfig,
    /// A PreVote is handled.
    ReceivePreVote,
    /// A pre-vote reply is handled.
    ReceivePreVoteReply,
    /// CheckQuorum or a leadership transfer: a lease that runs out, a quorum check, a TimeoutNow sent
    /// or handled.
    CheckQuorumTransfer,
}

impl Step {
    /// The group of a spec action.
    pub fn of(a: &Action) -> Step {
        match a {
            Action::Timeout(_) => Step::Timeout,
            Action::ClientRequest(..) => Step::ClientRequest,
            Action::AppendEntries { .. } => Step::AppendEntries,
            Action::AdvanceCommitIndex(..) => Step::AdvanceCommitIndex,
            Action::Compact(..) => Step::Compact,
            Action::InstallSnapshot { .. } => Step::InstallSnapshot,
            Action::SetNextIndex { .. } => Step::SetNextIndex,
            Action::Receive(m) => match m.body {
                Body::RequestVote { .. } => Step::ReceiveRequestVote,
                Body::RequestVoteReply { .. } => Step::ReceiveRequestVoteReply,
                Body::AppendEntries { .. } => Step::ReceiveAppendEntries,
                Body::AppendEntriesReply { .. } => Step::ReceiveAppendEntriesReply,
                Body::InstallSnapshot { .. } => Step::ReceiveInstallSnapshot,
                Body::InstallSnapshotReply { .. } => Step::ReceiveInstallSnapshotReply,
                Body::PreVote { .. } => Step::ReceivePreVote,
                Body::PreVoteReply { .. } => Step::ReceivePreVoteReply,
                Body::TimeoutNow => Step::CheckQuorumTransfer,
            },
            Action::Crash(_) => Step::Crash,
            Action::Drop(_) => Step::Drop,
            Action::Duplicate(_) => Step::Duplicate,
            Action::ReadIndex(_) => Step::ReadIndex,
            Action::ChangeConfig(..) => Step::ChangeConfig,
            Action::LeaseExpires(_) | Action::CheckQuorum(_) | Action::TransferLeader { .. } => {
                Step::CheckQuorumTransfer
            }
        }
    }

    /// Why the implementation does not take this step where the spec may. (The report counts, for each
    /// group, which of its states are halfway through a step the implementation takes whole and which
    /// leave from states where the implementation had spent the budget the step needs: the evidence.)
    pub fn reason(self) -> &'static str {
        match self {
            Step::Start => "unexpected: the two sides do not start in the same state",
            Step::Timeout => "unexpected: the explorer fires every election timer the spec may",
            Step::ClientRequest => {
                "a leader handed a command sends it to every follower in the same step; the spec may \
                 append and stop there"
            }
            Step::AppendEntries => {
                "a leader sends AppendEntries only when its heartbeat fires (to every follower at once, \
                 with room for all) or in the step that handles a reply or wins an election; the spec \
                 may send one to one follower at any time"
            }
            Step::AdvanceCommitIndex => {
                "a leader commits in the step that handles the reply making a quorum; the spec may \
                 commit later, or to a lower index"
            }
            Step::Compact => {
                "the service snapshots once per node, at what it applied; the spec compacts what it \
                 committed at any time"
            }
            Step::InstallSnapshot => {
                "a leader sends its snapshot only with its heartbeat or in answer to a reply; the spec \
                 may send it at any time"
            }
            Step::SetNextIndex => {
                "a leader moves next_index only in the step that sends or handles a reply; the spec may \
                 move it and stop there"
            }
            Step::ReceiveRequestVote
            | Step::ReceiveRequestVoteReply
            | Step::ReceiveAppendEntries
            | Step::ReceiveAppendEntriesReply
            | Step::ReceiveInstallSnapshot
            | Step::ReceiveInstallSnapshotReply
            | Step::ReceivePreVote
            | Step::ReceivePreVoteReply => {
                "the implementation does what follows in the same step (a candidate that wins sends its \
                 first AppendEntries, a leader commits and sends the next batch as soon as a reply \
                 allows); the spec may stop in between"
            }
            Step::ReadIndex => {
                "a leader that begins a read sends its round of AppendEntries in the same step; the spec \
                 may begin it and stop there"
            }
            Step::ChangeConfig => {
                "unexpected: the implementation's membership is fixed, and the explorer's spec \
                 bounds offer no change"
            }
            Step::CheckQuorumTransfer => {
                "the implementation checks its quorum only when its timer fires, ends a lease only with \
                 its election timeout, and hands over only when a host asks; the spec may do each at \
                 any moment"
            }
            Step::Crash | Step::Drop | Step::Duplicate => {
                "the implementation reached the state it leaves from only with this budget spent (it \
                 also spends losses, duplicates and room on dead messages, which the spec discards)"
            }
        }
    }
}

/// Spec states never reached by the implementation, grouped by the step that leaves its reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// The step out of the implementation's reach.
    pub step: Step,
    /// States one such step away from a state the implementation reached.
    pub frontier: usize,
    /// Of those, the states from which the leaders' own steps alone (sending AppendEntries or a snapshot,
    /// committing, moving next_index) lead back into the implementation's reach: the implementation takes
    /// this step and those together, where the spec may stop in between.
    pub halfway: usize,
    /// Of the others, the states one step out of a state that the implementation reached only with the budget
    /// (crashes, losses, duplicates) or the room in flight that the step needs already spent (the
    /// implementation's network also carries dead messages, which the spec discards).
    pub spent: usize,
    /// One frontier step that is neither, with the state it leaves from.
    pub other: Option<(State, String)>,
    /// Those and every unreached state first found beyond them.
    pub total: usize,
    /// One frontier step, as the model's path list words it.
    pub example: String,
}

/// A spec state the implementation reached and the spec cannot.
#[derive(Clone, Debug)]
pub struct Outside {
    /// The projected state.
    pub state: State,
    /// A state inside the spec's set and the step of the implementation that led from it to this one (when
    /// the state is one step out; further states are reached only through other outside states).
    pub from: Option<(State, ImplAction)>,
}

/// The comparison of the two sets.
#[derive(Clone, Debug)]
pub struct Report {
    /// The spec's side.
    pub spec: Spec,
    /// The most messages the implementation had in flight at once.
    pub most_in_flight: usize,
    /// States of the implementation's exploration (as implcheck counts them).
    pub impl_states: usize,
    /// Implementation states where the step checker failed (their spec state is left out).
    pub violations: usize,
    /// Distinct spec states the implementation reached.
    pub reached: usize,
    /// Spec states the spec can reach (distinct projections).
    pub reachable: usize,
    /// States of the spec's search (the projection merges those that differ only in budgets spent).
    pub spec_states: usize,
    /// Spec states both reach.
    pub common: usize,
    /// Spec states the implementation reached and the spec cannot (refinement says: none).
    pub outside: Vec<Outside>,
    /// The spec states never reached, by class, largest first.
    pub unreached: Vec<Class>,
}

/// A state's parent (its projection) and the step from there.
type Edge = (Rc<State>, ImplAction);

/// The most budget left in the implementation's states that stand for one spec state.
#[derive(Clone, Copy, Debug, Default)]
struct Left {
    crashes: u8,
    drops: u8,
    dups: u8,
    /// Room in the network, as the exploration counts it (dead messages included).
    room: usize,
}

/// The exhaustive exploration of the implementation, keeping fingerprints only.
struct Reach {
    model: ImplModel,
    names: Renamings,
    /// Implementation states visited.
    seen: FxHashSet<u64>,
    /// The spec states they stand for, each with the most budget any of them had left.
    reached: FxHashMap<u64, Left>,
    /// The fingerprint of every renaming of each of those, with its class (its key in `reached`): the
    /// spec's side then names a state's class with one fingerprint, in whatever naming it has.
    aliases: FxHashMap<u64, u64>,
    /// States where the step checker failed.
    violations: usize,
    /// The most messages in flight in a state.
    most_in_flight: usize,
}

impl Reach {
    fn new(bounds: implcheck::Bounds) -> Reach {
        Reach {
            model: ImplModel::new(bounds),
            names: Renamings::new(bounds.servers),
            seen: FxHashSet::default(),
            reached: FxHashMap::default(),
            aliases: FxHashMap::default(),
            violations: 0,
            most_in_flight: 0,
        }
    }

    /// Depth-first on one thread; `visit` sees the projected spec state of every state without a
    /// violation.
    fn explore(&mut self, mut visit: impl FnMut(Option<&Rc<State>>, Option<&ImplAction>, &State)) {
        let mut stack: Vec<(ImplState, Option<Edge>)> = self
            .model
            .init_states()
            .into_iter()
            .map(|s| (s, None))
            .collect();
        for (s, _) in &stack {
            self.seen.insert(fingerprint(s));
        }
        let mut actions = Vec::new();
        while let Some((s, from)) = stack.pop() {
            if s.violation().is_some() {
                self.violations += 1;
                continue;
            }
            let full = s.spec();
            let b = &self.model.bounds;
            let left = Left {
                crashes: b.max_crashes.saturating_sub(full.crashes),
                drops: b.max_drops.saturating_sub(full.drops),
                dups: b.max_dups.saturating_sub(full.dups),
                room: (b.max_inflight as usize).saturating_sub(s.in_flight()),
            };
            let spec = Rc::new(project(full));
            self.most_in_flight = self.most_in_flight.max(spec.network.len());
            visit(
                from.as_ref().map(|(p, _)| p),
                from.as_ref().map(|(_, a)| a),
                &spec,
            );
            // A projection whose naming was recorded before has its class already.
            let class = match self.aliases.get(&fingerprint(&*spec)) {
                Some(&class) => class,
                None => {
                    let names: Vec<u64> = self.names.all(&spec).collect();
                    let class = *names.iter().min().expect("at least one renaming");
                    for name in names {
                        self.aliases.insert(name, class);
                    }
                    class
                }
            };
            let most = self.reached.entry(class).or_default();
            most.crashes = most.crashes.max(left.crashes);
            most.drops = most.drops.max(left.drops);
            most.dups = most.dups.max(left.dups);
            most.room = most.room.max(left.room);
            actions.clear();
            self.model.actions(&s, &mut actions);
            for a in actions.drain(..) {
                if let Some(next) = self.model.next_state(&s, a.clone()) {
                    if self.seen.insert(fingerprint(&next)) {
                        stack.push((next, Some((spec.clone(), a))));
                    }
                }
            }
        }
    }
}

/// Where a spec state stands relative to the implementation's reach.
#[derive(Clone, Copy)]
enum Mark {
    Reached,
    /// Unreached, first found beyond a step of this group out of the reach.
    Beyond(Step),
}

/// The spec's actions in `state` on the spec's side of a comparison: every action the guards allow within
/// the budgets, under the room rule of the exploration of the implementation.
pub fn spec_actions(model: &RaftModel, spec: &Spec, state: &State, actions: &mut Vec<Action>) {
    actions.clear();
    let n = spec.bounds.servers as usize;
    match spec.actions {
        Actions::All => model.all_actions(state, actions),
        Actions::Canonical => {
            model.bounded_actions(state, actions);
            for (i, s) in state.servers.iter().enumerate() {
                if s.role != model::state::Role::Leader {
                    continue;
                }
                let leader = i as model::state::ServerId;
                for peer in (0..n as model::state::ServerId).filter(|&p| p != leader) {
                    let p = peer as usize;
                    for index in s.match_index[p] + 1..=s.last_index() + 1 {
                        if index != s.next_index[p] {
                            actions.push(Action::SetNextIndex {
                                leader,
                                peer,
                                index,
                            });
                        }
                    }
                }
            }
        }
    }
    let room = (spec.room as usize).saturating_sub(state.network.len());
    actions.retain(|a| match a {
        Action::Timeout(_) | Action::ClientRequest(..) => room >= n - 1,
        Action::Duplicate(_) => room >= 1,
        _ => true,
    });
}

/// The search over the spec's side. It tells states apart on the whole state (under symmetry, without the
/// witness flags): two states that differ only in the budgets spent can go different ways. The comparison
/// is on the projection.
struct SpecSearch<'a> {
    model: &'a RaftModel,
    spec: Spec,
    reached: &'a FxHashMap<u64, Left>,
    aliases: &'a FxHashMap<u64, u64>,
    names: Renamings,
    /// Fingerprints, in the naming they were found in, of the projections of the unreached states seen.
    unreached: FxHashSet<u64>,
    seen: FxHashSet<u64>,
    /// The projections of the states seen.
    projected: FxHashSet<u64>,
    classes: FxHashMap<Step, Class>,
}

impl SpecSearch<'_> {
    /// Takes in a state found from `parent` (a state and its mark) by `action`; returns it with its mark
    /// the first time it is seen.
    fn found(
        &mut self,
        mut s: State,
        parent: Option<(&State, Mark, &Action)>,
    ) -> Option<(State, Mark)> {
        s.flags = 0;
        s.canonicalize();
        if !self.seen.insert(fingerprint(&s)) {
            return None;
        }
        let projection = project(s.clone());
        let named = fingerprint(&projection);
        let class = self.aliases.get(&named).copied();
        let mark = if class.is_some() {
            Mark::Reached
        } else {
            match parent {
                Some((_, Mark::Reached, a)) => Mark::Beyond(Step::of(a)),
                Some((_, Mark::Beyond(step), _)) => Mark::Beyond(step),
                None => Mark::Beyond(Step::Start),
            }
        };
        // The class's one name: the reached one's, else the least over the renamings, computed only for a
        // projection not seen in this naming before (one seen before has its class counted already).
        let p = match class {
            Some(p) => Some(p),
            None if self.unreached.insert(named) => Some(self.names.fingerprint(&projection)),
            None => None,
        };
        let first = p.is_some_and(|p| self.projected.insert(p));
        if let (true, Mark::Beyond(step)) = (first, mark) {
            let one_out = !matches!(parent, Some((_, Mark::Beyond(_), _)));
            let halfway = one_out && self.leaders_lead_back(&s);
            let spent = match parent {
                Some((from, Mark::Reached, a)) if !halfway => self.spent(from, a),
                _ => false,
            };
            let c = self.classes.entry(step).or_insert_with(|| Class {
                step,
                frontier: 0,
                halfway: 0,
                spent: 0,
                total: 0,
                example: String::new(),
                other: None,
            });
            c.total += 1;
            if one_out {
                c.frontier += 1;
                c.halfway += halfway as usize;
                c.spent += spent as usize;
                let words = parent.map_or("the initial state".into(), |(_, _, a)| {
                    model::display::action(a)
                });
                if c.example.is_empty() {
                    c.example = words.clone();
                }
                if let (false, false, None, Some((from, _, _))) = (halfway, spent, &c.other, parent)
                {
                    c.other = Some((from.clone(), words));
                }
            }
        }
        Some((s, mark))
    }

    /// Whether no implementation state standing for `from` had the budget or the room that `a` needs.
    fn spent(&self, from: &State, a: &Action) -> bool {
        let Some(left) = self
            .aliases
            .get(&fingerprint(&project(from.clone())))
            .and_then(|class| self.reached.get(class))
        else {
            return false;
        };
        let n = self.spec.bounds.servers as usize;
        match a {
            Action::Crash(_) => left.crashes == 0,
            Action::Drop(_) => left.drops == 0,
            Action::Duplicate(_) => left.dups == 0 || left.room == 0,
            Action::Timeout(_) | Action::ClientRequest(..) => left.room < n - 1,
            _ => false,
        }
    }

    /// Whether the leaders' own steps alone lead from `s` to a state the implementation reached (searched
    /// as deep as one round of them: a send to every peer, a commit, a next_index per peer).
    fn leaders_lead_back(&self, s: &State) -> bool {
        let own = |a: &Action| {
            matches!(
                a,
                Action::AppendEntries { .. }
                    | Action::InstallSnapshot { .. }
                    | Action::AdvanceCommitIndex(..)
                    | Action::SetNextIndex { .. }
            )
        };
        let depth = 2 * self.spec.bounds.servers as usize - 1;
        let mut seen: FxHashSet<u64> = FxHashSet::default();
        let mut level = vec![s.clone()];
        let mut actions = Vec::new();
        for _ in 0..depth {
            let mut next_level = Vec::new();
            for x in &level {
                spec_actions(self.model, &self.spec, x, &mut actions);
                for a in actions.iter().filter(|a| own(a)) {
                    let Some(mut y) = self.model.step(x, a) else {
                        continue;
                    };
                    y.flags = 0;
                    y.canonicalize();
                    if !seen.insert(fingerprint(&y)) {
                        continue;
                    }
                    if self.aliases.contains_key(&fingerprint(&project(y.clone()))) {
                        return true;
                    }
                    next_level.push(y);
                }
            }
            level = next_level;
        }
        false
    }
}

/// Explores the spec as `spec` says, depth-first, and compares it with `reached` (fingerprints of projected
/// states). Each unreached state is classed by the first step out of the implementation's reach on the
/// path on which the search first found it. Returns the report and the reached states outside the spec.
fn compare(
    spec: Spec,
    reached: &FxHashMap<u64, Left>,
    aliases: &FxHashMap<u64, u64>,
) -> (Report, FxHashSet<u64>) {
    let model = RaftModel::new(spec.bounds);
    let mut search = SpecSearch {
        model: &model,
        spec,
        reached,
        aliases,
        names: Renamings::new(spec.bounds.servers),
        unreached: FxHashSet::default(),
        seen: FxHashSet::default(),
        projected: FxHashSet::default(),
        classes: FxHashMap::default(),
    };
    let mut stack: Vec<(State, Mark)> =
        search.found(model.init_state(), None).into_iter().collect();
    let mut actions = Vec::new();
    while let Some((s, mark)) = stack.pop() {
        spec_actions(&model, &spec, &s, &mut actions);
        for a in &actions {
            if let Some(next) = model.step(&s, a) {
                stack.extend(search.found(next, Some((&s, mark, a))));
            }
        }
    }
    let outside: FxHashSet<u64> = reached
        .keys()
        .copied()
        .filter(|fp| !search.projected.contains(fp))
        .collect();
    let mut unreached: Vec<Class> = search.classes.into_values().collect();
    unreached.sort_by(|a, b| b.total.cmp(&a.total).then(a.step.cmp(&b.step)));
    let report = Report {
        spec,
        most_in_flight: 0,
        impl_states: 0,
        violations: 0,
        reached: reached.len(),
        reachable: search.projected.len(),
        spec_states: search.seen.len(),
        common: reached.len() - outside.len(),
        outside: Vec::new(),
        unreached,
    };
    (report, outside)
}

/// Compares the implementation explored within `bounds` with the spec explored with `actions`, as
/// [`spec_for`] the same bounds and the most messages the implementation had in flight says (or as `spec`
/// says, when given).
pub fn measure(bounds: implcheck::Bounds, actions: Actions, spec: Option<Spec>) -> Report {
    let mut reach = Reach::new(bounds);
    reach.explore(|_, _, _| ());
    let cap = reach.most_in_flight.try_into().unwrap_or(u8::MAX);
    let spec = spec.unwrap_or_else(|| spec_for(&bounds, cap, actions));
    let (mut report, outside) = compare(spec, &reach.reached, &reach.aliases);
    report.spec = spec;
    report.most_in_flight = reach.most_in_flight;
    report.impl_states = reach.seen.len();
    report.violations = reach.violations;
    if !outside.is_empty() {
        // A second pass picks the offending states up (the first keeps fingerprints only).
        let mut again = Reach::new(bounds);
        let names = Renamings::new(bounds.servers);
        let mut found = FxHashMap::default();
        again.explore(|parent, action, s| {
            let fp = names.fingerprint(s);
            if !outside.contains(&fp) {
                return;
            }
            // The step out of the spec: from a state inside it (the first one found).
            let entry = found.entry(fp).or_insert_with(|| Outside {
                state: s.clone(),
                from: None,
            });
            if entry.from.is_none() {
                if let (Some(p), Some(a)) = (parent, action) {
                    if !outside.contains(&names.fingerprint(p)) {
                        entry.from = Some(((**p).clone(), a.clone()));
                    }
                }
            }
        });
        let mut states: Vec<(u64, Outside)> = found.into_iter().collect();
        states.sort_by_key(|(fp, _)| *fp);
        report.outside = states.into_iter().map(|(_, s)| s).collect();
    }
    report
}
