//! The codec and untrusted input: round trips, and arbitrary or truncated bytes and arbitrary messages never
//! panic.

mod common;

use common::Cluster;
use proptest::prelude::*;
use raft::{
    decode, encode, AppendEntries, AppendEntriesReply, Entry, Envelope, InstallSnapshot,
    InstallSnapshotReply, Membership, Message, PersistentState, RequestVote, RequestVoteReply,
    StepError, TimeoutNow,
};

fn samples() -> Vec<Envelope> {
    let entries = vec![
        Entry::command(3, b"hello".to_vec()),
        Entry::command(4, vec![]),
    ];
    let messages = vec![
        Message::RequestVote(RequestVote {
            term: 5,
            candidate_id: 1,
            last_log_index: 9,
            last_log_term: 4,
            transfer: false,
        }),
        Message::RequestVoteReply(RequestVoteReply {
            term: 5,
            vote_granted: true,
        }),
        Message::AppendEntries(AppendEntries {
            term: 5,
            leader_id: 1,
            prev_log_index: 7,
            prev_log_term: 3,
            entries,
            leader_commit: 6,
            read_round: 0,
        }),
        Message::AppendEntriesReply(AppendEntriesReply {
            term: 5,
            success: false,
            prev_log_index: 7,
            match_index: 0,
            conflict_term: Some(2),
            conflict_index: 4,
            read_round: 0,
        }),
        Message::InstallSnapshot(InstallSnapshot {
            term: 5,
            leader_id: 1,
            last_included_index: 19,
            last_included_term: 4,
            membership: Box::new(Membership {
                learners: [3].into(),
                addresses: [(3, "10.0.0.3:7001".to_string())].into(),
                ..Membership::of_voters([0, 1, 2])
            }),
            data: b"snapshot".to_vec().into(),
        }),
        Message::InstallSnapshotReply(InstallSnapshotReply {
            term: 5,
            match_index: 19,
        }),
    ];
    messages
        .into_iter()
        .map(|message| Envelope {
            from: 1,
            to: 2,
            seq: 0,
            message,
        })
        .collect()
}

#[test]
fn messages_and_state_round_trip() {
    for envelope in samples() {
        let bytes = encode(&envelope);
        assert_eq!(decode::<Envelope>(&bytes).unwrap(), envelope);
    }
    let state = PersistentState {
        current_term: 7,
        voted_for: Some(2),
        last_included_index: 9,
        last_included_term: 1,
        membership: Default::default(),
        log: vec![Entry::command(1, vec![1, 2, 3])],
    };
    assert_eq!(decode::<PersistentState>(&encode(&state)).unwrap(), state);
}

#[test]
fn the_encoding_is_compact() {
    // A heartbeat is a handful of bytes; an entry costs its command plus a few bytes.
    let heartbeat = Envelope {
        from: 0,
        to: 1,
        seq: 0,
        message: Message::AppendEntries(AppendEntries {
            term: 3,
            leader_id: 0,
            prev_log_index: 100,
            prev_log_term: 3,
            entries: vec![],
            leader_commit: 100,
            read_round: 0,
        }),
    };
    assert!(
        encode(&heartbeat).len() <= 12,
        "{}",
        encode(&heartbeat).len()
    );
    let entry = Entry::command(3, vec![0; 5000]);
    assert!(encode(&entry).len() <= 5004);
}

#[test]
fn every_truncation_and_extension_is_an_error() {
    for envelope in samples() {
        let bytes = encode(&envelope);
        for len in 0..bytes.len() {
            assert!(
                decode::<Envelope>(&bytes[..len]).is_err(),
                "{len} of {} bytes",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<Envelope>(&longer).is_err());
    }
}

#[test]
fn misaddressed_and_foreign_messages_are_refused() {
    let mut c = Cluster::new(3);
    c.ready(0); // the first configuration, made durable
    let sample = samples().remove(0);
    let to_other = Envelope {
        from: 1,
        to: 2,
        ..sample.clone()
    };
    assert_eq!(
        c.nodes[0].step(to_other),
        Err(StepError::WrongAddressee { to: 2, me: 0 })
    );
    // (A message from a server outside the configuration is not foreign: it may lead a configuration this
    // node has not learned of yet, see `tests/membership.rs`.)
    let from_self = Envelope {
        from: 0,
        to: 0,
        ..sample.clone()
    };
    assert_eq!(c.nodes[0].step(from_self), Err(StepError::UnknownPeer(0)));
    // A RequestVote whose candidate is not its sender.
    let spoofed = Envelope {
        from: 2,
        to: 0,
        ..sample
    };
    assert!(matches!(
        c.nodes[0].step(spoofed),
        Err(StepError::Malformed(_))
    ));
    assert!(!c.nodes[0].has_ready(), "a refused message leaves no trace");
}

/// `InstallSnapshot::data` is shared (`Arc<[u8]>`, so that a leader sends its snapshot without copying it)
/// but encoded exactly as the `Vec<u8>` it was: the wire format is the same.
#[test]
fn snapshot_data_is_encoded_as_a_byte_vector() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct AsVec {
        term: u64,
        leader_id: u64,
        last_included_index: u64,
        last_included_term: u64,
        membership: Membership,
        data: Vec<u8>,
    }
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let shared = InstallSnapshot {
        term: 3,
        leader_id: 1,
        last_included_index: 40,
        last_included_term: 2,
        membership: Box::new(Membership::of_voters([1, 2])),
        data: data.clone().into(),
    };
    let as_vec = AsVec {
        term: 3,
        leader_id: 1,
        last_included_index: 40,
        last_included_term: 2,
        membership: Membership::of_voters([1, 2]),
        data,
    };
    assert_eq!(encode(&shared), encode(&as_vec));
    assert_eq!(decode::<InstallSnapshot>(&encode(&as_vec)).unwrap(), shared);
    assert_eq!(
        decode::<AsVec>(&encode(&shared)).unwrap().data,
        &*shared.data
    );
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => (0u64..6, prop::collection::vec(any::<u8>(), 0..3))
            .prop_map(|(term, command)| Entry::command(term, command)),
        1 => (0u64..6, arb_membership()).prop_map(|(term, m)| Entry::config(term, m)),
    ]
}

