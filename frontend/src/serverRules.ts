// Rules the server defines (server/rules.py), served with the catalog under "rules": the
// editor reads them here and keeps no copy of its own that could drift from the server's.
export interface ServerRules {
  /** the most events one subscribe reply replays; a reply that long may be truncated */
  replay_limit: number;
  /** a run is ranked by the first of these its epochs report */
  monitored_metrics: { name: string; higher_is_better: boolean }[];
  /** per built-in image dataset, the raw value of full ink (sklearn's digits hold 0..16) */
  ink_scale: Record<string, number>;
}

let current: ServerRules | null = null;

export function setServerRules(rules: ServerRules): void {
  current = rules;
}

export function serverRules(): ServerRules {
  if (!current) throw new Error("the server's rules are not loaded yet (they come with the catalog)");
  return current;
}

/** Whether a larger value of this metric is better (unknown metrics: higher). */
export function higherIsBetter(name: string): boolean {
  return serverRules().monitored_metrics.find((m) => m.name === name)?.higher_is_better ?? true;
}
