// Grouping selected nodes into a block definition: the chosen nodes move inside, and every edge
// that crosses the selection's boundary is rewired through the block's ports (pure; the store
// in store.ts picks the nodes, names the block and records the change for undo).
import { edgeFromDoc, type GEdge, type GNode } from "./doc";
import { uniqueId } from "./names";

export interface Grouping {
  /** the block definition: the chosen nodes, shifted right of its Inputs, plus Input / Output nodes */
  innerNodes: GNode[];
  innerEdges: GEdge[];
  /** the edges that stay outside, the crossing ones now ending on or leaving the block node */
  outerEdges: GEdge[];
}

const ROW = 120; // vertical spacing of the Input / Output nodes in the definition

/** Rewire `edges` around the chosen nodes, which become a block used by the node `blockId`. */
export function groupIntoBlock(chosen: GNode[], edges: GEdge[], blockId: string): Grouping {
  const inside = new Set(chosen.map((n) => n.id));
  const minX = Math.min(...chosen.map((n) => n.position.x));
  const minY = Math.min(...chosen.map((n) => n.position.y));
  const maxX = Math.max(...chosen.map((n) => n.position.x));
  const innerNodes: GNode[] = chosen.map((n) => ({
    ...n,
    selected: false,
    position: { x: n.position.x - minX + 240, y: n.position.y - minY + 40 },
  }));
  const innerEdges: GEdge[] = edges.filter((e) => inside.has(e.source) && inside.has(e.target)).map((e) => ({ ...e, selected: false }));
  const outerEdges: GEdge[] = edges.filter((e) => !inside.has(e.source) && !inside.has(e.target));
  const taken = new Set(innerNodes.map((n) => n.id));
  const portNode = (type: "Input" | "Output", id: string, x: number, row: number): GNode => ({
    id,
    type: "g",
    position: { x, y: 40 + row * ROW },
    data: { type, params: {}, trainable: true },
  });

  /** One port node per distinct source port whose edges cross the boundary this way: its
   * source is wired into the port once (`feed`), and each crossing edge leaves from the port
   * to its own target (`fan`). Incoming: the port is an Input node inside, fed from outside
   * through the block node's input of the same name. Outgoing: an Output node inside, and
   * the block node's output of that name feeds the outside targets. */
  const crossing = (
    type: "Input" | "Output",
    base: string,
    x: number,
    isCrossing: (e: GEdge) => boolean,
    feed: (e: GEdge, port: string) => void,
    fan: (e: GEdge, port: string) => void,
  ): number => {
    const ports = new Map<string, string>();
    for (const e of edges.filter(isCrossing)) {
      const key = `${e.source}:${e.sourceHandle ?? "out"}`;
      let port = ports.get(key);
      if (!port) {
        port = taken.has(base) || ports.size ? uniqueId(base, taken) : base;
        taken.add(port);
        ports.set(key, port);
        innerNodes.push(portNode(type, port, x, ports.size - 1));
        feed(e, port);
      }
      fan(e, port);
    }
    return ports.size;
  };
  const edge = (source: string, sourcePort: string, target: string, targetPort: string) =>
    edgeFromDoc({ source, source_port: sourcePort, target, target_port: targetPort });

  crossing(
    "Input",
    "x",
    0,
    (e) => !inside.has(e.source) && inside.has(e.target),
    (e, port) => outerEdges.push(edge(e.source, e.sourceHandle ?? "out", blockId, port)),
    (e, port) => innerEdges.push(edge(port, "out", e.target, e.targetHandle ?? "in")),
  );
  const outputs = crossing(
    "Output",
    "out",
    maxX - minX + 480,
    (e) => inside.has(e.source) && !inside.has(e.target),
    (e, port) => innerEdges.push(edge(e.source, e.sourceHandle ?? "out", port, "in")),
    (e, port) => outerEdges.push(edge(blockId, port, e.target, e.targetHandle ?? "in")),
  );
  if (!outputs) {
    // a block needs an Output: the last chosen node in edge order feeds it
    const sinks = chosen.filter((n) => !innerEdges.some((e) => e.source === n.id));
    const last = sinks[sinks.length - 1] ?? chosen[chosen.length - 1];
    const port = uniqueId("out", taken);
    innerNodes.push(portNode("Output", port, maxX - minX + 480, 0));
    innerEdges.push(edge(last.id, "out", port, "in"));
  }
  return { innerNodes, innerEdges, outerEdges };
}
