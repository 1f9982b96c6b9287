//! A throwaway Postgres cluster for tests, started for real: `initdb` in a
//! temporary directory, as an unprivileged user when the tests run as
//! root (Postgres refuses root), listening on 127.0.0.1 on a free port.
//! One cluster per test binary, one fresh database per caller.
//!
//! `INBOX_TEST_POSTGRES_URL` (a superuser URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) uses a running server
//! instead. When neither works, the caller panics: a Postgres test fails,
//! it never skips.
//!
//! The cluster lives as long as the test process: a shell started beside
//! it waits for the process's end (the pipe to its standard input closes,
//! however the process ends), then stops Postgres and removes the
//! directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The uid and gid Postgres runs as when the tests run as root: `nobody`.
const UNPRIVILEGED: u32 = 65_534;

/// How long the cluster may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running cluster: the superuser URL without a database name.
struct Cluster {
    server: String,
    /// The shell that stops it when the test process ends.
    _keeper: Mutex<Child>,
}

fn cluster() -> &'static str {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    if let Ok(url) = std::env::var("INBOX_TEST_POSTGRES_URL") {
        static GIVEN: OnceLock<String> = OnceLock::new();
        return GIVEN.get_or_init(|| match url.rfind('/') {
            Some(slash) if slash > "postgres://".len() => url[..slash].to_owned(),
            _ => url,
        });
    }
    match CLUSTER.get_or_init(start) {
        Ok(cluster) => &cluster.server,
        Err(why) => panic!(
            "no Postgres for the tests: {why}. Install Debian's `postgresql` (scripts/test does) \
             or set INBOX_TEST_POSTGRES_URL to a superuser URL"
        ),
    }
}

/// A fresh, empty database on the test cluster: its URL.
pub(crate) async fn database() -> String {
    create_database(cluster()).await
}

/// A fresh, empty database on the server at `server`: its URL.
/// A connection to the database at `url`; panics when there is none.
pub(crate) async fn connect(url: &str) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

async fn create_database(server: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut connection = connect(&format!("{server}/postgres")).await;
    sqlx::Executor::execute(&mut connection, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    format!("{server}/{name}")
}

/// A cluster's directory, made by `initdb`, not yet running.
struct Initialized {
    bin: PathBuf,
    dir: PathBuf,
    as_root: bool,
    port: u16,
    /// Whether commits reach the disk (`fsync`); tests need not.
    durable: bool,
    /// Whether it counts every statement's calls and time
    /// (`pg_stat_statements`), for the load driver's `--statements`.
    statements: bool,
}

impl Initialized {
    fn new(durable: bool, statements: bool) -> Result<Self, String> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("inbox-postgres-")
            .tempdir()
            .map_err(|e| format!("a temporary directory: {e}"))?
            .keep();
        let as_root = rustix::process::geteuid().is_root();
        if as_root {
            let owner = Some(rustix::process::Uid::from_raw(UNPRIVILEGED));
            let group = Some(rustix::process::Gid::from_raw(UNPRIVILEGED));
            rustix::fs::chown(&dir, owner, group).map_err(|e| format!("chown {dir:?}: {e}"))?;
        }
        let cluster = Self {
            bin,
            dir,
            as_root,
            port: free_port()?,
            durable,
            statements,
        };
        let initdb = cluster
            .command("initdb")
            .arg("-D")
            .arg(cluster.dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C"])
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        Ok(cluster)
    }

    /// `program` of the cluster's binaries, run as its owner.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_root {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid", &UNPRIVILEGED.to_string()])
                .args(["--regid", &UNPRIVILEGED.to_string()])
                .arg("--clear-groups")
                .arg(program);
            command
        } else {
            Command::new(program)
        };
        command.env_remove("PGDATA").current_dir(&self.dir);
        command
    }

    /// The server's command line.
    fn postgres(&self) -> Command {
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "max_connections=300"]);
        if !self.durable {
            // Throwaway data: no need to survive a power cut.
            postgres.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        if self.statements {
            postgres.args(["-c", "shared_preload_libraries=pg_stat_statements"]);
        }
        postgres
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// The superuser URL, without a database.
    fn server(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Waits until the server accepts connections.
    fn wait_until_listening(&self) -> Result<(), String> {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if started.elapsed() > START_TIMEOUT {
                let log = std::fs::read_to_string(self.log()).unwrap_or_default();
                return Err(format!(
                    "postgres did not listen on {} within {START_TIMEOUT:?}: {log}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Listening comes a moment before accepting logins.
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }
}

fn start() -> Result<Cluster, String> {
    let cluster = Initialized::new(false, false)?;
    let postgres = cluster.postgres();
    let line = std::iter::once(postgres.get_program())
        .chain(postgres.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    // The keeper: starts Postgres, waits for the end of its standard input
    // (this process's end), then stops it and removes the directory.
    let script = format!(
        "{line} >{log} 2>&1 & pg=$!; cat >/dev/null; kill -INT $pg; wait $pg; rm -rf {dir}",
        log = shell_quote(&cluster.log().to_string_lossy()),
        dir = shell_quote(&cluster.dir.to_string_lossy()),
    );
    let mut keeper = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&cluster.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    cluster.wait_until_listening()?;
    // Nothing is ever written: the pipe only tells the keeper we live.
    let _ = keeper.stdin.as_mut().map(|stdin| stdin.flush());
    Ok(Cluster {
        server: cluster.server(),
        _keeper: Mutex::new(keeper),
    })
}

/// A cluster of one test's own, which it may stop and start again (to
/// take the database away from a server); stopped and removed when
/// dropped.
pub(crate) struct OwnCluster {
    cluster: Initialized,
    running: Option<Child>,
}

impl OwnCluster {
    /// Initialises and starts one; panics when it cannot.
    pub(crate) fn start() -> Self {
        Self::start_with(false, false)
    }

    /// One whose commits reach the disk, as in production (`fsync` on):
    /// for measuring. With `statements`, it counts every statement's calls
    /// and time (see [`top_statements`]).
    #[allow(
        dead_code,
        reason = "the load driver's (benches/serve.rs), not the tests'"
    )]
    pub(crate) fn start_durable(statements: bool) -> Self {
        Self::start_with(true, statements)
    }

    fn start_with(durable: bool, statements: bool) -> Self {
        let cluster = Initialized::new(durable, statements)
            .unwrap_or_else(|why| panic!("no Postgres: {why}"));
        let mut own = Self {
            cluster,
            running: None,
        };
        own.resume();
        own
    }

    /// A fresh database on it: its URL.
    pub(crate) async fn database(&self) -> String {
        create_database(&self.cluster.server()).await
    }

    /// Stops the server at once (clients see their connections closed).
    pub(crate) fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            // SIGINT: a fast shutdown, closing every connection.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&running),
                rustix::process::Signal::INT,
            );
            let _ = running.wait();
        }
    }

    /// Starts the server again on the same data and port.
    pub(crate) fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cluster.log())
            .expect("the log file");
        let running = self
            .cluster
            .postgres()
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.running = Some(running);
        self.cluster
            .wait_until_listening()
            .unwrap_or_else(|why| panic!("{why}"));
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

