// How a validation problem reads in one line. The server's messages often start with the node's
// id already ("crossentropyloss1: input 'target' … is not connected"); where the UI names the node
// itself, that prefix is dropped so the id is said once.
import type { GraphErrorJson } from "./api";

type Problem = Pick<GraphErrorJson, "node" | "message"> & { block?: string };

/** The message without a leading "<node>: " (the caller shows the node). */
export function messageWithoutNode(e: Problem): string {
  const prefix = e.node ? `${e.node}: ` : null;
  return prefix && e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

/** "block › node: message", or "graph: message" for graph-level problems. */
export function problemLine(e: Problem): string {
  return `${e.block ? `${e.block} › ` : ""}${e.node ?? "graph"}: ${messageWithoutNode(e)}`;
}

/** Why Train refused: the error count and the first error, naming its node once. */
export function blockedText(errors: Problem[]): string {
  const n = errors.length;
  const head = `Fix ${n} error${n === 1 ? "" : "s"} before training`;
  return errors.length ? `${head} — ${problemLine(errors[0])}` : head;
}
