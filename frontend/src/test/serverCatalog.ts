// The tests use the server's real catalog (never a copy): graph_compiler.catalog_json() and the
// rules served with it (server/rules.py) from the project's .venv, read once per test run.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Catalog, type CatalogJson } from "../catalog";

const root = resolve(__dirname, "../../..");

function python(): string {
  const venv = resolve(root, ".venv/bin/python");
  return process.env.TORCHLOOM_PYTHON ?? (existsSync(venv) ? venv : "python3");
}

let cached: Catalog | null = null;

export function serverCatalog(): Catalog {
  if (cached) return cached;
  const out = execFileSync(
    python(),
    [
      "-c",
      "import json; from graph_compiler import catalog_json; from server.rules import rules_json; " +
        "print(json.dumps({**catalog_json(), 'rules': rules_json()}))",
    ],
    { cwd: root, encoding: "utf-8", maxBuffer: 64 * 1024 * 1024 },
  );
  const json = JSON.parse(out) as CatalogJson;
  cached = new Catalog({ ...json, custom_code_allowed: false });
  return cached;
}

export function example(name: string): unknown {
  return JSON.parse(readFileSync(resolve(root, "examples", `${name}.json`), "utf-8"));
}

/** Run a Python snippet with the document on stdin; returns its stdout. */
export function pythonWith(code: string, input: string): string {
  return execFileSync(python(), ["-c", code], { cwd: root, encoding: "utf-8", input, maxBuffer: 64 * 1024 * 1024 });
}
