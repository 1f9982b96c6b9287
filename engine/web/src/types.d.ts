// Generated from the engine's types by engine/core/src/typescript.rs; do not edit.
// `UPDATE_TYPES=1 cargo test -p inbox-rules --lib typescript` rewrites it.

/**
 * What kind of problem a [`Diagnostic`] reports. Stable: clients key their
 * translations and UI behaviour on these names.
 */
export type DiagnosticCode = "empty_expression" | "fullwidth_character" | "missing_space" | "unbalanced_parentheses" | "unknown_condition" | "syntax_error" | "too_long" | "too_deep" | "unused_condition" | "unknown_field" | "operator_not_allowed" | "invalid_value" | "invalid_regex" | "too_costly" | "duplicate_id" | "invalid_id" | "too_many_conditions" | "invalid_url" | "unknown_event" | "missing_field" | "unknown_key" | "duplicate_value" | "too_many_items";

/**
 * One problem (or warning), with where it is.
 */
export type Diagnostic = { 
/**
 * What kind of problem this is.
 */
code: DiagnosticCode, 
/**
 * A sentence for the admin, in their words (never a grammar rule name).
 */
message: string, 
/**
 * Where in a webhook the problem is, e.g. `conditions[2].value`; absent
 * when validating a bare expression.
 */
path?: string, 
/**
 * The id of the condition the problem belongs to, when there is one, so
 * a UI can mark that condition in place.
 */
conditionId?: number, 
/**
 * Start of the span to underline, in UTF-16 code units (JavaScript string
 * indices) of the expression. Present on every expression diagnostic.
 */
start?: number, 
/**
 * End (exclusive) of the span to underline, as `start`.
 */
end?: number, 
/**
 * The text that fixes the problem in place of `start..end`, when the
 * engine knows it: the half-width twin of a full-width character.
 */
replacement?: string, };

/**
 * The answer of every validation: whether the input is valid, every error
 * found and every warning. Warnings never make the input invalid.
 */
export type Report = { 
/**
 * `true` exactly when `errors` is empty.
 */
valid: boolean, 
/**
 * Every problem found, in the order the contract gives.
 */
errors: Array<Diagnostic>, 
/**
 * Advice that does not make the input invalid.
 */
warnings: Array<Diagnostic>, };

/**
 * Output of [`eval`]: the result, or the report of an invalid expression.
 */
export type EvalResult = { 
/**
 * Whether the expression holds.
 */
result: boolean, } | Report;

/**
 * The ticket events the helpdesk emits.
 */
export type EventType = "TicketCreated" | "TicketFromUserReply" | "TicketAgentReply" | "TicketAssigneeChanged" | "TicketStatusChanged" | "TicketMovedToRecycleBin";

/**
 * How a webhook's conditions combine.
 */
export type MatchMode = "all" | "any" | "expression";

/**
 * A condition operator.
 */
export type Operator = "is" | "is_not" | "in" | "not_in" | "is_empty" | "is_not_empty" | "lt" | "lte" | "gt" | "gte" | "contains" | "not_contains" | "starts_with" | "ends_with" | "matches" | "has_any" | "has_all" | "has_none" | "changed" | "changed_to" | "changed_from";

/**
 * One numbered condition: `{"id": 1, "field": "subject", "operator":
 * "contains", "value": "refund"}`.
 */
export type Condition = { 
/**
 * The number the expression refers to, 1..=100, distinct in a webhook.
 */
id: number, 
/**
 * A field of the catalogue, e.g. `subject` or `customFields.plan`.
 */
field: string, 
/**
 * An operator the field allows, e.g. `contains`.
 */
operator: Operator | string, 
/**
 * The operand; its type depends on the operator (see the catalogue).
 * Absent for operators without one, such as `is_empty`.
 */
value?: string | number | string[] | null, };

/**
 * A webhook as the admin defines it.
 */
