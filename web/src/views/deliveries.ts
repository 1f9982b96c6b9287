// One webhook's page: its health over the last day, a test event, its
// secret, replay and recover (each confirmed with how many it will send),
// and its delivery log, filtered, with each delivery's details.

import type { Catalog, Explanation } from "@cloudcx/inbox-rules";
import {
  call,
  utc,
  type Attempt,
  type Delivery,
  type DeliveryPage,
  type RecoverResult,
  type ReplayResult,
  type Stats,
  type StoredWebhook,
} from "../api";
import { h, mount, uid } from "../dom";
import { lang, t, type Key } from "../i18n";
import { healthChart } from "./chart";
import { explanationView } from "./explanation";
import { secretBox } from "./secret";

/** The log's filters, as the URL's query after the route keeps them. */
interface Filters {
  state: string;
  event: string;
  ticketId: string;
  /** `datetime-local` values (local time); empty for no bound. */
  since: string;
  until: string;
}

function when(iso: string | null | undefined): string {
  if (!iso) return "";
  return new Date(iso).toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB", {
    dateStyle: "short",
    timeStyle: "medium",
  });
}

export async function deliveryLog(root: HTMLElement, catalog: Catalog, id: string): Promise<void> {
  mount(root, h("p", {}, t("loading")));
  const [webhook, stats] = await Promise.all([
    call<StoredWebhook>("GET", `/v1/webhooks/${id}`),
    call<Stats>("GET", `/v1/webhooks/${id}/stats?window=24h&bucket=1h`),
  ]);
  const filters: Filters = { state: "", event: "", ticketId: "", since: "", until: "" };
  const log = h("section", { class: "log", "aria-labelledby": "log-title" });

  // --- test event and secret ---
  const kind = h("select", { id: uid("test-kind") }, catalog.events.map((e) => h("option", { value: e }, e)));
  const test = h("button", { type: "button" }, t("sendTest"));
  const outcome = h("p", { class: "test-outcome", role: "status", "aria-live": "polite" });
  test.addEventListener("click", async () => {
    test.disabled = true;
    const answer = await call<{ delivered: boolean; delivery: Delivery }>("POST", `/v1/webhooks/${id}/test`, { event: kind.value });
    const attempt = answer.delivery.attemptsLog?.[0];
    test.disabled = false;
    outcome.textContent = answer.delivered
      ? t("testSent", { status: attempt?.status ?? "" })
      : t("testFailed", { error: attempt?.error ?? "" });
    await showLog(log, id, catalog, filters);
  });
  const rotate = h("button", { type: "button" }, t("rotateSecret"));
  const secretSlot = h("div");
  rotate.addEventListener("click", async () => {
    const answer = await call<{ secret: string }>("POST", `/v1/webhooks/${id}/secret/rotate`);
    mount(secretSlot, secretBox(answer.secret));
  });

  mount(
    root,
    h("div", { class: "toolbar" }, h("h2", {}, webhook.name), h("a", { href: `#/edit/${id}` }, t("editWebhook"))),
    h("section", { class: "health-block", "aria-labelledby": "health-title" }, h("h3", { id: "health-title" }, t("health")), healthChart(stats)),
    h("div", { class: "toolbar" }, h("span", {}, h("label", { for: kind.id }, t("event")), " ", kind, " ", test), rotate),
    outcome,
    secretSlot,
    h("div", { class: "history-actions" }, replayBox(id, () => showLog(log, id, catalog, filters)), recoverBox(id, () => showLog(log, id, catalog, filters))),
    log,
    h("p", {}, h("a", { href: "#/" }, t("back"))),
  );
  await showLog(log, id, catalog, filters);
}

