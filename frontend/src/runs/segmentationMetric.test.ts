import { describe, expect, it } from "vitest";
import { metricOf } from "./RunCharts";
import { metricText } from "./store";

describe("segmentation runs", () => {
  it("chart and name the mean IoU ahead of the pixel accuracy", () => {
    expect(metricOf([{ epoch: 1, val_accuracy: 0.97, val_miou: 0.91 }])?.key).toBe("val_miou");
    expect(metricOf([{ epoch: 1, val_accuracy: 0.97 }])?.key).toBe("val_accuracy");
    expect(metricText("val_miou", 0.91234)).toBe("mIoU 0.912");
  });
});
