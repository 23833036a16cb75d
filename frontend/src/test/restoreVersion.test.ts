// Restoring a version is one undoable step and keeps the undo history (issue 14 bug 6).
import { beforeEach, describe, expect, it } from "vitest";
import { useEditor } from "../store";
import { serverCatalog } from "./serverCatalog";

const cat = serverCatalog();
const st = () => useEditor.getState();
const types = () => st().nodes.map((n) => n.data.type);

beforeEach(() => {
  useEditor.setState({ catalog: cat });
  st().load({ format: "torchloom.graph/1", name: "t", nodes: [], edges: [] });
});

describe("replaceDocument (restore a version)", () => {
  const older = {
    format: "torchloom.graph/1",
    name: "t",
    nodes: [{ id: "linear1", type: "Linear", params: { out_features: 3 }, position: { x: 0, y: 0 } }],
    edges: [],
  };

  it("replaces the graph as one undo step and keeps the earlier history", () => {
    st().addNode("ReLU", { x: 0, y: 0 });
    st().addNode("Flatten", { x: 0, y: 100 });
    const viewKey = st().viewKey;
    st().replaceDocument(older);
    expect(types()).toEqual(["Linear"]);
    expect(st().viewKey).toBe(viewKey + 1); // the canvas refits to the restored graph
    st().undo();
    expect(types()).toEqual(["ReLU", "Flatten"]);
    st().undo();
    expect(types()).toEqual(["ReLU"]);
    st().redo();
    st().redo();
    expect(types()).toEqual(["Linear"]);
  });

  it("restoring while a block is open returns to the main graph, and undo reopens the block", () => {
    const a = st().addNode("Linear", { x: 0, y: 0 }, { out_features: 4 })!;
    const b = st().addNode("ReLU", { x: 200, y: 0 })!;
    st().connect({ source: a, sourceHandle: "out", target: b, targetHandle: "in" });
    st().select([a, b]);
    const block = st().groupSelection("blk")!;
    st().openBlock(block);
    st().replaceDocument(older);
    expect(st().scope).toBeNull();
    expect(types()).toEqual(["Linear"]);
    st().undo();
    expect(st().scope).toBe(block);
  });
});
