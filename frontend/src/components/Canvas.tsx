// The canvas: React Flow with the one generic node type, shape-labelled edges, connection
// rules, palette drops, file drops (import), minimap, controls and a snap grid.
import {
  Background,
  BackgroundVariant,
  Controls,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type IsValidConnection,
} from "@xyflow/react";
import { useCallback, useEffect, useRef, useState, type DragEvent } from "react";
import { setCanvasApi } from "../canvasApi";
import type { GNode } from "../doc";
import { connectionProblem } from "../rules";
import { importFile, toast } from "../session";
import { committed, useEditor } from "../store";
import { CanvasMenu, type MenuAt } from "./ContextMenu";
import { GraphNode } from "./GraphNode";
import { ShapeEdge } from "./ShapeEdge";

const nodeTypes = { g: GraphNode };
const edgeTypes = { shape: ShapeEdge };
const defaultEdgeOptions = { type: "shape" };
const MIN_READABLE_ZOOM = 0.6;
export const PALETTE_MIME = "application/x-torchloom-node";

function miniColor(n: GNode): string {
  const cat = useEditor.getState().catalog?.spec(n.data.type)?.category ?? "";
  return `var(--cat-${cat}, #888)`;
}

export function Canvas() {
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const scope = useEditor((s) => s.scope);
  const onNodesChange = useEditor((s) => s.onNodesChange);
  const onEdgesChange = useEditor((s) => s.onEdgesChange);
  const flow = useReactFlow<GNode, Edge>();
  const wrapper = useRef<HTMLDivElement>(null);
  const [menu, setMenu] = useState<MenuAt | null>(null);

  useEffect(() => {
    setCanvasApi({
      center: () => {
        const r = wrapper.current?.getBoundingClientRect();
        if (!r) return { x: 0, y: 0 };
        return flow.screenToFlowPosition({ x: r.left + r.width / 2, y: r.top + r.height / 2 });
      },
      focusNode: (id) => {
        const n = flow.getNode(id);
        if (!n) return;
        useEditor.getState().select([id]);
        const w = n.measured?.width ?? 180;
        const h = n.measured?.height ?? 80;
        void flow.setCenter(n.position.x + w / 2, n.position.y + h / 2, { zoom: Math.max(flow.getZoom(), 1), duration: 250 });
      },
      fitView: () => void flow.fitView({ padding: 0.15, maxZoom: 1.2, duration: 250 }),
    });
    return () => setCanvasApi(null);
  }, [flow]);

  // a newly loaded document (or a scope switch) is fitted to the view
  const viewKey = useEditor((s) => s.viewKey);
  useEffect(() => {
    // (an empty graph is not fitted: React Flow would fit the first node added instead)
    const t = setTimeout(() => {
      const nodes = flow.getNodes();
      if (!nodes.length) {
        void flow.setViewport({ x: 0, y: 0, zoom: 1 });
        return;
      }
      // fit, but never so small that nodes are unreadable: a long graph then starts at its left end
      const r = wrapper.current?.getBoundingClientRect();
      const b = flow.getNodesBounds(nodes);
      const fit = r ? Math.min((r.width * 0.85) / b.width, (r.height * 0.85) / b.height, 1) : 1;
      if (r && fit < MIN_READABLE_ZOOM) {
        const zoom = MIN_READABLE_ZOOM;
        void flow.setViewport({ x: 30 - b.x * zoom, y: r.height / 2 - (b.y + b.height / 2) * zoom, zoom });
      } else void flow.fitView({ padding: 0.15, maxZoom: 1 });
    }, 30);
    return () => clearTimeout(t);
  }, [viewKey, flow]);

  const isValidConnection: IsValidConnection = useCallback((c) => {
    const s = useEditor.getState();
    if (!s.catalog) return false;
    return connectionProblem(s.catalog, c, s.nodes, s.edges, committed(s).blocks) === null;
  }, []);

  const onConnect = useCallback((c: Connection) => {
    const problem = useEditor.getState().connect(c);
    if (problem) toast(`Cannot connect: ${problem}`);
  }, []);

  const onConnectEnd = useCallback((_: MouseEvent | TouchEvent, state: FinalConnectionState) => {
    if (state.isValid || !state.toHandle || !state.fromHandle) return;
    const s = useEditor.getState();
    if (!s.catalog) return;
    const fromSource = state.fromHandle.type === "source";
    const from = { node: state.fromHandle.nodeId, handle: state.fromHandle.id };
    const to = { node: state.toHandle.nodeId, handle: state.toHandle.id };
    const conn = fromSource
      ? { source: from.node, sourceHandle: from.handle, target: to.node, targetHandle: to.handle }
      : { source: to.node, sourceHandle: to.handle, target: from.node, targetHandle: from.handle };
    const problem = connectionProblem(s.catalog, conn, s.nodes, s.edges, committed(s).blocks);
    if (problem) toast(`Cannot connect: ${problem}`);
  }, []);

  const onDragOver = useCallback((e: DragEvent) => {
    if (e.dataTransfer.types.includes(PALETTE_MIME) || e.dataTransfer.types.includes("Files")) {
      e.preventDefault();
      e.dataTransfer.dropEffect = e.dataTransfer.types.includes("Files") ? "copy" : "move";
    }
  }, []);

  const onDrop = useCallback(
    (e: DragEvent) => {
      const raw = e.dataTransfer.getData(PALETTE_MIME);
      if (raw) {
        e.preventDefault();
        let entry: { type: string; params?: Record<string, unknown> };
        try {
          entry = JSON.parse(raw);
        } catch {
          entry = { type: raw };
        }
        const p = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
        useEditor.getState().addNode(entry.type, { x: p.x - 80, y: p.y - 20 }, entry.params);
        return;
      }
      const file = e.dataTransfer.files?.[0];
      if (file) {
        e.preventDefault();
        void importFile(file);
      }
    },
    [flow],
  );

  return (
    <div className="canvas" ref={wrapper} data-testid="canvas" onDragOver={onDragOver} onDrop={onDrop}>
      {scope !== null && (
        <div className="scope-bar" data-testid="scope-bar">
          <button type="button" className="btn small" onClick={() => useEditor.getState().closeBlock()} data-testid="close-block">
            ← Main graph
          </button>
          <span>
            Editing block <strong>{scope}</strong> — its Input and Output nodes are the block's ports
          </span>
        </div>
      )}
      <ReactFlow<GNode, Edge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        defaultEdgeOptions={defaultEdgeOptions}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        onNodeContextMenu={(e, n) => {
          e.preventDefault();
          if (!n.selected) useEditor.getState().select([n.id]);
          setMenu({ x: e.clientX, y: e.clientY, node: n.id });
        }}
        onPaneContextMenu={(e) => {
          e.preventDefault();
          setMenu({ x: e.clientX, y: e.clientY, node: null });
        }}
        onNodeDragStart={() => useEditor.getState().checkpoint()}
        onNodeDoubleClick={(_, n) => {
          const b = n.data.params.block;
          if (n.data.type === "Block" && typeof b === "string") useEditor.getState().openBlock(b);
        }}
        onSelectionDragStart={() => useEditor.getState().checkpoint()}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={["Meta", "Control"]}
        snapToGrid
        snapGrid={[20, 20]}
        minZoom={0.1}
        maxZoom={2.5}
        onlyRenderVisibleElements
        proOptions={{ hideAttribution: true }}
        aria-label="Graph canvas"
      >
        <Background variant={BackgroundVariant.Dots} gap={20} size={1} />
        <MiniMap pannable zoomable nodeColor={miniColor} ariaLabel="Minimap" />
        <Controls showInteractive={false} aria-label="Zoom controls" />
      </ReactFlow>
      <CanvasMenu at={menu} onClose={() => setMenu(null)} />
    </div>
  );
}
