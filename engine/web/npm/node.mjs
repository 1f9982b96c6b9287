// The Node.js entry as an ES module: the CommonJS bindings (which load the
// wasm synchronously) re-exported, plus the `init` the browser build has,
// which has nothing left to do here. No rule logic lives in this file.
import { createRequire } from "node:module";

const bindings = createRequire(import.meta.url)("./inbox_rules.js");

export const {
  validateExpression,
  validateWebhook,
  evaluate,
  matches,
  explain,
  testCondition,
  fieldCatalog,
  run,
  RuleSet,
} = bindings;

/** Nothing to load in Node.js: the wasm was loaded on import. */
export default async function init() {}

/** Nothing to load in Node.js: the wasm was loaded on import. */
export function initSync() {}
