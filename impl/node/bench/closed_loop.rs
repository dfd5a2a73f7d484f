//! What the load generators beside `raft-bench` share: running a load on a tokio runtime and reporting its
//! line, and latency quantiles as `raft-bench` computes them. Each generator is its own workspace, so each
//! includes this file by its path.

use std::future::Future;
use std::process::ExitCode;

/// Whether `secs` is a measuring time the generators take: above 0 and at most an hour.
pub fn secs_in_range(secs: f64) -> bool {
    secs > 0.0 && secs <= 3600.0
}

/// Runs `load` on `runtime`: prints the line it returns and succeeds, or prints its error (or the
/// runtime's) on stderr and fails.
pub fn run_and_report(
    runtime: std::io::Result<tokio::runtime::Runtime>,
    load: impl Future<Output = Result<String, String>>,
) -> ExitCode {
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(load) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `q` quantile of `sorted_ns` (latencies in nanoseconds, sorted, not empty), in whole microseconds.
pub fn quantile_us(sorted_ns: &[u64], q: f64) -> u64 {
    let k = ((sorted_ns.len() as f64 * q) as usize).min(sorted_ns.len() - 1);
    (sorted_ns[k] + 500) / 1000
}