/// The directory of `initdb` and `postgres`: on the `PATH`, else Debian's
/// `/usr/lib/postgresql/<version>/bin` (the newest).
fn binaries() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()));
    if let Some(dir) = on_path {
        // Debian links some binaries into the PATH; `postgres` lives beside
        // the real `initdb`.
        let real = std::fs::canonicalize(dir.join("initdb")).map_err(|e| e.to_string())?;
        return Ok(real.parent().map(Path::to_path_buf).unwrap_or(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no initdb on the PATH nor in /usr/lib/postgresql ({e})"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb in /usr/lib/postgresql/*/bin".to_owned())
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Starts counting statements afresh for the database at `url`, on a
/// cluster started with `statements` (see [`OwnCluster::start_durable`]).
#[allow(
    dead_code,
    reason = "the load driver's (benches/serve.rs), not the tests'"
)]
pub(crate) async fn reset_statements(url: &str) {
    let mut connection = connect(url).await;
    for statement in [
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        "SELECT pg_stat_statements_reset()",
    ] {
        sqlx::Executor::execute(&mut connection, statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// The `n` statements that took the database at `url` the most time since
/// [`reset_statements`], as a Markdown table: calls, total and mean time,
/// rows, and each one's share of all statements' time.
#[allow(
    dead_code,
    reason = "the load driver's (benches/serve.rs), not the tests'"
)]
pub(crate) async fn top_statements(url: &str, n: i64) -> String {
    let mut connection = connect(url).await;
    let rows: Vec<(i64, f64, f64, i64, f64, String)> = sqlx::query_as(
        "WITH here AS (
             SELECT * FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
         SELECT calls, total_exec_time, mean_exec_time, rows,
                total_exec_time / NULLIF((SELECT sum(total_exec_time) FROM here), 0),
                left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
         FROM here ORDER BY total_exec_time DESC LIMIT $1",
    )
    .bind(n)
    .fetch_all(&mut connection)
    .await
    .unwrap_or_else(|e| panic!("reading pg_stat_statements: {e}"));
    let mut table = String::from(
        "| calls | total | mean | rows | share | statement |\n|---|---|---|---|---|---|\n",
    );
    for (calls, total, mean, rows, share, query) in rows {
        table.push_str(&format!(
            "| {calls} | {total:.0} ms | {:.0} µs | {rows} | {:.1} % | `{}` |\n",
            mean * 1000.0,
            share * 100.0,
            query.replace('|', "\\|")
        ));
    }
    table
}
