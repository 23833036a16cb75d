// Token previews for text data: a sample's decoded text and its tokens next to their ids, as
// the server's preview gives them (server/engine/data/preview.py: samples[i].text/.tokens/.x).

export type TokenSample = { x: unknown; y: unknown; label?: string; text?: string; tokens?: string[] };

export type TokenCell = { text: string; id: number; pad: boolean };

/** Whether a sample carries decoded text (a source with a tokenizer). */
export function hasTokens(s: TokenSample): boolean {
  return typeof s.text === "string" && Array.isArray(s.tokens);
}

/** Each shown token's text beside its id; whitespace made visible, padding marked. At most
 *  `limit` cells (the preview already cuts long samples). */
export function tokenCells(s: TokenSample, padId: number | null | undefined, limit = 64): TokenCell[] {
  const ids = Array.isArray(s.x) ? (s.x as unknown[]).flat(2) : [];
  const tokens = s.tokens ?? [];
  const out: TokenCell[] = [];
  for (let i = 0; i < Math.min(tokens.length, ids.length, limit); i++) {
    const id = Number(ids[i]);
    out.push({ text: visible(tokens[i]), id, pad: padId != null && id === padId });
  }
  return out;
}

/** Whitespace and control characters shown as symbols, so " " and "\n" tokens can be seen. */
export function visible(token: string): string {
  return token.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

/** The preview's one-line summary of token data (empty for other data). */
export function tokenSummary(p: { tokenizer?: unknown; vocab_size?: unknown; pad_id?: unknown; x_dtype?: unknown }): string {
  if (p.x_dtype !== "int64" || typeof p.vocab_size !== "number") return "";
  const parts = [`${p.vocab_size.toLocaleString("en-US")} token ids`];
  if (typeof p.tokenizer === "string") parts.push(`${p.tokenizer} tokenizer`);
  if (typeof p.pad_id === "number") parts.push(`pad id ${p.pad_id}`);
  return parts.join(" · ");
}
