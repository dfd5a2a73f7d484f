//! Pictures of a trace: an SVG sequence diagram and the ShiViz log format.
//!
//! The SVG has one column per server and one row per event, top to bottom. Each message is an arrow from the
//! row where it left its sender (`Send`) to the row where it was received, so delay and reordering show as
//! long and crossing arrows; a lost message ends in a cross at its sender's column, on the row of the loss;
//! crashes and restarts are marked on their server's column; every step is labelled with the state it left
//! (term, role, commit index, last index). Columns are as wide as their longest label, so no label is cut off.
//!
//! ShiViz (<https://bestchai.bitbucket.io/shiviz/>) reads a log of events with vector clocks; paste the output
//! with the parser regular expression `(?<event>.*)\n(?<host>\S*) (?<clock>{.*})`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;

use super::format::{Applied, Body, Event, MsgId, NodeState, Role, Trace};

/// A short description of a step's resulting state.
fn state_label(s: &NodeState) -> String {
    let role = match s.role {
        Role::F => "F",
        Role::C => "C",
        Role::L => "L",
        Role::P => "P",
    };
    format!("t{} {role} c{} last{}", s.term, s.commit, s.last)
}

fn body_label(b: &Body) -> String {
    match b {
        Body::RequestVote { term, .. } => format!("RV t{term}"),
        Body::PreVote { term, .. } => format!("PV t{term}"),
        Body::PreVoteReply { term, granted } => {
            format!("PVR t{term} {}", if *granted { "yes" } else { "no" })
        }
        Body::RequestVoteReply { term, granted } => {
            format!("RVR t{term} {}", if *granted { "yes" } else { "no" })
        }
        Body::AppendEntries {
            term,
            prev_log_index,
            entries,
            leader_commit,
            ..
        } => format!(
            "AE t{term} prev{prev_log_index} n{} c{leader_commit}",
            entries.len()
        ),
        Body::AppendEntriesReply {
            term,
            success,
            match_index,
            conflict_index,
            ..
        } => {
            if *success {
                format!("AER t{term} ok {match_index}")
            } else {
                format!("AER t{term} no {conflict_index}")
            }
        }
        Body::InstallSnapshot {
            term,
            last_included_index,
            ..
        } => format!("IS t{term} {last_included_index}"),
        Body::InstallSnapshotReply { term, match_index } => format!("ISR t{term} {match_index}"),
        Body::TimeoutNow { term } => format!("TN t{term}"),
    }
}

/// What one event says about one server, as a line of text.
fn event_label(ev: &Event) -> String {
    match ev {
        Event::Start { restart, state, .. } => format!(
            "{} {}",
            if *restart { "restart" } else { "start" },
            state_label(state)
        ),
        Event::Timeout { state, .. } => format!("timeout {}", state_label(state)),
        Event::Heartbeat { state, .. } => format!("heartbeat {}", state_label(state)),
        Event::CheckQuorum { state, .. } => format!("check quorum {}", state_label(state)),
        Event::Transfer { target, state, .. } => {
            format!("transfer to {target} {}", state_label(state))
        }
        Event::Propose {
            accepted, state, ..
        } => match accepted {
            Some((i, _)) => format!("propose @{i} {}", state_label(state)),
            None => "propose refused".to_string(),
        },
        Event::ChangeConfig { conf, state, .. } => {
            format!("change config to {conf:?} {}", state_label(state))
        }
        Event::Receive {
            id, refused, state, ..
        } => match refused {
            Some(e) => format!("refuses {id}: {e}"),
            None => format!("recv {id} {}", state_label(state)),
        },
        Event::ReadIndex { index, state, .. } => match index {
            Some(i) => format!("read @{i} {}", state_label(state)),
            None => "read refused".to_string(),
        },
        Event::Read { context, index, .. } => format!("read {context} ready @{index}"),
        Event::Snapshot { index, .. } => format!("snapshot @{index}"),
        Event::Persist {
            term, vote, last, ..
        } => match vote {
            Some(v) => format!("persist t{term} vote{v} last{last}"),
            None => format!("persist t{term} last{last}"),
        },
        Event::Send { id } => format!("send {id}"),
        Event::Decoded { id, .. } => format!("decoded {id}"),
        Event::Apply { index, item, .. } => match item {
            Applied::Command(_) => format!("apply {index}"),
            Applied::Snapshot(_) => format!("apply snapshot {index}"),
            Applied::Config(_) => format!("apply config {index}"),
        },
        Event::Drop { id } => format!("lost {id}"),
        Event::Duplicate { id } => format!("copied {id}"),
        Event::Delay { id, us } => format!("delay {id} {us}us"),
        Event::Crash { .. } => "CRASH".to_string(),
        Event::Disconnect { .. } => "disconnected".to_string(),
        Event::Connect { .. } => "connected".to_string(),
    }
}

