//! Cluster membership: who votes, who only learns, and what counts as a quorum (§6 of the Raft paper, §4 of
//! Ongaro's dissertation), as `specs/raft-model.md` ("Membership changes") has it.
//!
//! A configuration names its voters and its learners; a joint configuration (C_old,new) also names the
//! voters of C_old, whose majority is needed as well. Learners receive the log and are never counted. A
//! change moves one step at a time: from a joint configuration only to its C_new; otherwise into a joint
//! configuration whose old voters are the current voters, or to one that adds or removes at most one voter
//! (learners may be added, removed or promoted with it).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::mutants::{on as mutant, Mutant};
use crate::{Index, NodeId};

/// A configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The voters (of C_new, while joint).
    pub voters: BTreeSet<NodeId>,
    /// While joint: the voters of C_old. Empty otherwise.
    pub old_voters: BTreeSet<NodeId>,
    /// Servers that receive the log but neither vote nor count.
    pub learners: BTreeSet<NodeId>,
    /// Where the host reaches members, as it writes them (an address, a URL): the core keeps them with the
    /// configuration, in the log, in snapshots and in what it persists, and never reads them. Only members
    /// have one; a member may have none (the servers a cluster was seeded with, until a change names them).
    pub addresses: BTreeMap<NodeId, String>,
}

/// One step of a membership change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfChange {
    /// A new server joins as a voter.
    AddVoter(NodeId),
    /// A new server joins as a learner.
    AddLearner(NodeId),
    /// A learner becomes a voter.
    Promote(NodeId),
    /// A voter or a learner leaves.
    Remove(NodeId),
    /// Joint consensus: C_old,new, with `voters` as C_new's voters and `learners` as its learners.
    EnterJoint {
        /// C_new's voters.
        voters: BTreeSet<NodeId>,
        /// C_new's learners.
        learners: BTreeSet<NodeId>,
    },
    /// From C_old,new to C_new.
    LeaveJoint,
}

impl ConfChange {
    /// Whether `membership` shows this change made: the server added is a member, the one promoted votes,
    /// the one removed is gone, the joint configuration is entered or left. A client whose answer was lost
    /// asks this of the leader's configuration before it asks again.
    pub fn is_made_in(&self, membership: &Membership) -> bool {
        match self {
            ConfChange::AddVoter(id) | ConfChange::AddLearner(id) => membership.is_member(*id),
            ConfChange::Promote(id) => membership.voters.contains(id),
            ConfChange::Remove(id) => !membership.is_member(*id),
            ConfChange::EnterJoint { voters, .. } => membership.voters == *voters,
            ConfChange::LeaveJoint => !membership.is_joint(),
        }
    }
}

/// Why a configuration or a change is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MembershipError {
    /// No one votes.
    #[error("a configuration needs a voter")]
    NoVoter,
    /// A server both votes and learns.
    #[error("server {0} both votes and learns")]
    VoterAndLearner(NodeId),
    /// The change names a server that is already a member (to add) or is not one (to remove or promote).
    #[error("server {0} is not where the change needs it")]
    NotApplicable(NodeId),
    /// The change is not one step: leaving a joint configuration is the only change from one; entering one
    /// must change the voters; leaving one needs one.
    #[error("not one step from the configuration in force")]
    NotOneStep,
    /// An address for a server that is not a member of the configuration.
    #[error("server {0} is given an address but is not a member")]
    AddressOfStranger(NodeId),
}

impl Membership {
    /// Every server in `voters` votes; no one learns.
    pub fn of_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// Whether this is a joint configuration (C_old,new).
    pub fn is_joint(&self) -> bool {
        !self.old_voters.is_empty()
    }

