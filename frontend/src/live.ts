// Live validation: every document change is validated (debounced) against /api/validate;
// a response older than the newest request is discarded. The Code tab's model.py is fetched
// from /api/codegen the same way while it is visible.
import { create } from "zustand";
import { api, type GraphErrorJson, type NodeInfo, type ShapeInfo, type ValidationJson } from "./api";
import { edgeId, type GraphDocument } from "./doc";

export interface LiveState {
  pending: boolean;
  result: ValidationJson | null;
  /** main-graph edge id → inferred shape */
  edgeShapes: Record<string, ShapeInfo | null>;
  /** "<block or empty>|<node id>" → the node's problems */
  nodeErrors: Record<string, GraphErrorJson[]>;
  failure: string | null;
  /** the last validation's wall time, ms (request to applied result) */
  lastMs: number;
  code: string | null;
  codeError: string | null;
  codePending: boolean;
}

export const useLive = create<LiveState>()(() => ({
  pending: false,
  result: null,
  edgeShapes: {},
  nodeErrors: {},
  failure: null,
  lastMs: 0,
  code: null,
  codeError: null,
  codePending: false,
}));

export function errorKey(block: string | null | undefined, node: string): string {
  return `${block ?? ""}|${node}`;
}

export function indexResult(doc: GraphDocument, result: ValidationJson): Pick<LiveState, "edgeShapes" | "nodeErrors"> {
  const edgeShapes: Record<string, ShapeInfo | null> = {};
  (doc.edges ?? []).forEach((e, i) => {
    edgeShapes[edgeId(e.source, e.source_port ?? "out", e.target, e.target_port ?? "in")] = result.edges[i] ?? null;
  });
  const nodeErrors: Record<string, GraphErrorJson[]> = {};
  for (const err of result.errors) {
    if (!err.node) continue;
    const key = errorKey(err.block, err.node);
    (nodeErrors[key] ??= []).push(err);
    // an error inside a block instance also badges, in the block editors, the nested Block
    // nodes on the way and the inner node itself
    const path = err.path ?? [];
    path.slice(1).forEach((step, i) => (nodeErrors[errorKey(path[i].block, step.node)] ??= []).push(err));
    const innermost = path[path.length - 1];
    if (err.inner_node && innermost) (nodeErrors[errorKey(innermost.block, err.inner_node)] ??= []).push(err);
  }
  return { edgeShapes, nodeErrors };
}

let seq = 0;
let applied = 0;
let timer: ReturnType<typeof setTimeout> | null = null;

/** Validate `doc` after `delay` ms unless another request supersedes it. */
export function scheduleValidation(getDoc: () => GraphDocument, delay = 150): void {
  if (timer) clearTimeout(timer);
  useLive.setState({ pending: true });
  timer = setTimeout(() => {
    timer = null;
    void runValidation(getDoc());
  }, delay);
}

export async function runValidation(doc: GraphDocument): Promise<void> {
  const mine = ++seq;
  const t0 = performance.now();
  try {
    const result = await api.validate(doc);
    if (mine < applied || mine !== seq) return; // stale: a newer request was sent
    applied = mine;
    useLive.setState({ result, ...indexResult(doc, result), failure: null, pending: false, lastMs: performance.now() - t0 });
  } catch (e) {
    if (mine !== seq) return;
    useLive.setState({ failure: e instanceof Error ? e.message : String(e), pending: false });
  }
}

let codeSeq = 0;
export async function refreshCode(doc: GraphDocument): Promise<void> {
  const mine = ++codeSeq;
  useLive.setState({ codePending: true });
  try {
    const { source } = await api.codegen(doc);
    if (mine !== codeSeq) return;
    useLive.setState({ code: source, codeError: null, codePending: false });
  } catch (e) {
    if (mine !== codeSeq) return;
    useLive.setState({ codeError: e instanceof Error ? e.message : String(e), codePending: false });
  }
}

export type { NodeInfo };
