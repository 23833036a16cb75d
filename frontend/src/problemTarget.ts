// Where a problem row leads: an error inside a block instance goes to the failing inner node
// in the innermost block's editor (the Block node outside only carries it).
import type { GraphErrorJson } from "./api";

export function problemTarget(e: GraphErrorJson): { node: string | null; block?: string } {
  const innermost = e.path?.[e.path.length - 1];
  if (e.inner_node && innermost) return { node: e.inner_node, block: innermost.block };
  return { node: e.node, block: e.block };
}
