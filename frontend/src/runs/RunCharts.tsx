// The charts of one run (loss per step with smoothing, train vs validation loss per epoch, the
// validation metric, learning rate, throughput) and the overlay of several runs.
import { useMemo } from "react";
import uPlot from "uplot";
import { Chart, PALETTE } from "./Chart";
import { runData } from "./feed";
import type { EpochPoint, RunData } from "./rundata";
import { Smoother } from "./series";
import { useRuns } from "./store";

/** The validation metric an epoch table has: mean IoU (segmentation), else perplexity (language
 * model), else accuracy, else R², else MAE. */
export function metricOf(epochs: EpochPoint[]): { key: string; label: string; pct: boolean } | null {
  const e = epochs[epochs.length - 1];
  if (!e) return null;
  if (e.val_miou !== undefined) return { key: "val_miou", label: "validation mean IoU", pct: false };
  // a language model's headline figure (the run is judged by it too); token accuracy is in the log
  if (e.val_perplexity !== undefined) return { key: "val_perplexity", label: "validation perplexity", pct: false };
  if (e.val_accuracy !== undefined) return { key: "val_accuracy", label: "validation accuracy", pct: true };
  if (e.val_r2 !== undefined) return { key: "val_r2", label: "validation R²", pct: false };
  if (e.val_mae !== undefined) return { key: "val_mae", label: "validation MAE", pct: false };
  return null;
}

function epochColumn(epochs: EpochPoint[], key: string, scale = 1): (number | null)[] {
  return epochs.map((e) => (e[key] === undefined || e[key] === null ? null : (e[key] as number) * scale));
}

export function SmoothingControls() {
  const smoothing = useRuns((s) => s.smoothing);
  const logScale = useRuns((s) => s.logScale);
  return (
    <div className="chart-controls">
      <label>
        Smoothing
        <input
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={smoothing}
          onChange={(e) => useRuns.setState({ smoothing: Number(e.target.value) })}
          data-testid="chart-smoothing"
          aria-label="Loss smoothing"
        />
        <span className="mono">{smoothing.toFixed(2)}</span>
      </label>
      <label>
        <input type="checkbox" checked={logScale} onChange={(e) => useRuns.setState({ logScale: e.target.checked })} data-testid="chart-log" />
        Log scale
      </label>
    </div>
  );
}

export function RunCharts({ rd }: { rd: RunData }) {
  const smoothing = useRuns((s) => s.smoothing);
  const logScale = useRuns((s) => s.logScale);
  const smoother = useMemo(() => new Smoother(), []);
  const metric = metricOf(rd.epochs);
  return (
    <div className="run-charts">
      <SmoothingControls />
      <Chart
        title="Training loss per step"
        testId="chart-step-loss"
        xLabel="step"
        logY={logScale}
        deps={[smoothing, rd]}
        lines={[
          { label: "loss", color: PALETTE[0], alpha: smoothing > 0 ? 0.25 : 1, width: 1 },
          { label: "smoothed", color: PALETTE[0], width: 2 },
        ]}
        data={() => [rd.loss.x(), rd.loss.y(), smoother.values(rd.loss, smoothing)] as unknown as uPlot.AlignedData}
      />
      <div className="chart-grid">
        <Chart
          title="Loss per epoch"
          testId="chart-epoch-loss"
          xLabel="epoch"
          logY={logScale}
          height={130}
          deps={[rd]}
          lines={[
            { label: "train", color: PALETTE[0], points: true },
            { label: "validation", color: PALETTE[1], points: true },
          ]}
          data={() => [rd.epochs.map((e) => e.epoch), epochColumn(rd.epochs, "train_loss"), epochColumn(rd.epochs, "val_loss")]}
        />
        <Chart
          title={metric ? metric.label[0].toUpperCase() + metric.label.slice(1) : "Validation metric"}
          testId="chart-metric"
          xLabel="epoch"
          height={130}
          deps={[rd, metric?.key]}
          fmtY={metric?.pct ? (v) => `${Number(v.toPrecision(3))}%` : undefined}
          lines={[{ label: metric?.label ?? "metric", color: PALETTE[2], points: true }]}
          data={() => [rd.epochs.map((e) => e.epoch), metric ? epochColumn(rd.epochs, metric.key, metric.pct ? 100 : 1) : rd.epochs.map(() => null)]}
        />
        <Chart
          title="Learning rate"
          testId="chart-lr"
          xLabel="step"
          logY={logScale}
          height={110}
          deps={[rd]}
          lines={[{ label: "lr", color: PALETTE[4] }]}
          data={() => [rd.lr.x(), rd.lr.y()] as unknown as uPlot.AlignedData}
        />
        <Chart
          title="Throughput (samples/s)"
          testId="chart-throughput"
          xLabel="epoch"
          height={110}
          deps={[rd]}
          lines={[{ label: "samples/s", color: PALETTE[5], points: true }]}
          data={() => [rd.epochs.map((e) => e.epoch), epochColumn(rd.epochs, "samples_per_s")]}
        />
      </div>
    </div>
  );
}

/** Several runs on shared axes: smoothed step loss, validation loss and metric per epoch. */
export function CompareCharts({ ids }: { ids: string[] }) {
  const smoothing = useRuns((s) => s.smoothing);
  const logScale = useRuns((s) => s.logScale);
  const smoothers = useMemo(() => new Map<string, Smoother>(), []);
  const runs = ids.map((id) => runData(id));
  const labels = ids.map((id) => id.slice(0, 6));
  const smoother = (id: string) => {
    let s = smoothers.get(id);
    if (!s) smoothers.set(id, (s = new Smoother()));
    return s;
  };
  const metric = runs.map((r) => metricOf(r.epochs)).find(Boolean) ?? null;
  const lines = ids.map((_, i) => ({ label: labels[i], color: PALETTE[i % PALETTE.length], points: false }));
  return (
    <div className="run-charts" data-testid="compare-charts">
      <SmoothingControls />
      <Chart
        title="Training loss per step (smoothed)"
        testId="compare-step-loss"
        xLabel="step"
        logY={logScale}
        deps={[smoothing, ids.join()]}
        lines={lines}
        data={() => uPlot.join(runs.map((r) => [Array.from(r.loss.x()), Array.from(smoother(r.id).values(r.loss, smoothing))] as uPlot.AlignedData))}
      />
      <div className="chart-grid">
        <Chart
          title="Validation loss per epoch"
          testId="compare-val-loss"
          xLabel="epoch"
          logY={logScale}
          height={130}
          deps={[ids.join()]}
          lines={lines.map((l) => ({ ...l, points: true }))}
          data={() => uPlot.join(runs.map((r) => [r.epochs.map((e) => e.epoch), epochColumn(r.epochs, "val_loss")] as uPlot.AlignedData))}
        />
        <Chart
          title={metric ? metric.label[0].toUpperCase() + metric.label.slice(1) : "Validation metric"}
          testId="compare-metric"
          xLabel="epoch"
          height={130}
          deps={[ids.join(), metric?.key]}
          fmtY={metric?.pct ? (v) => `${Number(v.toPrecision(3))}%` : undefined}
          lines={lines.map((l) => ({ ...l, points: true }))}
          data={() =>
            uPlot.join(runs.map((r) => [r.epochs.map((e) => e.epoch), metric ? epochColumn(r.epochs, metric.key, metric.pct ? 100 : 1) : r.epochs.map(() => null)] as uPlot.AlignedData))
          }
        />
      </div>
    </div>
  );
}
