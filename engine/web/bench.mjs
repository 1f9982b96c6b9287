// Node.js benchmarks of the npm package (run after build.sh):
//   node engine/web/bench.mjs
// Validates the 5-condition expression and matches one event against 1,000
// webhooks through `RuleSet`, with the same webhooks and event as the native
// criterion benches (engine/core/benches/support/data.rs, mirrored below),
// and prints a table. BENCHMARKS.md records a run beside the native figures.
import { createRequire } from "node:module";

const { validateExpression, RuleSet } = createRequire(import.meta.url)("./pkg/node/index.cjs");

const EVENTS = ["TicketCreated", "TicketFromUserReply", "TicketAgentReply",
  "TicketAssigneeChanged", "TicketStatusChanged", "TicketMovedToRecycleBin"];
const CHANNELS = ["email", "whatsapp", "chat", "facebook", "line"];

/** Mirrors `webhook(i)` of engine/core/benches/support/data.rs. */
function webhook(i) {
  const conditions = [
    { id: 1, field: "subject", operator: "contains", value: `order ${i % 97}` },
    { id: 2, field: "priority", operator: "gte", value: "high" },
    { id: 3, field: "tags", operator: "has_any", value: ["vip", `t${i % 13}`] },
    { id: 4, field: "status", operator: "in", value: ["open", "pending"] },
    { id: 5, field: "message.body", operator: "matches", value: `refund|r${i % 7}` },
  ];
  const count = 1 + (i % 5);
  const mode = ["all", "any", "expression"][i % 3];
  return {
    id: `wh_${String(i).padStart(5, "0")}`,
    name: `Webhook ${i}`,
    url: `https://crm${i % 50}.example/hook`,
    // Two event types, or one when both picks agree (a list names each
    // entry once), as in the Rust benches' data.
    events: [...new Set([EVENTS[i % 6], EVENTS[Math.floor(i / 6) % 6]])],
    channels: i % 4 === 0 ? [] : [CHANNELS[i % 5]],
    conditions: conditions.slice(0, count),
    match: mode,
    expression: mode === "expression" ? Array.from({ length: count }, (_, n) => n + 1).join(" or ") : undefined,
  };
}

/** Mirrors `event()` of the same file. */
const event = {
  tenantId: "acme", event: "TicketFromUserReply",
  ticketId: "ebcb7b53-6636-4c6b-8023-4a61d6df694c", messageId: "ef0eee2d-5912-4016-bcec-3a173f83e6a1",
  ticket: {
    channel: "email", accountId: "support@acme.example", subject: "Refund for order 12",
    status: "open", priority: "high", assigneeId: "agent-7", teamId: "billing", tags: ["vip", "refund"],
    requester: { email: "ann@example.com", name: "Ann" }, customFields: { plan: "enterprise", seats: 40 },
  },
  message: { body: "Hi, I still have not received my refund", from: "ann@example.com" },
};

/** Median time of one call, in microseconds, over `rounds` rounds. */
function measure(fn, { rounds = 25, perRound = 2000 } = {}) {
  for (let i = 0; i < perRound; i++) fn(); // warm up
  const times = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) fn();
    times.push(Number(process.hrtime.bigint() - start) / 1000 / perRound);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const rules = new RuleSet();
for (let i = 0; i < 1000; i++) {
  const report = rules.add(webhook(i));
  if (!report.valid) throw new Error(JSON.stringify(report.errors));
}
const matched = rules.match(event).length;

const rows = [
  ["validate `(1 or 2 or 3) and (4 and 5)`", measure(() => validateExpression("(1 or 2 or 3) and (4 and 5)", [1, 2, 3, 4, 5]))],
  [`match one event, 1,000 webhooks (${matched} fire)`, measure(() => rules.match(event), { perRound: 500 })],
];
console.log(`Node.js ${process.version}, ${process.arch}`);
console.log("| benchmark | median per call |\n|---|---|");
for (const [name, us] of rows) console.log(`| ${name} | ${us.toFixed(2)} µs |`);
