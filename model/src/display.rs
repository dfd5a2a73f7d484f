//! Human-readable renderings: actions as sentences, states as a per-server table, and paths as a
//! sequence diagram (SVG) for the Explorer.

use crate::raft::{Action, RaftModel};
use crate::state::{AppendOutcome, Body, Config, Entry, Message, Role, State};
use std::fmt::Write;

/// `[1:1 2:1]`: each entry as term:value, a configuration entry as `term:{S0 S1 S2}` (while
/// joint, `term:{S0 S1 S3/S0 S1 S2}`: C_new, then C_old; learners after a `+`).
pub fn entries(log: &[Entry]) -> String {
    let items: Vec<_> = log.iter().map(entry).collect();
    format!("[{}]", items.join(" "))
}

fn entry(e: &Entry) -> String {
    match e.config() {
        None => format!("{}:{}", e.term, e.value),
        Some(c) => format!("{}:{{{}}}", e.term, config(c)),
    }
}

/// `S0 S1 S3/S0 S1 S2+S4`: the voters, the old voters while joint, the learners.
pub fn config(c: Config) -> String {
    let set = |bits: u8| {
        (0..8)
            .filter(|i| bits & (1 << i) != 0)
            .map(|i| format!("S{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = set(c.voters);
    if c.is_joint() {
        s.push('/');
        s.push_str(&set(c.old_voters));
    }
    if c.learners != 0 {
        s.push('+');
        s.push_str(&set(c.learners));
    }
    s
}

/// A server's log, with `|` after the last entry of its snapshot when it has one.
fn log_with_snapshot(log: &[Entry], snapshot_index: u32) -> String {
    if snapshot_index == 0 {
        return entries(log);
    }
    // A broken model can cut its log inside its snapshot: show what is there.
    let (snap, rest) = log.split_at((snapshot_index as usize).min(log.len()));
    let show = |es: &[Entry]| es.iter().map(entry).collect::<Vec<_>>().join(" ");
    format!("[{} | {}]", show(snap), show(rest))
}

/// A message as one line: `S0->S1 AppendEntries(t2 prev=1/1 [2:1] commit=1)`.
pub fn message(m: &Message) -> String {
    let body = match &m.body {
        Body::RequestVote {
            last_log_index,
            last_log_term,
            transfer,
        } => format!(
            "RequestVote(t{} last={last_log_index}/{last_log_term}{})",
            m.term,
            if *transfer { " transfer" } else { "" }
        ),
        Body::PreVote {
            last_log_index,
            last_log_term,
        } => format!("PreVote(t{} last={last_log_index}/{last_log_term})", m.term),
        Body::PreVoteReply { granted } => format!(
            "PreVoteReply(t{} {})",
            m.term,
            if *granted { "granted" } else { "denied" }
        ),
        Body::TimeoutNow => format!("TimeoutNow(t{})", m.term),
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
            read_round,
        } => format!(
            "AppendEntries(t{} prev={prev_log_index}/{prev_log_term} {} commit={leader_commit}{})",
            m.term,
            entries(es),
            round(*read_round)
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
        Body::AppendEntriesReply {
            outcome,
            read_round,
        } => {
            let outcome = match outcome {
                AppendOutcome::Success { match_index } => format!("ok match={match_index}"),
                AppendOutcome::StaleTerm => "stale term".to_string(),
                AppendOutcome::Conflict {
                    conflict_term,
                    conflict_index,
                } => format!("conflict term={conflict_term} index={conflict_index}"),
            };
            format!(
                "AppendEntriesReply(t{} {outcome}{})",
                m.term,
                round(*read_round)
            )
        }
    };
    format!("S{}->S{} {body}", m.from, m.to)
}

/// A message's read round, when it has one.
fn round(read_round: u32) -> String {
    if read_round == 0 {
        String::new()
    } else {
        format!(" read={read_round}")
    }
}

/// An action as a short sentence.
pub fn action(a: &Action) -> String {
    match a {
        Action::Timeout(i) => {
            format!("S{i} times out and starts an election (with PreVote: a pre-vote)")
        }
        Action::ClientRequest(i, v) => format!("client sends value {v} to leader S{i}"),
        Action::ChangeConfig(i, c) => {
            format!("leader S{i} appends configuration {{{}}}", config(*c))
        }
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
        Action::ReadIndex(i) => format!("client reads at leader S{i}"),
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
        Action::LeaseExpires(i) => format!("S{i}'s election timer runs out: its lease ends"),
        Action::CheckQuorum(i) => format!("leader S{i} checks that it has heard from a quorum"),
        Action::TransferLeader { leader, target } => {
            format!("leader S{leader} hands over to S{target} (TimeoutNow)")
        }
    }
}

/// The one-line key to the notation of [`state`].
pub const LEGEND: &str = "log entries read term:value (the term the entry was created in, the \
                          client value), a configuration entry term:{voters/old voters+learners}; \
                          index 1 is the first; | ends the snapshot; * after the role: a \
                          follower in its leader lease (CheckQuorum)";

/// A state as a per-server table and the messages in flight.
pub fn state(s: &State) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{LEGEND}");
    let _ = writeln!(
        out,
        "server  term  role       vote  commit  log (| ends the snapshot)"
    );
    for (i, srv) in s.servers.iter().enumerate() {
        let role = match srv.role {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "LEADER",
            Role::PreCandidate => "pre-cand",
        };
        let vote = srv.voted_for.map_or("-".to_string(), |v| format!("S{v}"));
        let role = if srv.lease {
            format!("{role}*")
        } else {
            role.to_string()
        };
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
            for r in &srv.reads {
                let acks: Vec<_> = (0..s.servers.len())
                    .filter(|&j| r.acks & (1 << j) != 0)
                    .map(|j| format!("S{j}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "        read of round {} at index {}, acknowledged by {}",
                    r.round,
                    r.index,
                    acks.join(" ")
                );
            }
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
    if s.reads > 0 {
        let served: Vec<_> = s
            .served
            .iter()
            .map(|(index, required)| format!("at {index} (committed then: {required})"))
            .collect();
        let _ = writeln!(
            out,
            "reads begun {}; served: {}",
            s.reads,
            if served.is_empty() {
                "none".to_string()
            } else {
                served.join(", ")
            }
        );
    }
    out
}

/// A path as a sequence diagram: one vertical line per server, one row per step. A message is an
/// arrow from the step that sent it (at the sender's line) to the step that delivered it (at the
/// receiver's), so delays and reordering show; a loss is an `x` on the sender's line at the step
/// of the loss, a copy a `+` there; a local step is a dot. Labels go to the right, and the
/// picture is as wide as its longest label.
pub fn svg(model: &RaftModel, steps: &[(State, Option<Action>)]) -> String {
    let n = model.bounds.servers as usize;
    let col = |i: usize| 60 + i * 160;
    let row = |k: usize| 40 + k * 30;
    let labels: Vec<String> = steps
        .iter()
        .map(|(_, a)| {
            a.as_ref().map_or(String::new(), |a| match a {
                Action::Receive(m) => message(m),
                _ => action(a),
            })
        })
        .collect();
    // A monospace character of the Explorer's 14px font is under 9px wide.
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_x = col(n) - 40;
    let width = label_x + longest * 9 + 20;
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
    // The copies in flight, each with the step that sent it, oldest first.
    let mut in_flight: Vec<(&Message, usize)> = Vec::new();
    for (k, (before, a)) in steps.iter().enumerate() {
        let Some(a) = a else { continue };
        let Some((after, _)) = steps.get(k + 1) else {
            continue;
        };
        let y = row(k + 1);
        let mark = |svg: &mut String, x: usize, sign: &str| {
            let _ = write!(
                svg,
                "<text x='{x}' y='{}' text-anchor='middle' class='svg-event-label'>{sign}</text>",
                y + 5
            );
        };
        match a {
            Action::Receive(m) => {
                let sent = take(&mut in_flight, m);
                let _ = write!(
                    svg,
                    "<line x1='{}' y1='{}' x2='{}' y2='{y}' marker-end='url(#arrow)' \
                     class='svg-event-line' />",
                    col(m.from as usize),
                    sent.map_or(y - 20, row),
                    col(m.to as usize),
                );
            }
            Action::Drop(m) => {
                take(&mut in_flight, m);
                mark(&mut svg, col(m.from as usize), "x");
            }
            Action::Duplicate(m) => mark(&mut svg, col(m.from as usize), "+"),
            Action::Timeout(i)
            | Action::ClientRequest(i, _)
            | Action::ChangeConfig(i, _)
            | Action::AdvanceCommitIndex(i, _)
            | Action::ReadIndex(i)
            | Action::Compact(i, _)
            | Action::Crash(i)
            | Action::LeaseExpires(i)
            | Action::CheckQuorum(i)
            | Action::TransferLeader { leader: i, .. }
            | Action::AppendEntries { leader: i, .. }
            | Action::SetNextIndex { leader: i, .. }
            | Action::InstallSnapshot { leader: i, .. } => {
                let _ = write!(
                    svg,
                    "<circle cx='{}' cy='{y}' r='5' class='svg-event-shape' />",
                    col(*i as usize)
                );
            }
        }
        // What else left the network unread (dead messages pruned) and what this step sent.
        let consumed = match a {
            Action::Receive(m) | Action::Drop(m) => Some(m),
            _ => None,
        };
        for m in before.network.distinct() {
            let own = u8::from(consumed == Some(m));
            for _ in after.network.count(m) + own..before.network.count(m) {
                take(&mut in_flight, m);
            }
        }
        for m in after.network.distinct() {
            for _ in before.network.count(m)..after.network.count(m) {
                in_flight.push((m, k + 1));
            }
        }
        let _ = write!(
            svg,
            "<text x='{label_x}' y='{}' class='svg-event-label'>{}</text>",
            y + 4,
            escape(&labels[k])
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Removes the oldest copy of `m` from `in_flight` and returns the step that sent it.
fn take(in_flight: &mut Vec<(&Message, usize)>, m: &Message) -> Option<usize> {
    let at = in_flight.iter().position(|(x, _)| *x == m)?;
    Some(in_flight.remove(at).1)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
