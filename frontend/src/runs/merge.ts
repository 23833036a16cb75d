// The event stream of one run, merged from the server's replay and its live messages.
//
// The server stores every event before it emits it, and `subscribe {run_id, after}` replies with
// every stored event after `after` (it joins the room first, so live messages can arrive before
// that reply). The client therefore:
//   - holds live events while a replay is outstanding and applies them after the reply;
//   - drops anything at or below the last sequence number it holds (duplicates);
//   - treats a jump past last + 1 as a gap (a lost message, a truncated replay) and asks for a
//     new replay from the last sequence it holds.
// The result is every event exactly once, in order, with no gaps.
import type { RunEvent } from "./types";

export type FeedResult = "ok" | "resubscribe";

export class EventStream {
  /** highest sequence number applied */
  last = 0;
  /** a replay is outstanding: live events wait in `held` */
  holding = false;
  /** identifies the outstanding replay (a stale reply is ignored) */
  token = 0;
  private held: RunEvent[] = [];

  constructor(private readonly apply: (events: RunEvent[]) => void) {}

  /** A replay from `last` is being requested: returns its token and the `after` to send. */
  request(): { token: number; after: number } {
    this.holding = true;
    this.held = [];
    this.token += 1;
    return { token: this.token, after: this.last };
  }

  /** The replay's events. `truncated`: the server returned as many as its limit (ask again). */
  reply(token: number, events: RunEvent[], truncated = false): FeedResult {
    if (token !== this.token || !this.holding) return "ok"; // an older request's reply
    this.holding = false;
    const held = this.held;
    this.held = [];
    // a replay is what the server stored after `last`: authoritative, taken whole (a hole in
    // it cannot be filled by asking again)
    this.take(events, false);
    if (truncated) return "resubscribe";
    return this.live(held);
  }

  /** Live events (one message). */
  live(events: RunEvent[]): FeedResult {
    if (this.holding) {
      this.held.push(...events);
      return "ok";
    }
    return this.take(events, true) ? "resubscribe" : "ok";
  }

  /** Forget everything (the run was deleted or is loaded again from scratch). */
  reset(): void {
    this.last = 0;
    this.holding = false;
    this.held = [];
    this.token += 1;
  }

  /** Apply the new events (strict: only the contiguous run after `last`); true when a gap
   * stopped it. */
  private take(events: RunEvent[], strict: boolean): boolean {
    if (!events.length) return false;
    const sorted = events.length > 1 && !isSorted(events) ? [...events].sort((a, b) => a.seq - b.seq) : events;
    const fresh: RunEvent[] = [];
    let last = this.last;
    let gap = false;
    for (const e of sorted) {
      if (e.seq <= last) continue; // a duplicate
      if (strict && e.seq !== last + 1) {
        gap = true;
        break;
      }
      fresh.push(e);
      last = e.seq;
    }
    if (fresh.length) {
      this.last = last;
      this.apply(fresh);
    }
    return gap;
  }
}

function isSorted(events: RunEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i].seq < events[i - 1].seq) return false;
  return true;
}
