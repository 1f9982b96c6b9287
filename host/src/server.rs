//! Starting and stopping the server. `inbox-webhooks serve` calls [`run`];
//! tests call [`Server::start`] on port 0 and drive the same code.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::failures::AuthFailures;
use crate::api::{self, AppState, RateLimit};
use crate::config::Config;
use crate::connections;
use crate::delivery::Dispatcher;
use crate::history::History;
use crate::ingest::Ingestor;
use crate::matcher::Matcher;
use crate::metrics::Metrics;
use crate::rules::{Budget, Op, Pool, Runtime, Shares};
use crate::store::{self, Change, Opening, Quota, Store};
use crate::test_delivery::TestDeliveries;
use crate::vault::{self, Vault};
use crate::webhooks::Webhooks;

/// The wasmtime runtime for `budget`, built once per process: compiling
/// (or loading) the guest is the slow part, and every server in the
/// process with the same budget shares it.
fn runtime(budget: Budget) -> anyhow::Result<Arc<Runtime>> {
    static SHARED: Mutex<Vec<Arc<Runtime>>> = Mutex::new(Vec::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = shared.iter().find(|r| *r.budget() == budget) {
        return Ok(Arc::clone(runtime));
    }
    tracing::info!(
        "loading the rule engine (compiled once on the first start, a few seconds; cached after)"
    );
    let started = std::time::Instant::now();
    let runtime = Runtime::new(budget, Runtime::default_cache_dir())
        .map_err(|e| anyhow::anyhow!("starting the rule engine: {e:#}"))?;
    tracing::info!(
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "rule engine ready"
    );
    shared.push(Arc::clone(&runtime));
    Ok(runtime)
}

/// Opens the store `config` names for a command, creating the data
/// directory for the default SQLite file.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    default_dir(config)?;
    store::open(&config.database_url(), Opening::Command)
        .await
        .context("opening the database")
}

/// Opens the store `config` names for the process that serves it: one
/// per SQLite database ([`crate::store::SqliteStore::serve`]).
async fn open_store_to_serve(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    default_dir(config)?;
    store::open(&config.database_url(), Opening::Serve)
        .await
        .context("opening the database")
}

/// Creates the data directory when the database is the default file in it.
fn default_dir(config: &Config) -> anyhow::Result<()> {
    if config.database_url.is_empty() {
        private_dir(&config.data_dir)?;
    }
    Ok(())
}

/// Creates the data directory, readable by the server's user only (0700)
/// whatever the umask: it holds the database and the key to its secrets.
fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making the data directory {} private", dir.display()))
}

/// Everything the API needs, opened and ready.
pub async fn state(config: &Config) -> anyhow::Result<AppState> {
    state_on(config, open_store_to_serve(config).await?).await
}

