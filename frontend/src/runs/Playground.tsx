// The playground for a run with weights (finished, or stopped with a checkpoint): predict a
// validation sample (by index or at random), draw an image for an image classifier (scaled to
// the model's input size, predicted live), fill the input features of a tabular model; the
// confusion matrix of a classifier, predicted vs true of a regressor, over the validation set.
// The server predicts in eval mode under inference_mode.
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "../api";
import { serverRules } from "../serverRules";
import { errorText } from "../session";
import { GeneratePanel } from "./GeneratePanel";
import { runsApi, type Evaluation, type PredictResult } from "./runsApi";
import { hasWeights, type RunRow } from "./types";

export interface InputSpec {
  /** per-sample input shape (without the batch) */
  shape: number[];
  /** text: a language model (token ids in, next ids as targets): the generate panel */
  kind: "image" | "tabular" | "text" | "none";
  /** image: [channels, height, width] the drawing is scaled to */
  image?: { c: number; h: number; w: number };
  /** the raw value of full ink (the dataset's units) */
  scale: number;
  source: string;
}

/** What input widget a model's per-sample input shape allows; `y`: the targets, which tell a
 * language model (int64 ids x and int64 next ids y of the same shape) from other token models. */
export function inputSpec(shape: (number | string)[], source: string, dtype = "float32", y?: { shape: (number | string)[]; dtype: string }): InputSpec {
  const dims = shape.slice(1).map(Number);
  const scale = serverRules().ink_scale[source] ?? 1;
  const base = { shape: dims, scale, source };
  if (dtype === "int64" && y?.dtype === "int64" && y.shape.length === shape.length && y.shape.slice(1).every((d, i) => String(d) === String(shape[i + 1])))
    return { ...base, kind: "text" };
  if (dims.some((d) => !Number.isFinite(d)) || dtype.startsWith("int")) return { ...base, kind: "none" };
  if (dims.length === 3 && (dims[0] === 1 || dims[0] === 3) && dims[1] >= 4 && dims[2] >= 4 && dims[1] <= 128 && dims[2] <= 128)
    return { ...base, kind: "image", image: { c: dims[0], h: dims[1], w: dims[2] } };
  if (dims.length === 1 && source === "digits" && dims[0] === 64) return { ...base, kind: "image", image: { c: 1, h: 8, w: 8 } };
  if (dims.length === 1 && dims[0] >= 1 && dims[0] <= 64) return { ...base, kind: "tabular" };
  return { ...base, kind: "none" };
}

/** A drawing's ink (H×W values in 0..1) as the model's raw input (nested lists). */
export function drawingToInput(ink: number[][], spec: InputSpec): unknown {
  const img = spec.image!;
  const plane = ink.map((row) => row.map((v) => Math.round(v * spec.scale * 1000) / 1000));
  if (spec.shape.length === 1) return plane.flat();
  return Array.from({ length: img.c }, () => plane);
}

async function loadSpec(row: RunRow): Promise<InputSpec | null> {
  const version = await runsApi.version(row.project_id, row.version);
  const doc = version.document;
  const data = (doc.nodes ?? []).find((n) => n.type === "Dataset");
  if (!data) return null;
  const result = await api.validate(doc);
  const x = result.nodes[data.id]?.outputs?.x;
  if (!x) return null;
  const y = result.nodes[data.id]?.outputs?.y;
  return inputSpec(x.shape, String((data.params as Record<string, unknown>)?.source ?? ""), x.dtype, y);
}

function Probabilities({ result }: { result: PredictResult }) {
  const probs = result.probabilities;
  if (!probs || !Array.isArray(probs) || typeof probs[0] !== "number") return null;
  const names = result.class_names ?? probs.map((_, i) => String(i));
  const shown = probs.length > 20 ? [...probs.keys()].sort((a, b) => probs[b] - probs[a]).slice(0, 20) : [...probs.keys()];
  return (
    <div className="prob-bars" data-testid="pg-probs" role="list" aria-label="Class probabilities">
      {shown.map((i) => (
        <div key={i} className={`prob-row${i === result.prediction ? " pred" : ""}${i === result.true ? " truth" : ""}`} role="listitem">
          <span className="prob-name">{names[i] ?? i}</span>
          <span className="prob-track">
            <span className="prob-fill" style={{ width: `${(probs[i] * 100).toFixed(1)}%` }} />
          </span>
          <span className="prob-val mono">{(probs[i] * 100).toFixed(1)}%</span>
        </div>
      ))}
    </div>
  );
}

