//! The model's safety properties, re-checked after each step only where the step changed something.

use model::properties::{self, SAFETY};
use model::state::{Entry, Index, Role as MRole, ServerId};

use super::report::{fail, Failure};
use super::Checker;

/// What a node step changed (see `Checker::check_properties`).
#[derive(Clone, Default)]
pub(super) struct Changed {
    pub(super) server: ServerId,
    /// The first index (1-based) at which the server's log may have changed.
    pub(super) log_from: Option<Index>,
    /// Its commit index before the step.
    pub(super) commit_before: Index,
    /// Its commit index changed.
    pub(super) commit: bool,
    /// It became leader.
    pub(super) new_leader: bool,
    /// The number of elections and of committed indexes before the step.
    pub(super) elections_before: usize,
    pub(super) committed_before: usize,
    /// The number of reads served before the step.
    pub(super) served_before: usize,
}

impl Checker {
    /// Checks every safety property of the model after a step that changed what `self.changed` says.
    ///
    /// Only that server changed, so the properties that compare servers pairwise (Log Matching) or look at
    /// each server alone (State Machine Safety) are checked for it, from where its log or commit index
    /// changed; Leader Completeness and Election Safety only for what the step added. The verdict is the
    /// model's own (`model::properties::SAFETY`) on the new state: what is left out is unchanged since it was
    /// last checked. `conformance_incremental_property_checks_agree` (in `tests/conformance_bites.rs`)
    /// compares the two.
    pub(super) fn check_properties(&self) -> Result<(), Failure> {
        let c = &self.changed;
        let st = &self.state;
        let s = st.server(c.server);
        for (name, holds) in SAFETY {
            let ok = match name {
                properties::LOG_MATCHING => c.log_from.is_none_or(|k| {
                    st.servers
                        .iter()
                        .all(|other| logs_match_from(&s.log, &other.log, k as usize))
                }),
                properties::STATE_MACHINE_SAFETY => {
                    !st.has(model::state::flags::COMMITTED_TWICE) && {
                        // The server's committed prefix, from where its log or its commit index changed.
                        let end = s.commit_index.min(s.last_index()) as usize;
                        let from = c.log_from.map_or(c.commit_before, |k| {
                            k.saturating_sub(1).min(c.commit_before)
                        }) as usize;
                        !(c.log_from.is_some() || c.commit)
                            || from >= end
                            || s.log[from..end]
                                .iter()
                                .zip(st.committed.get(from..).unwrap_or(&[]))
                                .all(|(e, (committed, _))| e == committed)
                    }
                }
                // A new leader is checked against the whole history; otherwise only new commits against the
                // leaders (a leader's log only grows, as Leader Append-Only checks).
                properties::LEADER_COMPLETENESS => {
                    if c.new_leader || st.elections.len() != c.elections_before {
                        holds(&self.model, st)
                    } else {
                        st.servers
                            .iter()
                            .filter(|l| l.role == MRole::Leader)
                            .all(|l| {
                                st.committed
                                    .iter()
                                    .enumerate()
                                    .skip(c.committed_before)
                                    .all(|(k, (entry, term))| {
                                        *term >= l.current_term || l.log.get(k) == Some(entry)
                                    })
                            })
                    }
                }
                // The history of reads served only grows: the new ones are checked.
                properties::READ_LINEARIZABLE => st
                    .served
                    .iter()
                    .skip(c.served_before)
                    .all(|(index, required)| index >= required),
                // The history of elections only grows; unchanged, it was checked already.
                properties::ELECTION_SAFETY => {
                    st.elections.len() == c.elections_before || holds(&self.model, st)
                }
                _ => holds(&self.model, st),
            };
            if !ok {
                return fail(violated(name));
            }
        }
        Ok(())
    }

    /// Checks every safety property of the model on the whole state.
    pub fn check_all_properties(&self) -> Result<(), Failure> {
        for (name, holds) in SAFETY {
            if !holds(&self.model, &self.state) {
                return fail(violated(name));
            }
        }
        Ok(())
    }
}

/// Log Matching between a log `a` that may have changed from index `k` (1-based) on and a log `b` that did
/// not, given that they matched before (`model::properties::log_matching` checks whole logs).
///
/// Below `k` nothing changed. At or above it, the highest index where the terms agree must have equal
/// prefixes: below `k` they are equal exactly when the terms at `k - 1` agree (Log Matching held there
/// before), and from `k` on they are compared.
fn logs_match_from(a: &[Entry], b: &[Entry], k: usize) -> bool {
    let common = a.len().min(b.len());
    let start = k.max(1) - 1;
    let Some(top) = (start..common).rev().find(|&x| a[x].term == b[x].term) else {
        return true;
    };
    (start == 0 || a[start - 1].term == b[start - 1].term) && a[start..=top] == b[start..=top]
}

/// The reason a failure gives when the model's property `name` is violated.
fn violated(name: &str) -> String {
    format!("the model's property {name:?} is violated")
}

impl Failure {
    /// The model property this failure reports violated, if it is one (rather than a step the model does not
    /// allow or a state that does not project).
    pub fn property(&self) -> Option<&'static str> {
        SAFETY
            .iter()
            .map(|(name, _)| *name)
            .find(|name| self.reason == violated(name))
    }
}
