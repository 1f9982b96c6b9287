//! Runs the surface-neutral fixture corpus (`tests/fixtures/*.jsonl`)
//! against the core. Each line is `{"name", "op", "input", "expect"}`; the
//! answer of `inbox_rules::api::run(op, input)` must serialise to exactly
//! the bytes of `expect`. Later surfaces (wasmtime, npm, HTTP) run the same
//! files through their own runners.
//!
//! To add a case, append a line without `expect` and run
//! `UPDATE_FIXTURES=missing cargo test -p inbox-rules --test fixtures`; read
//! the answer it wrote before committing it. `UPDATE_FIXTURES=all` rewrites
//! every answer (for a deliberate change of messages).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    op: String,
    input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect: Option<Value>,
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> Vec<Case> {
    std::fs::read_to_string(path)
        .expect("readable fixture file")
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1))
        })
        .collect()
}

#[test]
fn every_fixture_answers_exactly_as_recorded() {
    let update = std::env::var("UPDATE_FIXTURES").ok();
    let mut failures = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for path in corpus() {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let mut cases = read(&path);
        for case in &mut cases {
            assert!(
                names.insert(case.name.clone()),
                "duplicate case name {:?}",
                case.name
            );
            let actual_text = inbox_rules::api::run(&case.op, &case.input)
                .unwrap_or_else(|e| panic!("{file}: {}: {e}", case.name));
            let actual: Value = serde_json::from_str(&actual_text).expect("the answer is JSON");
            let expected_text = case
                .expect
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("serialisable"));
            match (update.as_deref(), &expected_text) {
                (Some("all"), _) | (Some("missing"), None) => case.expect = Some(actual),
                (_, Some(expected)) if *expected == actual_text => {}
                (_, expected) => failures.push(format!(
                    "{file}: {}\n  expected: {}\n  actual:   {actual_text}",
                    case.name,
                    expected.as_deref().unwrap_or("(none recorded)")
                )),
            }
        }
        if update.is_some() {
            let text: String = cases
                .iter()
                .map(|c| serde_json::to_string(c).expect("serialisable") + "\n")
                .collect();
            std::fs::write(&path, text).expect("writable fixture file");
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_corpus_covers_what_it_promises() {
    let count = |file: &str, ops: &[&str]| {
        let path = corpus()
            .into_iter()
            .find(|p| p.ends_with(file))
            .expect(file);
        read(&path)
            .iter()
            .filter(|c| ops.contains(&c.op.as_str()))
            .count()
    };
    assert!(count("expressions.jsonl", &["check", "eval"]) >= 200);
    assert!(count("conditions.jsonl", &["condition", "validate"]) >= 100);
    assert!(count("matching.jsonl", &["match", "explain"]) >= 50);
    assert!(count("events.jsonl", &["event"]) >= 20);

    // Every field × operator of the catalogue is evaluated by some case.
    let conditions = corpus()
        .into_iter()
        .find(|p| p.ends_with("conditions.jsonl"))
        .expect("file");
    let tested: std::collections::BTreeSet<(String, String)> = read(&conditions)
        .iter()
        .filter(|c| c.op == "condition")
        .map(|c| {
            let field = c.input["condition"]["field"].as_str().unwrap_or_default();
            let field = if field.starts_with(inbox_rules::CUSTOM_FIELD_PREFIX) {
                "customFields.<key>"
            } else {
                field
            };
            let operator = c.input["condition"]["operator"]
                .as_str()
                .unwrap_or_default();
            (field.to_owned(), operator.to_owned())
        })
        .collect();
    for field in inbox_rules::catalog().fields {
        for op in field.operators {
            let pair = (field.field.to_owned(), op.operator.as_str().to_owned());
            assert!(tested.contains(&pair), "no condition case for {pair:?}");
        }
    }

    // Every diagnostic code appears in some recorded answer.
    let all: String = corpus()
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect();
    for code in [
        "empty_expression",
        "fullwidth_character",
        "missing_space",
        "unbalanced_parentheses",
        "unknown_condition",
        "syntax_error",
        "too_long",
        "too_deep",
        "unused_condition",
        "unknown_field",
        "operator_not_allowed",
        "invalid_value",
        "invalid_regex",
        "duplicate_id",
        "invalid_id",
        "too_many_conditions",
        "invalid_url",
        "unknown_event",
        "missing_field",
    ] {
        assert!(
            all.contains(&format!("\"code\":\"{code}\"")),
            "no fixture answers with {code}"
        );
    }
}
