//! The trace checker must bite: good traces of lab runs, perturbed one field or one event at a time, are
//! rejected (`specs/trace-format.md` lists the perturbations that are legal behaviours).

use conformance::lab::{find, run_traced};
use conformance::schedule::{op, run_schedule, ROLLS};
use conformance::trace::format::Event;
use conformance::trace::perturb::{perturb, Kind};
use conformance::trace::{check, check_full, Trace};
use rand::{Rng, SeedableRng};

/// Good traces from tests that together elect, replicate, back up, crash, restart, lose messages and
/// install snapshots; and one of a random schedule with reads begun, confirmed and handed out (the Lab 2
/// tests make none).
fn good_traces() -> Vec<Trace> {
    let mut traces: Vec<Trace> = [
        "basic_agree_2b",
        "backup_2b",
        "persist2_2c",
        "figure8_unreliable_2c",
        "snapshot_install_crash_2d",
    ]
    .iter()
    .map(|name| {
        let (outcome, trace) = run_traced(find(name).unwrap(), 1, true);
        assert!(outcome.failure.is_none(), "{name}: {:?}", outcome.failure);
        check(&trace).unwrap_or_else(|m| panic!("{name}: the good trace fails: {m}"));
        trace
    })
    .collect();
    traces.push(schedule_with_reads());
    traces
}

/// The first random schedule (of a seeded sequence) whose trace hands out three reads.
fn schedule_with_reads() -> Trace {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    loop {
        let ops: Vec<_> = (0..300)
            .map(|_| op(rng.random_range(0..ROLLS), rng.random(), rng.random()))
            .collect();
        let trace = run_schedule(3, &ops, None);
        let reads = trace
            .records
            .iter()
            .filter(|r| matches!(r.ev, Event::Read { .. }))
            .count();
        if reads >= 3 {
            check(&trace).unwrap_or_else(|m| panic!("the schedule's good trace fails: {m}"));
            return trace;
        }
    }
}

#[test]
fn conformance_checker_rejects_perturbed_traces() {
    let traces = good_traces();
    let per_kind = 100;
    let (mut tried, mut rejected) = (0, 0);
    let mut accepted_by_kind = Vec::new();
    for kind in Kind::ALL {
        let (mut kind_tried, mut kind_rejected) = (0, 0);
        for (t, trace) in traces.iter().enumerate() {
            for seed in 0..per_kind / traces.len() as u64 {
                let Some(bad) = perturb(trace, kind, seed * 31 + t as u64) else {
                    continue;
                };
                kind_tried += 1;
                if check(&bad).is_err() {
                    kind_rejected += 1;
                } else {
                    println!(
                        "  accepted: {kind:?} of trace {t} with seed {}",
                        seed * 31 + t as u64
                    );
                }
            }
        }
        println!("{kind:?}: {kind_rejected}/{kind_tried} rejected");
        assert!(kind_tried > 0, "{kind:?} found no place to perturb");
        if kind_rejected < kind_tried {
            accepted_by_kind.push((kind, kind_tried - kind_rejected));
        }
        tried += kind_tried;
        rejected += kind_rejected;
    }
    let rate = rejected as f64 / tried as f64;
    println!(
        "rejected {rejected} of {tried} perturbed traces ({:.1} %); accepted: {accepted_by_kind:?}",
        rate * 100.0
    );
    assert!(
        rate >= 0.99,
        "only {:.1} % rejected: {accepted_by_kind:?}",
        rate * 100.0
    );
}

#[test]
fn conformance_incremental_property_checks_agree() {
    // The checker evaluates the pairwise and per-server properties only where a step changed something; the
    // full evaluation after every step must give the same verdicts, on good traces and on broken ones.
    for trace in good_traces() {
        assert_eq!(check(&trace), check_full(&trace));
        for (seed, kind) in Kind::ALL.iter().enumerate() {
            if let Some(bad) = perturb(&trace, *kind, seed as u64) {
                assert_eq!(check(&bad), check_full(&bad), "{kind:?}");
            }
        }
    }
}

