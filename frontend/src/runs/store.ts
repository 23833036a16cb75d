// The runs UI state (zustand): the project's runs (polled), the run shown, the runs overlaid,
// the dock, run settings, notifications; and the actions: train, stop, resume, delete.
import { create } from "zustand";
import { api, ApiError, type GraphErrorJson } from "../api";
import { canvasApi } from "../canvasApi";
import { errorText, saveNow, toast, useSession } from "../session";
import { blockedText } from "../problemText";
import { serverRules } from "../serverRules";
import { useEditor } from "../store";
import { forget, onTerminal, peekRunData, unwatchAll, watch } from "./feed";
import type { RunData } from "./rundata";
import { runsApi, type Overrides } from "./runsApi";
import { isActive, type RunRow, type RunStatus } from "./types";

export type DockTab = "run" | "history" | "playground" | "downloads";

export interface SettingsDraft {
  epochs: string;
  batch_size: string;
  device: string; // "" = the graph's
  precision: string; // "" = the graph's
  fast_path: "" | "on" | "off";
  seed: string;
}

export interface Notice {
  id: number;
  runId: string;
  status: string;
  text: string;
}

interface RunsState {
  projectId: string | null;
  rows: RunRow[];
  rowsLoaded: boolean;
  selected: string | null;
  compare: string[];
  open: boolean;
  wide: boolean;
  tab: DockTab;
  settings: SettingsDraft;
  notices: Notice[];
  starting: boolean;
  /** why the last Train was refused (shown above the Problems rows); null once it is not */
  trainBlocked: string | null;
  smoothing: number;
  logScale: boolean;
  /** per run: params and epochs from its run_started event */
  info: Record<string, { params?: number; epochs?: number }>;
}

const SETTINGS_KEY = "torchloom.runSettings";
const EMPTY: SettingsDraft = { epochs: "", batch_size: "", device: "", precision: "", fast_path: "", seed: "" };

function loadSettings(): SettingsDraft {
  try {
    return { ...EMPTY, ...JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? "{}") };
  } catch {
    return { ...EMPTY };
  }
}

export const useRuns = create<RunsState>()(() => ({
  projectId: null,
  rows: [],
  rowsLoaded: false,
  selected: null,
  compare: [],
  open: false,
  wide: false,
  tab: "run",
  settings: typeof localStorage !== "undefined" ? loadSettings() : { ...EMPTY },
  notices: [],
  starting: false,
  trainBlocked: null,
  smoothing: 0.6,
  logScale: false,
  info: {},
}));

export function setSettings(patch: Partial<SettingsDraft>): void {
  const settings = { ...useRuns.getState().settings, ...patch };
  useRuns.setState({ settings });
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    /* private mode */
  }
}

/** The overrides a settings draft asks for (blank fields: the graph's own values). */
export function overridesOf(s: SettingsDraft): Overrides {
  const out: Overrides = {};
  const int = (v: string) => (v.trim() === "" ? undefined : Math.trunc(Number(v)));
  const epochs = int(s.epochs);
  if (epochs !== undefined && Number.isFinite(epochs) && epochs > 0) out.epochs = epochs;
  const bs = int(s.batch_size);
  if (bs !== undefined && Number.isFinite(bs) && bs > 0) out.batch_size = bs;
  if (s.device) out.device = s.device;
  if (s.precision) out.precision = s.precision;
  if (s.fast_path) out.fast_path = s.fast_path === "on";
  const seed = int(s.seed);
  if (seed !== undefined && Number.isFinite(seed)) out.seed = seed;
  return out;
}

/** The status to show: the newer of the polled row and the run's own events. */
export function statusOf(row: RunRow | undefined, rd: RunData | undefined): RunStatus {
  if (rd?.eventStatus && (!row || rd.eventStatusSeq > row.last_seq)) return rd.eventStatus;
  return row?.status ?? rd?.eventStatus ?? "queued";
}

// ---- notifications -------------------------------------------------------------------------
let noticeId = 0;
const seenActive = new Set<string>();
const notified = new Set<string>();

