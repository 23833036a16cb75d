import { describe, expect, it } from "vitest";
import { serverCatalog } from "../test/serverCatalog";
import { genReducer, genRequest, initialGen, isRunning, type GenAction, type GenState } from "./generation";
import { inputSpec } from "./Playground";

serverCatalog();

const run = (actions: GenAction[], from: GenState = initialGen) => actions.reduce(genReducer, from);
const form = { prompt: "the ", temperature: "0.8", topK: "", maxNewTokens: "50", seed: "3" };

describe("generation state", () => {
  it("streams the pieces of its own generation into the text and ends done", () => {
    const s = run([{ type: "start", prompt: "ab" }, { type: "started", id: "g1" }, { type: "piece", id: "g1", text: "c" }, { type: "piece", id: "g1", text: "de" }]);
    expect(s).toMatchObject({ status: "streaming", id: "g1", prompt: "ab", text: "cde" });
    expect(isRunning(s)).toBe(true);
    const done = genReducer(s, { type: "end", id: "g1", reason: "done" });
    expect(done).toMatchObject({ status: "done", text: "cde", error: null });
    expect(isRunning(done)).toBe(false);
  });

  it("keeps pieces and an end that arrive before the start's reply, for the id it names", () => {
    const early = run([{ type: "start", prompt: "a" }, { type: "piece", id: "old", text: "zz" }, { type: "piece", id: "g", text: "b" }, { type: "end", id: "g", reason: "error", error: "bad prompt" }]);
    expect(early).toMatchObject({ status: "starting", text: "" });
    expect(genReducer(early, { type: "started", id: "g" })).toMatchObject({ status: "error", id: "g", text: "b", error: "bad prompt", early: [] });
  });

  it("ignores pieces and ends of another generation (superseded or stopped)", () => {
    const s = run([{ type: "start", prompt: "a" }, { type: "started", id: "new" }, { type: "piece", id: "old", text: "zzz" }, { type: "end", id: "old", reason: "stopped" }]);
    expect(s).toMatchObject({ status: "streaming", id: "new", text: "" });
  });

  it("a new start clears the text and the error, and a late reply to an old start is dropped", () => {
    const failed = run([{ type: "start", prompt: "a" }, { type: "started", id: "g1" }, { type: "piece", id: "g1", text: "x" }, { type: "end", id: "g1", reason: "error", error: "boom" }]);
    expect(failed).toMatchObject({ status: "error", error: "boom", text: "x" });
    const again = genReducer(failed, { type: "start", prompt: "b" });
    expect(again).toMatchObject({ status: "starting", text: "", error: null, id: null });
    expect(genReducer(failed, { type: "started", id: "late" })).toBe(failed);
  });

  it("stop: stopping until the server's end, and pieces sampled meanwhile still count", () => {
    const s = run([{ type: "start", prompt: "a" }, { type: "started", id: "g" }, { type: "stop" }, { type: "piece", id: "g", text: "q" }]);
    expect(s).toMatchObject({ status: "stopping", text: "q" });
    expect(genReducer(s, { type: "end", id: "g", reason: "stopped" }).status).toBe("stopped");
    expect(genReducer(initialGen, { type: "stop" })).toBe(initialGen);
  });

  it("a lost connection ends a running generation with a notice, and nothing else", () => {
    const s = run([{ type: "start", prompt: "a" }, { type: "started", id: "g" }, { type: "piece", id: "g", text: "b" }, { type: "lost" }]);
    expect(s).toMatchObject({ status: "error", text: "b", error: expect.stringContaining("connection") });
    const done = run([{ type: "end", id: "g", reason: "done" }], { ...s, status: "streaming", error: null });
    expect(genReducer(done, { type: "lost" })).toBe(done);
    expect(genReducer({ ...initialGen, status: "starting" }, { type: "lost" }).status).toBe("error");
  });

  it("a refused start shows the server's reason", () => {
    const s = run([{ type: "start", prompt: "a" }, { type: "refused", error: "run r is not a language-model run" }]);
    expect(s).toMatchObject({ status: "error", error: "run r is not a language-model run" });
  });
});

describe("generate request from the form", () => {
  it("sends numbers, an empty top-k as no limit", () => {
    expect(genRequest(form)).toEqual({ prompt: "the ", temperature: 0.8, top_k: null, max_new_tokens: 50, seed: 3 });
    expect(genRequest({ ...form, topK: "5", temperature: "0" })).toMatchObject({ top_k: 5, temperature: 0 });
  });

  it("names the field that is wrong", () => {
    expect(genRequest({ ...form, prompt: "" })).toEqual({ error: expect.stringContaining("prompt") });
    expect(genRequest({ ...form, temperature: "-1" })).toEqual({ error: expect.stringContaining("Temperature") });
    expect(genRequest({ ...form, topK: "1.5" })).toEqual({ error: expect.stringContaining("Top-k") });
    expect(genRequest({ ...form, maxNewTokens: "0" })).toEqual({ error: expect.stringContaining("Max new tokens") });
    expect(genRequest({ ...form, seed: "x" })).toEqual({ error: expect.stringContaining("Seed") });
  });
});

describe("which runs get the generate panel", () => {
  it("token ids with next ids of the same shape as targets: a language model", () => {
    expect(inputSpec(["B", 64], "markov_text", "int64", { shape: ["B", 64], dtype: "int64" }).kind).toBe("text");
    expect(inputSpec(["B", 64], "file", "int64", { shape: ["B"], dtype: "int64" }).kind).toBe("none");
    expect(inputSpec(["B", 4], "iris", "float32", { shape: ["B", 4], dtype: "int64" }).kind).toBe("tabular");
  });
});
