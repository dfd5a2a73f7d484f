//! What a session costs, measured: the memory a store holds for [`DEFAULT_MAX_SESSIONS`] sessions (each
//! with a write's answer kept), counted by the allocator, and the bytes of its snapshot. The store's
//! documentation quotes these figures; this test fails if they grow past them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use raft_kv::{Command, Reply, Store, Write, DEFAULT_MAX_SESSIONS};

/// The system allocator, counting the bytes in use.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is kept beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_session_costs_about_100_bytes_of_memory_and_at_most_33_of_snapshot() {
    let sessions = DEFAULT_MAX_SESSIONS as u64;
    let before = IN_USE.load(Ordering::Relaxed);
    let mut store = Store::new();
    for index in 1..=sessions {
        assert_eq!(
            store.apply_command(index, Command::Register),
            Reply::Registered(index)
        );
    }
    // Each client's first write, a Cas that does not swap: its answer is kept, the data stays empty.
    for client in 1..=sessions {
        let cas = Write::Cas {
            key: String::new(),
            expected: "x".into(),
            new: String::new(),
        };
        let command = Command::Write {
            client,
            seq: u64::MAX,
            write: cas,
        };
        let reply = store.apply_command(sessions + client, command);
        assert_eq!(reply, Reply::Swapped(false));
    }
    assert_eq!(store.session_count(), DEFAULT_MAX_SESSIONS);
    assert!(store.data().is_empty());
    let memory = IN_USE.load(Ordering::Relaxed) - before;
    // The largest ids, sequence numbers and activity indexes (varints of 10 bytes) would give 33 bytes a
    // session; these, with ids and indexes below 2^21, give fewer.
    let snapshot = store.snapshot().len();
    println!(
        "{} sessions: {memory} bytes of memory ({} a session), {snapshot} bytes of snapshot ({} a session)",
        sessions,
        memory as u64 / sessions,
        snapshot as u64 / sessions,
    );
    assert!(memory as u64 <= 110 * sessions, "{memory} bytes");
    assert!(snapshot as u64 <= 33 * sessions, "{snapshot} bytes");
}
