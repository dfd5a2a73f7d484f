//! The `lincheck` command as a person or a script uses it: its output, its last line and its exit status.

use std::path::PathBuf;
use std::process::Command;

/// A history file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("lincheck-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("the temporary directory is writable");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `lincheck` with `args`: (exit status, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lincheck"))
        .args(args)
        .output()
        .expect("lincheck runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `lincheck` on a file holding `contents`.
fn check(name: &str, contents: &str) -> (i32, String, String) {
    let file = TempFile::new(name, contents.as_bytes());
    run(&[file.path()])
}

const GOOD: &str = r#"{"client": 3, "op": "put", "key": "k", "value": "v", "call": 120, "return": 150}
{"client": 1, "op": "get", "key": "k", "output": "v", "call": 130, "return": 160}

{"client": 2, "op": "append", "key": "k", "value": "w", "call": 140, "return": null}
{"client": 4, "op": "cas", "key": "k", "expected": "vw", "value": "x", "output": false, "call": 170, "return": 190}
{"client": 4, "op": "get", "key": "other", "output": "", "call": 200, "return": 210}
"#;

#[test]
fn lincheck_a_linearizable_history_exits_0() {
    let (code, out, err) = check("good.jsonl", GOOD);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": 5 operations on 2 keys\n"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("result: LINEARIZABLE ops=5 keys=2 secs="),
        "{last}"
    );
    let empty = check("empty.jsonl", "");
    assert_eq!(empty.0, 0);
    assert!(
        empty
            .1
            .lines()
            .last()
            .unwrap()
            .starts_with("result: LINEARIZABLE ops=0 keys=0 secs="),
        "{}",
        empty.1
    );
}

#[test]
fn lincheck_a_stale_read_exits_1_and_names_the_operations() {
    let stale = r#"{"client": 1, "op": "put", "key": "k", "value": "a", "call": 0, "return": 10}
{"client": 2, "op": "get", "key": "k", "output": "a", "call": 12, "return": 14}
{"client": 1, "op": "put", "key": "k", "value": "b", "call": 20, "return": 30}
{"client": 3, "op": "get", "key": "k", "output": "a", "call": 40, "return": 50}
{"client": 3, "op": "get", "key": "j", "output": "", "call": 40, "return": 50}
"#;
    let (code, out, err) = check("stale.jsonl", stale);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("key \"k\": these 2 of its 4 operations cannot be ordered,"),
        "{out}"
    );
    assert!(
        out.contains("  line 3: client 1 [20, 30] put(\"k\", \"b\")\n"),
        "{out}"
    );
    assert!(
        out.contains("  line 4: client 3 [40, 50] get(\"k\") -> \"a\"\n"),
        "{out}"
    );
    assert!(!out.contains("  line 1:"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("result: NOT LINEARIZABLE key=\"k\" minimal=2 ops=5 keys=2 secs="),
        "{last}"
    );
}

#[test]
fn lincheck_an_unreadable_or_malformed_file_exits_2_with_the_line_and_the_problem() {
    let (code, _, err) = run(&["no-such-history.jsonl"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: cannot read no-such-history.jsonl: "),
        "{err}"
    );

    let cases = [
        ("{\"client\": 1", "line 2: not JSON: "),
        ("[1, 2]", "line 2: not a JSON object"),
        (
            r#"{"client": 1, "op": "delete", "key": "k", "call": 1, "return": 2}"#,
            "line 2: unknown op \"delete\" (expected \"get\", \"put\", \"append\" or \"cas\")",
        ),
        (
            r#"{"client": 1, "op": "put", "key": "k", "call": 1, "return": 2}"#,
            "line 2: missing field \"value\"",
        ),
        (
            r#"{"client": 1, "op": "get", "key": "k", "call": 1, "return": 2}"#,
            "line 2: missing field \"output\"",
        ),
        (
            r#"{"client": 1, "op": "put", "key": "k", "value": "v", "call": 1}"#,
            "line 2: missing field \"return\"",
        ),
        (
            r#"{"client": 1, "op": "put", "key": "k", "value": "v", "call": 5, "return": 2}"#,
            "line 2: it returned at 2, before its call at 5",
        ),
        (
            r#"{"client": 1, "op": "put", "key": "k", "value": "v", "call": -5, "return": 2}"#,
            "line 2: field \"call\" must be a non-negative integer",
        ),
        (
            r#"{"client": 1, "op": "put", "key": "k", "value": "v", "call": 1, "retrun": 2}"#,
            "line 2: unknown field \"retrun\" for a put",
        ),
        (
            r#"{"client": 1, "op": "put", "key": "k", "value": "v", "output": "v", "call": 1, "return": 2}"#,
            "line 2: unknown field \"output\" for a put",
        ),
        (
            r#"{"client": 1, "op": "cas", "key": "k", "expected": "", "value": "v", "output": "yes", "call": 1, "return": 2}"#,
            "line 2: field \"output\" must be true or false",
        ),
        (
            r#"{"client": 1, "op": "get", "key": "k", "output": "", "call": 1, "return": null}"#,
            "line 2: a get that never returned has no \"output\"",
        ),
        (
            r#"{"client": 1, "op": "get", "key": 7, "output": "", "call": 1, "return": 2}"#,
            "line 2: field \"key\" must be a string",
        ),
    ];
    let first = r#"{"client": 1, "op": "put", "key": "k", "value": "v", "call": 0, "return": 1}"#;
    for (i, (line, expected)) in cases.iter().enumerate() {
        let (code, out, err) = check(&format!("bad-{i}.jsonl"), &format!("{first}\n{line}\n"));
        assert_eq!(code, 2, "{line}: {out}{err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(
            err.contains(&format!("bad-{i}.jsonl: {expected}")),
            "{line}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.contains("result:"), "{out}");
    }

    let binary = TempFile::new("binary.jsonl", b"{\"a\": 1}\n\xff\xfe\n");
    let (code, _, err) = run(&[binary.path()]);
    assert_eq!(code, 2);
    assert!(err.contains("binary.jsonl: line 2: not UTF-8"), "{err}");

    let (code, _, err) = run(&["--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2, "{err}");
}
