import { describe, expect, it } from "vitest";
import { checkParam, datasetPickers, paramListed, paramText, paramVisible, parseParamText, portsOf, shapeLabel } from "../catalog";
import { pythonWith, serverCatalog } from "./serverCatalog";

const cat = serverCatalog();
const param = (type: string, name: string) => cat.spec(type)!.params.find((p) => p.name === name)!;

describe("catalog-derived param checks", () => {
  it("agrees with the server's Param.check on many values", () => {
    const cases: [string, string, unknown][] = [];
    const samples: unknown[] = [0, 1, -1, 2.5, 3, 1e9, "same", "x", true, null, [1, 2], [3], [1, 2, 3], [], [1.5, 2], [0, 0]];
    for (const spec of cat.json.nodes) {
      for (const p of spec.params) {
        if (p.kind === "json" || p.kind === "code") continue;
        for (const v of samples) cases.push([spec.type, p.name, v]);
      }
    }
    const code = `
import json, sys
from graph_compiler.catalog import CATALOG
out = []
for t, name, v in json.load(sys.stdin):
    p = next(p for p in CATALOG[t].params if p.name == name)
    out.append(p.check(v)[1] is None)
print(json.dumps(out))
`;
    const server: boolean[] = JSON.parse(pythonWith(code, JSON.stringify(cases)));
    const mismatches = cases.filter(([t, n, v], i) => (checkParam(param(t, n), v) === null) !== server[i]);
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(cases.length).toBeGreaterThan(1000);
  });

  it("reports required params and ranges in the server's words", () => {
    expect(checkParam(param("Linear", "out_features"), undefined)).toBe("required");
    expect(checkParam(param("Linear", "out_features"), 0)).toMatch(/must be >= 1/);
    expect(checkParam(param("Linear", "out_features"), 2.5)).toMatch(/integer/);
    expect(checkParam(param("Conv2d", "kernel_size"), [3, 3, 3])).toMatch(/expected 2 values/);
    expect(checkParam(param("Conv2d", "padding"), "same")).toBeNull();
    expect(checkParam(param("Dropout", "p"), 1.5)).toMatch(/must be <= 1/);
  });

  it("parses and prints the text fields", () => {
    const k = param("Conv2d", "kernel_size");
    expect(parseParamText(k, "3")).toBe(3);
    expect(parseParamText(k, "3, 5")).toEqual([3, 5]);
    expect(parseParamText(k, "(3, 5)")).toEqual([3, 5]);
    expect(parseParamText(param("Conv2d", "padding"), "same")).toBe("same");
    expect(parseParamText(param("Linear", "out_features"), "")).toBeUndefined();
    expect(parseParamText(param("Linear", "out_features"), "abc")).toBe("abc");
    expect(paramText(k, [3, 5])).toBe("3, 5");
    expect(shapeLabel(["B", 64, 14, 14])).toBe("B×64×14×14");
    expect(shapeLabel([])).toBe("scalar");
  });

  it("follows visible_if", () => {
    const ds = cat.spec("Dataset")!;
    const samples = ds.params.find((p) => p.name === "samples")!;
    expect(paramVisible(samples, { source: "digits" }, ds)).toBe(false);
    expect(paramVisible(samples, { source: "moons" }, ds)).toBe(true);
  });

  it("derives dynamic ports like the server", () => {
    const chunk = cat.spec("Chunk")!;
    expect(portsOf(chunk, { chunks: 3 }).outputs.map((p) => p.name)).toEqual(["out0", "out1", "out2"]);
    const split = cat.spec("Split")!;
    expect(portsOf(split, { split_sizes: [1, 2, 3, 4] }).outputs).toHaveLength(4);
    const custom = cat.spec("CustomLayer")!;
    expect(portsOf(custom, { inputs: ["a", "b"] }).inputs.map((p) => p.name)).toEqual(["a", "b"]);
    const block = cat.spec("Block")!;
    const blocks = { B: { nodes: [{ id: "x", type: "Input" }, { id: "y", type: "Output" }, { id: "fc", type: "Linear" }] } };
    const ports = portsOf(block, { block: "B" }, blocks);
    expect(ports.inputs.map((p) => p.name)).toEqual(["x"]);
    expect(ports.outputs.map((p) => p.name)).toEqual(["y"]);
    expect(portsOf(block, { block: "missing" }, blocks).inputs).toEqual([]);
  });

  it("searches type, doc and keywords", () => {
    expect(cat.search("dense")[0].type).toBe("Linear");
    expect(cat.search("conv2d")[0].type).toBe("Conv2d");
    expect(cat.search("zzzz")).toEqual([]);
  });
});

describe("file params (issue 11: no path from the client)", () => {
  const data = cat.spec("Dataset")!;
  it("offers every dataset-id param of the catalog as a picker of uploads", () => {
    expect(datasetPickers(data).map((p) => p.name)).toEqual(["dataset_id", "val_dataset_id"]);
  });
  it("never lists a dataset id as free text, and a local path only while it is set", () => {
    const listed = (params: Record<string, unknown>) => data.params.filter((p) => paramListed(p, params, data)).map((p) => p.name);
    const file = listed({ source: "file" });
    expect(file).not.toContain("dataset_id");
    expect(file).not.toContain("val_dataset_id");
    expect(file).not.toContain("path");
    expect(file).not.toContain("val_path");
    expect(listed({ source: "file", val_path: "/etc/x.csv" })).toContain("val_path");
    expect(listed({ source: "digits" })).not.toContain("target_column");
  });
});
