//! Pins the wording of every diagnostic and explanation message: a change
//! of wording shows up as a snapshot diff to review, never by accident.
//! (`INSTA_UPDATE=always cargo test -p inbox-rules --test messages` records
//! new wording; review the `.snap` diff before committing it.)

use std::fmt::Write as _;

use inbox_rules::{IngestEvent, Report, Webhook};
use serde_json::json;

fn lines(report: &Report) -> String {
    let mut text = String::new();
    for d in report.errors.iter().chain(&report.warnings) {
        let path = d
            .path
            .as_deref()
            .map(|p| format!(" {p}"))
            .unwrap_or_default();
        let span = match (d.start, d.end) {
            (Some(s), Some(e)) => format!(" {s}..{e}"),
            _ => String::new(),
        };
        let _ = writeln!(text, "{}{path}{span}: {}", d.code, d.message);
    }
    text
}

#[test]
fn expression_messages() {
    let mut text = String::new();
    for expression in [
        "",
        "(1 or 2）and 3",
        "1\u{3000}or ２",
        "1or 2",
        "(1 or 2",
        "((1",
        "1)",
        "1 or 9",
        "0",
        "123456789012345678901234567890",
        "1 2",
        "(1 2)",
        "1 or",
        "and 1",
        "()",
        "not 1",
        "1 && 2",
        "1 or 2\n",
        &"1".repeat(4097),
        &format!("{}1{}", "(".repeat(33), ")".repeat(33)),
    ] {
        let shown: String = expression.chars().take(40).collect();
        let _ = writeln!(text, "» {shown:?} ({} chars)", expression.chars().count());
        text.push_str(&lines(&inbox_rules::validate_expression(
            expression,
            &[1, 2, 3],
        )));
    }
    insta::assert_snapshot!(text);
}

#[test]
fn webhook_messages() {
    let webhook: Webhook = serde_json::from_value(json!({
        "name": "", "url": "ftp://x", "events": ["TicketCreated", "Nope"], "channels": [""],
        "conditions": [
            {"id": 1, "field": "subjekt", "operator": "is", "value": "x"},
            {"id": 2, "field": "subject", "operator": "gt", "value": "x"},
            {"id": 3, "field": "status", "operator": "is", "value": "gone"},
            {"id": 3, "field": "subject", "operator": "matches", "value": "(a"},
            {"id": 0, "field": "tags", "operator": "has_any", "value": []},
            {"id": 5, "field": "customFields.seats", "operator": "gt", "value": "ten"},
            {"id": 6, "field": "subject", "operator": "is_empty", "value": "x"},
            {"id": 7, "field": "subject", "operator": "contains", "value": 1},
            {"id": 8, "field": "subject", "operator": "is"}
        ],
        "match": "expression", "expression": "1 or 9"
    }))
    .expect("webhook shape");
    insta::assert_snapshot!(lines(&inbox_rules::validate_webhook(&webhook)));
}

#[test]
fn explanation_messages() {
    let webhook: Webhook = serde_json::from_value(json!({
        "id": "wh_1", "name": "Refunds", "url": "https://crm.example/hook",
        "events": ["TicketCreated"], "channels": ["chat"], "accounts": ["sales@acme.example"],
        "conditions": [
            {"id": 1, "field": "subject", "operator": "contains", "value": "refund"},
            {"id": 2, "field": "priority", "operator": "gte", "value": "high"}
        ],
        "match": "any"
    }))
    .expect("webhook shape");
    let event: IngestEvent = serde_json::from_value(json!({
        "event": "TicketAgentReply", "ticketId": "t",
        "ticket": {"channel": "email", "accountId": "support@acme.example", "subject": "Refund", "priority": "low"}
    }))
    .expect("event shape");
    let explanation = inbox_rules::explain(&webhook, &event).expect("valid webhook");
    insta::assert_json_snapshot!(explanation);
}
