// Create and edit a webhook. Every keystroke asks the engine (in this page)
// for the whole webhook's report: spans are underlined in the expression,
// conditions with problems are marked in place, and Save waits until the
// report is valid. A 422 from the server is shown the same way.

import {
  explain,
  validateWebhook,
  type Catalog,
  type Condition,
  type Diagnostic,
  type Explanation,
  type FieldInfo,
  type Report,
  type Webhook,
} from "@cloudcx/inbox-rules";
import { ApiError, call, type Backtest, type StoredWebhook, type TlsWrite } from "../api";
import { item, list, underline } from "../diagnostics";
import { h, mount, uid } from "../dom";
import { lang, t } from "../i18n";
import { sampleEvent } from "../samples";
import { explanationView } from "./explanation";
import { attachCompletion, indexAtPoint, numberAt } from "./expression";
import { secretBox } from "./secret";

const CUSTOM = "customFields.<key>";

interface Draft {
  name: string;
  url: string;
  events: Set<string>;
  channels: string;
  accounts: string;
  conditions: Condition[];
  match: "all" | "any" | "expression";
  expression: string;
  enabled: boolean;
  /** As typed; empty for no limit. */
  rateLimit: string;
}

function split(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function toWebhook(draft: Draft, id: string): Webhook {
  const webhook: Webhook = {
    id,
    name: draft.name,
    enabled: draft.enabled,
    url: draft.url,
    events: [...draft.events],
    channels: split(draft.channels),
    accounts: split(draft.accounts),
    conditions: draft.conditions,
    match: draft.match,
  };
  if (draft.match === "expression") webhook.expression = draft.expression;
  if (draft.rateLimit.trim() !== "") webhook.rateLimit = Number(draft.rateLimit);
  return webhook;
}

function fromStored(stored: StoredWebhook): Draft {
  return {
    name: stored.name,
    url: stored.url,
    events: new Set(stored.events),
    channels: stored.channels.join(", "),
    accounts: stored.accounts.join(", "),
    conditions: stored.conditions.map((c) => ({ ...c }) as Condition),
    match: stored.match,
    expression: stored.expression ?? "",
    enabled: stored.enabled,
    rateLimit: stored.rateLimit == null ? "" : String(stored.rateLimit),
  };
}

function labelled(label: string, input: HTMLElement, help?: string): HTMLElement {
  const id = input.id || uid("field");
  input.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    help ? h("small", { class: "help" }, help) : null,
    h("div", { class: "field-problems" }),
  );
}

/** The catalogue entry of a condition's field (custom fields share one). */
function fieldInfo(catalog: Catalog, field: string): FieldInfo | undefined {
  const name = field.startsWith("customFields.") ? CUSTOM : field;
  return catalog.fields.find((f) => f.field === name);
}

