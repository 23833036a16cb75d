import { describe, expect, it } from "vitest";
import { offersFreeze } from "../freezable";
import { serverCatalog } from "./serverCatalog";

describe("offersFreeze", () => {
  const cat = serverCatalog();
  it("is not offered on node types without parameters", () => {
    for (const t of ["ReLU", "Flatten", "MaxPool2d", "Dropout"]) expect(offersFreeze(cat.spec(t)), t).toBe(false);
  });
  it("is offered on layers with parameters, blocks and custom layers", () => {
    for (const t of ["Linear", "Conv2d", "BatchNorm2d", "PReLU", "Block", "CustomLayer", "Parameter"]) expect(offersFreeze(cat.spec(t)), t).toBe(true);
  });
  it("follows the node's inferred parameter count when known", () => {
    expect(offersFreeze(cat.spec("Block"), { num_params: 0 })).toBe(false);
    expect(offersFreeze(cat.spec("Block"), { num_params: 120 })).toBe(true);
  });
  it("is not offered for an unknown type", () => {
    expect(offersFreeze(undefined)).toBe(false);
  });
});
