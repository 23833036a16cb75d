// The Runs dock: a right-hand drawer over the editor with the run panel (status, progress,
// charts, log), the runs history and comparison, the playground and the downloads; plus the
// in-page notices when a run ends. It follows the open project and polls its runs.
import { useEffect } from "react";
import { useSession } from "../session";
import { useFeed } from "./feed";
import { Downloads, downloadModelPy } from "./Downloads";
import { Playground } from "./Playground";
import { RunPanel, useSelectedRow } from "./RunPanel";
import { RunsTable } from "./RunsTable";
import { dismiss, refreshRows, select, setProject, useRuns, type DockTab } from "./store";
import "./runs.css";

const POLL_MS = 3000;

const TABS: [DockTab, string][] = [
  ["run", "Run"],
  ["history", "History"],
  ["playground", "Playground"],
  ["downloads", "Downloads"],
];

function Notices() {
  const notices = useRuns((s) => s.notices);
  if (!notices.length) return null;
  return (
    <div className="run-notices" role="status" aria-live="polite">
      {notices.map((n) => (
        <div key={n.id} className={`run-notice st-${n.status}`} data-testid="run-notice" data-run={n.runId} data-status={n.status}>
          <button
            type="button"
            className="link"
            onClick={() => {
              select(n.runId);
              useRuns.setState({ open: true, tab: n.status === "finished" ? "playground" : "run" });
              dismiss(n.id);
            }}
          >
            {n.text}
          </button>
          <button type="button" className="btn icon" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

/** Keeps the runs store on the open project and polls its runs (background-run notices). */
function useFollowProject() {
  const pid = useSession((s) => s.projectId);
  useEffect(() => {
    void setProject(pid);
  }, [pid]);
  useEffect(() => {
    const t = setInterval(() => {
      if (document.visibilityState === "visible") void refreshRows();
    }, POLL_MS);
    return () => clearInterval(t);
  }, []);
}

export function RunsDock() {
  useFollowProject();
  const open = useRuns((s) => s.open);
  const wide = useRuns((s) => s.wide);
  const tab = useRuns((s) => s.tab);
  const connected = useFeed((s) => s.connected);
  const [selected, row] = useSelectedRow();
  return (
    <>
      <Notices />
      {open && (
        <aside className={`runs-dock${wide || tab === "history" ? " wide" : ""}`} data-testid="runs-dock" aria-label="Runs">
          <div className="dock-head">
            <div className="tabs" role="tablist">
              {TABS.map(([k, label]) => (
                <button key={k} type="button" role="tab" className="tab" data-state={tab === k ? "active" : "inactive"} aria-selected={tab === k} onClick={() => useRuns.setState({ tab: k })} data-testid={`runs-tab-${k}`}>
                  {label}
                </button>
              ))}
            </div>
            <span className="spacer" />
            <span className={`conn ${connected ? "ok" : "off"}`} title={connected ? "Live updates connected" : "Live updates disconnected: reconnecting"} data-testid="runs-connection">
              ●
            </span>
            <button type="button" className="btn small ghost" onClick={() => void downloadModelPy()} title="Download the current graph's model.py">
              model.py
            </button>
            <button type="button" className="btn small ghost" onClick={() => useRuns.setState({ wide: !wide })} title={wide ? "Narrower" : "Wider"} aria-label={wide ? "Narrower" : "Wider"}>
              {wide ? "⇥" : "⇤"}
            </button>
            <button type="button" className="btn small ghost" onClick={() => useRuns.setState({ open: false })} aria-label="Close the runs panel" data-testid="runs-close">
              ×
            </button>
          </div>
          <div className="dock-body">
            {tab === "run" &&
              (selected ? (
                <RunPanel key={selected} runId={selected} row={row} />
              ) : (
                <p className="run-pad muted" data-testid="runs-none">
                  No run yet. Press <strong>Train</strong> (Ctrl+Enter) to validate, save and train this graph.
                </p>
              ))}
            {tab === "history" && <RunsTable />}
            {tab === "playground" && <Playground key={selected ?? ""} row={row} />}
            {tab === "downloads" && <Downloads row={row} />}
          </div>
        </aside>
      )}
    </>
  );
}
