//! Clients that try to hold the server's connections or guess keys: slow
//! headers (slowloris), slow bodies, more connections than allowed, and
//! failed authentication from one address.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::{TestServer, answer};

/// A connection that sends half a request header and then nothing.
async fn half_header(server: &TestServer) -> TcpStream {
    let addr = server.server.as_ref().expect("running").addr;
    let mut socket = TcpStream::connect(addr).await.expect("connects");
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("writes");
    socket
}

/// Waits (at most `within`) for the server to close `socket`.
async fn closed_within(mut socket: TcpStream, within: Duration) -> bool {
    let mut buffer = [0_u8; 1024];
    let read = async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                // Whatever the server says before closing (a 408) is fine.
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

#[tokio::test]
async fn slow_headers_are_closed_while_others_are_answered() {
    let server = TestServer::start_with(|config| {
        config.header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        slow.push(half_header(&server).await);
    }

    let started = Instant::now();
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "answered meanwhile, before any slow connection was closed: {:?}",
        started.elapsed()
    );

    let closing = slow
        .into_iter()
        .map(|socket| tokio::spawn(closed_within(socket, Duration::from_secs(10))));
    for closed in closing {
        assert!(
            closed.await.expect("task"),
            "a connection that never finished its header is closed"
        );
    }
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_close() {
    let server = TestServer::start_with(|config| {
        config.max_connections = 4;
        config.header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(half_header(&server).await);
    }
    // Let the server take all four before the next one comes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        server.http.get(server.url("/healthz")).send(),
    )
    .await
    .expect("answered once a slot freed")
    .expect("answered");
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the fifth connection waited for the header timeout to free a slot: {:?}",
        started.elapsed()
    );
    drop(slow);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let server = TestServer::start_with(|config| {
        config.body_timeout = Duration::from_secs(1);
    })
    .await;
    let key = server.tenant("Acme").await.admin;
    let addr = server.server.as_ref().expect("running").addr;
    let mut socket = TcpStream::connect(addr).await.expect("connects");
    let head = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    socket.write_all(head.as_bytes()).await.expect("writes");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0_u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("}") {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
}

#[tokio::test]
async fn an_address_that_fails_to_authenticate_too_often_is_refused_before_the_lookup() {
    let server = TestServer::start_with(|config| {
        config.auth_failures_per_minute = 5;
    })
    .await;
    let key = server.tenant("Acme").await.admin;
    for _ in 0..5 {
        let (status, body) = server
            .call(Method::GET, "/v1/webhooks", "iwk_admin_guessed", None)
            .await;
        assert_eq!((status, &body["error"]), (401, &json!("unauthorized")));
    }
    // Even the right key: the address is refused before any lookup.
    let (status, body) = server.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(
        (status, &body["error"]),
        (429, &json!("too_many_failures")),
        "{body}"
    );

    // Another address is not affected.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let response = other
        .get(server.url("/v1/webhooks"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("sent");
    let (status, _) = answer(response).await;
    assert_eq!(status, 200);
}
