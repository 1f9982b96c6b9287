//! The rule engine, run inside wasmtime.
//!
//! The server never links the engine natively: it runs the guest component
//! built from `engine/guest` (embedded in this binary by `build.rs`), so its
//! answers are the browser's answers, byte for byte, and a bad rule traps in
//! a sandbox instead of taking the process down.
//!
//! - [`Runtime`]: the wasmtime engine, the compiled component and the linker,
//!   built once per process. Compiled code is cached on disk (wasmtime's
//!   cache, keyed by the wasmtime version, its settings and the component's
//!   hash), so a process after the first starts without compiling.
//! - [`Session`]: one store and instance for one-shot calls (validate,
//!   evaluate, explain, the JSON operations).
//! - [`RuleSet`]: a tenant's compiled webhooks living inside one instance
//!   across calls; matching an event is one guest call and re-parses nothing.
//!
//! Every call is bounded: an epoch deadline (a ticker thread advances the
//! epoch) and a memory limit per store. A trap or an exhausted budget becomes
//! an [`Error`] for that call; the store is then thrown away, and the next
//! call gets a fresh instance (a rule set re-inserts its webhooks first).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Cache, CacheConfig, Config, Engine, Store};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "inbox-rules",
    path: "../engine/wit",
});

use exports::cloudcx::inbox_rules::engine::{Inserted, Refusal};

/// The guest component, built by `build.rs`.
static GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/inbox_rules_guest.wasm"));

/// How often the epoch advances: the granularity of call deadlines.
const TICK: Duration = Duration::from_millis(5);

/// What bounds each guest call.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most linear memory one instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// The longest one call may run before it is interrupted.
    pub deadline: Duration,
}

impl Default for Limits {
    /// 256 MiB and 2 s: far above what any valid input needs (a tenant's
    /// 10,000 webhooks take a few MiB; a batch of 1,000 events a few ms),
    /// so only runaway input meets them.
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(2),
        }
    }
}

/// Why a guest call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call ran past its deadline and was interrupted.
    #[error("the rule engine ran out of time ({0:?} per call)")]
    Timeout(Duration),
    /// The call needed more memory than the limit allows.
    #[error("the rule engine ran out of memory ({0} bytes per instance)")]
    OutOfMemory(usize),
    /// The guest trapped (a bug in the engine, never the input's fault).
    #[error("the rule engine failed: {0}")]
    Trap(String),
    /// The argument was not of the shape the operation takes.
    #[error("{0}")]
    Input(String),
}

/// The engine, component and linker: built once per process.
pub struct Runtime {
    engine: Engine,
    pre: InboxRulesPre<GuestState>,
    limits: Limits,
    /// Dropping it stops the epoch ticker.
    _ticker: mpsc::Sender<()>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The state of one store: WASI for the guest's standard library, and the
/// memory limiter.
struct GuestState {
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

impl Runtime {
    /// Compiles the guest (or loads it from `cache_dir`, when given) and
    /// prepares its instantiation.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> wasmtime::Result<Arc<Self>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // A diagnostic: `INBOX_PERFMAP=1` writes /tmp/perf-<pid>.map, so that
        // `perf report` names the guest's compiled functions (BENCHMARKS.md).
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
            limits,
            _ticker: stop,
        }))
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

    /// A fresh store with `limits`, and the guest in it.
    fn instantiate(&self, limits: &Limits) -> Result<Live, Error> {
        let state = GuestState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                max: limits.memory_bytes,
                refused: false,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(limits.deadline_ticks());
        match self.pre.instantiate(&mut store) {
            Ok(bindings) => Ok(Live { store, bindings }),
            Err(error) => Err(limits.classify(&store, &error)),
        }
    }
}

