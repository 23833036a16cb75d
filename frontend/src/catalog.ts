// Types and helpers derived from the server's catalog (GET /api/catalog). Nothing here names a
// node type: every palette entry, port, param widget and param check comes from the catalog.
import { setServerRules, type ServerRules } from "./serverRules";

export type ParamKind =
  | "int"
  | "float"
  | "bool"
  | "choice"
  | "str"
  | "ints"
  | "floats"
  | "int_or_tuple"
  | "code"
  | "json";
export type PortKind = "tensor" | "loss" | "optimizer" | "scheduler";
export type Role =
  | "layer"
  | "op"
  | "custom"
  | "block"
  | "block_io"
  | "data"
  | "loss"
  | "optimizer"
  | "scheduler"
  | "settings";

export interface ParamSpec {
  name: string;
  kind: ParamKind;
  description: string;
  default?: unknown;
  required: boolean;
  inferred: boolean;
  min?: number;
  max?: number;
  exclusive_min?: boolean;
  length?: number;
  choices?: unknown[];
  strings?: string[];
  nullable?: boolean;
  torch_arg?: boolean;
  visible_if?: Record<string, unknown[]>;
  /** Names a file: "dataset_id" = an uploaded dataset's id (picked from the uploads);
   * "path" = a local path for headless `torchloom train` only (the server refuses it). */
  file_ref?: "dataset_id" | "path";
  /** Names another node of this type in the same graph (Linear.tie_weight → "Embedding"). */
  node_ref?: string;
}

export interface PortSpec {
  name: string;
  kind: PortKind;
  multi?: boolean;
  optional?: boolean;
  ranks?: number[];
  dtype?: string;
  description?: string;
}

export interface NodeSpec {
  type: string;
  category: string;
  doc: string;
  role: Role;
  params: ParamSpec[];
  inputs: PortSpec[];
  outputs: PortSpec[];
  dynamic_ports: boolean;
  torch_class?: string;
  interval?: string;
  keywords?: string[];
  /** Whether a node of this type may own learned parameters (Trainable / Freeze applies). */
  has_params?: boolean;
}

export interface CatalogJson {
  format: string;
  categories: string[];
  nodes: NodeSpec[];
  custom_code_allowed: boolean;
  /** served by the server with the catalog (server/rules.py) */
  rules: ServerRules;
}

/** What a block definition looks like to port derivation: its Input / Output node ids. */
export interface BlockLike {
  nodes: { id: string; type?: string; data?: { type: string } }[];
}

const typeOf = (n: BlockLike["nodes"][number]) => n.data?.type ?? n.type;

export class Catalog {
  readonly byType: Map<string, NodeSpec>;
  readonly categories: string[];
  readonly format: string;
  readonly customCodeAllowed: boolean;

  constructor(readonly json: CatalogJson) {
    this.byType = new Map(json.nodes.map((n) => [n.type, n]));
    this.categories = json.categories;
    this.format = json.format;
    this.customCodeAllowed = json.custom_code_allowed;
    setServerRules(json.rules);
  }

  spec(type: string): NodeSpec | undefined {
    return this.byType.get(type);
  }

  inCategory(category: string): NodeSpec[] {
    return this.json.nodes.filter((n) => n.category === category);
  }

  /** Palette search: type, doc, category and keywords, case-insensitive, every word must hit. */
  search(query: string): NodeSpec[] {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return this.json.nodes;
    const scored: [number, NodeSpec][] = [];
    for (const n of this.json.nodes) {
      const type = n.type.toLowerCase();
      const hay = [type, n.doc.toLowerCase(), n.category, ...(n.keywords ?? [])].join(" ");
      if (!words.every((w) => hay.includes(w))) continue;
      const score = type === words[0] ? 0 : type.startsWith(words[0]) ? 1 : type.includes(words[0]) ? 2 : 3;
      scored.push([score, n]);
    }
    scored.sort((a, b) => a[0] - b[0]);
    return scored.map((s) => s[1]);
  }
}

const OUT_N = /^out\d+$/;

/** A node's ports for its current params. Dynamic ports follow the catalog's conventions:
 * a block's ports are its definition's Input / Output node ids, a `json` param named `inputs`
 * lists input port names, and numbered outputs (out0, out1, ...) follow a count param
 * (an int such as `chunks`) or a list param's length (such as `split_sizes`). */
