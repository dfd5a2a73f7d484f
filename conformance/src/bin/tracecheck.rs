//! Validates a trace file against the model, event by event; or the traces of a cluster's processes
//! (`raft-node --trace`), one file per process, merged by causality first.
//!
//! ```text
//! cargo run --release -p conformance --bin tracecheck -- TRACE.jsonl
//! cargo run --release -p conformance --bin tracecheck -- node-1.jsonl node-2.jsonl node-3.jsonl
//! cargo run --release -p conformance --bin tracecheck -- TRACE.jsonl --write-binary TRACE.rtb
//! ```
//!
//! A trace is read as JSON Lines or in the binary encoding (`Trace::write_binary`), whichever its first
//! line says.
//!
//! The last line is machine-readable: `result: OK events=<n> nodes=<n> secs=<s>`, or `result: MISMATCH
//! event=<k> <reason>` after the failure report. The exit status is 0 only for OK, 1 for a mismatch and 2 for
//! a file that cannot be read.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use conformance::trace::merge::merge;
use conformance::trace::{check, check_streamed, picture, Summary, Trace, ACTION_KINDS};

/// Validate a trace (JSON Lines, specs/trace-format.md) against the Raft model.
#[derive(Parser, Debug)]
#[command(name = "tracecheck")]
struct Args {
    /// The trace file; or one file per process of a cluster, merged by causality.
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Draw the events around the first bad event (or, for a good trace, around `--at`) as an SVG sequence
    /// diagram.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write the same events as a ShiViz log.
    #[arg(long, value_name = "FILE")]
    shiviz: Option<PathBuf>,
    /// The event to draw around, for a good trace (default: the start).
    #[arg(long, default_value_t = 0)]
    at: usize,
    /// How many events to draw before and after it.
    #[arg(long, default_value_t = 40)]
    window: usize,
    /// Write the trace read (merged, if there are several) to this file as JSON Lines.
    #[arg(long, value_name = "FILE")]
    write_json: Option<PathBuf>,
    /// Write the trace read (merged, if there are several) to this file in the binary encoding, which
    /// reads several times faster.
    #[arg(long, value_name = "FILE")]
    write_binary: Option<PathBuf>,
}

/// Writes the trace to the files the flags ask for.
fn write(args: &Args, trace: &Trace) -> Result<(), String> {
    if let Some(path) = &args.write_json {
        trace
            .write_file(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.write_binary {
        trace
            .write_binary_file(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes the pictures the flags ask for, of the events around `at`.
fn pictures(args: &Args, trace: &Trace, at: usize, mark: Option<usize>) -> Result<(), String> {
    let range = at.saturating_sub(args.window)..at.saturating_add(args.window + 1);
    if let Some(path) = &args.svg {
        std::fs::write(path, picture::svg(trace, range.clone(), mark))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.shiviz {
        std::fs::write(path, picture::shiviz(trace, range))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The model actions by kind, and the machine-readable last line of a trace that checked.
fn print_ok(summary: &Summary, secs: f64) {
    println!("model actions applied, by kind:");
    for (kind, count) in ACTION_KINDS.iter().zip(summary.action_counts) {
        println!("  {kind:<28} {count}");
    }
    println!(
        "result: OK events={} nodes={} secs={secs:.3}",
        summary.events, summary.nodes
    );
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let started = Instant::now();
    // One process's trace, or a simulator's, with no picture asked for: checked while it is read. A refused
    // one is read again whole below, for the report.
    let nothing_to_write = [
        &args.svg,
        &args.shiviz,
        &args.write_json,
        &args.write_binary,
    ]
    .iter()
    .all(|f| f.is_none());
    if let ([path], true) = (args.traces.as_slice(), nothing_to_write) {
        let streamed = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
            .and_then(|file| {
                check_streamed(BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))
            });
        match streamed {
            Ok((header, Some(summary))) => {
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{}: {} events, {} model actions, {} applies checked; read and checked in {secs:.3} s ({:.0} events/s)",
                    header.source,
                    summary.events,
                    summary.actions,
                    summary.applies,
                    summary.events as f64 / secs.max(1e-9)
                );
                print_ok(&summary, secs);
                return ExitCode::SUCCESS;
            }
            Ok((_, None)) => {}
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut traces = Vec::new();
    for path in &args.traces {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: cannot open {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        match Trace::read(BufReader::new(file)) {
            Ok(t) => traces.push(t),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let trace = if traces.len() == 1 && traces[0].header.first_id == 0 {
        traces.pop().expect("one")
    } else {
        match merge(traces) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot merge the traces: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let read_secs = started.elapsed().as_secs_f64();
    if let Err(e) = write(&args, &trace) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let checking = Instant::now();
    match check(&trace) {
        Ok(summary) => {
            let check_secs = checking.elapsed().as_secs_f64();
            println!(
                "{}: {} events, {} model actions, {} applies checked; read in {read_secs:.3} s, checked in {check_secs:.3} s ({:.0} events/s)",
                trace.header.source,
                summary.events,
                summary.actions,
                summary.applies,
                summary.events as f64 / check_secs.max(1e-9)
            );
            if let Err(e) = pictures(&args, &trace, args.at, None) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            print_ok(&summary, started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(mismatch) => {
            print!("{mismatch}");
            if let Err(e) = pictures(&args, &trace, mismatch.event, Some(mismatch.event)) {
                eprintln!("error: {e}");
            }
            println!(
                "result: MISMATCH event={} {}",
                mismatch.event, mismatch.reason
            );
            ExitCode::from(1)
        }
    }
}
