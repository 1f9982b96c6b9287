//! Helpers shared by the integration tests.

use std::path::Path;

use serde_json::Value;

/// One case of the fixture corpus.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) op: String,
    pub(crate) input: Value,
    pub(crate) expect: Value,
}

/// Every case of `tests/fixtures/*.jsonl`, in file order.
pub(crate) fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        for line in std::fs::read_to_string(&path)
            .expect("fixture file")
            .lines()
        {
            let case: Value = serde_json::from_str(line).expect("fixture line");
            cases.push(Case {
                name: case["name"].as_str().expect("name").to_owned(),
                op: case["op"].as_str().expect("op").to_owned(),
                input: case["input"].clone(),
                expect: case["expect"].clone(),
            });
        }
    }
    cases
}

/// A server started in this process on port 0, with its own temporary data
/// directory (kept until the value is dropped).
pub(crate) struct TestServer {
    pub(crate) server: Option<inbox_webhooks::server::Server>,
    pub(crate) config: inbox_webhooks::config::Config,
    pub(crate) http: reqwest::Client,
    pub(crate) dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on a fresh database.
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server on a fresh database, with `change` applied to the
    /// default test configuration.
    pub(crate) async fn start_with(
        change: impl FnOnce(&mut inbox_webhooks::config::Config),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = inbox_webhooks::config::Config {
            bind: "127.0.0.1:0".parse().expect("address"),
            data_dir: dir.path().to_path_buf(),
            // High enough never to get in a test's way, but the one that
            // tests the limit.
            rate_limit_per_second: 10_000,
            rate_limit_burst: 10_000,
            auth_failures_per_minute: 10_000,
            ..Default::default()
        };
        change(&mut config);
        Self::on(dir, config).await
    }

    async fn on(dir: tempfile::TempDir, config: inbox_webhooks::config::Config) -> Self {
        let server = inbox_webhooks::server::Server::start(config.clone())
            .await
            .expect("server starts");
        Self {
            server: Some(server),
            config,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// Stops the server and starts a new one on the same database.
    pub(crate) async fn restart(self) -> Self {
        self.stop().await.resume().await
    }

    /// Stops the server gracefully, keeping its directory and settings.
    pub(crate) async fn stop(mut self) -> Self {
        self.server
            .take()
            .expect("running")
            .stop()
            .await
            .expect("graceful stop");
        self
    }

    /// Starts a server on a stopped one's database and settings.
    pub(crate) async fn resume(self) -> Self {
        let (dir, config) = (self.dir, self.config);
        Self::on(dir, config).await
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        let addr = self.server.as_ref().expect("running").addr;
        format!("http://{addr}{path}")
    }

    /// Creates a tenant with `inbox-webhooks tenant create --json`'s code;
    /// its admin and ingest keys.
    pub(crate) async fn tenant(&self, name: &str) -> Keys {
        let command =
            inbox_webhooks::cli::TenantCommand::Create(inbox_webhooks::cli::TenantCreateArgs {
                name: name.to_owned(),
                id: None,
                json: true,
                store: self.store_args(),
            });
        let mut out = Vec::new();
        inbox_webhooks::commands::admin::tenant(&command, &mut out)
            .await
            .expect("tenant create");
        let answer: Value = serde_json::from_slice(&out).expect("json");
        Keys {
            admin: answer["apiKey"].as_str().expect("apiKey").to_owned(),
            ingest: answer["ingestKey"].as_str().expect("ingestKey").to_owned(),
        }
    }

    /// Another admin key of the tenant `tenant_id`, made with `inbox-webhooks
    /// key create --json`'s code.
    pub(crate) async fn admin_key(&self, tenant_id: &str) -> String {
        let command = inbox_webhooks::cli::KeyCommand::Create(inbox_webhooks::cli::KeyCreateArgs {
            tenant: tenant_id.to_owned(),
            kind: inbox_webhooks::cli::KindArg::Admin,
            json: true,
            store: self.store_args(),
        });
        let mut out = Vec::new();
        inbox_webhooks::commands::admin::key(&command, &mut out)
            .await
            .expect("key create");
        let answer: Value = serde_json::from_slice(&out).expect("json");
        answer["key"].as_str().expect("key").to_owned()
    }

    /// The flags that point a command at this server's database.
    pub(crate) fn store_args(&self) -> inbox_webhooks::cli::StoreArgs {
        inbox_webhooks::cli::StoreArgs {
            config: None,
            data_dir: Some(self.config.data_dir.clone()),
            database_url: None,
        }
    }

    /// The text of `GET /metrics`.
    pub(crate) async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await;
        response.expect("sent").text().await.expect("text")
    }

    /// A request with `key` as the bearer token.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(key)
    }

