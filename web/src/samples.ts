// Sample ingest events for "Try it" and nothing else: data, not rules.

const TICKET = "ebcb7b53-6636-4c6b-8023-4a61d6df694c";
const MESSAGE = "ef0eee2d-5912-4016-bcec-3a173f83e6a1";

/** A realistic ingest event of type `kind` (SPEC §2). */
export function sampleEvent(kind: string): Record<string, unknown> {
  const event: Record<string, unknown> = {
    event: kind,
    ticketId: TICKET,
    occurredAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    ticket: {
      channel: "email",
      accountId: "support@acme.example",
      subject: "Refund for order 1234",
      status: "open",
      priority: "high",
      assigneeId: "agent-7",
      teamId: "billing",
      tags: ["vip", "refund"],
      requester: { email: "ann@example.com", name: "Ann" },
      customFields: { plan: "enterprise", seats: 40 },
    },
  };
  if (kind === "TicketFromUserReply" || kind === "TicketAgentReply") {
    event.messageId = MESSAGE;
    event.message = { body: "Hi, I still have not received my refund", from: "ann@example.com" };
  }
  if (kind === "TicketStatusChanged") event.changes = { status: { from: "pending", to: "open" } };
  if (kind === "TicketAssigneeChanged") event.changes = { assigneeId: { from: null, to: "agent-7" } };
  return event;
}
