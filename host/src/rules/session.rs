//! One-shot operations of the engine's JSON API.

use std::sync::Arc;

use super::instance::Instance;
use super::{Budget, Error, Op, Runtime};

/// A session's instance grown past this much memory (by one large input)
/// is thrown away after the call, and the next call gets a fresh one: a
/// wasm instance never gives memory back, and one-shot operations keep no
/// state worth that memory.
pub(super) const RECYCLE_BYTES: usize = 32 << 20;

/// Runs operations of the engine's JSON API (`inbox_rules::api::run`) on an
/// instance kept between calls.
#[derive(Debug)]
pub struct Session {
    instance: Instance,
}

impl Session {
    /// A session on `runtime` with its budget; the instance is made on the
    /// first call.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        let instance = Instance::new(runtime, None);
        Self { instance }
    }

    /// A session with a budget of its own.
    pub fn with_budget(runtime: Arc<Runtime>, budget: Budget) -> Self {
        let instance = Instance::new(runtime, Some(budget));
        Self { instance }
    }

    /// Runs `op` on JSON `input`; its answer as JSON.
    ///
    /// ```no_run
    /// # fn demo(session: &mut inbox_webhooks::rules::Session) -> Result<(), inbox_webhooks::rules::Error> {
    /// use inbox_webhooks::rules::Op;
    /// let report = session.call(Op::Check, r#"{"expression": "1 or 2", "ids": [1, 2]}"#)?;
    /// assert_eq!(report, r#"{"valid":true,"errors":[],"warnings":[]}"#);
    /// # Ok(()) }
    /// ```
    pub fn call(&mut self, op: Op, input: &str) -> Result<String, Error> {
        let answer = self.instance.call(|store, guest| {
            guest
                .cloudcx_inbox_rules_engine()
                .call_call(store, op.as_str(), input)
        });
        if self.instance.memory() > RECYCLE_BYTES {
            self.instance.discard();
        }
        answer?.map_err(Error::Input)
    }

    /// The linear memory of the session's instance, in bytes; 0 when it has
    /// none (before the first call, or after one that recycled it).
    pub fn memory(&self) -> usize {
        self.instance.memory()
    }
}
