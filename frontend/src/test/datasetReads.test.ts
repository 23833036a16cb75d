import { describe, expect, it } from "vitest";
import { staleReadOptions } from "../datasetReads";

const upload = {
  id: "0123456789abcdef",
  name: "corpus.txt",
  dataset_params: { source: "file", dataset_id: "0123456789abcdef", tokenizer: "byte", block_size: 10, vocab_size: 256 },
};

describe("staleReadOptions", () => {
  it("is empty while the node reads the upload as it was read", () => {
    expect(staleReadOptions({ ...upload.dataset_params }, upload)).toEqual({});
    expect(staleReadOptions({ tokenizer: "byte", block_size: "10" }, upload)).toEqual({});
  });
  it("lists the read options the node changed, as form values", () => {
    expect(staleReadOptions({ tokenizer: "char", block_size: 16, vocab_size: 256 }, upload)).toEqual({ tokenizer: "char", block_size: "16" });
    expect(staleReadOptions({ text_column: "review" }, upload)).toEqual({ text_column: "review" });
  });
  it("ignores unset options, other params and nodes without an upload", () => {
    expect(staleReadOptions({ tokenizer: "", block_size: null, epochs: 3 }, upload)).toEqual({});
    expect(staleReadOptions({ tokenizer: "char" }, undefined)).toEqual({});
    expect(staleReadOptions({ tokenizer: "char" }, { id: "x", name: "x" })).toEqual({});
  });
});