#[test]
fn conformance_checking_as_it_runs_agrees_with_checking_the_trace() {
    use conformance::lab::run_checked;
    use conformance::trace::Recorder;
    // On good lab runs: the same summary.
    for name in ["basic_agree_2b", "snapshot_install_crash_2d"] {
        let test = find(name).unwrap();
        let (_, trace) = run_traced(test, 2, true);
        let (outcome, online) = run_checked(test, 2, true);
        assert!(outcome.failure.is_none());
        assert_eq!(online.checked(), Some(&check(&trace).unwrap()), "{name}");
    }
    // On broken traces, event by event through a checking recorder: the same first bad event.
    let traces = good_traces();
    for (seed, kind) in Kind::ALL.iter().enumerate() {
        let bad = traces
            .iter()
            .skip(1)
            .find_map(|trace| perturb(trace, *kind, seed as u64))
            .unwrap();
        let recorder = Recorder::checking(bad.header.nodes, "perturbed").unwrap();
        recorder.set_features(bad.header.features());
        for r in &bad.records {
            recorder.set_time(r.t);
            recorder.record(r.ev.clone());
        }
        let expected = check(&bad).map_err(|m| m.event);
        let got = recorder.verdict().unwrap();
        assert_eq!(
            got.map(|s| s.events),
            expected.map(|s| s.events),
            "{kind:?}"
        );
    }
}

/// A leader that sent TimeoutNow refuses proposals in that term, and the checker lets it (the model takes
/// the hand-over as one step and has no such window); the same refusal without the TimeoutNow is caught.
/// The good trace is the first random schedule (with transfers, of nodes with PreVote and CheckQuorum)
/// where a TimeoutNow was lost and its leader then refused a proposal; the bad one is that trace with the
/// transfer and its TimeoutNow taken out.
#[test]
fn conformance_a_proposal_refused_by_a_leader_is_caught_unless_it_hands_over() {
    use conformance::schedule::{random, run_schedule_with, schedule_config, ROLLS_WITH_TRANSFER};
    use conformance::trace::format::{Body, MsgId};
    let config = raft::Config {
        pre_vote: true,
        check_quorum: true,
        ..schedule_config()
    };
    let found = (0..5000u64).find_map(|seed| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let trace = run_schedule_with(
            3,
            &random(&mut rng, 300, ROLLS_WITH_TRANSFER),
            None,
            config.clone(),
        );
        // A transfer that sent TimeoutNow, the TimeoutNow lost, then a refused proposal at that node in the
        // same term, with no other step of that node in between.
        trace.records.iter().enumerate().find_map(|(k, r)| {
            let Event::Transfer {
                node, state, sent, ..
            } = &r.ev
            else {
                return None;
            };
            let now = sent
                .iter()
                .find(|m| matches!(m.m, Body::TimeoutNow { .. }))?;
            let id = MsgId {
                from: *node,
                seq: now.seq,
            };
            let mut lost = false;
            for later in &trace.records[k + 1..] {
                match &later.ev {
                    Event::Drop { id: x } if *x == id => lost = true,
                    Event::Propose {
                        node: n,
                        accepted: None,
                        state: s,
                        ..
                    } if n == node && lost && s.term == state.term => {
                        return Some((trace.clone(), k, id));
                    }
                    ev if ev.node() == Some(*node) && ev.state().is_some() => return None,
                    _ => {}
                }
            }
            None
        })
    });
    let (good, k, id) = found.expect("a schedule where a lost TimeoutNow is followed by a refusal");
    check(&good).unwrap_or_else(|m| panic!("the good trace fails: {m}"));
    let mut bad = good.clone();
    bad.records.remove(k);
    bad.records
        .retain(|r| !matches!(&r.ev, Event::Send { id: x } | Event::Drop { id: x } if *x == id));
    let mismatch = check(&bad).expect_err("a refusal without a hand-over is caught");
    assert!(
        mismatch
            .reason
            .contains("a leader refused a client command"),
        "{mismatch}"
    );
}
