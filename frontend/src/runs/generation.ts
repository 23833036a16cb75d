// The playground's generation state: a language-model run's continuation of a prompt, streamed
// over the socket a piece at a time (server/generation_events.py). A pure reducer, so that the
// panel's handling of replies, pieces, stops and ends can be tested without a server: pieces
// and ends of any generation but the current one (a superseded or stopped one) are ignored.

export type GenStatus = "idle" | "starting" | "streaming" | "stopping" | "done" | "stopped" | "error";

export interface GenState {
  status: GenStatus;
  /** the server's id of the current generation (null until its reply) */
  id: string | null;
  /** the prompt the current text continues */
  prompt: string;
  text: string;
  error: string | null;
  /** pieces and ends that came while the start's reply (the id) was still on its way: the
   * server may emit before its reply arrives; replayed for the id the reply names */
  early: Array<Extract<GenAction, { type: "piece" | "end" }>>;
}

export type GenAction =
  | { type: "start"; prompt: string }
  | { type: "started"; id: string }
  | { type: "refused"; error: string }
  | { type: "piece"; id: string; text: string }
  | { type: "end"; id: string; reason: "done" | "stopped" | "error"; error?: string }
  | { type: "stop" }
  /** the socket disconnected: the server ended any generation of this client */
  | { type: "lost" };

export const initialGen: GenState = { status: "idle", id: null, prompt: "", text: "", error: null, early: [] };

export function genReducer(s: GenState, a: GenAction): GenState {
  switch (a.type) {
    case "start":
      return { status: "starting", id: null, prompt: a.prompt, text: "", error: null, early: [] };
    case "started":
      if (s.status !== "starting") return s;
      return s.early.filter((e) => e.id === a.id).reduce(genReducer, { ...s, status: "streaming", id: a.id, early: [] } as GenState);
    case "refused":
      return s.status === "starting" ? { ...s, status: "error", error: a.error } : s;
    case "piece":
      if (s.status === "starting") return { ...s, early: [...s.early, a] };
      return a.id === s.id && (s.status === "streaming" || s.status === "stopping") ? { ...s, text: s.text + a.text } : s;
    case "end":
      if (s.status === "starting") return { ...s, early: [...s.early, a] };
      if (a.id !== s.id) return s;
      return { ...s, status: a.reason, error: a.reason === "error" ? (a.error ?? "the generation failed") : null };
    case "stop":
      return s.status === "streaming" ? { ...s, status: "stopping" } : s;
    case "lost":
      return isRunning(s) ? { ...s, status: "error", error: "The connection to the server was lost; generate again." } : s;
  }
}

export function isRunning(s: GenState): boolean {
  return s.status === "starting" || s.status === "streaming" || s.status === "stopping";
}

export interface GenForm {
  prompt: string;
  temperature: string;
  topK: string;
  maxNewTokens: string;
  seed: string;
}

export interface GenRequest {
  prompt: string;
  temperature: number;
  top_k: number | null;
  max_new_tokens: number;
  seed: number;
}

export const MAX_NEW_TOKENS = 10000; // server/engine/sampling.py

/** The generate message for the form's fields, or what is wrong with them. */
export function genRequest(f: GenForm): GenRequest | { error: string } {
  if (!f.prompt) return { error: "Write a prompt to continue." };
  const temperature = Number(f.temperature);
  if (f.temperature.trim() === "" || !Number.isFinite(temperature) || temperature < 0 || temperature > 100)
    return { error: "Temperature is a number from 0 (greedy) to 100." };
  const whole = (v: string) => (/^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN);
  const topK = f.topK.trim() === "" ? 0 : whole(f.topK);
  if (!Number.isInteger(topK)) return { error: "Top-k is a whole number (empty or 0: no limit)." };
  const maxNew = whole(f.maxNewTokens);
  if (!Number.isInteger(maxNew) || maxNew < 1 || maxNew > MAX_NEW_TOKENS) return { error: `Max new tokens is a whole number from 1 to ${MAX_NEW_TOKENS}.` };
  const seed = whole(f.seed);
  if (!Number.isSafeInteger(seed)) return { error: "Seed is a whole number." };
  return { prompt: f.prompt, temperature, top_k: topK || null, max_new_tokens: maxNew, seed };
}
