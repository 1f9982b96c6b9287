//! Sessions shared by async tasks.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Budget, Error, Runtime, Session};

/// Idle sessions. A call takes one (or makes one), runs on tokio's blocking
/// threads so that a slow call never stalls the request loop, and puts the
/// session back.
#[derive(Debug)]
pub struct Pool {
    runtime: Arc<Runtime>,
    /// What bounds each call of the pool's sessions.
    budget: Budget,
    idle: Mutex<Vec<Session>>,
}

impl Pool {
    /// An empty pool on `runtime` whose calls are bounded by `budget`;
    /// sessions are made as calls need them.
    pub fn new(runtime: Arc<Runtime>, budget: Budget) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            budget,
            idle: Mutex::default(),
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
