import { describe, expect, it } from "vitest";
import { RunData } from "./rundata";
import { fmtNum } from "./format";
import { Series, Smoother, smooth, thin } from "./series";
import type { RunEvent } from "./types";

describe("Series", () => {
  it("grows past its capacity and exposes views of the filled part", () => {
    const s = new Series(2);
    for (let i = 1; i <= 100; i++) s.push(i, i * 2);
    expect(s.length).toBe(100);
    expect(Array.from(s.x().slice(0, 3))).toEqual([1, 2, 3]);
    expect(s.y()[99]).toBe(200);
    expect(s.lastX()).toBe(100);
  });

  it("a repeated x drops the points from it on (a resumed timeline replaces them)", () => {
    const s = new Series(4);
    for (let i = 1; i <= 10; i++) s.push(i, i);
    const gen = s.generation;
    s.push(7, 70);
    expect(Array.from(s.x())).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(s.lastY()).toBe(70);
    expect(s.generation).toBe(gen + 1);
  });
});

describe("smoothing", () => {
  it("weight 0 leaves values unchanged; the debiased EMA starts at the first value", () => {
    expect(Array.from(smooth([1, 2, 3], 0))).toEqual([1, 2, 3]);
    const out = smooth([4, 4, 4, 4], 0.9);
    for (const v of out) expect(v).toBeCloseTo(4, 12);
    const r = smooth([0, 10], 0.5);
    expect(r[0]).toBe(0);
    // ema1 = 0.5*0 + 0.5*10 with ema0 = 0.5*0 → (0.25*0 + 0.5*10)/(1-0.25)
    expect(r[1]).toBeCloseTo(5 / 0.75, 12);
  });

  it("skips non-finite values", () => {
    const r = smooth([1, NaN, 1], 0.5);
    expect(r[0]).toBe(1);
    expect(Number.isNaN(r[1])).toBe(true);
    expect(r[2]).toBeCloseTo(1, 12);
  });

  it("the incremental smoother equals a full recompute, across appends, truncation and weight changes", () => {
    const s = new Series(8);
    const sm = new Smoother();
    const check = (w: number) => expect(Array.from(sm.values(s, w))).toEqual(Array.from(smooth(s.y(), w)));
    for (let i = 1; i <= 50; i++) {
      s.push(i, Math.sin(i) + 2);
      if (i % 7 === 0) check(0.8);
    }
    check(0.8);
    check(0.3);
    s.push(20, 9); // truncation
    s.push(21, 8);
    check(0.3);
    for (let i = 22; i <= 60; i++) s.push(i, 1 / i);
    check(0.3);
  });

  it("thin keeps the ends and at most max points", () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i);
    const [tx, ty] = thin(xs, xs, 100);
    expect(tx.length).toBe(100);
    expect(tx[0]).toBe(0);
    expect(tx[99]).toBe(999);
    expect(ty).toEqual(tx);
  });
});

describe("RunData", () => {
  const e = (seq: number, type: string, data: Record<string, unknown>): RunEvent => ({ seq, type, data, run_id: "r", time: 1000 + seq });
  it("turns events into series, epochs, status, progress and log", () => {
    const rd = new RunData("r");
    rd.apply([e(1, "run_started", { device: "cpu", device_name: "cpu", precision: "fp32", epochs: 2, steps_per_epoch: 3, batch_size: 8, params: 10 })]);
    expect(rd.eventStatus).toBe("running");
    expect(rd.totalSteps).toBe(6);
    rd.apply([1, 2, 3].map((i) => e(1 + i, "step", { epoch: 1, step: i, loss: 3 - i * 0.5, lr: 0.1 })));
    rd.apply([e(5, "epoch", { epoch: 1, train_loss: 2, val_loss: 1.5, val_accuracy: 0.5, samples_per_s: 100, peak_memory_mb: 5, steps: 3 })]);
    rd.apply([e(6, "step", { epoch: 2, step: 4, loss: 1, lr: 0.05 })]);
    expect(Array.from(rd.loss.x())).toEqual([1, 2, 3, 4]);
    expect(Array.from(rd.lr.y())).toEqual([0.1, 0.1, 0.1, 0.05]);
    expect(rd.epochs.map((p) => p.val_accuracy)).toEqual([0.5]);
    expect(rd.step).toBe(4);
    expect(rd.currentEpoch).toBe(2);
    expect(rd.stepRate()).toBeCloseTo(3 / 4, 6); // steps 1..4 over event times 1002..1006
    expect(rd.eta()).toBeCloseTo(2 / 0.75, 6);
    rd.apply([e(7, "stopped", { epoch: 2, step: 4 })]);
    expect(rd.eventStatus).toBe("stopped");
    expect(rd.eventStatusSeq).toBe(7);
    // resumed: a new run_started, then steps continue
    rd.apply([e(8, "run_started", { epochs: 2, steps_per_epoch: 3, resumed_from: "/x/ckpt.pt" }), e(9, "step", { epoch: 2, step: 5, loss: 0.9 }), e(10, "failed", { reason: "boom", code: "x" })]);
    expect(rd.eventStatus).toBe("failed");
    expect(rd.reason).toBe("boom");
    expect(rd.log.some((l) => l.text.includes("resumed from ckpt.pt"))).toBe(true);
    expect(rd.log[rd.log.length - 1].level).toBe("error");
  });

  it("is fed through its EventStream exactly once per sequence", () => {
    const rd = new RunData("r");
    const r = rd.stream.request();
    rd.stream.live([e(3, "step", { step: 2, loss: 1 })]);
    rd.stream.reply(r.token, [e(1, "run_started", { epochs: 1, steps_per_epoch: 2 }), e(2, "step", { step: 1, loss: 2 }), e(3, "step", { step: 2, loss: 1 })]);
    expect(Array.from(rd.loss.x())).toEqual([1, 2]);
    expect(rd.version).toBe(1);
  });
});

describe("axis numbers", () => {
  it("are compact", () => {
    expect(fmtNum(20000)).toBe("20k");
    expect(fmtNum(1500000)).toBe("1.5M");
    expect(fmtNum(0.002)).toBe("2e-3");
    expect(fmtNum(0.0015)).toBe("1.5e-3");
    expect(fmtNum(0.25)).toBe("0.25");
    expect(fmtNum(350)).toBe("350");
  });
});
