//! Long runs on a perfect network, driven by hand: liveness, message rates (the lab's heartbeat rule), and that
//! the core is cheap enough for the simulator (persisting shares the log instead of copying it).

use raft::{Config, Envelope, Message, Node};

struct Run {
    nodes: Vec<Node>,
    requests: usize,
    entries_sent: usize,
    applied: Vec<usize>,
}

/// Runs `n` servers for `ticks` ticks, proposing on the leader every `propose_every` ticks (0: never).
fn run(n: u64, ticks: u32, propose_every: u32) -> Run {
    let ids: Vec<u64> = (0..n).collect();
    let mut nodes: Vec<Node> = ids
        .iter()
        .map(|&i| Node::new(i, &ids, Config::default(), None, None, 99).unwrap())
        .collect();
    let mut r = Run {
        nodes: Vec::new(),
        requests: 0,
        entries_sent: 0,
        applied: vec![0; n as usize],
    };
    let mut net: Vec<Envelope> = Vec::new();
    let mut proposals = 0u64;
    for tick in 0..ticks {
        for node in nodes.iter_mut() {
            node.tick();
        }
        if propose_every > 0 && tick % propose_every == 0 {
            for node in nodes.iter_mut().filter(|n| n.is_leader()) {
                proposals += 1;
                node.propose(proposals.to_le_bytes().to_vec()).unwrap();
            }
        }
        loop {
            for (i, node) in nodes.iter_mut().enumerate() {
                if node.has_ready() {
                    let released = node.ready().persisted();
                    r.applied[i] += released.applies.len();
                    net.extend(released.messages);
                }
            }
            if net.is_empty() {
                break;
            }
            for m in std::mem::take(&mut net) {
                if let Message::AppendEntries(a) = &m.message {
                    r.requests += 1;
                    r.entries_sent += a.entries.len();
                } else if m.message.is_request() {
                    r.requests += 1;
                }
                let to = m.to as usize;
                nodes[to].step(m).unwrap();
            }
        }
    }
    r.nodes = nodes;
    r
}

#[test]
fn an_idle_cluster_sends_at_most_ten_heartbeats_per_second_per_follower() {
    // 100 ticks = 1 s with the lab's 10 ms ticks. Ten seconds, three servers.
    let r = run(3, 1_000, 0);
    let leaders = r.nodes.iter().filter(|n| n.is_leader()).count();
    assert_eq!(leaders, 1);
    assert_eq!(
        r.nodes.iter().map(|n| n.term()).max(),
        Some(1),
        "no spurious elections"
    );
    // One election (2 RequestVotes) plus at most 10 heartbeats per second to each of 2 followers.
    assert!(r.requests <= 2 + 10 * 10 * 2, "{} requests", r.requests);
}

#[test]
fn a_busy_cluster_commits_everything_and_sends_each_entry_once_per_follower() {
    // 200 s of 5 servers with a proposal every 100 ms.
    let r = run(5, 20_000, 10);
    let leader = r.nodes.iter().find(|n| n.is_leader()).unwrap();
    let proposals = leader.last_index();
    assert!(proposals >= 1_990);
    for (i, node) in r.nodes.iter().enumerate() {
        assert_eq!(node.log(), leader.log(), "node {i}");
        assert!(
            r.applied[i] as u64 >= proposals - 1,
            "node {i} applied {}",
            r.applied[i]
        );
    }
    assert_eq!(
        r.entries_sent as u64,
        4 * proposals,
        "each entry sent once to each follower"
    );
}
