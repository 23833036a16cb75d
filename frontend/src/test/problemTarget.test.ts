import { describe, expect, it } from "vitest";
import { problemTarget } from "../problemTarget";

describe("problemTarget", () => {
  it("leads to the inner node of a failing block instance, in the innermost block", () => {
    const step = (node: string, block: string) => ({ node, block, repetition: 1, repeat: 2, label: node });
    expect(
      problemTarget({ code: "c", message: "m", node: "blk", field: null, inner_node: "conv2d1", path: [step("blk", "outer"), step("inner", "down")] }),
    ).toEqual({ node: "conv2d1", block: "down" });
  });
  it("leads to the node itself otherwise", () => {
    expect(problemTarget({ code: "c", message: "m", node: "fc", field: null, block: "Res" })).toEqual({ node: "fc", block: "Res" });
  });
});