export function webhookForm(
  root: HTMLElement,
  catalog: Catalog,
  stored: StoredWebhook | null,
  done: (message: string) => void,
): void {
  const draft: Draft = stored
    ? fromStored(stored)
    : {
        name: "",
        url: "https://",
        events: new Set(["TicketCreated"]),
        channels: "",
        accounts: "",
        conditions: [],
        match: "all",
        expression: "",
        enabled: true,
        rateLimit: "",
      };
  const id = stored?.id ?? "wh_draft";
  let report: Report = { valid: false, errors: [], warnings: [] };

  // --- name, URL, events, subscription ---
  const name = h("input", { type: "text", value: draft.name, autocomplete: "off", dataset: { path: "name" } });
  name.addEventListener("input", () => {
    draft.name = name.value;
    revalidate();
  });
  const url = h("input", { type: "url", value: draft.url, autocomplete: "off", dataset: { path: "url" } });
  url.addEventListener("input", () => {
    draft.url = url.value;
    revalidate();
  });
  const events = h(
    "fieldset",
    { class: "events", dataset: { path: "events" } },
    h("legend", {}, t("events")),
    catalog.events.map((event) => {
      const box = h("input", { type: "checkbox", id: uid("event"), checked: draft.events.has(event), value: event });
      box.addEventListener("change", () => {
        if (box.checked) draft.events.add(event);
        else draft.events.delete(event);
        revalidate();
        tryIt.refresh();
      });
      return h("label", { class: "check", for: box.id }, box, " ", event);
    }),
    h("div", { class: "field-problems" }),
  );
  const channels = h("input", { type: "text", value: draft.channels, dataset: { path: "channels" } });
  channels.addEventListener("input", () => {
    draft.channels = channels.value;
    revalidate();
  });
  const accounts = h("input", { type: "text", value: draft.accounts, dataset: { path: "accounts" } });
  accounts.addEventListener("input", () => {
    draft.accounts = accounts.value;
    revalidate();
  });
  const rateLimit = h("input", {
    type: "number",
    min: 1,
    max: catalog.limits.maxRateLimit,
    step: 1,
    value: draft.rateLimit,
    inputMode: "numeric",
    dataset: { path: "rateLimit" },
  });
  rateLimit.addEventListener("input", () => {
    draft.rateLimit = rateLimit.value;
    revalidate();
  });

  // --- conditions ---
  const rows = h("ol", { class: "conditions" });
  const renderConditions = (): void => {
    mount(
      rows,
      draft.conditions.map((condition, index) => conditionRow(catalog, condition, index)),
    );
  };
  const conditionRow = (catalog: Catalog, condition: Condition, index: number): HTMLElement => {
    const info = fieldInfo(catalog, condition.field);
    const fieldSelect = h(
      "select",
      { id: uid("cond-field"), "aria-label": `${t("field")} ${condition.id}` },
      catalog.fields.map((f) =>
        h("option", { value: f.field, selected: f.field === (info?.field ?? "") }, f.field === CUSTOM ? "customFields.…" : f.field),
      ),
    );
    fieldSelect.addEventListener("change", () => {
      const next = fieldInfo(catalog, fieldSelect.value === CUSTOM ? "customFields." : fieldSelect.value);
      condition.field = fieldSelect.value === CUSTOM ? "customFields." : fieldSelect.value;
      condition.operator = next?.operators[0]?.operator ?? "is";
      condition.value = defaultValue(next, condition.operator);
      renderConditions();
      revalidate();
      tryIt.refresh();
    });
    const customKey =
      info?.field === CUSTOM
        ? h("input", {
            type: "text",
            value: condition.field.slice("customFields.".length),
            "aria-label": `${t("customKey")} ${condition.id}`,
            placeholder: t("customKey"),
          })
        : null;
    customKey?.addEventListener("input", () => {
      condition.field = `customFields.${customKey.value}`;
      revalidate();
      tryIt.refresh();
    });
    const operatorSelect = h(
      "select",
      { "aria-label": `${t("operator")} ${condition.id}` },
      (info?.operators ?? []).map((o) => h("option", { value: o.operator, selected: o.operator === condition.operator }, o.operator)),
    );
    operatorSelect.addEventListener("change", () => {
      condition.operator = operatorSelect.value;
      condition.value = defaultValue(info, condition.operator);
      renderConditions();
      revalidate();
      tryIt.refresh();
    });
    const remove = h("button", { type: "button", class: "link" }, t("remove"));
    remove.addEventListener("click", () => {
      draft.conditions.splice(index, 1);
      renderConditions();
      revalidate();
      tryIt.refresh();
    });
    return h(
      "li",
      { class: "condition", dataset: { conditionId: String(condition.id) } },
      h("span", { class: "number", title: `#${condition.id}` }, String(condition.id)),
      fieldSelect,
      customKey,
      operatorSelect,
      valueInput(info, condition, () => {
        revalidate();
        tryIt.refresh();
      }),
      remove,
      h("div", { class: "field-problems" }),
    );
  };
  const add = h("button", { type: "button" }, t("addCondition"));
  add.addEventListener("click", () => {
    const next = Math.max(0, ...draft.conditions.map((c) => c.id)) + 1;
    const first = catalog.fields[0];
    const operator = first?.operators[0]?.operator ?? "is";
    draft.conditions.push({ id: next, field: first?.field ?? "subject", operator, value: defaultValue(first, operator) });
    renderConditions();
    revalidate();
    tryIt.refresh();
  });

  // --- match mode and expression ---
  const expressionInput = h("input", {
    type: "text",
    class: "expression-input",
    value: draft.expression,
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": "expression-problems",
  });
  const mirror = h("div", { class: "mirror", "aria-hidden": "true" });
  const expressionProblems = h("div", { id: "expression-problems" });
  const expressionChanged = (): void => {
    draft.expression = expressionInput.value;
    revalidate();
    tryIt.refresh();
  };
  expressionInput.addEventListener("input", expressionChanged);
  const suggestionList = attachCompletion(expressionInput, () => draft.conditions.map((c) => c.id), expressionChanged);
  // The condition a number in the expression names, highlighted while the
  // pointer is on it or the caret is after it.
  const highlight = (id: number | null): void => {
    for (const row of rows.querySelectorAll<HTMLElement>(".condition")) {
      row.classList.toggle("highlight", id !== null && row.dataset.conditionId === String(id));
    }
  };
  expressionInput.addEventListener("mousemove", (event) => {
    highlight(numberAt(expressionInput.value, indexAtPoint(expressionInput, event.clientX)));
  });
  expressionInput.addEventListener("mouseleave", () => highlight(null));
  for (const name of ["keyup", "click", "focus"]) {
    expressionInput.addEventListener(name, () => highlight(numberAt(expressionInput.value, expressionInput.selectionStart ?? 0)));
  }
  expressionInput.addEventListener("blur", () => highlight(null));
  expressionInput.addEventListener("scroll", () => {
    mirror.scrollLeft = expressionInput.scrollLeft;
  });
  const expressionBlock = h(
    "div",
    { class: "field expression-field" },
    h("label", { for: (expressionInput.id = uid("expression")) }, t("expression")),
    h("div", { class: "expression" }, mirror, expressionInput, suggestionList),
    h("small", { class: "help" }, t("expressionHelp")),
    expressionProblems,
  );
  const modes = h(
    "fieldset",
    { class: "match" },
    h("legend", {}, t("match")),
    (
      [
        ["all", t("meetAll")],
        ["any", t("meetAny")],
        ["expression", t("logicExpression")],
      ] as const
    ).map(([mode, label]) => {
      const radio = h("input", { type: "radio", name: "match", id: uid("match"), value: mode, checked: draft.match === mode });
      radio.addEventListener("change", () => {
        draft.match = mode;
        expressionBlock.hidden = mode !== "expression";
        revalidate();
        tryIt.refresh();
      });
      return h("label", { class: "check", for: radio.id }, radio, " ", label);
    }),
  );
  expressionBlock.hidden = draft.match !== "expression";

  // --- client certificate (mutual TLS): the host's, not the engine's ---
  const certificate = h("textarea", { rows: 4, spellcheck: "false", class: "pem", placeholder: "-----BEGIN CERTIFICATE-----" });
  const key = h("textarea", { rows: 4, spellcheck: "false", class: "pem", placeholder: "-----BEGIN PRIVATE KEY-----" });
  const removeTls = h("input", { type: "checkbox", id: uid("tls-remove") });
  const current = stored?.tls?.clientCertificate;
  const tlsBlock = h(
    "fieldset",
    { class: "tls", dataset: { path: "tls" } },
    h("legend", {}, t("clientTls")),
    h("small", { class: "help" }, t("clientTlsHelp")),
    current ? h("p", { class: "tls-current" }, t("clientTlsCurrent", { subject: current.subject, notAfter: current.notAfter })) : null,
    current ? h("label", { class: "check", for: removeTls.id }, removeTls, " ", t("clientTlsRemove")) : null,
    labelled(t("clientCertificate"), certificate),
    labelled(t("clientKey"), key),
    h("div", { class: "field-problems" }),
  );
  // A change clears what the server said of the last attempt.
  for (const input of [certificate, key, removeTls]) input.addEventListener("input", () => revalidate());
  /** The `tls` of the body: new PEM when both are pasted, `null` to remove, else left out. */
  const tlsWrite = (): TlsWrite | undefined => {
    if (certificate.value.trim() || key.value.trim()) {
      return { clientCertificate: certificate.value, clientKey: key.value };
    }
    return removeTls.checked ? null : undefined;
  };

  // --- save ---
  const save = h("button", { type: "submit", class: "primary" }, t("save"));
  const outcome = h("div", { class: "outcome", role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "webhook-form", novalidate: true },
    labelled(t("name"), name),
    labelled(t("url"), url),
    events,
    labelled(t("channels"), channels, t("commaSeparated")),
    labelled(t("accounts"), accounts),
    labelled(t("rateLimit"), rateLimit, t("rateLimitHelp")),
    h("fieldset", { class: "conditions-block" }, h("legend", {}, t("conditions")), rows, add),
    modes,
    expressionBlock,
    tlsBlock,
    h("div", { class: "actions" }, save, outcome),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void submit();
  });

  const tryIt = tryItPanel(catalog, () => toWebhook(draft, id), () => [...draft.events][0] ?? "TicketCreated");
  const backtest = backtestPanel(() => {
    const body: Partial<Webhook> = toWebhook(draft, id);
    delete body.id;
    return body;
  });
  const secret = h("div", { class: "secret-slot" });

  function show(current: Report): void {
    report = current;
    save.disabled = !current.valid;
    save.setAttribute("aria-disabled", String(!current.valid));
    const expressionErrors = current.errors.filter((d) => d.path === "expression");
    const expressionWarnings = current.warnings.filter((d) => d.path === "expression" || d.code === "unused_condition");
    mount(mirror, underline(draft.expression, expressionErrors));
    mount(
      expressionProblems,
      h(
        "ul",
        { class: "diagnostics", role: "status", "aria-live": "polite" },
        expressionErrors.map((d) => item(d, "error", fixButton(d))),
        expressionWarnings.map((d) => item(d, "warning")),
      ),
    );
    expressionInput.setAttribute("aria-invalid", String(expressionErrors.length > 0));
    // Everything else, next to what it is about.
    for (const slot of form.querySelectorAll(".field-problems")) slot.replaceChildren();
    for (const row of rows.querySelectorAll<HTMLElement>(".condition")) row.classList.remove("has-error", "has-warning");
    for (const d of [...current.errors, ...current.warnings]) {
      const severity = current.errors.includes(d) ? "error" : "warning";
      if (d.path === "expression") continue;
      const row = d.conditionId === undefined ? null : rows.querySelector<HTMLElement>(`[data-condition-id="${d.conditionId}"]`);
      if (row) {
        row.classList.add(severity === "error" ? "has-error" : "has-warning");
        row.querySelector(".field-problems")?.append(item(d, severity));
        continue;
      }
      const top = (d.path ?? "").split(/[.[]/)[0];
      const owner = form.querySelector(`[data-path="${top}"]`)?.closest(".field, fieldset");
      (owner?.querySelector(".field-problems") ?? expressionProblems).append(item(d, severity));
    }
  }

  function fixButton(d: Diagnostic): HTMLButtonElement | null {
    // The engine says what fixes it; the panel only applies it.
    if (d.replacement === undefined || d.start === undefined || d.end === undefined) return null;
    const from = draft.expression.slice(d.start, d.end);
    const to = d.replacement;
    const button = h("button", { type: "button", class: "fix" }, t("fix", { from, to }));
    const { start, end } = d;
    button.addEventListener("click", () => {
      draft.expression = draft.expression.slice(0, start) + to + draft.expression.slice(end);
      expressionInput.value = draft.expression;
      revalidate();
      tryIt.refresh();
      expressionInput.focus();
    });
    return button;
  }

  function revalidate(): void {
    let current: Report;
    try {
      current = validateWebhook(toWebhook(draft, id));
    } catch (error) {
      // Only a value of the wrong type gets here (a rate limit of 2.5):
      // the engine's words, beside the field.
      const message = error instanceof Error ? error.message : String(error);
      current = { valid: false, errors: [{ code: "invalid_value", message, path: "rateLimit" }], warnings: [] };
    }
    show(current);
    backtest.refresh(current.valid);
  }

  async function submit(): Promise<void> {
    if (!report.valid) return;
    save.disabled = true;
    outcome.textContent = t("saving");
    const body: Partial<Webhook> & { tls?: TlsWrite } = toWebhook(draft, id);
    delete body.id;
    const tls = tlsWrite();
    if (tls !== undefined) body.tls = tls;
    try {
      if (stored) {
        await call("PUT", `/v1/webhooks/${stored.id}`, body);
        done(t("saved"));
      } else {
        const created = await call<StoredWebhook & { secret: string }>("POST", "/v1/webhooks", body);
        mount(secret, secretBox(created.secret));
        outcome.textContent = t("saved");
        form.hidden = true;
        mount(root, h("h2", {}, created.name), secret, h("p", {}, h("a", { href: "#/" }, t("back"))));
      }
    } catch (error) {
      outcome.textContent = "";
      if (error instanceof ApiError && error.body.diagnostics) {
        // The server's engine said no: show its diagnostics as ours.
        show({ valid: false, errors: error.body.diagnostics, warnings: error.body.warnings ?? [] });
        outcome.append(h("p", { class: "server-said" }, t("serverSaid"), " ", error.body.message));
      } else {
        outcome.textContent = error instanceof Error ? error.message : String(error);
      }
      save.disabled = !report.valid;
    }
  }

  renderConditions();
  mount(
    root,
    h("h2", {}, stored ? stored.name : t("newWebhook")),
    h("div", { class: "form-layout" }, form, h("div", { class: "side" }, tryIt.element, backtest.element)),
    stored ? h("p", {}, h("a", { href: `#/deliveries/${stored.id}` }, t("deliveries"))) : null,
    h("p", {}, h("a", { href: "#/" }, t("back"))),
  );
  revalidate();
  tryIt.refresh();
}

