//! The load driver, measuring as a user would: the release
//! `inbox-webhooks serve` in processes of its own, nginx as the receiver
//! in a process of its own, and `wrk` posting single events from outside.
//! Prints one table with a row per scenario.
//!
//! ```sh
//! scripts/bench-serve                      # installs wrk, nginx, postgresql; 20 s per row
//! cargo bench -p inbox-webhooks --bench serve -- --seconds 10
//! cargo bench -p inbox-webhooks --bench serve -- --only postgres
//! cargo bench -p inbox-webhooks --bench serve -- --only postgres --statements  # and where Postgres spent its time
//! BENCH_SERVER=/tmp/other/inbox-webhooks cargo bench -p inbox-webhooks --bench serve  # another build's server
//! ```
//!
//! Each row starts from nothing: a fresh data directory (SQLite) or a fresh
//! database on one Postgres cluster started here with `fsync` on (as in
//! production; SQLite runs with `synchronous = FULL`), `tenant create`
//! through the CLI, one webhook that every event matches (one event, one
//! delivery) pointing at nginx on 127.0.0.1. `wrk` then posts single
//! `TicketCreated` events for `--seconds`, each to a random one of the row's
//! tickets, and afterwards the driver reads the servers' `/metrics` until
//! the queue is empty or `--drain` seconds have passed.
//!
//! Two rows run a second stream of `TicketFromUserReply` events beside the
//! first, to a second webhook: over many tickets, or all on one hot
//! ticket. Their difference is what a hot ticket's backlog does to every
//! other ticket. Both streams of these rows are paced (each connection
//! waits [`PACE`] between an answer and its next request, with `wrk`'s
//! `delay`), so that both rows offer the server the same load, below what
//! it can take, whatever each request costs.
//!
//! Delivery lag, a delivery's arrival at nginx less its creation at ingest
//! (the time in its `webhook-id`, a ULID), is read from nginx's access log:
//! the first arrival of each delivery of the first stream.
//!
//! Why `wrk`: it is in Debian, it is what the figures this replaces were
//! measured with (issue 21), it keeps up with far more than one server
//! on two cores, and its Lua hook sends each thread to another instance,
//! which measures several instances with one latency distribution. Its
//! latency is from a request's sending to its answer (closed loop: a slow
//! server lowers the rate rather than the latency it is charged).
#![allow(clippy::print_stdout, reason = "a bench binary prints its table")]

#[allow(dead_code, reason = "the test harness's other helpers")]
#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Scenario {
    name: &'static str,
    backend: Backend,
    instances: usize,
    connections: usize,
    tickets: u64,
    /// A second stream beside the first: its connections and tickets.
    /// Both streams are then paced.
    beside: Option<(usize, u64)>,
}

/// How long each connection of a paced stream waits between an answer
/// and its next request: 16 connections offer at most 1,333 requests/s.
const PACE: Duration = Duration::from_millis(12);

const SCENARIOS: [Scenario; 10] = [
    Scenario {
        name: "SQLite, 32 connections",
        backend: Backend::Sqlite,
        instances: 1,
        connections: 32,
        tickets: 100_000,
        beside: None,
    },
    Scenario {
        name: "SQLite, 8 connections",
        backend: Backend::Sqlite,
        instances: 1,
        connections: 8,
        tickets: 100_000,
        beside: None,
    },
    Scenario {
        name: "SQLite, 32 connections, every event on one ticket",
        backend: Backend::Sqlite,
        instances: 1,
        connections: 32,
        tickets: 1,
        beside: None,
    },
    Scenario {
        name: "Postgres, one instance, 32 connections",
        backend: Backend::Postgres,
        instances: 1,
        connections: 32,
        tickets: 100_000,
        beside: None,
    },
    Scenario {
        name: "Postgres, two instances, 32 connections (16 each)",
        backend: Backend::Postgres,
        instances: 2,
        connections: 32,
        tickets: 100_000,
        beside: None,
    },
    Scenario {
        name: "Postgres, one instance, 32 connections, every event on one ticket",
        backend: Backend::Postgres,
        instances: 1,
        connections: 32,
        tickets: 1,
        beside: None,
    },
    Scenario {
        name: "SQLite, 16 connections beside 16 more on many tickets",
        backend: Backend::Sqlite,
        instances: 1,
        connections: 16,
        tickets: 100_000,
        beside: Some((16, 100_000)),
    },
    Scenario {
        name: "SQLite, 16 connections beside 16 on one hot ticket",
        backend: Backend::Sqlite,
        instances: 1,
        connections: 16,
        tickets: 100_000,
        beside: Some((16, 1)),
    },
    Scenario {
        name: "Postgres, one instance, 16 connections beside 16 more on many tickets",
        backend: Backend::Postgres,
        instances: 1,
        connections: 16,
        tickets: 100_000,
        beside: Some((16, 100_000)),
    },
    Scenario {
        name: "Postgres, one instance, 16 connections beside 16 on one hot ticket",
        backend: Backend::Postgres,
        instances: 1,
        connections: 16,
        tickets: 100_000,
        beside: Some((16, 1)),
    },
];

