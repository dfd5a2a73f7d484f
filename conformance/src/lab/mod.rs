//! The MIT 6.5840 Lab 2 and Lab 3 testers, ported onto the simulator (`specs/lab-tester.md`,
//! `specs/lab3-tester.md`): the harnesses ([`Config`] for Raft, [`KvConfig`] for the key-value
//! service), the persister, the adapter that runs the `raft` core behind the tester's interface,
//! the key-value server of Lab 3 on `raft_kv`'s store, and the test bodies of parts 2A, 2B, 2C, 2D,
//! 3A and 3B, registered in [`TESTS`] so that both `cargo test` and the `labtest` stress runner run
//! the same bodies. Each test's section in the specs is headed by its Go name
//! (`### TestInitialElection2A`).

mod adapter;
pub mod cmd;
pub mod config;
mod encoder;
pub mod kvconfig;
mod kvserver;
pub mod persister;
pub mod runner;
pub mod tests_2a;
pub mod tests_2b;
pub mod tests_2c;
pub mod tests_2d;
pub mod tests_3a;
pub mod tests_3b;
pub mod tests_membership;

pub use adapter::TICK;
pub use cmd::Cmd;
pub use config::{fatal, Config};
pub use kvconfig::{Clerk, KvConfig};
pub use persister::Persister;
pub use runner::{
    run, run_checked, run_from_env, run_from_env_or, run_traced, run_traced_checked,
    seeds_from_env, seeds_from_env_or, LabError, LabTest, Outcome, Verdict,
};

macro_rules! lab_tests {
    ($($part:literal $go:literal $module:ident :: $name:ident),* $(,)?) => {
        /// Every ported test, in the Go file's order.
        pub static TESTS: &[LabTest] = &[
            $(LabTest {
                go_name: $go,
                name: stringify!($name),
                part: $part,
                body: |sim| Box::pin($module::$name(sim)),
            }),*
        ];
    };
}

lab_tests! {
    "2A" "TestInitialElection2A" tests_2a::initial_election_2a,
    "2A" "TestReElection2A" tests_2a::re_election_2a,
    "2A" "TestManyElections2A" tests_2a::many_elections_2a,
    "2B" "TestBasicAgree2B" tests_2b::basic_agree_2b,
    "2B" "TestRPCBytes2B" tests_2b::rpc_bytes_2b,
    "2B" "TestFollowerFailure2B" tests_2b::follower_failure_2b,
    "2B" "TestLeaderFailure2B" tests_2b::leader_failure_2b,
    "2B" "TestFailAgree2B" tests_2b::fail_agree_2b,
    "2B" "TestFailNoAgree2B" tests_2b::fail_no_agree_2b,
    "2B" "TestConcurrentStarts2B" tests_2b::concurrent_starts_2b,
    "2B" "TestRejoin2B" tests_2b::rejoin_2b,
    "2B" "TestBackup2B" tests_2b::backup_2b,
    "2B" "TestCount2B" tests_2b::count_2b,
    "2C" "TestPersist12C" tests_2c::persist1_2c,
    "2C" "TestPersist22C" tests_2c::persist2_2c,
    "2C" "TestPersist32C" tests_2c::persist3_2c,
    "2C" "TestFigure82C" tests_2c::figure8_2c,
    "2C" "TestUnreliableAgree2C" tests_2c::unreliable_agree_2c,
    "2C" "TestFigure8Unreliable2C" tests_2c::figure8_unreliable_2c,
    "2C" "TestReliableChurn2C" tests_2c::reliable_churn_2c,
    "2C" "TestUnreliableChurn2C" tests_2c::unreliable_churn_2c,
    "2D" "TestSnapshotBasic2D" tests_2d::snapshot_basic_2d,
    "2D" "TestSnapshotInstall2D" tests_2d::snapshot_install_2d,
    "2D" "TestSnapshotInstallUnreliable2D" tests_2d::snapshot_install_unreliable_2d,
    "2D" "TestSnapshotInstallCrash2D" tests_2d::snapshot_install_crash_2d,
    "2D" "TestSnapshotInstallUnCrash2D" tests_2d::snapshot_install_uncrash_2d,
    "2D" "TestSnapshotAllCrash2D" tests_2d::snapshot_all_crash_2d,
    "2D" "TestSnapshotInit2D" tests_2d::snapshot_init_2d,
    "3A" "TestBasic3A" tests_3a::basic_3a,
    "3A" "TestSpeed3A" tests_3a::speed_3a,
    "3A" "TestConcurrent3A" tests_3a::concurrent_3a,
    "3A" "TestUnreliable3A" tests_3a::unreliable_3a,
    "3A" "TestUnreliableOneKey3A" tests_3a::unreliable_one_key_3a,
    "3A" "TestOnePartition3A" tests_3a::one_partition_3a,
    "3A" "TestManyPartitionsOneClient3A" tests_3a::many_partitions_one_client_3a,
    "3A" "TestManyPartitionsManyClients3A" tests_3a::many_partitions_many_clients_3a,
    "3A" "TestPersistOneClient3A" tests_3a::persist_one_client_3a,
    "3A" "TestPersistConcurrent3A" tests_3a::persist_concurrent_3a,
    "3A" "TestPersistConcurrentUnreliable3A" tests_3a::persist_concurrent_unreliable_3a,
    "3A" "TestPersistPartition3A" tests_3a::persist_partition_3a,
    "3A" "TestPersistPartitionUnreliable3A" tests_3a::persist_partition_unreliable_3a,
    "3A" "TestPersistPartitionUnreliableLinearizable3A" tests_3a::persist_partition_unreliable_linearizable_3a,
    "3B" "TestSnapshotRPC3B" tests_3b::snapshot_rpc_3b,
    "3B" "TestSnapshotSize3B" tests_3b::snapshot_size_3b,
    "3B" "TestSpeed3B" tests_3b::speed_3b,
    "3B" "TestSnapshotRecover3B" tests_3b::snapshot_recover_3b,
    "3B" "TestSnapshotRecoverManyClients3B" tests_3b::snapshot_recover_many_clients_3b,
    "3B" "TestSnapshotUnreliable3B" tests_3b::snapshot_unreliable_3b,
    "3B" "TestSnapshotUnreliableRecover3B" tests_3b::snapshot_unreliable_recover_3b,
    "3B" "TestSnapshotUnreliableRecoverConcurrentPartition3B" tests_3b::snapshot_unreliable_recover_concurrent_partition_3b,
    "3B" "TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable3B" tests_3b::snapshot_unreliable_recover_concurrent_partition_linearizable_3b,
}

/// The test with this Rust name (`initial_election_2a`) or Go name (`TestInitialElection2A`;
/// published 2023 tables also call two tests `TestFor2023TestFollowerFailure2B` and
/// `TestFor2023TestLeaderFailure2B`).
pub fn find(name: &str) -> Option<&'static LabTest> {
    TESTS.iter().find(|t| t.is_named(name))
}

impl LabTest {
    /// Whether `name` is this test's Rust name, Go name or published 2023 alias.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name
            || self.go_name == name
            || (matches!(
                self.go_name,
                "TestFollowerFailure2B" | "TestLeaderFailure2B"
            ) && name.strip_prefix("TestFor2023") == Some(self.go_name))
    }
}
