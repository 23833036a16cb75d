/**
 * window.__torchloomRuns for the browser tests (tests/e2e): what a run's chart holds, and a
 * dropped connection on demand. Loaded only when the page asks for it before it starts
 * (window.__torchloomTestHooks = true, set by the tests' init script): a separate chunk that
 * the editor itself never loads.
 */
import { connectCount, debugSteps, dropConnection } from "./runs/feed";

export function installTestHooks(): void {
  (window as unknown as { __torchloomRuns: unknown }).__torchloomRuns = {
    steps: debugSteps,
    connects: connectCount,
    dropConnection,
  };
}
