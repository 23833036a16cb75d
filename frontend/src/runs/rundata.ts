// One run's data as the browser holds it: the events applied once each (EventStream), turned
// into chart series, the per-epoch table, the log, progress and status.
import { EventStream } from "./merge";
import { Series } from "./series";
import type { RunEvent, RunStatus } from "./types";

export interface EpochPoint {
  epoch: number;
  train_loss?: number;
  val_loss?: number;
  val_accuracy?: number;
  val_top5?: number;
  val_miou?: number; // per-pixel classifiers: mean IoU over the classes present
  val_mae?: number;
  val_rmse?: number;
  val_r2?: number;
  val_perplexity?: number; // language models: exp of the mean validation cross-entropy per token
  lr?: number;
  samples_per_s?: number;
  epoch_time?: number;
  peak_memory_mb?: number;
  steps?: number;
  [k: string]: number | undefined;
}

export interface LogLine {
  seq: number;
  time: number;
  level: "info" | "warn" | "error";
  text: string;
}

const LOG_LIMIT = 2000;
const RATE_WINDOW = 40; // step events used for the step rate (ETA)

export class RunData {
  readonly stream: EventStream;
  /** loss per global step */
  readonly loss = new Series(1024);
  /** learning rate per global step */
  readonly lr = new Series(1024);
  epochs: EpochPoint[] = [];
  log: LogLine[] = [];
  /** log lines dropped from the front of `log` (LOG_LIMIT): the console says so */
  logDropped = 0;
  started: Record<string, any> | null = null;
  /** the status the events give (null before any run_started / terminal event) */
  eventStatus: RunStatus | null = null;
  eventStatusSeq = 0;
  reason: string | null = null;
  final: Record<string, any> | null = null;
  /** completed epochs (the last epoch event) */
  epoch = 0;
  /** the last global step */
  step = 0;
  /** the epoch the latest step belongs to (1-based) */
  currentEpoch = 0;
  /** (time, step) of recent step events, for the step rate */
  private recent: [number, number][] = [];
  /** bumped on every applied batch (charts and panels re-read) */
  version = 0;
  loaded = false;

  constructor(
    readonly id: string,
    private readonly logLimit = LOG_LIMIT, // Infinity for the full log download (fullLog.ts)
  ) {
    this.stream = new EventStream((events) => this.apply(events));
  }

  apply(events: RunEvent[]): void {
    for (const e of events) this.one(e);
    this.version += 1;
  }

  private one(e: RunEvent): void {
    const d = e.data ?? {};
    switch (e.type) {
      case "run_started":
        this.started = d;
        this.setStatus("running", e.seq);
        this.reason = null;
        this.recent = [];
        this.line(e, "info", startedText(d));
        if (d.resumed_from) this.line(e, "info", `resumed from ${basename(String(d.resumed_from))}`);
        break;
      case "step": {
        const step = Number(d.step);
        if (Number.isFinite(step)) {
          this.loss.push(step, num(d.loss));
          if (d.lr !== undefined) this.lr.push(step, num(d.lr));
          this.step = step;
          this.recent.push([e.time, step]);
          if (this.recent.length > RATE_WINDOW) this.recent.shift();
        }
        if (d.epoch !== undefined) this.currentEpoch = Number(d.epoch);
        break;
      }
      case "epoch": {
        const p: EpochPoint = { epoch: Number(d.epoch) };
        for (const [k, v] of Object.entries(d)) if (typeof v === "number") p[k] = v;
        // a resumed run may repeat epochs: the newest timeline replaces them
        while (this.epochs.length && this.epochs[this.epochs.length - 1].epoch >= p.epoch) this.epochs.pop();
        this.epochs.push(p);
        this.epoch = p.epoch;
        this.currentEpoch = p.epoch;
        if (typeof d.steps === "number") this.step = Math.max(this.step, d.steps);
        this.line(e, "info", epochText(p));
        break;
      }
      case "checkpoint":
        // the end-of-epoch checkpoints are implied by the epoch lines; a mid-epoch one (stop) is not
        if (d.position) this.line(e, "info", `checkpoint: epoch ${d.epoch}, step ${d.step}`);
        break;
      case "log":
        this.line(e, d.level === "warning" || d.level === "warn" ? "warn" : d.level === "error" ? "error" : "info", String(d.message ?? d.text ?? JSON.stringify(d)));
        break;
      case "finished":
        this.setStatus("finished", e.seq);
        this.final = d.final ?? null;
        this.line(e, "info", `finished: ${d.epochs} epochs, ${d.steps} steps in ${fmtSeconds(Number(d.duration))}`);
        break;
      case "failed":
        this.setStatus("failed", e.seq);
        this.reason = String(d.reason ?? d.message ?? "failed");
        this.line(e, "error", `failed${d.code ? ` (${d.code})` : ""}: ${this.reason}`);
        break;
      case "stopped":
        this.setStatus("stopped", e.seq);
        this.reason = d.reason ? String(d.reason) : null;
        this.line(e, "warn", `stopped${d.epoch !== undefined ? ` at epoch ${d.epoch}` : ""}${d.step !== undefined ? `, step ${d.step}` : ""}${d.reason ? `: ${d.reason}` : ""}`);
        break;
      default:
        this.line(e, "info", `${e.type}: ${JSON.stringify(d)}`);
    }
  }

