//! The deterministic simulator (design §4): a virtual clock, one seeded random number generator,
//! a single-threaded executor for the tester's concurrent activities, and the labrpc network.

mod executor;
pub mod network;

pub use executor::{oneshot, JoinHandle, Micros, OneshotReceiver, OneshotSender, Sim, Sleep, MS};
pub use network::{CallResult, EndId, Handler, Network, ServerName};

/// Why a simulation stopped before its main task finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// Nothing was runnable and no event was scheduled, but the main task had not finished.
    #[error("simulation deadlocked at {at} us: no task runnable and no event scheduled")]
    Deadlock {
        /// Virtual time of the deadlock.
        at: Micros,
    },
    /// Virtual time reached the deadline.
    #[error("simulation reached its deadline at {at} us")]
    Deadline {
        /// The deadline.
        at: Micros,
    },
    /// Events kept running at one virtual instant without time moving.
    #[error("simulation livelocked at {at} us: too many events at one instant")]
    Livelock {
        /// Virtual time of the livelock.
        at: Micros,
    },
}