    /// Creates a webhook from `body` with the admin key `key`, asserting
    /// 201; its id.
    pub(crate) async fn create_webhook(&self, key: &str, body: &Value) -> String {
        let (status, created) = self
            .call(reqwest::Method::POST, "/v1/webhooks", key, Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().expect("id").to_owned()
    }

    /// Sends a JSON request; the status and the parsed body (`Null` when
    /// empty).
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.request(method, path, key);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request.send().await.expect("request sent")).await
    }
}

/// A tenant's keys.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) admin: String,
    pub(crate) ingest: String,
}

/// The status and parsed body of a response (`Null` when empty).
pub(crate) async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = match text.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}")),
    };
    (status, body)
}

/// A valid webhook definition.
pub(crate) fn webhook() -> Value {
    serde_json::json!({
        "name": "Refunds to CRM",
        "url": "https://crm.example/hooks/cloudcx",
        "events": ["TicketCreated", "TicketFromUserReply"],
        "channels": ["email"],
        "conditions": [
            {"id": 1, "field": "subject", "operator": "contains", "value": "refund"},
            {"id": 2, "field": "priority", "operator": "is", "value": "high"}
        ],
        "match": "expression",
        "expression": "1 or 2"
    })
}

/// The conditions of a webhook as slow to match as validation lets it be
/// on a long `field` holding [`costly_text`]: patterns up to their weight
/// limit (which scan 1,024 characters), and a hundred conditions in all,
/// each searching the whole text for what it does not hold. `salt` makes
/// the conditions of one webhook differ from another's (the engine decides
/// a condition shared by several webhooks once).
pub(crate) fn costly_conditions(field: &str, salt: usize) -> Vec<Value> {
    (1..=100)
        .map(|id| match id {
            1..=3 => serde_json::json!({"id": id, "field": field, "operator": "matches",
                                        "value": format!("[^\\n]{{0,59}}{id}!")}),
            // `aa` followed by the binary digits of a number written with
            // `a` and `b`: every byte of it is in the text, so the search
            // runs, and `aa` never is.
            _ => serde_json::json!({"id": id, "field": field, "operator": "contains",
                                    "value": format!("aa{:b}", salt * 100 + id)
                                        .replace('0', "a").replace('1', "b")}),
        })
        .collect()
}

/// `chars` characters of `abab…`, which no condition of
/// [`costly_conditions`] finds.
pub(crate) fn costly_text(chars: usize) -> String {
    "ab".repeat(chars / 2)
}

/// How a test receiver answers one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// This status, with these headers.
    Status(u16, Vec<(&'static str, String)>),
    /// Never answer (until the client gives up).
    Hang,
    /// 200, after this long.
    Slow(std::time::Duration),
}

impl Reply {
    pub(crate) fn ok() -> Self {
        Self::Status(200, Vec::new())
    }
}

/// A request a test receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) version: axum::http::Version,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: String,
    pub(crate) at: std::time::Instant,
}

/// A webhook receiver on 127.0.0.1: answers from a script, then with a
/// default, and records every request.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) addr: std::net::SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Clone)]
struct Script {
    replies: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Reply>>>,
    then: Reply,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
}

impl Receiver {
    /// Starts a receiver that answers `replies` in order, then `then`.
    pub(crate) async fn start(replies: Vec<Reply>, then: Reply) -> Self {
        Self::start_on(replies, then, None).await
    }

    /// Starts an HTTPS receiver with `tls` (HTTP/1.1 and HTTP/2, as its
    /// ALPN offers), answering like [`Self::start`]. Its URLs still read
    /// `http://` from [`Self::url`]: use [`Self::https`].
    pub(crate) async fn start_tls(
        replies: Vec<Reply>,
        then: Reply,
        tls: rustls::ServerConfig,
    ) -> Self {
        Self::start_on(replies, then, Some(std::sync::Arc::new(tls))).await
    }