impl Limits {
    fn deadline_ticks(&self) -> u64 {
        let ticks = self.deadline.as_nanos() / TICK.as_nanos();
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    /// Turns a failed call into an [`Error`], naming the budget it exhausted.
    fn classify(&self, store: &Store<GuestState>, error: &wasmtime::Error) -> Error {
        if store.data().limiter.refused {
            Error::OutOfMemory(self.memory_bytes)
        } else if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            Error::Timeout(self.deadline)
        } else {
            Error::Trap(format!("{error:#}"))
        }
    }
}

/// A live instance: its store and bindings.
struct Live {
    store: Store<GuestState>,
    bindings: InboxRules,
}

/// One-shot calls to the engine, on an instance kept between calls and
/// replaced after a failed one.
#[derive(Debug)]
pub struct Session {
    runtime: Arc<Runtime>,
    limits: Limits,
    live: Option<Live>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

impl Live {
    /// Runs `call` with a fresh deadline. A failed call consumes the
    /// instance: whatever state it was in is not to be trusted.
    fn run<R>(
        mut self,
        limits: &Limits,
        call: impl FnOnce(&mut Store<GuestState>, &InboxRules) -> wasmtime::Result<R>,
    ) -> Result<(Self, R), Error> {
        self.store.set_epoch_deadline(limits.deadline_ticks());
        match call(&mut self.store, &self.bindings) {
            Ok(answer) => Ok((self, answer)),
            Err(error) => Err(limits.classify(&self.store, &error)),
        }
    }
}

impl Session {
    /// A session on `runtime` with its limits; the instance is made on the
    /// first call.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        let limits = runtime.limits.clone();
        Self::with_limits(runtime, limits)
    }

    /// A session with limits of its own.
    pub fn with_limits(runtime: Arc<Runtime>, limits: Limits) -> Self {
        Self {
            runtime,
            limits,
            live: None,
        }
    }

    /// Runs `call` on the live instance, made when there is none.
    fn with<R>(
        &mut self,
        call: impl FnOnce(&mut Store<GuestState>, &InboxRules) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let live = match self.live.take() {
            Some(live) => live,
            None => self.runtime.instantiate(&self.limits)?,
        };
        let (live, answer) = live.run(&self.limits, call)?;
        self.live = Some(live);
        Ok(answer)
    }

    /// Validates an expression; the report as JSON.
    pub fn validate_expression(&mut self, expression: &str, ids: &[u32]) -> Result<String, Error> {
        self.with(|store, b| {
            b.cloudcx_inbox_rules_engine()
                .call_validate_expression(store, expression, ids)
        })
    }

    /// Validates a webhook (JSON); the report as JSON.
    pub fn validate_webhook(&mut self, webhook: &str) -> Result<String, Error> {
        self.with(|store, b| {
            b.cloudcx_inbox_rules_engine()
                .call_validate_webhook(store, webhook)
        })?
        .map_err(Error::Input)
    }

    /// Evaluates `{"expression", "ids"?, "truth"}`; the answer as JSON.
    pub fn evaluate(&mut self, request: &str) -> Result<String, Error> {
        self.with(|store, b| b.cloudcx_inbox_rules_engine().call_evaluate(store, request))?
            .map_err(Error::Input)
    }

    /// Explains a webhook against an event; the answer as JSON.
    pub fn explain(&mut self, webhook: &str, event: &str) -> Result<String, Error> {
        self.with(|store, b| {
            b.cloudcx_inbox_rules_engine()
                .call_explain(store, webhook, event)
        })?
        .map_err(Error::Input)
    }

    /// The catalogue as JSON.
    pub fn catalog(&mut self) -> Result<String, Error> {
        self.with(|store, b| b.cloudcx_inbox_rules_engine().call_catalog(store))
    }

    /// Runs an operation of the engine's JSON API (`inbox_rules::api::run`).
    pub fn call(&mut self, op: &str, input: &str) -> Result<String, Error> {
        self.with(|store, b| b.cloudcx_inbox_rules_engine().call_call(store, op, input))?
            .map_err(Error::Input)
    }
}

