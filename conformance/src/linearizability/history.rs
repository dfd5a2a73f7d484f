//! A recorder of histories, for testers.

use super::{check, HistoryError, Input, Operation, Output, Report};

/// A history being recorded as it happens, in the order of the calls made to it.
///
/// Its clock is the order of those calls: each call and each return gets the next tick, so an operation
/// precedes another iff its [`History::returned`] was recorded before the other's [`History::call`]. Record the
/// call just before the request leaves and the return just after the reply arrives; a tester with several
/// threads keeps the history behind a mutex. An operation whose return is never recorded never returned.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Operation>,
    clock: u64,
}

/// The handle of an operation that has been called and not yet returned. It is not `Copy`: returning
/// consumes it, so an operation returns at most once.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "an operation whose id is dropped can never return"]
pub struct OpId(usize);

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Records that `client` called `input`.
    pub fn call(&mut self, client: u64, input: Input) -> OpId {
        let call = self.tick();
        self.ops.push(Operation {
            client,
            call,
            ret: None,
            input,
            output: Output::Unknown,
        });
        OpId(self.ops.len() - 1)
    }

    /// Records that the operation `id` returned `output`.
    ///
    /// # Panics
    ///
    /// If `id` comes from another, shorter history.
    pub fn returned(&mut self, id: OpId, output: Output) {
        let ret = self.tick();
        let op = &mut self.ops[id.0];
        op.ret = Some(ret);
        op.output = output;
    }

    /// The operations so far, in call order.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// The operations, in call order.
    pub fn into_operations(self) -> Vec<Operation> {
        self.ops
    }

    /// How many operations have been called.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation has been called.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Checks the history so far ([`check`]).
    pub fn check(&self) -> Result<Report, HistoryError> {
        check(&self.ops)
    }
}
