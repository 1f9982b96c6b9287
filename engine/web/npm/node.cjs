// The Node.js entry for `require`: the CommonJS bindings (which load the
// wasm synchronously) and the typed functions over `run`.
const bindings = require("./inbox_rules.js");
const { typed } = require("./typed.cjs");

module.exports = { ...bindings, ...typed(bindings.run) };
