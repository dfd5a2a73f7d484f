//! Trace validation of lab runs: a run is reported as checked only if the checker saw its cluster's events,
//! by `run_checked` (as `labtest --check` runs it) and by `run_traced_checked` (as `labtest --check
//! --trace-dir` runs it).

use conformance::lab::{find, run_checked, run_traced_checked, Config, LabTest, Verdict};

/// A test that makes no cluster, so no recorder is ever attached: nothing of it reaches the checker.
const NO_CLUSTER: LabTest = LabTest {
    go_name: "TestNoCluster",
    name: "no_cluster",
    part: "none",
    body: |sim| {
        Box::pin(async move {
            sim.sleep_ms(10).await;
        })
    },
};

/// A test that makes two clusters: a trace follows one, so the run is not checked whole.
const TWO_CLUSTERS: LabTest = LabTest {
    go_name: "TestTwoClusters",
    name: "two_clusters",
    part: "none",
    body: |sim| {
        Box::pin(async move {
            let a = Config::make(&sim, 3, false);
            let b = Config::make(&sim, 3, false);
            a.check_one_leader().await;
            b.check_one_leader().await;
            a.cleanup();
            b.cleanup();
        })
    },
};

fn unchecked(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Unchecked(why) => why,
        other => panic!("reported as {other:?}, not as unchecked"),
    }
}

#[test]
fn lab_a_run_without_a_recorder_is_not_reported_as_checked() {
    let (outcome, verdict) = run_checked(&NO_CLUSTER, 1, true);
    assert_eq!(outcome.failure, None);
    assert_eq!(unchecked(&verdict), "the test made no cluster");
    let (outcome, trace, verdict) = run_traced_checked(&NO_CLUSTER, 1, true);
    assert_eq!(outcome.failure, None);
    assert!(trace.records.is_empty());
    assert_eq!(unchecked(&verdict), "the test made no cluster");
}

#[test]
fn lab_a_run_with_a_second_cluster_is_not_reported_as_checked() {
    let (outcome, verdict) = run_checked(&TWO_CLUSTERS, 1, true);
    assert_eq!(outcome.failure, None);
    assert!(unchecked(&verdict).contains("2 clusters"), "{verdict:?}");
    let (_, trace, verdict) = run_traced_checked(&TWO_CLUSTERS, 1, true);
    assert!(!trace.records.is_empty(), "the first cluster is recorded");
    assert!(unchecked(&verdict).contains("2 clusters"), "{verdict:?}");
}

#[test]
fn lab_a_run_with_its_cluster_recorded_is_checked() {
    let test = find("initial_election_2a").unwrap();
    let (_, online) = run_checked(test, 1, true);
    let (_, _, stored) = run_traced_checked(test, 1, true);
    let summary = online.checked().expect("checked");
    assert!(summary.events > 0);
    assert_eq!(stored.checked(), Some(summary));
}
