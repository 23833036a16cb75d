// Number formatting for chart axes.

/** Compact axis numbers: 20k, 1.5M, 2e-3, 0.25. */
export function fmtNum(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  const trim = (x: number) => String(Number(x.toPrecision(3)));
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a < 1e-2) return v.toExponential(a >= 1e-10 && Number(v.toExponential(0)) === Number(v.toExponential(2)) ? 0 : 1);
  return trim(v);
}
