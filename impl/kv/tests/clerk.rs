//! The clerk's contract, one response at a time: what it sends where, the same sequence number on every
//! retry, leader hints and round-robin, and no success without a definite answer.

use raft_kv::{
    Busy, Clerk, ClientId, Command, Failure, Op, Output, Progress, Reply, Request, Response, Seq,
};

fn committed(reply: Reply) -> Option<Response> {
    Some(Response::Committed(reply))
}

/// A clerk of `servers` servers with `op` begun, registered as `client` (through server 0) if `op` is a
/// write (a get needs no session).
fn registered(servers: usize, client: ClientId, op: Op) -> Clerk {
    let mut clerk = Clerk::new(servers);
    let write = matches!(op, Op::Write(_));
    clerk.begin(op).unwrap();
    if !write {
        return clerk;
    }
    assert_eq!(
        clerk.next_request(),
        Some((0, Request::Propose(Command::Register)))
    );
    assert_eq!(
        clerk.on_reply(0, committed(Reply::Registered(client))),
        Progress::Pending
    );
    clerk
}

/// The write the clerk sends: to which server, with which client id and sequence number.
fn sent_write(clerk: &mut Clerk) -> (usize, ClientId, Seq) {
    match clerk.next_request() {
        Some((server, Request::Propose(Command::Write { client, seq, .. }))) => {
            (server, client, seq)
        }
        other => panic!("expected a write, the clerk sends {other:?}"),
    }
}

