import { describe, expect, it } from "vitest";
import { serverCatalog } from "../test/serverCatalog";
import { drawingToInput, inputSpec, samplePixels } from "./Playground";
import { bestOf, overridesOf, statusOf } from "./store";
import { RunData } from "./rundata";
import type { RunRow } from "./types";

serverCatalog(); // the ink scales come with the catalog's rules (server/rules.py)

describe("playground input", () => {
  it("picks a drawing pad for images and the flat digits, a form for small tabular inputs", () => {
    expect(inputSpec(["B", 64], "digits").kind).toBe("image");
    expect(inputSpec(["B", 64], "digits").image).toEqual({ c: 1, h: 8, w: 8 });
    expect(inputSpec(["B", 1, 8, 8], "digits_images").image).toEqual({ c: 1, h: 8, w: 8 });
    expect(inputSpec(["B", 3, 32, 32], "file").kind).toBe("image");
    expect(inputSpec(["B", 4], "iris").kind).toBe("tabular");
    expect(inputSpec(["B", 32, 1], "sine_classify").kind).toBe("none");
    expect(inputSpec(["B", 16], "file", "int64").kind).toBe("none");
  });

  it("scales ink to the dataset's units and shapes it like the model's input", () => {
    const ink = [
      [0, 1],
      [0.5, 0],
    ];
    const flat = inputSpec(["B", 4], "digits");
    // 4 features is tabular for digits-like shapes other than 64; build an image spec by hand
    expect(drawingToInput(ink, { ...flat, kind: "image", image: { c: 1, h: 2, w: 2 }, shape: [4] })).toEqual([0, 16, 8, 0]);
    const img = inputSpec(["B", 1, 8, 8], "mnist");
    expect(img.scale).toBe(1);
    expect(drawingToInput(ink, { ...img, image: { c: 1, h: 2, w: 2 }, shape: [1, 2, 2] })).toEqual([ink]);
  });
});

describe("run settings and status", () => {
  it("sends only the overrides that are set", () => {
    expect(overridesOf({ epochs: "", batch_size: "", device: "", precision: "", fast_path: "", seed: "" })).toEqual({});
    expect(overridesOf({ epochs: "3", batch_size: "32", device: "cpu", precision: "bf16", fast_path: "off", seed: "7" })).toEqual({
      epochs: 3,
      batch_size: 32,
      device: "cpu",
      precision: "bf16",
      fast_path: false,
      seed: 7,
    });
  });

  it("shows the newer of the polled row and the run's own events", () => {
    const row = { status: "running", last_seq: 10 } as RunRow;
    const rd = new RunData("r");
    expect(statusOf(row, rd)).toBe("running");
    rd.apply([{ seq: 11, type: "stopped", run_id: "r", time: 0, data: {} }]);
    expect(statusOf(row, rd)).toBe("stopped");
    // resumed: the row says queued at the same last_seq as the stop event
    expect(statusOf({ status: "queued", last_seq: 11 } as RunRow, rd)).toBe("queued");
  });
});

describe("samplePixels", () => {
  const spec = inputSpec(["B", 1, 4, 4], "digits_images");
  it("scales the first channel to 0..1 for the thumbnail", () => {
    const rows = [[0, 8, 16, 4], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
    expect(samplePixels([rows], spec)?.slice(0, 4)).toEqual([0, 0.5, 1, 0.25]);
  });
  it("accepts the flat 8x8 digits and refuses a wrong size", () => {
    const flat = inputSpec(["B", 64], "digits");
    expect(samplePixels(Array.from({ length: 64 }, (_, i) => i), flat)?.length).toBe(64);
    expect(samplePixels([1, 2, 3], spec)).toBeNull();
  });
});

describe("best metric", () => {
  const epoch = (seq: number, data: Record<string, number>) => ({ seq, type: "epoch" as const, run_id: "r", time: 0, data: { epoch: seq, ...data } });
  it("ranks by the server's monitored metrics, the first one reported, in its direction", () => {
    const rd = new RunData("r");
    rd.apply([epoch(1, { val_loss: 0.9 }), epoch(2, { val_loss: 0.4 }), epoch(3, { val_loss: 0.6 })]);
    expect(bestOf(rd)).toEqual({ name: "val_loss", value: 0.4 }); // lower is better
    const acc = new RunData("r");
    acc.apply([epoch(1, { val_loss: 0.4, val_accuracy: 0.7 }), epoch(2, { val_loss: 0.3, val_accuracy: 0.6 })]);
    expect(bestOf(acc)).toEqual({ name: "val_accuracy", value: 0.7 }); // accuracy first, higher
  });
});
