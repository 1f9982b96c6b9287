//! The wasmtime engine, the compiled guest and its linker: built once per
//! process, and the stores each instance lives in.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine, Store};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::guest::{InboxRules, InboxRulesPre};
use super::{Budget, Error};

/// The guest component, built by `build.rs`.
static GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/inbox_rules_guest.wasm"));

/// How often the epoch advances: the granularity of call deadlines, and
/// how often a call that yields ([`Budget::yields`]) gives its core up.
const TICK: Duration = Duration::from_millis(1);

/// The engine, component and linker: built once per process. Compiled code
/// is cached on disk (wasmtime's cache, keyed by the wasmtime version, its
/// settings and the component's hash), so a process after the first starts
/// without compiling.
pub struct Runtime {
    engine: Engine,
    pre: InboxRulesPre<GuestState>,
    budget: Budget,
    /// Dropping it stops the epoch ticker.
    _ticker: mpsc::Sender<()>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// The state of one store: WASI for the guest's standard library, the
/// memory limiter, and the clock of the call running in it.
pub(super) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    clock: CallClock,
}

/// What a call's deadline is measured against: the processor time its
/// thread used, so that a call the machine's load slowed is not taken for
/// a costly one; and the wall time, which bounds how long a caller waits.
#[derive(Debug, Clone, Copy)]
struct CallClock {
    deadline: Duration,
    started: std::time::Instant,
    thread_time: Duration,
    /// Set when the call was stopped for the wall time, having had less
    /// than its deadline of processor time.
    starved: bool,
    /// Whether the call gives its core up at each tick.
    yields: bool,
}

/// Wall time a call may take beyond twice its deadline before it counts as
/// starved: a short deadline on a busy machine needs slack in absolute
/// terms.
const WALL_SLACK: Duration = Duration::from_secs(1);

/// What becomes of a call whose deadline tick came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It has used less than its deadline of processor time, within twice
    /// the deadline (and a second) of wall time: it goes on.
    Continue,
    /// It used its deadline of processor time: the input's cost.
    Timeout,
    /// Twice its deadline and a second went by before it had its deadline
    /// of processor time: the machine's load.
    Starved,
}

/// The verdict on a call that has used `used` of processor time in
/// `elapsed` of wall time, under `deadline`.
pub(super) fn verdict(used: Duration, elapsed: Duration, deadline: Duration) -> Verdict {
    if used >= deadline {
        Verdict::Timeout
    } else if elapsed >= deadline * 2 + WALL_SLACK {
        Verdict::Starved
    } else {
        Verdict::Continue
    }
}

