//! Decides whether a history of key-value operations is linearizable.
//!
//! ```text
//! cargo run --release -p conformance --bin lincheck -- HISTORY.jsonl
//! ```
//!
//! The file is JSON Lines, one operation a line (`specs/history-format.md`). The last line is
//! machine-readable: `result: LINEARIZABLE ops=<n> keys=<n> secs=<s>`, or, after the operations that cannot
//! be ordered, `result: NOT LINEARIZABLE key=<k> minimal=<n> ops=<n> keys=<n> secs=<s>` (the key as a JSON
//! string). The exit status is 0 for linearizable, 1 for not linearizable and 2 for a file that cannot be
//! read (with the file, the line and what is wrong).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use conformance::linearizability::{check, jsonl, Operation};

/// Decide whether a history (JSON Lines, specs/history-format.md) is linearizable.
#[derive(Parser, Debug)]
#[command(name = "lincheck")]
struct Args {
    /// The history file.
    history: PathBuf,
}

/// Reads the file's operations and the line each one is on.
fn read(path: &Path) -> Result<(Vec<Operation>, Vec<usize>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        anyhow::anyhow!("{}: line {line}: not UTF-8", path.display())
    })?;
    let records = jsonl::parse(text).with_context(|| path.display().to_string())?;
    Ok(records.into_iter().map(|r| (r.op, r.line)).unzip())
}

/// Checks the history; the exit status as the module documentation says.
fn run(args: &Args) -> Result<ExitCode> {
    let (ops, lines) = read(&args.history)?;
    let report = check(&ops).with_context(|| args.history.display().to_string())?;
    println!(
        "{}: {} operations on {} keys",
        args.history.display(),
        report.ops,
        report.keys
    );
    let secs = report.elapsed.as_secs_f64();
    let Some(violation) = &report.violation else {
        println!(
            "result: LINEARIZABLE ops={} keys={} secs={secs:.6}",
            report.ops, report.keys
        );
        return Ok(ExitCode::SUCCESS);
    };
    print!("key {:?}", violation.key);
    if report.failing_keys > 1 {
        print!(
            " (the first of {} keys that cannot be ordered)",
            report.failing_keys
        );
    }
    println!(
        ": these {} of its {} operations cannot be ordered,",
        violation.minimal.len(),
        violation.key_ops
    );
    println!(
        "even with its other operations free to take effect within their intervals or not at all; freeing any one of them lets the rest be ordered:"
    );
    for (index, op) in &violation.minimal {
        println!("  line {}: {op}", lines[*index]);
    }
    if !violation.one_minimal {
        println!("(the minimization ran out of its budget: some of these may not be needed)");
    }
    println!(
        "minimized in {:.6} s",
        violation.minimize_elapsed.as_secs_f64()
    );
    println!(
        "result: NOT LINEARIZABLE key={} minimal={} ops={} keys={} secs={secs:.6}",
        serde_json::Value::from(violation.key.as_str()),
        violation.minimal.len(),
        report.ops,
        report.keys
    );
    Ok(ExitCode::from(1))
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
