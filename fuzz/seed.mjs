// Seeds each fuzz target's corpus from the fixture corpus (tests/fixtures):
// node fuzz/seed.mjs writes fuzz/corpus/<target>/<sha1>. The corpus is
// rebuilt from the fixtures on every run; libFuzzer adds what it finds.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'tests', 'fixtures');
// The order of `Op::ALL` in engine/core/src/api.rs: the api target reads
// its first byte as an index into it.
const OPS = ['check', 'eval', 'validate', 'match', 'ingest', 'explain', 'condition', 'event', 'events', 'catalog'];

const seeds = { expression: [], webhook: [], event: [], explain: [], api: [] };
for (const file of readdirSync(fixtures).filter((f) => f.endsWith('.jsonl'))) {
  for (const line of readFileSync(join(fixtures, file), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const { op, input } = JSON.parse(line);
    const json = JSON.stringify(input);
    const at = OPS.indexOf(op);
    if (at >= 0) seeds.api.push(Buffer.concat([Buffer.from([at]), Buffer.from(json)]));
    if (typeof input?.expression === 'string') seeds.expression.push(Buffer.from(input.expression));
    if (op === 'validate') seeds.webhook.push(Buffer.from(json));
    if (op === 'event') seeds.event.push(Buffer.from(json));
    if (op === 'events' && Array.isArray(input)) input.forEach((e) => seeds.event.push(Buffer.from(JSON.stringify(e))));
    if (op === 'explain') {
      seeds.explain.push(Buffer.from(json));
      seeds.webhook.push(Buffer.from(JSON.stringify(input.webhook)));
    }
    if (op === 'match' && Array.isArray(input.webhooks)) {
      for (const webhook of input.webhooks) seeds.explain.push(Buffer.from(JSON.stringify({ webhook, event: input.event })));
    }
  }
}
for (const [target, inputs] of Object.entries(seeds)) {
  const dir = join(here, 'corpus', target);
  mkdirSync(dir, { recursive: true });
  for (const input of inputs) {
    writeFileSync(join(dir, createHash('sha1').update(input).digest('hex')), input);
  }
  console.log(`${target}: ${inputs.length} seeds`);
}