/** A "since" (and optionally "until") form that previews, confirms, then sends. */
function confirmedAction(options: {
  title: Key;
  help: Key;
  withUntil: boolean;
  preview: (since: string, until: string | undefined) => Promise<{ count: number; text: string }>;
  run: (since: string, until: string | undefined) => Promise<string>;
}): HTMLElement {
  const since = h("input", { type: "datetime-local", id: uid("since"), required: true, step: 1 });
  const until = h("input", { type: "datetime-local", id: uid("until"), step: 1 });
  // A day ago, by default: the usual outage.
  const dayAgo = new Date(Date.now() - 24 * 3600 * 1000 - new Date().getTimezoneOffset() * 60_000);
  since.value = dayAgo.toISOString().slice(0, 19);
  const preview = h("button", { type: "submit" }, t("preview"));
  const result = h("div", { class: "confirm-slot", role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "history-action" },
    h("h3", {}, t(options.title)),
    h("p", { class: "help" }, t(options.help)),
    h("label", { for: since.id }, t("from")),
    since,
    options.withUntil ? h("label", { for: until.id }, t("untilOptional")) : null,
    options.withUntil ? until : null,
    h("div", { class: "actions" }, preview),
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!since.value) return;
    const from = utc(since.value);
    const to = options.withUntil && until.value ? utc(until.value) : undefined;
    preview.disabled = true;
    try {
      const { count, text } = await options.preview(from, to);
      if (count === 0) {
        mount(result, h("p", { class: "confirm-text" }, t("nothingToSend")));
        return;
      }
      const go = h("button", { type: "button", class: "primary" }, t("send"));
      const no = h("button", { type: "button" }, t("cancel"));
      go.addEventListener("click", async () => {
        go.disabled = true;
        no.disabled = true;
        mount(result, h("p", {}, await options.run(from, to)));
        preview.focus();
      });
      no.addEventListener("click", () => {
        result.replaceChildren();
        preview.focus();
      });
      mount(result, h("p", { class: "confirm-text" }, text), go, " ", no);
      go.focus();
    } catch (error) {
      mount(result, h("p", { class: "problem", role: "alert" }, error instanceof Error ? error.message : String(error)));
    } finally {
      preview.disabled = false;
    }
  });
  return form;
}

function replayBox(id: string, refresh: () => Promise<void>): HTMLElement {
  const ask = (since: string, until: string | undefined, dryRun: boolean): Promise<ReplayResult> =>
    call<ReplayResult>("POST", `/v1/webhooks/${id}/replay`, { since, until, dryRun });
  return confirmedAction({
    title: "replay",
    help: "replayHelp",
    withUntil: true,
    preview: async (since, until) => {
      const dry = await ask(since, until, true);
      const more = dry.next ? ` ${t("moreRemain")}` : "";
      return { count: dry.created, text: t("replayConfirm", { created: dry.created, matched: dry.matched, scanned: dry.scanned }) + more };
    },
    run: async (since, until) => {
      const done = await ask(since, until, false);
      await refresh();
      return t("replayDone", { created: done.created });
    },
  });
}

function recoverBox(id: string, refresh: () => Promise<void>): HTMLElement {
  const ask = (since: string, dryRun: boolean): Promise<RecoverResult> =>
    call<RecoverResult>("POST", `/v1/webhooks/${id}/recover`, { since, dryRun });
  return confirmedAction({
    title: "recover",
    help: "recoverHelp",
    withUntil: false,
    preview: async (since) => {
      const dry = await ask(since, true);
      const more = dry.more ? ` ${t("moreRemain")}` : "";
      return { count: dry.recovered, text: t("recoverConfirm", { recovered: dry.recovered }) + more };
    },
    run: async (since) => {
      const done = await ask(since, false);
      await refresh();
      return t("recoverDone", { recovered: done.recovered });
    },
  });
}

/** The filters and the first page of the log. */
async function showLog(log: HTMLElement, id: string, catalog: Catalog, filters: Filters): Promise<void> {
  const state = h(
    "select",
    { id: uid("state") },
    h("option", { value: "" }, t("anyState")),
    (["pending", "succeeded", "failed", "cancelled"] as const).map((s) => h("option", { value: s, selected: filters.state === s }, t(s))),
  );
  const event = h(
    "select",
    { id: uid("event") },
    h("option", { value: "" }, t("anyEvent")),
    catalog.events.map((e) => h("option", { value: e, selected: filters.event === e }, e)),
  );
  const ticket = h("input", { type: "search", id: uid("ticket"), value: filters.ticketId, autocomplete: "off", spellcheck: "false" });
  const since = h("input", { type: "datetime-local", id: uid("log-since"), value: filters.since, step: 1 });
  const until = h("input", { type: "datetime-local", id: uid("log-until"), value: filters.until, step: 1 });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": t("filters") },
    h("span", { class: "filter" }, h("label", { for: state.id }, t("state")), state),
    h("span", { class: "filter" }, h("label", { for: event.id }, t("event")), event),
    h("span", { class: "filter" }, h("label", { for: ticket.id }, t("ticket")), ticket),
    h("span", { class: "filter" }, h("label", { for: since.id }, t("from")), since),
    h("span", { class: "filter" }, h("label", { for: until.id }, t("until")), until),
    h("button", { type: "submit" }, t("apply")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filters.state = state.value;
    filters.event = event.value;
    filters.ticketId = ticket.value.trim();
    filters.since = since.value;
    filters.until = until.value;
    void showLog(log, id, catalog, filters);
  });
  const body = h("tbody");
  const more = h("div", { class: "more" });
  mount(
    log,
    h("h3", { id: "log-title" }, t("deliveries")),
    form,
    h(
      "table",
      { class: "deliveries" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [t("time"), t("ticket"), t("event"), t("state"), t("attempts"), t("status"), t("duration"), t("actions")].map((c) =>
            h("th", { scope: "col" }, c),
          ),
        ),
      ),
      body,
    ),
    more,
  );
  await page(body, more, id, filters, null);
}