export type Webhook = { 
/**
 * Stable identifier, e.g. `wh_…`; assigned by the server.
 */
id?: string, 
/**
 * What the admin calls it.
 */
name: string, 
/**
 * A disabled webhook never fires.
 */
enabled?: boolean, 
/**
 * Where deliveries are POSTed: an absolute http:// or https:// URL.
 */
url: string, 
/**
 * Event types it wants, by name.
 */
events: Array<EventType | string>, 
/**
 * Channels it listens to; with `accounts`, both empty means every one.
 */
channels?: Array<string>, 
/**
 * Channel accounts it listens to.
 */
accounts?: Array<string>, 
/**
 * Numbered conditions; none means every event of its types fires.
 */
conditions?: Array<Condition>, 
/**
 * `all`, `any` or `expression`.
 */
match?: MatchMode | string, 
/**
 * The logic expression, used when `match` is `expression`.
 */
expression?: string, 
/**
 * At most this many deliveries a second start to its URL, 1 to
 * [`crate::MAX_RATE_LIMIT`]; none: as fast as the receiver answers. A
 * delivery over it waits its turn; it never fails for it.
 */
rateLimit?: number, };

/**
 * The event the helpdesk sends to be matched (the "ingest event").
 * Unknown keys are ignored, so the helpdesk can send more than the engine
 * reads.
 */
export type IngestEvent = { 
/**
 * The company the event belongs to.
 */
tenantId?: string, 
/**
 * The event type's name, e.g. `TicketCreated`.
 */
event: EventType | string, 
/**
 * The ticket's UUID.
 */
ticketId?: string, 
/**
 * The message's UUID, for replies.
 */
messageId?: string, 
/**
 * When it happened (RFC 3339).
 */
occurredAt?: string, 
/**
 * The ticket as it is after the event.
 */
ticket?: Ticket, 
/**
 * The message, for replies.
 */
message?: Message, 
/**
 * What the event changed.
 */
changes?: Changes, };

/**
 * The ticket fields conditions can test.
 */
export type Ticket = { 
/**
 * `email`, `whatsapp`, …
 */
channel?: string | null, 
/**
 * The channel account, e.g. `support@acme.example`.
 */
accountId?: string | null, 
/**
 * The ticket's subject line.
 */
subject?: string | null, 
/**
 * One of the ordered statuses (see the catalogue).
 */
status?: string | null, 
/**
 * One of the ordered priorities (see the catalogue).
 */
priority?: string | null, 
/**
 * The agent it is assigned to.
 */
assigneeId?: string | null, 
/**
 * The team it belongs to.
 */
teamId?: string | null, 
/**
 * Free-form labels.
 */
tags?: Array<string>, 
/**
 * The customer who opened it.
 */
requester?: Requester | null, 
/**
 * Company-defined fields: text or numbers.
 */
customFields?: Record<string, string | number | boolean | null>, };

/**
 * The customer behind a ticket.
 */
export type Requester = { 
/**
 * Their e-mail address.
 */
email?: string | null, 
/**
 * Their display name.
 */
name?: string | null, };

/**
 * The message of a reply event.
 */
export type Message = { 
/**
 * Its text.
 */
body?: string | null, 
/**
 * Who sent it.
 */
from?: string | null, };

/**
 * What an event changed, field by field.
 */
export type Changes = { 
/**
 * A status change.
 */
status?: Change | null, 
/**
 * A priority change.
 */
priority?: Change | null, 
/**
 * An assignee change.
 */
assigneeId?: Change | null, 
/**
 * A team change.
 */
teamId?: Change | null, };

/**
 * One field's change; `None` stands for "was empty" or "became empty".
 */
export type Change = { 
/**
 * The value before.
 */
from?: string | null, 
/**
 * The value after.
 */
to?: string | null, };

/**
 * One check's outcome.
 */
export type CheckOutcome = { 
/**
 * `enabled`, `event`, `subscription` or `conditions`.
 */
check: "enabled" | "event" | "subscription" | "conditions", 
/**
 * Whether it passed.
 */
passed: boolean, 
/**
 * What it found, for the admin.
 */
message: string, };

