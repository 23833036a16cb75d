// The live feed: one Socket.IO connection (the session cookie authenticates it), a RunData per
// run the page looks at, subscribed with the last sequence number it holds (on first watch, on
// every reconnect, and after a detected gap). Applying events is immediate; re-rendering is
// batched: at most one `tick` per animation frame and at most 20 a second.
import { io, type Socket } from "socket.io-client";
import { create } from "zustand";
import { serverRules } from "../serverRules";
import { RunData } from "./rundata";
import type { RunEvent } from "./types";

const MIN_FRAME_MS = 50; // ≤ 20 updates a second

interface FeedState {
  tick: number;
  connected: boolean;
  error: string | null;
}

export const useFeed = create<FeedState>()(() => ({ tick: 0, connected: false, error: null }));

const registry = new Map<string, RunData>();
const watched = new Set<string>();
let socket: Socket | null = null;
let connects = 0;
const terminalListeners = new Set<(runId: string, type: string) => void>();

export function runData(id: string): RunData {
  let rd = registry.get(id);
  if (!rd) {
    rd = new RunData(id);
    registry.set(id, rd);
  }
  return rd;
}

export function peekRunData(id: string): RunData | undefined {
  return registry.get(id);
}

export function onTerminal(fn: (runId: string, type: string) => void): () => void {
  terminalListeners.add(fn);
  return () => terminalListeners.delete(fn);
}

// ---- render batching -------------------------------------------------------------------------
let scheduled = false;
let lastFlush = 0;

function flush() {
  scheduled = false;
  lastFlush = performance.now();
  useFeed.setState((s) => ({ tick: s.tick + 1 }));
}

/** Ask for a re-render (coalesced to one per frame, ≤ 20/s). */
export function changed(): void {
  if (scheduled) return;
  scheduled = true;
  const wait = Math.max(0, MIN_FRAME_MS - (performance.now() - lastFlush));
  const frame = typeof requestAnimationFrame === "function" ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16);
  if (wait > 0) setTimeout(() => frame(flush), wait);
  else frame(flush);
}

// ---- the socket ------------------------------------------------------------------------------
function ensureSocket(): Socket {
  if (socket) return socket;
  socket = io({ path: "/socket.io", withCredentials: true, reconnectionDelay: 500, reconnectionDelayMax: 4000 });
  socket.on("connect", () => {
    connects += 1;
    useFeed.setState({ connected: true, error: null });
    for (const id of watched) subscribe(id);
  });
  socket.on("disconnect", () => useFeed.setState({ connected: false }));
  socket.on("connect_error", (e: Error) => useFeed.setState({ connected: false, error: e.message }));
  socket.on("events", (msg: { run_id: string; events: RunEvent[] }) => {
    if (!msg || !watched.has(msg.run_id)) return;
    const rd = runData(msg.run_id);
    const before = rd.stream.last;
    if (rd.stream.live(msg.events ?? []) === "resubscribe") subscribe(msg.run_id);
    afterApply(rd, before, msg.events ?? []);
  });
  return socket;
}

function afterApply(rd: RunData, before: number, events: RunEvent[]) {
  if (rd.stream.last === before) return;
  changed();
  for (const e of events) {
    if (e.seq > before && e.seq <= rd.stream.last && (e.type === "finished" || e.type === "failed" || e.type === "stopped")) {
      for (const fn of terminalListeners) fn(rd.id, e.type);
    }
  }
}

function subscribe(id: string): void {
  const s = ensureSocket();
  if (!s.connected) return; // done on connect
  const rd = runData(id);
  const { token, after } = rd.stream.request();
  s.emit("subscribe", { run_id: id, after }, (reply: { ok: boolean; events?: RunEvent[]; error?: string }) => {
    if (!watched.has(id)) return;
    if (!reply?.ok) {
      rd.stream.reply(token, []);
      rd.loaded = true;
      useFeed.setState({ error: reply?.error ?? "subscribe failed" });
      changed();
      return;
    }
    const events = reply.events ?? [];
    const before = rd.stream.last;
    const result = rd.stream.reply(token, events, events.length >= serverRules().replay_limit);
    rd.loaded = true;
    if (result === "resubscribe") subscribe(id);
    afterApply(rd, before, events);
    changed();
  });
}

/** Follow a run: replay what is missing, then live events. */
export function watch(id: string): RunData {
  const rd = runData(id);
  if (!watched.has(id)) {
    watched.add(id);
    subscribe(id);
  }
  return rd;
}

export function unwatch(id: string): void {
  if (!watched.delete(id)) return;
  socket?.emit("unsubscribe", { run_id: id });
}

/** Stop following every run (another project was opened); their data stays for a later watch. */
export function unwatchAll(): void {
  for (const id of [...watched]) unwatch(id);
}

/** Drop a run's data (deleted). */
export function forget(id: string): void {
  unwatch(id);
  registry.delete(id);
}

/** For tests and debugging: the step numbers and losses a run's chart holds. */
export function debugSteps(id: string): { steps: number[]; losses: number[]; last_seq: number } | null {
  const rd = registry.get(id);
  if (!rd) return null;
  return { steps: Array.from(rd.loss.x()), losses: Array.from(rd.loss.y()), last_seq: rd.stream.last };
}

/** For tests: how many times the socket has connected. */
export function connectCount(): number {
  return connects;
}

/** For tests: drop the socket's transport, as a network failure would (it reconnects by itself). */
export function dropConnection(): void {
  (socket?.io as unknown as { engine?: { close(): void } } | undefined)?.engine?.close();
}

/** The feed's one connection, for the playground's generation events. */
export function feedSocket(): Socket {
  return ensureSocket();
}