/** The value a new condition starts with, fitting its operator. */
function defaultValue(info: FieldInfo | undefined, operator: string): Condition["value"] {
  const type = info?.operators.find((o) => o.operator === operator)?.value;
  switch (type) {
    case "none":
      return undefined;
    case "enum":
      return info?.values?.[0] ?? "";
    case "enum_list":
    case "string_list":
      return [];
    case "number":
      return 0;
    default:
      return "";
  }
}

/** The input that fits the value type of the condition's operator. */
function valueInput(info: FieldInfo | undefined, condition: Condition, changed: () => void): HTMLElement {
  const type = info?.operators.find((o) => o.operator === condition.operator)?.value ?? "string";
  const label = `${t("value")} ${condition.id}`;
  switch (type) {
    case "none":
      return h("span", { class: "no-value" });
    case "enum": {
      const select = h(
        "select",
        { "aria-label": label },
        (info?.values ?? []).map((v) => h("option", { value: v, selected: v === condition.value }, v)),
      );
      select.addEventListener("change", () => {
        condition.value = select.value;
        changed();
      });
      return select;
    }
    case "enum_list": {
      const chosen = new Set(Array.isArray(condition.value) ? condition.value : []);
      return h(
        "span",
        { class: "enum-list", role: "group", "aria-label": label },
        (info?.values ?? []).map((v) => {
          const box = h("input", { type: "checkbox", id: uid("enum"), checked: chosen.has(v) });
          box.addEventListener("change", () => {
            if (box.checked) chosen.add(v);
            else chosen.delete(v);
            condition.value = (info?.values ?? []).filter((x) => chosen.has(x));
            changed();
          });
          return h("label", { class: "check", for: box.id }, box, " ", v);
        }),
      );
    }
    case "string_list": {
      const input = h("input", {
        type: "text",
        "aria-label": label,
        placeholder: "a, b, c",
        value: Array.isArray(condition.value) ? condition.value.join(", ") : "",
      });
      input.addEventListener("input", () => {
        condition.value = split(input.value);
        changed();
      });
      return input;
    }
    case "number": {
      const input = h("input", { type: "number", "aria-label": label, value: String(condition.value ?? 0), step: "any" });
      input.addEventListener("input", () => {
        condition.value = input.value === "" ? null : Number(input.value);
        changed();
      });
      return input;
    }
    default: {
      const input = h("input", { type: "text", "aria-label": label, value: String(condition.value ?? "") });
      input.addEventListener("input", () => {
        condition.value = input.value;
        changed();
      });
      return input;
    }
  }
}

