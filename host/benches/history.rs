//! How long a backtest takes: the real server (`Server::start`, SQLite in
//! a temporary directory) with 10,000 stored events, asked over HTTP to run
//! drafts over them, and a table printed.
//!
//! ```sh
//! cargo bench -p inbox-webhooks --bench history
//! cargo bench -p inbox-webhooks --bench history -- --events 50000 --runs 50
//! ```
//!
//! The events are the contract's ingest example (about 700 bytes each),
//! half `TicketCreated` and half `TicketFromUserReply`, on 1,000 tickets,
//! with subjects and priorities varied so that about a third match. Each
//! row runs one draft `runs` times after one unmeasured run, and reports
//! the answer's time (request sent to body read) at p50, p95 and the
//! slowest, with what the answer said.
#![allow(clippy::print_stdout, reason = "a bench binary prints its table")]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The `n`th stored event.
fn event(n: usize) -> Value {
    let kind = if n.is_multiple_of(2) {
        "TicketCreated"
    } else {
        "TicketFromUserReply"
    };
    let subject = match n % 3 {
        0 => "Refund for order 1234",
        1 => "Where is my parcel?",
        _ => "Password reset",
    };
    let priority = ["low", "normal", "high", "urgent"][n % 4];
    json!({
        "event": kind,
        "ticketId": format!("00000000-0000-4000-8000-{:012}", n % 1_000),
        "messageId": format!("00000000-0000-4000-9000-{n:012}"),
        "occurredAt": "2026-11-24T10:00:00Z",
        "ticket": {
            "channel": "email", "accountId": "support@acme.example",
            "subject": subject, "status": "open", "priority": priority,
            "assigneeId": "agent-7", "teamId": "billing", "tags": ["vip", "refund"],
            "requester": {"email": "ann@example.com", "name": "Ann"},
            "customFields": {"plan": "enterprise", "seats": 40}
        },
        "message": {"body": "Hi, I still have not received my refund for the order I placed last week.",
                    "from": "ann@example.com"},
        "changes": {"status": {"from": "pending", "to": "open"}}
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let mut events = 10_000usize;
    let mut runs = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|s| s.parse().ok());
        match arg.as_str() {
            "--events" => events = value.unwrap_or(events),
            "--runs" => runs = value.unwrap_or(runs).max(1),
            _ => {}
        }
    }
    println!("history: {events} stored events, {runs} runs per row");
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = inbox_webhooks::config::Config {
            bind: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            log: "warn".to_owned(),
            rate_limit_per_second: 100_000,
            rate_limit_burst: 100_000,
            // Back-to-back runs would soon spend a tenant's share of engine
            // time (a quarter of a core) and be answered 429: the bench
            // measures one backtest's time, not the share.
            tenant_engine_share: 1.0,
            tenant_engine_burst: Duration::from_secs(600),
            ..Default::default()
        };
        let command = inbox_webhooks::cli::TenantCommand::Create(inbox_webhooks::cli::TenantCreateArgs {
            name: "History".to_owned(),
            id: None,
            json: true,
            store: inbox_webhooks::cli::StoreArgs {
                config: None,
                data_dir: Some(dir.path().to_path_buf()),
                database_url: None,
            },
        });
        let mut out = Vec::new();
        inbox_webhooks::commands::admin::tenant(&command, &mut out)
            .await
            .expect("tenant");
        let keys: Value = serde_json::from_slice(&out).expect("keys");
        let (admin, ingest) = (
            keys["apiKey"].as_str().expect("key").to_owned(),
            keys["ingestKey"].as_str().expect("key").to_owned(),
        );
        let server = inbox_webhooks::server::Server::start(config).await.expect("server");
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::new();
        for start in (0..events).step_by(1_000) {
            let batch: Vec<Value> = (start..(start + 1_000).min(events)).map(event).collect();
            let response = http
                .post(format!("{base}/v1/events"))
                .bearer_auth(&ingest)
                .json(&batch)
                .send()
                .await
                .expect("ingest");
            assert_eq!(response.status(), 202);
        }

        let draft = |conditions: Value, events: &[&str]| {
            json!({"name": "draft", "url": "https://crm.example/hook", "events": events,
                   "conditions": conditions, "match": "all"})
        };
        let both = ["TicketCreated", "TicketFromUserReply"];
        let refunds = json!([
            {"id": 1, "field": "subject", "operator": "contains", "value": "refund"},
            {"id": 2, "field": "priority", "operator": "gte", "value": "normal"}
        ]);
        let pattern = json!([
            {"id": 1, "field": "message.body", "operator": "matches", "value": "refund[^.]{0,40}order"},
            {"id": 2, "field": "tags", "operator": "has_any", "value": ["vip"]}
        ]);
        let rows = [
            ("2 conditions, 1,000 events (the default)", draft(refunds.clone(), &both), None),
            ("2 conditions, 10,000 events", draft(refunds.clone(), &both), Some(10_000)),
            ("a pattern and a tag, 10,000 events", draft(pattern, &both), Some(10_000)),
            ("no condition, 10,000 events", draft(json!([]), &both), Some(10_000)),
            ("one type of two, 10,000 events", draft(refunds, &["TicketCreated"]), Some(10_000)),
        ];
        println!("| draft | scanned | matched | p50 | p95 | slowest |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, body, limit) in rows {
            let url = match limit {
                Some(limit) => format!("{base}/v1/webhooks/backtest?limit={limit}"),
                None => format!("{base}/v1/webhooks/backtest"),
            };
            let mut times = Vec::with_capacity(runs);
            let mut answer = Value::Null;
            for run in 0..=runs {
                let started = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                    .expect("backtest");
                let status = response.status();
                answer = response.json().await.expect("answer");
                assert_eq!(status, 200, "{answer}");
                if run > 0 {
                    times.push(started.elapsed());
                }
            }
            times.sort_unstable();
            println!(
                "| {name} | {} | {} | {} | {} | {} |",
                answer["scanned"],
                answer["matched"],
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.95)),
                ms(times[times.len() - 1]),
            );
        }
        server.stop().await.expect("stop");
    });
}
