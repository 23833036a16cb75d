// The learning-rate chart follows "Log scale" with decade ticks (issue 14 bug 3).
import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { ChartProps } from "./Chart";
import { decadeSplits, logRange } from "./logAxis";

const seen: ChartProps[] = [];
vi.mock("./Chart", () => ({
  PALETTE: ["#000", "#111", "#222", "#333", "#444", "#555"],
  Chart: (p: ChartProps) => {
    seen.push(p);
    return null;
  },
}));

// the runs store as the charts read it (server rendering would only see its initial state)
const runsState = { smoothing: 0, logScale: false };
vi.mock("./store", () => ({
  useRuns: Object.assign((pick: (s: typeof runsState) => unknown) => pick(runsState), { setState: () => {} }),
}));

const { RunCharts } = await import("./RunCharts");

describe("log axis", () => {
  it("snaps the range to whole decades around a rate decaying 1e-4 → 1e-8", () => {
    expect(logRange(1e-8, 1e-4)).toEqual([1e-8, 1e-4]);
    expect(logRange(3e-8, 2e-4)).toEqual([1e-8, 1e-3]);
  });
  it("widens a constant rate to a decade either side; no data gives a default", () => {
    expect(logRange(1e-3, 1e-3)).toEqual([1e-4, 1e-2]);
    expect(logRange(null, null)).toEqual([0.1, 1]);
  });
  it("ticks every decade from 1e-8 to 1e-4, thinned when there are many", () => {
    expect(decadeSplits(1e-8, 1e-4)).toEqual([1e-8, 1e-7, 1e-6, 1e-5, 1e-4]);
    expect(decadeSplits(1e-12, 1)).toEqual([1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1]);
    expect(decadeSplits(0, 1)).toEqual([]);
  });
});

describe("run charts", () => {
  beforeEach(() => {
    seen.length = 0;
  });
  const rd = { id: "r", epochs: [], loss: {}, lr: {} } as never;
  it("the learning-rate chart follows Log scale like the loss charts", () => {
    for (const logScale of [true, false]) {
      seen.length = 0;
      runsState.logScale = logScale;
      renderToString(createElement(RunCharts, { rd }));
      const lr = seen.find((p) => p.testId === "chart-lr");
      expect(lr, "learning-rate chart rendered").toBeDefined();
      expect(!!lr!.logY).toBe(logScale);
      expect(!!seen.find((p) => p.testId === "chart-step-loss")!.logY).toBe(logScale);
    }
  });
});
