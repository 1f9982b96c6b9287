// The Node.js entry for `import`: the CommonJS entry re-exported, plus the
// `init` the browser build has, which has nothing left to do here.
import { createRequire } from "node:module";

const entry = createRequire(import.meta.url)("./index.cjs");

export const {
  validateExpression,
  validateWebhook,
  evaluate,
  matches,
  explain,
  testCondition,
  fieldCatalog,
  backtest,
  run,
  RuleSet,
} = entry;

/** Nothing to load in Node.js: the wasm was loaded on import. */
export default async function init() {}

/** Nothing to load in Node.js: the wasm was loaded on import. */
export function initSync() {}
