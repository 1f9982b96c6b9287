// Compiled with `tsc --noEmit` against the installed package: every export
// used with the shapes its declarations promise.
import init, {
  validateExpression, validateWebhook, evaluate, matches, explain, testCondition,
  fieldCatalog, backtest, run, RuleSet,
} from "@cloudcx/inbox-rules";
import type {
  Backtest, Catalog, Diagnostic, DiagnosticCode, EvalResult, Explanation, IngestEvent, Report, Webhook,
} from "@cloudcx/inbox-rules";

async function main(): Promise<void> {
  await init();
  const report: Report = validateExpression("(1 or 2) and 3", [1, 2, 3]);
  const first: Diagnostic | undefined = report.errors[0];
  const code: DiagnosticCode | undefined = first?.code;
  const span: [number | undefined, number | undefined] = [first?.start, first?.end];

  const webhook: Webhook = {
    id: "wh_1", name: "Refunds", url: "https://crm.example/hook", events: ["TicketCreated"],
    conditions: [{ id: 1, field: "subject", operator: "contains", value: "refund" }],
    match: "expression", expression: "1",
  };
  const event: IngestEvent = { event: "TicketCreated", ticketId: "t1", ticket: { subject: "Refund" } };
  const webhookReport: Report = validateWebhook(webhook);
  const evaluated: EvalResult = evaluate("1 or 2", { "1": true, "2": false });
  const value: boolean | undefined = "result" in evaluated ? evaluated.result : undefined;
  const fires: boolean | Report = matches(webhook, event);
  const why: Explanation | Report = explain(webhook, event);
  if ("fires" in why) {
    const held: boolean[] = why.conditions.map((c) => c.holds);
    console.log(held, why.match.mode);
  }
  const one = testCondition({ id: 1, field: "status", operator: "gte", value: "open" }, event);
  const catalog: Catalog = fieldCatalog();
  const limit: number = catalog.limits.maxExpressionChars;
  const anything: unknown = run("check", { expression: "1", ids: [1] });
  const tried: Backtest | Report = backtest(webhook, [event], 5);
  if (!("valid" in tried)) {
    const created: number | undefined = tried.byEvent.TicketCreated;
    const why: Explanation | undefined = tried.samples[0]?.explanation;
    console.log(tried.scanned, tried.matched, tried.refused, created, why);
  }

  const rules = new RuleSet();
  const added: Report = rules.add(webhook);
  const ids: string[] = rules.match(event);
  const removed: boolean = rules.remove("wh_1");
  const size: number = rules.size;
  const explained: Explanation | undefined = rules.explain("wh_1", event);
  console.log(code, span, webhookReport, value, fires, one, limit, anything, added, ids, removed, size, explained);
}

void main();
