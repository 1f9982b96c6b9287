//! Black-box tests of the `inbox-webhooks` binary: the fixture corpus's
//! `check` and `eval` cases go through `rules check --jsonl` and
//! `rules eval --jsonl`, and every output line must be byte-identical to the
//! answer the corpus records.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::common::corpus;

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
    let cases: Vec<(String, String)> = corpus()
        .into_iter()
        .filter(|case| case.op == op)
        .map(|case| (case.input.to_string(), case.expect.to_string()))
        .collect();
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
fn check_jsonl_answers_the_corpus_byte_for_byte_with_either_engine() {
    for engine in ["wasm", "native"] {
        assert_corpus_through("check", &["rules", "--engine", engine, "check", "--jsonl"]);
    }
}

#[test]
fn eval_jsonl_answers_the_corpus_byte_for_byte_with_either_engine() {
    for engine in ["wasm", "native"] {
        assert_corpus_through("eval", &["rules", "--engine", engine, "eval", "--jsonl"]);
    }
}

#[test]
fn both_engines_print_identical_output_for_bad_lines_too() {
    let input = concat!(
        "{\"expression\": \"1 or\", \"ids\": [1]}\n",
        "not json\n",
        "{\"expression\": 5}\n",
        "{\"expression\": \"1\", \"ids\": [1], \"extra\": true}\n",
        "{\"expression\": \"(1 or 2）and 3\", \"ids\": [1, 2, 3]}\n",
    );
    let wasm = run(&["rules", "--engine", "wasm", "check", "--jsonl"], input);
    let native = run(&["rules", "--engine", "native", "check", "--jsonl"], input);
    assert_eq!(wasm, native);
    assert_eq!(wasm.0, 2);
    assert_eq!(wasm.1.lines().count(), 5);
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
