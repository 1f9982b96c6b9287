// The browser entry: the wasm's bindings (`init`, `run`, `RuleSet`) and the
// typed functions over `run`.
import init, { initSync, run, RuleSet } from "./inbox_rules.js";
import { typed } from "./typed.js";

export const {
  validateExpression,
  validateWebhook,
  evaluate,
  matches,
  explain,
  testCondition,
  fieldCatalog,
  backtest,
} = typed(run);
export { init as default, initSync, run, RuleSet };
