// Undo / redo for the editor store: snapshots of what the user edits, taken before each change.
// Repeated changes with the same key within a short time (typing in one field, nudging) make one
// undo step.
import type { BlockGraph, GEdge, GNode, Graph } from "./doc";

const HISTORY_LIMIT = 200;
const COALESCE_MS = 1200;

export interface Snapshot {
  scope: string | null;
  nodes: GNode[];
  edges: GEdge[];
  main: Graph;
  blocks: Record<string, BlockGraph>;
  name: string;
}

export interface History {
  past: Snapshot[];
  future: Snapshot[];
  lastKey: string | null;
  lastTime: number;
}

export function snap(s: Snapshot): Snapshot {
  return { scope: s.scope, nodes: s.nodes, edges: s.edges, main: s.main, blocks: s.blocks, name: s.name };
}

/** The history after recording `s` before a change (only the time moves when it coalesces). */
export function recorded(s: Snapshot & History, key: string | undefined, now: number): Partial<History> {
  if (key && key === s.lastKey && now - s.lastTime < COALESCE_MS) return { lastTime: now };
  return { past: [...s.past, snap(s)].slice(-HISTORY_LIMIT), future: [], lastKey: key ?? null, lastTime: now };
}

/** The state one step back (null: nothing to undo); the current one goes to `future`. */
export function undone(s: Snapshot & History): (Snapshot & Partial<History>) | null {
  const prev = s.past[s.past.length - 1];
  if (!prev) return null;
  return { ...prev, past: s.past.slice(0, -1), future: [...s.future, snap(s)], lastKey: null };
}

/** The state one step forward again (null: nothing to redo). */
export function redone(s: Snapshot & History): (Snapshot & Partial<History>) | null {
  const next = s.future[s.future.length - 1];
  if (!next) return null;
  return { ...next, future: s.future.slice(0, -1), past: [...s.past, snap(s)], lastKey: null };
}
