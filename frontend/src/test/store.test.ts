import { beforeEach, describe, expect, it } from "vitest";
import { connectionProblem, nodePorts, reaches } from "../rules";
import { CLIPBOARD_FORMAT, useEditor } from "../store";
import type { GraphDocument } from "../doc";
import { example, pythonWith, serverCatalog } from "./serverCatalog";

const cat = serverCatalog();
const st = () => useEditor.getState();

function fresh() {
  useEditor.setState({ catalog: cat });
  st().load({ format: "torchloom.graph/1", name: "t", nodes: [], edges: [] });
}

function mlp() {
  const data = st().addNode("Dataset", { x: 0, y: 0 })!;
  const fc1 = st().addNode("Linear", { x: 200, y: 0 }, { out_features: 32 })!;
  const relu = st().addNode("ReLU", { x: 400, y: 0 })!;
  const fc2 = st().addNode("Linear", { x: 600, y: 0 }, { out_features: 10 })!;
  const loss = st().addNode("CrossEntropyLoss", { x: 800, y: 0 })!;
  const opt = st().addNode("Adam", { x: 1000, y: 0 })!;
  expect(st().connect({ source: data, sourceHandle: "x", target: fc1, targetHandle: "in" })).toBeNull();
  expect(st().connect({ source: fc1, sourceHandle: "out", target: relu, targetHandle: "in" })).toBeNull();
  expect(st().connect({ source: relu, sourceHandle: "out", target: fc2, targetHandle: "in" })).toBeNull();
  expect(st().connect({ source: fc2, sourceHandle: "out", target: loss, targetHandle: "input" })).toBeNull();
  expect(st().connect({ source: data, sourceHandle: "y", target: loss, targetHandle: "target" })).toBeNull();
  expect(st().connect({ source: loss, sourceHandle: "loss", target: opt, targetHandle: "loss" })).toBeNull();
  return { data, fc1, relu, fc2, loss, opt };
}

function validateOnServer(doc: GraphDocument): { ok: boolean; errors: { code: string; severity?: string }[] } {
  const code = `
import json, sys
from graph_compiler import analyze
from graph_compiler.document import parse_document
doc, problems = parse_document(sys.stdin.read())
assert doc is not None, problems
print(json.dumps(analyze(doc).to_json()))
`;
  const res = JSON.parse(pythonWith(code, JSON.stringify(doc)));
  // warnings (no Training node: defaults are used) are not errors
  return { ok: res.ok, errors: res.errors.filter((e: { severity?: string }) => e.severity !== "warning") };
}

beforeEach(fresh);

describe("store: add, connect, params", () => {
  it("adds nodes with unique ids and connects them", () => {
    const ids = mlp();
    expect(new Set(Object.values(ids)).size).toBe(6);
    expect(ids.fc1).toBe("linear1");
    expect(ids.fc2).toBe("linear2");
    expect(st().edges).toHaveLength(6);
    expect(st().nodes.filter((n) => n.selected).map((n) => n.id)).toEqual([ids.opt]);
  });

  it("builds a document the server validates", () => {
    mlp();
    const res = validateOnServer(st().document());
    expect(res.errors).toEqual([]);
    expect(res.ok).toBe(true);
  });

  it("updates, clears params and coalesces typing into one undo step", () => {
    const { fc1 } = mlp();
    const before = st().past.length;
    st().updateParam(fc1, "out_features", 6);
    st().updateParam(fc1, "out_features", 64);
    expect(st().past.length).toBe(before + 1);
    expect(st().nodes.find((n) => n.id === fc1)!.data.params.out_features).toBe(64);
    st().undo();
    expect(st().nodes.find((n) => n.id === fc1)!.data.params.out_features).toBe(32);
    st().updateParam(fc1, "bias", false);
    st().updateParam(fc1, "bias", undefined);
    expect("bias" in st().nodes.find((n) => n.id === fc1)!.data.params).toBe(false);
  });

  it("labels, freezes and renames", () => {
    const { fc1 } = mlp();
    st().setLabel(fc1, "hidden");
    st().setTrainable(fc1, false);
    st().rename("My net");
    const doc = st().document();
    const n = doc.nodes!.find((x) => x.id === fc1)!;
    expect(n.label).toBe("hidden");
    expect(n.trainable).toBe(false);
    expect(doc.name).toBe("My net");
  });
});

