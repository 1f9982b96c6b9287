// The package's declarations: the wasm's bindings and shapes
// (inbox_rules.d.ts, generated) and the typed functions over `run`.
import type {
  Backtest, Catalog, Condition, ConditionOutcome, EvalResult, Explanation, IngestEvent, Report, Webhook,
} from "./inbox_rules.js";

export * from "./inbox_rules.js";
export { default } from "./inbox_rules.js";

/** Validates a logic expression against the webhook's condition ids. */
export function validateExpression(expression: string, ids: number[]): Report;
/** Validates a whole webhook definition; diagnostics carry `path`. */
export function validateWebhook(webhook: Webhook): Report;
/** Evaluates an expression given whether each condition holds; `ids` defaults to the keys of `truth`. */
export function evaluate(expression: string, truth: Record<string, boolean>, ids?: number[]): EvalResult;
/** Whether the webhook fires for the event; the report when the webhook is invalid. */
export function matches(webhook: Webhook, event: IngestEvent): boolean | Report;
/** Why the webhook does or does not fire: each check, each condition with the value it saw. */
export function explain(webhook: Webhook, event: IngestEvent): Explanation | Report;
/** Tests one condition against an event. */
export function testCondition(condition: Condition, event: IngestEvent): ConditionOutcome | Report;
/** The fields, operators, value types, events and limits, to build condition editors from. */
export function fieldCatalog(): Catalog;
/**
 * What the webhook would have done with these events (tried as if enabled):
 * how many it fires for, by type, and the first `samples` (default 10)
 * matches explained; the report when the webhook is invalid.
 */
export function backtest(webhook: Webhook, events: unknown[], samples?: number): Backtest | Report;
