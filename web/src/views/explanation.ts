// The engine's explanation of a match, as the panel shows it wherever one
// appears: "Try it", a backtest's samples, a delivery's details.

import type { Explanation } from "@cloudcx/inbox-rules";
import { h } from "../dom";
import { t } from "../i18n";

export function explanationView(x: Explanation): HTMLElement {
  const mark = (ok: boolean): HTMLElement => h("span", { class: ok ? "ok" : "no", "aria-label": ok ? "✓" : "✗" }, ok ? "✓" : "✗");
  return h(
    "div",
    { class: "explained", dataset: { fires: String(x.fires) } },
    h("p", { class: `verdict ${x.fires ? "fires" : "quiet"}` }, x.fires ? t("fires") : t("doesNotFire")),
    h(
      "ul",
      { class: "checks" },
      x.checks.map((c) => h("li", { dataset: { check: c.check, passed: String(c.passed) } }, mark(c.passed), " ", c.message)),
    ),
    h(
      "ul",
      { class: "condition-outcomes" },
      x.conditions.map((c) =>
        h(
          "li",
          { dataset: { conditionId: String(c.id), holds: String(c.holds) } },
          mark(c.holds),
          ` ${c.id}. ${c.field} ${c.operator} ${c.value === undefined ? "" : JSON.stringify(c.value)} — ${t("saw")}: `,
          h("code", {}, JSON.stringify(c.actual)),
        ),
      ),
    ),
  );
}
