//! The engine's JSON surface (`api::run_op`, what the wasm shells call) on
//! any operation and input: the first byte picks the operation, the rest is
//! the input's JSON.
//!
//! Invariants: every answer is JSON; an input refused as the wrong shape is
//! refused with one sentence naming the operation; the same input gives the
//! same answer.
#![no_main]

use inbox_rules::api::{Op, run_op};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let op = Op::ALL[usize::from(pick) % Op::ALL.len()];
    let Ok(input) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    match run_op(op, &input) {
        Ok(answer) => {
            serde_json::from_str::<Value>(&answer).expect("every answer is JSON");
            assert_eq!(run_op(op, &input).ok(), Some(answer));
        }
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains(op.as_str()), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
});
