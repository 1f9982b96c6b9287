// Editing help for the logic expression box: completion from the keyboard
// (condition numbers, `and`, `or`) and the number under the pointer or the
// caret, so that its condition can be highlighted. Neither decides what is
// valid: the engine's report does, on every keystroke.

import { h, uid } from "../dom";
import { t } from "../i18n";

/** The word being typed before `caret`, and the last word before it. */
function context(text: string, caret: number): { partial: string; start: number; previous: string } {
  const before = text.slice(0, caret);
  const partial = /[A-Za-z0-9]*$/.exec(before)?.[0] ?? "";
  const start = caret - partial.length;
  const previous = /(\d+|\)|\(|and|or)\s*$/i.exec(before.slice(0, start))?.[1]?.toLowerCase() ?? "";
  return { partial, start, previous };
}

/** What may come next: `and`/`or` after a number or `)`, else a condition number. */
export function suggestions(text: string, caret: number, ids: number[]): string[] {
  const { partial, previous } = context(text, caret);
  const afterOperand = /^\d+$/.test(previous) || previous === ")";
  const words = afterOperand ? ["and", "or"] : ids.map(String);
  const typed = partial.toLowerCase();
  return words.filter((w) => w.startsWith(typed) && w !== typed);
}

/** The condition number at `index` in `text` (under the pointer or before the caret), if any. */
export function numberAt(text: string, index: number): number | null {
  let start = index;
  while (start > 0 && /\d/.test(text[start - 1] ?? "")) start -= 1;
  let end = index;
  while (end < text.length && /\d/.test(text[end] ?? "")) end += 1;
  if (start === end) return null;
  return Number(text.slice(start, end));
}

const measure = document.createElement("canvas").getContext("2d");

/** The character index of `input` under `clientX`, from its font's widths. */
export function indexAtPoint(input: HTMLInputElement, clientX: number): number {
  const style = getComputedStyle(input);
  const x =
    clientX - input.getBoundingClientRect().left - parseFloat(style.paddingLeft) - parseFloat(style.borderLeftWidth) + input.scrollLeft;
  if (!measure) return 0;
  measure.font = style.font;
  const text = input.value;
  for (let i = 0; i < text.length; i += 1) {
    if (measure.measureText(text.slice(0, i + 1)).width > x) return i;
  }
  return text.length;
}

/**
 * Makes `input` a combobox that completes the expression: suggestions show
 * as the admin types; ArrowDown/ArrowUp choose, Enter or Tab take one,
 * Escape closes. `changed` runs after a suggestion is taken.
 */
export function attachCompletion(input: HTMLInputElement, ids: () => number[], changed: () => void): HTMLElement {
  const listbox = h("ul", { id: uid("suggestions"), role: "listbox", class: "suggestions", "aria-label": t("expressionSuggestions"), hidden: true });
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", listbox.id);
  input.setAttribute("aria-expanded", "false");
  let options: string[] = [];
  let active = -1;

  const close = (): void => {
    options = [];
    active = -1;
    listbox.hidden = true;
    listbox.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  };
  const render = (): void => {
    listbox.replaceChildren(
      ...options.map((option, i) => {
        const item = h("li", { id: `${listbox.id}-${i}`, role: "option", "aria-selected": String(i === active), class: i === active ? "active" : "" }, option);
        // Taken before the input loses focus to the click.
        item.addEventListener("mousedown", (event) => {
          event.preventDefault();
          take(option);
        });
        return item;
      }),
    );
    listbox.hidden = options.length === 0;
    input.setAttribute("aria-expanded", String(options.length > 0));
    if (active >= 0) input.setAttribute("aria-activedescendant", `${listbox.id}-${active}`);
    else input.removeAttribute("aria-activedescendant");
  };
  const open = (): void => {
    options = suggestions(input.value, input.selectionStart ?? input.value.length, ids());
    active = options.length > 0 ? 0 : -1;
    render();
  };
  const take = (option: string): void => {
    const caret = input.selectionStart ?? input.value.length;
    const { start } = context(input.value, caret);
    const before = input.value.slice(0, start);
    const after = input.value.slice(caret);
    // Operators need a space on both sides; a number is followed by one.
    const lead = /^(and|or)$/.test(option) && before.length > 0 && !/\s$/.test(before) ? " " : "";
    const inserted = `${lead}${option}${after.startsWith(" ") ? "" : " "}`;
    input.value = before + inserted + after;
    const at = before.length + inserted.length;
    input.setSelectionRange(at, at);
    changed();
    // What may follow it, at once: completion goes on from the keyboard.
    open();
  };

  input.addEventListener("input", open);
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && options.length === 0) {
      open();
      event.preventDefault();
      return;
    }
    if (options.length === 0) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + options.length) % options.length;
      render();
      event.preventDefault();
    } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
      take(options[active] ?? "");
      event.preventDefault();
    } else if (event.key === "Escape") {
      close();
      event.preventDefault();
    }
  });
  return listbox;
}