/// The messages each event produced, by name, with their label.
fn produced(trace: &Trace) -> HashMap<MsgId, String> {
    let mut out = HashMap::new();
    for r in &trace.records {
        if let Some(node) = r.ev.node() {
            for m in r.ev.sent() {
                let id = MsgId {
                    from: node,
                    seq: m.seq,
                };
                out.insert(id, body_label(&m.m));
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The events shown: `range`, clamped to the trace.
fn clamp(trace: &Trace, range: Range<usize>) -> Range<usize> {
    let end = range.end.min(trace.records.len());
    range.start.min(end)..end
}

/// An SVG sequence diagram of the events in `range` (positions in the trace). `mark`, if given, is an event to
/// highlight (the first bad one).
pub fn svg(trace: &Trace, range: Range<usize>, mark: Option<usize>) -> String {
    const ROW: usize = 18;
    const CHAR: usize = 7;
    const TOP: usize = 40;
    let range = clamp(trace, range);
    let n = trace.header.nodes as usize;
    let labels = produced(trace);
    let records = &trace.records[range.clone()];
    // Column widths from the longest label each column shows.
    let label = |ev: &Event| match ev {
        Event::Send { id } => format!(
            "send {id} {}",
            labels.get(id).map(String::as_str).unwrap_or("")
        ),
        ev => event_label(ev),
    };
    let mut width = vec![12 * CHAR; n];
    for r in records {
        if let Some(node) = r.ev.node() {
            let w = label(&r.ev).chars().count() * CHAR + 30;
            if let Some(slot) = width.get_mut(node as usize) {
                *slot = (*slot).max(w);
            }
        }
    }
    // Each server's line is near the left of its column; its labels run to the right of it.
    let mut x = Vec::with_capacity(n);
    let mut left = 10;
    for w in &width {
        x.push(left + 10);
        left += w;
    }
    let total_width = left + 10;
    let height = TOP + ROW * (records.len() + 1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{height}" font-family="monospace" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="14">{} — events {}..{}</text>"#,
        escape(&trace.header.source),
        range.start,
        range.end
    );
    for (i, cx) in x.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="{cx}" y="32" font-weight="bold">S{i}</text><line x1="{cx}" y1="36" x2="{cx}" y2="{height}" stroke="#bbb"/>"##
        );
    }
    let row_y = |k: usize| TOP + ROW * (k - range.start) + ROW / 2;
    // Where each message left, for its arrow.
    let mut sent_at: HashMap<MsgId, usize> = HashMap::new();
    for (k, r) in records
        .iter()
        .enumerate()
        .map(|(j, r)| (j + range.start, r))
    {
        let y = row_y(k);
        if Some(k) == mark {
            let _ = writeln!(
                out,
                r##"<rect x="0" y="{}" width="{total_width}" height="{ROW}" fill="#fdd"/>"##,
                y - ROW / 2
            );
        }
        let Some(node) = r.ev.node().map(|v| v as usize).filter(|&v| v < x.len()) else {
            continue;
        };
        let cx = x[node];
        match &r.ev {
            Event::Send { id } => {
                sent_at.insert(*id, k);
                let _ = writeln!(out, r#"<circle cx="{cx}" cy="{y}" r="3"/>"#);
            }
            Event::Receive { id, .. } => {
                if let (Some(&from_row), Some(&fx)) = (sent_at.get(id), x.get(id.from as usize)) {
                    let label = labels.get(id).map(String::as_str).unwrap_or("");
                    let fy = row_y(from_row);
                    let _ = writeln!(
                        out,
                        r##"<line x1="{fx}" y1="{fy}" x2="{cx}" y2="{y}" stroke="#36c" marker-end="url(#arrow)"><title>{}</title></line>"##,
                        escape(label)
                    );
                }
            }
            Event::Drop { .. } => {
                let _ = writeln!(
                    out,
                    r##"<path d="M{} {} L{} {} M{} {} L{} {}" stroke="#c00" stroke-width="2"/>"##,
                    cx - 5,
                    y - 5,
                    cx + 5,
                    y + 5,
                    cx - 5,
                    y + 5,
                    cx + 5,
                    y - 5
                );
            }
            Event::Crash { .. } => {
                let _ = writeln!(
                    out,
                    r##"<rect x="{}" y="{}" width="16" height="8" fill="#c00"/>"##,
                    cx - 8,
                    y - 4
                );
            }
            _ => {}
        }
        let colour = match &r.ev {
            Event::Crash { .. } | Event::Drop { .. } => "#c00",
            Event::Send { .. } | Event::Persist { .. } | Event::Apply { .. } => "#777",
            _ => "#000",
        };
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
            cx + 6,
            y + 4,
            escape(&label(&r.ev))
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The events in `range` as a ShiViz log: per event, its description and then its server with a vector clock.
pub fn shiviz(trace: &Trace, range: Range<usize>) -> String {
    let range = clamp(trace, range);
    let n = trace.header.nodes as usize;
    let labels = produced(trace);
    let mut clocks = vec![vec![0u64; n]; n];
    let mut sent: HashMap<MsgId, Vec<u64>> = HashMap::new();
    let mut out = String::new();
    for r in &trace.records[range] {
        let Some(node) = r.ev.node().map(|v| v as usize).filter(|v| *v < n) else {
            continue;
        };
        if let Event::Receive { id, .. } = &r.ev {
            if let Some(vc) = sent.get(id) {
                for (mine, theirs) in clocks[node].iter_mut().zip(vc) {
                    *mine = (*mine).max(*theirs);
                }
            }
        }
        clocks[node][node] += 1;
        if let Event::Send { id } = &r.ev {
            sent.insert(*id, clocks[node].clone());
        }
        let mut description = event_label(&r.ev);
        if let Event::Send { id } | Event::Receive { id, .. } = &r.ev {
            if let Some(l) = labels.get(id) {
                let _ = write!(description, " [{l}]");
            }
        }
        let clock: Vec<String> = clocks[node]
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| format!("\"S{i}\":{c}"))
            .collect();
        let _ = writeln!(out, "{description}\nS{node} {{{}}}", clock.join(","));
    }
    out
}
