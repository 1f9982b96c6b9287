//! The one connection that writes, on a thread of its own, committing in
//! groups.
//!
//! Every write of the SQLite store is a closure sent to this thread. The
//! thread owns a rusqlite connection and takes every write waiting in its
//! queue (up to [`MAX_GROUP`]), runs them in one transaction, commits once,
//! and only then answers each caller. With `synchronous = FULL` a commit
//! waits for the disk, so a group shares that wait; and since the whole
//! group runs in one call on one thread, its statements cost no thread
//! hand-offs (sqlx sends each statement to a worker thread and waits for
//! the answer: two context switches per statement, which profiles of the
//! server under load showed as its largest cost).
//!
//! Should a write fail, the group is rolled back and each write runs again
//! in a transaction of its own, so a bad write fails alone. (A savepoint
//! per write would do the same in one pass, at two more statements per
//! write on the common path, where nothing fails.) No caller hears "done"
//! before its write is on disk.
//!
//! Checkpoints (copying committed pages from the write-ahead log into the
//! database file) run on a thread and connection of their own. SQLite's
//! automatic checkpoint would run inside a commit every 1,000 pages, and
//! every write of that group, and of the groups queued behind it, would
//! wait for the copy and its fsync: the slowest requests under load. The
//! checkpointer copies what is committed every [`Checkpoints::every`]
//! without holding writes back. Under load it never catches up, though
//! (more is committed while it copies), and the log can only start over
//! once every page of it is copied. So once the log passes
//! [`Checkpoints::restart_frames`], the checkpointer asks the writer to
//! catch up: between two groups, the writer copies the few pages committed
//! since the checkpointer's last pass, nothing is committed meanwhile, and
//! its next transaction starts the log over. (A `RESTART` checkpoint from
//! the checkpointer's thread did the same, but it first waits for the
//! writer's lock and then holds it while it waits for readers, both by
//! sleeping in SQLite's busy handler: it stalled every write for 10 to 340
//! ms at a time, the slowest requests under load.)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// The most writes committed together.
const MAX_GROUP: usize = 512;
/// Writes waiting at most; callers past it wait to enqueue (backpressure).
const QUEUE: usize = 4096;
/// Prepared statements kept: every statement the store writes with.
const STATEMENTS: usize = 64;

/// When the checkpointer works.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checkpoints {
    /// How often it copies what is committed.
    pub(super) every: Duration,
    /// The log's length, in pages, past which it asks the writer to catch
    /// up, so that the log starts over.
    pub(super) restart_frames: i64,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self {
            every: Duration::from_millis(100),
            // 16 MiB of 4 KiB pages.
            restart_frames: 4096,
        }
    }
}

/// The handle to the writer thread; clones share it.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Message>,
    /// The checkpointer's request to catch up, for tests to make.
    #[cfg(test)]
    catch_up: Arc<AtomicBool>,
}

enum Message {
    Write(Box<dyn Write>),
    /// Finish what is queued before, close the connection, then answer.
    Close(oneshot::Sender<()>),
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Write(_) => "Write",
            Self::Close(_) => "Close",
        })
    }
}

