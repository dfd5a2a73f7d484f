//! Human-readable renderings: actions as sentences, states as a per-server table, and paths as a
//! sequence diagram (SVG) for the Explorer.

use crate::raft::{Action, RaftModel};
use crate::state::{AppendOutcome, Body, Entry, Message, Role, State};
use std::fmt::Write;

/// `[1:1 2:1]`: each entry as term:value.
pub fn entries(log: &[Entry]) -> String {
    let items: Vec<_> = log
        .iter()
        .map(|e| format!("{}:{}", e.term, e.value))
        .collect();
    format!("[{}]", items.join(" "))
}

/// A server's log, with `|` after the last entry of its snapshot when it has one.
fn log_with_snapshot(log: &[Entry], snapshot_index: u32) -> String {
    if snapshot_index == 0 {
        return entries(log);
    }
    // A broken model can cut its log inside its snapshot: show what is there.
    let (snap, rest) = log.split_at((snapshot_index as usize).min(log.len()));
    let show = |es: &[Entry]| {
        es.iter()
            .map(|e| format!("{}:{}", e.term, e.value))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("[{} | {}]", show(snap), show(rest))
}

/// A message as one line: `S0->S1 AppendEntries(t2 prev=1/1 [2:1] commit=1)`.
pub fn message(m: &Message) -> String {
    let body = match &m.body {
        Body::RequestVote {
            last_log_index,
            last_log_term,
        } => format!(
            "RequestVote(t{} last={last_log_index}/{last_log_term})",
            m.term
        ),
        Body::RequestVoteReply { vote_granted } => format!(
            "RequestVoteReply(t{} {})",
            m.term,
            if *vote_granted { "granted" } else { "denied" }
        ),
        Body::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries: es,
            leader_commit,
        } => format!(
            "AppendEntries(t{} prev={prev_log_index}/{prev_log_term} {} commit={leader_commit})",
            m.term,
            entries(es)
        ),
        Body::InstallSnapshot {
            last_included_index,
            last_included_term,
            entries: es,
        } => format!(
            "InstallSnapshot(t{} last={last_included_index}/{last_included_term} {})",
            m.term,
            entries(es)
        ),
        Body::InstallSnapshotReply { match_index } => {
            format!("InstallSnapshotReply(t{} match={match_index})", m.term)
        }
        Body::AppendEntriesReply(outcome) => match outcome {
            AppendOutcome::Success { match_index } => {
                format!("AppendEntriesReply(t{} ok match={match_index})", m.term)
            }
            AppendOutcome::StaleTerm => format!("AppendEntriesReply(t{} stale term)", m.term),
            AppendOutcome::Conflict {
                conflict_term,
                conflict_index,
            } => format!(
                "AppendEntriesReply(t{} conflict term={conflict_term} index={conflict_index})",
                m.term
            ),
        },
    };
    format!("S{}->S{} {body}", m.from, m.to)
}

/// An action as a short sentence.
pub fn action(a: &Action) -> String {
    match a {
        Action::Timeout(i) => format!("S{i} times out and starts an election"),
        Action::ClientRequest(i, v) => format!("client sends value {v} to leader S{i}"),
        Action::AppendEntries {
            leader,
            peer,
            prev_log_index,
            count,
        } => {
            if *count == 0 {
                format!("S{leader} sends a heartbeat to S{peer} (prev={prev_log_index})")
            } else {
                format!(
                    "S{leader} sends entries {}..={} to S{peer}",
                    prev_log_index + 1,
                    prev_log_index + count
                )
            }
        }
        Action::AdvanceCommitIndex(i, index) => format!("S{i} commits through index {index}"),
        Action::Compact(i, index) => format!("S{i} snapshots its log through index {index}"),
        Action::InstallSnapshot { leader, peer } => {
            format!("S{leader} sends its snapshot to S{peer}")
        }
        Action::SetNextIndex {
            leader,
            peer,
            index,
        } => format!("S{leader} sets next_index of S{peer} to {index}"),
        Action::Receive(m) => format!("S{} receives {}", m.to, message(m)),
        Action::Crash(i) => format!("S{i} crashes and restarts"),
        Action::Drop(m) => format!("network drops {}", message(m)),
        Action::Duplicate(m) => format!("network duplicates {}", message(m)),
    }
}

