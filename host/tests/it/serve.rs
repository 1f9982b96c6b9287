//! The `inbox-webhooks` binary as an operator runs it: `tenant create`,
//! `serve` until SIGTERM, and start-up refusing a bad configuration. The
//! server's logs are read to check what they say, and what they never say.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::webhook;

pub(crate) fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inbox-webhooks"));
    for (name, _) in std::env::vars_os() {
        // The test's own environment must not configure the server.
        if name.to_string_lossy().starts_with("INBOX_") && name != "INBOX_CACHE_DIR" {
            command.env_remove(name);
        }
    }
    command
}

/// `tenant create Acme --json` on `data_dir`: the keys it printed.
pub(crate) fn tenant_create(data_dir: &std::path::Path) -> crate::common::Keys {
    let output = binary()
        .args(["tenant", "create", "Acme", "--json", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("tenant create");
    let keys: Value = serde_json::from_slice(&output.stdout).expect("keys");
    crate::common::Keys {
        admin: keys["apiKey"].as_str().expect("key").to_owned(),
        ingest: keys["ingestKey"].as_str().expect("key").to_owned(),
    }
}

/// `tenant create Acme --json` on the database at `url` (the data
/// directory holds the key that seals secrets): the keys it printed.
pub(crate) fn tenant_create_on(data_dir: &std::path::Path, url: &str) -> crate::common::Keys {
    let output = binary()
        .args(["tenant", "create", "Acme", "--json", "--database-url", url])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("tenant create");
    assert!(output.status.success(), "{output:?}");
    let keys: Value = serde_json::from_slice(&output.stdout).expect("keys");
    crate::common::Keys {
        admin: keys["apiKey"].as_str().expect("key").to_owned(),
        ingest: keys["ingestKey"].as_str().expect("key").to_owned(),
    }
}

/// Runs the binary to completion: (exit code, stdout, stderr).
fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("binary runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).expect("utf-8"),
        String::from_utf8(output.stderr).expect("utf-8"),
    )
}

/// A `serve` child process, its address, and every log line it writes.
pub(crate) struct Serving {
    child: Child,
    pub(crate) addr: String,
    lines: mpsc::Receiver<String>,
}

impl Serving {
    fn start(data_dir: &std::path::Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts `serve` on `data_dir` with extra `INBOX_*` settings.
    pub(crate) fn start_with(data_dir: &std::path::Path, settings: &[(&str, &str)]) -> Self {
        let mut command = binary();
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("INBOX_DATA_DIR", data_dir)
            .env("INBOX_LOG_JSON", "true")
            .env("INBOX_LOG", "info");
        for (name, value) in settings {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the server logs where it listens");
            let entry: Value = serde_json::from_str(&line).expect("a JSON log line");
            if entry["fields"]["message"] == "listening" {
                break entry["fields"]["addr"].as_str().expect("addr").to_owned();
            }
        };
        Self { child, addr, lines }
    }

    /// Kills it with SIGKILL: no chance to finish anything.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM; the exit code and the log lines written until then.
    fn terminate(mut self) -> (i32, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code().expect("exit code");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (code, self.lines.try_iter().collect())
    }
}

impl Drop for Serving {
    /// A test that fails halfway leaves no server running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn tenant_create_prints_the_keys_once_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let (code, out, err) = run(binary().args([
        "tenant",
        "create",
        "Acme Support",
        "--json",
        "--data-dir",
        data,
    ]));
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).expect("json");
    let keys: Vec<_> = answer
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["tenantId", "apiKey", "ingestKey"]);
    assert_eq!(answer["tenantId"], "acme-support");
    assert!(
        answer["apiKey"]
            .as_str()
            .expect("key")
            .starts_with("ik_admin_")
    );
    assert!(
        answer["ingestKey"]
            .as_str()
            .expect("key")
            .starts_with("ik_ingest_")
    );

    let (code, out, _) = run(binary().args(["tenant", "list", "--data-dir", data]));
    assert_eq!(code, 0);
    assert_eq!(out, "acme-support\tAcme Support\n");

    let (code, _, err) =
        run(binary().args(["tenant", "create", "Acme Support", "--data-dir", data]));
    assert_ne!(code, 0, "a tenant id is created once");
    assert!(err.contains("already exists"), "{err}");

    let (code, _, err) = run(binary().args([
        "tenant",
        "create",
        "x",
        "--id",
        "Not A Slug",
        "--data-dir",
        data,
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("invalid tenant id"), "{err}");

    // A name that would display as another (a text-direction override).
    let (code, _, err) = run(binary().args([
        "tenant",
        "create",
        "Acme \u{202E}troppuS",
        "--id",
        "acme-rtl",
        "--data-dir",
        data,
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("U+202E"), "{err}");

    let (code, out, err) = run(binary().args([
        "key",
        "create",
        "acme-support",
        "--kind",
        "ingest",
        "--json",
        "--data-dir",
        data,
    ]));
    assert_eq!(code, 0, "{err}");
    let key: Value = serde_json::from_str(&out).expect("json");
    assert!(key["key"].as_str().expect("key").starts_with("ik_ingest_"));
    let (code, _, err) = run(binary().args(["key", "create", "nobody", "--data-dir", data]));
    assert_ne!(code, 0);
    assert!(err.contains("no tenant \"nobody\""), "{err}");
    let (code, _, err) = run(binary().args(["key", "revoke", "key_nope", "--data-dir", data]));
    assert_ne!(code, 0);
    assert!(err.contains("no active key"), "{err}");
}

#[test]
fn a_bad_configuration_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, err) = run(binary()
        .arg("serve")
        .env("INBOX_DATA_DIR", dir.path())
        .env("INBOX_BIND", "localhost-ish"));
    assert_eq!(code, 2);
    assert!(err.contains("invalid bind (INBOX_BIND)"), "{err}");

    let (code, _, err) = run(binary()
        .args(["serve", "--config"])
        .arg(dir.path().join("missing.toml")));
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");

    let file = dir.path().join("inbox.toml");
    std::fs::write(&file, "rate_limit_burst = -1\n").expect("write");
    let (code, _, err) = run(binary().args(["serve", "--config"]).arg(&file));
    assert_eq!(code, 2);
    assert!(err.contains("invalid rate_limit_burst"), "{err}");
}

/// Three servers on one SQLite file each matched against its own rule
/// sets: a webhook created through one never fired for events posted to
/// the others. A second one is refused, and the first one's death, however
/// sudden, frees the file.
#[test]
fn a_second_server_on_one_sqlite_database_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Serving::start(dir.path());
    let pid = first.child.id();
    let (code, _, err) = run(binary()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("INBOX_DATA_DIR", dir.path()));
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("already served by process {pid}")),
        "{err}"
    );
    assert!(err.contains("use Postgres"), "{err}");
    // Commands still open it beside the server.
    tenant_create(dir.path());

    first.kill();
    let second = Serving::start(dir.path());
    let (code, _) = second.terminate();
    assert_eq!(code, 0);
    // A graceful stop frees it as well.
    Serving::start(dir.path()).kill();
}