    /// Whether `id` votes, in C_new or (while joint) in C_old.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.old_voters.contains(&id)
    }

    /// Whether the configuration names `id` at all.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every server the configuration names, in order: the voters of both halves and the learners.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        all.extend(&self.old_voters);
        all.extend(&self.learners);
        all
    }

    /// Checks that someone votes, that no one both votes and learns, and that only members have an address.
    pub fn validate(&self) -> Result<(), MembershipError> {
        if self.voters.is_empty() {
            return Err(MembershipError::NoVoter);
        }
        if let Some(&l) = self.learners.iter().find(|&&l| self.is_voter(l)) {
            return Err(MembershipError::VoterAndLearner(l));
        }
        match self.addresses.keys().find(|&&id| !self.is_member(id)) {
            Some(&id) => Err(MembershipError::AddressOfStranger(id)),
            None => Ok(()),
        }
    }

    /// The configuration `change` makes of this one, with `addresses` recorded over the addresses it keeps
    /// (see [`Membership::apply`]); an address for a server that is no member of it is refused.
    pub fn apply_with_addresses(
        &self,
        change: &ConfChange,
        addresses: &BTreeMap<NodeId, String>,
    ) -> Result<Membership, MembershipError> {
        let mut next = self.apply(change)?;
        next.addresses
            .extend(addresses.iter().map(|(&id, a)| (id, a.clone())));
        next.validate()?;
        Ok(next)
    }

    /// Whether the servers for which `yes` holds make a quorum: a majority of the voters and, while joint,
    /// of the old voters too. Learners never count.
    pub fn is_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        let majority =
            |set: &BTreeSet<NodeId>| set.iter().filter(|&&id| yes(id)).count() > set.len() / 2;
        majority(&self.voters) && (!self.is_joint() || majority(&self.old_voters))
    }

    /// The highest index that a quorum holds, given the index each server holds (`matched`): for each
    /// majority, the index that a majority of its voters has reached, and while joint the lower of the two.
    pub fn committed_index(&self, matched: impl Fn(NodeId) -> Index) -> Index {
        let quorum_index = |set: &BTreeSet<NodeId>| {
            let mut indexes: Vec<Index> = set.iter().map(|&id| matched(id)).collect();
            indexes.sort_unstable_by(|a, b| b.cmp(a));
            indexes.get(set.len() / 2).copied().unwrap_or(0)
        };
        let new = quorum_index(&self.voters);
        if self.is_joint() {
            new.min(quorum_index(&self.old_voters))
        } else {
            new
        }
    }

    /// The configuration `change` makes of this one, if it is one step from it. It keeps the addresses of
    /// the servers that stay members.
    pub fn apply(&self, change: &ConfChange) -> Result<Membership, MembershipError> {
        if self.is_joint() != matches!(change, ConfChange::LeaveJoint) {
            return Err(MembershipError::NotOneStep);
        }
        let mut next = self.clone();
        match change {
            ConfChange::AddVoter(id) | ConfChange::AddLearner(id) if self.is_member(*id) => {
                return Err(MembershipError::NotApplicable(*id))
            }
            ConfChange::AddVoter(id) => {
                next.voters.insert(*id);
            }
            ConfChange::AddLearner(id) => {
                next.learners.insert(*id);
            }
            ConfChange::Promote(id) => {
                if !next.learners.remove(id) {
                    return Err(MembershipError::NotApplicable(*id));
                }
                next.voters.insert(*id);
            }
            ConfChange::Remove(id) => {
                if !next.voters.remove(id) && !next.learners.remove(id) {
                    return Err(MembershipError::NotApplicable(*id));
                }
            }
            ConfChange::EnterJoint { voters, learners } => {
                if *voters == self.voters {
                    return Err(MembershipError::NotOneStep);
                }
                next = Membership {
                    voters: voters.clone(),
                    old_voters: self.voters.clone(),
                    learners: learners.clone(),
                    addresses: self.addresses.clone(),
                };
            }
            ConfChange::LeaveJoint => next.old_voters.clear(),
        }
        // A server that leaves takes its address with it.
        let members = next.members();
        next.addresses.retain(|id, _| members.contains(id));
        next.validate()?;
        Ok(next)
    }
}

/// A configuration as positions in a node's list of servers, so that counting a quorum neither looks ids up
/// nor allocates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Quorum {
    voters: Vec<usize>,
    old_voters: Vec<usize>,
}

impl Quorum {
    /// `membership`, with each server at its position in `servers` (which names every voter).
    pub(crate) fn new(membership: &Membership, servers: &[NodeId]) -> Quorum {
        let positions = |set: &BTreeSet<NodeId>| {
            set.iter()
                .map(|id| {
                    servers
                        .iter()
                        .position(|s| s == id)
                        .expect("every voter has a position")
                })
                .collect()
        };
        Quorum {
            voters: positions(&membership.voters),
            old_voters: positions(&membership.old_voters),
        }
    }

    /// Whether the servers at the positions for which `yes` holds make a quorum (see
    /// [`Membership::is_quorum`]).
    pub(crate) fn holds(&self, yes: impl Fn(usize) -> bool) -> bool {
        let majority = |set: &[usize]| set.iter().filter(|&&p| yes(p)).count() >= needed(set.len());
        majority(&self.voters)
            && (self.old_voters.is_empty()
                || mutant(Mutant::JointNewQuorumOnly)
                || majority(&self.old_voters))
    }

    /// The highest index a quorum holds, given the index each position holds (see
    /// [`Membership::committed_index`]); `scratch` is reused so that this does not allocate.
    pub(crate) fn committed_index(
        &self,
        matched: impl Fn(usize) -> Index,
        scratch: &mut Vec<Index>,
    ) -> Index {
        let mut quorum_index = |set: &[usize]| {
            if set.is_empty() {
                return 0;
            }
            scratch.clear();
            scratch.extend(set.iter().map(|&p| matched(p)));
            scratch.sort_unstable_by(|a, b| b.cmp(a));
            scratch[needed(set.len()) - 1]
        };
        let new = quorum_index(&self.voters);
        if self.old_voters.is_empty() || mutant(Mutant::JointNewQuorumOnly) {
            new
        } else {
            new.min(quorum_index(&self.old_voters))
        }
    }
}

