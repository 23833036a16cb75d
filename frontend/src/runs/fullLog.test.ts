import { describe, expect, it } from "vitest";
import { cutNotice, fetchLogEvents, logText, visibleLog } from "./fullLog";
import { RunData } from "./rundata";
import type { RunEvent } from "./types";

const logEvent = (seq: number): RunEvent => ({ run_id: "r", seq, type: "log", time: seq, data: { message: `line ${seq}` } }) as RunEvent;

describe("the run log console", () => {
  it("says how many earlier lines it leaves out, those the browser dropped included", () => {
    const rd = new RunData("r");
    rd.apply(Array.from({ length: 2600 }, (_, i) => logEvent(i + 1)));
    expect(rd.log.length).toBe(2000);
    expect(rd.logDropped).toBe(600);
    const { lines, cut } = visibleLog(rd.log, rd.logDropped);
    expect(lines.length).toBe(500);
    expect(lines[0].text).toBe("line 2101");
    expect(cut).toBe(2100);
    expect(cutNotice(cut)).toBe("2100 earlier lines are not shown");
    expect(cutNotice(1)).toBe("1 earlier line is not shown");
  });
  it("cuts nothing from a short log", () => {
    const rd = new RunData("r");
    rd.apply([logEvent(1), logEvent(2)]);
    expect(visibleLog(rd.log, rd.logDropped)).toEqual({ lines: rd.log, cut: 0 });
  });
});

describe("the full log download", () => {
  it("pages through the stored events and keeps every line", async () => {
    const events = Array.from({ length: 2500 }, (_, i) => logEvent(i + 1));
    const asked: number[] = [];
    const got = await fetchLogEvents(async (after) => {
      asked.push(after);
      const page = events.filter((e) => e.seq > after).slice(0, 1000);
      return { events: page, next_after: page.length === 1000 ? page[page.length - 1].seq : null };
    });
    expect(asked).toEqual([0, 1000, 2000]);
    const text = logText("r", got).trimEnd().split("\n");
    expect(text.length).toBe(2500);
    expect(text[0]).toMatch(/ info {2}line 1$/);
    expect(text[2499]).toMatch(/line 2500$/);
  });
});