async function page(body: HTMLElement, more: HTMLElement, id: string, filters: Filters, cursor: string | null): Promise<void> {
  const query = new URLSearchParams({ webhookId: id, limit: "25" });
  if (filters.state) query.set("state", filters.state);
  if (filters.event) query.set("event", filters.event);
  if (filters.ticketId) query.set("ticketId", filters.ticketId);
  if (filters.since) query.set("since", utc(filters.since));
  if (filters.until) query.set("until", utc(filters.until));
  if (cursor) query.set("cursor", cursor);
  const found = await call<DeliveryPage>("GET", `/v1/deliveries?${query}`);
  for (const d of found.data) body.append(...deliveryRows(d));
  if (!cursor && found.data.length === 0 && !found.nextCursor) {
    body.append(h("tr", {}, h("td", { colspan: 8 }, t("noDeliveries"))));
  }
  if (found.nextCursor) {
    const older = h("button", { type: "button" }, t("older"));
    older.addEventListener("click", () => void page(body, more, id, filters, found.nextCursor ?? null));
    mount(more, older);
  } else {
    more.replaceChildren();
  }
}

/** A delivery's row, and the row its details open in. */
function deliveryRows(d: Delivery): HTMLTableRowElement[] {
  const detailCell = h("td", { colspan: 8 });
  const detailRow = h("tr", { class: "detail", hidden: true }, detailCell);
  const toggle = h("button", { type: "button", "aria-expanded": "false" }, t("details"));
  toggle.addEventListener("click", async () => {
    const open = detailRow.hidden;
    detailRow.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? t("hideDetails") : t("details");
    if (open && !detailCell.hasChildNodes()) {
      mount(detailCell, detail(await call<Delivery>("GET", `/v1/deliveries/${d.id}`)));
    }
  });
  const resend = h("button", { type: "button" }, t("resend"));
  resend.addEventListener("click", async () => {
    resend.disabled = true;
    await call("POST", `/v1/deliveries/${d.id}/retry`);
    resend.disabled = false;
  });
  const next = d.state === "pending" && d.nextAttemptAt ? h("small", { class: "next" }, ` ${t("nextAttempt", { time: when(d.nextAttemptAt) })}`) : null;
  const row = h(
    "tr",
    { dataset: { deliveryId: d.id, state: d.state, ticketId: d.ticketId } },
    h("td", { "data-label": t("time") }, h("time", { datetime: d.createdAt }, when(d.createdAt))),
    h("td", { "data-label": t("ticket"), class: "ticket", title: d.ticketId }, d.ticketId.slice(0, 8)),
    h("td", { "data-label": t("event") }, d.eventType),
    h("td", { "data-label": t("state"), class: `state ${d.state}` }, t(d.state as Key), next),
    h("td", { "data-label": t("attempts") }, String(d.attempts)),
    h("td", { "data-label": t("status"), class: "status" }, d.lastStatus == null ? "" : String(d.lastStatus)),
    h("td", { "data-label": t("duration") }, d.lastDurationMs == null ? "" : `${d.lastDurationMs} ms`),
    h("td", { "data-label": t("actions"), class: "row-actions" }, toggle, " ", resend),
  );
  return [row, detailRow];
}

/** What was sent, how each attempt went, and why it matched. */
function detail(d: Delivery & { matched?: unknown }): HTMLElement {
  const attempts: Attempt[] = d.attemptsLog ?? [];
  const last = attempts[attempts.length - 1];
  const matched = d.matched as (Explanation & { test?: boolean }) | undefined;
  return h(
    "div",
    { class: "delivery-detail" },
    h("h4", {}, t("bodySent")),
    h("pre", { class: "body" }, JSON.stringify(d.payload, null, 2)),
    last
      ? [
          h("h4", {}, t("headersSent")),
          h(
            "dl",
            { class: "headers" },
            Object.entries(last.headers).flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
          ),
        ]
      : null,
    h("h4", {}, t("attemptsLog")),
    h(
      "ol",
      { class: "attempts" },
      attempts.map((a) =>
        h(
          "li",
          {},
          h("time", { datetime: a.startedAt }, when(a.startedAt)),
          ` · ${a.status ?? a.errorKind ?? ""} · ${a.durationMs} ms `,
          h("code", { class: "answer" }, a.response ?? a.error ?? ""),
        ),
      ),
    ),
    h("h4", {}, t("whyMatched")),
    matched && "fires" in matched ? explanationView(matched) : h("p", {}, t("testDelivery")),
  );
}
