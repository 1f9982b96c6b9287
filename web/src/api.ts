// The server's API, with the admin key of this tab. Errors come back in the
// API's one shape, `{ error, message, diagnostics? }`.

import type { components } from "./api.gen";

const KEY = "inbox.apiKey";

/** The API's shapes, generated from its OpenAPI document (`web/openapi.json`). */
type Schemas = components["schemas"];

export type ApiErrorBody = Schemas["ErrorBody"];

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

/** A stored webhook, as `GET /v1/webhooks/{id}` shows it. */
export type StoredWebhook = Schemas["WebhookView"];

export type TlsWrite = { clientCertificate: string; clientKey: string } | null;

export type Attempt = Schemas["AttemptView"];

/** A delivery, with its attempts when read one by one. */
export type Delivery = Schemas["DeliveryView"] & { attemptsLog?: Attempt[] };

/** A page of the delivery log, newest first. */
export type DeliveryPage = Schemas["DeliveryPage"];

/** A webhook's attempts per bucket (`GET /v1/webhooks/{id}/stats`). */
export type Stats = Schemas["StatsView"];

/** What a draft would have done with stored events. */
export type Backtest = Schemas["BacktestView"];

export type ReplayResult = Schemas["ReplayView"];

export type RecoverResult = Schemas["RecoverView"];

/** A time from a `datetime-local` input (local time) in the API's UTC form. */
export function utc(local: string): string {
  return new Date(local).toISOString();
}