describe("connection rules", () => {
  it("refuses kind mismatches, cycles, a second edge into a single port, duplicates", () => {
    const ids = mlp();
    const p = (c: Parameters<typeof connectionProblem>[1]) => connectionProblem(cat, c, st().nodes, st().edges);
    // loss output into a tensor input
    expect(p({ source: ids.loss, sourceHandle: "loss", target: ids.relu, targetHandle: "in" })).toMatch(/loss output cannot feed a tensor/);
    // fc2 → fc1 would close a cycle (fc1 → relu → fc2); fc1 takes one input anyway, so use an Add
    const add = st().addNode("Add", { x: 0, y: 300 })!;
    expect(st().connect({ source: ids.fc1, sourceHandle: "out", target: add, targetHandle: "in" })).toBeNull();
    expect(st().connect({ source: ids.relu, sourceHandle: "out", target: add, targetHandle: "in" })).toBeNull(); // multi
    expect(p({ source: ids.fc1, sourceHandle: "out", target: add, targetHandle: "in" })).toBe("already connected");
    const fc3 = st().addNode("Linear", { x: 0, y: 500 }, { out_features: 4 })!;
    expect(st().connect({ source: add, sourceHandle: "out", target: fc3, targetHandle: "in" })).toBeNull();
    const add2 = st().addNode("Add", { x: 0, y: 700 })!;
    expect(st().connect({ source: fc3, sourceHandle: "out", target: add2, targetHandle: "in" })).toBeNull();
    expect(p({ source: add2, sourceHandle: "out", target: add, targetHandle: "in" })).toMatch(/cycle/);
    // single-input port already taken
    expect(p({ source: ids.data, sourceHandle: "x", target: ids.fc2, targetHandle: "in" })).toMatch(/takes one input/);
    // self loop, unknown port
    expect(p({ source: add, sourceHandle: "out", target: add, targetHandle: "in" })).toMatch(/itself/);
    expect(p({ source: ids.fc1, sourceHandle: "nope", target: add2, targetHandle: "in" })).toBe("unknown port");
    // optimizer → scheduler is fine
    const sched = st().addNode("StepLR", { x: 0, y: 900 })!;
    expect(p({ source: ids.opt, sourceHandle: "optimizer", target: sched, targetHandle: "optimizer" })).toBeNull();
  });

  it("reaches() follows edges", () => {
    const edges = [
      { source: "a", target: "b" },
      { source: "b", target: "c" },
    ];
    expect(reaches(edges, "a", "c")).toBe(true);
    expect(reaches(edges, "c", "a")).toBe(false);
  });
});

describe("undo / redo", () => {
  it("undoes and redoes adds, connects, deletes and moves", () => {
    const ids = mlp();
    const edges = st().edges.length;
    st().select([ids.relu]);
    st().deleteSelection();
    expect(st().nodes.find((n) => n.id === ids.relu)).toBeUndefined();
    expect(st().edges.length).toBe(edges - 2);
    st().undo();
    expect(st().nodes.find((n) => n.id === ids.relu)).toBeDefined();
    expect(st().edges.length).toBe(edges);
    st().redo();
    expect(st().nodes.find((n) => n.id === ids.relu)).toBeUndefined();
    st().undo();
    st().setPositions({ [ids.relu]: { x: 999, y: 5 } });
    expect(st().nodes.find((n) => n.id === ids.relu)!.position.x).toBe(999);
    st().undo();
    expect(st().nodes.find((n) => n.id === ids.relu)!.position.x).toBe(400);
    // a new edit clears the redo stack
    st().undo();
    expect(st().future.length).toBeGreaterThan(0);
    st().addNode("ReLU", { x: 0, y: 0 });
    expect(st().future.length).toBe(0);
  });

  it("every edit bumps rev; selection does not", () => {
    mlp();
    const rev = st().rev;
    st().select([st().nodes[0].id]);
    expect(st().rev).toBe(rev);
    st().updateParam(st().nodes[1].id, "out_features", 5);
    expect(st().rev).toBe(rev + 1);
  });
});

