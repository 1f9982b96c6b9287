//! Black-box tests of the `inbox-webhooks` binary: the fixture corpus's
//! `check` and `eval` cases go through `rules check --jsonl` and
//! `rules eval --jsonl`, and every output line must be byte-identical to the
//! answer the corpus records.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// `(input, expected output)` of each corpus case with operation `op`.
fn corpus(op: &str) -> Vec<(String, String)> {
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
            if case["op"] == op {
                cases.push((case["input"].to_string(), case["expect"].to_string()));
            }
        }
    }
    cases
}

/// Runs the binary with `args`, feeding `stdin`; returns (status, stdout).
fn run(args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inbox-webhooks"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let output = child.wait_with_output().expect("binary runs");
    writer
        .join()
        .expect("writer thread")
        .expect("stdin written");
    let status = output.status.code().expect("exit status");
    (status, String::from_utf8(output.stdout).expect("utf-8"))
}

fn assert_corpus_through(op: &str, args: &[&str]) {
    let cases = corpus(op);
    assert!(cases.len() > 50, "{op}: {} cases", cases.len());
    let stdin: String = cases
        .iter()
        .map(|(input, _)| format!("{input}\n"))
        .collect();
    let (status, stdout) = run(args, &stdin);
    assert_eq!(status, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((input, expected), actual) in cases.iter().zip(lines) {
        assert_eq!(actual, expected, "input {input:.200}");
    }
}

#[test]
fn check_jsonl_answers_the_corpus_byte_for_byte() {
    assert_corpus_through("check", &["rules", "check", "--jsonl"]);
}

#[test]
fn eval_jsonl_answers_the_corpus_byte_for_byte() {
    assert_corpus_through("eval", &["rules", "eval", "--jsonl"]);
}

#[test]
fn human_check_exits_one_when_invalid() {
    let (status, stdout) = run(&["rules", "check", "--ids", "1,2,3", "1 or 4"], "");
    assert_eq!(status, 1);
    assert!(
        stdout.contains("error[unknown_condition]: there is no condition 4"),
        "{stdout}"
    );
    let (status, _) = run(&["rules", "check", "--ids", "1,2,3", "(1 or 2) and 3"], "");
    assert_eq!(status, 0);
}

#[test]
fn a_malformed_line_fails_the_run_but_not_the_other_lines() {
    let (status, stdout) = run(
        &["rules", "check", "--jsonl"],
        "{\"expression\":\"1\",\"ids\":[1]}\n{\"expression\":\n{\"expression\":\"2\",\"ids\":[2]}\n",
    );
    assert_eq!(status, 2);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1].contains("\"error\":\"invalid_input\""));
    assert_eq!(lines[2], r#"{"valid":true,"errors":[],"warnings":[]}"#);
}
