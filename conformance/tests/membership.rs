//! The core's membership arithmetic (`raft::membership`) against the model's (`model::state::Config`): on
//! every configuration of up to five servers, the same quorums; and the same one-step rule for changes.

use std::collections::BTreeSet;

use model::bounds::preset;
use model::raft::RaftModel;
use model::state::Config;
use proptest::prelude::*;
use raft::membership::{ConfChange, Membership};

fn ids(bits: u8) -> BTreeSet<u64> {
    (0..5).filter(|i| bits & (1 << i) != 0).collect()
}

fn membership(c: Config) -> Membership {
    Membership {
        voters: ids(c.voters),
        old_voters: ids(c.old_voters),
        learners: ids(c.learners),
        ..Membership::default()
    }
}

/// A well-formed configuration of up to five servers (someone votes, no one both votes and learns).
fn config() -> impl Strategy<Value = Config> {
    (1u8..32, 0u8..32, 0u8..32, any::<bool>()).prop_filter_map(
        "well-formed",
        |(voters, old, learners, joint)| {
            let old_voters = if joint { old } else { 0 };
            let c = Config {
                voters,
                old_voters,
                learners: learners & !(voters | old_voters),
            };
            (old_voters != voters).then_some(c)
        },
    )
}

proptest! {
    #[test]
    fn the_core_counts_quorums_as_the_model_does(c in config(), set in 0u8..32) {
        let model = RaftModel::new(preset("default").unwrap().bounds);
        let m = membership(c);
        prop_assert_eq!(m.is_quorum(|id| set & (1 << id) != 0), model.quorum_holds(c, set));
    }

    /// The core's committed index is the highest index whose holders make a quorum in the model's sense.
    #[test]
    fn the_committed_index_is_the_highest_a_quorum_holds(c in config(), matched in prop::array::uniform5(0u64..6)) {
        let model = RaftModel::new(preset("default").unwrap().bounds);
        let m = membership(c);
        let committed = m.committed_index(|id| matched[id as usize]);
        let holders = |index: u64| (0..5).filter(|&i| matched[i] >= index).fold(0u8, |s, i| s | 1 << i);
        prop_assert!(committed == 0 || model.quorum_holds(c, holders(committed)));
        prop_assert!(!model.quorum_holds(c, holders(committed + 1)));
    }

    /// A change the core takes is one step in the model's sense, and the model's steps are ones it takes.
    #[test]
    fn the_core_changes_one_step_at_a_time_as_the_model_does(c in config(), new in config()) {
        let old = membership(c);
        let step = if c.is_joint() {
            new.voters == c.voters && !new.is_joint()
        } else if new.is_joint() {
            new.old_voters == c.voters && new.voters != c.voters
        } else {
            (new.voters ^ c.voters).count_ones() <= 1
        };
        let target = membership(new);
        let change = if c.is_joint() {
            (target.learners == old.learners).then_some(ConfChange::LeaveJoint)
        } else if new.is_joint() {
            Some(ConfChange::EnterJoint { voters: target.voters.clone(), learners: target.learners.clone() })
        } else {
            None
        };
        if let Some(change) = change {
            let taken = old.apply(&change);
            prop_assert_eq!(taken.as_ref().ok() == Some(&target), step, "{:?} -> {:?}: {:?}", old, target, taken);
        }
    }
}
