// Smoke run of the built extension outside VS Code: `npm run smoke` (after `npm run compile`).
// A permissive stand-in for the `vscode` module lets out/extension.js activate; the check is that it
// starts `archc.serverCommand archc.serverArgs` (ARCHC_SERVER overrides the command), that the server
// answers initialize with hover, inlay hints and completion, and that deactivate shuts it down.
// It does not check VS Code's own behaviour (document selection, rendering): that needs VS Code.
"use strict";
const Module = require("module");
const path = require("path");

/** Any property is a callable, constructible stand-in; enough for the client's feature registration. */
function anything() {
  return new Proxy(function () {}, {
    get(_target, prop) {
      if (prop === "then") return undefined; // not a promise
      if (prop === Symbol.iterator) return function* () {};
      if (prop === Symbol.toPrimitive) return () => 0;
      return anything();
    },
    apply: () => anything(),
    construct: () => anything(),
  });
}

const settings = { serverCommand: process.env.ARCHC_SERVER || "archc", serverArgs: ["lsp"] };
const workspace = new Proxy({}, {
  get(_target, prop) {
    if (prop === "getConfiguration") {
      return (section) => ({ get: (key, dflt) => (section === "archc" && key in settings ? settings[key] : dflt) });
    }
    if (prop === "workspaceFolders") return [{ uri: { fsPath: process.cwd() }, name: "smoke", index: 0 }];
    if (prop === "textDocuments") return [];
    return anything();
  },
});
const errors = [];
const window = new Proxy({}, {
  get(_target, prop) {
    if (prop === "showErrorMessage") return async (message) => void errors.push(message);
    return anything();
  },
});
const env = { appName: "smoke", language: "en", machineId: "smoke", sessionId: "smoke", uiKind: 1 };
const vscode = new Proxy({}, {
  get(_target, prop) {
    return { workspace, window, env, version: "1.82.0" }[prop] ?? anything();
  },
});

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
};
require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: vscode };

function fail(message) {
  console.error(`smoke: FAILED: ${message}`);
  process.exit(1);
}

async function main() {
  const ext = require(path.join(__dirname, "..", "out", "extension.js"));
  const timer = setTimeout(() => fail("no answer from the server in 60 s"), 60000);
  await ext.activate({ subscriptions: [] });
  const client = ext.languageClient();
  if (errors.length || !client || !client.isRunning()) fail(errors.join("; ") || "the client is not running");
  const caps = client.initializeResult.capabilities;
  const info = client.initializeResult.serverInfo || {};
  const wanted = ["hoverProvider", "inlayHintProvider", "completionProvider", "definitionProvider"];
  const missing = wanted.filter((name) => !caps[name]);
  if (missing.length) fail(`the server lacks ${missing.join(", ")}`);
  await ext.deactivate();
  clearTimeout(timer);
  console.log(`smoke: ok: \`${settings.serverCommand} ${settings.serverArgs.join(" ")}\` started ` +
    `(${info.name || "?"} ${info.version || ""}), answered initialize with ${wanted.join(", ")}, and stopped`);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
