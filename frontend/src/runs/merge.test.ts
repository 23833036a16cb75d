import { describe, expect, it } from "vitest";
import { EventStream } from "./merge";
import type { RunEvent } from "./types";

const ev = (seq: number, type = "step"): RunEvent => ({ type, run_id: "r", seq, time: seq, data: { step: seq, loss: 1 / seq } });
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => ev(a + i));

function collect() {
  const got: number[] = [];
  const s = new EventStream((events) => got.push(...events.map((e) => e.seq)));
  return { s, got };
}

describe("EventStream", () => {
  it("applies a replay, then live events, each once and in order", () => {
    const { s, got } = collect();
    const { token, after } = s.request();
    expect(after).toBe(0);
    expect(s.reply(token, range(1, 5))).toBe("ok");
    expect(s.live(range(6, 8))).toBe("ok");
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(s.last).toBe(8);
  });

  it("holds live events that arrive before the replay reply, and drops the overlap", () => {
    const { s, got } = collect();
    const { token } = s.request();
    // joined the room first: live 4..7 arrive before the reply that has 1..5
    expect(s.live(range(4, 6))).toBe("ok");
    expect(s.live(range(7, 7))).toBe("ok");
    expect(got).toEqual([]);
    expect(s.reply(token, range(1, 5))).toBe("ok");
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("drops duplicates and re-ordered old events from live messages", () => {
    const { s, got } = collect();
    const { token } = s.request();
    s.reply(token, range(1, 3));
    s.live([ev(2), ev(3), ev(4)]);
    s.live([ev(5), ev(4)]);
    expect(got).toEqual([1, 2, 3, 4, 5]);
  });

  it("detects a gap in live events and resubscribes from the last held sequence", () => {
    const { s, got } = collect();
    let r = s.request();
    s.reply(r.token, range(1, 3));
    expect(s.live(range(6, 7))).toBe("resubscribe"); // 4, 5 lost
    expect(got).toEqual([1, 2, 3]);
    r = s.request();
    expect(r.after).toBe(3);
    s.live(range(8, 9)); // held until the reply
    expect(s.reply(r.token, range(4, 8))).toBe("ok");
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("reconnect: a new request ignores the old reply and replays from the last sequence", () => {
    const { s, got } = collect();
    const first = s.request();
    s.reply(first.token, range(1, 10));
    s.live(range(11, 12));
    // connection lost: 13..20 were emitted meanwhile; reconnect asks again
    const again = s.request();
    expect(again.after).toBe(12);
    expect(s.reply(first.token, range(1, 30))).toBe("ok"); // stale reply: ignored
    expect(got.length).toBe(12);
    s.live(range(19, 22));
    expect(s.reply(again.token, range(13, 20))).toBe("ok");
    expect(got).toEqual(range(1, 22).map((e) => e.seq));
  });

  it("asks again when the replay was truncated at the server's limit", () => {
    const { s, got } = collect();
    const r = s.request();
    expect(s.reply(r.token, range(1, 4), true)).toBe("resubscribe");
    const r2 = s.request();
    expect(r2.after).toBe(4);
    s.reply(r2.token, range(5, 6));
    expect(got).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("accepts a hole in a replay (what the server stored is authoritative)", () => {
    const { s, got } = collect();
    const r = s.request();
    expect(s.reply(r.token, [ev(1), ev(2), ev(4)])).toBe("ok");
    expect(s.live([ev(5)])).toBe("ok");
    expect(got).toEqual([1, 2, 4, 5]);
  });

  it("a gap among held events after the reply triggers a resubscribe", () => {
    const { s } = collect();
    const r = s.request();
    s.live(range(9, 10));
    expect(s.reply(r.token, range(1, 5))).toBe("resubscribe");
    expect(s.last).toBe(5);
  });

  it("interleaved random delivery yields every event exactly once", () => {
    for (let trial = 0; trial < 50; trial++) {
      const { s, got } = collect();
      const total = 200;
      let rng = trial * 7919 + 1;
      const rand = () => ((rng = (rng * 48271) % 2147483647) / 2147483647);
      let stored = 0;
      let r = s.request();
      let pendingReply: { token: number; after: number } | null = r;
      while (stored < total || pendingReply) {
        const x = rand();
        if (x < 0.6 && stored < total) {
          // the server stores a batch and emits it; some messages are lost
          const n = 1 + Math.floor(rand() * 5);
          const batch = range(stored + 1, Math.min(total, stored + n));
          stored += batch.length;
          if (rand() > 0.15 && s.live(batch) === "resubscribe") pendingReply = s.request();
        } else if (pendingReply) {
          const res = s.reply(pendingReply.token, range(pendingReply.after + 1, stored));
          pendingReply = res === "resubscribe" ? s.request() : null;
        } else if (x > 0.95) {
          pendingReply = s.request(); // a reconnect
        }
        r = pendingReply ?? r;
      }
      // a final reconnect brings the tail in
      const last = s.request();
      s.reply(last.token, range(last.after + 1, total));
      expect(got).toEqual(range(1, total).map((e) => e.seq));
    }
  });
});
