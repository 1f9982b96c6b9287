// The webhooks of the tenant: state, receiver health, last delivery, and
// enable/disable/delete.

import { call, type Delivery, type StoredWebhook } from "../api";
import { h, mount } from "../dom";
import { t, type Key } from "../i18n";

export async function webhookList(root: HTMLElement): Promise<void> {
  mount(root, h("p", {}, t("loading")));
  const page = await call<{ data: StoredWebhook[] }>("GET", "/v1/webhooks?limit=100");
  const rows = await Promise.all(
    page.data.map(async (webhook) => {
      const last = await call<{ data: Delivery[] }>("GET", `/v1/webhooks/${webhook.id}/deliveries?limit=1`);
      return row(root, webhook, last.data[0]);
    }),
  );
  mount(
    root,
    h("div", { class: "toolbar" }, h("h2", {}, t("webhooks")), h("a", { href: "#/new", class: "button primary" }, t("newWebhook"))),
    rows.length === 0
      ? h("p", {}, t("noWebhooks"))
      : h(
          "table",
          { class: "webhooks" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              [t("name"), t("url"), t("events"), t("enabled"), t("breaker"), t("lastDelivery"), t("actions")].map((c) =>
                h("th", { scope: "col" }, c),
              ),
            ),
          ),
          h("tbody", {}, rows),
        ),
  );
}

function row(root: HTMLElement, webhook: StoredWebhook, last: Delivery | undefined): HTMLTableRowElement {
  const toggle = h("button", { type: "button" }, webhook.enabled ? t("disable") : t("enable"));
  toggle.addEventListener("click", async () => {
    await call("POST", `/v1/webhooks/${webhook.id}/${webhook.enabled ? "disable" : "enable"}`);
    await webhookList(root);
  });
  const remove = h("button", { type: "button", class: "danger" }, t("delete"));
  const confirmSlot = h("span", { class: "confirm" });
  remove.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "danger" }, t("yesDelete"));
    const no = h("button", { type: "button" }, t("cancel"));
    yes.addEventListener("click", async () => {
      await call("DELETE", `/v1/webhooks/${webhook.id}`);
      await webhookList(root);
    });
    no.addEventListener("click", () => {
      confirmSlot.replaceChildren();
      remove.focus();
    });
    mount(confirmSlot, h("span", { role: "alert" }, t("confirmDelete")), " ", yes, " ", no);
    yes.focus();
  });
  const lastText = last ? `${t(last.state as Key)} · ${last.eventType}` : t("none");
  return h(
    "tr",
    { dataset: { webhookId: webhook.id } },
    h("td", { "data-label": t("name") }, h("a", { href: `#/edit/${webhook.id}` }, webhook.name)),
    h("td", { "data-label": t("url"), class: "url" }, webhook.url),
    h("td", { "data-label": t("events") }, webhook.events.join(", ")),
    h(
      "td",
      { "data-label": t("enabled"), class: webhook.enabled ? "on" : "off", title: webhook.disabledReason ?? "" },
      webhook.enabled ? t("enabled") : t("disabled"),
      webhook.disabledReason ? h("small", { class: "reason" }, ` (${webhook.disabledReason})`) : null,
    ),
    h("td", { "data-label": t("breaker"), class: `breaker ${webhook.breaker}` }, t(webhook.breaker)),
    h("td", { "data-label": t("lastDelivery"), class: "last" }, lastText),
    h(
      "td",
      { "data-label": t("actions"), class: "row-actions" },
      h("a", { href: `#/edit/${webhook.id}` }, t("edit")),
      " ",
      h("a", { href: `#/deliveries/${webhook.id}` }, t("deliveries")),
      " ",
      toggle,
      " ",
      remove,
      confirmSlot,
    ),
  );
}