/// Why a rule set refused a webhook.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The webhook is invalid; the engine's report, as JSON.
    #[error("invalid webhook: {0}")]
    Invalid(String),
    /// The call itself failed.
    #[error(transparent)]
    Engine(#[from] Error),
}

/// A tenant's compiled webhooks, living inside one guest instance.
///
/// The host keeps each webhook's JSON too, the way to rebuild the guest's
/// set on a fresh instance after a failed call, and the id behind each
/// handle the guest's set answers matches with.
#[derive(Debug)]
pub struct RuleSet {
    runtime: Arc<Runtime>,
    limits: Limits,
    live: Option<(Live, ResourceAny)>,
    /// Every webhook the set holds, by id.
    webhooks: std::collections::BTreeMap<String, Held>,
    /// The id behind each handle of the live instance's set; `None` for a
    /// handle not in use. Rebuilt with the instance.
    ids: Vec<Option<Box<str>>>,
    /// How many instances the set has had: a [`Decoded`] event belongs to
    /// the one it was decoded in.
    instances: u64,
}

/// An event decoded inside a [`RuleSet`]'s instance ([`RuleSet::decode`]),
/// to match and explain without decoding its JSON again. It is of use only
/// to the set that decoded it, and only until that set's instance is
/// replaced after a failed call; give it back with [`RuleSet::forget`].
#[derive(Debug)]
pub struct Decoded {
    handle: ResourceAny,
    instance: u64,
}

/// A webhook of a [`RuleSet`]: its JSON as inserted, and its handle in the
/// live instance's set.
#[derive(Debug)]
struct Held {
    json: String,
    handle: u32,
}