    async fn start_on(
        replies: Vec<Reply>,
        then: Reply,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> Self {
        let received = std::sync::Arc::default();
        let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
        let script = Script {
            replies: std::sync::Arc::new(std::sync::Mutex::new(replies.into())),
            then,
            received: std::sync::Arc::clone(&received),
            arrived: std::sync::Arc::clone(&arrived),
        };
        let app = axum::Router::new()
            .fallback(answer_from_script)
            .with_state(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("address");
        match tls {
            None => {
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            Some(tls) => {
                tokio::spawn(serve_tls(listener, app, tls));
            }
        }
        Self {
            addr,
            received,
            arrived,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://127.0.0.1:<port><path>`.
    pub(crate) fn https(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until `n` requests have come (panics after `timeout`).
    pub(crate) async fn wait_for(&self, n: usize, timeout: std::time::Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "{} of {n} requests arrived in {timeout:?}",
                    self.received().len()
                );
            }
        }
    }
}

/// Accepts TLS connections and serves `app` on each, in HTTP/1.1 or
/// HTTP/2 as the client's ALPN chose. A failed handshake (a client that
/// does not trust the certificate, or has none to show) just ends that
/// connection, as a real server's would.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: std::sync::Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}

/// A test certificate authority, made fresh for each test with `rcgen`.
pub(crate) struct TestCa {
    certificate: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A certificate the test CA issued, and its key.
pub(crate) struct Issued {
    pub(crate) certificate: rcgen::Certificate,
    pub(crate) key: rcgen::KeyPair,
}

impl Issued {
    /// The certificate, PEM.
    pub(crate) fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// The private key, PEM (PKCS#8).
    pub(crate) fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A webhook's `tls` presenting this certificate.
    pub(crate) fn tls(&self) -> Value {
        serde_json::json!({"clientCertificate": self.pem(), "clientKey": self.key_pem()})
    }

    /// A TLS server configuration presenting this certificate, offering
    /// HTTP/2 and HTTP/1.1; with `clients`, it demands a client
    /// certificate issued by that CA.
    pub(crate) fn server(&self, clients: Option<&TestCa>) -> rustls::ServerConfig {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(std::sync::Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.certificate.der().clone()).expect("CA");
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    std::sync::Arc::new(roots),
                    provider,
                )
                .build()
                .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key.serialize_der().into());
        let mut config = builder
            .with_single_cert(vec![self.certificate.der().clone()], key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

impl TestCa {
    /// A new CA called `name`.
    pub(crate) fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key).expect("CA certificate");
        Self { certificate, key }
    }

    /// The CA's certificate, PEM: what `extra_ca_file` holds.
    pub(crate) fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A server certificate for `names` (IP addresses or DNS names).
    pub(crate) fn server(&self, names: &[&str]) -> Issued {
        self.issue(
            names,
            "receiver",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            None,
        )
    }

    /// A server certificate for `names` that expired in 2021.
    pub(crate) fn expired_server(&self, names: &[&str]) -> Issued {
        self.issue(
            names,
            "receiver",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            Some((2020, 2021)),
        )
    }

    /// A client certificate called `name`.
    pub(crate) fn client(&self, name: &str) -> Issued {
        self.issue(&[], name, rcgen::ExtendedKeyUsagePurpose::ClientAuth, None)
    }

    fn issue(
        &self,
        names: &[&str],
        common_name: &str,
        usage: rcgen::ExtendedKeyUsagePurpose,
        validity: Option<(i32, i32)>,
    ) -> Issued {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<std::net::IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName((*name).try_into().expect("DNS name")),
            })
            .collect();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        if let Some((from, until)) = validity {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(until, 1, 1);
        }
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("issued");
        Issued { certificate, key }
    }
}

/// A stand-in for an HTTP proxy on 127.0.0.1: records the first line of
/// every request it is sent (`POST http://… HTTP/1.1`, or `CONNECT …`)
/// and answers 200 to each, forwarding nothing.
#[derive(Clone)]
pub(crate) struct FakeProxy {
    pub(crate) addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeProxy {
    pub(crate) async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("address");
        let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        let record = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = std::sync::Arc::clone(&record);
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt as _;
                    let mut stream = tokio::io::BufReader::new(stream);
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.is_ok() {
                        record.lock().expect("lock").push(line.trim().to_owned());
                    }
                    // The headers, then the body they announce.
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        match stream.read_line(&mut header).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) if header.trim().is_empty() => break,
                            Ok(_) => {
                                let header = header.to_ascii_lowercase();
                                if let Some(value) = header.strip_prefix("content-length:") {
                                    length = value.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = stream.read_exact(&mut body).await;
                    let _ = stream
                        .get_mut()
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Self { addr, seen }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request lines it was sent.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn answer_from_script(
    axum::extract::State(script): axum::extract::State<Script>,
    version: axum::http::Version,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    script.received.lock().expect("lock").push(Received {
        version,
        headers,
        body,
        at: std::time::Instant::now(),
    });
    script.arrived.notify_waiters();
    let reply = script
        .replies
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| script.then.clone());
    match reply {
        Reply::Status(status, headers) => {
            let mut response = (
                axum::http::StatusCode::from_u16(status).expect("status"),
                "receiver says hi",
            )
                .into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Slow(pause) => {
            tokio::time::sleep(pause).await;
            (axum::http::StatusCode::OK, "receiver says hi").into_response()
        }
    }
}
