use std::io::Cursor;

use clap::Parser as _;

use crate::cli::Cli;

/// Runs `inbox-webhooks <args>` with `stdin`; returns (exit status, stdout).
fn run_cli(args: &[&str], stdin: &str) -> (u8, String) {
    let cli = Cli::try_parse_from(std::iter::once("inbox-webhooks").chain(args.iter().copied()))
        .expect("valid arguments");
    let mut out = Vec::new();
    let code = crate::run(&cli, &mut Cursor::new(stdin.as_bytes()), &mut out).expect("runs");
    (code, String::from_utf8(out).expect("utf-8 output"))
}

#[test]
fn check_shows_carets_under_each_span() {
    let (code, out) = run_cli(&["rules", "check", "--ids", "1,2,3", "(1 or 2)and 3"], "");
    assert_eq!(code, 1);
    insta::assert_snapshot!(out, @r"
    error[missing_space]: `and` needs a space before and after it
      |
      | (1 or 2)and 3
      |         ^^^
    invalid: 1 error
    ");
}

#[test]
fn carets_line_up_under_wide_characters_and_tabs() {
    let (_, out) = run_cli(&["rules", "check", "--ids", "1,2", "中\t1 or 9"], "");
    insta::assert_snapshot!(out, @r"
    error[syntax_error]: unknown word `中`: only condition numbers, `and`, `or` and parentheses are allowed
      |
      | 中	1 or 9
      | ^^
    error[unknown_condition]: there is no condition 9
      |
      | 中	1 or 9
      |   	     ^
    warning[unused_condition]: condition 2 is not used in the expression
    invalid: 2 errors
    ");
}

#[test]
fn check_of_a_valid_expression_exits_zero() {
    let (code, out) = run_cli(&["rules", "check", "--ids", "1,2", "1 OR 2"], "");
    assert_eq!((code, out.as_str()), (0, "valid\n"));
}

#[test]
fn jsonl_check_answers_each_line_and_survives_bad_ones() {
    let input = "{\"expression\": \"1 or 2\", \"ids\": [1, 2]}\nnot json\n\n{\"expression\": \"1 or\", \"ids\": [1]}\n";
    let (code, out) = run_cli(&["rules", "check", "--jsonl"], input);
    assert_eq!(code, 2, "a malformed line makes the run fail");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], r#"{"valid":true,"errors":[],"warnings":[]}"#);
    assert!(
        lines[1].starts_with(r#"{"error":"invalid_input","line":2,"message":"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(r#"{"valid":false,"errors":[{"code":"syntax_error""#),
        "{}",
        lines[2]
    );
}

#[test]
fn jsonl_eval_answers_result_or_report() {
    let input = concat!(
        "{\"expression\": \"1 or 2 and 3\", \"truth\": {\"1\": false, \"2\": true, \"3\": true}}\n",
        "{\"expression\": \"(1 or 2) and 3\", \"ids\": [1, 2, 3], \"truth\": {\"1\": true}}\n",
        "{\"expression\": \"1 or 4\", \"truth\": {\"1\": true}}\n",
    );
    let (code, out) = run_cli(&["rules", "eval", "--jsonl"], input);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], r#"{"result":true}"#);
    assert_eq!(lines[1], r#"{"result":false}"#);
    assert!(
        lines[2].contains(r#""code":"unknown_condition""#),
        "{}",
        lines[2]
    );
}

/// A file holding `contents`, its name ending in `name`; removed when the
/// returned path is dropped.
fn temp_file(name: &str, contents: &str) -> tempfile::TempPath {
    let mut file = tempfile::Builder::new()
        .prefix("inbox-rules-cli-")
        .suffix(name)
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut file, contents.as_bytes()).expect("written");
    file.into_temp_path()
}

const HOOKS: &str = r#"[
  {"id": "wh_refund", "name": "Refunds", "url": "https://crm.example/a", "events": ["TicketCreated"],
   "conditions": [{"id": 1, "field": "subject", "operator": "contains", "value": "refund"}]},
  {"id": "wh_all", "name": "All", "url": "https://crm.example/b", "events": ["TicketCreated"]},
  {"id": "wh_bad", "name": "Bad", "url": "https://crm.example/c", "events": ["TicketCreated"],
   "conditions": [{"id": 1, "field": "subject", "operator": "gt", "value": "x"}]}
]"#;

#[test]
fn match_prints_one_line_per_event_and_flags_refused_webhooks() {
    let hooks = temp_file("hooks.json", HOOKS);
    let events = concat!(
        "{\"event\": \"TicketCreated\", \"ticketId\": \"9b2f1c9e-0d4e-4a55-9d43-2f5b8f4f0c11\", \"ticket\": {\"subject\": \"Refund please\"}}\n",
        "{\"event\": \"TicketCreated\", \"ticketId\": \"9b2f1c9e-0d4e-4a55-9d43-2f5b8f4f0c12\", \"ticket\": {\"subject\": \"Hello\"}}\n",
        "{\"event\": 7}\n",
        "{\"event\": \"TicketAgentReply\", \"ticketId\": \"9b2f1c9e-0d4e-4a55-9d43-2f5b8f4f0c13\", \"messageId\": \"9b2f1c9e-0d4e-4a55-9d43-2f5b8f4f0c14\"}\n",
        "{\"event\": \"TicketCreated\", \"ticketId\": \"t5\"}\n",
    );
    let hooks = hooks.to_str().expect("utf-8 path");
    let (code, out) = run_cli(
        &["rules", "match", "--webhooks", hooks, "--events", "-"],
        events,
    );
    assert_eq!(code, 2);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], r#"["wh_all","wh_refund"]"#);
    assert_eq!(lines[1], r#"["wh_all"]"#);
    assert!(
        lines[2].contains(r#""error":"invalid_input","line":3"#),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "[]");
    // Taken in as the server takes it in: an event it would refuse is
    // answered with the problem, not matched.
    assert!(
        lines[4].contains(r#""line":5"#) && lines[4].contains("`ticketId`"),
        "{}",
        lines[4]
    );
}

#[test]
fn validate_and_explain_read_files() {
    let webhook = temp_file(
        "webhook.json",
        r#"{"id": "wh_1", "name": "Refunds", "url": "https://crm.example/a", "events": ["TicketCreated"],
            "conditions": [{"id": 1, "field": "subject", "operator": "contains", "value": "refund"},
                           {"id": 2, "field": "priority", "operator": "gte", "value": "high"}],
            "match": "expression", "expression": "1 and 2"}"#,
    );
    let event = temp_file(
        "event.json",
        r#"{"event": "TicketCreated", "ticketId": "t1", "ticket": {"subject": "Refund", "priority": "low"}}"#,
    );
    let webhook = webhook.to_str().expect("utf-8 path");
    let event = event.to_str().expect("utf-8 path");

    let (code, out) = run_cli(&["rules", "validate", webhook], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"valid\": true"), "{out}");

    let (code, out) = run_cli(
        &["rules", "explain", "--webhook", webhook, "--event", event],
        "",
    );
    assert_eq!(code, 0);
    insta::assert_snapshot!(out, @r#"
    webhook wh_1 does not fire
      ✓ enabled       the webhook is enabled
      ✓ event         the webhook listens to TicketCreated
      ✓ subscription  the webhook listens to every channel and account
      ✗ conditions    conditions holding: 1; under the logic expression the conditions do not pass
    conditions (expression `1 and 2` → false):
      ✓   1  subject contains "refund"    (saw "Refund")
      ✗   2  priority gte "high"    (saw "low")
    "#);

    let (_, out) = run_cli(
        &[
            "rules",
            "explain",
            "--webhook",
            webhook,
            "--event",
            event,
            "--json",
        ],
        "",
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(json["fires"], false);
    assert_eq!(json["conditions"][1]["actual"], "low");

    let bad = temp_file("bad.json", "{\"name\": 5");
    let (code, out) = run_cli(
        &["rules", "validate", bad.to_str().expect("utf-8 path")],
        "",
    );
    assert_eq!(code, 2);
    assert!(out.contains("invalid_input"), "{out}");
}

#[test]
fn catalog_lists_every_field() {
    let (code, out) = run_cli(&["rules", "catalog"], "");
    assert_eq!(code, 0);
    let catalog: serde_json::Value = serde_json::from_str(&out).expect("json");
    let fields: Vec<&str> = catalog["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields.len(), 13);
    assert!(fields.contains(&"customFields.<key>"));
}
