//! The life of one guest instance, written once for every user of the
//! guest: made on the first call, kept between calls, and thrown away after
//! a failed one, whose state is not to be trusted.

use std::sync::Arc;

use wasmtime::Store;

use super::guest::InboxRules;
use super::runtime::{GuestState, Live, Runtime};
use super::{Budget, Error};

/// One guest instance and the budget each of its calls gets.
#[derive(Debug)]
pub(super) struct Instance {
    runtime: Arc<Runtime>,
    budget: Budget,
    live: Option<Live>,
    /// How many instances have been made: state kept inside one (a rule
    /// set's resource) belongs to the one it was made in.
    made: u64,
}

impl Instance {
    /// No instance yet; the first call makes one. Calls get `budget`, or
    /// the runtime's when it is `None`.
    pub(super) fn new(runtime: Arc<Runtime>, budget: Option<Budget>) -> Self {
        let budget = budget.unwrap_or_else(|| *runtime.budget());
        Self {
            runtime,
            budget,
            live: None,
            made: 0,
        }
    }

    /// Which instance is live (a number no other instance of this one
    /// had), or `None` when none is.
    pub(super) fn live(&self) -> Option<u64> {
        self.live.as_ref().map(|_| self.made)
    }

    /// Runs `call` with a fresh deadline on the live instance, made first
    /// when there is none. A failed call consumes the instance.
    pub(super) fn call<R>(
        &mut self,
        call: impl FnOnce(&mut Store<GuestState>, &InboxRules) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let live = match &mut self.live {
            Some(live) => live,
            None => {
                let live = self.runtime.instantiate(&self.budget)?;
                self.made += 1;
                self.live.insert(live)
            }
        };
        live.store.set_epoch_deadline(self.budget.first_ticks());
        live.store.data_mut().start_call();
        match call(&mut live.store, &live.bindings) {
            Ok(answer) => Ok(answer),
            Err(error) => {
                let error = self.budget.classify(&live.store, &error);
                self.live = None;
                Err(error)
            }
        }
    }

    /// The linear memory the live instance has grown to, in bytes; 0 when
    /// none is live.
    pub(super) fn memory(&self) -> usize {
        self.live
            .as_ref()
            .map_or(0, |live| live.store.data().memory())
    }

    /// Throws the live instance away, when its state is not to be trusted.
    pub(super) fn discard(&mut self) {
        self.live = None;
    }
}
