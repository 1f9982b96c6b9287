// Showing the engine's diagnostics: underlined spans in an expression, and
// lists of problems. Nothing here decides validity: every diagnostic comes
// from the engine (in this page, or in a 422 from the server).

import type { Diagnostic } from "@cloudcx/inbox-rules";
import { h } from "./dom";
import { codeText, t } from "./i18n";

/**
 * The expression as runs of text, with the characters of each error span
 * wrapped in `<mark class="bad">` (spans are UTF-16 indices, as JavaScript
 * strings are). A span that is empty points at a place: it marks the next
 * character, or a blank after the end.
 */
export function underline(expression: string, errors: Diagnostic[]): Node[] {
  const marked = new Array<boolean>(expression.length + 1).fill(false);
  for (const d of errors) {
    if (d.start === undefined || d.end === undefined) continue;
    if (d.code === "unused_condition") continue;
    const end = d.end > d.start ? d.end : d.start + 1;
    for (let i = d.start; i < Math.min(end, marked.length); i += 1) marked[i] = true;
  }
  const nodes: Node[] = [];
  let i = 0;
  while (i < expression.length) {
    const bad = marked[i];
    let j = i;
    while (j < expression.length && marked[j] === bad) j += 1;
    const text = expression.slice(i, j);
    nodes.push(bad ? h("mark", { class: "bad", dataset: { start: String(i), end: String(j) } }, text) : document.createTextNode(text));
    i = j;
  }
  if (marked[expression.length]) {
    nodes.push(h("mark", { class: "bad point", dataset: { start: String(i), end: String(i) } }, " "));
  }
  return nodes;
}

/** The half-width twin of a full-width character (U+FF01–U+FF5E, U+3000). */
export function halfWidth(text: string): string {
  return Array.from(text, (c) => {
    const code = c.codePointAt(0) ?? 0;
    if (code === 0x3000) return " ";
    if (code >= 0xff01 && code <= 0xff5e) return String.fromCodePoint(code - 0xfee0);
    return c;
  }).join("");
}

/** One diagnostic as a list item: the code's sentence and the engine's words. */
export function item(d: Diagnostic, severity: "error" | "warning", extra?: Node | null): HTMLLIElement {
  return h(
    "li",
    {
      class: `diagnostic ${severity}`,
      dataset: {
        code: d.code,
        start: d.start === undefined ? "" : String(d.start),
        end: d.end === undefined ? "" : String(d.end),
        path: d.path ?? "",
      },
    },
    h("strong", {}, severity === "error" ? t("error") : t("warning"), ": "),
    h("span", { class: "code-text" }, codeText(d.code)),
    " ",
    h("span", { class: "engine-message" }, d.message),
    extra ?? null,
  );
}

/** A list of diagnostics (empty list when there are none). */
export function list(errors: Diagnostic[], warnings: Diagnostic[] = []): HTMLUListElement {
  return h(
    "ul",
    { class: "diagnostics", role: "status", "aria-live": "polite" },
    errors.map((d) => item(d, "error")),
    warnings.map((d) => item(d, "warning")),
  );
}
