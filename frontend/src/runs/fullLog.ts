// The run log as the console shows it keeps only the last lines; these say how many earlier
// lines were cut and build the full log (every stored event but the steps) for download.
import type { LogLine } from "./rundata";
import { RunData } from "./rundata";
import type { RunEvent } from "./types";

export const SHOWN_LINES = 500;

/** The lines the console shows and how many earlier ones it leaves out (dropped included). */
export function visibleLog(log: LogLine[], dropped: number, shown = SHOWN_LINES): { lines: LogLine[]; cut: number } {
  const extra = Math.max(0, log.length - shown);
  return { lines: extra ? log.slice(-shown) : log, cut: dropped + extra };
}

export function cutNotice(cut: number): string {
  return `${cut} earlier line${cut === 1 ? " is" : "s are"} not shown`;
}

/** The log text of these events, one line each, as the console words them, nothing cut. */
export function logText(runId: string, events: RunEvent[]): string {
  const rd = new RunData(runId, Infinity);
  rd.apply(events);
  return rd.log.map((l) => `${new Date(l.time * 1000).toISOString()} ${l.level.padEnd(5)} ${l.text}\n`).join("");
}

/** Every stored event but the steps, page by page (the server pages at `limit`). */
export async function fetchLogEvents(
  page: (after: number) => Promise<{ events: RunEvent[]; next_after: number | null }>,
): Promise<RunEvent[]> {
  const all: RunEvent[] = [];
  let after: number | null = 0;
  while (after !== null) {
    const got: { events: RunEvent[]; next_after: number | null } = await page(after);
    all.push(...got.events);
    after = got.next_after;
  }
  return all;
}
