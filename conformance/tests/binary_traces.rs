//! The binary encoding of traces (`Trace::write_binary`, `specs/trace-format.md`) carries what JSON Lines
//! carries: every regression trace and every perturbed trace reads back equal and gets the same verdict from
//! both, and a binary file cut or edited at random is read or refused, never a panic. (`tracecheck` on
//! binary files: `conformance_tracecheck_cli.rs`.)

use std::io::BufReader;
use std::path::Path;

use conformance::lab::{find, run_traced};
use conformance::trace::perturb::{perturb, Kind};
use conformance::trace::{check, check_streamed, Mismatch, ReadError, Summary, Trace};
use rand::{Rng, SeedableRng};

fn traces_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/traces"))
}

fn json(trace: &Trace) -> Vec<u8> {
    let mut bytes = Vec::new();
    trace.write(&mut bytes).unwrap();
    bytes
}

fn binary(trace: &Trace) -> Vec<u8> {
    let mut bytes = Vec::new();
    trace.write_binary(&mut bytes).unwrap();
    bytes
}

/// A verdict as a value that two checks can be compared by.
fn verdict(
    result: Result<Summary, Box<Mismatch>>,
) -> Result<(usize, usize, usize), (usize, String)> {
    result
        .map(|s| (s.events, s.actions, s.applies))
        .map_err(|m| (m.event, m.reason))
}

/// `trace` written in each encoding reads back equal to it, and is checked the same, whole and streamed.
fn same_in_both_encodings(
    name: &str,
    trace: &Trace,
) -> Result<(usize, usize, usize), (usize, String)> {
    let expected = verdict(check(trace));
    for (encoding, bytes) in [("JSON", json(trace)), ("binary", binary(trace))] {
        let read =
            Trace::read(bytes.as_slice()).unwrap_or_else(|e| panic!("{name}, {encoding}: {e}"));
        assert!(
            read == *trace,
            "{name}: the {encoding} trace reads back different"
        );
        let (_, streamed) = check_streamed(bytes.as_slice()).unwrap();
        match (&expected, streamed) {
            (Ok(whole), Some(s)) => {
                assert_eq!(
                    *whole,
                    (s.events, s.actions, s.applies),
                    "{name}, {encoding}"
                )
            }
            (Err(_), None) => {}
            (whole, streamed) => {
                panic!("{name}, {encoding}: {whole:?} whole, {streamed:?} streamed")
            }
        }
    }
    expected
}

#[test]
fn conformance_regression_traces_read_the_same_from_binary() {
    let mut seen = 0;
    for entry in std::fs::read_dir(traces_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let trace = Trace::read(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        same_in_both_encodings(&path.display().to_string(), &trace).ok();
        // The binary encoding is the smaller.
        assert!(binary(&trace).len() < json(&trace).len());
        seen += 1;
    }
    assert!(seen >= 5, "{seen} traces");
}

/// Every kind of perturbation survives both encodings: a field the binary encoding lost or garbled would
/// read back different, or change the verdict.
#[test]
fn conformance_perturbed_traces_read_the_same_from_binary() {
    let (outcome, good) = run_traced(find("snapshot_install_crash_2d").unwrap(), 1, true);
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert!(same_in_both_encodings("the good trace", &good).is_ok());
    let mut rejected = 0;
    for kind in Kind::ALL {
        for seed in 0..4 {
            let Some(bad) = perturb(&good, kind, seed) else {
                continue;
            };
            if same_in_both_encodings(&format!("{kind:?}"), &bad).is_err() {
                rejected += 1;
            }
        }
    }
    assert!(
        rejected >= 4 * Kind::ALL.len() / 2,
        "{rejected} perturbed traces rejected"
    );
}

/// The comparison above bites: one byte edited in a binary record (a term) reads back as another trace,
/// with another verdict.
#[test]
fn conformance_an_edited_binary_record_reads_back_different() {
    let good = std::fs::read(traces_dir().join("persist1-2c-seed1.jsonl")).unwrap();
    let trace = Trace::read(good.as_slice()).unwrap();
    let mut bytes = binary(&trace);
    // Event 1 is node 0's first `Start`. Event 0 (`Disconnect`) before it takes 4 bytes of length, 8 of
    // time, the variant's tag and the node (8 bytes); then the `Start`'s length, time, tag, node (8 bytes)
    // and `restart` (1 byte), and its state's term.
    let records = bytes.len() - binary_records_len(&trace);
    let term = records + (4 + 8 + 1 + 8) + (4 + 8 + 1 + 8 + 1);
    assert_eq!(bytes[term..term + 8], [0; 8]);
    bytes[term] = 5;
    let edited = Trace::read(bytes.as_slice()).unwrap();
    assert!(edited != trace);
    assert!(verdict(check(&trace)).is_ok());
    assert!(verdict(check(&edited)).is_err());
}

/// The bytes of `trace`'s binary records (without the first two lines).
fn binary_records_len(trace: &Trace) -> usize {
    let bytes = binary(trace);
    let header = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(1)
        .unwrap()
        .0;
    bytes.len() - header - 1
}

#[test]
fn conformance_cut_and_edited_binary_traces_never_panic_the_checker() {
    let good = std::fs::read(traces_dir().join("persist1-2c-seed1.jsonl")).unwrap();
    let trace = Trace::read(good.as_slice()).unwrap();
    let bytes = binary(&trace);
    let records = bytes.len() - binary_records_len(&trace);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let (mut refused, mut rejected) = (0, 0);
    for round in 0..600 {
        let mut edited = bytes.clone();
        if round % 5 == 0 {
            edited.truncate(rng.random_range(records..bytes.len()));
        } else {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(records..edited.len());
                edited[at] ^= 1 << rng.random_range(0..8);
            }
        }
        match Trace::read(edited.as_slice()) {
            Ok(read) => {
                if read != trace && check(&read).is_err() {
                    rejected += 1;
                }
            }
            Err(ReadError::BinaryRecord { event, .. }) => {
                assert!(event < trace.records.len());
                refused += 1;
            }
            Err(e) => panic!("round {round}: {e}"),
        }
    }
    // Most edits land in numbers, which read; the rest are refused with the event they broke.
    assert!(
        refused > 100 && rejected > 100,
        "{refused} refused, {rejected} rejected"
    );
}
