//! Sessions shared by async tasks.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::share::{Shares, Turn};
use super::{Budget, Error, Runtime, Session};

/// Idle sessions. A call takes one (or makes one), runs on tokio's blocking
/// threads so that a slow call never stalls the request loop, and puts the
/// session back. A tenant's calls are metered by its [`Shares`] account.
#[derive(Debug)]
pub struct Pool {
    runtime: Arc<Runtime>,
    /// What bounds each call of the pool's sessions.
    budget: Budget,
    shares: Shares,
    idle: Mutex<Vec<Session>>,
}

impl Pool {
    /// An empty pool on `runtime` whose calls are bounded by `budget` and
    /// whose tenants share engine time by `shares`; sessions are made as
    /// calls need them.
    pub fn new(runtime: Arc<Runtime>, budget: Budget, shares: Shares) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            budget,
            shares,
            idle: Mutex::default(),
        })
    }

    /// Runs `call` for `tenant`: after the tenant's earlier calls, while
    /// its engine time lasts ([`Error::Busy`] when it is spent), charging
    /// the time the call takes.
    pub async fn run_for<R: Send + 'static>(
        self: &Arc<Self>,
        tenant: &str,
        call: impl FnOnce(&mut Session) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let turn = self.shares.enter(tenant).await.map_err(Error::Busy)?;
        self.spawn(Some(turn), call).await
    }

    /// `Ok` while `tenant` has engine time left, else [`Error::Busy`]:
    /// lets a request be refused before its body is read.
    pub fn admits(&self, tenant: &str) -> Result<(), Error> {
        self.shares.check(tenant).map_err(Error::Busy)
    }

    /// Runs `call` for the server itself (the catalogue, readiness), on no
    /// tenant's account.
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&mut Session) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        self.spawn(None, call).await
    }

    async fn spawn<R: Send + 'static>(
        self: &Arc<Self>,
        turn: Option<Turn>,
        call: impl FnOnce(&mut Session) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let pool = Arc::clone(self);
        let work = tokio::task::spawn_blocking(move || {
            let taken = pool.lock().pop();
            let mut session = taken
                .unwrap_or_else(|| Session::with_budget(Arc::clone(&pool.runtime), pool.budget));
            let started = Instant::now();
            let answer = call(&mut session);
            if let Some(turn) = turn {
                turn.charge(started.elapsed());
            }
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
