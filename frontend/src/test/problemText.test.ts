// The train-blocked message names the node once (issue 14 bug 1).
import { describe, expect, it } from "vitest";
import { blockedText, messageWithoutNode, problemLine } from "../problemText";

const target = { node: "crossentropyloss1", message: "crossentropyloss1: input 'target' (tensor) is not connected" };

describe("problem text", () => {
  it("says the node id once when the server's message already starts with it", () => {
    expect(blockedText([target, { node: null, message: "the graph has no Dataset node" }])).toBe(
      "Fix 2 errors before training — crossentropyloss1: input 'target' (tensor) is not connected",
    );
  });
  it("adds the node (and block) when the message does not name it", () => {
    expect(problemLine({ node: "conv2d1", block: "block1", message: "kernel 9×9 is larger than the input" })).toBe(
      "block1 › conv2d1: kernel 9×9 is larger than the input",
    );
    expect(blockedText([{ node: null, message: "the graph has no Dataset node" }])).toBe(
      "Fix 1 error before training — graph: the graph has no Dataset node",
    );
  });
  it("only strips an exact '<node>: ' prefix", () => {
    expect(messageWithoutNode({ node: "linear1", message: "linear10: bad" })).toBe("linear10: bad");
    expect(messageWithoutNode(target)).toBe("input 'target' (tensor) is not connected");
  });
});
