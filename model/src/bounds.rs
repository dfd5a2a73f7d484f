//! The bounds that make the state space finite, the presets, and the bug switches.

use std::fmt;
use std::str::FromStr;

/// Limits on the behaviours the checker enumerates. They bound `actions()`, never the guards: a
/// guard states what Raft allows, whatever the bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Number of servers, 2 to 7.
    pub servers: u8,
    /// No server times out once its term has reached this.
    pub max_term: u32,
    /// No leader accepts a client request once its log has this many entries.
    pub max_log: u32,
    /// Crash-and-restarts, in total.
    pub max_crashes: u8,
    /// Messages in flight at once, copies included.
    pub max_inflight: u8,
    /// Messages lost, in total.
    pub max_drops: u8,
    /// Messages duplicated, in total.
    pub max_dups: u8,
    /// Distinct client values (1 to this).
    pub values: u32,
    /// Whether servers compact their logs into snapshots (and leaders send InstallSnapshot).
    pub snapshots: bool,
}

/// The sometimes-properties, by name. Each one shows that the bounds reach an interesting
/// behaviour, so that "all properties hold" is not vacuous.
pub mod witness {
    pub const LEADER_ELECTED: &str = "a leader is elected";
    pub const ENTRY_COMMITTED: &str = "an entry commits";
    pub const COMMITTED_EVERYWHERE: &str = "an entry commits on every server";
    pub const SUFFIX_TRUNCATED: &str = "a log suffix is truncated";
    pub const LEADER_AFTER_RESTART: &str = "a leader is elected after a restart";
    pub const FIGURE_8: &str = "an older-term entry commits through a newer one";
    pub const DUPLICATE_DELIVERED: &str = "a duplicated message is delivered";
    pub const SNAPSHOT_INSTALLED: &str = "a follower installs a snapshot";
    pub const RESTART_FROM_SNAPSHOT: &str = "a server restarts from a snapshot";

    /// All of them, in the order `check` prints them.
    pub const ALL: [&str; 9] = [
        LEADER_ELECTED,
        ENTRY_COMMITTED,
        COMMITTED_EVERYWHERE,
        SUFFIX_TRUNCATED,
        LEADER_AFTER_RESTART,
        FIGURE_8,
        DUPLICATE_DELIVERED,
        SNAPSHOT_INSTALLED,
        RESTART_FROM_SNAPSHOT,
    ];
}

/// A named set of bounds and the sometimes-properties that are expected to be witnessed at them.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub bounds: Bounds,
    pub expect: &'static [&'static str],
}

const ALL_BUT_FIGURE_8: &[&str] = &[
    witness::LEADER_ELECTED,
    witness::ENTRY_COMMITTED,
    witness::COMMITTED_EVERYWHERE,
    witness::SUFFIX_TRUNCATED,
    witness::LEADER_AFTER_RESTART,
    witness::DUPLICATE_DELIVERED,
];

/// The presets `check --preset` knows.
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "small",
        bounds: Bounds {
            servers: 3,
            max_term: 2,
            max_log: 1,
            max_crashes: 1,
            max_inflight: 2,
            max_drops: 1,
            max_dups: 1,
            values: 1,
            snapshots: false,
        },
        expect: ALL_BUT_FIGURE_8,
    },
    Preset {
        name: "default",
        bounds: Bounds {
            servers: 3,
            max_term: 2,
            max_log: 2,
            max_crashes: 1,
            max_inflight: 2,
            max_drops: 1,
            max_dups: 1,
            values: 1,
            snapshots: false,
        },
        expect: &witness::ALL,
    },
    Preset {
        name: "deep",
        bounds: Bounds {
            servers: 3,
            max_term: 3,
            max_log: 2,
            max_crashes: 1,
            max_inflight: 2,
            max_drops: 0,
            max_dups: 0,
            values: 1,
            snapshots: true,
        },
        expect: &witness::ALL,
    },
];

/// Looks a preset up by name.
pub fn preset(name: &str) -> Option<Preset> {
    PRESETS.iter().copied().find(|p| p.name == name)
}

/// Why a set of bounds was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundsError(pub String);

impl fmt::Display for BoundsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BoundsError {}

