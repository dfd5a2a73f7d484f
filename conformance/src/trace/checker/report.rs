//! What the checker says when a trace leaves the model: the first bad event, the differences, and the
//! model's actions that were enabled there.

use model::state::ServerId;
use model::Action;

use super::{Checker, Tracked};
use crate::trace::format::{line_of, MsgId, Record};

/// The first event the model does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The event's position in the trace (0-based, header excluded).
    pub event: usize,
    /// The event's line in the trace file.
    pub line: usize,
    /// The event, as written.
    pub event_text: String,
    /// What went wrong, in one line.
    pub reason: String,
    /// Field-by-field differences between the model and the implementation (`field: model X, implementation
    /// Y`), where the reason is a state or message that differs.
    pub diff: Vec<String>,
    /// The model actions for the event's node that were enabled before the event.
    pub enabled: Vec<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "mismatch at event {} (line {}): {}",
            self.event, self.line, self.reason
        )?;
        writeln!(f, "  event: {}", self.event_text)?;
        if !self.diff.is_empty() {
            writeln!(f, "  differences (model vs implementation):")?;
            for d in &self.diff {
                writeln!(f, "    {d}")?;
            }
        }
        if !self.enabled.is_empty() {
            writeln!(f, "  the model allowed here:")?;
            for a in &self.enabled {
                writeln!(f, "    {a}")?;
            }
        }
        Ok(())
    }
}

pub(super) fn header_mismatch(reason: String) -> Mismatch {
    Mismatch {
        event: 0,
        line: 1,
        event_text: "header".to_string(),
        reason,
        diff: Vec::new(),
        enabled: Vec::new(),
    }
}

/// Why one event failed: a one-line reason and, if a state or message differs, the differences.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub reason: String,
    /// Field-by-field differences between the model and the implementation, if any.
    pub diff: Vec<String>,
}

pub(super) fn fail<T>(reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        reason: reason.into(),
        diff: Vec::new(),
    })
}

impl Checker {
    /// The report for a failure at event `k`, from this checker holding the state before it.
    pub(super) fn report(&self, k: usize, r: &Record, failure: Failure) -> Mismatch {
        let node = r.ev.node();
        Mismatch {
            event: k,
            line: line_of(k),
            event_text: serde_json::to_string(r).unwrap_or_default(),
            reason: failure.reason,
            diff: failure.diff,
            enabled: node
                .filter(|n| (*n as usize) < self.nodes.len())
                .map(|n| self.enabled_actions(n as ServerId))
                .unwrap_or_default(),
        }
    }

    /// The actions of server `i` that the model allows now (with the messages in flight to it).
    fn enabled_actions(&self, i: ServerId) -> Vec<String> {
        let st = &self.state;
        let m = &self.model;
        let s = st.server(i);
        let mut actions = Vec::new();
        if m.can_timeout(st, i) {
            actions.push(Action::Timeout(i));
        }
        if m.can_client_request(st, i) {
            actions.push(Action::ClientRequest(i, 0));
        }
        for index in s.commit_index + 1..=s.last_index() {
            if m.can_advance_commit_index(st, i, index) {
                actions.push(Action::AdvanceCommitIndex(i, index));
            }
        }
        let mut in_flight: Vec<(&MsgId, &Tracked)> = self
            .msgs
            .iter()
            .filter(|(_, t)| t.sent && t.copies > 0 && t.msg.to == i)
            .collect();
        in_flight.sort_by_key(|(id, _)| **id);
        for (_, t) in in_flight {
            actions.push(Action::Receive(t.msg.clone()));
        }
        actions.push(Action::Crash(i));
        actions.iter().map(model::display::action).collect()
    }
}
