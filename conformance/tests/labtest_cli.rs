//! `labtest` usage errors: refused with a clear message and exit status 2, never a backtrace.

use std::process::Command;

fn labtest(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_labtest"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("labtest runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn zero_runs_are_refused() {
    let (code, out, err) = labtest(&["-n", "0", "2A"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("-n must be at least 1"), "{err}");
    assert!(!out.contains("NaN"), "{out}");
    let (code, _, err) = labtest(&["-j", "0", "2A"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-j must be at least 1"), "{err}");
}

#[test]
fn an_unknown_test_name_suggests_the_closest_and_lists_them_all() {
    let (code, _, err) = labtest(&["-n", "1", "TestBackup2"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: no test or part named \"TestBackup2\""),
        "{err}"
    );
    assert!(err.contains("did you mean TestBackup2B?"), "{err}");
    for name in ["TestInitialElection2A", "TestSnapshotInit2D", "2D, or all"] {
        assert!(err.contains(name), "{name} not listed: {err}");
    }
    let (code, _, err) = labtest(&["-n", "1", "persist_1_2c"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
}
