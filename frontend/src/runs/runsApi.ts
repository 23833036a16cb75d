// HTTP calls for runs, exports, predictions and evaluation (same-origin, the session cookie).
import { call } from "../api";
import type { GraphDocument } from "../doc";
import type { RunEvent, RunRow } from "./types";

export interface Overrides {
  epochs?: number;
  batch_size?: number;
  device?: string;
  precision?: string;
  fast_path?: boolean;
  seed?: number;
}

export interface PredictResult {
  mode: string;
  task: "classification" | "regression" | "reconstruction" | "raw";
  outputs: unknown[];
  output_names: string[];
  index?: number;
  /** the raw validation sample (index or random mode) */
  input?: unknown;
  prediction: unknown;
  probabilities?: number[];
  class_names?: string[] | null;
  prediction_name?: string;
  true?: unknown;
  true_name?: string;
}

export interface Evaluation {
  task: "classification" | "regression";
  samples: number;
  class_names?: string[];
  confusion?: number[][];
  accuracy?: number;
  per_class_recall?: (number | null)[];
  mae?: number | null;
  rmse?: number | null;
  r2?: number | null;
  points?: { index: number[]; true: (number | null)[]; predicted: (number | null)[] };
}

export interface OnnxReport {
  opset: number;
  max_abs_diff: number;
  tolerance?: number;
  within_tolerance?: boolean;
  samples?: number;
  sample_source?: string;
  [k: string]: unknown;
}

export interface Device {
  name: string;
  kind: string;
  label?: string;
  memory_mb?: number;
}

const enc = encodeURIComponent;

export const runsApi = {
  start: (pid: string, overrides: Overrides) => call<RunRow>("POST", `/api/projects/${enc(pid)}/runs`, { overrides }),
  list: (pid: string) => call<{ runs: RunRow[] }>("GET", `/api/runs?project=${enc(pid)}`),
  get: (id: string) => call<RunRow>("GET", `/api/runs/${enc(id)}`),
  stop: (id: string) => call<{ run: RunRow; outcome: string }>("POST", `/api/runs/${enc(id)}/stop`, {}),
  resume: (id: string) => call<RunRow>("POST", `/api/runs/${enc(id)}/resume`, {}),
  remove: (id: string) => call<void>("DELETE", `/api/runs/${enc(id)}`),
  events: (id: string, after: number, limit = 10000, types?: string[]) =>
    call<{ events: RunEvent[]; next_after: number | null }>(
      "GET",
      `/api/runs/${enc(id)}/events?after=${after}&limit=${limit}${types ? `&types=${enc(types.join(","))}` : ""}`,
    ),
  // every event but the steps: the full log download (fullLog.ts)
  logEvents: (id: string, after: number, limit = 10000) =>
    call<{ events: RunEvent[]; next_after: number | null }>("GET", `/api/runs/${enc(id)}/events?after=${after}&limit=${limit}&exclude=step`),
  predict: (id: string, body: { index: number } | { input: unknown } | { random: true }) => call<PredictResult>("POST", `/api/runs/${enc(id)}/predict`, body),
  evaluation: (id: string) => call<Evaluation>("GET", `/api/runs/${enc(id)}/evaluation`),
  onnxReport: (id: string) => call<OnnxReport>("GET", `/api/runs/${enc(id)}/export/model.onnx.json`),
  version: (pid: string, v: number) => call<{ document: GraphDocument; version: number; name: string }>("GET", `/api/projects/${enc(pid)}/versions/${v}`),
  system: () => call<{ devices: Device[]; torch?: string; cuda?: string | null }>("GET", "/api/system"),
};

export function exportUrl(id: string, name: string): string {
  return `/api/runs/${enc(id)}/export/${name}`;
}