/// Postgres serves any number of processes: two start on one database
/// (and one data directory, for the key that seals secrets), a tenant
/// made by the command works at both, and what one writes the other reads.
#[test]
fn two_servers_serve_one_postgres_database() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = runtime.block_on(crate::postgres::database());
    let dir = tempfile::tempdir().expect("temp dir");
    let key = tenant_create_on(dir.path(), &url).admin;
    let settings = [("INBOX_DATABASE_URL", url.as_str())];
    let (first, second) = (
        Serving::start_with(dir.path(), &settings),
        Serving::start_with(dir.path(), &settings),
    );
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("http://{}/v1/webhooks", first.addr))
            .bearer_auth(&key)
            .json(&webhook())
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        let id = created["id"].as_str().expect("id");
        let read = http
            .get(format!("http://{}/v1/webhooks/{id}", second.addr))
            .bearer_auth(&key)
            .send()
            .await
            .expect("sent");
        assert_eq!(read.status(), 200);
        for server in [&first.addr, &second.addr] {
            let ready = http
                .get(format!("http://{server}/readyz"))
                .send()
                .await
                .expect("sent");
            assert_eq!(ready.status(), 200);
        }
        // A key revoked (by the command, on the shared database) is
        // refused by every instance at once.
        let listed = binary()
            .args(["key", "list", "acme", "--json", "--database-url", &url])
            .output()
            .expect("key list");
        let listed: Value = serde_json::from_slice(&listed.stdout).expect("keys");
        let admin_id = listed
            .as_array()
            .expect("list")
            .iter()
            .find(|k| k["kind"] == "admin")
            .and_then(|k| k["id"].as_str())
            .expect("the admin key")
            .to_owned();
        let revoked = binary()
            .args(["key", "revoke", &admin_id, "--database-url", &url])
            .output()
            .expect("key revoke");
        assert!(revoked.status.success(), "{revoked:?}");
        for server in [&first.addr, &second.addr] {
            let refused = http
                .get(format!("http://{server}/v1/webhooks"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("sent");
            assert_eq!(refused.status(), 401);
        }
    });
    for server in [first, second] {
        let (code, lines) = server.terminate();
        assert_eq!(code, 0, "{lines:?}");
        assert!(
            lines.iter().all(|line| !line.contains(&key)),
            "the key is in the logs"
        );
    }
}