export function notify(runId: string, status: string): void {
  const key = `${runId}:${status}:${peekRunData(runId)?.stream.last ?? ""}`;
  if (notified.has(key)) return;
  notified.add(key);
  const row = useRuns.getState().rows.find((r) => r.id === runId);
  const rd = peekRunData(runId);
  const best = rd ? bestOf(rd) : null;
  const metric = best
    ? ` — best ${metricText(best.name, best.value)}`
    : row?.best_metric_name && row.best_metric !== null
      ? ` — best ${metricText(row.best_metric_name, row.best_metric)}`
      : "";
  const text =
    status === "finished"
      ? `Run ${runId.slice(0, 6)} finished${metric}`
      : status === "failed"
        ? `Run ${runId.slice(0, 6)} failed${rd?.reason ? `: ${rd.reason}` : row?.reason ? `: ${row.reason}` : ""}`
        : `Run ${runId.slice(0, 6)} ${status}`;
  const notice = { id: ++noticeId, runId, status, text };
  useRuns.setState((s) => ({ notices: [...s.notices.slice(-3), notice] }));
  setTimeout(() => dismiss(notice.id), 8000);
}

export function dismiss(id: number): void {
  useRuns.setState((s) => ({ notices: s.notices.filter((n) => n.id !== id) }));
}

onTerminal((runId, type) => {
  if (!seenActive.has(runId)) return; // finished before this page saw it running
  seenActive.delete(runId);
  void refreshRows();
  if (type !== "stopped") notify(runId, type); // a stop is asked for: no news
});

/** The best validation metric in a run's epochs (as the server ranks runs). */
export function bestOf(rd: RunData): { name: string; value: number } | null {
  for (const { name, higher_is_better } of serverRules().monitored_metrics) {
    const values = rd.epochs
      .map((e) => (e as unknown as Record<string, unknown>)[name])
      .filter((v): v is number => typeof v === "number");
    if (values.length) return { name, value: higher_is_better ? Math.max(...values) : Math.min(...values) };
  }
  return null;
}

export function metricText(name: string | null | undefined, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (name === "val_accuracy" || name === "val_top5") return `${(value * 100).toFixed(1)}% ${name === "val_top5" ? "top-5" : "accuracy"}`;
  if (name === "val_r2") return `R² ${value.toFixed(3)}`;
  if (name === "val_miou") return `mIoU ${value.toFixed(3)}`;
  if (name === "val_perplexity") return `perplexity ${value.toPrecision(4)}`;
  if (name === "val_loss") return `val loss ${value.toPrecision(4)}`;
  return `${name ?? ""} ${value.toPrecision(4)}`;
}

// ---- rows ------------------------------------------------------------------------------------
let refreshing: Promise<void> | null = null;

