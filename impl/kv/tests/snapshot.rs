//! Snapshots: a restored store is the store (and goes on as it would have), and every truncation or bit
//! flip of a snapshot is either refused, without a panic and without a change, or restores a valid state.

use proptest::prelude::*;
use raft_kv::{encode, ClientId, Command, Store, Write};

/// One entry of a random log.
#[derive(Clone, Debug)]
enum Entry {
    Register,
    /// A write from a client picked by `pick` (most often an open session), with sequence number `seq`.
    Write {
        pick: u8,
        seq: u8,
        write: Write,
    },
    Noop,
    Garbage(Vec<u8>),
}

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "x", "y", "xy"]).prop_map(String::from)
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from)
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        (key(), text()).prop_map(|(key, value)| Write::Put { key, value }),
        (key(), text()).prop_map(|(key, arg)| Write::Append { key, arg }),
        (key(), text(), text()).prop_map(|(key, expected, new)| Write::Cas { key, expected, new }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        2 => Just(Entry::Register),
        6 => (any::<u8>(), 0..6u8, write()).prop_map(|(pick, seq, write)| Entry::Write { pick, seq, write }),
        1 => Just(Entry::Noop),
        1 => prop::collection::vec(any::<u8>(), 1..8).prop_map(Entry::Garbage),
    ]
}

/// The bytes of `entry` for `store` (whose open sessions a write picks from).
fn bytes(store: &Store, entry: &Entry) -> Vec<u8> {
    match entry {
        Entry::Register => encode(&Command::Register),
        Entry::Write { pick, seq, write } => {
            let open: Vec<ClientId> = store.sessions().map(|(c, _)| c).collect();
            let client = match open.len() {
                // Mostly an open session; sometimes an id that has none.
                n if n > 0 && *pick < 224 => open[*pick as usize % n],
                _ => u64::from(*pick % 32),
            };
            encode(&Command::Write {
                client,
                seq: u64::from(*seq),
                write: write.clone(),
            })
        }
        Entry::Noop => Vec::new(),
        Entry::Garbage(bytes) => bytes.clone(),
    }
}

/// Applies `entries` after the store's last applied index; returns the answers.
fn run(store: &mut Store, entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|entry| {
            let command = bytes(store, entry);
            store.apply(store.last_applied() + 1, &command)
        })
        .collect()
}

/// What a store's state must satisfy, whatever snapshot it came from.
fn assert_valid(store: &Store) {
    assert!(store.session_count() <= store.max_sessions());
    let mut activities = std::collections::BTreeSet::new();
    for (client, session) in store.sessions() {
        assert!(client >= 1);
        assert!(client <= session.last_activity());
        assert!(session.last_activity() <= store.last_applied());
        assert!(activities.insert(session.last_activity()));
    }
    // Its own snapshot is accepted, and restores the same state.
    let snapshot = store.snapshot();
    let mut again = Store::with_max_sessions(store.max_sessions());
    again
        .restore(&snapshot)
        .expect("a store's own snapshot restores");
    assert_eq!(&again, store);
}

