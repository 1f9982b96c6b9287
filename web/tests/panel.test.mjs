// The control panel in Debian's Chromium (playwright-core), against the real
// server (the debug binary, SQLite in a temporary directory) and a receiver
// on 127.0.0.1. Screenshots go to web/tests/screenshots/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const binary = process.env.INBOX_BIN ?? path.join(root, "target/debug/inbox-webhooks");
const shots = path.join(here, "screenshots");
fs.mkdirSync(shots, { recursive: true });

const data = fs.mkdtempSync(path.join(os.tmpdir(), "inbox-panel-"));
let server;
let base;
let key;
let ingestKey;
let browser;
let receiver;
const received = [];
let flaky = true;
// An HTTPS receiver whose certificate a CA made here signed; the server
// trusts that CA through INBOX_EXTRA_CA_FILE.
const pki = fs.mkdtempSync(path.join(os.tmpdir(), "inbox-panel-pki-"));
let secureReceiver;
const securelyReceived = [];

/** A CA, a server certificate for 127.0.0.1 it signed, and a self-signed client certificate, made with openssl. */
function makePki() {
  const run = (...args) => execFileSync("openssl", args, { cwd: pki, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Panel Test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  run("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  fs.writeFileSync(path.join(pki, "server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", "server.pem", "-days", "2", "-extfile", "server.ext");
  run("req", "-x509", ...ec, "-keyout", "client.key", "-out", "client.pem", "-days", "2", "-subj", "/CN=panel-client");
}

function chromiumPath() {
  return process.env.CHROMIUM ?? "/usr/bin/chromium";
}

before(async () => {
  const created = execFileSync(binary, ["tenant", "create", "Acme", "--json", "--data-dir", data]);
  ({ apiKey: key, ingestKey } = JSON.parse(created.toString()));
  receiver = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body, url: request.url });
      // `/flaky` fails while `flaky` is set: a delivery that fails for good.
      const failing = request.url === "/flaky" && flaky;
      response.writeHead(failing ? 503 : 200, { "content-type": "text/plain" });
      response.end(failing ? "down" : "thanks");
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  makePki();
  secureReceiver = https.createServer(
    { key: fs.readFileSync(path.join(pki, "server.key")), cert: fs.readFileSync(path.join(pki, "server.pem")) },
    (request, response) => {
      request.resume();
      request.on("end", () => {
        securelyReceived.push({ headers: request.headers });
        response.writeHead(200, { "content-type": "text/plain" });
        response.end("thanks over TLS");
      });
    },
  );
  await new Promise((resolve) => secureReceiver.listen(0, "127.0.0.1", resolve));
  server = spawn(binary, ["serve", "--bind", "127.0.0.1:0", "--data-dir", data], {
    env: {
      ...process.env,
      INBOX_PANEL_DIR: path.join(root, "web/dist"),
      INBOX_ALLOW_PRIVATE_TARGETS: "true",
      // One retry, soon: a delivery fails for good within the test.
      INBOX_RETRY_SCHEDULE: "300ms",
      INBOX_EXTRA_CA_FILE: path.join(pki, "ca.pem"),
      INBOX_LOG_JSON: "true",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start")), 60_000);
    createInterface({ input: server.stderr }).on("line", (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.fields?.message === "listening") {
          clearTimeout(timer);
          resolve(`http://${entry.fields.addr}`);
        }
      } catch {
        // not a log line of ours
      }
    });
  });
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  receiver?.close();
  secureReceiver?.close();
  fs.rmSync(data, { recursive: true, force: true });
  fs.rmSync(pki, { recursive: true, force: true });
});

async function signedIn(width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, locale: "en-US" });
  const page = await context.newPage();
  page.on("pageerror", (error) => assert.fail(`page error: ${error.message}`));
  await page.goto(base);
  await page.getByLabel("Admin API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "New webhook" }).waitFor();
  return page;
}