function fmtValue(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : Number(v.toPrecision(5)).toString();
  if (Array.isArray(v)) return v.length > 8 ? `[${v.slice(0, 8).map(fmtValue).join(", ")}, …] (${v.length})` : `[${v.map(fmtValue).join(", ")}]`;
  return v === null || v === undefined ? "—" : String(v);
}

/** A validation sample drawn as the model's input image (scaled to its own min..max). */
export function samplePixels(input: unknown, spec: InputSpec): number[] | null {
  const img = spec.image;
  if (!img) return null;
  const flat: number[] = [];
  const walk = (v: unknown) => (Array.isArray(v) ? v.forEach(walk) : typeof v === "number" && flat.push(v));
  walk(input);
  const plane = img.h * img.w;
  if (flat.length !== plane * img.c && flat.length !== plane) return null;
  const first = flat.slice(0, plane);
  const lo = Math.min(...first);
  const hi = Math.max(...first);
  return first.map((v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
}

function SampleImage({ input, spec }: { input: unknown; spec: InputSpec }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const pixels = samplePixels(input, spec);
  useEffect(() => {
    const c = ref.current;
    if (!c || !pixels || !spec.image) return;
    const { w, h } = spec.image;
    const ctx = c.getContext("2d")!;
    const data = ctx.createImageData(w, h);
    pixels.forEach((v, i) => {
      const g = Math.round(255 * (1 - v)); // ink dark on white, as drawn
      data.data.set([g, g, g, 255], i * 4);
    });
    ctx.putImageData(data, 0, 0);
  }, [pixels, spec]);
  if (!pixels || !spec.image) return null;
  return <canvas ref={ref} width={spec.image.w} height={spec.image.h} className="pg-preview" data-testid="pg-sample" aria-label="The validation sample" />;
}

function PredictionView({ result, spec }: { result: PredictResult; spec: InputSpec | null }) {
  const pred = result.prediction_name ?? fmtValue(result.prediction);
  const truth = result.true_name ?? (result.true !== undefined ? fmtValue(result.true) : null);
  const correct = truth !== null && result.task === "classification" ? result.prediction === result.true : null;
  return (
    <div className="pg-result" data-testid="pg-result">
      <div className="pg-line">
        {result.index !== undefined && <span className="muted">sample #{result.index}</span>}
        {result.input !== undefined && spec?.kind === "image" && <SampleImage input={result.input} spec={spec} />}
        <span>
          Prediction: <strong data-testid="pg-prediction">{pred}</strong>
        </span>
        {truth !== null && (
          <span>
            True: <strong data-testid="pg-true">{truth}</strong>
          </span>
        )}
        {correct !== null && <span className={correct ? "ok" : "err"}>{correct ? "✓ correct" : "✗ wrong"}</span>}
      </div>
      <Probabilities result={result} />
    </div>
  );
}

function DrawPad({ spec, onInput }: { spec: InputSpec; onInput: (input: unknown) => void }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const preview = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);
  const last = useRef<[number, number] | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const img = spec.image!;
  const SIZE = 168;

  const sample = useCallback((): number[][] => {
    const c = canvas.current!;
    const small = document.createElement("canvas");
    small.width = img.w;
    small.height = img.h;
    const ctx = small.getContext("2d")!;
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(c, 0, 0, img.w, img.h);
    const px = ctx.getImageData(0, 0, img.w, img.h).data;
    const ink: number[][] = [];
    for (let y = 0; y < img.h; y++) {
      const row: number[] = [];
      for (let x = 0; x < img.w; x++) row.push(px[(y * img.w + x) * 4 + 3] / 255);
      ink.push(row);
    }
    // the preview: what the model sees
    const p = preview.current;
    if (p) {
      const pc = p.getContext("2d")!;
      const cell = p.width / img.w;
      pc.clearRect(0, 0, p.width, p.height);
      for (let y = 0; y < img.h; y++)
        for (let x = 0; x < img.w; x++) {
          const v = Math.round(255 - ink[y][x] * 255);
          pc.fillStyle = `rgb(${v},${v},${v})`;
          pc.fillRect(x * cell, y * (p.height / img.h), Math.ceil(cell), Math.ceil(p.height / img.h));
        }
    }
    return ink;
  }, [img.h, img.w]);

  const schedule = useCallback(
    (delay = 120) => {
      if (timer.current) return;
      timer.current = setTimeout(() => {
        timer.current = null;
        onInput(drawingToInput(sample(), spec));
      }, delay);
    },
    [onInput, sample, spec],
  );

  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);

  const pos = (e: React.PointerEvent<HTMLCanvasElement>): [number, number] => {
    const r = e.currentTarget.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * SIZE, ((e.clientY - r.top) / r.height) * SIZE];
  };
  const stroke = (to: [number, number]) => {
    const ctx = canvas.current!.getContext("2d")!;
    const from = last.current ?? to;
    ctx.strokeStyle = "#000";
    ctx.lineWidth = SIZE / Math.max(img.w, img.h) * 1.6;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0] + 0.01, to[1]);
    ctx.stroke();
    last.current = to;
  };
  return (
    <div className="pg-draw">
      <canvas
        ref={canvas}
        width={SIZE}
        height={SIZE}
        className="pg-canvas"
        data-testid="pg-canvas"
        aria-label={`Drawing pad (${img.w}×${img.h} input)`}
        onPointerDown={(e) => {
          e.currentTarget.setPointerCapture(e.pointerId);
          drawing.current = true;
          last.current = null;
          stroke(pos(e));
          schedule();
        }}
        onPointerMove={(e) => {
          if (!drawing.current) return;
          stroke(pos(e));
          schedule();
        }}
        onPointerUp={() => {
          drawing.current = false;
          last.current = null;
          schedule(0);
        }}
      />
      <div className="pg-draw-side">
        <canvas ref={preview} width={64} height={64} className="pg-preview" aria-label="What the model sees" />
        <span className="muted small">
          {img.w}×{img.h} input
        </span>
        <button
          type="button"
          className="btn small"
          data-testid="pg-clear"
          onClick={() => {
            canvas.current!.getContext("2d")!.clearRect(0, 0, SIZE, SIZE);
            sample();
          }}
        >
          Clear
        </button>
      </div>
    </div>
  );
}

