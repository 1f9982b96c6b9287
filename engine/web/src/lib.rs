//! The rule engine for JavaScript (browsers and Node.js): the npm package
//! `@cloudcx/inbox-rules`, built by `engine/web/build.sh`.
//!
//! The wasm exports two things: `run`, any operation of the engine's JSON
//! API by name, and the `RuleSet` class, compiled webhooks kept between
//! calls. The typed functions users call (`validateExpression`, …) are
//! `npm/typed.js`, each one an operation's name and its input built from
//! the arguments. Each export converts its arguments, calls `inbox_rules`,
//! and converts the answer; no rule logic lives here. Arguments cross as their JSON text
//! (`JSON.stringify`) read by the engine's own decoder, and answers are the
//! engine's own JSON text given to `JSON.parse`, so `JSON.stringify` of any
//! answer is byte-identical to what the server and the CLI print.
//!
//! A rule problem is never thrown: it is answered as a report. Arguments of
//! the wrong type are thrown as a `TypeError` saying what was expected.
//!
//! JSON text rather than `serde-wasm-bindgen` on purpose: the package then
//! reads input with the very decoder every other surface uses (same
//! answers, same messages for malformed input), no JavaScript object
//! conversion can reorder keys or change numbers, and the wasm carries one
//! deserializer per type instead of two.

use inbox_rules::api::{self, Op, decode, encode};
use inbox_rules::{IngestEvent, Webhook};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("types.d.ts");

/// A `TypeError` with `message`.
fn type_error(message: impl AsRef<str>) -> JsValue {
    js_sys::TypeError::new(message.as_ref()).into()
}

/// Reads an argument as the engine reads JSON on every surface.
fn read<T: inbox_rules::read::FromJson>(what: &str, value: &JsValue) -> Result<T, JsValue> {
    // Through `Value`, as `run` goes: one deserializer per type in the
    // package instead of two keeps the wasm small; and all but the last
    // step out of this generic function, which has a copy per type.
    inbox_rules::read::from_value(&read_json(what, value)?).map_err(|e| invalid(what, &e))
}

/// An argument as a JSON value.
fn read_json(what: &str, value: &JsValue) -> Result<Value, JsValue> {
    if value.is_undefined() {
        return Err(invalid(what, &"missing argument"));
    }
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|text| text.as_string())
        .ok_or_else(|| invalid(what, &"not representable as JSON"))?;
    decode(what, &text).map_err(type_error)
}

fn invalid(what: &str, why: &dyn std::fmt::Display) -> JsValue {
    type_error(format!("invalid {what}: {why}"))
}

/// A string argument, or a `TypeError`.
fn read_string(what: &str, value: &JsValue) -> Result<String, JsValue> {
    value
        .as_string()
        .ok_or_else(|| type_error(format!("invalid {what}: expected a string")))
}

/// The engine's answer as a plain JavaScript value.
fn answer(value: &impl Serialize) -> JsValue {
    parsed(&encode(value))
}

/// An answer the engine serialised, as a plain JavaScript value.
fn parsed(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap_or(JsValue::NULL)
}

/// Runs any operation of the engine's JSON API by name (`check`, `eval`,
/// `validate`, `match`, `ingest`, `explain`, `condition`, `event`,
/// `events`, `catalog`, `backtest`), the operations the shared fixture corpus names.
/// The package's typed functions (`npm/typed.js`) each name one of these
/// and pass their arguments as its input: one path per operation.
///
/// ```js
/// run("check", { expression: "1 or 2", ids: [1, 2] }) // { valid: true, errors: [], warnings: [] }
/// ```
#[wasm_bindgen(unchecked_return_type = "unknown")]
pub fn run(
    #[wasm_bindgen(unchecked_param_type = "string")] op: JsValue,
    #[wasm_bindgen(unchecked_param_type = "unknown")] input: JsValue,
) -> Result<JsValue, JsValue> {
    let op: Op = read_string("operation", &op)?
        .parse()
        .map_err(|e: api::RunError| type_error(e.to_string()))?;
    let output =
        api::run_op(op, &read_json("input", &input)?).map_err(|e| type_error(e.to_string()))?;
    Ok(parsed(&output))
}

/// Compiled webhooks, ready to match events: compile once, match many.
///
/// ```js
/// const rules = new RuleSet();
/// rules.add(webhook);          // a report: invalid webhooks are not added
/// rules.match(event);          // ["wh_1"]
/// rules.remove("wh_1");        // true
/// ```
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct RuleSet(inbox_rules::RuleSet);

#[wasm_bindgen]
impl RuleSet {
    /// An empty set.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a webhook, replacing the one with the same `id`. Returns its
    /// report: when not valid, the webhook was not added and the set is
    /// unchanged.
    #[wasm_bindgen(unchecked_return_type = "Report")]
    pub fn add(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Webhook")] webhook: JsValue,
    ) -> Result<JsValue, JsValue> {
        let webhook: Webhook = read("webhook", &webhook)?;
        Ok(match self.0.insert(&webhook) {
            Ok(warnings) => answer(&inbox_rules::Report::new(Vec::new(), warnings)),
            Err(report) => answer(&report),
        })
    }

    /// Removes the webhook with this id; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        self.0.remove(id)
    }

    /// The ids of the webhooks that fire for the event, sorted.
    #[wasm_bindgen(js_name = "match", unchecked_return_type = "string[]")]
    pub fn match_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "IngestEvent")] event: JsValue,
    ) -> Result<JsValue, JsValue> {
        let event: IngestEvent = read("event", &event)?;
        Ok(answer(&self.0.matches(&event)))
    }

    /// Explains the webhook with this id against the event; `undefined`
    /// when the set has no such webhook.
    #[wasm_bindgen(unchecked_return_type = "Explanation | undefined")]
    pub fn explain(
        &self,
        id: &str,
        #[wasm_bindgen(unchecked_param_type = "IngestEvent")] event: JsValue,
    ) -> Result<JsValue, JsValue> {
        let event: IngestEvent = read("event", &event)?;
        Ok(self
            .0
            .explain(id, &event)
            .map_or(JsValue::UNDEFINED, |e| answer(&e)))
    }

    /// How many webhooks the set holds.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.0.len()
    }
}
