// The editor's graph store (zustand): the document being edited, the canvas scope (the main
// graph or an open block), selection, undo/redo history (history.ts), clipboard and block
// grouping (blockGrouping.ts).
import { applyEdgeChanges, applyNodeChanges, type EdgeChange, type NodeChange } from "@xyflow/react";
import { create } from "zustand";
import { Catalog, portsOf } from "./catalog";
import {
  edgeFromDoc,
  edgeId,
  edgeToDoc,
  fromDocument,
  nodeFromDoc,
  nodeToDoc,
  toDocument,
  type BlockGraph,
  type DocBlock,
  type DocEdge,
  type DocNode,
  type GEdge,
  type GNode,
  type Graph,
  type GraphDocument,
} from "./doc";
import { groupIntoBlock } from "./blockGrouping";
import { recorded, redone, undone, type Snapshot } from "./history";
import { readMoves } from "./nudge";
import { uniqueId, uniqueName } from "./names";
import { connectionProblem, type Conn } from "./rules";

export { uniqueId };

export const CLIPBOARD_FORMAT = "torchloom.clipboard/1";

export interface EditorState {
  catalog: Catalog | null;
  name: string;
  description: string;
  ui: Record<string, unknown>;
  /** null: the main graph is on the canvas; otherwise the name of the open block. */
  scope: string | null;
  nodes: GNode[];
  edges: GEdge[];
  /** The main graph while a block is open (stale while scope is null). */
  main: Graph;
  /** Block definitions (the open block's entry is stale while it is open). */
  blocks: Record<string, BlockGraph>;
  past: Snapshot[];
  future: Snapshot[];
  lastKey: string | null;
  lastTime: number;
  /** Bumped on every change to the document (not on selection changes). */
  rev: number;
  /** Bumped when a different graph is put on the canvas (load, open/close a block): fit view. */
  viewKey: number;
  clipboard: string | null;

  setCatalog(c: Catalog): void;
  load(doc: GraphDocument): void;
  /** Put another document of the same project on the canvas (a restored version) as one undo
   * step, keeping the history (load() starts a fresh one: a different project). */
  replaceDocument(doc: GraphDocument): void;
  document(): GraphDocument;
  checkpoint(key?: string): void;
  onNodesChange(changes: NodeChange<GNode>[]): void;
  onEdgesChange(changes: EdgeChange<GEdge>[]): void;
  addNode(type: string, position: { x: number; y: number }, params?: Record<string, unknown>): string | null;
  connect(conn: Conn): string | null;
  updateParam(id: string, name: string, value: unknown): void;
  setLabel(id: string, label: string): void;
  setTrainable(id: string, trainable: boolean): void;
  rename(name: string): void;
  deleteSelection(): void;
  deleteNode(id: string): void;
  undo(): void;
  redo(): void;
  select(ids: string[]): void;
  selectAll(): void;
  copySelection(): string | null;
  paste(text?: string | null, offset?: { x: number; y: number }): string[];
  duplicateSelection(): string[];
  groupSelection(name?: string): string | null;
  openBlock(name: string): void;
  closeBlock(): void;
  setPositions(positions: Record<string, { x: number; y: number }>): void;
}

/** The main graph and block definitions with the canvas written back into its scope. */
export function committed(s: Pick<EditorState, "scope" | "nodes" | "edges" | "main" | "blocks">): {
  main: Graph;
  blocks: Record<string, BlockGraph>;
} {
  if (s.scope === null) return { main: { nodes: s.nodes, edges: s.edges }, blocks: s.blocks };
  const cur = s.blocks[s.scope];
  return {
    main: s.main,
    blocks: { ...s.blocks, [s.scope]: { description: cur?.description ?? "", nodes: s.nodes, edges: s.edges } },
  };
}

/** The editor state that shows a document from its top level (the history is the caller's). */
function shown(doc: GraphDocument, s: EditorState): Partial<EditorState> {
  const parts = fromDocument(doc);
  return {
    name: parts.name,
    description: parts.description,
    ui: parts.ui,
    scope: null,
    nodes: parts.main.nodes,
    edges: parts.main.edges,
    main: { nodes: [], edges: [] },
    blocks: parts.blocks,
    lastKey: null,
    rev: s.rev + 1,
    viewKey: s.viewKey + 1,
  };
}

