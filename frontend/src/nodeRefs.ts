// Params that name another node (catalog `node_ref`, e.g. Linear.tie_weight → an Embedding whose
// weight the head shares): what the canvas shows on the node, resolved against the graph.
import type { NodeSpec } from "./catalog";
import type { GNode } from "./doc";

export interface NodeRef {
  param: string;
  /** The node id the param names. */
  target: string;
  /** The type the param expects ("Embedding"). */
  type: string;
  /** The named node's label, or null where the graph has no such node of that type. */
  label: string | null;
  /** What the badge says, e.g. "weight tied to tok_emb" (also its accessible name). */
  text: string;
}

export function nodeRefs(spec: NodeSpec, params: Record<string, unknown>, nodes: readonly GNode[]): NodeRef[] {
  const refs: NodeRef[] = [];
  for (const p of spec.params) {
    const target = params[p.name];
    if (!p.node_ref || typeof target !== "string" || target === "") continue;
    const found = nodes.find((n) => n.id === target && n.data.type === p.node_ref);
    const label = found ? found.data.label || found.id : null;
    const what = p.name === "tie_weight" ? "weight tied to" : `${p.name}:`;
    const text = label ? `${what} ${label}` : `${what} ${target} (no ${p.node_ref} with that id)`;
    refs.push({ param: p.name, target, type: p.node_ref, label, text });
  }
  return refs;
}