/**
 * One condition's outcome.
 */
export type ConditionOutcome = { 
/**
 * The condition's id.
 */
id: number, 
/**
 * Its field.
 */
field: string, 
/**
 * Its operator.
 */
operator: string, 
/**
 * Its value, when it has one.
 */
value?: string | number | string[], 
/**
 * The value it saw in the event (`null` when the field is missing),
 * shortened: texts to [`MAX_ACTUAL_CHARS`] characters, lists to
 * [`MAX_ACTUAL_ITEMS`] entries.
 */
actual: unknown, 
/**
 * Present (`true`) when `actual` was shortened.
 */
truncated?: boolean, 
/**
 * Whether it holds.
 */
holds: boolean, };

/**
 * How the conditions combined under the match mode.
 */
export type MatchOutcome = { 
/**
 * `all`, `any` or `expression`.
 */
mode: MatchMode, 
/**
 * The expression, in `expression` mode.
 */
expression?: string, 
/**
 * Whether the conditions pass.
 */
result: boolean, };

/**
 * Why a webhook does or does not fire for an event.
 */
export type Explanation = { 
/**
 * The webhook explained.
 */
webhookId: string, 
/**
 * Whether it fires.
 */
fires: boolean, 
/**
 * Each check of SPEC §5 in order: `enabled`, `event`, `subscription`,
 * `conditions`. All are made, even after one fails.
 */
checks: Array<CheckOutcome>, 
/**
 * Each condition, in definition order, with the value it saw.
 */
conditions: Array<ConditionOutcome>, 
/**
 * How the conditions combined.
 */
match: MatchOutcome, };

/**
 * What a field holds, which decides how it compares.
 */
export type FieldKind = "id" | "enum" | "text" | "tags" | "text_or_number";

/**
 * The operand an operator takes.
 */
export type ValueType = "none" | "string" | "string_list" | "enum" | "enum_list" | "number" | "string_or_number" | "regex";

/**
 * One operator a field allows.
 */
export type OperatorInfo = { 
/**
 * The operator's name.
 */
operator: Operator, 
/**
 * The value it takes.
 */
value: ValueType, };

/**
 * One field of the catalogue.
 */
export type FieldInfo = { 
/**
 * The name conditions use. For company-defined fields this is the
 * pattern `customFields.<key>`, where `<key>` is the field's key.
 */
field: string, 
/**
 * How it compares.
 */
kind: FieldKind, 
/**
 * The allowed values, lowest first, for `enum` fields.
 */
values: Array<string>, 
/**
 * The operators it allows, each with the value it takes.
 */
operators: Array<OperatorInfo>, };

/**
 * The limits validation enforces, so a UI can enforce them as well.
 */
export type Limits = { 
/**
 * [`MAX_CONDITIONS`].
 */
maxConditions: number, 
/**
 * [`MAX_CONDITION_ID`].
 */
maxConditionId: number, 
/**
 * [`crate::MAX_EXPRESSION_CHARS`].
 */
maxExpressionChars: number, 
/**
 * [`crate::MAX_EXPRESSION_DEPTH`].
 */
maxExpressionDepth: number, 
/**
 * [`MAX_VALUE_CHARS`].
 */
maxValueChars: number, 
/**
 * [`MAX_LIST_ITEMS`].
 */
maxListItems: number, 
/**
 * [`MAX_PATTERN_CHARS`].
 */
maxPatternChars: number, 
/**
 * [`MAX_PATTERN_WEIGHT`].
 */
maxPatternWeight: number, 
/**
 * [`MAX_MATCH_CHARS`].
 */
maxMatchChars: number, 
/**
 * [`MAX_URL_CHARS`].
 */
maxUrlChars: number, 
/**
 * [`MAX_RATE_LIMIT`].
 */
maxRateLimit: number, };

/**
 * The published catalogue.
 */
