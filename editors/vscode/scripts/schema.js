// Writes schemas/archc.schema.json from `archc schema` (the schema the installed archc validates with).
// The archc command: $ARCHC (e.g. "python -m archc"), else `archc` on the PATH, else `python3 -m archc`.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

function run(argv) {
  return execFileSync(argv[0], [...argv.slice(1), "schema"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function schema() {
  const tries = process.env.ARCHC ? [process.env.ARCHC.split(" ")] : [["archc"], ["python3", "-m", "archc"]];
  const errors = [];
  for (const argv of tries) {
    try {
      return run(argv);
    } catch (err) {
      errors.push(`${argv.join(" ")} schema: ${err.message.split("\n")[0]}`);
    }
  }
  throw new Error(`could not run archc to print the schema (install archc, or set ARCHC):\n  ${errors.join("\n  ")}`);
}

const text = schema();
JSON.parse(text); // fail here, not in the editor, if it is not JSON
const out = path.join(__dirname, "..", "schemas", "archc.schema.json");
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, text);
console.log(`wrote ${path.relative(process.cwd(), out)} (${text.length} bytes)`);