/// Everything the API needs, over a store already open.
pub async fn state_on(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<AppState> {
    if config.secret_key_file.is_none() {
        private_dir(&config.data_dir)?;
    }
    let key_file = config.secret_key_file();
    let vault = Arc::new(Vault::open_or_create(&key_file)?);
    vault::seal_stored(store.as_ref(), &vault, &key_file).await?;
    let runtime = runtime(Budget {
        deadline: config.engine_deadline,
        ..Budget::default()
    })?;
    // Validation and explanations (one webhook, one event) get a quarter
    // of the deadline ingest has (a batch against every webhook), so that
    // one tenant's heavy explains cannot hold the engine's threads long.
    let one_shot = Budget {
        deadline: config.engine_deadline / 4,
        yields: true,
        ..*runtime.budget()
    };
    let shares = Shares::new(config.tenant_engine_share, config.tenant_engine_burst);
    let engine = Pool::new(Arc::clone(&runtime), one_shot, shares);
    let catalog = engine
        .run(|s| s.call(Op::Catalog, "null"))
        .await
        .context("reading the engine's catalogue")?;
    let matcher = Matcher::load(runtime, store.as_ref())
        .await
        .context("loading the webhooks into the rule engine")?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let metrics = Arc::new(Metrics::new());
    let dispatcher = Dispatcher::new(
        config,
        Arc::clone(&store),
        Arc::clone(&matcher),
        Arc::clone(&wake),
        Arc::clone(&metrics),
        Arc::clone(&vault),
    )?;
    if let Some(changes) = store.follow() {
        tokio::spawn(follow_others(
            Arc::clone(&store),
            changes,
            Arc::clone(&matcher),
            Arc::clone(&dispatcher),
        ));
    }
    let limit = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    let webhooks = Arc::new(Webhooks::new(
        Arc::clone(&store),
        Arc::clone(&engine),
        Arc::clone(&matcher),
        vault,
        config.secret_overlap,
        Quota {
            webhooks: config.max_webhooks_per_tenant,
            pattern_weight: config.max_pattern_weight_per_tenant,
        },
    ));
    webhooks
        .weigh_stored()
        .await
        .context("weighing the stored webhooks' patterns")?;
    Ok(AppState {
        tests: Arc::new(TestDeliveries::new(
            Arc::clone(&store),
            Arc::clone(&engine),
            Arc::clone(&webhooks),
            Arc::clone(&dispatcher),
        )),
        history: Arc::new(History::new(
            Arc::clone(&store),
            Arc::clone(&engine),
            Arc::clone(&webhooks),
            Arc::clone(&dispatcher),
        )),
        webhooks,
        ingestor: Arc::new(Ingestor::new(
            Arc::clone(&store),
            matcher,
            Arc::clone(&dispatcher),
            config.max_deliveries_per_request,
        )),
        store,
        engine,
        limiter: Arc::new(RateLimit::new(
            limit(config.rate_limit_per_second),
            limit(config.rate_limit_burst),
        )),
        auth_failures: Arc::new(AuthFailures::new(config.auth_failures_per_minute)),
        ingest_limiter: Arc::new(RateLimit::new(
            limit(config.ingest_rate_limit_per_second),
            limit(config.ingest_rate_limit_burst),
        )),
        metrics,
        dispatcher,
        catalog: catalog.into(),
        panel: config
            .panel_dir
            .join("index.html")
            .is_file()
            .then(|| config.panel_dir.clone()),
    })
}

/// Follows what other processes change in a shared database (Postgres)
/// until the store closes: their webhook writes into this process's rule
/// sets, the deliveries they store into its dispatcher, and, when changes
/// may have gone unheard, a check of every webhook's revision.
async fn follow_others(
    store: Arc<dyn Store>,
    mut changes: tokio::sync::mpsc::Receiver<Change>,
    matcher: Arc<Matcher>,
    dispatcher: Arc<Dispatcher>,
) {
    while let Some(change) = changes.recv().await {
        let followed = match change {
            Change::Webhook { tenant_id, id } => {
                matcher.refresh(store.as_ref(), &tenant_id, &id).await
            }
            Change::Deliveries => {
                dispatcher.wake();
                Ok(())
            }
            Change::Missed => {
                dispatcher.wake();
                match matcher.catch_up(store.as_ref()).await {
                    Ok(0) => Ok(()),
                    Ok(webhooks) => {
                        tracing::info!(webhooks, "caught up with other instances' webhook changes");
                        Ok(())
                    }
                    Err(error) => Err(error),
                }
            }
        };
        if let Err(error) = followed {
            tracing::warn!(%error, "following another instance's change failed; the next check retries");
        }
    }
}

/// Serves the API on `listener` and delivers until `shutdown` completes,
/// then lets the requests and attempts in flight finish and closes the
/// store.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = connections::Limits {
        max_connections: config.max_connections as usize,
        header_timeout: config.header_timeout,
    };
    let body_timeout = config.body_timeout;
    let store = Arc::clone(&state.store);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivering = state.dispatcher.spawn(stopped);
    let forgetting = tokio::spawn(forget_idle_keys(state.clone()));
    // A store that stops taking writes (its writer died) shuts the server
    // down with an error, so that a supervisor restarts the process instead
    // of it answering 500 to every write; `/readyz` says 503 meanwhile.
    let (failed, failure) = oneshot::channel();
    let watched = Arc::clone(&store);
    let stop_serving = async move {
        tokio::select! {
            () = shutdown => {}
            () = watched.stopped() => {
                tracing::error!("the database stopped taking writes; shutting down");
                let _ = failed.send(());
            }
        }
    };
    connections::serve(
        listener,
        api::app(state, body_timeout),
        limits,
        stop_serving,
    )
    .await;
    let _ = stop.send(true);
    forgetting.abort();
    if let Err(error) = delivering.await {
        tracing::error!(%error, "the dispatcher failed");
    }
    store.close().await;
    match failure.await {
        Ok(()) => Err(anyhow::anyhow!("the database stopped taking writes")),
        Err(_) => Ok(()),
    }
}