export type Catalog = { 
/**
 * Every field, in display order.
 */
fields: Array<FieldInfo>, 
/**
 * Every event type.
 */
events: Array<EventType>, 
/**
 * Every match mode.
 */
matchModes: Array<MatchMode>, 
/**
 * The limits validation enforces.
 */
limits: Limits, 
/**
 * Each event type, described: in the order of `events`.
 */
eventTypes: Array<EventInfo>, };

/**
 * One event type: when the helpdesk sends it, the fields conditions read
 * on it, and examples of what comes in and what goes out.
 */
export type EventInfo = { 
/**
 * Its name.
 */
event: EventType, 
/**
 * When the helpdesk sends it.
 */
description: string, 
/**
 * The fields conditions can read on it (see `fields`).
 */
fields: Array<string>, 
/**
 * An ingest event of this type, as the helpdesk sends it.
 */
example: IngestEvent, 
/**
 * The body a webhook receives for `example` (SPEC §2).
 */
delivered: { event: EventType; ticketId: string; messageId?: string }, };

/**
 * Output of [`match_event`].
 */
export type MatchResponse = { 
/**
 * The ids of the webhooks that fire, sorted.
 */
matched: Array<string>, 
/**
 * Webhooks refused as invalid (they never fire).
 */
rejected?: Array<Rejected>, };

/**
 * A webhook [`RuleSet::from_webhooks`] refused, with why.
 */
export type Rejected = { 
/**
 * The webhook's id.
 */
id: string, 
/**
 * Every problem found.
 */
report: Report, };

/**
 * The answer of [`admit_event`]: a report (`valid`, `errors`, `warnings`,
 * as every validation answers) and, for a valid event, the payload every
 * delivery of it carries.
 */
export type Admission = { 
/**
 * `true` exactly when `errors` is empty.
 */
valid: boolean, 
/**
 * Every problem found, each with its `path`.
 */
errors: Array<Diagnostic>, 
/**
 * Always empty today; kept for the shape every report has.
 */
warnings: Array<Diagnostic>, 
/**
 * The delivered body (SPEC §2): exactly `event`, `ticketId` and, for
 * replies, `messageId`, in this order. Absent when invalid.
 */
payload: { event: EventType; ticketId: string; messageId?: string }, };

/**
 * What a rule set makes of a batch of ingest events ([`RuleSet::ingest`]).
 */
export type Intake = { 
/**
 * Whether every event was admitted. Only then are they matched: one
 * bad event refuses the whole batch.
 */
valid: boolean, 
/**
 * Each event's admission (its problems, or the body its deliveries
 * carry), in the batch's order.
 */
events: Array<Admission>, 
/**
 * For each event, in the same order, the webhooks that fire for it in
 * id order; empty when the batch was refused.
 */
matched: Array<Array<Fired>>, };

/**
 * A webhook that fires for an event, and why.
 */
export type Fired = { 
/**
 * The webhook's id.
 */
webhookId: string, 
/**
 * Each check and condition as the event met it.
 */
explanation: Explanation, };

/**
 * What a webhook would have done with a list of events.
 */
export type Backtest = { 
/**
 * How many events were looked at.
 */
scanned: number, 
/**
 * How many of them the webhook fires for.
 */
matched: number, 
/**
 * The matches by event type; types without a match are left out.
 */
byEvent: Partial<Record<EventType, number>>, 
/**
 * Events the engine does not admit (never a match): events stored
 * under rules that have since changed.
 */
refused: number, 
/**
 * The first matches in the list's order, each explained, at most as
 * many as asked.
 */
samples: Array<BacktestMatch>, };

/**
 * One event the webhook fires for.
 */
export type BacktestMatch = { 
/**
 * Its place in the list.
 */
index: number, 
/**
 * The body its delivery carries.
 */
payload: { event: EventType; ticketId: string; messageId?: string }, 
/**
 * Each check and condition as the event met it.
 */
explanation: Explanation, };