/// What `wrk` reported.
struct Load {
    requests: u64,
    requests_per_second: f64,
    p50: String,
    p99: String,
    /// Answers other than 2xx, and socket errors.
    failed: u64,
}

struct Row {
    load: Load,
    /// The first stream's delivery lag, p50 and p99 (ms).
    lag: (f64, f64),
    /// The second stream's load and delivery lag, if any.
    beside: Option<(Load, (f64, f64))>,
    /// Deliveries the receiver accepted while the load ran, per second.
    deliveries_per_second: f64,
    /// Pending deliveries when the load stopped.
    backlog: u64,
    /// How long the backlog took to drain, or what was left at `--drain`.
    drained: Result<Duration, u64>,
    /// Deliveries per second after the load, while the backlog drained.
    draining_per_second: Option<f64>,
}

struct Options {
    seconds: u64,
    drain: u64,
    only: Option<String>,
    /// Print the statements that took Postgres the most time, per row.
    statements: bool,
}

fn main() {
    let mut options = Options {
        seconds: 20,
        drain: 60,
        only: None,
        statements: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `cargo bench` passes `--bench` besides.
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => options.seconds = value().parse().expect("--seconds N"),
            "--drain" => options.drain = value().parse().expect("--drain N"),
            "--only" => options.only = Some(value().to_lowercase()),
            "--statements" => options.statements = true,
            _ => {}
        }
    }
    let tools = Tools::find();
    let scenarios: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| {
            options
                .only
                .as_ref()
                .is_none_or(|only| s.name.to_lowercase().contains(only))
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scratch = tempfile::tempdir().expect("temp dir");
    let receiver = Nginx::start(&tools.nginx, scratch.path());
    // Started for the first Postgres row, not before: a cluster just
    // initialised writes and syncs its files for a while, and the rows
    // before it (SQLite's) measured 40 % fewer requests/s beside that.
    let mut cluster: Option<postgres::OwnCluster> = None;
    println!(
        "serve: {} s of load per row, nginx receiver at {}, `wrk -t2 --latency`",
        options.seconds, receiver.url
    );
    let mut rows = Vec::new();
    for scenario in scenarios {
        let database = match scenario.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let cluster = cluster
                    .get_or_insert_with(|| postgres::OwnCluster::start_durable(options.statements));
                let database = runtime.block_on(cluster.database());
                if options.statements {
                    runtime.block_on(postgres::reset_statements(&database));
                }
                Some(database)
            }
        };
        let row = runtime.block_on(measure(
            scenario,
            &options,
            &tools,
            &receiver,
            database.as_deref(),
        ));
        println!("{}", format_row(scenario, &row));
        if let Some((load, lag)) = &row.beside {
            println!("  beside it: {}", format_beside(load, *lag));
        }
        if let Some(database) = database.as_deref().filter(|_| options.statements) {
            println!("\nThe row's statements, load and drain:\n");
            println!(
                "{}",
                runtime.block_on(postgres::top_statements(database, 15))
            );
        }
        rows.push((scenario, row));
    }
    println!();
    println!(
        "| scenario | requests/s | p50 | p99 | failed | delivery lag p50 / p99 | deliveries/s during the load | backlog when it stopped | drained (deliveries/s meanwhile) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (scenario, row) in &rows {
        println!("{}", format_row(scenario, row));
    }
    println!();
    for (scenario, row) in &rows {
        if let Some((load, lag)) = &row.beside {
            println!(
                "- {}: beside it, {}",
                scenario.name,
                format_beside(load, *lag)
            );
        }
    }
}

