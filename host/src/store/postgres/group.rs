//! Writes committed in groups: callers queue a request and wait for its
//! answer; each of a few writer tasks takes every request waiting (up to
//! [`MAX_GROUP`]) and writes them together (see `ingest.rs` and
//! `finish.rs` for what "together" means for each).
//!
//! A commit waits for the disk, and every statement is a round trip to
//! another process: one transaction per request spends the server's time
//! there. A group of one costs what a request alone would; under load, the
//! round trips and the commit are shared.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::StoreError;

/// The most requests written together.
pub(super) const MAX_GROUP: usize = 128;
/// Requests waiting at most; callers past it wait to enqueue.
const QUEUE: usize = 4096;

/// A request in the queue, and where its answer goes.
#[derive(Debug)]
pub(super) struct Waiting<Q, A> {
    pub(super) request: Q,
    answer: oneshot::Sender<Result<A, StoreError>>,
}

impl<Q, A> Waiting<Q, A> {
    /// Answers the caller (who may have stopped waiting).
    pub(super) fn answer(self, answer: Result<A, StoreError>) {
        let _ = self.answer.send(answer);
    }
}

/// The queue in front of the writer tasks. The tasks end once every
/// clone of it is dropped.
#[derive(Debug)]
pub(super) struct Groups<Q, A> {
    queue: mpsc::Sender<Waiting<Q, A>>,
}

impl<Q, A> Clone for Groups<Q, A> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<Q: Send + 'static, A: Send + 'static> Groups<Q, A> {
    /// Starts `writers` tasks, each writing the groups it takes with
    /// `write`, which answers every request of the group.
    pub(super) fn start<W, F>(writers: usize, write: W) -> Self
    where
        W: Fn(Vec<Waiting<Q, A>>) -> F + Clone + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..writers {
            tokio::spawn(writer(Arc::clone(&waiting), write.clone()));
        }
        Self { queue }
    }

    /// Queues `request` and waits for its answer.
    pub(super) async fn call(&self, request: Q) -> Result<A, StoreError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the store's writers have stopped".into());
        self.queue
            .send(Waiting { request, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// One writer task: takes every request waiting and writes them as a group.
async fn writer<Q, A, W, F>(waiting: Arc<Mutex<mpsc::Receiver<Waiting<Q, A>>>>, write: W)
where
    W: Fn(Vec<Waiting<Q, A>>) -> F,
    F: Future<Output = ()>,
{
    loop {
        let group = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match waiting.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            group
        };
        write(group).await;
    }
}

/// Writes `requests` as one group with `write`, as a writer does with the
/// requests it finds waiting: each one's answer. For tests.
#[cfg(test)]
pub(super) async fn as_group<Q, A, F>(
    requests: Vec<Q>,
    write: impl FnOnce(Vec<Waiting<Q, A>>) -> F,
) -> Vec<Result<A, StoreError>>
where
    F: Future<Output = ()>,
{
    let (group, answers): (Vec<_>, Vec<_>) = requests
        .into_iter()
        .map(|request| {
            let (answer, answered) = oneshot::channel();
            (Waiting { request, answer }, answered)
        })
        .unzip();
    write(group).await;
    let mut written = Vec::new();
    for answered in answers {
        written.push(answered.await.expect("answered"));
    }
    written
}