/** "Try it": a sample event explained by the engine, live. */
function tryItPanel(
  catalog: Catalog,
  webhook: () => Webhook,
  firstEvent: () => string,
): { element: HTMLElement; refresh: () => void } {
  const kind = h(
    "select",
    { id: uid("try-kind"), "aria-label": t("event") },
    catalog.events.map((e) => h("option", { value: e }, e)),
  );
  const sample = h("textarea", { id: uid("sample"), rows: 14, spellcheck: "false", class: "sample" });
  const result = h("div", { class: "explanation", role: "status", "aria-live": "polite" });
  let typed = false;
  const fill = (): void => {
    sample.value = JSON.stringify(sampleEvent(kind.value), null, 2);
  };
  kind.addEventListener("change", () => {
    fill();
    refresh();
  });
  sample.addEventListener("input", () => {
    typed = true;
    refresh();
  });
  function refresh(): void {
    if (!typed && kind.value !== firstEvent() && !sample.value) {
      kind.value = firstEvent();
    }
    if (!sample.value) fill();
    let event: unknown;
    try {
      event = JSON.parse(sample.value);
    } catch (error) {
      mount(result, h("p", { class: "bad-json" }, t("notJson", { error: String(error) })));
      return;
    }
    const answer = explain(webhook(), event as Parameters<typeof explain>[1]);
    if ("valid" in answer) {
      mount(result, list((answer as Report).errors));
      return;
    }
    mount(result, explanationView(answer));
  }
  const element = h(
    "section",
    { class: "try-it", "aria-labelledby": "try-it-title" },
    h("h3", { id: "try-it-title" }, t("tryIt")),
    h("p", { class: "help" }, t("tryItHelp")),
    h("label", { for: kind.id }, t("event")),
    kind,
    h("label", { for: sample.id }, t("sampleEvent")),
    sample,
    result,
  );
  return { element, refresh };
}

