import { describe, expect, it } from "vitest";
import { hasTokens, tokenCells, tokenSummary, visible } from "../tokenPreview";

describe("token previews", () => {
  const sample = { x: [7, 3, 9, 0, 0], y: 1, label: "pos", text: "a b", tokens: ["a", " ", "b", "<pad>", "<pad>"] };

  it("pairs each token's text with its id and marks padding", () => {
    expect(hasTokens(sample)).toBe(true);
    expect(tokenCells(sample, 0)).toEqual([
      { text: "a", id: 7, pad: false },
      { text: "␣", id: 3, pad: false },
      { text: "b", id: 9, pad: false },
      { text: "<pad>", id: 0, pad: true },
      { text: "<pad>", id: 0, pad: true },
    ]);
    expect(tokenCells(sample, null, 2).map((c) => c.pad)).toEqual([false, false]);
  });

  it("shows whitespace and sums up token data only", () => {
    expect(visible("x\n\ty ")).toBe("x↵⇥y␣");
    expect(hasTokens({ x: [1, 2], y: 0 })).toBe(false);
    expect(tokenSummary({ x_dtype: "int64", vocab_size: 1234, tokenizer: "bpe", pad_id: 0 })).toBe(
      "1,234 token ids · bpe tokenizer · pad id 0",
    );
    expect(tokenSummary({ x_dtype: "float32", vocab_size: 10 })).toBe("");
  });
});