/// Any configuration of servers 0 to 4, well-formed or not (empty, or a server that both votes and learns).
fn arb_membership() -> impl Strategy<Value = Membership> {
    let ids = || prop::collection::btree_set(0u64..5, 0..4);
    let addresses = prop::collection::btree_map(0u64..5, "[a-z0-9.:]{0,12}", 0..3);
    (ids(), ids(), ids(), addresses).prop_map(|(voters, old_voters, learners, addresses)| {
        Membership {
            voters,
            old_voters,
            learners,
            addresses,
        }
    })
}

/// Small values most of the time (so that messages interact with real state), extremes sometimes.
fn arb_index() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..8, 1 => any::<u64>(), 1 => Just(u64::MAX)]
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            0u64..6,
            0u64..4,
            arb_index(),
            0u64..6,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(term, c, i, t, transfer, pre)| {
                let request = RequestVote {
                    term,
                    candidate_id: c,
                    last_log_index: i,
                    last_log_term: t,
                    transfer,
                };
                if pre {
                    Message::PreVote(request)
                } else {
                    Message::RequestVote(request)
                }
            }),
        (0u64..6, 0u64..4)
            .prop_map(|(term, l)| Message::TimeoutNow(TimeoutNow { term, leader_id: l })),
        (0u64..6, any::<bool>(), any::<bool>()).prop_map(|(term, g, pre)| {
            let reply = RequestVoteReply {
                term,
                vote_granted: g,
            };
            if pre {
                Message::PreVoteReply(reply)
            } else {
                Message::RequestVoteReply(reply)
            }
        }),
        (
            0u64..6,
            0u64..4,
            arb_index(),
            0u64..6,
            prop::collection::vec(arb_entry(), 0..4),
            arb_index()
        )
            .prop_map(|(term, l, p, pt, entries, lc)| Message::AppendEntries(
                AppendEntries {
                    term,
                    leader_id: l,
                    prev_log_index: p,
                    prev_log_term: pt,
                    entries,
                    leader_commit: lc,
                    read_round: 0,
                }
            )),
        (
            0u64..6,
            any::<bool>(),
            arb_index(),
            arb_index(),
            prop::option::of(0u64..6),
            arb_index()
        )
            .prop_map(|(term, success, p, m, ct, ci)| Message::AppendEntriesReply(
                AppendEntriesReply {
                    term,
                    success,
                    prev_log_index: p,
                    match_index: m,
                    conflict_term: ct,
                    conflict_index: ci,
                    read_round: 0,
                }
            )),
        (
            0u64..6,
            0u64..4,
            arb_index(),
            0u64..6,
            arb_membership(),
            prop::collection::vec(any::<u8>(), 0..3)
        )
            .prop_map(
                |(term, l, i, t, membership, data)| Message::InstallSnapshot(InstallSnapshot {
                    term,
                    leader_id: l,
                    last_included_index: i,
                    last_included_term: t,
                    membership: Box::new(membership),
                    data: data.into(),
                })
            ),
        (0u64..6, arb_index()).prop_map(|(term, m)| Message::InstallSnapshotReply(
            InstallSnapshotReply {
                term,
                match_index: m
            }
        )),
    ]
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode::<Envelope>(&bytes);
        let _ = decode::<PersistentState>(&bytes);
        let _ = decode::<Message>(&bytes);
    }

    /// Whatever a disk returns, restoring from it is an error or a valid node, never a panic.
    #[test]
    fn restoring_arbitrary_persisted_state_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..48),
        snapshot in prop::option::of(prop::collection::vec(any::<u8>(), 0..4)),
    ) {
        if let Ok(state) = decode::<PersistentState>(&bytes) {
            if let Ok(mut node) = raft::Node::new(0, &[0, 1, 2], raft::Config::default(), Some(state), snapshot, 0) {
                let _ = node.ready().persisted();
                node.tick();
            }
        }
    }

    #[test]
    fn decoding_corrupted_encodings_never_panics(index in 0usize..6, flip in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = encode(&samples()[index]);
        let at = flip % bytes.len();
        bytes[at] = byte;
        let _ = decode::<Envelope>(&bytes);
    }

    /// Arbitrary messages from arbitrary peers, interleaved with ticks and proposals, never panic, and the
    /// node's internal invariants (debug assertions) hold throughout.
    #[test]
    fn arbitrary_messages_never_panic(
        steps in prop::collection::vec((0usize..3, 0u64..4, 0u64..4, arb_message(), 0u8..5), 1..60)
    ) {
        let mut c = Cluster::new(3);
        c.elect(0);
        let (_, msgs) = c.propose(0, "a");
        c.deliver_all(msgs);
        for (node, from, to, message, action) in steps {
            match action {
                0 => c.nodes[node].tick(),
                1 => { let _ = c.nodes[node].propose(b"p".to_vec()); }
                2 => {
                    // The service snapshots whatever it has applied (or something absurd).
                    let index = c.nodes[node].last_applied().saturating_sub(from);
                    let _ = c.nodes[node].snapshot(index + to / 3, vec![1]);
                }
                _ => { let _ = c.nodes[node].step(Envelope { from, to, seq: 0, message }); }
            }
            let ready = c.nodes[node].ready();
            let _ = ready.persisted();
        }
    }
}