impl Bounds {
    /// Checks that the bounds describe a model worth checking.
    pub fn validate(&self) -> Result<(), BoundsError> {
        let err = |s: &str| Err(BoundsError(s.to_string()));
        if !(2..=7).contains(&self.servers) {
            return Err(BoundsError(format!(
                "--servers must be between 2 and 7, got {}",
                self.servers
            )));
        }
        if self.max_term == 0 {
            return err("--max-term must be at least 1: with no term no server can be elected");
        }
        if self.max_log == 0 {
            return err(
                "--max-log must be at least 1: with no entries there is nothing to replicate",
            );
        }
        if self.values == 0 {
            return err("--values must be at least 1: clients need a value to propose");
        }
        if (self.max_inflight as usize) < self.servers as usize - 1 {
            return Err(BoundsError(format!(
                "--max-inflight must be at least servers - 1 = {}, or no election can start",
                self.servers - 1
            )));
        }
        Ok(())
    }

    /// Whether these bounds can reach the behaviour that sometimes-property `name` looks for.
    /// A preset's expectations are kept only where the bounds still allow them.
    pub fn can_reach(&self, name: &str) -> bool {
        match name {
            witness::SUFFIX_TRUNCATED => self.max_term >= 2,
            witness::LEADER_AFTER_RESTART => self.max_crashes >= 1,
            witness::FIGURE_8 => self.max_term >= 2 && self.max_log >= 2,
            witness::DUPLICATE_DELIVERED => self.max_dups >= 1,
            witness::SNAPSHOT_INSTALLED => self.snapshots,
            witness::RESTART_FROM_SNAPSHOT => self.snapshots && self.max_crashes >= 1,
            _ => true,
        }
    }
}

/// A one-line departure from Raft that the checker must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// A leader commits an entry of an earlier term by counting its replicas (breaks Figure 8).
    Figure8Commit,
    /// A restart forgets `voted_for`, so a server can vote twice in one term.
    ForgetVote,
    /// A vote is granted without comparing the candidates' logs.
    NoUpToDateCheck,
    /// A follower accepts AppendEntries from a lower term.
    AcceptStaleTerm,
    /// A follower truncates its log after prev_log_index even when the entries match, so a
    /// reordered, shorter AppendEntries deletes entries it had acknowledged.
    TruncateOnMatch,
    /// A server accepts a snapshot older than its commit index and rolls back to it.
    SnapshotRegress,
}

impl Bug {
    /// Every bug switch.
    pub const ALL: [Bug; 6] = [
        Bug::Figure8Commit,
        Bug::ForgetVote,
        Bug::NoUpToDateCheck,
        Bug::AcceptStaleTerm,
        Bug::TruncateOnMatch,
        Bug::SnapshotRegress,
    ];

    /// The name `--bug` takes.
    pub fn name(self) -> &'static str {
        match self {
            Bug::Figure8Commit => "figure8-commit",
            Bug::ForgetVote => "forget-vote",
            Bug::NoUpToDateCheck => "no-up-to-date-check",
            Bug::AcceptStaleTerm => "accept-stale-term",
            Bug::TruncateOnMatch => "truncate-on-match",
            Bug::SnapshotRegress => "snapshot-regress",
        }
    }

    /// One line on what the switch changes.
    pub fn describe(self) -> &'static str {
        match self {
            Bug::Figure8Commit => "a leader commits a previous-term entry by counting replicas",
            Bug::ForgetVote => "a restart forgets voted_for",
            Bug::NoUpToDateCheck => "a vote is granted without the log comparison",
            Bug::AcceptStaleTerm => "a follower accepts AppendEntries from a lower term",
            Bug::TruncateOnMatch => "a follower truncates its log even when the entries match",
            Bug::SnapshotRegress => {
                "a server accepts a snapshot older than its commit index and rolls back"
            }
        }
    }

    /// The bounds at which `check --bug` finds this bug: the default preset's, or larger ones
    /// where the counterexample needs them.
    pub fn bounds(self) -> Bounds {
        let default = PRESETS[1].bounds;
        match self {
            // With 3 servers the shape needs four terms: S0 leads term 1 with an entry only it
            // has, S2 leads term 2 with another, S0 leads term 3 and commits its term-1 entry by
            // counting, and S2, whose last term is newer, wins term 4 without it.
            Bug::Figure8Commit => Bounds {
                max_term: 4,
                max_log: 1,
                max_crashes: 0,
                max_drops: 0,
                max_dups: 0,
                ..default
            },
            Bug::SnapshotRegress => Bounds {
                snapshots: true,
                ..default
            },
            _ => default,
        }
    }
}

impl FromStr for Bug {
    type Err = BoundsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
            BoundsError(format!(
                "unknown bug '{s}'; the bugs are: {}",
                names.join(", ")
            ))
        })
    }
}
