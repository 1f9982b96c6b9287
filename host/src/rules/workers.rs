//! The threads tenants' one-shot calls run on.
//!
//! Validation, explanations and test deliveries are what a tenant can ask
//! the engine for at will. They run on threads of their own, as many as
//! cores, each with its own session, in order of arrival, so that however
//! many a storm of them brings, they hold at most the cores and never the
//! threads ingest and delivery run on.
//!
//! A call is timed on its thread's processor clock: the tenant is charged
//! what the call used, not the time the scheduler gave other threads
//! meanwhile (the deadline is processor time too, see
//! [`super::runtime`]).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use super::runtime::thread_time;
use super::{Budget, Error, Runtime, Session};

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The threads and the queue that feeds them; dropping it stops them once
/// the queue is empty.
#[derive(Debug)]
pub(super) struct Workers {
    jobs: mpsc::Sender<Job>,
}

impl Workers {
    /// Starts `count` threads, each with a session bounded by `budget`.
    pub(super) fn start(runtime: &Arc<Runtime>, budget: Budget, count: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..count.max(1) {
            let (queue, runtime) = (Arc::clone(&queue), Arc::clone(runtime));
            let spawned = std::thread::Builder::new()
                .name(format!("rules-oneshot-{n}"))
                .spawn(move || work(&queue, &runtime, budget));
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start an engine thread");
            }
        }
        Self { jobs }
    }

    /// Runs `call` on the next free thread, and its processor time.
    pub(super) async fn run<R: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Session) -> R + Send + 'static,
    ) -> Result<(R, Duration), Error> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |session| {
            let started = thread_time();
            let result = call(session);
            let _ = answer.send((result, thread_time().saturating_sub(started)));
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Trap("the engine's threads have stopped".into()))?;
        answered
            .await
            .map_err(|_| Error::Trap("an engine call failed on its thread".into()))
    }
}

/// A thread's loop: takes jobs until the queue is closed. A job that
/// panics (a bug) leaves its session in no known state: the thread starts
/// a fresh one.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, runtime: &Arc<Runtime>, budget: Budget) {
    let mut session = Session::with_budget(Arc::clone(runtime), budget);
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut session))).is_err() {
            session = Session::with_budget(Arc::clone(runtime), budget);
        }
    }
}
