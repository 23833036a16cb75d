// A uPlot chart that follows the feed's tick: the instance is made once per series layout and
// fed with setData (no React re-render of the canvas); it is sized to its box.
import { useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useFeed } from "./feed";
import { fmtNum } from "./format";
import { decadeSplits, logRange } from "./logAxis";

export interface LineSpec {
  label: string;
  color: string;
  width?: number;
  dash?: number[];
  alpha?: number;
  points?: boolean;
  /** "y2": a second axis on the right */
  scale?: string;
}

export interface ChartProps {
  title: string;
  testId: string;
  lines: LineSpec[];
  /** builds [x, ...ys] from the current data; called on every tick */
  data: () => uPlot.AlignedData;
  xLabel?: string;
  logY?: boolean;
  height?: number;
  /** y-axis value format */
  fmtY?: (v: number) => string;
  /** extra dependency that re-reads data (e.g. smoothing weight) */
  deps?: unknown[];
  /** x values are integers (steps, epochs) */
  integerX?: boolean;
}

export const PALETTE = ["#3b5bdb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#0c8599", "#a61e4d", "#5c940d", "#1971c2", "#f08c00"];

function withAlpha(color: string, alpha: number): string {
  if (!color.startsWith("#") || color.length !== 7) return color;
  const a = Math.round(alpha * 255)
    .toString(16)
    .padStart(2, "0");
  return `${color}${a}`;
}


function cssVar(name: string, fallback: string): string {
  if (typeof document === "undefined") return fallback;
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** For a log axis: values ≤ 0 are not drawable, they become gaps. */
function positive(data: uPlot.AlignedData): uPlot.AlignedData {
  return [
    data[0],
    ...data.slice(1).map((ys) => Array.from(ys as ArrayLike<number | null | undefined>, (v) => (v !== null && v !== undefined && v > 0 ? v : null))),
  ] as uPlot.AlignedData;
}

function countOf(data: uPlot.AlignedData): number {
  return data[0]?.length ?? 0;
}

export function Chart({ title, testId, lines, data, xLabel, logY, height = 150, fmtY, deps = [], integerX = true }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const dataFn = useRef(data);
  dataFn.current = data;
  const tick = useFeed((s) => s.tick);
  const [empty, setEmpty] = useState(true);
  const layout = JSON.stringify([lines, logY, height, xLabel]);

  // (re)create the chart when its layout changes
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(200, el.clientWidth || 300);
    const d = logY ? positive(dataFn.current()) : dataFn.current();
    const muted = cssVar("--muted", "#667085");
    const yFmt = fmtY ?? fmtNum;
    const opts: uPlot.Options = {
      width,
      height,
      pxAlign: false,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false }, points: { size: 5 } },
      scales: {
        x: { time: false },
        y: logY ? { distr: 3, log: 10, range: (_u, min, max) => logRange(min, max) } : { auto: true },
        ...(lines.some((l) => l.scale === "y2") ? { y2: { auto: true } } : {}),
      },
      axes: [
        {
          stroke: muted,
          grid: { stroke: "rgba(128,128,128,0.15)", width: 1 },
          ticks: { stroke: "rgba(128,128,128,0.3)", width: 1 },
          label: xLabel,
          labelSize: xLabel ? 14 : 0,
          size: 28,
          font: "11px system-ui, sans-serif",
          labelFont: "11px system-ui, sans-serif",
          incrs: integerX ? [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1e6] : undefined,
        },
        {
          stroke: muted,
          grid: { stroke: "rgba(128,128,128,0.15)", width: 1 },
          ticks: { stroke: "rgba(128,128,128,0.3)", width: 1 },
          size: 50,
          font: "11px system-ui, sans-serif",
          splits: logY ? (_u, _i, min, max) => decadeSplits(min, max) : undefined,
          values: (_u, vals) => vals.map((v) => (v === null || v === undefined ? "" : yFmt(v))),
        },
        ...(lines.some((l) => l.scale === "y2")
          ? [
              {
                scale: "y2",
                side: 1 as const,
                stroke: muted,
                grid: { show: false },
                size: 46,
                font: "11px system-ui, sans-serif",
                values: (_u: uPlot, vals: number[]) => vals.map((v) => fmtNum(v)),
              },
            ]
          : []),
      ],
      series: [
        { label: xLabel ?? "x", value: (_u, v) => (v === null || v === undefined ? "—" : String(v)) },
        ...lines.map(
          (l): uPlot.Series => ({
            label: l.label,
            stroke: l.alpha !== undefined ? withAlpha(l.color, l.alpha) : l.color,
            width: l.width ?? 1.5,
            dash: l.dash,
            scale: l.scale ?? "y",
            spanGaps: true,
            points: { show: l.points ?? false, size: 4, fill: l.color },
            value: (_u, v) => (v === null || v === undefined || !Number.isFinite(v) ? "—" : yFmt(v)),
          }),
        ),
      ],
    };
    const u = new uPlot(opts, d, el);
    plot.current = u;
    el.dataset.points = String(countOf(d));
    setEmpty(countOf(d) === 0);
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 1) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [layout]);

  // new data: setData only (batched by the feed's tick)
  useEffect(() => {
    const u = plot.current;
    const el = box.current;
    if (!u || !el) return;
    const d = logY ? positive(dataFn.current()) : dataFn.current();
    u.setData(d, true);
    el.dataset.points = String(countOf(d));
    setEmpty(countOf(d) === 0); // a no-op unless it changed
  }, [tick, ...deps]);

  return (
    <figure className="run-chart">
      <figcaption>{title}</figcaption>
      <div className="run-chart-wrap">
        <div ref={box} className="run-chart-box" data-testid={testId} />
        {empty && <span className="run-chart-empty muted small">no data yet</span>}
      </div>
    </figure>
  );
}
