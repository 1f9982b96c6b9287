//! The npm package's TypeScript declarations (`engine/web/src/types.d.ts`),
//! generated from the types of the JSON API, so that the package's types
//! and the engine's answers cannot drift apart. This test fails when the
//! checked-in file differs from what the types say;
//! `UPDATE_TYPES=1 cargo test -p inbox-rules --lib typescript` rewrites it.

use std::path::Path;

use ts_rs::{Config, TS};

use crate::api::{Backtest, BacktestMatch, EvalResponse, MatchResponse};
use crate::catalog::{
    Catalog, EventInfo, FieldInfo, Kind, Limits, Operator, OperatorInfo, ValueType,
};
use crate::diagnostic::{Code, Diagnostic, Report};
use crate::event::Admission;
use crate::explain::{CheckOutcome, ConditionOutcome, Explanation, MatchOutcome};
use crate::model::{
    Change, Changes, Condition, EventType, IngestEvent, MatchMode, Message, Requester, Ticket,
    Webhook,
};
use crate::ruleset::{Fired, Intake, Rejected};

/// One declaration, exported, with its doc comment.
fn declare<T: TS + 'static + ?Sized>(config: &Config) -> String {
    let docs = T::docs().unwrap_or_default();
    format!("{docs}export {}\n", T::decl(config))
}

/// The whole file.
fn declarations() -> String {
    let config = Config::new().with_large_int("number");
    let parts = [
        declare::<Code>(&config),
        declare::<Diagnostic>(&config),
        declare::<Report>(&config),
        declare::<EvalResponse>(&config),
        declare::<EventType>(&config),
        declare::<MatchMode>(&config),
        declare::<Operator>(&config),
        declare::<Condition>(&config),
        declare::<Webhook>(&config),
        declare::<IngestEvent>(&config),
        declare::<Ticket>(&config),
        declare::<Requester>(&config),
        declare::<Message>(&config),
        declare::<Changes>(&config),
        declare::<Change>(&config),
        declare::<CheckOutcome>(&config),
        declare::<ConditionOutcome>(&config),
        declare::<MatchOutcome>(&config),
        declare::<Explanation>(&config),
        declare::<Kind>(&config),
        declare::<ValueType>(&config),
        declare::<OperatorInfo>(&config),
        declare::<FieldInfo>(&config),
        declare::<Limits>(&config),
        declare::<Catalog>(&config),
        declare::<EventInfo>(&config),
        declare::<MatchResponse>(&config),
        declare::<Rejected>(&config),
        declare::<Admission>(&config),
        declare::<Intake>(&config),
        declare::<Fired>(&config),
        declare::<Backtest>(&config),
        declare::<BacktestMatch>(&config),
    ];
    format!(
        "// Generated from the engine's types by engine/core/src/typescript.rs; do not edit.\n\
         // `UPDATE_TYPES=1 cargo test -p inbox-rules --lib typescript` rewrites it.\n\n{}",
        parts.join("\n")
    )
}

#[test]
fn the_declarations_are_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src/types.d.ts");
    let generated = declarations();
    if std::env::var_os("UPDATE_TYPES").is_some() {
        std::fs::write(&path, &generated).expect("writable types.d.ts");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} differs from the engine's types; run `UPDATE_TYPES=1 cargo test -p inbox-rules --lib typescript`",
        path.display()
    );
}
