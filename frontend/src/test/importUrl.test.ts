import { describe, expect, it } from "vitest";
import { importUrl } from "../importUrl";

describe("importUrl", () => {
  it("sends the file name, encoded, so a nameless document is named after its file", () => {
    expect(importUrl("my net & co.json")).toBe("/api/projects/import?filename=my%20net%20%26%20co.json");
  });
  it("has no query without a file name", () => {
    expect(importUrl()).toBe("/api/projects/import");
    expect(importUrl("")).toBe("/api/projects/import");
  });
});