/// Posts events, each made by `event` as it is posted, with `ingest` to
/// the server at `addr` until one's answer counts `expected` deliveries,
/// which must come `within`.
pub(crate) async fn posted_until(
    (http, addr, ingest): (&reqwest::Client, &str, &str),
    mut event: impl FnMut() -> Value,
    expected: u64,
    within: Duration,
    what: &str,
) {
    let written = std::time::Instant::now();
    loop {
        let answer: Value = http
            .post(format!("http://{addr}/v1/events"))
            .bearer_auth(ingest)
            .json(&event())
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        if answer["deliveries"] == expected {
            return;
        }
        assert!(
            written.elapsed() < within,
            "the server at {addr} {what} within {within:?}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `TicketCreated` event that [`webhook`] matches, on the `n`th ticket
/// of a series; `n` moves on to the next.
fn ticket_created(n: &mut usize) -> Value {
    let event = serde_json::json!({"event": "TicketCreated",
        "ticketId": format!("ebcb7b53-6636-4c6b-8023-4a61d6df{n:04}"),
        "ticket": {"channel": "email", "subject": "refund please", "priority": "high"}});
    *n += 1;
    event
}

/// What one instance writes, the others match with within a second: a
/// webhook created through one fires for events posted to another, and
/// stops firing there once deleted through the first.
#[test]
fn a_webhook_written_through_one_instance_is_matched_by_another() {
    use crate::common::{Receiver, Reply};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = runtime.block_on(crate::postgres::database());
    let dir = tempfile::tempdir().expect("temp dir");
    let crate::common::Keys { admin, ingest } = tenant_create_on(dir.path(), &url);
    let settings = [
        ("INBOX_DATABASE_URL", url.as_str()),
        ("INBOX_ALLOW_PRIVATE_TARGETS", "true"),
    ];
    let (first, second) = (
        Serving::start_with(dir.path(), &settings),
        Serving::start_with(dir.path(), &settings),
    );
    runtime.block_on(async {
        let receiver = Receiver::start(Vec::new(), Reply::ok()).await;
        let http = reqwest::Client::new();
        let mut hook = webhook();
        hook["url"] = receiver.url("/hook").into();
        let created: Value = http
            .post(format!("http://{}/v1/webhooks", first.addr))
            .bearer_auth(&admin)
            .json(&hook)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        let id = created["id"].as_str().expect("id").to_owned();
        // Posted to the other instance until its answer counts the
        // deliveries expected, which must come within a second of the write.
        let mut n = 0;
        let other = (&http, second.addr.as_str(), ingest.as_str());
        let second = Duration::from_secs(1);
        let created = || ticket_created(&mut n);
        posted_until(other, created, 1, second, "did not match the new webhook").await;
        receiver.wait_for(1, Duration::from_secs(10)).await;

        let deleted = http
            .delete(format!("http://{}/v1/webhooks/{id}", first.addr))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("sent");
        assert_eq!(deleted.status(), 204);
        let created = || ticket_created(&mut n);
        posted_until(
            other,
            created,
            0,
            second,
            "still matched the deleted webhook",
        )
        .await;
    });
    for server in [first, second] {
        let (code, lines) = server.terminate();
        assert_eq!(code, 0, "{lines:?}");
    }
}

/// A server that loses its database says so on `/readyz` and answers
/// writes 503 within seconds, never hanging, and recovers by itself when
/// the database comes back.
#[test]
fn a_server_that_loses_postgres_is_not_ready_until_it_returns() {
    use std::time::Instant;

    let mut postgres = crate::postgres::OwnCluster::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = runtime.block_on(postgres.database());
    let dir = tempfile::tempdir().expect("temp dir");
    let key = tenant_create_on(dir.path(), &url).admin;
    let server = Serving::start_with(dir.path(), &[("INBOX_DATABASE_URL", url.as_str())]);
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let ready = || async {
        let started = Instant::now();
        let status = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16();
        (status, started.elapsed())
    };
    let create = || async {
        let started = Instant::now();
        let response = http
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(&key)
            .json(&webhook())
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        (status, body, started.elapsed())
    };
    runtime.block_on(async {
        assert_eq!(ready().await.0, 200);
        assert_eq!(create().await.0, 201);

        postgres.stop();
        let (status, took) = ready().await;
        assert_eq!(status, 503);
        assert!(took < Duration::from_secs(3), "readiness took {took:?}");
        let (status, body, took) = create().await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "database_unavailable", "{body}");
        assert!(took < Duration::from_secs(8), "a write hung for {took:?}");

        postgres.resume();
        let back = Instant::now();
        while ready().await.0 != 200 {
            assert!(
                back.elapsed() < Duration::from_secs(20),
                "not ready 20 s after the database came back"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(create().await.0, 201);
    });
    let (code, _) = server.terminate();
    assert_eq!(code, 0);
}

#[test]
fn a_missing_extra_ca_file_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, err) = run(binary()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("INBOX_DATA_DIR", dir.path())
        .env("INBOX_EXTRA_CA_FILE", dir.path().join("no-such-ca.pem")));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("extra_ca_file (INBOX_EXTRA_CA_FILE)"), "{err}");
    assert!(err.contains("no-such-ca.pem"), "{err}");
}

#[test]
fn serve_answers_logs_each_request_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let (_, out, _) =
        run(binary().args(["tenant", "create", "Acme", "--json", "--data-dir", data]));
    let keys: Value = serde_json::from_str(&out).expect("json");
    let key = keys["apiKey"].as_str().expect("key").to_owned();

    let server = Serving::start(dir.path());
    let base = format!("http://{}", server.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let secret = runtime.block_on(async {
        let http = reqwest::Client::new();
        let ready = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("sent");
        assert_eq!(ready.status(), 200);
        let created: Value = http
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(&key)
            .json(&webhook())
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        let refused = http
            .get(format!("{base}/v1/webhooks"))
            .bearer_auth("ik_admin_wrong")
            .send()
            .await
            .expect("sent");
        assert_eq!(refused.status(), 401);
        created["secret"].as_str().expect("secret").to_owned()
    });

    let (code, lines) = server.terminate();
    assert_eq!(code, 0, "a graceful stop exits 0");
    let logs = lines.join("\n");
    assert!(!logs.contains(&key), "the API key is in the logs");
    assert!(!logs.contains(&secret), "the webhook secret is in the logs");
    assert!(
        !logs.contains("ik_admin_wrong"),
        "a presented key is in the logs"
    );
    let answered: Vec<Value> = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "answered")
        .collect();
    let created = answered
        .iter()
        .find(|e| e["fields"]["status"] == 201)
        .unwrap_or_else(|| panic!("no log of the create in\n{logs}"));
    assert_eq!(created["span"]["tenant"], "acme");
    assert_eq!(created["span"]["route"], "/v1/webhooks");
    assert_eq!(created["span"]["method"], "POST");
    assert_eq!(
        created["span"]["id"].as_str().map(str::len),
        Some(26),
        "a request id"
    );
    assert!(created["fields"]["latency_ms"].is_f64());
    assert!(
        answered.iter().any(|e| e["fields"]["status"] == 401),
        "refused requests are logged too"
    );
    assert!(logs.contains("shutting down"), "{logs}");
}
