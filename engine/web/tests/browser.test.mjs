// Loads the installed package from a plain ES module page in headless
// Chromium (Debian's, driven by playwright-core) and checks that it answers
// corpus cases byte for byte as the corpus records.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join, dirname, extname } from "node:path";
import { createRequire } from "node:module";

import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const packageDir = dirname(createRequire(import.meta.url).resolve("@cloudcx/inbox-rules/package.json"));
const corpusDir = process.env.CORPUS_DIR;

const page = `<!doctype html>
<meta charset="utf-8">
<title>inbox-rules</title>
<script type="module">
  import init, { run, validateExpression } from "/pkg/web/index.js";
  window.engine = init().then(() => ({ run, validateExpression }));
</script>`;

const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

function serve() {
  const server = createServer((request, response) => {
    const url = new URL(request.url, "http://127.0.0.1");
    if (url.pathname === "/") {
      response.writeHead(200, { "content-type": "text/html" }).end(page);
      return;
    }
    const file = join(packageDir, url.pathname.replace(/^\/pkg\//, ""));
    if (!url.pathname.startsWith("/pkg/") || !file.startsWith(packageDir) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    response.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

test("the package answers corpus cases identically in Chromium", { timeout: 60_000 }, async () => {
  assert.ok(corpusDir, "CORPUS_DIR names tests/fixtures");
  const cases = readdirSync(corpusDir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()
    .flatMap((f) => readFileSync(join(corpusDir, f), "utf8").split("\n").filter((l) => l.trim()))
    .map((line) => JSON.parse(line))
    // A spread of operations, and the UTF-16 and full-width cases.
    .filter((c, i) => i % 7 === 0 || /emoji|cjk|fullwidth|surrogate/.test(c.name));
  assert.ok(cases.length > 80, `${cases.length} cases`);

  const server = await serve();
  const browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const tab = await browser.newPage();
    const errors = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    await tab.goto(`http://127.0.0.1:${server.address().port}/`);
    const answers = await tab.evaluate(async (cases) => {
      const engine = await window.engine;
      return cases.map((c) => JSON.stringify(engine.run(c.op, c.input)));
    }, cases.map(({ op, input }) => ({ op, input })));
    assert.deepEqual(errors, []);
    cases.forEach((c, i) => assert.equal(answers[i], JSON.stringify(c.expect), c.name));

    const report = await tab.evaluate(async () => (await window.engine).validateExpression("(1 or 2）and 3", [1, 2, 3]));
    assert.equal(report.errors[0].code, "fullwidth_character");
    assert.deepEqual([report.errors[0].start, report.errors[0].end], [7, 8]);
  } finally {
    await browser.close();
    server.close();
  }
});
