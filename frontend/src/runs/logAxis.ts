// A log-scale y axis for the run charts: the range snaps to whole decades and the ticks are the
// powers of ten inside it, so a learning rate decaying 1e-4 → 1e-8 reads 1e-4, 1e-5, … 1e-8
// (uPlot's own log splits on a narrow or very wide range give one or two labels).

const MAX_TICKS = 7;

function exponent(v: number, round: (x: number) => number): number {
  // log10 of a decimal power of ten can miss the integer by an ulp (log10(1e-7) ≈ -6.9999…)
  const e = Math.log10(v);
  const near = Math.round(e);
  return Math.abs(e - near) < 1e-9 ? near : round(e);
}

/** The drawn range for positive data from `min` to `max`: whole decades, at least one. */
export function logRange(min: number | null, max: number | null): [number, number] {
  if (min === null || max === null || !(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) return [0.1, 1];
  let lo = exponent(min, Math.floor);
  let hi = exponent(max, Math.ceil);
  if (hi <= lo) {
    // flat data (a constant rate) on a decade: show the decade either side
    lo -= 1;
    hi += 1;
  }
  return [Number(`1e${lo}`), Number(`1e${hi}`)];
}

/** Tick values: the powers of ten in [min, max], every k-th one when there are too many. */
export function decadeSplits(min: number, max: number): number[] {
  if (!(min > 0) || !(max >= min)) return [];
  const lo = exponent(min, Math.ceil);
  const hi = exponent(max, Math.floor);
  const step = Math.max(1, Math.ceil((hi - lo + 1) / MAX_TICKS));
  const out: number[] = [];
  for (let e = hi; e >= lo; e -= step) out.unshift(Number(`1e${e}`));
  return out;
}
