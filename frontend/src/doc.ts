// The graph document (`torchloom.graph/1`, graph_compiler/document.py) and its conversion to
// and from the canvas's nodes and edges.
import type { Edge, Node } from "@xyflow/react";

export interface DocNode {
  id: string;
  type: string;
  label?: string | null;
  params?: Record<string, unknown>;
  position?: [number, number] | { x: number; y: number };
  trainable?: boolean;
}

export interface DocEdge {
  source: string;
  target: string;
  source_port?: string;
  target_port?: string;
}

export interface DocBlock {
  description?: string;
  nodes?: DocNode[];
  edges?: DocEdge[];
}

export interface GraphDocument {
  format?: string;
  name?: string;
  description?: string;
  nodes?: DocNode[];
  edges?: DocEdge[];
  blocks?: Record<string, DocBlock>;
  ui?: Record<string, unknown>;
}

export interface NodeData extends Record<string, unknown> {
  type: string;
  label?: string;
  params: Record<string, unknown>;
  trainable: boolean;
}

export type GNode = Node<NodeData, "g">;
export type GEdge = Edge;

export interface Graph {
  nodes: GNode[];
  edges: GEdge[];
}

export interface BlockGraph extends Graph {
  description: string;
}

export const FORMAT = "torchloom.graph/1";

export function edgeId(source: string, sourcePort: string, target: string, targetPort: string): string {
  return `${source}:${sourcePort}->${target}:${targetPort}`;
}

function position(p: DocNode["position"]): { x: number; y: number } {
  if (!p) return { x: 0, y: 0 };
  if (Array.isArray(p)) return { x: p[0], y: p[1] };
  return { x: p.x, y: p.y };
}

export function nodeFromDoc(n: DocNode): GNode {
  return {
    id: n.id,
    type: "g",
    position: position(n.position),
    data: {
      type: n.type,
      label: n.label ?? undefined,
      params: { ...(n.params ?? {}) },
      trainable: n.trainable !== false,
    },
  };
}

export function edgeFromDoc(e: DocEdge): GEdge {
  const sp = e.source_port ?? "out";
  const tp = e.target_port ?? "in";
  return { id: edgeId(e.source, sp, e.target, tp), source: e.source, target: e.target, sourceHandle: sp, targetHandle: tp, type: "shape" };
}

export function graphFromDoc(nodes: DocNode[] = [], edges: DocEdge[] = []): Graph {
  return { nodes: nodes.map(nodeFromDoc), edges: edges.map(edgeFromDoc) };
}

export function nodeToDoc(n: GNode): DocNode {
  const out: DocNode = {
    id: n.id,
    type: n.data.type,
    params: n.data.params,
    position: [Math.round(n.position.x * 10) / 10, Math.round(n.position.y * 10) / 10],
  };
  if (n.data.label) out.label = n.data.label;
  if (!n.data.trainable) out.trainable = false;
  return out;
}

export function edgeToDoc(e: GEdge): DocEdge {
  return { source: e.source, source_port: e.sourceHandle ?? "out", target: e.target, target_port: e.targetHandle ?? "in" };
}

export interface DocParts {
  name: string;
  description: string;
  main: Graph;
  blocks: Record<string, BlockGraph>;
  ui: Record<string, unknown>;
}

export function toDocument(parts: DocParts): GraphDocument {
  const blocks: Record<string, DocBlock> = {};
  for (const [name, b] of Object.entries(parts.blocks)) {
    blocks[name] = { description: b.description, nodes: b.nodes.map(nodeToDoc), edges: b.edges.map(edgeToDoc) };
  }
  return {
    format: FORMAT,
    name: parts.name,
    description: parts.description,
    nodes: parts.main.nodes.map(nodeToDoc),
    edges: parts.main.edges.map(edgeToDoc),
    blocks,
    ui: parts.ui,
  };
}

export function fromDocument(doc: GraphDocument): DocParts {
  const blocks: Record<string, BlockGraph> = {};
  for (const [name, b] of Object.entries(doc.blocks ?? {})) {
    blocks[name] = { description: b.description ?? "", ...graphFromDoc(b.nodes, b.edges) };
  }
  return {
    name: doc.name ?? "Untitled",
    description: doc.description ?? "",
    main: graphFromDoc(doc.nodes, doc.edges),
    blocks,
    ui: doc.ui ?? {},
  };
}