#[test]
fn a_write_registers_first_then_sends_with_sequence_number_1() {
    let mut clerk = registered(3, 9, Op::put("k", "v"));
    assert_eq!(clerk.client(), Some(9));
    match clerk.next_request() {
        Some((0, Request::Propose(Command::Write { client, seq, write }))) => {
            assert_eq!((client, seq), (9, 1));
            assert_eq!(Op::Write(write), Op::put("k", "v"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        clerk.on_reply(0, committed(Reply::Done)),
        Progress::Done(Output::Ok)
    );
    assert_eq!(clerk.op(), None);
    assert_eq!(clerk.next_request(), None);
}

#[test]
fn every_retry_of_a_write_carries_the_same_sequence_number() {
    let mut clerk = registered(3, 9, Op::append("k", "a"));
    // Timeout, unavailable, lost, unknown, not leader: each time the same write, with sequence number 1.
    let failures = [
        None,
        Some(Response::Unavailable),
        Some(Response::Lost),
        Some(Response::Unknown),
        Some(Response::NotLeader(None)),
        Some(Response::NotLeader(Some(0))),
    ];
    for failure in failures {
        let (server, client, seq) = sent_write(&mut clerk);
        assert_eq!((client, seq), (9, 1), "after {failure:?}");
        assert_eq!(clerk.on_reply(server, failure), Progress::Pending);
    }
    let (server, _, seq) = sent_write(&mut clerk);
    assert_eq!(seq, 1);
    assert_eq!(
        clerk.on_reply(server, committed(Reply::Done)),
        Progress::Done(Output::Ok)
    );
    // The next write has the next number, and keeps it through its retries.
    clerk.begin(Op::cas("k", "a", "b")).unwrap();
    for _ in 0..3 {
        let (server, _, seq) = sent_write(&mut clerk);
        assert_eq!(seq, 2);
        clerk.on_reply(server, None);
    }
    let (server, _, _) = sent_write(&mut clerk);
    assert_eq!(
        clerk.on_reply(server, committed(Reply::Swapped(false))),
        Progress::Done(Output::Swapped(false))
    );
    assert_eq!(clerk.seq(), 3);
}

#[test]
fn a_proposal_of_unknown_fate_is_sent_again_to_the_same_server() {
    let mut clerk = registered(3, 9, Op::put("k", "v"));
    for response in [Response::Lost, Response::Unknown] {
        let (server, _, _) = sent_write(&mut clerk);
        assert_eq!(server, 0);
        clerk.on_reply(server, Some(response));
    }
    assert_eq!(sent_write(&mut clerk).0, 0);
}

#[test]
fn timeouts_go_round_robin() {
    let mut clerk = Clerk::new(3);
    clerk.begin(Op::get("k")).unwrap();
    let mut visited = Vec::new();
    for _ in 0..7 {
        let (server, request) = clerk.next_request().unwrap();
        assert_eq!(request, Request::Read { key: "k".into() });
        visited.push(server);
        let response = if server == 1 {
            Some(Response::Unavailable)
        } else {
            None
        };
        assert_eq!(clerk.on_reply(server, response), Progress::Pending);
    }
    assert_eq!(visited, [0, 1, 2, 0, 1, 2, 0]);
}

#[test]
fn leader_hints_are_followed_and_useless_ones_go_round_robin() {
    let mut clerk = Clerk::new(5);
    clerk.begin(Op::get("k")).unwrap();
    let mut step = |hint: Option<usize>| {
        let (server, _) = clerk.next_request().unwrap();
        clerk.on_reply(server, Some(Response::NotLeader(hint)));
        clerk.leader()
    };
    assert_eq!(step(Some(3)), 3); // named: go there
    assert_eq!(step(Some(1)), 1);
    assert_eq!(step(None), 2); // unknown: the next in turn
    assert_eq!(step(Some(2)), 3); // itself: the next in turn
    assert_eq!(step(Some(5)), 4); // no such server: the next in turn
    assert_eq!(step(Some(99)), 0);
    assert_eq!(step(Some(4)), 4);
    let (server, _) = clerk.next_request().unwrap();
    assert_eq!(server, 4);
    assert_eq!(
        clerk.on_reply(4, Some(Response::Value("v".into()))),
        Progress::Done(Output::Value("v".into()))
    );
    // The leader found is kept for the next operation.
    clerk.begin(Op::get("j")).unwrap();
    assert_eq!(clerk.next_request().unwrap().0, 4);
}

#[test]
fn gets_need_no_session() {
    let mut clerk = Clerk::new(1);
    clerk.begin(Op::get("k")).unwrap();
    assert_eq!(
        clerk.next_request(),
        Some((0, Request::Read { key: "k".into() }))
    );
    assert_eq!(
        clerk.on_reply(0, Some(Response::Value(String::new()))),
        Progress::Done(Output::Value(String::new()))
    );
    assert_eq!(clerk.client(), None);
    assert_eq!(clerk.seq(), 1);
}

#[test]
fn session_expired_is_a_failure_never_a_success() {
    let mut clerk = registered(3, 9, Op::append("k", "a"));
    let (server, _, _) = sent_write(&mut clerk);
    clerk.on_reply(server, None); // the write may have been applied
    let (server, _, seq) = sent_write(&mut clerk);
    assert_eq!(seq, 1);
    assert_eq!(
        clerk.on_reply(server, committed(Reply::SessionExpired)),
        Progress::Failed(Failure::SessionExpired)
    );
    assert_eq!(clerk.op(), None);
    assert_eq!(clerk.client(), None);
    // The next write registers anew and starts again at 1 in the new session.
    clerk.begin(Op::put("k", "b")).unwrap();
    let (server, request) = clerk.next_request().unwrap();
    assert_eq!(request, Request::Propose(Command::Register));
    clerk.on_reply(server, committed(Reply::Registered(20)));
    let (_, client, seq) = sent_write(&mut clerk);
    assert_eq!((client, seq), (20, 1));
}

#[test]
fn stale_and_malformed_are_failures() {
    let mut clerk = registered(1, 9, Op::put("k", "v"));
    sent_write(&mut clerk);
    assert_eq!(
        clerk.on_reply(0, committed(Reply::Stale)),
        Progress::Failed(Failure::Stale)
    );
    assert_eq!(clerk.client(), None);

    let mut clerk = registered(1, 9, Op::put("k", "v"));
    sent_write(&mut clerk);
    assert_eq!(
        clerk.on_reply(0, committed(Reply::Malformed("why".into()))),
        Progress::Failed(Failure::Malformed("why".into()))
    );
    assert_eq!(clerk.client(), Some(9));
    assert_eq!(clerk.seq(), 2, "a write's number is not used again");
}

#[test]
fn responses_that_do_not_fit_the_request_are_failures() {
    // A put answered as a Cas, a Cas as a put, a get as a write, a write with a value, a registration
    // with a write's answer: none of them is taken for success.
    let cases = [
        (Op::put("k", "v"), Response::Committed(Reply::Swapped(true))),
        (Op::cas("k", "", "v"), Response::Committed(Reply::Done)),
        (Op::get("k"), Response::Committed(Reply::Done)),
        (Op::append("k", "v"), Response::Value("v".into())),
        (Op::put("k", "v"), Response::Committed(Reply::Registered(3))),
    ];
    for (op, response) in cases {
        let mut clerk = registered(1, 9, op.clone());
        clerk.next_request();
        let progress = clerk.on_reply(0, Some(response.clone()));
        assert_eq!(
            progress,
            Progress::Failed(Failure::Protocol {
                server: 0,
                response
            }),
            "{op:?}"
        );
    }
    let mut clerk = Clerk::new(1);
    clerk.begin(Op::put("k", "v")).unwrap();
    clerk.next_request(); // a Register
    assert!(matches!(
        clerk.on_reply(0, committed(Reply::Done)),
        Progress::Failed(Failure::Protocol { .. })
    ));
    assert_eq!(clerk.client(), None);
}

#[test]
fn a_response_no_request_awaits_changes_nothing() {
    let mut clerk = registered(3, 9, Op::put("k", "v"));
    let before = clerk.clone();
    // From a server the clerk did not send to, and before it sent anything.
    assert_eq!(clerk.on_reply(2, committed(Reply::Done)), Progress::Pending);
    assert_eq!(clerk, before);
    let (server, _, _) = sent_write(&mut clerk);
    assert_eq!(
        clerk.on_reply(server + 1, committed(Reply::Done)),
        Progress::Pending
    );
    assert!(clerk.op().is_some());
    // A second response from the server answered already.
    assert_eq!(
        clerk.on_reply(server, committed(Reply::Done)),
        Progress::Done(Output::Ok)
    );
    assert_eq!(
        clerk.on_reply(server, committed(Reply::Done)),
        Progress::Pending
    );
    // With nothing in progress.
    let idle = Clerk::new(3);
    let mut clerk = idle.clone();
    assert_eq!(clerk.on_reply(0, None), Progress::Pending);
    assert_eq!(clerk, idle);
}

#[test]
fn one_operation_at_a_time() {
    let mut clerk = Clerk::new(3);
    clerk.begin(Op::get("a")).unwrap();
    assert_eq!(clerk.begin(Op::get("b")), Err(Busy(Op::get("b"))));
    assert_eq!(clerk.op(), Some(&Op::get("a")));
}

#[test]
fn an_abandoned_write_gives_up_its_sequence_number() {
    let mut clerk = registered(3, 9, Op::put("k", "v"));
    let (server, _, seq) = sent_write(&mut clerk);
    assert_eq!(seq, 1);
    assert_eq!(clerk.abandon(), Some(Op::put("k", "v")));
    // A late response to the abandoned write is no answer to anything.
    assert_eq!(
        clerk.on_reply(server, committed(Reply::Done)),
        Progress::Pending
    );
    clerk.begin(Op::put("k", "w")).unwrap();
    assert_eq!(sent_write(&mut clerk).2, 2);
    // An abandoned get costs no number.
    let mut clerk = registered(3, 9, Op::get("k"));
    clerk.abandon();
    assert_eq!(clerk.seq(), 1);
}