describe("copy / paste / duplicate", () => {
  it("copies the selection with its inner edges and pastes with fresh ids", () => {
    const ids = mlp();
    st().select([ids.fc1, ids.relu]);
    const text = st().copySelection()!;
    const data = JSON.parse(text);
    expect(data.format).toBe(CLIPBOARD_FORMAT);
    expect(data.nodes).toHaveLength(2);
    expect(data.edges).toHaveLength(1);
    const pasted = st().paste(text);
    expect(pasted).toHaveLength(2);
    expect(pasted).not.toContain(ids.fc1);
    expect(st().nodes.filter((n) => n.selected).map((n) => n.id).sort()).toEqual([...pasted].sort());
    expect(st().edges.some((e) => e.source === pasted[0] && e.target === pasted[1])).toBe(true);
    const moved = st().nodes.find((n) => n.id === pasted[0])!;
    expect(moved.position).toEqual({ x: 240, y: 40 });
    st().undo();
    expect(st().nodes.some((n) => pasted.includes(n.id))).toBe(false);
  });

  it("pastes between projects (a clipboard from another document) and ignores junk", () => {
    const ids = mlp();
    st().select([ids.fc1]);
    const text = st().copySelection()!;
    fresh();
    expect(st().paste("not json")).toEqual([]);
    expect(st().paste('{"nodes": 3}')).toEqual([]);
    expect(st().paste(text)).toEqual([ids.fc1]);
    expect(st().nodes[0].data.params.out_features).toBe(32);
  });

  it("duplicates", () => {
    const ids = mlp();
    st().select([ids.fc2]);
    const dup = st().duplicateSelection();
    expect(dup).toHaveLength(1);
    expect(st().nodes).toHaveLength(7);
  });
});

describe("blocks", () => {
  it("groups a selection into a block the server compiles, then opens and edits it", () => {
    const ids = mlp();
    st().select([ids.fc1, ids.relu]);
    const name = st().groupSelection()!;
    expect(name).toBe("Block");
    const doc = st().document();
    const block = doc.blocks![name];
    expect(block.nodes!.map((n) => n.type).sort()).toEqual(["Input", "Linear", "Output", "ReLU"]);
    const user = doc.nodes!.find((n) => n.type === "Block")!;
    expect(user.params).toEqual({ block: name, repeat: 1 });
    expect(doc.edges!.some((e) => e.target === user.id && e.target_port === "x")).toBe(true);
    expect(doc.edges!.some((e) => e.source === user.id && e.source_port === "out" && e.target === ids.fc2)).toBe(true);
    expect(validateOnServer(doc).errors).toEqual([]);
    // the block node's ports come from the definition held in the store
    const ports = nodePorts(cat, st().nodes.find((n) => n.id === user.id), st().blocks);
    expect(ports.inputs.map((p) => p.name)).toEqual(["x"]);
    expect(ports.outputs.map((p) => p.name)).toEqual(["out"]);

    // open the block, edit inside, close: the definition keeps the edit
    st().openBlock(name);
    expect(st().scope).toBe(name);
    const inner = st().nodes.find((n) => n.data.type === "Linear")!;
    st().updateParam(inner.id, "out_features", 48);
    st().closeBlock();
    expect(st().scope).toBeNull();
    const after = st().document();
    expect(after.blocks![name].nodes!.find((n) => n.id === inner.id)!.params!.out_features).toBe(48);
    // while open, the document still has the main graph
    st().openBlock(name);
    expect(st().document().nodes!.length).toBe(after.nodes!.length);
    st().closeBlock();

    // repeat count; undo the whole grouping
    st().updateParam(user.id, "repeat", 3);
    expect(st().document().nodes!.find((n) => n.id === user.id)!.params!.repeat).toBe(3);
    while (st().past.length && st().nodes.some((n) => n.data.type === "Block")) st().undo();
    expect(st().nodes.some((n) => n.id === ids.fc1)).toBe(true);
  });

  it("refuses to group nothing", () => {
    mlp();
    st().select([]);
    expect(st().groupSelection()).toBeNull();
  });
});

describe("document round trip", () => {
  for (const name of ["residual_cnn", "multitask_digits", "transformer_classifier", "digits_cnn"]) {
    it(`${name}: load → document equals the server's normalized document`, () => {
      const raw = example(name) as GraphDocument;
      st().load(raw);
      const ours = st().document();
      const code = `
import json, sys
from graph_compiler.document import parse_document
a, b = json.loads(sys.stdin.read())
da, pa = parse_document(a)
db, pb = parse_document(b)
assert da is not None and db is not None, (pa, pb)
print(json.dumps(da.to_json_dict() == db.to_json_dict()))
`;
      expect(JSON.parse(pythonWith(code, JSON.stringify([raw, ours])))).toBe(true);
    });
  }
});