async function api(method, route, body) {
  const response = await fetch(base + route, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response.json();
}

/** Fills the form with three valid conditions and the expression mode. */
async function threeConditions(page, url = "https://crm.example/hook") {
  await page.getByRole("link", { name: "New webhook" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Refunds to CRM");
  await page.getByLabel("URL").fill(url);
  for (let i = 0; i < 3; i++) await page.getByRole("button", { name: "Add condition" }).click();
  await page.getByLabel("Field 1").selectOption("subject");
  await page.getByLabel("Operator 1").selectOption("contains");
  await page.getByLabel("Value 1").fill("refund");
  await page.getByLabel("Field 2").selectOption("priority");
  await page.getByLabel("Operator 2").selectOption("is");
  await page.getByLabel("Value 2").selectOption("high");
  await page.getByLabel("Field 3").selectOption("channel");
  await page.getByLabel("Operator 3").selectOption("is");
  await page.getByLabel("Value 3").fill("email");
  await page.getByLabel("Logic expression").check();
}

const expressionBox = (page) => page.getByLabel("Expression", { exact: true });
const marks = (page) =>
  page.locator(".mirror mark.bad").evaluateAll((nodes) =>
    nodes.map((n) => ({ code: n.dataset.code, text: n.textContent, start: Number(n.dataset.start), end: Number(n.dataset.end) })),
  );

test("a webhook is created through the form, the expression checked as it is typed", async () => {
  const page = await signedIn();
  await threeConditions(page);
  const save = page.getByRole("button", { name: "Save" });

  await expressionBox(page).fill("(1 or 2）and 3");
  assert.deepEqual(
    (await marks(page)).map((m) => [m.code, m.text]),
    [
      ["fullwidth_character", "）"],
      ["missing_space", "and"],
    ],
  );
  assert.equal(await save.isDisabled(), true, "Save waits while invalid");
  await page.screenshot({ path: path.join(shots, "form-error-1280.png"), fullPage: true });
  await page.getByRole("button", { name: "Replace ） with )" }).click();
  assert.equal(await expressionBox(page).inputValue(), "(1 or 2)and 3");
  assert.deepEqual((await marks(page)).map((m) => m.code), ["missing_space"], "the rest of the report stays");

  await expressionBox(page).fill("1 or 4");
  const unknown = await marks(page);
  assert.deepEqual(unknown, [{ code: "unknown_condition", text: "4", start: 5, end: 6 }]);
  assert.equal(await save.isDisabled(), true);
  const warnings = await page.locator("#expression-problems li.warning").evaluateAll((n) => n.map((x) => x.dataset.code));
  assert.ok(warnings.includes("unused_condition"), "condition 3 unused, shown as a warning");

  await expressionBox(page).fill("(1 or 2) and 3");
  assert.deepEqual(await marks(page), []);
  assert.equal(await save.isDisabled(), false);
  await save.click();
  const secret = await page.locator(".secret-value").textContent();
  assert.match(secret, /^whsec_/);
  await page.getByRole("link", { name: "Back to webhooks" }).click();
  const row = page.locator("tr", { hasText: "Refunds to CRM" });
  await row.waitFor();
  assert.match(await row.textContent(), /healthy/);
  await page.screenshot({ path: path.join(shots, "list-1280.png"), fullPage: true });
  await page.context().close();
});

test("conditions with problems are marked in place, and a 422 is shown the same way", async () => {
  const page = await signedIn();
  await page.getByRole("link", { name: "New webhook" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Bad condition");
  await page.getByLabel("URL").fill("https://crm.example/hook");
  await page.getByRole("button", { name: "Add condition" }).click();
  await page.getByLabel("Field 1").selectOption("subject");
  await page.getByLabel("Operator 1").selectOption("matches");
  await page.getByLabel("Value 1").fill("(unclosed");
  const row = page.locator('.conditions [data-condition-id="1"]');
  assert.match(await row.getAttribute("class"), /has-error/);
  assert.equal(await row.locator("li.diagnostic").first().getAttribute("data-code"), "invalid_regex");
  assert.equal(await page.getByRole("button", { name: "Save" }).isDisabled(), true);

  // Should the server still refuse what the page accepted, its 422 is shown
  // like the page's own diagnostics (the answer is staged: both run one
  // engine, so a real disagreement would be a bug).
  await page.getByLabel("Value 1").fill("refund");
  await page.route("**/v1/webhooks", (route) =>
    route.fulfill({
      status: 422,
      contentType: "application/json",
      body: JSON.stringify({
        error: "invalid_webhook",
        message: "the webhook is invalid: there is no condition 1",
        diagnostics: [
          { code: "invalid_value", message: "staged by the test", path: "conditions[0].value", conditionId: 1 },
        ],
        warnings: [],
      }),
    }),
  );
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(".server-said").waitFor();
  assert.match(await row.getAttribute("class"), /has-error/);
  assert.equal(await row.locator(".engine-message").first().textContent(), "staged by the test");
  await page.context().close();
});

test("the list enables, disables, edits and deletes", async () => {
  const created = await api("POST", "/v1/webhooks", {
    name: "Listed",
    url: "https://crm.example/listed",
    events: ["TicketStatusChanged"],
  });
  const page = await signedIn();
  const row = page.locator(`tr[data-webhook-id="${created.id}"]`);
  await row.getByRole("button", { name: "Disable" }).click();
  await page.locator(`tr[data-webhook-id="${created.id}"] td.off`).waitFor();
  assert.equal((await api("GET", `/v1/webhooks/${created.id}`)).enabled, false);
  await page.locator(`tr[data-webhook-id="${created.id}"]`).getByRole("button", { name: "Enable" }).click();
  await page.locator(`tr[data-webhook-id="${created.id}"] td.on`).waitFor();

  await page.locator(`tr[data-webhook-id="${created.id}"]`).getByRole("link", { name: "Edit" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Listed and renamed");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(`tr[data-webhook-id="${created.id}"]`, { hasText: "Listed and renamed" }).waitFor();

  await page.locator(`tr[data-webhook-id="${created.id}"]`).getByRole("button", { name: "Delete" }).click();
  await page.getByRole("alert").waitFor();
  await page.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await page.locator(`tr[data-webhook-id="${created.id}"]`).count(), 1, "cancel keeps it");
  await page.locator(`tr[data-webhook-id="${created.id}"]`).getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await page.locator(`tr[data-webhook-id="${created.id}"]`).waitFor({ state: "detached" });
  assert.equal((await fetch(`${base}/v1/webhooks/${created.id}`, { headers: { authorization: `Bearer ${key}` } })).status, 404);
  await page.context().close();
});

test("the panel and the server give the same diagnostics", async () => {
  // Corpus cases whose ids are 1..n: the form then has conditions 1 to n.
  const corpus = fs
    .readFileSync(path.join(root, "tests/fixtures/expressions.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((c) => c.op === "check" && c.input.ids.length > 0 && c.input.ids.every((id, i) => id === i + 1))
    // A one-line box cannot hold a line break: those cases are the API's.
    .filter((c) => !/[\n\r]/.test(c.input.expression));
  const picked = corpus.filter((_, i) => i % 4 === 0);
  assert.ok(picked.length >= 30, `${picked.length} cases`);
  const page = await signedIn();
  await page.getByRole("link", { name: "New webhook" }).click();
  await page.getByLabel("Logic expression").check();
  let conditions = 0;
  for (const c of picked) {
    while (conditions < c.input.ids.length) {
      await page.getByRole("button", { name: "Add condition" }).click();
      conditions += 1;
      await page.getByLabel(`Field ${conditions}`).selectOption("subject");
      await page.getByLabel(`Operator ${conditions}`).selectOption("contains");
      await page.getByLabel(`Value ${conditions}`).fill("x");
    }
    while (conditions > c.input.ids.length) {
      await page.locator(".condition").last().getByRole("button", { name: "Remove" }).click();
      conditions -= 1;
    }
    await expressionBox(page).fill(c.input.expression);
    const shown = await page.locator("#expression-problems li").evaluateAll((nodes) =>
      nodes.map((n) => ({
        code: n.dataset.code,
        message: n.querySelector(".engine-message").textContent,
        start: n.dataset.start === "" ? undefined : Number(n.dataset.start),
        end: n.dataset.end === "" ? undefined : Number(n.dataset.end),
      })),
    );
    const server = await api("POST", "/v1/rules/validate", c.input);
    const expected = [...server.errors, ...server.warnings].map((d) => ({
      code: d.code,
      message: d.message,
      start: d.start,
      end: d.end,
    }));
    assert.deepEqual(shown, expected, c.name);
    if (server.errors.length > 0) {
      const underlined = (await marks(page)).filter((m) => m.text.trim() !== "");
      for (const m of underlined) {
        assert.ok(server.errors.some((d) => d.code === m.code && d.start <= m.start && m.end <= Math.max(d.end, d.start + 1)), `${c.name}: ${JSON.stringify(m)}`);
      }
    }
  }
  await page.context().close();
});

test("Try it follows the sample as it is edited", async () => {
  const page = await signedIn();
  await threeConditions(page);
  await expressionBox(page).fill("1 and 2");
  const condition1 = page.locator('.condition-outcomes [data-condition-id="1"]');
  assert.equal(await condition1.getAttribute("data-holds"), "true");
  assert.equal(await page.locator(".explained").getAttribute("data-fires"), "true");
  const sample = page.getByLabel("Sample event (JSON)");
  const text = (await sample.inputValue()).replace("Refund for order 1234", "Where is my parcel?");
  await sample.fill(text);
  assert.equal(await condition1.getAttribute("data-holds"), "false");
  assert.equal(await page.locator(".explained").getAttribute("data-fires"), "false");
  assert.match(await page.locator(".verdict").textContent(), /Does not fire/);
  await page.context().close();
});

test("a test event is sent and shows in the delivery log; it can be resent", async () => {
  const page = await signedIn();
  await threeConditions(page, `http://127.0.0.1:${receiver.address().port}/hook`);
  await expressionBox(page).fill("1 or 2 or 3");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(".secret-value").waitFor();
  await page.getByRole("link", { name: "Back to webhooks" }).click();
  const row = page.locator("tr", { hasText: "127.0.0.1" }).first();
  await row.getByRole("link", { name: "Deliveries" }).click();
  await page.getByRole("button", { name: "Send test event" }).click();
  await page.locator(".test-outcome", { hasText: "Delivered: 200" }).waitFor();
  const delivery = page.locator("tbody tr[data-delivery-id]").first();
  await delivery.waitFor();
  assert.equal(await delivery.getAttribute("data-state"), "succeeded");
  assert.equal(await delivery.locator(".status").textContent(), "200");
  await delivery.getByRole("button", { name: "Details" }).click();
  const detail = page.locator("tr.detail").first();
  await detail.locator(".answer").first().waitFor();
  assert.match(await detail.locator(".answer").first().textContent(), /thanks/);
  assert.match(await detail.locator(".headers").textContent(), /webhook-signature\(elided\)/);
  assert.match(await detail.textContent(), /A test delivery/);
  const before = received.length;
  await delivery.getByRole("button", { name: "Resend" }).click();
  for (let i = 0; i < 100 && received.length === before; i++) await page.waitForTimeout(50);
  assert.equal(received.length, before + 1, "resent");
  assert.equal(received.at(-1).headers["webhook-id"], received.at(-2).headers["webhook-id"]);
  await page.reload();
  await page.locator("tbody tr").first().waitFor();
  await page.screenshot({ path: path.join(shots, "deliveries-1280.png"), fullPage: true });

  await page.getByRole("button", { name: "Rotate secret" }).click();
  assert.match(await page.locator(".secret-value").textContent(), /^whsec_/, "the new secret, shown once");
  await page.setViewportSize({ width: 390, height: 900 });
  await page.screenshot({ path: path.join(shots, "deliveries-390.png"), fullPage: true });
  await page.context().close();
});

test("an HTTPS receiver behind a private CA gets the test event; a client certificate is pasted and shown", async () => {
  const page = await signedIn();
  await threeConditions(page, `https://127.0.0.1:${secureReceiver.address().port}/secure`);
  await expressionBox(page).fill("1 or 2 or 3");
  await page.getByLabel("Client certificate (PEM)").fill(fs.readFileSync(path.join(pki, "client.pem"), "utf8"));
  // A key that is not the certificate's: the server's 422 lands by the field.
  await page.getByLabel("Client key (PEM)").fill(fs.readFileSync(path.join(pki, "server.key"), "utf8"));
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("fieldset.tls .field-problems li").first().waitFor();
  assert.match(await page.locator("fieldset.tls").textContent(), /does not belong to the client certificate/);
  await page.getByLabel("Client key (PEM)").fill(fs.readFileSync(path.join(pki, "client.key"), "utf8"));
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(".secret-value").waitFor();
  await page.getByRole("link", { name: "Back to webhooks" }).click();
  const row = page.locator("tr", { hasText: "/secure" }).first();
  await row.getByRole("link", { name: "Edit" }).click();
  await page.locator(".tls-current", { hasText: "CN=panel-client" }).waitFor();
  await page.screenshot({ path: path.join(shots, "client-certificate-1280.png"), fullPage: true });
  await page.getByRole("link", { name: "Deliveries" }).click();
  await page.getByRole("button", { name: "Send test event" }).click();
  await page.locator(".test-outcome", { hasText: "Delivered: 200" }).waitFor();
  assert.equal(securelyReceived.length, 1);
  assert.match(securelyReceived[0].headers["webhook-signature"], /^v1,/);
  await page.context().close();
});

test("narrow screens and Chinese", async () => {
  const page = await signedIn(390);
  await page.screenshot({ path: path.join(shots, "list-390.png"), fullPage: true });
  await page.getByRole("link", { name: "New webhook" }).click();
  await page.getByLabel("Language").selectOption("zh");
  await page.getByRole("heading", { name: "新建网络钩子" }).waitFor();
  await page.getByRole("button", { name: "添加条件" }).click();
  await page.getByLabel("逻辑表达式").check();
  await page.getByLabel("表达式", { exact: true }).fill("1 or 2）");
  const first = page.locator("#expression-problems li").first();
  assert.match(await first.locator(".code-text").textContent(), /全角字符/);
  await page.screenshot({ path: path.join(shots, "form-error-390.png"), fullPage: true });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling at 390 px (${width})`);
  const row = await page.evaluate(() => getComputedStyle(document.querySelector(".form-layout")).gridTemplateColumns);
  assert.equal(row.split(" ").length, 1, "one column");
  await page.getByLabel("语言").selectOption("en");
  await page.context().close();
});

test("keyboard: sign in and reach the form without a mouse", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(base);
  await page.evaluate(() => sessionStorage.clear());
  await page.reload();
  await page.getByLabel("Admin API key").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.type), "password", "the key field has focus");
  await page.keyboard.type(key);
  await page.keyboard.press("Enter");
  await page.getByRole("link", { name: "New webhook" }).focus();
  await page.keyboard.press("Enter");
  await page.getByLabel("Name", { exact: true }).waitFor();
  await page.getByLabel("Name", { exact: true }).focus();
  await page.keyboard.press("Tab");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none", "the focused input shows it");
  assert.equal(await page.evaluate(() => sessionStorage.length), 1, "the key is in sessionStorage");
  assert.ok(!page.url().includes(key), "never in the URL");
  await page.getByRole("button", { name: "Sign out" }).click();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await context.close();
});

/** Sends ingest events with the tenant's ingest key. */
async function ingest(events) {
  const response = await fetch(`${base}/v1/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${ingestKey}`, "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  assert.equal(response.status, 202, await response.text());
}

/** A `TicketCreated` on ticket `n` with this subject. */
function created(n, subject) {
  return {
    event: "TicketCreated",
    ticketId: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    ticket: { channel: "chat", subject, priority: "low" },
  };
}

async function until(check, what) {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never: ${what}`);
}

test("the form tries the rule on stored events, and the count follows the rule", async () => {
  await ingest([
    created(101, "backtest apples"),
    created(102, "backtest apples"),
    created(103, "backtest apples"),
    created(104, "backtest pears"),
  ]);
  const page = await signedIn();
  await page.getByRole("link", { name: "New webhook" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Fruit");
  await page.getByLabel("URL").fill("https://crm.example/fruit");
  await page.getByRole("button", { name: "Add condition" }).click();
  await page.getByLabel("Field 1").selectOption("subject");
  await page.getByLabel("Operator 1").selectOption("contains");
  await page.getByLabel("Value 1").fill("apples");
  const count = page.locator(".backtest-count");
  await page.locator('.backtest-count[data-matched="3"]').waitFor();
  assert.match(await count.textContent(), /Would have fired 3 of the last \d+ events/);
  await page.getByLabel("Value 1").fill("pears");
  await page.locator('.backtest-count[data-matched="1"]').waitFor();
  const sample = page.locator(".backtest-sample").first();
  await sample.locator("summary").click();
  await sample.locator('.explained[data-fires="true"]').waitFor();
  assert.match(await sample.locator(".condition-outcomes").textContent(), /backtest pears/);
  // An invalid rule is not sent to the server.
  await page.getByLabel("Name", { exact: true }).fill("");
  await page.locator(".backtest-result", { hasText: "Fix the problems" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("Fruit");
  await page.locator('.backtest-count[data-matched="1"]').waitFor();
  await page.screenshot({ path: path.join(shots, "form-backtest-1280.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 900 });
  await page.screenshot({ path: path.join(shots, "form-backtest-390.png"), fullPage: true });
  await page.context().close();
});

test("the expression box completes from the keyboard and points at conditions", async () => {
  const page = await signedIn();
  await threeConditions(page);
  const box = expressionBox(page);
  await box.click();
  await page.keyboard.type("(1 ");
  const options = page.getByRole("listbox", { name: "Suggestions" }).getByRole("option");
  assert.deepEqual(await options.allTextContents(), ["and", "or"]);
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  assert.equal(await box.inputValue(), "(1 or ");
  assert.deepEqual(await options.allTextContents(), ["1", "2", "3"]);
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Tab");
  await page.keyboard.type(") and 3");
  assert.equal(await box.inputValue(), "(1 or 2 ) and 3");
  await page.keyboard.press("Escape");
  assert.deepEqual(await marks(page), [], "the engine accepts what was completed");
  // The caret after a number, then the pointer on one: its condition lights up.
  await box.evaluate((input) => input.setSelectionRange(2, 2));
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowLeft");
  assert.equal(await page.locator(".condition.highlight").getAttribute("data-condition-id"), "1");
  const x = await box.evaluate((input) => {
    const style = getComputedStyle(input);
    const context = document.createElement("canvas").getContext("2d");
    context.font = style.font;
    const before = context.measureText(input.value.slice(0, 6)).width;
    return input.getBoundingClientRect().left + parseFloat(style.paddingLeft) + parseFloat(style.borderLeftWidth) + before + 3;
  });
  const { y, height } = await box.boundingBox();
  await page.mouse.move(x, y + height / 2);
  assert.equal(await page.locator(".condition.highlight").getAttribute("data-condition-id"), "2");
  await page.screenshot({ path: path.join(shots, "expression-completion-1280.png") });
  await page.context().close();
});

test("a webhook's page: replay sends exactly the missing deliveries, recover re-sends a failed one, the log filters by ticket, the chart shows it", async () => {
  const port = receiver.address().port;
  // Two events before the webhook exists, one after.
  await ingest([created(201, "replay me"), created(202, "replay me")]);
  const webhook = await api("POST", "/v1/webhooks", {
    name: "Replays",
    url: `http://127.0.0.1:${port}/replay`,
    events: ["TicketCreated"],
    conditions: [{ id: 1, field: "subject", operator: "is", value: "replay me" }],
  });
  await ingest([created(203, "replay me")]);
  const toReplay = () => received.filter((r) => r.url === "/replay");
  await until(() => toReplay().length === 1, "the live delivery");

  const page = await signedIn();
  await page.goto(`${base}/#/deliveries/${webhook.id}`);
  await page.locator("figure.chart svg rect.succeeded").first().waitFor();
  assert.match(await page.locator("figure.chart figcaption").textContent(), /1 succeeded/);

  const replay = page.locator("form.history-action", { hasText: "Replay events" });
  await replay.getByRole("button", { name: "Preview" }).click();
  await replay.locator(".confirm-text", { hasText: "2 deliveries will be sent" }).waitFor();
  assert.equal(toReplay().length, 1, "a preview sends nothing");
  await replay.getByRole("button", { name: "Send" }).click();
  await replay.getByText("2 deliveries created.").waitFor();
  await until(() => toReplay().length === 3, "the replayed deliveries");
  const tickets = toReplay().map((r) => JSON.parse(r.body).ticketId).sort();
  assert.deepEqual(tickets, [201, 202, 203].map((n) => `00000000-0000-4000-8000-000000000${n}`));
  await replay.getByRole("button", { name: "Preview" }).click();
  await replay.locator(".confirm-text", { hasText: "Nothing to send" }).waitFor();

  // The log, filtered to one ticket.
  await page.getByLabel("Ticket").fill("00000000-0000-4000-8000-000000000202");
  await page.getByRole("button", { name: "Apply" }).click();
  await until(async () => (await page.locator("tbody tr[data-delivery-id]").count()) === 1, "one row");
  assert.equal(
    await page.locator("tbody tr[data-delivery-id]").getAttribute("data-ticket-id"),
    "00000000-0000-4000-8000-000000000202",
  );
  // A window that ended before it: nothing.
  await page.locator("form.filters").getByLabel("Until").fill("2001-01-01T00:00:00");
  await page.getByRole("button", { name: "Apply" }).click();
  await until(async () => (await page.locator("tbody tr[data-delivery-id]").count()) === 0, "none before 2001");
  await page.locator("form.filters").getByLabel("Until").fill("");
  await page.getByRole("button", { name: "Apply" }).click();
  await until(async () => (await page.locator("tbody tr[data-delivery-id]").count()) === 1, "the row again");
  await page.screenshot({ path: path.join(shots, "webhook-1280.png"), fullPage: true });

  // A delivery that fails for good, then the receiver is back.
  const flakyHook = await api("POST", "/v1/webhooks", {
    name: "Flaky",
    url: `http://127.0.0.1:${port}/flaky`,
    events: ["TicketCreated"],
    conditions: [{ id: 1, field: "subject", operator: "is", value: "flaky" }],
  });
  flaky = true;
  await ingest([created(301, "flaky")]);
  const toFlaky = () => received.filter((r) => r.url === "/flaky");
  await page.goto(`${base}/#/deliveries/${flakyHook.id}`);
  await until(async () => {
    await page.reload();
    await page.locator("section.log").waitFor();
    return (await page.locator('tbody tr[data-state="failed"]').count()) === 1;
  }, "the delivery failed for good");
  const attempts = toFlaky().length;
  flaky = false;
  const recover = page.locator("form.history-action", { hasText: "Recover failed deliveries" });
  await recover.getByRole("button", { name: "Preview" }).click();
  await recover.locator(".confirm-text", { hasText: "1 failed deliveries will be sent again" }).waitFor();
  await recover.getByRole("button", { name: "Send" }).click();
  await recover.getByText("1 deliveries sent again.").waitFor();
  await until(() => toFlaky().length === attempts + 1, "the recovered delivery");
  assert.equal(toFlaky().at(-1).headers["webhook-id"], toFlaky()[0].headers["webhook-id"], "the same message");
  await page.context().close();
});

test("the event catalogue describes each event type from the engine's catalogue", async () => {
  const page = await signedIn();
  await page.getByRole("link", { name: "Event catalogue" }).click();
  await page.getByRole("heading", { name: "TicketFromUserReply" }).waitFor();
  assert.equal(await page.locator("section.event-type").count(), 6);
  const reply = page.locator("#event-TicketFromUserReply");
  assert.match(await reply.locator("pre.body").first().textContent(), /"messageId"/);
  await reply.locator("summary", { hasText: "Fields conditions can read" }).click();
  assert.match(await reply.locator("table.fields").textContent(), /message\.body/);
  const created = page.locator("#event-TicketCreated");
  await created.locator("summary", { hasText: "Fields conditions can read" }).click();
  assert.doesNotMatch(await created.locator("table.fields").textContent(), /message\.body/);
  await page.screenshot({ path: path.join(shots, "catalog-1280.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 900 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling at 390 px (${width})`);
  await page.screenshot({ path: path.join(shots, "catalog-390.png"), fullPage: true });
  await page.context().close();
});

test("a webhook's page in Chinese at 390 px", async () => {
  const webhook = (await api("GET", "/v1/webhooks?limit=100")).data.find((w) => w.name === "Replays");
  const page = await signedIn(390);
  await page.getByLabel("Language").selectOption("zh");
  await page.goto(`${base}/#/deliveries/${webhook.id}`);
  await page.getByRole("heading", { name: "健康状况（过去 24 小时）" }).waitFor();
  await page.getByRole("heading", { name: "重放事件" }).waitFor();
  await page.locator("figure.chart svg").waitFor();
  assert.match(await page.locator("figure.chart figcaption").textContent(), /成功/);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling at 390 px (${width})`);
  await page.screenshot({ path: path.join(shots, "webhook-390-zh.png"), fullPage: true });
  await page.getByLabel("语言").selectOption("en");
  await page.context().close();
});
