// Runs: the server's run rows and run events (server/storage/runs.py, server/engine/events.py).

export type RunStatus = "queued" | "running" | "finished" | "failed" | "stopped" | "interrupted";

export interface RunRow {
  id: string;
  project_id: string;
  version: number;
  status: RunStatus;
  created: number;
  started: number | null;
  finished: number | null;
  device: string | null;
  reason: string | null;
  overrides: Record<string, unknown>;
  best_metric: number | null;
  best_metric_name: string | null;
  last_seq: number;
  checkpoint: string | null;
  resume_of: string | null;
  queue_position: number | null;
}

export interface RunEvent {
  type: string;
  run_id: string;
  seq: number;
  time: number;
  data: Record<string, any>;
}

export const ACTIVE: readonly RunStatus[] = ["queued", "running"];
export const TERMINAL_EVENTS = ["finished", "failed", "stopped"] as const;

export function isActive(status: string | undefined | null): boolean {
  return status === "queued" || status === "running";
}

/** A run whose weights can be exported, predicted with and evaluated. */
export function hasWeights(row: Pick<RunRow, "status" | "checkpoint"> | undefined): boolean {
  return !!row && (row.status === "finished" || ((row.status === "stopped" || row.status === "interrupted") && !!row.checkpoint));
}
