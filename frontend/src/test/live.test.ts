import { afterEach, describe, expect, it, vi } from "vitest";
import type { ValidationJson } from "../api";
import type { GraphDocument } from "../doc";
import { indexResult, runValidation, useLive } from "../live";

function answer(name: string): ValidationJson {
  return {
    ok: true,
    errors: [{ code: "x", message: name, node: "fc1", field: null }],
    nodes: {},
    edges: [{ shape: ["B", name.length], dtype: "float32", text: "" }],
    totals: null,
    settings: {},
  };
}

afterEach(() => vi.unstubAllGlobals());

describe("live validation", () => {
  it("discards a response that arrives after a newer one", async () => {
    const pending: ((v: Response) => void)[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(
        () =>
          new Promise<Response>((resolve) => {
            pending.push(resolve);
          }),
      ),
    );
    const doc: GraphDocument = { nodes: [], edges: [] };
    const first = runValidation(doc);
    const second = runValidation(doc);
    // the newer request answers first, then the stale one
    pending[1](new Response(JSON.stringify(answer("new")), { status: 200 }));
    await second;
    pending[0](new Response(JSON.stringify(answer("old")), { status: 200 }));
    await first;
    expect(useLive.getState().result?.errors[0].message).toBe("new");
  });

  it("keys edge shapes by edge id in document order and errors by block and node", () => {
    const doc: GraphDocument = {
      nodes: [],
      edges: [
        { source: "a", target: "b" },
        { source: "b", source_port: "out", target: "c", target_port: "input" },
      ],
    };
    const res: ValidationJson = {
      ...answer("x"),
      edges: [{ shape: ["B", 4], dtype: "float32", text: "(B, 4)" }, null],
      errors: [
        { code: "e", message: "m1", node: "b", field: null },
        { code: "e", message: "m2", node: "b", field: "p", block: "Blk" },
        { code: "w", message: "m3", node: null, field: null },
      ],
    };
    const { edgeShapes, nodeErrors } = indexResult(doc, res);
    expect(edgeShapes["a:out->b:in"]?.shape).toEqual(["B", 4]);
    expect(edgeShapes["b:out->c:input"]).toBeNull();
    expect(nodeErrors["|b"].map((e) => e.message)).toEqual(["m1"]);
    expect(nodeErrors["Blk|b"].map((e) => e.message)).toEqual(["m2"]);
  });

  it("badges the inner node of a failing block instance in its block editor too", () => {
    const message = "conv2d1 in repetition 2 of blk (block down) gets (B, 16, 3, 3): kernel 4×4 is larger than the 3×3 input";
    const res: ValidationJson = {
      ...answer("x"),
      edges: [],
      errors: [
        {
          code: "shape_mismatch",
          message,
          node: "blk",
          field: null,
          inner_node: "conv2d1",
          path: [
            { node: "blk", block: "outer", repetition: 2, repeat: 2, label: "blk" },
            { node: "inner", block: "down", repetition: 1, repeat: 2, label: "inner" },
          ],
        },
      ],
    };
    const { nodeErrors } = indexResult({ nodes: [], edges: [] }, res);
    expect(nodeErrors["|blk"].map((e) => e.message)).toEqual([message]);
    expect(nodeErrors["down|conv2d1"].map((e) => e.message)).toEqual([message]);
    expect(nodeErrors["outer|inner"].map((e) => e.message)).toEqual([message]);
    expect(Object.keys(nodeErrors).sort()).toEqual(["down|conv2d1", "outer|inner", "|blk"].sort());
  });
});
