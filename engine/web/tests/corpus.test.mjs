// Runs the whole shared fixture corpus (tests/fixtures/*.jsonl) against the
// installed package, through its typed exports where one maps to the
// operation and through `run` for all: every answer must be byte-identical
// (JSON.stringify) to the answer the corpus records, which is the core's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

import {
  validateExpression, validateWebhook, evaluate, matches, explain, testCondition,
  fieldCatalog, backtest, run, RuleSet,
} from "@cloudcx/inbox-rules";

const dir = process.env.CORPUS_DIR;
assert.ok(dir, "CORPUS_DIR names tests/fixtures");
const cases = readdirSync(dir)
  .filter((f) => f.endsWith(".jsonl"))
  .sort()
  .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter((l) => l.trim()))
  .map((line) => JSON.parse(line));

/** The typed export that answers an operation, where there is one. */
const typed = {
  check: (i) => validateExpression(i.expression, i.ids ?? []),
  eval: (i) => evaluate(i.expression, i.truth ?? {}, i.ids),
  validate: (i) => validateWebhook(i),
  explain: (i) => explain(i.webhook, i.event),
  condition: (i) => testCondition(i.condition, i.event),
  backtest: (i) => backtest(i.webhook, i.events, i.samples),
};

test("the corpus is all there", () => {
  assert.ok(cases.length >= 550, `${cases.length} cases`);
});

test("every corpus case answers byte for byte through run()", () => {
  for (const c of cases) {
    assert.equal(JSON.stringify(run(c.op, c.input)), JSON.stringify(c.expect), c.name);
  }
});

test("every corpus case answers byte for byte through the typed exports", () => {
  let checked = 0;
  for (const c of cases) {
    const answer = typed[c.op];
    if (!answer) continue;
    assert.equal(JSON.stringify(answer(c.input)), JSON.stringify(c.expect), c.name);
    checked++;
  }
  assert.ok(checked > 450, `${checked} typed cases`);
});

test("RuleSet and matches() agree with the corpus's match cases", () => {
  for (const c of cases.filter((c) => c.op === "match")) {
    const rules = new RuleSet();
    const rejected = [];
    for (const webhook of c.input.webhooks) {
      const report = rules.add(webhook);
      if (!report.valid) rejected.push({ id: webhook.id, report });
    }
    const expected = c.expect;
    assert.deepEqual(rules.match(c.input.event), expected.matched, c.name);
    assert.deepEqual(rejected, expected.rejected ?? [], c.name);
    for (const webhook of c.input.webhooks) {
      const fires = matches(webhook, c.input.event);
      if (typeof fires === "boolean") {
        // The last definition of an id is the one the set holds.
        const last = c.input.webhooks.findLast((w) => w.id === webhook.id);
        if (last === webhook) assert.equal(fires, expected.matched.includes(webhook.id), c.name);
      } else {
        assert.equal(fires.valid, false, c.name);
      }
    }
  }
});

test("RuleSet adds, replaces, removes and explains", () => {
  const rules = new RuleSet();
  const hook = (id, channels) => ({ id, name: id, url: "https://crm.example/h", events: ["TicketCreated"], channels });
  const event = (channel) => ({ event: "TicketCreated", ticketId: "t", ticket: { channel } });
  assert.equal(rules.add(hook("wh_1", ["email"])).valid, true);
  assert.equal(rules.add(hook("wh_2", [])).valid, true);
  assert.deepEqual(rules.match(event("email")), ["wh_1", "wh_2"]);
  rules.add(hook("wh_1", ["chat"]));
  assert.equal(rules.size, 2);
  assert.deepEqual(rules.match(event("email")), ["wh_2"]);
  assert.equal(rules.remove("wh_2"), true);
  assert.equal(rules.remove("wh_2"), false);
  assert.equal(rules.explain("wh_1", event("email")).fires, false);
  assert.equal(rules.explain("nope", event("email")), undefined);
  const refused = rules.add(hook("wh_3", [""]));
  assert.equal(refused.valid, false);
  assert.equal(refused.errors[0].path, "channels[0]");
  assert.equal(rules.size, 1);
});

test("wrong argument types throw a TypeError; rule problems never throw", () => {
  assert.throws(() => validateExpression(42, [1]), TypeError);
  assert.throws(() => validateExpression("1", "1,2"), TypeError);
  assert.throws(() => validateExpression("1"), TypeError);
  assert.throws(() => validateWebhook("not an object"), TypeError);
  assert.throws(() => explain({ name: "x" }, { ticketId: "no event field" }), /missing field `event`/);
  assert.throws(() => run("nope", {}), TypeError);
  assert.throws(() => new RuleSet().match(undefined), TypeError);
  const report = validateExpression("(1 or", [1]);
  assert.equal(report.valid, false);
  assert.equal(report.errors[0].code, "unbalanced_parentheses");
});

test("the catalogue is the engine's", () => {
  const catalog = fieldCatalog();
  assert.equal(JSON.stringify(catalog), JSON.stringify(run("catalog", null)));
  assert.deepEqual(catalog.fields.find((f) => f.field === "priority").values, ["low", "normal", "high", "urgent"]);
});

test("CommonJS require gives the same engine", () => {
  const require = createRequire(import.meta.url);
  const cjs = require("@cloudcx/inbox-rules");
  assert.deepEqual(cjs.validateExpression("1 or 9", [1]), validateExpression("1 or 9", [1]));
});
