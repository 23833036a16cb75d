// The project's runs: a sortable table (status, started, duration, device, epochs, best
// validation metric, params); check several to overlay their curves; open a run's graph
// version; delete.
import { useState } from "react";
import { higherIsBetter } from "../serverRules";
import { errorText, restoreVersion, toast } from "../session";
import { useFeed } from "./feed";
import { CompareCharts } from "./RunCharts";
import { RunStatusBadge } from "./RunPanel";
import { fmtSeconds } from "./rundata";
import { deleteRun, metricText, select, toggleCompare, useRuns } from "./store";
import { isActive, type RunRow } from "./types";

type Key = "status" | "started" | "duration" | "device" | "epochs" | "metric" | "params" | "version";

function duration(r: RunRow): number | null {
  if (!r.started) return null;
  const end = r.finished ?? (isActive(r.status) ? Date.now() / 1000 : null);
  return end ? end - r.started : null;
}

function when(t: number): string {
  const d = new Date(t * 1000);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export async function openVersion(row: RunRow): Promise<void> {
  if (!window.confirm(`Open the graph run ${row.id.slice(0, 8)} trained (version ${row.version})? It is restored as the project's newest version; the current graph stays in the version history.`)) return;
  try {
    await restoreVersion(row.project_id, row.version);
    toast(`Opened version ${row.version}`);
  } catch (e) {
    toast(`Cannot open version ${row.version}: ${errorText(e)}`);
  }
}

export function RunsTable() {
  useFeed((s) => s.tick);
  const rows = useRuns((s) => s.rows);
  const info = useRuns((s) => s.info);
  const selected = useRuns((s) => s.selected);
  const compare = useRuns((s) => s.compare);
  const loaded = useRuns((s) => s.rowsLoaded);
  const [key, setKey] = useState<Key>("started");
  const [desc, setDesc] = useState(true);
  const value = (r: RunRow): number | string | null => {
    switch (key) {
      case "status":
        return r.status;
      case "started":
        return r.started ?? r.created;
      case "duration":
        return duration(r);
      case "device":
        return r.device ?? "";
      case "epochs":
        return info[r.id]?.epochs ?? (r.overrides?.epochs as number | undefined) ?? null;
      case "metric":
        // negated when lower is better: the sort then ranks every metric the same way
        return r.best_metric_name && r.best_metric !== null && !higherIsBetter(r.best_metric_name) ? -r.best_metric : r.best_metric;
      case "params":
        return info[r.id]?.params ?? null;
      case "version":
        return r.version;
    }
  };
  const sorted = [...rows].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === vb) return 0;
    if (va === null) return 1;
    if (vb === null) return -1;
    const c = va < vb ? -1 : 1;
    return desc ? -c : c;
  });
  const head = (k: Key, label: string, num = false) => (
    <th
      scope="col"
      className={num ? "num" : undefined}
      aria-sort={key === k ? (desc ? "descending" : "ascending") : "none"}
      onClick={() => {
        if (key === k) setDesc(!desc);
        else {
          setKey(k);
          setDesc(true);
        }
      }}
      data-testid={`runs-sort-${k}`}
    >
      {label}
      {key === k ? (desc ? " ▾" : " ▴") : ""}
    </th>
  );
  if (!loaded && !rows.length) return <p className="run-pad muted">Loading runs…</p>;
  if (!rows.length) return <p className="run-pad muted" data-testid="runs-empty">No runs yet: press Train (Ctrl+Enter).</p>;
  return (
    <div className="runs-history">
      <table className="runs-table" data-testid="runs-table">
        <thead>
          <tr>
            <th scope="col" aria-label="Compare" title="Overlay curves" />
            {head("status", "Status")}
            {head("started", "Started")}
            {head("duration", "Duration", true)}
            {head("device", "Device")}
            {head("epochs", "Epochs", true)}
            {head("metric", "Best", true)}
            {head("params", "Params", true)}
            {head("version", "Ver.", true)}
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {sorted.map((r) => (
            <tr key={r.id} className={r.id === selected ? "sel" : undefined} data-testid="runs-row" data-run={r.id} data-status={r.status} onClick={() => select(r.id)}>
              <td onClick={(e) => e.stopPropagation()}>
                <input type="checkbox" checked={compare.includes(r.id)} onChange={(e) => toggleCompare(r.id, e.target.checked)} aria-label={`Compare run ${r.id}`} data-testid="runs-compare" />
              </td>
              <td>
                <RunStatusBadge status={r.status} />
                {r.status === "queued" && r.queue_position ? <span className="muted small"> #{r.queue_position}</span> : null}
              </td>
              <td title={r.id}>{when(r.started ?? r.created)}</td>
              <td className="num">{fmtSeconds(duration(r))}</td>
              <td>{r.device ?? "—"}</td>
              <td className="num">{info[r.id]?.epochs ?? (r.overrides?.epochs as number | undefined) ?? "—"}</td>
              <td className="num" data-testid="runs-best">{metricText(r.best_metric_name, r.best_metric)}</td>
              <td className="num">{info[r.id]?.params?.toLocaleString() ?? "—"}</td>
              <td className="num">{r.version}</td>
              <td className="row-actions" onClick={(e) => e.stopPropagation()}>
                <button type="button" className="btn small ghost" title="Open this run's graph version" onClick={() => void openVersion(r)} data-testid="runs-open-version">
                  Graph
                </button>
                <button
                  type="button"
                  className="btn small ghost danger"
                  disabled={isActive(r.status)}
                  title={isActive(r.status) ? "Stop the run before deleting it" : "Delete this run"}
                  onClick={() => {
                    if (window.confirm(`Delete run ${r.id.slice(0, 8)} and its files?`)) void deleteRun(r.id);
                  }}
                  data-testid="runs-delete"
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {compare.length > 0 ? (
        <CompareCharts ids={compare} />
      ) : (
        <p className="run-pad muted small">Check runs to overlay their curves.</p>
      )}
    </div>
  );
}