export function portsOf(
  spec: NodeSpec,
  params: Record<string, unknown>,
  blocks?: Record<string, BlockLike>,
): { inputs: PortSpec[]; outputs: PortSpec[] } {
  if (!spec.dynamic_ports) return { inputs: spec.inputs, outputs: spec.outputs };
  if (spec.role === "block") {
    const name = params.block;
    const def = typeof name === "string" ? blocks?.[name] : undefined;
    if (!def) return { inputs: [], outputs: [] };
    return {
      inputs: def.nodes.filter((n) => typeOf(n) === "Input").map((n) => ({ name: n.id, kind: "tensor" })),
      outputs: def.nodes.filter((n) => typeOf(n) === "Output").map((n) => ({ name: n.id, kind: "tensor" })),
    };
  }
  let inputs = spec.inputs;
  let outputs = spec.outputs;
  const inputsParam = spec.params.find((p) => p.name === "inputs" && p.kind === "json");
  if (inputsParam) {
    const names = params.inputs ?? inputsParam.default;
    if (Array.isArray(names) && names.every((n) => typeof n === "string" && n)) {
      inputs = (names as string[]).map((name) => ({ name, kind: "tensor" as PortKind }));
    }
  }
  if (outputs.length && outputs.every((p) => OUT_N.test(p.name))) {
    let count: number | undefined;
    for (const p of spec.params) {
      const v = params[p.name] ?? p.default;
      if (p.kind === "int" && typeof v === "number" && p.max !== undefined && p.min !== undefined && p.min >= 2) {
        count = v;
        break;
      }
      if (p.kind === "ints" && Array.isArray(v) && v.length >= 1) {
        count = v.length;
        break;
      }
    }
    if (count !== undefined && Number.isInteger(count) && count >= 1 && count <= 256) {
      outputs = Array.from({ length: count }, (_, i) => ({ name: `out${i}`, kind: "tensor" as PortKind }));
    }
  }
  return { inputs, outputs };
}

/** Whether a param is shown for the node's current params (the catalog's `visible_if`). */
export function paramVisible(p: ParamSpec, params: Record<string, unknown>, spec: NodeSpec): boolean {
  if (!p.visible_if) return true;
  return Object.entries(p.visible_if).every(([other, values]) => {
    const otherSpec = spec.params.find((q) => q.name === other);
    const v = other in params ? params[other] : otherSpec?.default;
    return values.some((x) => JSON.stringify(x) === JSON.stringify(v));
  });
}

/** The params the dataset panel offers as pickers of uploaded datasets (e.g. dataset_id,
 * val_dataset_id): every param the catalog marks as a dataset id. */
export function datasetPickers(spec: NodeSpec): ParamSpec[] {
  return spec.params.filter((p) => p.file_ref === "dataset_id");
}

/** Whether the generic param list shows a param of a node whose panel handles its files:
 * dataset ids are picked in the panel, and a local path (which the server refuses) only shows
 * while it is set, so that it can be cleared. */
export function paramListed(p: ParamSpec, params: Record<string, unknown>, spec: NodeSpec): boolean {
  if (!paramVisible(p, params, spec)) return false;
  if (spec.role !== "data") return true;
  if (p.file_ref === "dataset_id") return false;
  if (p.file_ref === "path") return params[p.name] !== undefined && params[p.name] !== "";
  return true;
}

function describe(p: ParamSpec): string {
  const base: Record<ParamKind, string> = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    choice: "one of " + (p.choices ?? []).map((c) => JSON.stringify(c)).join(", "),
    str: "a string",
    code: "Python source text",
    json: "a JSON value",
    ints: "a list of integers",
    floats: "a list of numbers",
    int_or_tuple: `an integer or a list of ${p.length ?? "n"} integers`,
  };
  let text = base[p.kind];
  if (p.strings?.length) text += " or " + p.strings.map((s) => `'${s}'`).join(" / ");
  return text;
}