function selected(s: EditorState): GNode[] {
  return s.nodes.filter((n) => n.selected);
}

export const useEditor = create<EditorState>()((set, get) => {
  /** Record the current state for undo before a change; repeated changes with the same key
   * within a short time (typing in one field, nudging) make one undo step. */
  const checkpoint = (key?: string) => {
    set(recorded(get(), key, Date.now()));
  };
  const changed = (patch: Partial<EditorState>) => set((s) => ({ ...patch, rev: s.rev + 1 }));
  // a pointer drag in progress (its undo step is taken at drag start, see nudge.ts)
  let pointerDrag = false;
  const mapNode = (id: string, fn: (n: GNode) => GNode) =>
    get().nodes.map((n) => (n.id === id ? fn(n) : n));

  const insert = (docNodes: DocNode[], docEdges: DocEdge[], blocks: Record<string, DocBlock>, offset: { x: number; y: number }) => {
    const s = get();
    const taken = new Set(s.nodes.map((n) => n.id));
    const rename = new Map<string, string>();
    const added: GNode[] = [];
    for (const dn of docNodes) {
      if (!s.catalog?.spec(dn.type)) continue;
      const id = taken.has(dn.id) ? uniqueId(dn.type, taken) : dn.id;
      taken.add(id);
      rename.set(dn.id, id);
      const n = nodeFromDoc({ ...dn, id });
      n.position = { x: n.position.x + offset.x, y: n.position.y + offset.y };
      n.selected = true;
      added.push(n);
    }
    const newEdges: GEdge[] = [];
    for (const de of docEdges) {
      const src = rename.get(de.source);
      const dst = rename.get(de.target);
      if (src && dst) newEdges.push(edgeFromDoc({ ...de, source: src, target: dst }));
    }
    const defs = { ...s.blocks };
    for (const [name, b] of Object.entries(blocks)) {
      if (!(name in defs) && name !== s.scope) {
        const g = fromDocument({ nodes: b.nodes, edges: b.edges });
        defs[name] = { description: b.description ?? "", ...g.main };
      }
    }
    checkpoint();
    changed({
      nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...added],
      edges: [...s.edges.map((e) => (e.selected ? { ...e, selected: false } : e)), ...newEdges],
      blocks: defs,
    });
    return added.map((n) => n.id);
  };

  return {
    catalog: null,
    name: "Untitled",
    description: "",
    ui: {},
    scope: null,
    nodes: [],
    edges: [],
    main: { nodes: [], edges: [] },
    blocks: {},
    past: [],
    future: [],
    lastKey: null,
    lastTime: 0,
    rev: 0,
    viewKey: 0,
    clipboard: null,

    setCatalog: (catalog) => set({ catalog }),

    // a new document with a fresh history (opening a project)
    load: (doc) => set((s) => ({ ...shown(doc, s), past: [], future: [] })),

    // a restored version: one undoable step on top of the history
    replaceDocument: (doc) => {
      checkpoint();
      set((s) => shown(doc, s));
    },

    document: () => {
      const s = get();
      const { main, blocks } = committed(s);
      return toDocument({ name: s.name, description: s.description, main, blocks, ui: s.ui });
    },

    checkpoint,

    onNodesChange: (changes) => {
      const s = get();
      let docChange = false;
      const kept = changes.filter((c) => {
        if (c.type === "remove") return false; // deletion goes through deleteSelection (undoable)
        if (c.type === "position" && c.dragging === false) docChange = true;
        if (c.type === "position" && c.dragging === undefined && c.position) docChange = true;
        return true;
      });
      if (!kept.length) return;
      const moves = readMoves(kept, pointerDrag);
      pointerDrag = moves.dragging;
      if (moves.nudgeKey) checkpoint(moves.nudgeKey);
      const nodes = applyNodeChanges(kept, s.nodes);
      if (docChange) changed({ nodes });
      else set({ nodes });
    },

    onEdgesChange: (changes) => {
      const kept = changes.filter((c) => c.type !== "remove");
      if (kept.length) set({ edges: applyEdgeChanges(kept, get().edges) });
    },

    addNode: (type, position, params) => {
      const s = get();
      if (!s.catalog?.spec(type)) return null;
      const id = uniqueId(type, new Set(s.nodes.map((n) => n.id)));
      const node: GNode = {
        id,
        type: "g",
        position,
        selected: true,
        data: { type, params: { ...(params ?? {}) }, trainable: true },
      };
      checkpoint();
      changed({ nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), node] });
      return id;
    },

    connect: (conn) => {
      const s = get();
      if (!s.catalog) return "no catalog";
      const { blocks } = committed(s);
      const problem = connectionProblem(s.catalog, conn, s.nodes, s.edges, blocks);
      if (problem) return problem;
      const sp = conn.sourceHandle ?? "out";
      const tp = conn.targetHandle ?? "in";
      checkpoint();
      changed({
        edges: [
          ...s.edges,
          { id: edgeId(conn.source!, sp, conn.target!, tp), source: conn.source!, target: conn.target!, sourceHandle: sp, targetHandle: tp, type: "shape" },
        ],
      });
      return null;
    },

    updateParam: (id, name, value) => {
      checkpoint(`param:${id}:${name}`);
      changed({
        nodes: mapNode(id, (n) => {
          const params = { ...n.data.params };
          if (value === undefined) delete params[name];
          else params[name] = value;
          return { ...n, data: { ...n.data, params } };
        }),
      });
      // ports may have changed (a block, chunk count, custom inputs): drop edges on ports gone
      const s = get();
      if (!s.catalog) return;
      const node = s.nodes.find((n) => n.id === id);
      const spec = node && s.catalog.spec(node.data.type);
      if (!node || !spec?.dynamic_ports) return;
      const { blocks } = committed(s);
      const keep = s.edges.filter((e) => {
        if (e.source === id) return connectionPortExists(s.catalog!, node, e.sourceHandle, "out", blocks);
        if (e.target === id) return connectionPortExists(s.catalog!, node, e.targetHandle, "in", blocks);
        return true;
      });
      if (keep.length !== s.edges.length) set({ edges: keep });
    },

    setLabel: (id, label) => {
      checkpoint(`label:${id}`);
      changed({ nodes: mapNode(id, (n) => ({ ...n, data: { ...n.data, label: label || undefined } })) });
    },

    setTrainable: (id, trainable) => {
      checkpoint();
      changed({ nodes: mapNode(id, (n) => ({ ...n, data: { ...n.data, trainable } })) });
    },

    rename: (name) => {
      checkpoint("rename");
      changed({ name });
    },

    deleteSelection: () => {
      const s = get();
      const gone = new Set(selected(s).map((n) => n.id));
      const edges = s.edges.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target));
      if (!gone.size && edges.length === s.edges.length) return;
      checkpoint();
      changed({ nodes: s.nodes.filter((n) => !gone.has(n.id)), edges });
    },

    deleteNode: (id) => {
      const s = get();
      checkpoint();
      changed({ nodes: s.nodes.filter((n) => n.id !== id), edges: s.edges.filter((e) => e.source !== id && e.target !== id) });
    },

    undo: () => {
      const step = undone(get());
      if (step) changed(step);
    },

    redo: () => {
      const step = redone(get());
      if (step) changed(step);
    },

    select: (ids) => {
      const want = new Set(ids);
      set((s) => ({
        nodes: s.nodes.map((n) => (!!n.selected === want.has(n.id) ? n : { ...n, selected: want.has(n.id) })),
        edges: s.edges.map((e) => (e.selected ? { ...e, selected: false } : e)),
      }));
    },

    selectAll: () => set((s) => ({ nodes: s.nodes.map((n) => (n.selected ? n : { ...n, selected: true })) })),

    copySelection: () => {
      const s = get();
      const nodes = selected(s);
      if (!nodes.length) return null;
      const ids = new Set(nodes.map((n) => n.id));
      const { blocks } = committed(s);
      const used: Record<string, DocBlock> = {};
      for (const n of nodes) {
        const b = n.data.params.block;
        if (typeof b === "string" && blocks[b]) {
          used[b] = { description: blocks[b].description, nodes: blocks[b].nodes.map(nodeToDoc), edges: blocks[b].edges.map(edgeToDoc) };
        }
      }
      const text = JSON.stringify({
        format: CLIPBOARD_FORMAT,
        nodes: nodes.map(nodeToDoc),
        edges: s.edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map(edgeToDoc),
        blocks: used,
      });
      set({ clipboard: text });
      return text;
    },

    paste: (text, offset = { x: 40, y: 40 }) => {
      const raw = text ?? get().clipboard;
      if (!raw) return [];
      let data: { format?: string; nodes?: DocNode[]; edges?: DocEdge[]; blocks?: Record<string, DocBlock> };
      try {
        data = JSON.parse(raw);
      } catch {
        return [];
      }
      if (!data || typeof data !== "object" || !Array.isArray(data.nodes)) return [];
      if (data.format !== CLIPBOARD_FORMAT && !(typeof data.format === "string" && data.format.startsWith("torchloom.graph/"))) return [];
      return insert(data.nodes, data.edges ?? [], data.blocks ?? {}, offset);
    },

    duplicateSelection: () => {
      const text = get().copySelection();
      return text ? get().paste(text, { x: 40, y: 40 }) : [];
    },

    groupSelection: (name) => {
      const s = get();
      const chosen = selected(s).filter((n) => {
        const role = s.catalog?.spec(n.data.type)?.role;
        return role === "layer" || role === "op" || role === "custom" || role === "block";
      });
      if (!chosen.length) return null;
      const inside = new Set(chosen.map((n) => n.id));
      const blockName = uniqueName(name || "Block", new Set([...Object.keys(s.blocks), ...(s.scope ? [s.scope] : [])]));
      const blockId = uniqueId("block", new Set(s.nodes.filter((n) => !inside.has(n.id)).map((n) => n.id)));
      const { innerNodes, innerEdges, outerEdges } = groupIntoBlock(chosen, s.edges, blockId);
      // the block node sits where the grouped nodes were, on average
      const cx = chosen.reduce((a, n) => a + n.position.x, 0) / chosen.length;
      const cy = chosen.reduce((a, n) => a + n.position.y, 0) / chosen.length;
      const blockNode: GNode = {
        id: blockId,
        type: "g",
        position: { x: cx, y: cy },
        selected: true,
        data: { type: "Block", label: undefined, params: { block: blockName, repeat: 1 }, trainable: true },
      };
      checkpoint();
      changed({
        // the block takes the place of the first grouped node in the node list
        nodes: s.nodes.flatMap((n) =>
          n.id === chosen[0].id ? [blockNode] : inside.has(n.id) ? [] : [n.selected ? { ...n, selected: false } : n],
        ),
        edges: outerEdges,
        blocks: { ...s.blocks, [blockName]: { description: "", nodes: innerNodes, edges: innerEdges } },
      });
      return blockName;
    },

    openBlock: (name) => {
      const s = get();
      const { main, blocks } = committed(s);
      const def = blocks[name];
      if (!def || s.scope === name) return;
      checkpoint();
      // blocks open from the main graph (opening one from another block returns to main first)
      changed({
        main,
        blocks,
        scope: name,
        viewKey: s.viewKey + 1,
        nodes: def.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)),
        edges: def.edges,
      });
    },

    closeBlock: () => {
      const s = get();
      if (s.scope === null) return;
      const { main, blocks } = committed(s);
      checkpoint();
      changed({ scope: null, viewKey: s.viewKey + 1, nodes: main.nodes, edges: main.edges, blocks, main: { nodes: [], edges: [] } });
    },

    setPositions: (positions) => {
      checkpoint();
      changed({ nodes: get().nodes.map((n) => (positions[n.id] ? { ...n, position: positions[n.id] } : n)) });
    },
  };
});

function connectionPortExists(
  catalog: Catalog,
  node: GNode,
  handle: string | null | undefined,
  side: "in" | "out",
  blocks: Record<string, BlockGraph>,
): boolean {
  const spec = catalog.spec(node.data.type);
  if (!spec) return false;
  const ports = portsOf(spec, node.data.params, blocks);
  const list = side === "in" ? ports.inputs : ports.outputs;
  return list.some((p) => p.name === (handle ?? side));
}

export type { Graph, GNode, GEdge };
