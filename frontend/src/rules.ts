// Connection rules for the canvas (`isValidConnection`): port kinds must match, an edge may not
// close a cycle, a single-input port takes one edge, and the same edge is not added twice.
import { Catalog, portsOf, type BlockLike, type PortSpec } from "./catalog";
import type { GEdge, GNode } from "./doc";

export interface Conn {
  source: string | null;
  target: string | null;
  sourceHandle?: string | null;
  targetHandle?: string | null;
}

export function nodePorts(
  catalog: Catalog,
  node: GNode | undefined,
  blocks?: Record<string, BlockLike>,
): { inputs: PortSpec[]; outputs: PortSpec[] } {
  const spec = node ? catalog.spec(node.data.type) : undefined;
  if (!node || !spec) return { inputs: [], outputs: [] };
  return portsOf(spec, node.data.params, blocks);
}

/** Whether `to` can be reached from `from` following edges. */
export function reaches(edges: Pick<GEdge, "source" | "target">[], from: string, to: string): boolean {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    const list = out.get(e.source);
    if (list) list.push(e.target);
    else out.set(e.source, [e.target]);
  }
  const seen = new Set<string>([from]);
  const stack = [from];
  while (stack.length) {
    const n = stack.pop()!;
    if (n === to) return true;
    for (const m of out.get(n) ?? []) {
      if (!seen.has(m)) {
        seen.add(m);
        stack.push(m);
      }
    }
  }
  return false;
}

/** Why a connection is refused, or null when it is allowed. */
export function connectionProblem(
  catalog: Catalog,
  conn: Conn,
  nodes: GNode[],
  edges: GEdge[],
  blocks?: Record<string, BlockLike>,
): string | null {
  const { source, target } = conn;
  if (!source || !target) return "incomplete connection";
  if (source === target) return "a node cannot feed itself";
  const src = nodes.find((n) => n.id === source);
  const dst = nodes.find((n) => n.id === target);
  if (!src || !dst) return "unknown node";
  const out = nodePorts(catalog, src, blocks).outputs.find((p) => p.name === (conn.sourceHandle ?? "out"));
  const inp = nodePorts(catalog, dst, blocks).inputs.find((p) => p.name === (conn.targetHandle ?? "in"));
  if (!out || !inp) return "unknown port";
  if (out.kind !== inp.kind) return `a ${out.kind} output cannot feed a ${inp.kind} input`;
  const into = edges.filter((e) => e.target === target && (e.targetHandle ?? "in") === inp.name);
  if (into.some((e) => e.source === source && (e.sourceHandle ?? "out") === out.name)) return "already connected";
  if (!inp.multi && into.length > 0) return `${inp.name} takes one input and already has one`;
  if (reaches(edges, target, source)) return "this edge would close a cycle";
  return null;
}
