//! Group commit for the hot writes: ingested events and delivery attempts.
//!
//! With `synchronous = FULL` every commit waits for the disk, so committing
//! each request alone caps throughput at the disk's flush rate. Instead one
//! task takes every write waiting in its queue (up to [`MAX_GROUP`]), runs
//! them in one transaction, commits once, and only then answers each
//! caller. Should a write fail, the group is run again one write per
//! transaction, so a bad write fails alone. No caller hears "done" before
//! its write is on disk.

use tokio::sync::{mpsc, oneshot};

use sqlx::SqlitePool;

use super::sqlite::{finish_in, ingest_in};
use super::{Attempt, Health, Ingested, Millis, NewEvent, Next, StoreError};

/// The most writes committed together.
const MAX_GROUP: usize = 512;
/// Writes waiting at most; callers past it wait to enqueue (backpressure).
const QUEUE: usize = 4096;

/// A write to commit.
#[derive(Debug)]
enum Work {
    Ingest {
        tenant: String,
        events: Vec<NewEvent>,
        at: Millis,
    },
    Finish {
        delivery: String,
        attempt: Option<Attempt>,
        next: Next,
        health: Health,
        at: Millis,
    },
}

/// What a write returned.
#[derive(Debug)]
enum Done {
    Ingested(Vec<Ingested>),
    Finished(bool),
}

type Reply = oneshot::Sender<Result<Done, StoreError>>;

/// The queue of the group-commit task.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<(Work, Reply)>,
}

impl GroupCommit {
    /// Starts the task that commits on `writer`.
    pub(super) fn spawn(writer: SqlitePool) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, waiting));
        Self { queue }
    }

    async fn submit(&self, work: Work) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Database(sqlx::Error::PoolClosed);
        self.queue.send((work, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// See [`super::Store::ingest`].
    pub(super) async fn ingest(
        &self,
        tenant: String,
        events: Vec<NewEvent>,
        at: Millis,
    ) -> Result<Vec<Ingested>, StoreError> {
        match self.submit(Work::Ingest { tenant, events, at }).await? {
            Done::Ingested(ingested) => Ok(ingested),
            Done::Finished(_) => Err(mismatch()),
        }
    }

    /// See [`super::Store::finish`].
    pub(super) async fn finish(
        &self,
        delivery: String,
        attempt: Option<Attempt>,
        next: Next,
        health: Health,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let work = Work::Finish {
            delivery,
            attempt,
            next,
            health,
            at,
        };
        match self.submit(work).await? {
            Done::Finished(disabled) => Ok(disabled),
            Done::Ingested(_) => Err(mismatch()),
        }
    }
}

fn mismatch() -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(
        "group commit answered a different kind of write".to_owned(),
    ))
}

async fn run(writer: SqlitePool, mut waiting: mpsc::Receiver<(Work, Reply)>) {
    while let Some(first) = waiting.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match waiting.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        commit(&writer, group).await;
    }
}

async fn commit(writer: &SqlitePool, group: Vec<(Work, Reply)>) {
    let (works, replies): (Vec<Work>, Vec<Reply>) = group.into_iter().unzip();
    match run_group(writer, &works).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result.map_err(StoreError::from));
            }
        }
        Err(error) => {
            tracing::error!(%error, writes = replies.len(), "group commit failed");
            for reply in replies {
                let failed = sqlx::Error::Protocol(format!("the commit failed: {error}"));
                let _ = reply.send(Err(StoreError::Database(failed)));
            }
        }
    }
}

/// Runs every write of a group in one transaction and commits once. When a
/// write fails, the group is rolled back and each write is run again in a
/// transaction of its own, so that one bad write fails alone. (A savepoint
/// per write would do the same in one pass, at two more statements per
/// write on the common path, where nothing fails.)
async fn run_group(
    writer: &SqlitePool,
    works: &[Work],
) -> Result<Vec<Result<Done, sqlx::Error>>, sqlx::Error> {
    match together(writer, works).await {
        Ok(done) => Ok(done.into_iter().map(Ok).collect()),
        Err(error) if works.len() == 1 => Ok(vec![Err(error)]),
        Err(_) => {
            let mut results = Vec::with_capacity(works.len());
            for work in works {
                results.push(
                    together(writer, std::slice::from_ref(work))
                        .await
                        .map(|mut done| done.pop().unwrap_or(Done::Finished(false))),
                );
            }
            Ok(results)
        }
    }
}

/// Every write in one transaction, committed; the first failure stops it
/// (the transaction is rolled back when dropped).
async fn together(writer: &SqlitePool, works: &[Work]) -> Result<Vec<Done>, sqlx::Error> {
    let mut tx = writer.begin().await?;
    let mut done = Vec::with_capacity(works.len());
    for work in works {
        done.push(match work {
            Work::Ingest { tenant, events, at } => {
                Done::Ingested(ingest_in(&mut tx, tenant, events, *at).await?)
            }
            Work::Finish {
                delivery,
                attempt,
                next,
                health,
                at,
            } => Done::Finished(
                finish_in(&mut tx, delivery, attempt.as_ref(), *next, *health, *at).await?,
            ),
        });
    }
    tx.commit().await?;
    Ok(done)
}