/// A state as a per-server table and the messages in flight.
pub fn state(s: &State) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server  term  role       vote  commit  log (| ends the snapshot)"
    );
    for (i, srv) in s.servers.iter().enumerate() {
        let role = match srv.role {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "LEADER",
        };
        let vote = srv.voted_for.map_or("-".to_string(), |v| format!("S{v}"));
        let _ = writeln!(
            out,
            "S{i:<5}  {:<4}  {role:<9}  {vote:<4}  {:<6}  {}",
            srv.current_term,
            srv.commit_index,
            log_with_snapshot(&srv.log, srv.snapshot_index)
        );
        if srv.role == Role::Leader {
            let peers: Vec<_> = (0..s.servers.len())
                .filter(|&j| j != i)
                .map(|j| {
                    format!(
                        "S{j} next={} match={}",
                        srv.next_index[j], srv.match_index[j]
                    )
                })
                .collect();
            let _ = writeln!(out, "        {}", peers.join(", "));
        }
    }
    if s.network.is_empty() {
        let _ = writeln!(out, "in flight: nothing");
    } else {
        let _ = writeln!(out, "in flight:");
        for (m, n) in &s.network.messages {
            let copies = if *n > 1 {
                format!(" (x{n})")
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {}{copies}", message(m));
        }
    }
    let committed: Vec<_> = s.committed.iter().map(|(e, _)| *e).collect();
    let _ = writeln!(
        out,
        "committed so far: {}; elections: {}; crashes {} drops {} dups {}",
        entries(&committed),
        s.elections
            .iter()
            .map(|(t, l)| format!("t{t}:S{l}"))
            .collect::<Vec<_>>()
            .join(" "),
        s.crashes,
        s.drops,
        s.dups
    );
    out
}

/// A path as a sequence diagram: one vertical line per server, one row per step; a delivered
/// message is an arrow from its sender to its receiver, a local step a labelled dot.
pub fn svg(model: &RaftModel, steps: &[(State, Option<Action>)]) -> String {
    let n = model.bounds.servers as usize;
    let col = |i: usize| 60 + i * 160;
    let row = |k: usize| 40 + k * 30;
    let width = col(n) + 360;
    let height = row(steps.len() + 1);
    let mut svg = format!(
        "<svg version='1.1' baseProfile='full' width='{width}' height='{height}' \
         viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>\
         <defs><marker class='svg-event-shape' id='arrow' markerWidth='12' markerHeight='10' \
         refX='12' refY='5' orient='auto'><polygon points='0 0, 12 5, 0 10' /></marker></defs>"
    );
    for i in 0..n {
        let _ = write!(
            svg,
            "<line x1='{x}' y1='{y1}' x2='{x}' y2='{y2}' class='svg-actor-timeline' />\
             <text x='{x}' y='20' class='svg-actor-label'>S{i}</text>",
            x = col(i),
            y1 = row(0),
            y2 = height
        );
    }
    let label = |svg: &mut String, k: usize, text: &str| {
        let _ = write!(
            svg,
            "<text x='{}' y='{}' class='svg-event-label'>{}</text>",
            col(n) - 40,
            row(k + 1) + 4,
            escape(text)
        );
    };
    for (k, (_, a)) in steps.iter().enumerate() {
        let Some(a) = a else { continue };
        let y = row(k + 1);
        match a {
            Action::Receive(m) => {
                let _ = write!(
                    svg,
                    "<line x1='{}' x2='{}' y1='{}' y2='{y}' marker-end='url(#arrow)' \
                     class='svg-event-line' />",
                    col(m.from as usize),
                    col(m.to as usize),
                    y - 20
                );
                label(&mut svg, k, &message(m));
            }
            Action::Drop(m) | Action::Duplicate(m) => {
                let x = (col(m.from as usize) + col(m.to as usize)) / 2;
                let _ = write!(
                    svg,
                    "<text x='{x}' y='{y}' class='svg-event-label'>{}</text>",
                    if matches!(a, Action::Drop(_)) {
                        "x"
                    } else {
                        "+"
                    }
                );
                label(&mut svg, k, &action(a));
            }
            Action::Timeout(i)
            | Action::ClientRequest(i, _)
            | Action::AdvanceCommitIndex(i, _)
            | Action::Compact(i, _)
            | Action::Crash(i)
            | Action::AppendEntries { leader: i, .. }
            | Action::SetNextIndex { leader: i, .. }
            | Action::InstallSnapshot { leader: i, .. } => {
                let _ = write!(
                    svg,
                    "<circle cx='{}' cy='{y}' r='5' class='svg-event-shape' />",
                    col(*i as usize)
                );
                label(&mut svg, k, &action(a));
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