/// Every minute, forgets the rate limits of keys idle long enough that
/// remembering them changes nothing (revoked keys, finished scripts).
async fn forget_idle_keys(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        state.limiter.forget_idle();
        state.ingest_limiter.forget_idle();
    }
}

/// `inbox-webhooks serve`: binds, says where to go, and serves until
/// SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let stop = signal();
    let state = state(&config).await?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {} (bind, INBOX_BIND)", config.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %redact(&config.database_url()), "listening");
    match &state.panel {
        Some(_) => tracing::info!("control panel at http://{addr}/"),
        None => tracing::warn!(
            panel_dir = %config.panel_dir.display(),
            "no control panel built there; `scripts/run` builds it (or `npm run build` in web/)"
        ),
    }
    tracing::info!("API at http://{addr}/v1, its OpenAPI document at http://{addr}/openapi.json");
    if state.store.tenants().await?.is_empty() {
        tracing::info!(
            "no tenant yet: `scripts/run tenant create <name>` (or `inbox-webhooks tenant create <name>`) makes one and prints its keys"
        );
    }
    serve(listener, state, &config, stop).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Listens for SIGINT (Ctrl-C) and SIGTERM from the call on, so that one
/// sent while the server starts is not lost (nor kills it unannounced);
/// the future completes on the first.
fn signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut one), Err(error)) | (Err(error), Ok(mut one)) => {
                tracing::warn!(%error, "cannot listen for SIGINT or SIGTERM; the other stops the server");
                one.recv().await;
            }
            (Err(error), Err(_)) => {
                tracing::warn!(%error, "cannot listen for SIGINT or SIGTERM; only SIGKILL stops the server");
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("shutting down");
    }
}

/// A database URL without its password, for the logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A server started in this process (for tests and embedding).
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts a server with `config` (bind to port 0 to get a free port).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let state = state(&config).await?;
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, state, &config, async {
                let _ = stopped.await;
            })
            .await
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// Stops it gracefully and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("server task")?
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower::ServiceExt as _;

    use super::*;

    /// A server over a store whose writer can be crashed.
    async fn over_crashable_store(
        dir: &tempfile::TempDir,
    ) -> (Config, Arc<store::SqliteStore>, AppState) {
        let config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let store = Arc::new(
            store::SqliteStore::open(&config.database_url())
                .await
                .expect("store"),
        );
        let state = state_on(&config, Arc::clone(&store) as Arc<dyn Store>)
            .await
            .expect("state");
        (config, store, state)
    }

    async fn readiness(state: &AppState) -> u16 {
        let request = axum::http::Request::get("/readyz")
            .body(axum::body::Body::empty())
            .expect("request");
        let app = api::app(state.clone(), Duration::from_secs(30));
        app.oneshot(request)
            .await
            .expect("answered")
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn a_dead_writer_makes_the_server_unready() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, store, state) = over_crashable_store(&dir).await;
        assert_eq!(readiness(&state).await, 200);
        store.crash_writer().await;
        assert_eq!(readiness(&state).await, 503);
    }

    #[tokio::test]
    async fn a_dead_writer_stops_the_server_with_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, store, state) = over_crashable_store(&dir).await;
        let listener = TcpListener::bind(config.bind).await.expect("bind");
        let serving =
            tokio::spawn(
                async move { serve(listener, state, &config, std::future::pending()).await },
            );
        store.crash_writer().await;
        let stopped = tokio::time::timeout(Duration::from_secs(30), serving)
            .await
            .expect("the server stopped by itself")
            .expect("task");
        let error = stopped.expect_err("an error, for a non-zero exit");
        assert!(
            error.to_string().contains("stopped taking writes"),
            "{error}"
        );
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/inbox"),
            "postgres://…@db:5432/inbox"
        );
        assert_eq!(
            redact("sqlite://./data/inbox.db"),
            "sqlite://./data/inbox.db"
        );
    }
}
