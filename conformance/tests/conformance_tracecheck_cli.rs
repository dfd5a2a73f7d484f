//! The `tracecheck` command as a person or a script uses it: its last line and its exit status.

use std::path::Path;
use std::process::Command;

fn traces() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/traces"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tracecheck"))
        .args(args)
        .output()
        .expect("tracecheck runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn conformance_tracecheck_ok_mismatch_and_bad_files() {
    let good = traces().join("persist1-2c-seed1.jsonl");
    let (code, out, _) = run(&[good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("result: OK events=518 nodes=3 secs="),
        "{last}"
    );

    let bad = traces().join("broken-vote-not-durable.jsonl");
    let svg = std::env::temp_dir().join(format!("tracecheck-{}.svg", std::process::id()));
    let (code, out, _) = run(&[bad.to_str().unwrap(), "--svg", svg.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("differences (model vs implementation)") || out.contains("needs term"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("result: MISMATCH event=14 "),
        "{out}"
    );
    // Without a picture the trace is checked as it is read; the refusal is reported the same way.
    let (code, streamed, _) = run(&[bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{streamed}");
    assert_eq!(streamed.lines().last(), out.lines().last(), "{streamed}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("fill=\"#fdd\""));
    let _ = std::fs::remove_file(&svg);

    let (code, _, err) = run(&["no-such-trace.jsonl"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open no-such-trace.jsonl"), "{err}");

    let v2 = std::env::temp_dir().join(format!("tracecheck-v2-{}.jsonl", std::process::id()));
    std::fs::write(
        &v2,
        "{\"format\":\"raft-trace\",\"version\":2,\"nodes\":3}\n",
    )
    .unwrap();
    let (code, _, err) = run(&[v2.to_str().unwrap()]);
    let _ = std::fs::remove_file(&v2);
    assert_eq!(code, 2);
    assert!(
        err.contains("trace format version 2, but this checker reads version 1"),
        "{err}"
    );

    let (code, _, err) = run(&["--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn conformance_labtest_check_prints_its_totals_and_writes_traces() {
    let dir = std::env::temp_dir().join(format!("labtest-traces-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_labtest"))
        .args(["-n", "2", "-j", "1", "--check", "TestBasicAgree2B"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Invalid"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("total: runs=2 failed=0 invalid=0 unchecked=0 events=")
            && last.contains(" wall="),
        "{last}"
    );
    // Without --check, --trace-dir writes every run's trace, in either encoding, and tracecheck accepts it.
    for (flag, file) in [
        (None, "TestBackup2B-3.jsonl"),
        (Some("--binary"), "TestBackup2B-3.rtb"),
    ] {
        let dir_arg = dir.to_str().unwrap();
        let mut args = vec!["-n", "1", "-s", "3", "--trace-dir", dir_arg, "backup_2b"];
        args.extend(flag);
        let out = Command::new(env!("CARGO_BIN_EXE_labtest"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success());
        let trace = dir.join(file);
        let binary = std::fs::read(&trace)
            .unwrap()
            .starts_with(b"#raft-trace binary\n");
        assert_eq!(binary, flag.is_some(), "{file}");
        let (code, stdout, _) = run(&[trace.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The summary prints only what the checker measures. It used to print "ambiguous events: 0", a field that
/// nothing ever counted: matching is a lookup (messages by name, values by digest, the composition read off
/// the step), so there is no ambiguity to count, and a constant must not pass for a measurement.
#[test]
fn conformance_tracecheck_prints_no_unmeasured_figure() {
    let good = traces().join("persist1-2c-seed1.jsonl");
    let (code, out, _) = run(&[good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("model actions applied, by kind:"), "{out}");
    assert!(!out.to_lowercase().contains("ambiguous"), "{out}");
}

/// Checking a trace as it is read finds what checking it whole finds: the same summary for a good trace, a
/// refusal for a bad one.
#[test]
fn conformance_a_streamed_check_agrees_with_the_whole_check() {
    use conformance::trace::{check, check_streamed, Trace};
    let open =
        |name: &str| std::io::BufReader::new(std::fs::File::open(traces().join(name)).unwrap());
    let good = "persist1-2c-seed1.jsonl";
    let whole = check(&Trace::read(open(good)).unwrap()).unwrap();
    let (header, streamed) = check_streamed(open(good)).unwrap();
    assert_eq!(header.nodes, 3);
    let streamed = streamed.expect("a good trace checks");
    assert_eq!(
        (
            streamed.events,
            streamed.actions,
            streamed.applies,
            streamed.action_counts
        ),
        (
            whole.events,
            whole.actions,
            whole.applies,
            whole.action_counts
        )
    );
    let bad = "broken-vote-not-durable.jsonl";
    assert!(check(&Trace::read(open(bad)).unwrap()).is_err());
    assert!(check_streamed(open(bad)).unwrap().1.is_none());
}

/// The verdict line without its time.
fn last_line(out: &str) -> String {
    let last = out.lines().last().unwrap_or_default();
    last.split(" secs=").next().unwrap().to_string()
}

#[test]
fn conformance_tracecheck_converts_and_checks_binary_traces() {
    let dir = std::env::temp_dir().join(format!("binary-traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["persist1-2c-seed1.jsonl", "broken-vote-not-durable.jsonl"] {
        let original = traces().join(name);
        let rtb = dir.join(name.replace(".jsonl", ".rtb"));
        let back = dir.join(name);
        let (code, json_out, _) = run(&[
            original.to_str().unwrap(),
            "--write-binary",
            rtb.to_str().unwrap(),
        ]);
        assert!(code == 0 || code == 1, "{json_out}");
        let (binary_code, binary_out, _) = run(&[
            rtb.to_str().unwrap(),
            "--write-json",
            back.to_str().unwrap(),
        ]);
        assert_eq!(
            (binary_code, last_line(&binary_out)),
            (code, last_line(&json_out))
        );
        // Streamed, as a file is checked without a flag.
        let (streamed_code, streamed_out, _) = run(&[rtb.to_str().unwrap()]);
        assert_eq!(
            (streamed_code, last_line(&streamed_out)),
            (code, last_line(&json_out))
        );
        assert_eq!(
            std::fs::read(&back).unwrap(),
            std::fs::read(&original).unwrap()
        );
        // Cut inside a record: refused, naming the event.
        let bytes = std::fs::read(&rtb).unwrap();
        std::fs::write(&rtb, &bytes[..bytes.len() - 3]).unwrap();
        let (code, _, err) = run(&[rtb.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("(a record of the binary trace): the trace ends inside a record"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