function checkNumber(p: ParamSpec, v: unknown, integer: boolean): string | null {
  if (typeof v !== "number") return `expected ${describe(p)}`;
  if (!Number.isFinite(v)) return "expected a finite number";
  if (integer && !Number.isInteger(v)) return `expected an integer, got ${v}`;
  if (p.min !== undefined && (v < p.min || (p.exclusive_min && v === p.min))) {
    return `must be ${p.exclusive_min ? ">" : ">="} ${p.min}, got ${v}`;
  }
  if (p.max !== undefined && v > p.max) return `must be <= ${p.max}, got ${v}`;
  return null;
}

/** The catalog's value check, client side (the server's Param.check is the reference): null
 * when the value is valid, else what was expected. `undefined` means "not set". */
export function checkParam(p: ParamSpec, v: unknown): string | null {
  if (v === undefined) return p.required ? "required" : null;
  if (v === null) return p.nullable ? null : `expected ${describe(p)}, got null`;
  if (p.strings?.length && typeof v === "string") {
    return p.strings.includes(v) ? null : `expected ${describe(p)}, got '${v}'`;
  }
  switch (p.kind) {
    case "bool":
      return typeof v === "boolean" ? null : `expected ${describe(p)}`;
    case "int":
      return checkNumber(p, v, true);
    case "float":
      return checkNumber(p, v, false);
    case "choice":
      return (p.choices ?? []).some((c) => c === v) ? null : `expected ${describe(p)}`;
    case "str":
    case "code":
      return typeof v === "string" ? null : `expected ${describe(p)}`;
    case "json":
      return null;
    case "int_or_tuple":
    case "ints":
    case "floats": {
      if (p.kind === "int_or_tuple" && !Array.isArray(v)) return checkNumber(p, v, true);
      if (!Array.isArray(v)) return `expected ${describe(p)}`;
      if (p.length !== undefined && v.length !== p.length) {
        return `expected ${p.length} values, got ${v.length}`;
      }
      if (!v.length && p.kind !== "int_or_tuple" && p.default !== null && !(Array.isArray(p.default) && !p.default.length)) {
        return "expected at least one value, got an empty list";
      }
      for (const item of v) {
        const problem = checkNumber(p, item, p.kind !== "floats");
        if (problem) return `each value: ${problem}`;
      }
      return null;
    }
  }
  return null;
}

/** Parse what the user typed into a param's text field. Returns the JSON value to store
 * (which may still fail checkParam — the server reports it too), or undefined for "unset". */
export function parseParamText(p: ParamSpec, text: string): unknown {
  const t = text.trim();
  if (t === "") return undefined;
  if (p.nullable && (t === "none" || t === "null" || t === "auto" || t === "off")) return null;
  if (p.strings?.includes(t)) return t;
  switch (p.kind) {
    case "int":
    case "float": {
      const n = Number(t);
      return Number.isNaN(n) ? t : n;
    }
    case "ints":
    case "floats":
    case "int_or_tuple": {
      const inner = t.replace(/^[[(]|[\])]$/g, "");
      const parts = inner.split(/[\s,×x]+/).filter(Boolean);
      if (p.kind === "int_or_tuple" && parts.length === 1 && !/^[[(]/.test(t)) {
        const n = Number(parts[0]);
        return Number.isNaN(n) ? t : n;
      }
      const nums = parts.map(Number);
      return nums.some(Number.isNaN) ? t : nums;
    }
    case "json":
      try {
        return JSON.parse(t);
      } catch {
        return t;
      }
    default:
      return text;
  }
}

/** How a stored param value reads in a text field. */
export function paramText(p: ParamSpec, v: unknown): string {
  if (v === undefined) return "";
  if (v === null) return p.nullable ? "" : "null";
  if (Array.isArray(v) && p.kind !== "json") return v.join(", ");
  if (p.kind === "json") return JSON.stringify(v);
  return String(v);
}

/** Shape text for edge labels: ["B", 64, 14, 14] → "B×64×14×14"; a scalar → "scalar". */
export function shapeLabel(shape: (string | number)[] | undefined | null): string {
  if (!shape) return "";
  if (!shape.length) return "scalar";
  return shape.join("×");
}

export function formatCount(n: number | undefined | null): string {
  if (n === undefined || n === null) return "";
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 2 : 1)}K`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)}M`;
  return `${(n / 1e9).toFixed(2)}G`;
}