/// A write waiting for the thread: run in a transaction (perhaps twice, if
/// its group had to be run again), then answered.
trait Write: Send {
    fn apply(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()>;
    fn answer(self: Box<Self>, outcome: rusqlite::Result<()>);
}

/// A closure and the caller waiting for what it returns.
struct Job<T, F> {
    write: F,
    done: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Write for Job<T, F>
where
    T: Send,
    F: FnMut(&Transaction<'_>) -> rusqlite::Result<T> + Send,
{
    fn apply(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.done = Some((self.write)(tx)?);
        Ok(())
    }

    fn answer(self: Box<Self>, outcome: rusqlite::Result<()>) {
        let answer = match (outcome, self.done) {
            (Ok(()), Some(done)) => Ok(done),
            (Ok(()), None) => Err(StoreError::WriterGone),
            (Err(error), _) => Err(StoreError::from(error)),
        };
        let _ = self.reply.send(answer);
    }
}

impl Writer {
    /// Opens the database file at `path` for writing and starts the thread
    /// that owns the connection, and the checkpointer.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Checkpoints::default())
    }

    /// [`Self::open`] with checkpoints of its own.
    pub(super) fn open_with(path: &Path, checkpoints: Checkpoints) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        })?;
        // The default page cache (2 MiB): a larger one cost more than it saved,
        // since SQLite walks the whole cache at the end of every transaction
        // (`pcache1TruncateUnsafe`, 15 % of the server's time at 32 MiB).
        // No checkpoint inside a commit: the checkpointer's thread does it.
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
        )?;
        // Another process (the CLI) may be writing for a moment.
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        let checkpointer = Checkpointer::start(path, checkpoints)?;
        #[cfg(test)]
        let catch_up = Arc::clone(&checkpointer.catch_up);
        let (queue, waiting) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, waiting, checkpointer))
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Self {
            queue,
            #[cfg(test)]
            catch_up,
        })
    }

    /// Runs `write` in a transaction on the writer's connection and answers
    /// once it has committed. `write` may run twice (its first transaction
    /// rolled back, when another write of its group failed), so it must
    /// only touch the database.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            write,
            done: None,
            reply,
        };
        self.queue
            .send(Message::Write(Box::new(job)))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Completes once the writer's thread has ended: closed, or died.
    pub(super) async fn stopped(&self) {
        self.queue.closed().await;
    }

    /// Lets the writes queued so far finish, then closes the connection.
    pub(super) async fn close(&self) {
        let (reply, closed) = oneshot::channel();
        if self.queue.send(Message::Close(reply)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

fn run(mut conn: Connection, mut waiting: mpsc::Receiver<Message>, checkpointer: Checkpointer) {
    let mut closing = None;
    while let Some(first) = waiting.blocking_recv() {
        let mut group = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(write) => group.push(write),
                Message::Close(reply) => {
                    closing = Some(reply);
                    break;
                }
            }
            if group.len() < MAX_GROUP {
                next = waiting.try_recv().ok();
            }
        }
        if !group.is_empty() {
            commit(&mut conn, group);
        }
        if checkpointer.catch_up.load(Ordering::Relaxed) {
            match copy_committed(&conn) {
                Ok(Copied { all: true, .. }) => {
                    checkpointer.catch_up.store(false, Ordering::Relaxed);
                }
                // Again after the next group.
                Ok(Copied { all: false, .. }) => {}
                Err(error) => tracing::warn!(%error, "checkpointing the database"),
            }
        }
        if closing.is_some() {
            break;
        }
    }
    checkpointer.stop();
    // The last connection to close checkpoints what is left.
    if let Err((_, error)) = conn.close() {
        tracing::error!(%error, "closing the database writer");
    }
    if let Some(reply) = closing {
        let _ = reply.send(());
    }
}

/// Runs a group in one transaction; when that fails, each write alone.
fn commit(conn: &mut Connection, mut group: Vec<Box<dyn Write>>) {
    match together(conn, &mut group) {
        Ok(()) => group.into_iter().for_each(|write| write.answer(Ok(()))),
        Err(error) if group.len() == 1 => {
            if let Some(write) = group.pop() {
                write.answer(Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(%error, writes = group.len(), "a group commit failed; writing each alone");
            for mut write in group {
                let outcome = together(conn, std::slice::from_mut(&mut write));
                write.answer(outcome);
            }
        }
    }
}

/// Every write in one transaction, committed; the first failure stops it
/// (the transaction is rolled back when dropped).
fn together(conn: &mut Connection, group: &mut [Box<dyn Write>]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for write in group.iter_mut() {
        write.apply(&tx)?;
    }
    tx.commit()
}

/// The thread that checkpoints, with a connection of its own.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    /// Set when the log is past its bound: the writer is to copy what is
    /// left of it.
    catch_up: Arc<AtomicBool>,
}

impl Checkpointer {
    fn start(path: &Path, checkpoints: Checkpoints) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Should a lock it needs be held a moment (opening the log, say),
        // it waits rather than fails. (A `PASSIVE` checkpoint never waits.)
        conn.busy_timeout(Duration::from_secs(10))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let catch_up = Arc::new(AtomicBool::new(false));
        let asking = Arc::clone(&catch_up);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(checkpoints.every)
                {
                    match copy_committed(&conn) {
                        Ok(copied) if copied.log >= checkpoints.restart_frames => {
                            asking.store(true, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "checkpointing the database"),
                    }
                }
            })
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Self {
            stop,
            thread,
            catch_up,
        })
    }

    /// Stops the thread and closes its connection.
    fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

