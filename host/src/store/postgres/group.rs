//! Statements shared by groups of requests: callers queue a request and
//! wait for its answer; each of a few writer tasks takes every request
//! waiting (up to [`MAX_GROUP`]) and serves them together (see `ingest.rs`
//! and `finish.rs` for what writing together means for each, and
//! `callers.rs` for key lookups).
//!
//! A commit waits for the disk, and every statement is a round trip to
//! another process: one transaction per request spends the server's time
//! there. A group of one costs what a request alone would; under load, the
//! round trips and the commit are shared.
//!
//! The queue may be split into lanes, each with writers of its own, a
//! request going to the lane its key picks: requests that contend for one
//! lock (a busy ticket's) then queue in one lane, and the other lanes'
//! groups never wait for that lock.

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

/// The queues (lanes) in front of the writer tasks. The tasks end once
/// every clone of it is dropped.
#[derive(Debug)]
pub(super) struct Groups<Q, A> {
    lanes: Vec<mpsc::Sender<Waiting<Q, A>>>,
}

impl<Q, A> Clone for Groups<Q, A> {
    fn clone(&self) -> Self {
        Self {
            lanes: self.lanes.clone(),
        }
    }
}

impl<Q: Send + 'static, A: Send + 'static> Groups<Q, A> {
    /// Starts `lanes` queues of `writers` tasks each, each task writing
    /// the groups it takes with `write`, which answers every request of
    /// the group.
    pub(super) fn start<W, F>(lanes: usize, writers: usize, write: W) -> Self
    where
        W: Fn(Vec<Waiting<Q, A>>) -> F + Clone + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let lanes = (0..lanes.max(1))
            .map(|_| {
                let (queue, waiting) = mpsc::channel(QUEUE);
                let waiting = Arc::new(Mutex::new(waiting));
                for _ in 0..writers {
                    tokio::spawn(writer(Arc::clone(&waiting), write.clone()));
                }
                queue
            })
            .collect();
        Self { lanes }
    }

    /// Queues `request` in the lane `key` picks and waits for its answer.
    pub(super) async fn call(&self, key: u64, request: Q) -> Result<A, StoreError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the store's writers have stopped".into());
        let lane = usize::try_from(key % self.lanes.len() as u64).unwrap_or_default();
        self.lanes[lane]
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Groups, Waiting};

    /// A lane whose writer waits (for a lock, say) holds up the requests
    /// of its lane only: another lane's request is answered meanwhile.
    #[tokio::test]
    async fn a_lane_held_up_holds_up_no_other() {
        let (release, released) = tokio::sync::watch::channel(false);
        let (holding, mut held_up) = tokio::sync::mpsc::channel(1);
        // Each request is its lane's key; lane 0's writer says it holds
        // one, then waits for the release.
        let write = move |group: Vec<Waiting<u64, u64>>| {
            let (mut released, holding) = (released.clone(), holding.clone());
            async move {
                for waiting in group {
                    if waiting.request == 0 {
                        let _ = holding.send(()).await;
                        let _ = released.wait_for(|go| *go).await;
                    }
                    let key = waiting.request;
                    waiting.answer(Ok(key));
                }
            }
        };
        let groups: Groups<u64, u64> = Groups::start(2, 1, write);
        let held = tokio::spawn({
            let groups = groups.clone();
            async move { groups.call(0, 0).await }
        });
        held_up
            .recv()
            .await
            .expect("lane 0's writer holds its request");
        let other = tokio::time::timeout(Duration::from_secs(5), groups.call(1, 1))
            .await
            .expect("answered while lane 0 waits");
        assert_eq!(other.expect("answer"), 1);
        assert!(!held.is_finished(), "lane 0 still waits");
        release.send(true).expect("release");
        assert_eq!(held.await.expect("task").expect("answer"), 0);
    }
}