export async function refreshRows(): Promise<void> {
  const pid = useRuns.getState().projectId;
  if (!pid) return;
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const { runs } = await runsApi.list(pid);
      if (useRuns.getState().projectId !== pid) return;
      const prev = new Map(useRuns.getState().rows.map((r) => [r.id, r]));
      for (const r of runs) {
        const before = prev.get(r.id);
        if (isActive(r.status)) seenActive.add(r.id);
        else if (before && isActive(before.status) && seenActive.has(r.id)) {
          // a background run ended (its events may not be watched)
          seenActive.delete(r.id);
          if (r.status !== "stopped") notify(r.id, r.status);
        }
      }
      useRuns.setState({ rows: runs, rowsLoaded: true });
      void loadInfo(runs);
    } catch {
      /* offline: try again at the next poll */
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

const infoLoading = new Set<string>();
async function loadInfo(rows: RunRow[]): Promise<void> {
  const info = useRuns.getState().info;
  for (const r of rows) {
    if (info[r.id] || infoLoading.has(r.id) || r.status === "queued" || r.last_seq === 0) continue;
    infoLoading.add(r.id);
    try {
      const { events } = await runsApi.events(r.id, 0, 1, ["run_started"]);
      const d = events[0]?.data;
      if (d) useRuns.setState((s) => ({ info: { ...s.info, [r.id]: { params: d.params, epochs: d.epochs } } }));
    } catch {
      /* shown as — */
    } finally {
      infoLoading.delete(r.id);
    }
  }
}

/** The open project changed: load its runs, show its newest run (restores an active run's
 * charts from the server after a reload). */
export async function setProject(pid: string | null): Promise<void> {
  if (useRuns.getState().projectId === pid) return;
  unwatchAll();
  useRuns.setState({ projectId: pid, rows: [], rowsLoaded: false, selected: null, compare: [], trainBlocked: null });
  if (!pid) return;
  await refreshRows();
  const st = useRuns.getState();
  if (st.projectId !== pid || st.selected) return;
  const active = st.rows.find((r) => isActive(r.status));
  const pick = active ?? st.rows[0];
  if (pick) {
    select(pick.id);
    if (active) useRuns.setState({ open: true, tab: "run" });
  }
}

export function select(id: string | null): void {
  useRuns.setState({ selected: id });
  if (id) watch(id);
}

export function toggleCompare(id: string, on: boolean): void {
  useRuns.setState((s) => ({ compare: on ? [...new Set([...s.compare, id])] : s.compare.filter((x) => x !== id) }));
  if (on) watch(id);
}

// ---- actions ---------------------------------------------------------------------------------
function focusNode(err: GraphErrorJson) {
  if (!err.node) return;
  const st = useEditor.getState();
  const block = err.block ?? null;
  if (block !== st.scope) {
    if (block) st.openBlock(block);
    else st.closeBlock();
    setTimeout(() => canvasApi()?.focusNode(err.node!), 80);
  } else canvasApi()?.focusNode(err.node);
}

function blockOn(errors: GraphErrorJson[]) {
  // shown in the Problems panel, above the rows it summarizes (a toast would cover them)
  useRuns.setState({ trainBlocked: blockedText(errors) });
  if (errors[0]) focusNode(errors[0]);
}

/** Validate, save a version and start a run with the settings' overrides. */
export async function train(): Promise<string | null> {
  const st = useRuns.getState();
  const pid = useSession.getState().projectId;
  if (st.starting) return null;
  if (!pid) {
    toast("Open a project first");
    return null;
  }
  useRuns.setState({ starting: true, trainBlocked: null });
  try {
    const doc = useEditor.getState().document();
    const result = await api.validate(doc);
    const errors = result.errors.filter((e) => e.severity !== "warning");
    if (!result.ok || errors.length) {
      blockOn(errors);
      return null;
    }
    await saveNow("train");
    if (useSession.getState().saveState === "error") {
      toast(`Cannot train: saving failed (${useSession.getState().error ?? "error"})`);
      return null;
    }
    const row = await runsApi.start(pid, overridesOf(useRuns.getState().settings));
    seenActive.add(row.id);
    useRuns.setState((s) => ({ rows: [row, ...s.rows.filter((r) => r.id !== row.id)], open: true, tab: "run" }));
    select(row.id);
    void refreshRows();
    return row.id;
  } catch (e) {
    if (e instanceof ApiError && e.code === "invalid_graph" && Array.isArray(e.details)) blockOn(e.details as GraphErrorJson[]);
    else toast(`Cannot start the run: ${errorText(e)}`);
    return null;
  } finally {
    useRuns.setState({ starting: false });
  }
}

export async function stopRun(id: string): Promise<void> {
  try {
    const { run } = await runsApi.stop(id);
    upsert(run);
  } catch (e) {
    toast(`Stop failed: ${errorText(e)}`);
  }
}

export async function resumeRun(id: string): Promise<void> {
  try {
    const row = await runsApi.resume(id);
    seenActive.add(id);
    upsert(row);
    watch(id);
  } catch (e) {
    toast(`Resume failed: ${errorText(e)}`);
  }
}

export async function deleteRun(id: string): Promise<void> {
  try {
    await runsApi.remove(id);
    forget(id);
    useRuns.setState((s) => ({
      rows: s.rows.filter((r) => r.id !== id),
      compare: s.compare.filter((x) => x !== id),
      selected: s.selected === id ? null : s.selected,
    }));
  } catch (e) {
    toast(`Delete failed: ${errorText(e)}`);
  }
}

function upsert(row: RunRow) {
  useRuns.setState((s) => ({ rows: s.rows.some((r) => r.id === row.id) ? s.rows.map((r) => (r.id === row.id ? row : r)) : [row, ...s.rows] }));
}

export function openDock(tab?: DockTab): void {
  useRuns.setState((s) => ({ open: true, tab: tab ?? s.tab }));
}
