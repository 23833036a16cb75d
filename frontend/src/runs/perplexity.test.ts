// A language model's epochs carry val_perplexity (and token accuracy as val_accuracy): the log
// line and the metric text name it, and the run panel charts and shows it (not the accuracy).
import { describe, expect, it } from "vitest";
import { metricOf } from "./RunCharts";
import { RunData } from "./rundata";
import { metricText } from "./store";
import type { RunEvent } from "./types";

describe("perplexity", () => {
  it("is named in the epoch's log line", () => {
    const rd = new RunData("r");
    const e: RunEvent = { seq: 1, type: "epoch", run_id: "r", time: 1, data: { epoch: 1, train_loss: 1.2, val_loss: 0.9, val_accuracy: 0.61, val_perplexity: 2.4596 } };
    rd.apply([e]);
    expect(rd.epochs[0].val_perplexity).toBe(2.4596);
    const line = rd.log[rd.log.length - 1].text;
    expect(line).toContain("val acc 61.00%");
    expect(line).toContain("perplexity 2.46");
  });

  it("reads as perplexity, not as a percentage", () => {
    expect(metricText("val_perplexity", 2.4596)).toBe("perplexity 2.460");
    expect(metricText("val_accuracy", 0.5)).toBe("50.0% accuracy");
  });

  it("is the run panel's validation figure, ahead of the token accuracy", () => {
    const lm = metricOf([{ epoch: 1, val_accuracy: 0.2, val_perplexity: 14.21 }]);
    expect(lm).toEqual({ key: "val_perplexity", label: "validation perplexity", pct: false });
    expect(metricOf([{ epoch: 1, val_accuracy: 0.9 }])?.key).toBe("val_accuracy");
  });
});