/// How many of `voters` make a majority (with the quorum-of-two mutant, two).
fn needed(voters: usize) -> usize {
    if mutant(Mutant::QuorumOfTwo) {
        2.min(voters).max(1)
    } else {
        voters / 2 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_majority_of_the_voters_is_a_quorum_and_learners_never_count() {
        let m = Membership {
            voters: set(&[1, 2, 3]),
            learners: set(&[4, 5]),
            ..Membership::default()
        };
        assert!(m.is_quorum(|id| [1, 2].contains(&id)));
        assert!(!m.is_quorum(|id| [1, 4, 5].contains(&id)));
        assert_eq!(m.committed_index(|id| [0, 7, 5, 3, 9, 9][id as usize]), 5);
    }

    #[test]
    fn while_joint_both_majorities_are_needed() {
        let m = Membership {
            voters: set(&[3, 4, 5]),
            old_voters: set(&[1, 2, 3]),
            ..Membership::default()
        };
        assert!(!m.is_quorum(|id| [3, 4, 5].contains(&id)), "C_new alone");
        assert!(!m.is_quorum(|id| [1, 2, 3].contains(&id)), "C_old alone");
        assert!(m.is_quorum(|id| [2, 3, 4].contains(&id)));
        // C_new holds up to 8 on a majority, C_old up to 2.
        let matched = |id: NodeId| [0, 1, 2, 8, 8, 9][id as usize];
        assert_eq!(m.committed_index(matched), 2);
    }

    #[test]
    fn changes_go_one_step_at_a_time() {
        let m = Membership::of_voters([1, 2, 3]);
        let with_learner = m.apply(&ConfChange::AddLearner(4)).unwrap();
        assert_eq!(with_learner.learners, set(&[4]));
        let promoted = with_learner.apply(&ConfChange::Promote(4)).unwrap();
        assert_eq!(promoted.voters, set(&[1, 2, 3, 4]));
        assert_eq!(
            promoted.apply(&ConfChange::Remove(1)).unwrap().voters,
            set(&[2, 3, 4])
        );
        assert_eq!(
            m.apply(&ConfChange::AddVoter(2)),
            Err(MembershipError::NotApplicable(2))
        );
        assert_eq!(
            m.apply(&ConfChange::Promote(9)),
            Err(MembershipError::NotApplicable(9))
        );
        assert_eq!(
            Membership::of_voters([1]).apply(&ConfChange::Remove(1)),
            Err(MembershipError::NoVoter)
        );
        // Joint consensus: in, then only out.
        let joint = m
            .apply(&ConfChange::EnterJoint {
                voters: set(&[2, 3, 4]),
                learners: BTreeSet::new(),
            })
            .unwrap();
        assert!(joint.is_joint() && joint.is_voter(1) && joint.is_voter(4));
        assert_eq!(
            joint.apply(&ConfChange::AddLearner(5)),
            Err(MembershipError::NotOneStep)
        );
        let new = joint.apply(&ConfChange::LeaveJoint).unwrap();
        assert_eq!(new, Membership::of_voters([2, 3, 4]));
        // Each change is made in what it makes, and not in what it starts from.
        for change in [ConfChange::AddLearner(7), ConfChange::Remove(1)] {
            assert!(change.is_made_in(&m.apply(&change).unwrap()));
            assert!(!change.is_made_in(&m));
        }
        assert!(
            ConfChange::LeaveJoint.is_made_in(&new) && !ConfChange::LeaveJoint.is_made_in(&joint)
        );
        assert_eq!(
            m.apply(&ConfChange::LeaveJoint),
            Err(MembershipError::NotOneStep)
        );
    }

    #[test]
    fn members_keep_their_addresses_and_strangers_get_none() {
        let at = |pairs: &[(NodeId, &str)]| -> BTreeMap<NodeId, String> {
            pairs.iter().map(|&(id, a)| (id, a.to_string())).collect()
        };
        let m = Membership::of_voters([1, 2, 3]);
        let added = m
            .apply_with_addresses(&ConfChange::AddLearner(4), &at(&[(1, "a:1"), (4, "d:4")]))
            .unwrap();
        assert_eq!(added.addresses, at(&[(1, "a:1"), (4, "d:4")]));
        // A later change keeps them; one given again replaces the old.
        let promoted = added
            .apply_with_addresses(&ConfChange::Promote(4), &at(&[(4, "e:5")]))
            .unwrap();
        assert_eq!(promoted.addresses, at(&[(1, "a:1"), (4, "e:5")]));
        // A server that leaves takes its address with it, through a joint configuration too.
        let removed = promoted.apply(&ConfChange::Remove(1)).unwrap();
        assert_eq!(removed.addresses, at(&[(4, "e:5")]));
        let joint = promoted
            .apply(&ConfChange::EnterJoint {
                voters: set(&[2, 3, 4]),
                learners: BTreeSet::new(),
            })
            .unwrap();
        assert_eq!(joint.addresses, at(&[(1, "a:1"), (4, "e:5")]));
        let left = joint.apply(&ConfChange::LeaveJoint).unwrap();
        assert_eq!(left.addresses, at(&[(4, "e:5")]));
        // Only members have one.
        assert_eq!(
            m.apply_with_addresses(&ConfChange::AddLearner(4), &at(&[(5, "x:1")])),
            Err(MembershipError::AddressOfStranger(5))
        );
    }
}
