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

/// How often the epoch advances: the granularity of call deadlines.
const TICK: Duration = Duration::from_millis(5);

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

/// The state of one store: WASI for the guest's standard library, and the
/// memory limiter.
pub(super) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
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
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(budget.deadline_ticks());
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
}

impl Budget {
    /// The deadline in epoch ticks.
    pub(super) fn deadline_ticks(&self) -> u64 {
        let ticks = self.deadline.as_nanos() / TICK.as_nanos();
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    /// Turns a failed call into an [`Error`], naming the budget it exhausted.
    pub(super) fn classify(&self, store: &Store<GuestState>, error: &wasmtime::Error) -> Error {
        if store.data().limiter.refused {
            Error::OutOfMemory(self.memory_bytes)
        } else if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            Error::Timeout(self.deadline)
        } else {
            Error::Trap(format!("{error:#}"))
        }
    }
}