/// Restores `bytes` (a damaged snapshot) into a copy of `store`: refused without a change, or accepted
/// as a valid state; `check` says which beforehand.
fn assert_refused_or_valid(store: &Store, bytes: &[u8]) {
    let checked = store.check(bytes);
    let mut copy = store.clone();
    let restored = copy.restore(bytes);
    assert_eq!(checked.is_ok(), restored.is_ok(), "check and restore agree");
    if restored.is_err() {
        assert_eq!(&copy, store, "a refused snapshot changes nothing");
    } else {
        assert_valid(&copy);
        if copy.last_applied() < u64::MAX - 8 {
            run(&mut copy, &[Entry::Register, Entry::Noop]);
        }
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_restored_store_goes_on_as_the_store_would(
        max in 1..5usize,
        before in prop::collection::vec(entry(), 0..40),
        after in prop::collection::vec(entry(), 0..40),
    ) {
        let mut store = Store::with_max_sessions(max);
        run(&mut store, &before);
        assert_valid(&store);
        let snapshot = store.snapshot();
        let mut restored = Store::with_max_sessions(max);
        restored.restore(&snapshot).unwrap();
        prop_assert_eq!(&restored, &store);
        prop_assert_eq!(restored.snapshot(), snapshot);
        // The rest of the log: the same answers, the same state, the same bytes.
        prop_assert_eq!(run(&mut restored, &after), run(&mut store, &after));
        prop_assert_eq!(&restored, &store);
        prop_assert_eq!(restored.snapshot(), store.snapshot());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused_or_valid(
        max in 1..5usize,
        entries in prop::collection::vec(entry(), 0..24),
    ) {
        let mut store = Store::with_max_sessions(max);
        run(&mut store, &entries);
        let snapshot = store.snapshot();
        // Restored into a store in another state, so that a change would show.
        let mut other = Store::with_max_sessions(max);
        run(&mut other, &[Entry::Register, Entry::Noop]);
        for len in 0..snapshot.len() {
            assert_refused_or_valid(&other, &snapshot[..len]);
        }
        for bit in 0..snapshot.len() * 8 {
            let mut flipped = snapshot.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_refused_or_valid(&other, &flipped);
        }
        let mut longer = snapshot.clone();
        longer.push(0);
        prop_assert!(other.check(&longer).is_err());
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_valid(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut other = Store::with_max_sessions(3);
        run(&mut other, &[Entry::Register]);
        assert_refused_or_valid(&other, &bytes);
        let mut with_format = vec![raft_kv::snapshot::FORMAT];
        with_format.extend(&bytes);
        assert_refused_or_valid(&other, &with_format);
    }

    #[test]
    fn no_command_bytes_make_apply_panic(
        commands in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..32),
    ) {
        let mut store = Store::with_max_sessions(2);
        for (index, command) in (1..).zip(&commands) {
            let answer = store.apply(index, command);
            prop_assert!(raft_kv::decode::<raft_kv::Reply>(&answer).is_ok());
        }
        assert_valid(&store);
    }
}

/// The checks on a decoded snapshot are each needed: hand-made snapshots that decode but hold a state no
/// log produces are refused.
#[test]
fn snapshots_that_decode_but_no_log_produces_are_refused() {
    use raft_kv::SnapshotError;

    // Hand-encoded with the snapshot's layout: format, last applied, data, sessions; a session is its
    // client and (last write: (seq, (answer's variant, swapped)), last activity).
    type RawSession = (u64, (Option<(u64, (u32, bool))>, u64));
    #[derive(serde::Serialize)]
    struct Raw {
        format: u8,
        last_applied: u64,
        data: Vec<(&'static str, &'static str)>,
        sessions: Vec<RawSession>,
    }
    let raw = |data, sessions| Raw {
        format: raft_kv::snapshot::FORMAT,
        last_applied: 10,
        data,
        sessions,
    };
    let store = Store::with_max_sessions(2);
    let check = |raw: Raw| store.check(&encode(&raw));

    // Valid: two sessions, one of which applied a Cas (variant 1) that swapped.
    let valid = raw(
        vec![("a", "1"), ("b", "2")],
        vec![(3, (None, 3)), (4, (Some((1, (1, true))), 9))],
    );
    check(valid).unwrap();

    let cases = [
        raw(vec![("b", "2"), ("a", "1")], vec![]),
        raw(vec![("a", "1"), ("a", "2")], vec![]),
        raw(vec![], vec![(4, (None, 4)), (3, (None, 3))]),
        raw(vec![], vec![(3, (None, 3)), (3, (None, 5))]),
        raw(vec![], vec![(1, (None, 1)), (2, (None, 2)), (3, (None, 3))]),
        raw(vec![], vec![(0, (None, 1))]),
        raw(vec![], vec![(5, (None, 4))]),
        raw(vec![], vec![(5, (None, 11))]),
        raw(vec![], vec![(5, (Some((1, (1, false))), 5))]),
        raw(vec![], vec![(5, (Some((0, (1, false))), 6))]),
        raw(vec![], vec![(3, (None, 6)), (4, (None, 6))]),
    ];
    let expected: [fn(&SnapshotError) -> bool; 11] = [
        |e| matches!(e, SnapshotError::KeyOrder(k) if k == "a"),
        |e| matches!(e, SnapshotError::KeyOrder(k) if k == "a"),
        |e| matches!(e, SnapshotError::ClientOrder(3)),
        |e| matches!(e, SnapshotError::ClientOrder(3)),
        |e| matches!(e, SnapshotError::TooManySessions { count: 3, max: 2 }),
        |e| matches!(e, SnapshotError::Session { client: 0, .. }),
        |e| matches!(e, SnapshotError::Session { client: 5, .. }),
        |e| matches!(e, SnapshotError::Session { client: 5, .. }),
        |e| matches!(e, SnapshotError::Session { client: 5, .. }),
        |e| matches!(e, SnapshotError::Session { client: 5, .. }),
        |e| matches!(e, SnapshotError::Session { client: 4, .. }),
    ];
    for (i, (case, expected)) in cases.into_iter().zip(expected).enumerate() {
        let error = check(case).expect_err(&format!("case {i} is refused"));
        assert!(expected(&error), "case {i}: {error}");
    }
    assert!(matches!(
        store.check(&[raft_kv::snapshot::FORMAT + 1]),
        Err(SnapshotError::Format(_))
    ));
    assert!(matches!(store.check(&[]), Err(SnapshotError::Empty)));
}
