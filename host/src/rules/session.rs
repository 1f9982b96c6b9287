//! One-shot operations of the engine's JSON API.

use std::sync::Arc;

use super::instance::Instance;
use super::{Budget, Error, Op, Runtime};

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
        self.instance
            .call(|store, guest| {
                guest
                    .cloudcx_inbox_rules_engine()
                    .call_call(store, op.as_str(), input)
            })?
            .map_err(Error::Input)
    }
}
