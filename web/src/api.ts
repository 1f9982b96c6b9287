// The server's API, with the admin key of this tab. Errors come back in the
// API's one shape, `{ error, message, diagnostics? }`.

import type { Diagnostic } from "@cloudcx/inbox-rules";

const KEY = "inbox.apiKey";

export interface ApiErrorBody {
  error: string;
  message: string;
  diagnostics?: Diagnostic[];
  warnings?: Diagnostic[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message);
  }
}

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, key);
}

/** Calls the API; the parsed answer, or an `ApiError`. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${apiKey() ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new ApiError(response.status, parsed as ApiErrorBody);
  }
  return parsed as T;
}

export interface StoredWebhook {
  id: string;
  name: string;
  enabled: boolean;
  url: string;
  events: string[];
  channels: string[];
  accounts: string[];
  conditions: { id: number; field: string; operator: string; value?: unknown }[];
  match: "all" | "any" | "expression";
  expression?: string;
  createdAt: string;
  updatedAt: string;
  disabledReason?: string;
  breaker: "closed" | "open" | "half_open";
  /** The client certificate it presents (mutual TLS); never its key. */
  tls?: { clientCertificate: { subject: string; notAfter: string } };
}

/** What a write says of the client certificate: set, remove (`null`), or leave out. */
export type TlsWrite = { clientCertificate: string; clientKey: string } | null;

export interface Attempt {
  startedAt: string;
  durationMs: number;
  status: number | null;
  response: string | null;
  errorKind: string | null;
  error: string | null;
}

export interface Delivery {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  state: "pending" | "succeeded" | "failed" | "cancelled";
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  payload: unknown;
  createdAt: string;
  updatedAt: string;
  attemptsLog?: Attempt[];
}