function FeatureForm({ spec, onInput }: { spec: InputSpec; onInput: (input: unknown) => void }) {
  const n = spec.shape[0];
  const [values, setValues] = useState<string[]>(() => Array.from({ length: n }, () => "0"));
  return (
    <form
      className="pg-form"
      data-testid="pg-form"
      onSubmit={(e) => {
        e.preventDefault();
        onInput(values.map((v) => Number(v) || 0));
      }}
    >
      <div className="pg-fields">
        {values.map((v, i) => (
          <label key={i}>
            <span className="muted small">x[{i}]</span>
            <input
              type="number"
              step="any"
              value={v}
              onChange={(e) => setValues(values.map((old, j) => (j === i ? e.target.value : old)))}
              data-testid={`pg-feature-${i}`}
            />
          </label>
        ))}
      </div>
      <button type="submit" className="btn small primary" data-testid="pg-form-predict">
        Predict these values
      </button>
    </form>
  );
}

function Confusion({ ev }: { ev: Evaluation }) {
  const m = ev.confusion!;
  const names = ev.class_names ?? m.map((_, i) => String(i));
  const max = Math.max(1, ...m.flat());
  return (
    <div className="pg-eval">
      <h4 className="run-sub">
        Confusion matrix <span className="muted small">({ev.samples} validation samples, accuracy <span data-testid="pg-eval-accuracy">{((ev.accuracy ?? 0) * 100).toFixed(1)}%</span>; rows: true, columns: predicted)</span>
      </h4>
      <table className="confusion" data-testid="pg-confusion">
        <thead>
          <tr>
            <th />
            {names.map((n) => (
              <th key={n} scope="col">
                {n}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {m.map((row, i) => (
            <tr key={i}>
              <th scope="row">{names[i]}</th>
              {row.map((v, j) => (
                <td key={j} className={i === j ? "diag" : v ? "off" : undefined} style={{ background: v ? `rgba(${i === j ? "59,91,219" : "217,45,32"},${(0.12 + (0.75 * v) / max).toFixed(3)})` : undefined }}>
                  {v || ""}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Scatter({ ev }: { ev: Evaluation }) {
  const pts = ev.points!;
  const pairs = pts.true.map((t, i) => [t, pts.predicted[i]]).filter(([a, b]) => a !== null && b !== null) as [number, number][];
  const all = pairs.flat();
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const W = 280;
  const pad = 28;
  const s = (v: number) => pad + ((v - lo) / (hi - lo || 1)) * (W - 2 * pad);
  return (
    <div className="pg-eval">
      <h4 className="run-sub">
        Predicted vs true <span className="muted small">({ev.samples} validation samples; MAE {fmtValue(ev.mae)}, RMSE {fmtValue(ev.rmse)}, R² {fmtValue(ev.r2)})</span>
      </h4>
      <svg width={W} height={W} className="scatter" data-testid="pg-scatter" data-points={pairs.length} role="img" aria-label="Predicted against true values">
        <line x1={s(lo)} y1={W - s(lo)} x2={s(hi)} y2={W - s(hi)} className="diag" />
        {pairs.map(([t, p], i) => (
          <circle key={i} cx={s(t)} cy={W - s(p)} r={2.2} />
        ))}
        <text x={W / 2} y={W - 4} textAnchor="middle" className="axis">
          true
        </text>
        <text x={10} y={W / 2} textAnchor="middle" className="axis" transform={`rotate(-90 10 ${W / 2})`}>
          predicted
        </text>
        <text x={pad} y={W - pad + 12} className="tick">
          {fmtValue(lo)}
        </text>
        <text x={W - pad} y={W - pad + 12} textAnchor="end" className="tick">
          {fmtValue(hi)}
        </text>
      </svg>
    </div>
  );
}

export function Playground({ row }: { row: RunRow | undefined }) {
  const [spec, setSpec] = useState<InputSpec | null>(null);
  const [result, setResult] = useState<PredictResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [index, setIndex] = useState("0");
  const [ev, setEv] = useState<Evaluation | null>(null);
  const [evError, setEvError] = useState<string | null>(null);
  const seq = useRef(0);
  const runId = row?.id;
  const ready = hasWeights(row);

  useEffect(() => {
    setResult(null);
    setError(null);
    setEv(null);
    setEvError(null);
    setSpec(null);
    if (!row || !ready) return;
    let live = true;
    const evaluate = () =>
      runsApi.evaluation(row.id).then(
        (e) => live && setEv(e),
        (e) => live && setEvError(errorText(e)),
      );
    loadSpec(row).then(
      (s) => {
        if (!live) return;
        setSpec(s);
        if (s?.kind !== "text") void evaluate(); // a language model's playground is generation
      },
      () => {
        if (!live) return;
        setSpec(null);
        void evaluate();
      },
    );
    return () => {
      live = false;
    };
  }, [runId, ready]);

  const run = useCallback(
    async (body: { index: number } | { input: unknown } | { random: true }) => {
      if (!runId) return;
      const mine = ++seq.current;
      setBusy(true);
      try {
        const r = await runsApi.predict(runId, body);
        if (mine !== seq.current) return; // a newer request (live drawing) supersedes it
        setResult(r);
        setError(null);
        if (r.index !== undefined) setIndex(String(r.index));
      } catch (e) {
        if (mine === seq.current) setError(errorText(e));
      } finally {
        if (mine === seq.current) setBusy(false);
      }
    },
    [runId],
  );

  if (!row) return <p className="run-pad muted">Select a run.</p>;
  if (!ready)
    return (
      <p className="run-pad muted" data-testid="pg-unavailable">
        The playground needs a finished run (or a stopped one with a checkpoint); this run is {row.status}.
      </p>
    );
  if (spec?.kind === "text")
    return (
      <div className="playground" data-testid="playground">
        <GeneratePanel runId={row.id} />
      </div>
    );
  return (
    <div className="playground" data-testid="playground">
      <div className="pg-controls">
        <label>
          Validation sample
          <input type="number" min={0} value={index} onChange={(e) => setIndex(e.target.value)} data-testid="pg-index" onKeyDown={(e) => e.key === "Enter" && void run({ index: Math.trunc(Number(index)) || 0 })} />
        </label>
        <button type="button" className="btn small primary" onClick={() => void run({ index: Math.trunc(Number(index)) || 0 })} data-testid="pg-predict" disabled={busy}>
          Predict
        </button>
        <button type="button" className="btn small" onClick={() => void run({ random: true })} data-testid="pg-random" disabled={busy}>
          Random sample
        </button>
        {busy && <span className="muted small">…</span>}
      </div>
      {error && (
        <div className="notice small err" data-testid="pg-error">
          {error}
        </div>
      )}
      {result && <PredictionView result={result} spec={spec} />}
      {spec?.kind === "image" && (
        <>
          <h4 className="run-sub">Draw</h4>
          <DrawPad spec={spec} onInput={(input) => void run({ input })} />
        </>
      )}
      {spec?.kind === "tabular" && (
        <>
          <h4 className="run-sub">Input features</h4>
          <FeatureForm spec={spec} onInput={(input) => void run({ input })} />
        </>
      )}
      {ev?.confusion && <Confusion ev={ev} />}
      {ev?.points && <Scatter ev={ev} />}
      {evError && <p className="muted small">{evError}</p>}
    </div>
  );
}
