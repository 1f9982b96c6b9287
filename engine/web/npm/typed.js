// The package's typed functions. Each names an operation of the engine's
// JSON API and passes its arguments as that operation's input; every
// answer is the engine's (`run`), and no rule logic lives here. An
// argument that is missing throws a TypeError, as a wrong type does.

/** The typed functions over `run`, the wasm's one operation entry. */
export function typed(run) {
  const given = (name, value) => {
    if (value === undefined) throw new TypeError(`invalid ${name}: missing argument`);
    return value;
  };
  return {
    validateExpression: (expression, ids) =>
      run("check", { expression: given("expression", expression), ids: given("ids", ids) }),
    validateWebhook: (webhook) => run("validate", given("webhook", webhook)),
    evaluate: (expression, truth, ids) =>
      run("eval", { expression: given("expression", expression), truth: given("truth", truth), ids: ids ?? undefined }),
    matches: (webhook, event) => {
      // Whether it fires is the explanation's `fires`; an invalid webhook's
      // answer is its report.
      const explained = run("explain", { webhook: given("webhook", webhook), event: given("event", event) });
      return "fires" in explained ? explained.fires : explained;
    },
    explain: (webhook, event) =>
      run("explain", { webhook: given("webhook", webhook), event: given("event", event) }),
    testCondition: (condition, event) =>
      run("condition", { condition: given("condition", condition), event: given("event", event) }),
    fieldCatalog: () => run("catalog", null),
    backtest: (webhook, events, samples) =>
      run("backtest", { webhook: given("webhook", webhook), events: given("events", events), samples: samples ?? undefined }),
  };
}
