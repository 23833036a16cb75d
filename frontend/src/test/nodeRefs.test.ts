// A Linear whose weight is tied to an Embedding (catalog param with node_ref) shows the tie on
// the canvas: nodeRefs resolves the named node against the graph, by the catalog alone.
import { describe, expect, it } from "vitest";
import type { GNode } from "../doc";
import { nodeRefs } from "../nodeRefs";
import { serverCatalog } from "./serverCatalog";

const cat = serverCatalog();
const gnode = (id: string, type: string, label = ""): GNode => ({ id, type: "g", position: { x: 0, y: 0 }, data: { type, label, params: {}, trainable: true } }) as unknown as GNode;

describe("node references", () => {
  it("the catalog marks Linear.tie_weight as naming an Embedding", () => {
    const p = cat.spec("Linear")!.params.find((q) => q.name === "tie_weight")!;
    expect(p.node_ref).toBe("Embedding");
    expect(p.torch_arg).toBe(false);
  });

  it("names the tied Embedding by its label", () => {
    const nodes = [gnode("tok_emb", "Embedding", "token embedding"), gnode("head", "Linear")];
    const [ref] = nodeRefs(cat.spec("Linear")!, { out_features: 22, tie_weight: "tok_emb" }, nodes);
    expect(ref).toMatchObject({ param: "tie_weight", target: "tok_emb", label: "token embedding", text: "weight tied to token embedding" });
  });

  it("says when the named node is missing or not an Embedding, and nothing when untied", () => {
    const spec = cat.spec("Linear")!;
    const nodes = [gnode("fc1", "Linear")];
    expect(nodeRefs(spec, { tie_weight: "fc1" }, nodes)[0]).toMatchObject({ label: null, text: "weight tied to fc1 (no Embedding with that id)" });
    expect(nodeRefs(spec, { tie_weight: "" }, nodes)).toEqual([]);
    expect(nodeRefs(spec, { out_features: 3 }, nodes)).toEqual([]);
  });
});
