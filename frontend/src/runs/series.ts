// Chart data buffers: growable typed arrays of (x, y) points with x increasing, and the
// exponential-moving-average smoothing of the loss curve (debiased, as TensorBoard does).

export class Series {
  private xs: Float64Array;
  private ys: Float64Array;
  length = 0;
  /** bumped whenever points are dropped (truncate, clear): cached derivations restart */
  generation = 0;

  constructor(capacity = 256) {
    this.xs = new Float64Array(capacity);
    this.ys = new Float64Array(capacity);
  }

  /** Append a point. An x at or below the last one (a run resumed from an earlier checkpoint
   * repeats steps) first drops every point from that x on: the newest timeline wins. */
  push(x: number, y: number): void {
    if (this.length && x <= this.xs[this.length - 1]) this.truncateFrom(x);
    if (this.length === this.xs.length) this.grow();
    this.xs[this.length] = x;
    this.ys[this.length] = y;
    this.length += 1;
  }

  /** Drop every point with x >= `x`. */
  truncateFrom(x: number): void {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.xs[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    if (lo !== this.length) this.generation += 1;
    this.length = lo;
  }

  clear(): void {
    this.length = 0;
    this.generation += 1;
  }

  /** Views of the filled part (no copy; valid until the next push). */
  x(): Float64Array {
    return this.xs.subarray(0, this.length);
  }

  y(): Float64Array {
    return this.ys.subarray(0, this.length);
  }

  lastX(): number | undefined {
    return this.length ? this.xs[this.length - 1] : undefined;
  }

  lastY(): number | undefined {
    return this.length ? this.ys[this.length - 1] : undefined;
  }

  private grow(): void {
    const cap = this.xs.length * 2;
    const xs = new Float64Array(cap);
    const ys = new Float64Array(cap);
    xs.set(this.xs);
    ys.set(this.ys);
    this.xs = xs;
    this.ys = ys;
  }
}

/** Debiased exponential moving average: out[i] = ema_i / (1 - w^(i+1)), with ema_i =
 * w·ema_{i-1} + (1-w)·y_i. w = 0 returns the values unchanged. Non-finite values are carried
 * through without entering the average. */
export function smooth(values: ArrayLike<number>, weight: number, out?: Float64Array): Float64Array {
  const n = values.length;
  const res = out && out.length >= n ? out.subarray(0, n) : new Float64Array(n);
  const w = Math.min(Math.max(weight, 0), 0.999);
  let ema = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      res[i] = v;
      continue;
    }
    ema = w * ema + (1 - w) * v;
    count += 1;
    res[i] = w === 0 ? v : ema / (1 - Math.pow(w, count));
  }
  return res;
}

/** Incremental smoothing of a Series: recomputes only the new tail, unless the weight changed
 * or the series was truncated. */
export class Smoother {
  private out = new Float64Array(0);
  private done = 0;
  private ema = 0;
  private count = 0;
  private weight = -1;
  private generation = -1;

  values(series: Series, weight: number): Float64Array {
    const n = series.length;
    const ys = series.y();
    const w = Math.min(Math.max(weight, 0), 0.999);
    // restart when the weight changed or points were dropped
    if (w !== this.weight || n < this.done || series.generation !== this.generation) {
      this.generation = series.generation;
      this.done = 0;
      this.ema = 0;
      this.count = 0;
      this.weight = w;
    }
    if (this.out.length < n) {
      const grown = new Float64Array(Math.max(n, this.out.length * 2, 256));
      grown.set(this.out.subarray(0, this.done));
      this.out = grown;
    }
    for (let i = this.done; i < n; i++) {
      const v = ys[i];
      if (!Number.isFinite(v)) {
        this.out[i] = v;
        continue;
      }
      this.ema = w * this.ema + (1 - w) * v;
      this.count += 1;
      this.out[i] = w === 0 ? v : this.ema / (1 - Math.pow(w, this.count));
    }
    this.done = n;
    return this.out.subarray(0, n);
  }
}

/** Evenly thin (x, y) to at most `max` points for display, keeping the first and last. */
export function thin(xs: ArrayLike<number>, ys: ArrayLike<number>, max: number): [number[], number[]] {
  const n = xs.length;
  if (n <= max) return [Array.from(xs), Array.from(ys)];
  const ox: number[] = [];
  const oy: number[] = [];
  const step = (n - 1) / (max - 1);
  for (let i = 0; i < max; i++) {
    const j = Math.round(i * step);
    ox.push(xs[j]);
    oy.push(ys[j]);
  }
  return [ox, oy];
}