/// What a checkpoint did, in pages.
struct Copied {
    /// The log's length.
    log: i64,
    /// Whether every page of the log is now in the database file (so that
    /// the next transaction starts the log over). Not when another
    /// checkpoint was running, or a reader still needs pages of the log.
    all: bool,
}

/// Copies what is committed into the database file, without waiting for
/// anyone (a `PASSIVE` checkpoint).
fn copy_committed(conn: &Connection) -> rusqlite::Result<Copied> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        let (busy, log, copied): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        Ok(Copied {
            log,
            all: busy == 0 && copied == log,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages in the log, as a checkpoint that copies nothing reports them.
    fn log_frames(path: &Path) -> i64 {
        let conn = Connection::open(path).expect("open");
        copy_committed(&conn).expect("checkpoint").log
    }

    /// 1,500 commits of a page or more each, through a writer with
    /// `checkpoints`, into a database in `dir`: a log of thousands of pages
    /// if nothing checkpoints, since the writer does only when asked.
    async fn fill(dir: &Path, checkpoints: Checkpoints) -> (Writer, std::path::PathBuf) {
        let path = dir.join("w.db");
        let writer = Writer::open_with(&path, checkpoints).expect("open");
        writer
            .write(|tx| tx.execute_batch("CREATE TABLE t (b BLOB)"))
            .await
            .expect("schema");
        commit_blobs(&writer, 1500).await;
        (writer, path)
    }

    /// `count` commits of a row of 3,000 bytes each.
    async fn commit_blobs(writer: &Writer, count: usize) {
        let blob = vec![7u8; 3000];
        for _ in 0..count {
            let blob = blob.clone();
            writer
                .write(move |tx| tx.execute("INSERT INTO t (b) VALUES (?1)", [&blob]))
                .await
                .expect("write");
        }
    }

    /// A checkpointer that does not come round during a test.
    const IDLE: Checkpoints = Checkpoints {
        every: Duration::from_secs(3600),
        restart_frames: 64,
    };

    #[tokio::test]
    async fn the_log_starts_over_instead_of_growing() {
        let dir = tempfile::tempdir().expect("dir");
        let checkpoints = Checkpoints {
            every: Duration::from_millis(5),
            restart_frames: 64,
        };
        let (writer, path) = fill(dir.path(), checkpoints).await;
        let frames = log_frames(&path);
        assert!(frames < 1000, "the log holds {frames} pages");
        let rows: i64 = Connection::open(&path)
            .expect("open")
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 1500);
        writer.close().await;
    }

    #[tokio::test]
    async fn the_writer_checkpoints_only_when_asked() {
        let dir = tempfile::tempdir().expect("dir");
        let (writer, path) = fill(dir.path(), IDLE).await;
        let frames = log_frames(&path);
        assert!(frames > 1500, "the log holds {frames} pages");
        writer.close().await;
    }

    /// Asked to catch up, the writer copies the log between two groups,
    /// and the log starts over at the next: no other checkpoint is needed
    /// (under load, the checkpointer's own passes never copy all of it).
    /// The log's file is measured, not its pages: asking SQLite for those
    /// would checkpoint it.
    #[tokio::test]
    async fn the_writer_catches_up_when_asked_and_the_log_starts_over() {
        let dir = tempfile::tempdir().expect("dir");
        let (writer, path) = fill(dir.path(), IDLE).await;
        let log_bytes = || {
            std::fs::metadata(path.with_extension("db-wal"))
                .expect("the log")
                .len()
        };
        let filled = log_bytes();
        assert!(filled > 1500 * 4096, "{filled} bytes of log");
        writer.catch_up.store(true, Ordering::Relaxed);
        commit_blobs(&writer, 1500).await;
        assert!(!writer.catch_up.load(Ordering::Relaxed), "caught up");
        // Had it grown, the second 1,500 commits would have doubled it; from
        // the start again, they fill about as much (a little more: the
        // table is deeper).
        let after = log_bytes();
        assert!(
            after < filled + filled / 4,
            "the log started over rather than grow: {filled} then {after} bytes"
        );
        writer.close().await;
    }
}