fn format_beside(load: &Load, (p50, p99): (f64, f64)) -> String {
    format!(
        "{:.0} requests/s, p50 {}, p99 {}, {} failed, delivery lag p50 {p50:.1} ms / p99 {p99:.1} ms",
        load.requests_per_second, load.p50, load.p99, load.failed
    )
}

fn format_row(scenario: &Scenario, row: &Row) -> String {
    let drained = match row.drained {
        Ok(after) => format!("after {:.1} s", after.as_secs_f64()),
        Err(left) => format!("**{left} left**"),
    };
    let draining = row
        .draining_per_second
        .map_or_else(|| "".to_owned(), |rate| format!(", {rate:.0}/s"));
    format!(
        "| {} | {:.0} | {} | {} | {} of {} | {:.1} / {:.1} ms | {:.0} | {} | {}{} |",
        scenario.name,
        row.load.requests_per_second,
        row.load.p50,
        row.load.p99,
        row.load.failed,
        row.load.requests,
        row.lag.0,
        row.lag.1,
        row.deliveries_per_second,
        row.backlog,
        drained,
        draining,
    )
}

/// One row: servers started, the tenant and webhook made, the load, the
/// drain, the servers stopped.
async fn measure(
    scenario: &Scenario,
    options: &Options,
    tools: &Tools,
    receiver: &Nginx,
    database: Option<&str>,
) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = tenant_create(dir.path(), database);
    let servers: Vec<Server> = (0..scenario.instances)
        .map(|n| Server::start(dir.path(), database, n))
        .collect();
    for server in &servers {
        server.wait_until_ready().await;
    }
    // No idle connections kept: the server closes them while the load runs.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for (event, path) in [("TicketCreated", FIRST), ("TicketFromUserReply", BESIDE)] {
        let created = http
            .post(format!("{}/v1/webhooks", servers[0].base))
            .bearer_auth(&keys.admin)
            .json(
                &json!({"name": event, "url": format!("{}{path}", receiver.url),
                          "events": [event]}),
            )
            .send()
            .await
            .expect("webhook");
        assert_eq!(created.status(), 201, "{:?}", created.text().await);
    }
    // Every instance matches with the new webhooks within a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let pace = scenario.beside.map(|_| PACE);
    let script = |name: &str, event: &str, tickets: u64| {
        let script = dir.path().join(name);
        std::fs::write(
            &script,
            wrk_script(&keys.ingest, event, tickets, &servers, pace),
        )
        .expect("script");
        script
    };
    let first = script("first.lua", "TicketCreated", scenario.tickets);
    let beside = scenario.beside.map(|(connections, tickets)| {
        (
            connections,
            script("beside.lua", "TicketFromUserReply", tickets),
        )
    });
    let logged = receiver.logged();
    let started = Instant::now();
    let (load, beside_load) = std::thread::scope(|threads| {
        let beside = beside.as_ref().map(|(connections, script)| {
            threads.spawn(|| tools.wrk(script, *connections, options.seconds, &servers[0].base))
        });
        let load = tools.wrk(
            &first,
            scenario.connections,
            options.seconds,
            &servers[0].base,
        );
        (load, beside.map(|wrk| wrk.join().expect("wrk beside")))
    });
    let elapsed = started.elapsed();
    let at_end = Scrape::all(&http, &servers).await;
    let drain_started = Instant::now();
    let (drained, after) = loop {
        let now = Scrape::all(&http, &servers).await;
        if now.depth == 0 {
            break (Ok(drain_started.elapsed()), now);
        }
        if drain_started.elapsed() > Duration::from_secs(options.drain) {
            break (Err(now.depth), now);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Over a second of draining at least, for a rate worth reading.
    let draining = drain_started.elapsed();
    let draining_per_second = (draining >= Duration::from_secs(1))
        .then(|| (after.succeeded - at_end.succeeded) as f64 / draining.as_secs_f64());
    for server in servers {
        server.stop();
    }
    let lags = receiver.lags_since(logged);
    Row {
        load,
        lag: percentiles(lags.get(FIRST)),
        beside: beside_load.map(|load| (load, percentiles(lags.get(BESIDE)))),
        deliveries_per_second: at_end.succeeded as f64 / elapsed.as_secs_f64(),
        backlog: at_end.depth,
        drained,
        draining_per_second,
    }
}

/// The receiver's paths of the two webhooks: of the first stream's events,
/// and of the second's.
const FIRST: &str = "/first";
const BESIDE: &str = "/beside";

/// The 50th and 99th percentiles of `lags` (ms), 0 when there are none.
fn percentiles(lags: Option<&Vec<f64>>) -> (f64, f64) {
    let mut lags = lags.cloned().unwrap_or_default();
    if lags.is_empty() {
        return (0.0, 0.0);
    }
    lags.sort_by(f64::total_cmp);
    let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// The Lua script `wrk` runs: single `event`s (a reply carries a new
/// message id each time), each for a random ticket of `tickets`, thread
/// `n` posting to instance `n mod instances`; with `pace`, each
/// connection waits that long before its next request.
fn wrk_script(
    ingest_key: &str,
    event: &str,
    tickets: u64,
    servers: &[Server],
    pace: Option<Duration>,
) -> String {
    let ports = servers
        .iter()
        .map(|s| s.port.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"local ports = {{ {ports} }}
local threads = 0
function setup(thread)
  thread:set("id", threads)
  thread.addr = wrk.lookup("127.0.0.1", ports[(threads % #ports) + 1])[1]
  threads = threads + 1
end
local sent = 0
function init(args)
  math.randomseed(os.time() * 100 + id)
end
local headers = {{
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer {ingest_key}",
}}
request = function()
  local ticket = math.random(0, {last})
  sent = sent + 1
  local body = string.format(
    '{{"event":"{event}","ticketId":"00000000-0000-4000-8000-%012d","messageId":"00000000-0000-4000-%04x-%012d","ticket":{{"channel":"email","subject":"load"}}}}',
    ticket, 32768 + id, sent)
  return wrk.format("POST", "/v1/events", headers, body)
end
{delay}"#,
        last = tickets - 1,
        delay = pace.map_or_else(String::new, |pace| format!(
            "function delay()\n  return {}\nend\n",
            pace.as_millis()
        )),
    )
}

struct Keys {
    admin: String,
    ingest: String,
}

/// `tenant create Load --json`, as an operator runs it.
fn tenant_create(data_dir: &Path, database: Option<&str>) -> Keys {
    let mut command = server_command();
    command
        .args(["tenant", "create", "Load", "--json", "--data-dir"])
        .arg(data_dir);
    if let Some(url) = database {
        command.args(["--database-url", url]);
    }
    let output = command.output().expect("tenant create");
    assert!(output.status.success(), "{output:?}");
    let keys: Value = serde_json::from_slice(&output.stdout).expect("keys");
    Keys {
        admin: keys["apiKey"].as_str().expect("key").to_owned(),
        ingest: keys["ingestKey"].as_str().expect("key").to_owned(),
    }
}

/// The `inbox-webhooks` binary of this build (or the one `BENCH_SERVER`
/// names, to measure two builds with one driver), configured by nothing
/// from the driver's own environment.
fn server_command() -> Command {
    let program = std::env::var_os("BENCH_SERVER")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_inbox-webhooks").into());
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("INBOX_") {
            command.env_remove(name);
        }
    }
    command
}

/// One `serve` process, with its default settings but for the receiver on
/// 127.0.0.1 being allowed; it logs each request at `info`, as in
/// production, to a file.
struct Server {
    child: Child,
    port: u16,
    base: String,
}

impl Server {
    fn start(data_dir: &Path, database: Option<&str>, n: usize) -> Self {
        let port = free_port();
        let log = std::fs::File::create(data_dir.join(format!("serve-{n}.log"))).expect("log");
        let mut command = server_command();
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("INBOX_DATA_DIR", data_dir)
            .env("INBOX_ALLOW_PRIVATE_TARGETS", "true")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(url) = database {
            command.env("INBOX_DATABASE_URL", url);
        }
        Self {
            child: command.spawn().expect("serve starts"),
            port,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_until_ready(&self) {
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{}/readyz", self.base)).await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "serve on port {} was not ready within a minute",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for it to finish what it holds.
    fn stop(mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// Should the driver fail halfway, no server outlives it.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the servers' `/metrics` say: deliveries accepted by the receiver
/// (summed over the instances) and pending deliveries (the database's).
struct Scrape {
    succeeded: u64,
    depth: u64,
}

impl Scrape {
    async fn all(http: &reqwest::Client, servers: &[Server]) -> Self {
        let mut scrape = Self {
            succeeded: 0,
            depth: 0,
        };
        for server in servers {
            let text = http
                .get(format!("{}/metrics", server.base))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("metrics text");
            scrape.succeeded += metric(&text, "inbox_deliveries_total{outcome=\"succeeded\"}");
            scrape.depth = metric(&text, "inbox_delivery_queue_depth");
        }
        scrape
    }
}

/// A sample's value in Prometheus text, 0 when absent.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// The programs the driver runs, found before anything starts.
struct Tools {
    wrk: PathBuf,
    nginx: PathBuf,
}

impl Tools {
    fn find() -> Self {
        let find = |name: &str| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/sbin")])
                .map(|dir| dir.join(name))
                .find(|file| file.is_file())
                .unwrap_or_else(|| {
                    panic!("no `{name}`: `apt-get install -y wrk nginx` (scripts/bench-serve does)")
                })
        };
        Self {
            wrk: find("wrk"),
            nginx: find("nginx"),
        }
    }

    /// Runs `wrk` and reads its report.
    fn wrk(&self, script: &Path, connections: usize, seconds: u64, url: &str) -> Load {
        let output = Command::new(&self.wrk)
            .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
            .args(["--latency", "--timeout", "10s", "-s"])
            .arg(script)
            .arg(url)
            .output()
            .expect("wrk runs");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "wrk failed: {report}");
        Load::read(&report).unwrap_or_else(|| panic!("an unexpected wrk report:\n{report}"))
    }
}

impl Load {
    /// Reads `wrk --latency`'s report.
    fn read(report: &str) -> Option<Self> {
        let field = |prefix: &str| {
            report
                .lines()
                .find_map(|line| line.trim().strip_prefix(prefix))
                .map(str::trim)
        };
        let requests = report
            .lines()
            .find(|line| line.contains(" requests in "))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let non_2xx: u64 =
            field("Non-2xx or 3xx responses:").map_or(Some(0), |n| n.parse().ok())?;
        // "Socket errors: connect 0, read 0, write 0, timeout 0"
        let socket_errors: u64 = field("Socket errors:").map_or(0, |errors| {
            errors
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        });
        Some(Self {
            requests,
            requests_per_second: field("Requests/sec:")?.parse().ok()?,
            p50: field("50%")?.to_owned(),
            p99: field("99%")?.to_owned(),
            failed: non_2xx + socket_errors,
        })
    }
}

/// nginx on 127.0.0.1, answering every POST with 200, one worker; it logs
/// each request's arrival, path and `webhook-id`.
struct Nginx {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Nginx {
    fn start(nginx: &Path, scratch: &Path) -> Self {
        let dir = scratch.join("nginx");
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let port = free_port();
        let config = dir.join("nginx.conf");
        let mut file = std::fs::File::create(&config).expect("nginx.conf");
        write!(
            file,
            r#"daemon off;
worker_processes 1;
user nobody nogroup;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  log_format lag '$msec $uri $http_webhook_id';
  access_log {dir}/access.log lag buffer=256k flush=1s;
  client_body_temp_path {dir}/body;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "ok"; }}
  }}
}}
"#,
            dir = dir.display()
        )
        .expect("nginx.conf");
        let child = Command::new(nginx)
            .args(["-p", &dir.to_string_lossy(), "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log: dir.join("access.log"),
        }
    }

    /// How much of the access log is written: where a row's lines start.
    fn logged(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// Each path's delivery lags (ms) in the log since `offset`: a
    /// delivery's first arrival less the time in its id. Waits for the log
    /// buffer's flush first.
    fn lags_since(&self, offset: u64) -> std::collections::HashMap<String, Vec<f64>> {
        std::thread::sleep(Duration::from_millis(1_500));
        let log = std::fs::read(&self.log).expect("access log");
        let lines =
            String::from_utf8_lossy(&log[usize::try_from(offset).expect("offset")..]).into_owned();
        let mut seen = std::collections::HashSet::new();
        let mut lags: std::collections::HashMap<String, Vec<f64>> = Default::default();
        for line in lines.lines() {
            let mut fields = line.split(' ');
            let (Some(at), Some(path), Some(id)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(at), Some(created)) = (
                at.parse::<f64>(),
                id.strip_prefix("msg_")
                    .and_then(|ulid| ulid::Ulid::from_string(ulid).ok()),
            ) else {
                continue;
            };
            if seen.insert(id.to_owned()) {
                let lag = at * 1000.0 - created.timestamp_ms() as f64;
                lags.entry(path.to_owned()).or_default().push(lag);
            }
        }
        lags
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::QUIT,
        );
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
