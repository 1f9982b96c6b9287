//! The rule engine, run inside wasmtime.
//!
//! The server never links the engine natively: it runs the guest component
//! built from `engine/guest` (embedded in this binary by `build.rs`), so its
//! answers are the browser's answers, byte for byte, and a bad rule traps in
//! a sandbox instead of taking the process down.
//!
//! - [`Runtime`]: the wasmtime engine, the compiled component and the
//!   linker, built once per process.
//! - [`Session`]: one-shot operations of the engine's JSON API by name
//!   (validate a webhook, explain, the catalogue).
//! - [`TenantRules`]: a tenant's compiled webhooks living inside one
//!   instance across calls; taking in a batch of events is one guest call
//!   and re-parses no rule.
//! - [`Pool`]: sessions shared by async tasks; each tenant's calls take
//!   turns, draw on its [`Shares`] account of engine time, and run on
//!   threads of their own, apart from ingest and delivery.
//!
//! Every call is bounded by a [`Budget`]: a deadline of processor time
//! (checked at the ticks of an epoch a ticker thread advances; twice the
//! deadline and a second of wall time at most) and a memory limit per
//! store. A trap or an exhausted budget becomes an [`Error`] for that call;
//! the instance is then thrown away, and the next call gets a fresh one (a
//! rule set re-inserts its webhooks first).

mod instance;
mod pool;
mod runtime;
mod session;
mod share;
mod tenant;
mod workers;

use std::time::Duration;

pub use self::pool::Pool;
pub use self::runtime::Runtime;
pub use self::session::Session;
pub use self::share::Shares;
pub use self::tenant::{InsertError, Taken, TenantRules};
pub use inbox_rules::api::Op;

/// The bindings `wasmtime` generates from the contract.
mod guest {
    wasmtime::component::bindgen!({
        world: "inbox-rules",
        path: "../engine/wit",
    });

    pub(super) use self::exports::cloudcx::inbox_rules::engine::{IntakeRefusal, Refusal};
}

/// What bounds each guest call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Budget {
    /// The most linear memory one instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// The processor time one call may use before it is interrupted; it
    /// is interrupted as well once twice as long and a second have gone by.
    pub deadline: Duration,
    /// Whether a call gives its core up at every tick of the epoch (1 ms).
    /// This kernel's scheduler (like most servers', built without forced
    /// preemption) lets a thread that computes without a system call hold
    /// its core until the timer interrupt, 4 ms at 250 Hz, whatever the
    /// priorities: a thread of ingest woken meanwhile waits that long. A
    /// call that yields at each tick keeps that wait under a tick. Tenants'
    /// one-shot calls yield; ingest's do not.
    pub yields: bool,
}

impl Default for Budget {
    /// 256 MiB and 2 s: far above what any valid input needs (a tenant's
    /// 10,000 webhooks take a few MiB; a batch of 1,000 events a few ms),
    /// so only runaway input meets them.
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(2),
            yields: false,
        }
    }
}

/// Why a guest call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call ran past its deadline and was interrupted.
    #[error("the rule engine ran out of time ({0:?} per call)")]
    Timeout(Duration),
    /// Twice its deadline and a second went by before the call had its
    /// deadline of processor time: the machine was busy. Not the input's doing;
    /// retryable.
    #[error(
        "the rule engine had too little processor time within its deadline ({0:?}): the server is busy"
    )]
    Starved(Duration),
    /// The call needed more memory than the limit allows.
    #[error("the rule engine ran out of memory ({0} bytes per instance)")]
    OutOfMemory(usize),
    /// The guest trapped (a bug in the engine, never the input's fault).
    #[error("the rule engine failed: {0}")]
    Trap(String),
    /// The argument was not of the shape the operation takes.
    #[error("{0}")]
    Input(String),
    /// The tenant has spent its engine time; it may call again after the
    /// wait.
    #[error("this tenant's share of the rule engine is spent for now; retry in {0:.1?}")]
    Busy(Duration),
}
