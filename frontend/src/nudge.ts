// Tells a keyboard move from a pointer drag in React Flow's node changes, so arrow-key moves
// become undo steps. A pointer drag sends `dragging: true` moves and then one `dragging: false`
// (its undo step was recorded at drag start); an arrow key sends only `dragging: false`.
import type { NodeChange } from "@xyflow/react";

export interface MoveRead {
  /** a pointer drag is in progress after these changes */
  dragging: boolean;
  /** undo key for a keyboard move (same nodes → same key, so a burst coalesces); else null */
  nudgeKey: string | null;
}

export function readMoves(changes: readonly NodeChange[], draggingBefore: boolean): MoveRead {
  const moves = changes.filter((c) => c.type === "position");
  if (moves.some((c) => c.dragging === true)) return { dragging: true, nudgeKey: null };
  const done = moves.filter((c) => c.dragging === false && c.position);
  if (!done.length) return { dragging: draggingBefore, nudgeKey: null };
  if (draggingBefore) return { dragging: false, nudgeKey: null };
  return { dragging: false, nudgeKey: `nudge:${done.map((c) => c.id).sort().join(",")}` };
}
