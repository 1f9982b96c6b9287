// The event catalogue: each event type the helpdesk sends, when, the fields
// conditions read on it with their types, an ingest event of the type and
// the body a webhook receives for it. All of it is the engine's catalogue.

import type { Catalog, FieldInfo } from "@cloudcx/inbox-rules";
import { h, mount } from "../dom";
import { describeEvent, t } from "../i18n";

export function catalogPage(root: HTMLElement, catalog: Catalog): void {
  const fields = new Map(catalog.fields.map((f) => [f.field, f]));
  mount(
    root,
    h("h2", {}, t("catalog")),
    h("p", { class: "help" }, t("catalogHelp")),
    h(
      "nav",
      { class: "event-index", "aria-label": t("catalog") },
      h("ul", {}, catalog.eventTypes.map((e) => h("li", {}, h("a", { href: `#/catalog/${e.event}` }, e.event)))),
    ),
    catalog.eventTypes.map((e) =>
      h(
        "section",
        { class: "event-type", id: `event-${e.event}`, "aria-labelledby": `title-${e.event}` },
        h("h3", { id: `title-${e.event}` }, e.event),
        h("p", {}, t("sentWhen", { what: describeEvent(e.event, e.description) })),
        h("h4", {}, t("delivered")),
        h("pre", { class: "body" }, JSON.stringify(e.delivered, null, 2)),
        h(
          "details",
          {},
          h("summary", {}, t("fieldsOfEvents")),
          fieldTable(e.fields.map((name) => fields.get(name)).filter((f): f is FieldInfo => f !== undefined)),
        ),
        h("details", {}, h("summary", {}, t("ingestExample")), h("pre", { class: "body" }, JSON.stringify(e.example, null, 2))),
      ),
    ),
    h("p", {}, h("a", { href: "#/" }, t("back"))),
  );
}

function fieldTable(fields: FieldInfo[]): HTMLElement {
  return h(
    "table",
    { class: "fields" },
    h("thead", {}, h("tr", {}, [t("field"), t("kind"), t("operators"), t("values")].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      fields.map((f) =>
        h(
          "tr",
          {},
          h("td", { "data-label": t("field") }, h("code", {}, f.field)),
          h("td", { "data-label": t("kind") }, f.kind),
          h("td", { "data-label": t("operators") }, f.operators.map((o) => o.operator).join(", ")),
          h("td", { "data-label": t("values") }, (f.values ?? []).join(", ")),
        ),
      ),
    ),
  );
}
