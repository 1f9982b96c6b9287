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
  // Which diagnostic each character belongs to (-1: none); the first wins.
  const owner = new Array<number>(expression.length + 1).fill(-1);
  errors.forEach((d, index) => {
    if (d.start === undefined || d.end === undefined || d.code === "unused_condition") return;
    const end = d.end > d.start ? d.end : d.start + 1;
    for (let i = d.start; i < Math.min(end, owner.length); i += 1) {
      if (owner[i] === -1) owner[i] = index;
    }
  });
  const nodes: Node[] = [];
  const mark = (from: number, to: number, d: Diagnostic, text: string): HTMLElement =>
    h("mark", { class: from === to ? "bad point" : "bad", dataset: { code: d.code, start: String(from), end: String(to) } }, text);
  let i = 0;
  while (i < expression.length) {
    const who = owner[i];
    let j = i;
    while (j < expression.length && owner[j] === who) j += 1;
    const text = expression.slice(i, j);
    const d = errors[who];
    nodes.push(d ? mark(i, j, d, text) : document.createTextNode(text));
    i = j;
  }
  const atEnd = errors[owner[expression.length]];
  if (atEnd) nodes.push(mark(expression.length, expression.length, atEnd, " "));
  return nodes;
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
