//! What [`super::check`] found, and how long it took.

use std::fmt;
use std::time::Duration;

use super::Operation;

/// The verdict on one history.
#[derive(Clone, Debug)]
pub struct Report {
    /// How many operations the history has.
    pub ops: usize,
    /// How many keys they touch.
    pub keys: usize,
    /// How many keys have histories that cannot be ordered (0 iff linearizable).
    pub failing_keys: usize,
    /// The time taken to decide (every key searched; the minimization is not included).
    pub elapsed: Duration,
    /// Why the history is not linearizable, on the first failing key in key order; `None` iff it is.
    pub violation: Option<Violation>,
}

/// The operations on one key that cannot be ordered.
///
/// `minimal` is 1-minimal: these operations, as recorded (called, returned and answered as they were),
/// cannot be ordered even when every other operation on the key is free to take effect once between its
/// call and its return, or not at all, whatever it returned; and freeing any one of them lets them be
/// ordered. They cannot be ordered on their own either. (Freeing rather than deleting is what keeps the
/// write that a stale read saw from being blamed: see `minimize.rs`.)
#[derive(Clone, Debug)]
pub struct Violation {
    /// The key.
    pub key: String,
    /// How many operations the key has in the history.
    pub key_ops: usize,
    /// The set, as (index in the history, operation), in call order.
    pub minimal: Vec<(usize, Operation)>,
    /// Whether the set is known to be 1-minimal. The minimization has a budget (search states worth 256 MiB,
    /// enough for keys with a dozen operations in flight at once); when it runs out, the operations not yet
    /// tried stay in the set, which still cannot be ordered, and this is false.
    pub one_minimal: bool,
    /// The time the minimization took.
    pub minimize_elapsed: Duration,
}

impl Report {
    /// Whether the history is linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.violation.is_none()
    }

    /// The history indices of the minimal set of operations that cannot be ordered (empty if linearizable).
    pub fn minimal_indices(&self) -> Vec<usize> {
        self.violation
            .iter()
            .flat_map(|v| v.minimal.iter().map(|(index, _)| *index))
            .collect()
    }
}

/// `linearizable: 120 operations on 3 keys, decided in 0.000412 s`, or the failing key, its minimal set one
/// operation a line, and the totals.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let totals = format!(
            "{} operations on {} keys, decided in {:.6} s",
            self.ops,
            self.keys,
            self.elapsed.as_secs_f64()
        );
        match &self.violation {
            None => write!(f, "linearizable: {totals}"),
            Some(violation) => {
                write!(f, "not linearizable: key {:?}", violation.key)?;
                if self.failing_keys > 1 {
                    write!(
                        f,
                        " (the first of {} keys that cannot be ordered)",
                        self.failing_keys
                    )?;
                }
                writeln!(
                    f,
                    ": these {} of its {} operations cannot be ordered:",
                    violation.minimal.len(),
                    violation.key_ops,
                )?;
                for (index, op) in &violation.minimal {
                    writeln!(f, "  #{index} {op}")?;
                }
                if !violation.one_minimal {
                    writeln!(
                        f,
                        "(the minimization ran out of its budget: some of these may not be needed)"
                    )?;
                }
                write!(
                    f,
                    "{totals}, minimized in {:.6} s",
                    violation.minimize_elapsed.as_secs_f64()
                )
            }
        }
    }
}
