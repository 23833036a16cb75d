// One run: status (queued with its position, running, finished, failed with the reason,
// stopped, interrupted), progress with epoch/step and ETA, samples/s, device, memory, Stop and
// Resume, the charts and the log console.
import { useEffect, useRef } from "react";
import { peekRunData, runData, useFeed } from "./feed";
import { downloadFullLog } from "./downloadLog";
import { cutNotice, visibleLog } from "./fullLog";
import { RunCharts, metricOf } from "./RunCharts";
import { fmtSeconds, type RunData } from "./rundata";
import { metricText, resumeRun, statusOf, stopRun, useRuns } from "./store";
import type { RunRow } from "./types";

const STATUS_TEXT: Record<string, string> = {
  queued: "Queued",
  running: "Running",
  finished: "Finished",
  failed: "Failed",
  stopped: "Stopped",
  interrupted: "Interrupted",
};

export function RunStatusBadge({ status }: { status: string }) {
  return (
    <span className={`run-badge st-${status}`} data-status={status}>
      {STATUS_TEXT[status] ?? status}
    </span>
  );
}

function LogConsole({ rd }: { rd: RunData }) {
  useFeed((s) => s.tick);
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const { lines, cut } = visibleLog(rd.log, rd.logDropped);
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });
  return (
    <>
      {cut > 0 && (
        <div className="run-log-cut muted" data-testid="run-log-cut">
          {cutNotice(cut)}.{" "}
          <button type="button" className="link" onClick={() => void downloadFullLog(rd.id)}>
            Download full log
          </button>
        </div>
      )}
      <div
        className="run-log"
        ref={box}
        data-testid="run-log"
        role="log"
        aria-label="Run log"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {lines.length === 0 ? (
          <div className="muted">No output yet.</div>
        ) : (
          lines.map((l) => (
            <div key={`${l.seq}-${l.text.length}`} className={`log-line ${l.level}`}>
              <span className="log-time">{new Date(l.time * 1000).toLocaleTimeString()}</span> {l.text}
            </div>
          ))
        )}
      </div>
    </>
  );
}

function Stat({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div className="run-stat">
      <span className="muted">{label}</span>
      <span className="mono" data-testid={testId}>
        {value}
      </span>
    </div>
  );
}

export function RunPanel({ row, runId }: { row: RunRow | undefined; runId: string }) {
  useFeed((s) => s.tick);
  const rd = peekRunData(runId) ?? runData(runId);
  const status = statusOf(row, rd);
  const s = rd.started;
  const total = rd.totalSteps;
  const epochs = typeof s?.epochs === "number" ? s.epochs : undefined;
  const spe = typeof s?.steps_per_epoch === "number" ? s.steps_per_epoch : undefined;
  const frac = total ? Math.min(1, rd.step / total) : status === "finished" ? 1 : 0;
  const last = rd.lastEpoch();
  const metric = metricOf(rd.epochs);
  const best = row?.best_metric_name ? metricText(row.best_metric_name, row.best_metric) : null;
  const current = metric && last ? metricText(metric.key, last[metric.key] as number) : null;
  const stepInEpoch = spe && rd.step ? rd.step - (rd.currentEpoch - 1) * spe : 0;
  const eta = status === "running" ? rd.eta() : null;
  const throughput = last?.samples_per_s ?? (rd.stepRate() && s?.batch_size ? rd.stepRate()! * s.batch_size : undefined);
  const reason = status === "failed" || status === "interrupted" || status === "stopped" ? (rd.reason ?? row?.reason) : null;
  const canResume = (status === "stopped" || status === "interrupted" || status === "failed") && !!row?.checkpoint;
  return (
    <section className="run-panel" data-testid="run-panel" data-run={runId} data-status={status}>
      <div className="run-head">
        <RunStatusBadge status={status} />
        <span className="mono muted" title={runId}>
          run {runId.slice(0, 8)}
        </span>
        {status === "queued" && row?.queue_position ? (
          <span data-testid="run-queue-position">#{row.queue_position} in queue</span>
        ) : null}
        <span className="spacer" />
        {(status === "running" || status === "queued") && (
          <button type="button" className="btn small danger" onClick={() => void stopRun(runId)} data-testid="run-stop">
            <span aria-hidden="true">■ </span>Stop
          </button>
        )}
        {canResume && (
          <button type="button" className="btn small" onClick={() => void resumeRun(runId)} data-testid="run-resume">
            <span aria-hidden="true">▶ </span>Resume
          </button>
        )}
      </div>
      {reason && (
        <div className={`notice small ${status === "failed" ? "err" : ""}`} data-testid="run-reason">
          {reason}
        </div>
      )}
      <div className="run-progress" data-testid="run-progress" aria-label="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(frac * 100)}>
        <div className={`run-progress-bar st-${status}`} style={{ width: `${(frac * 100).toFixed(1)}%` }} />
      </div>
      <div className="run-stats">
        <Stat label="Epoch" testId="run-epoch" value={epochs ? `${Math.min(Math.max(rd.currentEpoch, rd.epoch), epochs)} / ${epochs}${status === "running" && spe && stepInEpoch > 0 && stepInEpoch < spe ? ` · ${stepInEpoch}/${spe}` : ""}` : "—"} />
        <Stat label="Step" testId="run-step" value={total ? `${rd.step} / ${total}` : rd.step ? String(rd.step) : "—"} />
        <Stat label="ETA" testId="run-eta" value={status === "running" ? fmtSeconds(eta) : status === "finished" ? "done" : "—"} />
        <Stat label="Samples/s" testId="run-throughput" value={throughput ? Math.round(throughput).toLocaleString() : "—"} />
        <Stat label="Device" testId="run-device" value={s ? `${s.device_name ?? s.device}${s.precision ? ` · ${s.precision}` : ""}` : (row?.device ?? "—")} />
        <Stat label="Memory" testId="run-memory" value={last?.peak_memory_mb ? `${Math.round(last.peak_memory_mb)} MB peak` : "—"} />
        <Stat label="Loss" testId="run-loss" value={rd.loss.lastY() !== undefined ? Number(rd.loss.lastY()!.toPrecision(4)).toString() : "—"} />
        <Stat label="Validation" testId="run-metric" value={current ?? "—"} />
      </div>
      {best && (
        <div className="run-best">
          Best: <strong data-testid="run-best-metric">{best}</strong>
        </div>
      )}
      {!rd.loaded && <p className="muted small">Loading the run's history…</p>}
      <RunCharts rd={rd} />
      <h4 className="run-sub">Log</h4>
      <LogConsole rd={rd} />
    </section>
  );
}

export function useSelectedRow(): [string | null, RunRow | undefined] {
  const selected = useRuns((s) => s.selected);
  const row = useRuns((s) => s.rows.find((r) => r.id === s.selected));
  return [selected, row];
}