impl RuleSet {
    /// An empty set on `runtime`, with its limits.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        let limits = runtime.limits.clone();
        Self::with_limits(runtime, limits)
    }

    /// An empty set with limits of its own.
    pub fn with_limits(runtime: Arc<Runtime>, limits: Limits) -> Self {
        Self {
            runtime,
            limits,
            live: None,
            webhooks: Default::default(),
            ids: Vec::new(),
            instances: 0,
        }
    }

    /// How many webhooks the set holds.
    pub fn len(&self) -> usize {
        self.webhooks.len()
    }

    /// Whether the set holds no webhook.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty()
    }

    /// Runs `call` against the guest's set, rebuilding instance and set
    /// first when there is none.
    fn with<R>(
        &mut self,
        call: impl FnOnce(&mut Store<GuestState>, &InboxRules, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let (live, set) = match self.live.take() {
            Some(live) => live,
            None => self.rebuild()?,
        };
        let (live, answer) =
            live.run(&self.limits, |store, bindings| call(store, bindings, set))?;
        self.live = Some((live, set));
        Ok(answer)
    }

    /// A fresh instance holding every webhook of the set, and the ids
    /// behind its handles.
    fn rebuild(&mut self) -> Result<(Live, ResourceAny), Error> {
        let live = self.runtime.instantiate(&self.limits)?;
        let (mut live, set) = live.run(&self.limits, |store, bindings| {
            bindings
                .cloudcx_inbox_rules_engine()
                .rule_set()
                .call_constructor(store)
        })?;
        let mut ids = Vec::with_capacity(self.webhooks.len());
        for (id, held) in &mut self.webhooks {
            let (next, accepted) = live.run(&self.limits, |store, bindings| {
                bindings
                    .cloudcx_inbox_rules_engine()
                    .rule_set()
                    .call_insert(store, set, &held.json)
            })?;
            // Every webhook here was accepted once; the same engine accepts
            // it again.
            let inserted = accepted
                .map_err(|_| Error::Trap("a webhook accepted before was refused".into()))?;
            held.handle = inserted.handle;
            name_handle(&mut ids, inserted.handle, id)?;
            live = next;
        }
        self.ids = ids;
        self.instances += 1;
        Ok((live, set))
    }

    /// Adds a webhook (JSON), replacing the one with the same id; returns
    /// its warnings (a JSON list of diagnostics).
    pub fn insert(&mut self, webhook: &str) -> Result<String, Refused> {
        let answer = self.with(|store, b, set| {
            b.cloudcx_inbox_rules_engine()
                .rule_set()
                .call_insert(store, set, webhook)
        })?;
        match answer {
            Ok(Inserted { handle, warnings }) => {
                /// The guest accepted the webhook, so it is JSON with an id.
                #[derive(serde::Deserialize)]
                struct Id {
                    id: String,
                }
                let Id { id } = serde_json::from_str(webhook)
                    .map_err(|e| Error::Trap(format!("an accepted webhook has no id: {e}")))?;
                let json = webhook.to_owned();
                if let Some(old) = self.webhooks.insert(id.clone(), Held { json, handle })
                    && let Some(slot) = self.ids.get_mut(old.handle as usize)
                {
                    // The guest let the replaced webhook's handle go.
                    *slot = None;
                }
                if let Err(error) = name_handle(&mut self.ids, handle, &id) {
                    // Not to be trusted: the next call starts afresh.
                    self.live = None;
                    return Err(error.into());
                }
                Ok(warnings)
            }
            Err(Refusal::Invalid(report)) => Err(Refused::Invalid(report)),
            Err(Refusal::Malformed(message)) => Err(Refused::Engine(Error::Input(message))),
        }
    }

    /// Removes the webhook with this id; whether it was there. Removal
    /// cannot fail: should the guest call fail, the instance is dropped and
    /// the next call rebuilds the set without the webhook.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(held) = self.webhooks.remove(id) else {
            return false;
        };
        if let Some(slot) = self.ids.get_mut(held.handle as usize) {
            *slot = None;
        }
        if self.live.is_some() {
            let removed = self.with(|store, b, set| {
                b.cloudcx_inbox_rules_engine()
                    .rule_set()
                    .call_remove(store, set, id)
            });
            // A failed call has dropped the instance; nothing else to undo.
            drop(removed);
        }
        true
    }

    /// The sorted ids of the webhooks that fire for one event (JSON),
    /// borrowed from the set as a native set's are: naming the webhooks
    /// that fire copies no text.
    pub fn matches(&mut self, event: &str) -> Result<Vec<&str>, Error> {
        let handles = self
            .with(|store, b, set| {
                b.cloudcx_inbox_rules_engine()
                    .rule_set()
                    .call_match_event(store, set, event)
            })?
            .map_err(Error::Input)?;
        self.named(&handles)
    }

    /// Decodes an event (JSON) inside the set's instance, once, for the
    /// calls that follow on it.
    pub fn decode(&mut self, event: &str) -> Result<Decoded, Error> {
        let handle = self
            .with(|store, b, _| {
                b.cloudcx_inbox_rules_engine()
                    .event()
                    .call_decode(store, event)
            })?
            .map_err(Error::Input)?;
        Ok(Decoded {
            handle,
            instance: self.instances,
        })
    }

    /// The guest's handle of an event this instance decoded.
    fn decoded(&self, event: &Decoded) -> Result<ResourceAny, Error> {
        match self.live.is_some() && event.instance == self.instances {
            true => Ok(event.handle),
            false => Err(Error::Input(
                "the event was decoded by an instance of the rule set that has since been replaced"
                    .into(),
            )),
        }
    }

    /// [`Self::matches`] for an event decoded before: one call, no JSON.
    pub fn match_decoded(&mut self, event: &Decoded) -> Result<Vec<&str>, Error> {
        let event = self.decoded(event)?;
        let handles = self.with(|store, b, set| {
            b.cloudcx_inbox_rules_engine()
                .rule_set()
                .call_match_decoded(store, set, event)
        })?;
        self.named(&handles)
    }

    /// [`Self::explain`] for an event decoded before.
    pub fn explain_decoded(&mut self, id: &str, event: &Decoded) -> Result<Option<String>, Error> {
        let event = self.decoded(event)?;
        self.with(|store, b, set| {
            b.cloudcx_inbox_rules_engine()
                .rule_set()
                .call_explain_decoded(store, set, id, event)
        })
    }

    /// Frees a decoded event in the guest. (One from an instance since
    /// replaced went with it.)
    pub fn forget(&mut self, event: Decoded) {
        if let Ok(handle) = self.decoded(&event) {
            // A failed drop has replaced the instance, and the event with it.
            drop(self.with(|store, _, _| handle.resource_drop(store)));
        }
    }

    /// The ids behind handles the guest's set answered with.
    fn named(&self, handles: &[u32]) -> Result<Vec<&str>, Error> {
        handles
            .iter()
            .map(|handle| {
                self.ids
                    .get(*handle as usize)
                    .and_then(Option::as_deref)
                    .ok_or_else(|| {
                        Error::Trap(format!(
                            "the engine answered handle {handle}, given to no webhook"
                        ))
                    })
            })
            .collect()
    }

    /// Runs an operation of the engine's JSON API (as [`Session::call`])
    /// on this set's instance, saving a second instance and a thread hop
    /// when a caller needs both.
    pub fn call(&mut self, op: &str, input: &str) -> Result<String, Error> {
        self.with(|store, b, _| b.cloudcx_inbox_rules_engine().call_call(store, op, input))?
            .map_err(Error::Input)
    }

    /// [`Self::matches`] for each event of a JSON array, in one call.
    pub fn match_batch(&mut self, events: &str) -> Result<Vec<Vec<&str>>, Error> {
        let batch = self
            .with(|store, b, set| {
                b.cloudcx_inbox_rules_engine()
                    .rule_set()
                    .call_match_batch(store, set, events)
            })?
            .map_err(Error::Input)?;
        batch.iter().map(|handles| self.named(handles)).collect()
    }

    /// Explains the webhook with this id against an event (JSON).
    pub fn explain(&mut self, id: &str, event: &str) -> Result<Option<String>, Error> {
        self.with(|store, b, set| {
            b.cloudcx_inbox_rules_engine()
                .rule_set()
                .call_explain(store, set, id, event)
        })?
        .map_err(Error::Input)
    }
}

