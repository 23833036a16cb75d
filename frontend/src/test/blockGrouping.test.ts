import { describe, expect, it } from "vitest";
import { groupIntoBlock } from "../blockGrouping";
import { edgeFromDoc, type GEdge, type GNode } from "../doc";

const node = (id: string, x = 0): GNode => ({ id, type: "g", position: { x, y: 0 }, data: { type: "Linear", params: {}, trainable: true } });
const edge = (s: string, sp: string, t: string, tp: string): GEdge => edgeFromDoc({ source: s, source_port: sp, target: t, target_port: tp });
const pairs = (edges: GEdge[]) => edges.map((e) => `${e.source}.${e.sourceHandle}->${e.target}.${e.targetHandle}`).sort();

describe("groupIntoBlock", () => {
  it("gives each crossing source port one port node, whichever way it crosses", () => {
    // data.x feeds a and b (one Input), data.y feeds b (a second Input); b.out feeds two
    // outside nodes (one Output), a.out feeds one (a second Output)
    const chosen = [node("a", 100), node("b", 300)];
    const edges = [
      edge("data", "x", "a", "in"),
      edge("data", "x", "b", "in"),
      edge("data", "y", "b", "other"),
      edge("a", "out", "b", "in2"),
      edge("b", "out", "loss", "input"),
      edge("b", "out", "probe", "in"),
      edge("a", "out", "probe", "in2"),
      edge("data", "y", "loss", "target"),
    ];
    const g = groupIntoBlock(chosen, edges, "block1");
    const types = g.innerNodes.map((n) => `${n.id}:${n.data.type}`);
    expect(types).toEqual(["a:Linear", "b:Linear", "x:Input", "x1:Input", "out:Output", "out1:Output"]);
    expect(pairs(g.innerEdges)).toEqual(
      pairs([
        edge("a", "out", "b", "in2"),
        edge("x", "out", "a", "in"),
        edge("x", "out", "b", "in"),
        edge("x1", "out", "b", "other"),
        edge("b", "out", "out", "in"),
        edge("a", "out", "out1", "in"),
      ]),
    );
    expect(pairs(g.outerEdges)).toEqual(
      pairs([
        edge("data", "y", "loss", "target"),
        edge("data", "x", "block1", "x"),
        edge("data", "y", "block1", "x1"),
        edge("block1", "out", "loss", "input"),
        edge("block1", "out", "probe", "in"),
        edge("block1", "out1", "probe", "in2"),
      ]),
    );
    // Inputs on the left, Outputs right of the shifted nodes, one row each
    const pos = Object.fromEntries(g.innerNodes.map((n) => [n.id, n.position]));
    expect(pos.x).toEqual({ x: 0, y: 40 });
    expect(pos.x1).toEqual({ x: 0, y: 160 });
    expect(pos.a).toEqual({ x: 240, y: 40 });
    expect(pos.out1).toEqual({ x: 680, y: 160 });
  });

  it("adds an Output fed by the last sink when nothing leaves the selection", () => {
    const g = groupIntoBlock([node("a"), node("b")], [edge("data", "x", "a", "in"), edge("a", "out", "b", "in")], "block1");
    expect(g.innerNodes.map((n) => n.id)).toEqual(["a", "b", "x", "out1"]);
    expect(pairs(g.innerEdges)).toContain("b.out->out1.in");
  });
});
