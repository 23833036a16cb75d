// Moving nodes with the arrow keys: each burst of moves is one undo step (issue 14 bug 5).
import { beforeEach, describe, expect, it } from "vitest";
import { useEditor } from "../store";
import { serverCatalog } from "./serverCatalog";

const cat = serverCatalog();
const st = () => useEditor.getState();

beforeEach(() => {
  useEditor.setState({ catalog: cat });
  st().load({ format: "torchloom.graph/1", name: "t", nodes: [], edges: [] });
});

// What React Flow sends for one arrow-key press: a finished position change, no drag before it.
function arrow(id: string, dx: number) {
  const n = st().nodes.find((m) => m.id === id)!;
  st().onNodesChange([{ id, type: "position", position: { x: n.position.x + dx, y: n.position.y }, dragging: false }]);
}
const x = (id: string) => st().nodes.find((n) => n.id === id)!.position.x;

describe("arrow-key moves", () => {
  it("a burst of arrow-key moves undoes in one step, and redoes", () => {
    const id = st().addNode("ReLU", { x: 100, y: 0 })!;
    arrow(id, 5);
    arrow(id, 5);
    arrow(id, 5);
    expect(x(id)).toBe(115);
    st().undo();
    expect(x(id)).toBe(100);
    expect(st().nodes).toHaveLength(1); // the add is a separate step
    st().redo();
    expect(x(id)).toBe(115);
  });

  it("a pointer drag stays one step from its start checkpoint, with no extra step at its end", () => {
    const id = st().addNode("ReLU", { x: 100, y: 0 })!;
    const before = st().past.length;
    st().checkpoint(); // Canvas: onNodeDragStart
    st().onNodesChange([{ id, type: "position", position: { x: 130, y: 0 }, dragging: true }]);
    st().onNodesChange([{ id, type: "position", position: { x: 160, y: 0 }, dragging: false }]);
    expect(st().past.length).toBe(before + 1);
    st().undo();
    expect(x(id)).toBe(100);
  });

  it("moves of other nodes, or after a pause, are separate steps", () => {
    const a = st().addNode("ReLU", { x: 0, y: 0 })!;
    const b = st().addNode("ReLU", { x: 0, y: 100 })!;
    arrow(a, 5);
    arrow(b, 5);
    st().undo();
    expect([x(a), x(b)]).toEqual([5, 0]);
    useEditor.setState({ lastTime: 0 }); // long ago
    arrow(a, 5);
    st().undo();
    expect(x(a)).toBe(5);
  });
});