/// The processor time the calling thread has used.
pub(super) fn thread_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the limit, and remembers that it did so that
/// the resulting trap is reported as what it is.
struct Limiter {
    max: usize,
    refused: bool,
    /// The linear memory the instance has grown to, in bytes.
    grown: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max;
        self.refused |= !allowed;
        if allowed {
            self.grown = self.grown.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A live instance: its store and bindings.
pub(super) struct Live {
    pub(super) store: Store<GuestState>,
    pub(super) bindings: InboxRules,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

impl Runtime {
    /// Compiles the guest (or loads it from `cache_dir`, when given) and
    /// prepares its instantiation; `budget` bounds every call made without
    /// a budget of its own.
    pub fn new(budget: Budget, cache_dir: Option<PathBuf>) -> wasmtime::Result<Arc<Self>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // A diagnostic: `INBOX_PERFMAP=1` writes /tmp/perf-<pid>.map, so that
        // `perf report` names the guest's compiled functions.
        if std::env::var_os("INBOX_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if let Some(dir) = cache_dir {
            let mut cache = CacheConfig::new();
            cache.with_directory(dir);
            // A cache that cannot be set up only costs start-up time.
            config.cache(Cache::new(cache).ok());
        }
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, GUEST)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = InboxRulesPre::new(linker.instantiate_pre(&component)?)?;

        let (stop, stopped) = mpsc::channel::<()>();
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("rules-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    ticking.increment_epoch();
                }
            })?;
        Ok(Arc::new(Self {
            engine,
            pre,
            budget,
            _ticker: stop,
        }))
    }

    /// The budget calls get unless given their own.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The default cache directory: `$INBOX_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/inbox-webhooks`, else `~/.cache/inbox-webhooks`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("INBOX_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("inbox-webhooks")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("inbox-webhooks")))
    }

    /// A fresh store bounded by `budget`, and the guest in it.
    pub(super) fn instantiate(&self, budget: &Budget) -> Result<Live, Error> {
        let state = GuestState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                max: budget.memory_bytes,
                refused: false,
                grown: 0,
            },
            clock: CallClock {
                deadline: budget.deadline,
                started: std::time::Instant::now(),
                thread_time: thread_time(),
                starved: false,
                yields: budget.yields,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Each tick past the deadline's ticks (every tick, for a call that
        // yields) asks whether the call has had its deadline of processor
        // time yet.
        store.epoch_deadline_callback(|mut context| {
            let clock = &mut context.data_mut().clock;
            let used = thread_time().saturating_sub(clock.thread_time);
            match verdict(used, clock.started.elapsed(), clock.deadline) {
                Verdict::Continue => {
                    if clock.yields {
                        std::thread::yield_now();
                    }
                    Ok(wasmtime::UpdateDeadline::Continue(1))
                }
                Verdict::Timeout => Err(wasmtime::Trap::Interrupt.into()),
                Verdict::Starved => {
                    clock.starved = true;
                    Err(wasmtime::Trap::Interrupt.into())
                }
            }
        });
        store.set_epoch_deadline(budget.first_ticks());
        match self.pre.instantiate(&mut store) {
            Ok(bindings) => Ok(Live { store, bindings }),
            Err(error) => Err(budget.classify(&store, &error)),
        }
    }
}

impl GuestState {
    /// The linear memory the instance has grown to, in bytes (a wasm
    /// instance never gives memory back).
    pub(super) fn memory(&self) -> usize {
        self.limiter.grown
    }

    /// Starts the clock of a call on the calling thread.
    pub(super) fn start_call(&mut self) {
        self.clock.started = std::time::Instant::now();
        self.clock.thread_time = thread_time();
        self.clock.starved = false;
    }
}

impl Budget {
    /// The ticks until a call's first check: its deadline's, or the next
    /// tick for a call that yields.
    pub(super) fn first_ticks(&self) -> u64 {
        if self.yields {
            1
        } else {
            self.deadline_ticks()
        }
    }

    /// The deadline in epoch ticks.
    fn deadline_ticks(&self) -> u64 {
        let ticks = self.deadline.as_nanos() / TICK.as_nanos();
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    /// Turns a failed call into an [`Error`], naming the budget it exhausted.
    pub(super) fn classify(&self, store: &Store<GuestState>, error: &wasmtime::Error) -> Error {
        if store.data().limiter.refused {
            Error::OutOfMemory(self.memory_bytes)
        } else if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            match store.data().clock.starved {
                true => Error::Starved(self.deadline),
                false => Error::Timeout(self.deadline),
            }
        } else {
            Error::Trap(format!("{error:#}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Verdict, verdict};
    use std::time::Duration;

    #[test]
    fn a_deadline_is_processor_time_within_twice_its_wall_time_and_a_second() {
        let deadline = Duration::from_millis(100);
        let ms = Duration::from_millis;
        assert_eq!(verdict(ms(40), ms(50), deadline), Verdict::Continue);
        // Slowed by the machine's load: it goes on while it may.
        assert_eq!(verdict(ms(40), ms(1150), deadline), Verdict::Continue);
        assert_eq!(verdict(ms(100), ms(120), deadline), Verdict::Timeout);
        assert_eq!(verdict(ms(100), ms(4000), deadline), Verdict::Timeout);
        assert_eq!(verdict(ms(60), ms(1200), deadline), Verdict::Starved);
    }
}
