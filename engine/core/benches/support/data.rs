//! Webhooks and events for the benchmarks, shared by the engine's benches
//! and the host's (`#[path]`-included), so both measure the same data.

use inbox_rules::{IngestEvent, Webhook};
use serde_json::json;

/// A webhook whose shape varies with `i`: event types, channel, accounts,
/// one to five conditions over several fields, each match mode.
pub(crate) fn webhook(i: usize) -> Webhook {
    const EVENTS: [&str; 6] = [
        "TicketCreated",
        "TicketFromUserReply",
        "TicketAgentReply",
        "TicketAssigneeChanged",
        "TicketStatusChanged",
        "TicketMovedToRecycleBin",
    ];
    const CHANNELS: [&str; 5] = ["email", "whatsapp", "chat", "facebook", "line"];
    let conditions = [
        json!({"id": 1, "field": "subject", "operator": "contains", "value": format!("order {}", i % 97)}),
        json!({"id": 2, "field": "priority", "operator": "gte", "value": "high"}),
        json!({"id": 3, "field": "tags", "operator": "has_any", "value": ["vip", format!("t{}", i % 13)]}),
        json!({"id": 4, "field": "status", "operator": "in", "value": ["open", "pending"]}),
        json!({"id": 5, "field": "message.body", "operator": "matches", "value": format!("refund|r{}", i % 7)}),
    ];
    let count = 1 + i % 5;
    // Two event types, or one when both picks agree (a list names each
    // entry once).
    let mut events = vec![EVENTS[i % 6], EVENTS[(i / 6) % 6]];
    events.dedup();
    let (mode, expression) = match i % 3 {
        0 => ("all", None),
        1 => ("any", None),
        _ => (
            "expression",
            Some(
                (1..=count)
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        ),
    };
    serde_json::from_value(json!({
        "id": format!("wh_{i:05}"),
        "name": format!("Webhook {i}"),
        "url": format!("https://crm{}.example/hook", i % 50),
        "events": events,
        "channels": (if i.is_multiple_of(4) { json!([]) } else { json!([CHANNELS[i % 5]]) }),
        "conditions": (conditions[..count]),
        "match": mode,
        "expression": expression,
    }))
    .expect("webhook shape")
}

/// A webhook every event of the benchmark reaches: the index cannot help.
pub(crate) fn webhook_everywhere(i: usize) -> Webhook {
    let mut w = webhook(i);
    w.events = vec!["TicketFromUserReply".to_owned()];
    w.channels = Vec::new();
    w
}

pub(crate) fn event() -> IngestEvent {
    serde_json::from_value(json!({
        "tenantId": "acme", "event": "TicketFromUserReply",
        "ticketId": "ebcb7b53-6636-4c6b-8023-4a61d6df694c",
        "messageId": "ef0eee2d-5912-4016-bcec-3a173f83e6a1",
        "ticket": {
            "channel": "email", "accountId": "support@acme.example",
            "subject": "Refund for order 12", "status": "open", "priority": "high",
            "assigneeId": "agent-7", "teamId": "billing", "tags": ["vip", "refund"],
            "requester": {"email": "ann@example.com", "name": "Ann"},
            "customFields": {"plan": "enterprise", "seats": 40}
        },
        "message": {"body": "Hi, I still have not received my refund", "from": "ann@example.com"},
    }))
    .expect("event shape")
}
