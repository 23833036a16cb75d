// Which of a file Dataset's read options (tokenizer, block_size, text column, ...) the node has
// changed since its upload was read: those need the upload read again, or the editor would show
// the shapes and vocabulary of the old options until a run re-read the file.
import type { UploadedDataset } from "./api";

export const TEXT_OPTIONS = ["tokenizer", "bpe_vocab_size", "block_size", "text_column", "max_length"] as const;

/** The text read options set on the node that differ from how its upload was read, as form
 * values; empty when they agree or the node has no upload. */
export function staleReadOptions(params: Record<string, unknown>, upload: UploadedDataset | undefined): Record<string, string> {
  const read = upload?.dataset_params;
  if (!read) return {};
  const out: Record<string, string> = {};
  for (const key of TEXT_OPTIONS) {
    const v = params[key];
    if (v === undefined || v === null || v === "") continue;
    if (String(v) !== String(read[key] ?? "")) out[key] = String(v);
  }
  return out;
}
