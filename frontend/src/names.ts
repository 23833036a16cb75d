// Fresh node ids and block names next to the ones already taken.

/** `base` lower-cased to an identifier, numbered from 1: linear1, linear2, ... */
export function uniqueId(base: string, taken: Set<string>): string {
  const stem = base.replace(/[^A-Za-z0-9_]/g, "").toLowerCase() || "node";
  for (let i = 1; ; i++) {
    const id = `${stem}${i}`;
    if (!taken.has(id)) return id;
  }
}

/** `base` itself when free, else numbered from 2: Block, Block2, ... */
export function uniqueName(base: string, taken: Set<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}