/// Records that the guest's set gave `handle` to webhook `id`. Handles are
/// slots the set reuses, so a new one is at most one past those given out;
/// anything else is refused rather than grown into.
fn name_handle(ids: &mut Vec<Option<Box<str>>>, handle: u32, id: &str) -> Result<(), Error> {
    let at = handle as usize;
    match at.cmp(&ids.len()) {
        std::cmp::Ordering::Less => ids[at] = Some(id.into()),
        std::cmp::Ordering::Equal => ids.push(Some(id.into())),
        std::cmp::Ordering::Greater => {
            return Err(Error::Trap(format!(
                "the engine gave webhook handle {handle}, past the {} in use",
                ids.len()
            )));
        }
    }
    Ok(())
}

/// Sessions shared by async tasks. A call takes an idle session (or makes
/// one), runs on tokio's blocking threads so that a slow call never stalls
/// the request loop, and puts the session back.
#[derive(Debug)]
pub struct Pool {
    runtime: Arc<Runtime>,
    idle: std::sync::Mutex<Vec<Session>>,
}

impl Pool {
    /// An empty pool on `runtime`; sessions are made as calls need them.
    pub fn new(runtime: Arc<Runtime>) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            idle: std::sync::Mutex::default(),
        })
    }

    /// Runs `call` on a session.
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&mut Session) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let pool = Arc::clone(self);
        let work = tokio::task::spawn_blocking(move || {
            let taken = pool.lock().pop();
            let mut session = taken.unwrap_or_else(|| Session::new(Arc::clone(&pool.runtime)));
            let answer = call(&mut session);
            pool.lock().push(session);
            answer
        });
        work.await
            .map_err(|e| Error::Trap(format!("engine task failed: {e}")))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        // A panic while holding the lock left the list itself intact.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
