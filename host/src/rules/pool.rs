//! Sessions shared by async tasks.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::share::Shares;
use super::workers::Workers;
use super::{Budget, Error, Runtime, Session};

/// Where the engine's one-shot calls run. A tenant's calls take turns,
/// draw on its [`Shares`] account of engine time, and run on the
/// [`Workers`]' threads; the server's own calls (the catalogue, readiness)
/// run on tokio's blocking threads, on sessions kept between calls, so
/// that no tenant's storm delays them.
#[derive(Debug)]
pub struct Pool {
    runtime: Arc<Runtime>,
    /// What bounds each call of the pool's sessions.
    budget: Budget,
    shares: Shares,
    workers: Workers,
    idle: Mutex<Vec<Session>>,
}

impl Pool {
    /// An empty pool on `runtime` whose calls are bounded by `budget` and
    /// whose tenants share engine time by `shares`; sessions are made as
    /// calls need them.
    pub fn new(runtime: Arc<Runtime>, budget: Budget, shares: Shares) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = Workers::start(&runtime, budget, cores);
        Arc::new(Self {
            runtime,
            budget,
            shares,
            workers,
            idle: Mutex::default(),
        })
    }

    /// Runs `call` for `tenant`: after the tenant's earlier calls, while
    /// its engine time lasts ([`Error::Busy`] when it is spent), charging
    /// the processor time the call takes.
    pub async fn run_for<R: Send + 'static>(
        self: &Arc<Self>,
        tenant: &str,
        call: impl FnOnce(&mut Session) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let turn = self.shares.enter(tenant).await.map_err(Error::Busy)?;
        let (answer, spent) = self.workers.run(call).await?;
        turn.charge(spent);
        answer
    }

    /// `Ok` while `tenant` has engine time left, else [`Error::Busy`]:
    /// lets a request be refused before its body is read.
    pub fn admits(&self, tenant: &str) -> Result<(), Error> {
        self.shares.check(tenant).map_err(Error::Busy)
    }

    /// Runs `call` for the server itself (the catalogue, readiness), on no
    /// tenant's account, at normal priority.
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&mut Session) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let pool = Arc::clone(self);
        let work = tokio::task::spawn_blocking(move || {
            let taken = pool.lock().pop();
            let mut session = taken
                .unwrap_or_else(|| Session::with_budget(Arc::clone(&pool.runtime), pool.budget));
            let answer = call(&mut session);
            pool.lock().push(session);
            answer
        });
        work.await
            .map_err(|e| Error::Trap(format!("engine task failed: {e}")))?
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Session>> {
        // A panic while holding the lock left the list itself intact.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