/** How long the rule must stay unchanged before it is tried on stored events. */
const SETTLE_MS = 600;

/**
 * "Would have fired N of the last M events": the rule, once it is valid and
 * has stopped changing, run by the server over the tenant's stored events
 * (a backtest), with the matches it found, each explained.
 */
function backtestPanel(body: () => Partial<Webhook>): { element: HTMLElement; refresh: (valid: boolean) => void } {
  const result = h("div", { class: "backtest-result", role: "status", "aria-live": "polite" });
  const samples = h("div", { class: "samples" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let asked = 0;
  async function run(): Promise<void> {
    asked += 1;
    const mine = asked;
    mount(result, h("p", { class: "help" }, t("backtestChecking")));
    try {
      const answer = await call<Backtest>("POST", "/v1/webhooks/backtest", body());
      if (mine !== asked) return; // a later change asked again
      if (answer.scanned === 0) {
        mount(result, h("p", {}, t("backtestNone")));
        samples.replaceChildren();
        return;
      }
      mount(result, h("p", { class: "backtest-count", dataset: { matched: String(answer.matched), scanned: String(answer.scanned) } }, t("backtestResult", { matched: answer.matched, scanned: answer.scanned })));
      const locale = lang() === "zh" ? "zh-CN" : "en-GB";
      mount(
        samples,
        answer.samples.map((sample) =>
          h(
            "details",
            { class: "backtest-sample", dataset: { eventId: sample.eventId } },
            h("summary", {}, `${sample.ticketId.slice(0, 8)} · ${new Date(sample.occurredAt).toLocaleString(locale)}`),
            explanationView(sample.explanation as Explanation),
          ),
        ),
      );
    } catch (error) {
      if (mine !== asked) return;
      mount(result, h("p", { class: "problem" }, t("backtestFailed", { error: error instanceof Error ? error.message : String(error) })));
      samples.replaceChildren();
    }
  }
  let shownInvalid = false;
  function refresh(valid: boolean): void {
    clearTimeout(timer);
    if (!valid) {
      asked += 1;
      shownInvalid = true;
      mount(result, h("p", { class: "help" }, t("backtestInvalid")));
      samples.replaceChildren();
      return;
    }
    // Valid again: say so at once rather than leave "fix the problems" up
    // while the rule settles.
    if (shownInvalid) {
      shownInvalid = false;
      mount(result, h("p", { class: "help" }, t("backtestChecking")));
    }
    timer = setTimeout(() => void run(), SETTLE_MS);
  }
  const element = h(
    "section",
    { class: "backtest", "aria-labelledby": "backtest-title" },
    h("h3", { id: "backtest-title" }, t("history")),
    h("p", { class: "help" }, t("backtestHelp")),
    result,
    samples,
  );
  return { element, refresh };
}
