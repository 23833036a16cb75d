// Auto-layout (dagre, loaded lazily: a separate chunk), left to right.
import type { GEdge, GNode } from "./doc";

export async function autoLayout(nodes: GNode[], edges: GEdge[]): Promise<Record<string, { x: number; y: number }>> {
  const { default: dagre } = await import("@dagrejs/dagre");
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 80, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: n.measured?.width ?? 180, height: n.measured?.height ?? 90 });
  for (const e of edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const out: Record<string, { x: number; y: number }> = {};
  for (const n of nodes) {
    const p = g.node(n.id);
    const w = n.measured?.width ?? 180;
    const h = n.measured?.height ?? 90;
    out[n.id] = { x: Math.round((p.x - w / 2) / 20) * 20, y: Math.round((p.y - h / 2) / 20) * 20 };
  }
  return out;
}
