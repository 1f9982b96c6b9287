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
    /// the processor time the call takes. A deadline reached on less than
    /// half the deadline's processor time was the server's load, not the
    /// input: [`Error::Starved`].
    pub async fn run_for<R: Send + 'static>(
        self: &Arc<Self>,
        tenant: &str,
        call: impl FnOnce(&mut Session) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let turn = self.shares.enter(tenant).await.map_err(Error::Busy)?;
        let (answer, spent) = self.workers.run(call).await?;
        turn.charge(spent);
        crowded_out(answer, spent)
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

/// A call's answer, given the processor time it used: a deadline reached
/// on less than half of it was the machine's load, not the input.
fn crowded_out<R>(answer: Result<R, Error>, spent: std::time::Duration) -> Result<R, Error> {
    match answer {
        Err(Error::Timeout(deadline)) if spent < deadline / 2 => Err(Error::Starved(deadline)),
        answer => answer,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Error, crowded_out};

    #[test]
    fn a_deadline_reached_on_little_processor_time_is_the_machines_load() {
        let deadline = Duration::from_millis(500);
        let timeout = || Err::<(), _>(Error::Timeout(deadline));
        let starved = crowded_out(timeout(), Duration::from_millis(40));
        assert!(
            matches!(starved, Err(Error::Starved(d)) if d == deadline),
            "{starved:?}"
        );
        let costly = crowded_out(timeout(), Duration::from_millis(480));
        assert!(matches!(costly, Err(Error::Timeout(_))), "{costly:?}");
        assert!(crowded_out(Ok(()), Duration::ZERO).is_ok());
        let other = crowded_out::<()>(Err(Error::OutOfMemory(1)), Duration::ZERO);
        assert!(matches!(other, Err(Error::OutOfMemory(1))), "{other:?}");
    }
}
