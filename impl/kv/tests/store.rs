//! The store's semantics: operations, sessions (exactly once, stale, expired, eviction), malformed input,
//! and snapshots that keep the sessions.

use raft_kv::{decode, encode, ClientId, Command, Reply, Seq, Store, Write};

fn put(key: &str, value: &str) -> Write {
    Write::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn append(key: &str, arg: &str) -> Write {
    Write::Append {
        key: key.into(),
        arg: arg.into(),
    }
}

fn cas(key: &str, expected: &str, new: &str) -> Write {
    Write::Cas {
        key: key.into(),
        expected: expected.into(),
        new: new.into(),
    }
}

/// A store and the next index to apply at.
struct Log {
    store: Store,
    next: u64,
}

impl Log {
    fn new(max_sessions: usize) -> Log {
        Log {
            store: Store::with_max_sessions(max_sessions),
            next: 1,
        }
    }

    /// Applies `bytes` at the next index through the byte interface, and decodes the answer.
    fn apply_bytes(&mut self, bytes: &[u8]) -> Reply {
        let index = self.next;
        self.next += 1;
        let answer = self.store.apply(index, bytes);
        decode(&answer).expect("every answer is a Reply")
    }

    fn apply(&mut self, command: Command) -> Reply {
        self.apply_bytes(&encode(&command))
    }

    fn register(&mut self) -> ClientId {
        let index = self.next;
        assert_eq!(self.apply(Command::Register), Reply::Registered(index));
        index
    }

    fn write(&mut self, client: ClientId, seq: Seq, write: Write) -> Reply {
        self.apply(Command::Write { client, seq, write })
    }
}

#[test]
fn client_ids_are_the_indexes_of_their_registrations() {
    let mut log = Log::new(8);
    log.apply_bytes(&[]); // a leader's no-op at index 1
    assert_eq!(log.apply(Command::Register), Reply::Registered(2));
    assert_eq!(log.apply(Command::Register), Reply::Registered(3));
    assert_eq!(log.store.session_count(), 2);
    assert_eq!(log.store.last_applied(), 3);
}

#[test]
fn put_append_get() {
    let mut log = Log::new(8);
    let c = log.register();
    assert_eq!(log.store.get("k"), "");
    assert_eq!(log.write(c, 1, append("k", "a")), Reply::Done);
    assert_eq!(log.write(c, 2, append("k", "b")), Reply::Done);
    assert_eq!(log.store.get("k"), "ab");
    assert_eq!(log.write(c, 3, put("k", "x")), Reply::Done);
    assert_eq!(log.write(c, 4, append("k", "y")), Reply::Done);
    assert_eq!(log.store.get("k"), "xy");
    assert_eq!(log.store.get("other"), "");
}

#[test]
fn cas_swaps_only_on_the_expected_value() {
    let mut log = Log::new(8);
    let c = log.register();
    // A missing key's value is "".
    assert_eq!(log.write(c, 1, cas("k", "a", "b")), Reply::Swapped(false));
    assert_eq!(log.store.get("k"), "");
    assert_eq!(log.write(c, 2, cas("k", "", "a")), Reply::Swapped(true));
    assert_eq!(log.store.get("k"), "a");
    assert_eq!(log.write(c, 3, cas("k", "", "z")), Reply::Swapped(false));
    assert_eq!(log.write(c, 4, cas("k", "a", "b")), Reply::Swapped(true));
    assert_eq!(log.store.get("k"), "b");
    assert_eq!(log.write(c, 5, cas("k", "a", "c")), Reply::Swapped(false));
    assert_eq!(log.store.get("k"), "b");
}

#[test]
fn a_repeated_write_is_answered_again_and_applied_once() {
    let mut log = Log::new(8);
    let c = log.register();
    assert_eq!(log.write(c, 1, append("k", "a")), Reply::Done);
    assert_eq!(log.write(c, 1, append("k", "a")), Reply::Done);
    assert_eq!(log.write(c, 1, append("k", "a")), Reply::Done);
    assert_eq!(log.store.get("k"), "a");
    // A Cas's answer is kept too: the retry is told it swapped, though the value no longer matches.
    assert_eq!(log.write(c, 2, cas("k", "a", "b")), Reply::Swapped(true));
    assert_eq!(log.write(c, 2, cas("k", "a", "b")), Reply::Swapped(true));
    assert_eq!(log.store.get("k"), "b");
    assert_eq!(log.store.session(c).unwrap().last_seq(), 2);
}

#[test]
fn gaps_in_sequence_numbers_are_allowed() {
    let mut log = Log::new(8);
    let c = log.register();
    assert_eq!(log.write(c, 3, append("k", "a")), Reply::Done);
    assert_eq!(log.write(c, 10, append("k", "b")), Reply::Done);
    assert_eq!(log.store.get("k"), "ab");
}

#[test]
fn an_older_write_is_stale_and_not_applied() {
    let mut log = Log::new(8);
    let c = log.register();
    assert_eq!(log.write(c, 1, append("k", "a")), Reply::Done);
    assert_eq!(log.write(c, 2, append("k", "b")), Reply::Done);
    assert_eq!(log.write(c, 1, append("k", "a")), Reply::Stale);
    assert_eq!(log.store.get("k"), "ab");
    // Sequence numbers start at 1: 0 is before every write, even in a new session.
    let d = log.register();
    assert_eq!(log.write(d, 0, append("k", "z")), Reply::Stale);
    assert_eq!(log.store.get("k"), "ab");
    assert_eq!(log.store.session(d).unwrap().last_reply(), None);
}

#[test]
fn sessions_are_per_client() {
    let mut log = Log::new(8);
    let c = log.register();
    let d = log.register();
    assert_eq!(log.write(c, 1, append("k", "c")), Reply::Done);
    // The same sequence number from another client is another write.
    assert_eq!(log.write(d, 1, append("k", "d")), Reply::Done);
    assert_eq!(log.store.get("k"), "cd");
}

#[test]
fn a_write_without_a_session_is_refused() {
    let mut log = Log::new(8);
    let c = log.register();
    log.write(c, 1, put("k", "a"));
    // Never registered: an index of a write, a future index, and 0.
    for stranger in [2, 1_000, 0] {
        assert_eq!(log.write(stranger, 1, put("k", "b")), Reply::SessionExpired);
    }
    assert_eq!(log.store.get("k"), "a");
    assert_eq!(log.store.session_count(), 1);
}

#[test]
fn registering_beyond_the_maximum_evicts_the_least_recently_active() {
    let mut log = Log::new(3);
    let a = log.register(); // active at 1
    let b = log.register(); // active at 2
    let c = log.register(); // active at 3
    assert_eq!(log.write(a, 1, append("k", "a")), Reply::Done); // a active at 4
    assert_eq!(log.write(b, 1, append("k", "b")), Reply::Done); // b active at 5
                                                                // c is the oldest now.
    let d = log.register();
    assert_eq!(log.store.session_count(), 3);
    assert!(log.store.session(c).is_none());
    assert_eq!(log.write(c, 1, append("k", "c")), Reply::SessionExpired);
    // A repeated or stale write counts as activity too: a retry shows the client is alive.
    assert_eq!(log.write(a, 1, append("k", "a")), Reply::Done); // a active at 9
    let e = log.register(); // evicts b (5) before d (7) and a (9)
    assert!(log.store.session(b).is_none());
    assert_eq!(log.write(b, 1, append("k", "b")), Reply::SessionExpired);
    for client in [a, d, e] {
        assert!(log.store.session(client).is_some(), "client {client}");
    }
    // An expired session's write that was applied before stays applied once; it is not answered.
    assert_eq!(log.store.get("k"), "ab");
}

#[test]
fn eviction_follows_the_index_of_last_activity_not_registration_order() {
    let mut log = Log::new(2);
    let a = log.register();
    let b = log.register();
    assert_eq!(log.write(b, 1, put("k", "b")), Reply::Done);
    assert_eq!(log.write(a, 1, put("k", "a")), Reply::Done);
    let c = log.register(); // b (3) is older than a (4)
    assert!(log.store.session(a).is_some());
    assert!(log.store.session(b).is_none());
    assert_eq!(log.store.session(c).unwrap().last_activity(), 5);
    assert_eq!(log.store.session(a).unwrap().last_activity(), 4);
}

#[test]
fn the_empty_command_is_a_no_op() {
    let mut log = Log::new(8);
    let c = log.register();
    log.write(c, 1, put("k", "v"));
    let before = log.store.clone();
    assert_eq!(log.apply_bytes(&[]), Reply::Done);
    assert_eq!(log.store.data(), before.data());
    assert_eq!(
        log.store.sessions().collect::<Vec<_>>(),
        before.sessions().collect::<Vec<_>>()
    );
    assert_eq!(log.store.last_applied(), before.last_applied() + 1);
}

#[test]
fn malformed_bytes_are_answered_malformed_and_change_nothing() {
    let mut log = Log::new(8);
    let c = log.register();
    log.write(c, 1, put("k", "v"));
    let valid = encode(&Command::Write {
        client: c,
        seq: 2,
        write: put("k", "w"),
    });
    let mut trailing = valid.clone();
    trailing.push(0);
    let cases: Vec<Vec<u8>> = vec![
        vec![0xff],                      // no such variant
        vec![1],                         // a write cut short
        valid[..valid.len() - 1].into(), // the last byte missing
        trailing,                        // a byte too many
        vec![0x80; 12],                  // an endless varint
    ];
    for bytes in cases {
        let before = log.store.clone();
        let reply = log.apply_bytes(&bytes);
        assert!(
            matches!(reply, Reply::Malformed(_)),
            "{bytes:?} answered {reply:?}"
        );
        assert_eq!(log.store.data(), before.data());
        assert_eq!(log.store.session(c), before.session(c));
    }
    // The valid one is applied.
    assert_eq!(log.apply_bytes(&valid), Reply::Done);
    assert_eq!(log.store.get("k"), "w");
}

#[test]
fn a_duplicate_after_a_restore_is_still_detected() {
    let mut log = Log::new(8);
    let c = log.register();
    assert_eq!(log.write(c, 1, append("k", "a")), Reply::Done);
    assert_eq!(log.write(c, 2, cas("k", "a", "ab")), Reply::Swapped(true));
    let snapshot = log.store.snapshot();

    let mut restored = Log::new(8);
    restored.store.restore(&snapshot).unwrap();
    restored.next = log.next;
    assert_eq!(restored.store, log.store);
    assert_eq!(restored.store.last_applied(), 3);
    // The retry of seq 2 gets the answer it had; seq 1 is stale; neither is applied again.
    assert_eq!(
        restored.write(c, 2, cas("k", "a", "ab")),
        Reply::Swapped(true)
    );
    assert_eq!(restored.write(c, 1, append("k", "a")), Reply::Stale);
    assert_eq!(restored.store.get("k"), "ab");
    assert_eq!(restored.write(c, 3, append("k", "c")), Reply::Done);
    assert_eq!(restored.store.get("k"), "abc");
}

#[test]
fn a_restore_replaces_the_whole_state() {
    let mut old = Log::new(8);
    let c = old.register();
    old.write(c, 1, put("a", "1"));
    let snapshot = old.store.snapshot();

    let mut log = Log::new(8);
    for _ in 0..5 {
        log.register();
    }
    log.store.restore(&snapshot).unwrap();
    assert_eq!(log.store, old.store);
    assert_eq!(log.store.session_count(), 1);
}

#[test]
fn a_refused_snapshot_changes_nothing() {
    let mut log = Log::new(8);
    let c = log.register();
    log.write(c, 1, put("a", "1"));
    let before = log.store.clone();
    assert!(log.store.restore(&[]).is_err());
    assert!(log.store.restore(&[2, 0, 0, 0]).is_err());
    assert!(log.store.restore(&[0xff; 40]).is_err());
    assert_eq!(log.store, before);
}

#[test]
fn a_snapshot_with_more_sessions_than_the_store_keeps_is_refused() {
    let mut big = Log::new(4);
    for _ in 0..3 {
        big.register();
    }
    let snapshot = big.store.snapshot();
    let small = Store::with_max_sessions(2);
    assert!(matches!(
        small.check(&snapshot),
        Err(raft_kv::SnapshotError::TooManySessions { count: 3, max: 2 })
    ));
    assert!(Store::with_max_sessions(3).check(&snapshot).is_ok());
}

#[test]
#[should_panic(expected = "applied after")]
#[cfg(debug_assertions)]
fn applying_an_index_again_is_a_bug() {
    let mut store = Store::new();
    store.apply(1, &[]);
    store.apply(1, &[]);
}
