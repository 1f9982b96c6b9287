// One webhook's delivery log: each delivery with its attempts, resend, and
// a test event with its outcome.

import type { Catalog } from "@cloudcx/inbox-rules";
import { call, type Delivery, type StoredWebhook } from "../api";
import { h, mount, uid } from "../dom";
import { t, type Key } from "../i18n";
import { secretBox } from "./secret";

export async function deliveryLog(root: HTMLElement, catalog: Catalog, id: string): Promise<void> {
  mount(root, h("p", {}, t("loading")));
  const webhook = await call<StoredWebhook>("GET", `/v1/webhooks/${id}`);
  const page = await call<{ data: Delivery[] }>("GET", `/v1/webhooks/${id}/deliveries?limit=50`);
  const details = await Promise.all(page.data.map((d) => call<Delivery>("GET", `/v1/deliveries/${d.id}`)));

  const kind = h("select", { id: uid("test-kind") }, catalog.events.map((e) => h("option", { value: e }, e)));
  const test = h("button", { type: "button" }, t("sendTest"));
  const outcome = h("p", { class: "test-outcome", role: "status", "aria-live": "polite" });
  test.addEventListener("click", async () => {
    test.disabled = true;
    const answer = await call<{ delivered: boolean; delivery: Delivery }>("POST", `/v1/webhooks/${id}/test`, { event: kind.value });
    const attempt = answer.delivery.attemptsLog?.[0];
    await deliveryLog(root, catalog, id);
    const text = answer.delivered
      ? t("testSent", { status: attempt?.status ?? "" })
      : t("testFailed", { error: attempt?.error ?? "" });
    root.querySelector(".test-outcome")?.replaceChildren(text);
  });
  const rotate = h("button", { type: "button" }, t("rotateSecret"));
  const secretSlot = h("div");
  rotate.addEventListener("click", async () => {
    const answer = await call<{ secret: string }>("POST", `/v1/webhooks/${id}/secret/rotate`);
    mount(secretSlot, secretBox(answer.secret));
  });

  mount(
    root,
    h("h2", {}, `${t("deliveries")}: ${webhook.name}`),
    h("div", { class: "toolbar" }, h("label", { for: kind.id }, t("event")), kind, test, rotate),
    outcome,
    secretSlot,
    details.length === 0
      ? h("p", {}, t("noDeliveries"))
      : h(
          "table",
          { class: "deliveries" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              [t("event"), t("state"), t("attempts"), t("status"), t("duration"), t("answer"), t("actions")].map((c) =>
                h("th", { scope: "col" }, c),
              ),
            ),
          ),
          h("tbody", {}, details.map((d) => deliveryRow(root, catalog, id, d))),
        ),
    h("p", {}, h("a", { href: "#/" }, t("back"))),
  );
}

function deliveryRow(root: HTMLElement, catalog: Catalog, webhookId: string, d: Delivery): HTMLTableRowElement {
  const last = d.attemptsLog?.[d.attemptsLog.length - 1];
  const resend = h("button", { type: "button" }, t("resend"));
  resend.addEventListener("click", async () => {
    resend.disabled = true;
    await call("POST", `/v1/deliveries/${d.id}/retry`);
    await deliveryLog(root, catalog, webhookId);
  });
  return h(
    "tr",
    { dataset: { deliveryId: d.id, state: d.state } },
    h("td", { "data-label": t("event") }, d.eventType),
    h("td", { "data-label": t("state"), class: `state ${d.state}` }, t(d.state as Key)),
    h("td", { "data-label": t("attempts") }, String(d.attempts)),
    h("td", { "data-label": t("status"), class: "status" }, last?.status ? String(last.status) : (last?.errorKind ?? "")),
    h("td", { "data-label": t("duration") }, last ? `${last.durationMs} ms` : ""),
    h("td", { "data-label": t("answer"), class: "answer" }, h("code", {}, last?.response ?? last?.error ?? "")),
    h("td", { "data-label": t("actions") }, resend),
  );
}
