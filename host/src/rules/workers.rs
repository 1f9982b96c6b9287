//! The threads tenants' one-shot calls run on, below the server's own work.
//!
//! Validation, explanations and test deliveries are what a tenant can ask
//! the engine for at will. On a machine of few cores, one such call holding
//! a core makes every other request's threads (the HTTP workers, the
//! engine's ingest calls, the store's writer) queue behind it for a slice
//! of the scheduler's time, which is milliseconds: a lower nice value does
//! not help, since a running thread keeps its slice. These threads run
//! under the scheduler's idle policy (`SCHED_IDLE` on Linux), which any
//! other thread of the machine preempts at once when it wakes, so tenants'
//! one-shot calls use only the processor time nothing else wants.
//!
//! As many threads as cores, each with its own session; calls queue in
//! order of arrival. A call is timed on its thread's processor clock, so a
//! call preempted by ingest is neither charged for the wait nor mistaken
//! for a costly input: a deadline reached with little processor time used
//! is [`Error::Starved`].

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Budget, Error, Runtime, Session};

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The idle-priority threads and the queue that feeds them; dropping it
/// stops them once the queue is empty.
#[derive(Debug)]
pub(super) struct Workers {
    jobs: mpsc::Sender<Job>,
    /// Whether the threads run under the idle policy (not every system
    /// lets a thread choose it).
    idle: bool,
}

impl Workers {
    /// Starts `count` threads, each with a session bounded by `budget`.
    pub(super) fn start(runtime: &Arc<Runtime>, budget: Budget, count: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (lowered, started) = mpsc::channel();
        for n in 0..count.max(1) {
            let (queue, runtime, lowered) =
                (Arc::clone(&queue), Arc::clone(runtime), lowered.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("rules-oneshot-{n}"))
                .spawn(move || {
                    // The outcome goes to `start` before any job is taken.
                    let _ = lowered.send(lower_priority());
                    drop(lowered);
                    work(&queue, &runtime, budget);
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start an engine thread");
            }
        }
        drop(lowered);
        let outcomes: Vec<bool> = started.iter().collect();
        let idle = !outcomes.is_empty() && outcomes.iter().all(|&idle| idle);
        Self { jobs, idle }
    }

    /// Whether the threads run under the scheduler's idle policy.
    pub(super) fn idle(&self) -> bool {
        self.idle
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

/// Puts the calling thread under the scheduler's idle policy; `false`
/// (logged) where the system refuses it: the thread then runs at normal
/// priority, as every other.
fn lower_priority() -> bool {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(?error, "engine thread left at normal priority");
            false
        }
    }
}

/// The processor time the calling thread has used.
fn thread_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}
