/** What kind of problem a diagnostic reports. */
export type DiagnosticCode =
  | "empty_expression"
  | "fullwidth_character"
  | "missing_space"
  | "unbalanced_parentheses"
  | "unknown_condition"
  | "syntax_error"
  | "too_long"
  | "too_deep"
  | "unused_condition"
  | "unknown_field"
  | "operator_not_allowed"
  | "invalid_value"
  | "invalid_regex"
  | "duplicate_id"
  | "invalid_id"
  | "too_many_conditions"
  | "invalid_url"
  | "unknown_event"
  | "missing_field"
  | "unknown_key";

/** One problem, or warning, and where it is. */
export interface Diagnostic {
  code: DiagnosticCode;
  /** A sentence for the admin. */
  message: string;
  /** Where in a webhook, e.g. `conditions[2].value`; absent for a bare expression. */
  path?: string;
  /** The condition the problem belongs to, when there is one. */
  conditionId?: number;
  /** Start of the span to underline: a UTF-16 index into the expression. */
  start?: number;
  /** End (exclusive) of the span to underline. */
  end?: number;
  /** The text that fixes the problem in place of `start..end`, when the engine knows it. */
  replacement?: string;
}

/** The answer of every validation. Warnings never make the input invalid. */
export interface Report {
  valid: boolean;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

/** The answer of `evaluate`: the value, or the report of an invalid expression. */
export type EvalResult = { result: boolean } | Report;

export type EventType =
  | "TicketCreated"
  | "TicketFromUserReply"
  | "TicketAgentReply"
  | "TicketAssigneeChanged"
  | "TicketStatusChanged"
  | "TicketMovedToRecycleBin";

export type Operator =
  | "is" | "is_not" | "in" | "not_in" | "is_empty" | "is_not_empty"
  | "lt" | "lte" | "gt" | "gte"
  | "contains" | "not_contains" | "starts_with" | "ends_with" | "matches"
  | "has_any" | "has_all" | "has_none"
  | "changed" | "changed_to" | "changed_from";

/** A numbered condition. See `fieldCatalog()` for fields, operators and values. */
export interface Condition {
  id: number;
  field: string;
  operator: Operator | string;
  value?: string | number | string[] | null;
}

export type MatchMode = "all" | "any" | "expression";

/** A webhook as the admin defines it. */
export interface Webhook {
  id?: string;
  name: string;
  enabled?: boolean;
  url: string;
  events: (EventType | string)[];
  channels?: string[];
  accounts?: string[];
  conditions?: Condition[];
  match?: MatchMode | string;
  expression?: string;
}

export interface Change {
  from?: string | null;
  to?: string | null;
}

/** The event the helpdesk sends to be matched. */
export interface IngestEvent {
  tenantId?: string;
  event: EventType | string;
  ticketId?: string;
  messageId?: string;
  occurredAt?: string;
  ticket?: {
    channel?: string | null;
    accountId?: string | null;
    subject?: string | null;
    status?: string | null;
    priority?: string | null;
    assigneeId?: string | null;
    teamId?: string | null;
    tags?: string[];
    requester?: { email?: string | null; name?: string | null } | null;
    customFields?: Record<string, string | number | boolean | null>;
  };
  message?: { body?: string | null; from?: string | null } | null;
  changes?: {
    status?: Change;
    priority?: Change;
    assigneeId?: Change;
    teamId?: Change;
  };
}

export interface CheckOutcome {
  check: "enabled" | "event" | "subscription" | "conditions";
  passed: boolean;
  message: string;
}

export interface ConditionOutcome {
  id: number;
  field: string;
  operator: string;
  value?: string | number | string[];
  /** The value the condition saw in the event; `null` when missing. */
  actual: unknown;
  holds: boolean;
}

/** Why a webhook does or does not fire for an event. */
export interface Explanation {
  webhookId: string;
  fires: boolean;
  checks: CheckOutcome[];
  conditions: ConditionOutcome[];
  match: { mode: MatchMode; expression?: string; result: boolean };
}

export type FieldKind = "id" | "enum" | "text" | "tags" | "text_or_number";

export type ValueType =
  | "none" | "string" | "string_list" | "enum" | "enum_list" | "number" | "string_or_number" | "regex";

export interface FieldInfo {
  /** The field's name; `customFields.<key>` stands for every company-defined field. */
  field: string;
  kind: FieldKind;
  /** The allowed values, lowest first, for `enum` fields. */
  values?: string[];
  operators: { operator: Operator; value: ValueType }[];
}

/** Fields, operators, value types, events and limits. */
export interface Catalog {
  fields: FieldInfo[];
  events: EventType[];
  matchModes: MatchMode[];
  limits: {
    maxConditions: number;
    maxConditionId: number;
    maxExpressionChars: number;
    maxExpressionDepth: number;
    maxValueChars: number;
    maxListItems: number;
    maxPatternChars: number;
    maxUrlChars: number;
  };
}
