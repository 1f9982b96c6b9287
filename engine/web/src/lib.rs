//! The rule engine for JavaScript (browsers and Node.js): the npm package
//! `@cloudcx/inbox-rules`, built by `engine/web/build.sh`.
//!
//! Each export converts its arguments, calls `inbox_rules`, and converts the
//! answer; no rule logic lives here. Arguments cross as their JSON text
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
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
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
fn read<T: DeserializeOwned>(what: &str, value: &JsValue) -> Result<T, JsValue> {
    // Through `Value`, as `run` goes: one deserializer per type in the
    // package instead of two keeps the wasm small; and all but the last
    // step out of this generic function, which has a copy per type.
    T::deserialize(&read_json(what, value)?).map_err(|e| invalid(what, &e))
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

/// Runs `op` on its JSON input, as [`run`] does: every typed export goes
/// through here, so each operation has one path through the package.
fn call(op: Op, input: &Value) -> Result<JsValue, JsValue> {
    let output = api::run_op(op, input).map_err(|e| type_error(e.to_string()))?;
    Ok(parsed(&output))
}

/// The input object of an operation, from named arguments; an argument
/// that is `undefined` is left out when optional and refused when not.
fn input(args: &[(&str, &JsValue, bool)]) -> Result<Value, JsValue> {
    let mut input = Map::new();
    for &(name, value, required) in args {
        if required || !(value.is_undefined() || value.is_null()) {
            input.insert(name.to_owned(), read_json(name, value)?);
        }
    }
    Ok(Value::Object(input))
}

/// Validates a logic expression against the webhook's condition ids and
/// returns every problem found.
///
/// ```js
/// validateExpression("(1 or 2）and 3", [1, 2, 3]).errors[0]
/// // { code: "fullwidth_character", message: "full-width `）` …", start: 7, end: 8 }
/// ```
#[wasm_bindgen(js_name = validateExpression, unchecked_return_type = "Report")]
pub fn validate_expression(
    #[wasm_bindgen(unchecked_param_type = "string")] expression: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number[]")] ids: JsValue,
) -> Result<JsValue, JsValue> {
    let input = input(&[("expression", &expression, true), ("ids", &ids, true)])?;
    call(Op::Check, &input)
}

/// Validates a whole webhook definition.
///
/// ```js
/// validateWebhook({ name: "Refunds", url: "ftp://x", events: ["TicketCreated"] }).errors[0].path
/// // "url"
/// ```
#[wasm_bindgen(js_name = validateWebhook, unchecked_return_type = "Report")]
pub fn validate_webhook(
    #[wasm_bindgen(unchecked_param_type = "Webhook")] webhook: JsValue,
) -> Result<JsValue, JsValue> {
    call(Op::Validate, &read_json("webhook", &webhook)?)
}

/// Evaluates a logic expression given whether each condition holds (a
/// condition left out does not). `ids` defaults to the keys of `truth`.
///
/// ```js
/// evaluate("1 or 2 and 3", { 1: false, 2: true, 3: true }) // { result: true }
/// ```
#[wasm_bindgen(unchecked_return_type = "EvalResult")]
pub fn evaluate(
    #[wasm_bindgen(unchecked_param_type = "string")] expression: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Record<string, boolean>")] truth: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "number[]")] ids: JsValue,
) -> Result<JsValue, JsValue> {
    let input = input(&[
        ("expression", &expression, true),
        ("truth", &truth, true),
        ("ids", &ids, false),
    ])?;
    call(Op::Eval, &input)
}

/// Whether the webhook fires for the event; the report when the webhook is
/// invalid.
///
/// ```js
/// matches(webhook, event) // true, false, or { valid: false, errors: […], warnings: […] }
/// ```
#[wasm_bindgen(unchecked_return_type = "boolean | Report")]
pub fn matches(
    #[wasm_bindgen(unchecked_param_type = "Webhook")] webhook: JsValue,
    #[wasm_bindgen(unchecked_param_type = "IngestEvent")] event: JsValue,
) -> Result<JsValue, JsValue> {
    // Whether it fires is the explanation's `fires`; an invalid webhook's
    // answer is its report.
    let explained = explain(webhook, event)?;
    let fires = js_sys::Reflect::get(&explained, &JsValue::from_str("fires"))?;
    Ok(if fires.is_undefined() {
        explained
    } else {
        fires
    })
}

/// Explains why the webhook does or does not fire for the event: each
/// check, each condition with the value it saw, the match mode's result.
///
/// ```js
/// explain(webhook, event).conditions.map(c => [c.id, c.holds, c.actual])
/// ```
#[wasm_bindgen(unchecked_return_type = "Explanation | Report")]
pub fn explain(
    #[wasm_bindgen(unchecked_param_type = "Webhook")] webhook: JsValue,
    #[wasm_bindgen(unchecked_param_type = "IngestEvent")] event: JsValue,
) -> Result<JsValue, JsValue> {
    let input = input(&[("webhook", &webhook, true), ("event", &event, true)])?;
    call(Op::Explain, &input)
}

/// Tests one condition against an event: whether it holds and what it saw.
///
/// ```js
/// testCondition({ id: 1, field: "subject", operator: "contains", value: "refund" }, event)
/// // { id: 1, field: "subject", …, actual: "Refund for order 1234", holds: true }
/// ```
#[wasm_bindgen(js_name = testCondition, unchecked_return_type = "ConditionOutcome | Report")]
pub fn test_condition(
    #[wasm_bindgen(unchecked_param_type = "Condition")] condition: JsValue,
    #[wasm_bindgen(unchecked_param_type = "IngestEvent")] event: JsValue,
) -> Result<JsValue, JsValue> {
    let input = input(&[("condition", &condition, true), ("event", &event, true)])?;
    call(Op::Condition, &input)
}

/// The catalogue of fields, operators, value types, events and limits, to
/// build condition editors from.
///
/// ```js
/// fieldCatalog().fields.find(f => f.field === "status").values
/// // ["new", "open", "pending", "on_hold", "solved", "closed"]
/// ```
#[wasm_bindgen(js_name = fieldCatalog, unchecked_return_type = "Catalog")]
pub fn field_catalog() -> Result<JsValue, JsValue> {
    call(Op::Catalog, &Value::Null)
}

/// Runs any operation of the engine's JSON API by name (`check`, `eval`,
/// `validate`, `match`, `explain`, `condition`, `catalog`), the operations
/// the shared fixture corpus names.
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
    call(op, &read_json("input", &input)?)
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