  private setStatus(s: RunStatus, seq: number) {
    this.eventStatus = s;
    this.eventStatusSeq = seq;
  }

  private line(e: RunEvent, level: LogLine["level"], text: string) {
    this.log.push({ seq: e.seq, time: e.time, level, text });
    if (this.log.length > this.logLimit) {
      this.logDropped += this.log.length - this.logLimit;
      this.log.splice(0, this.log.length - this.logLimit);
    }
  }

  get totalSteps(): number | null {
    const s = this.started;
    if (!s || typeof s.steps_per_epoch !== "number" || typeof s.epochs !== "number") return null;
    return s.steps_per_epoch * s.epochs;
  }

  /** steps per second over the recent step events (null when unknown) */
  stepRate(): number | null {
    if (this.recent.length < 2) return null;
    const [t0, s0] = this.recent[0];
    const [t1, s1] = this.recent[this.recent.length - 1];
    return t1 > t0 && s1 > s0 ? (s1 - s0) / (t1 - t0) : null;
  }

  /** seconds left at the recent step rate */
  eta(): number | null {
    const total = this.totalSteps;
    const rate = this.stepRate();
    if (total === null || rate === null) return null;
    return Math.max(0, (total - this.step) / rate);
  }

  lastEpoch(): EpochPoint | undefined {
    return this.epochs[this.epochs.length - 1];
  }
}

function num(v: unknown): number {
  return typeof v === "number" ? v : v === null || v === undefined ? NaN : Number(v);
}

function basename(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

function startedText(d: Record<string, any>): string {
  const parts = [`started on ${d.device_name ?? d.device ?? "?"}`];
  if (d.precision) parts.push(String(d.precision));
  if (d.epochs) parts.push(`${d.epochs} epochs × ${d.steps_per_epoch} steps`);
  if (d.batch_size) parts.push(`batch ${d.batch_size}`);
  if (d.train_samples !== undefined) parts.push(`${d.train_samples} train / ${d.val_samples} val samples`);
  if (d.params !== undefined) parts.push(`${Number(d.params).toLocaleString()} params`);
  let text = parts.join(", ");
  const why = [d.device_reason, d.precision_reason].filter(Boolean).join("; ");
  if (why) text += ` (${why})`;
  if (d.step_mode || d.data_mode) text += ` — ${[d.step_mode, d.data_mode].filter(Boolean).join(", ")}`;
  return text;
}

function epochText(p: EpochPoint): string {
  const f = (v: number | undefined, digits = 4) => (v === undefined ? "—" : Number(v.toPrecision(digits)).toString());
  const parts = [`epoch ${p.epoch}: train loss ${f(p.train_loss)}`];
  if (p.val_loss !== undefined) parts.push(`val loss ${f(p.val_loss)}`);
  if (p.val_accuracy !== undefined) parts.push(`val acc ${(p.val_accuracy * 100).toFixed(2)}%`);
  if (p.val_miou !== undefined) parts.push(`mIoU ${f(p.val_miou)}`);
  if (p.val_perplexity !== undefined) parts.push(`perplexity ${f(p.val_perplexity)}`);
  if (p.val_mae !== undefined) parts.push(`val MAE ${f(p.val_mae)}`);
  if (p.val_r2 !== undefined) parts.push(`R² ${f(p.val_r2)}`);
  if (p.samples_per_s !== undefined) parts.push(`${Math.round(p.samples_per_s)} samples/s`);
  if (p.epoch_time !== undefined) parts.push(fmtSeconds(p.epoch_time));
  return parts.join(", ");
}

export function fmtSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const r = Math.round(s % 60);
  if (m < 60) return `${m}m ${String(r).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}
