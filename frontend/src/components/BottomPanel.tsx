// Bottom tabs: Problems (every validation error; click focuses the node), Summary (node, type,
// output shape, params, FLOPs, totals) and Code (the generated model.py, read-only).
import * as Tabs from "@radix-ui/react-tabs";
import { useEffect, useState, type PointerEvent as ReactPointerEvent } from "react";
import { canvasApi } from "../canvasApi";
import { formatCount } from "../catalog";
import { refreshCode, useLive } from "../live";
import { problemTarget } from "../problemTarget";
import { messageWithoutNode } from "../problemText";
import { useRuns } from "../runs/store";
import { useEditor } from "../store";
import { CodeEditor } from "./CodeEditor";

function focusProblem({ node, block }: { node: string | null; block?: string }) {
  if (!node) return;
  const st = useEditor.getState();
  if ((block ?? null) !== st.scope) {
    if (block) st.openBlock(block);
    else st.closeBlock();
    setTimeout(() => canvasApi()?.focusNode(node), 80);
  } else canvasApi()?.focusNode(node);
}

function Problems() {
  const result = useLive((s) => s.result);
  const failure = useLive((s) => s.failure);
  const blocked = useRuns((s) => s.trainBlocked);
  if (failure) return <p className="msg-pad err">Validation failed: {failure}</p>;
  if (!result) return <p className="msg-pad muted">Validating…</p>;
  if (!result.errors.length) return <p className="msg-pad ok" data-testid="no-problems">No problems: the graph is valid.</p>;
  return (
    <>
      {/* in the flow above the rows, so it covers none of them */}
      {blocked && (
        <p className="train-blocked err" role="alert" data-testid="train-blocked">
          {blocked}
        </p>
      )}
      <ul className="problems" data-testid="problems-list">
        {result.errors.map((e, i) => (
          <li key={i}>
            <button type="button" className={`problem ${e.severity === "warning" ? "warn" : "err"}`} onClick={() => focusProblem(problemTarget(e))} data-testid="problem" data-node={e.node ?? ""}>
              <span className="sev" aria-hidden="true">{e.severity === "warning" ? "▲" : "●"}</span>
              <span className="where">
                {e.block ? `${e.block} › ` : ""}
                {e.node ?? "graph"}
                {e.field ? `.${e.field}` : ""}
              </span>
              <span className="msg">{messageWithoutNode(e)}</span>
              <span className="code muted">{e.code}</span>
            </button>
          </li>
        ))}
      </ul>
    </>
  );
}

function Summary() {
  const result = useLive((s) => s.result);
  const nodes = useEditor((s) => (s.scope === null ? s.nodes : s.main.nodes));
  if (!result) return <p className="msg-pad muted">Validating…</p>;
  // in the server's order (the graph walk: inputs before the nodes they feed)
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const rows = Object.keys(result.nodes).flatMap((id) => byId.get(id) ?? []);
  return (
    <table className="summary" data-testid="summary-table">
      <thead>
        <tr>
          <th scope="col">Node</th>
          <th scope="col">Type</th>
          <th scope="col">Output shape</th>
          <th scope="col" className="num">Params</th>
          <th scope="col" className="num">FLOPs</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((n) => {
          const info = result.nodes[n.id];
          return (
            <tr key={n.id} onClick={() => focusProblem({ node: n.id })}>
              <td>{n.data.label || n.id}</td>
              <td>{info.type}</td>
              <td className="mono">{Object.entries(info.outputs).map(([p, s]) => (Object.keys(info.outputs).length > 1 ? `${p}: ${s.text}` : s.text)).join(", ")}</td>
              <td className="num">{info.num_params.toLocaleString()}</td>
              <td className="num">{formatCount(info.flops)}</td>
            </tr>
          );
        })}
      </tbody>
      {result.totals && (
        <tfoot>
          <tr>
            <td colSpan={3}>
              Total{result.totals.trainable_params !== result.totals.params ? ` (${result.totals.trainable_params.toLocaleString()} trainable)` : ""}
            </td>
            <td className="num" data-testid="total-params">{result.totals.params.toLocaleString()}</td>
            <td className="num">{formatCount(result.totals.flops)}</td>
          </tr>
        </tfoot>
      )}
    </table>
  );
}

function Code({ active }: { active: boolean }) {
  const rev = useEditor((s) => s.rev);
  const code = useLive((s) => s.code);
  const codeError = useLive((s) => s.codeError);
  const ok = useLive((s) => s.result?.ok);
  useEffect(() => {
    if (!active) return;
    const t = setTimeout(() => void refreshCode(useEditor.getState().document()), 250);
    return () => clearTimeout(t);
  }, [active, rev]);
  return (
    <div className="code-tab">
      {(codeError || ok === false) && (
        <div className="notice small" data-testid="code-stale">
          {ok === false ? "The graph has errors: model.py below is from the last valid state. Fix the Problems to update it." : codeError}
        </div>
      )}
      {code !== null ? <CodeEditor value={code} readOnly ariaLabel="Generated model.py" testId="code-view" /> : <p className="msg-pad muted">Generating…</p>}
    </div>
  );
}

function clampHeight(h: number): number {
  return Math.round(Math.min(Math.max(h, 90), window.innerHeight * 0.7));
}

export function BottomPanel() {
  const [tab, setTab] = useState("problems");
  const [height, setHeight] = useState(230);
  const startResize = (e: ReactPointerEvent) => {
    e.preventDefault();
    const move = (ev: PointerEvent) => setHeight(clampHeight(window.innerHeight - ev.clientY));
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  };
  const result = useLive((s) => s.result);
  const blocked = useRuns((s) => s.trainBlocked);
  // a refused Train shows why in Problems
  useEffect(() => {
    if (blocked) setTab("problems");
  }, [blocked]);
  const errors = result?.errors.filter((e) => e.severity !== "warning").length ?? 0;
  // once the graph is valid the refusal is history (it must not come back with a later error)
  useEffect(() => {
    if (result && errors === 0 && blocked) useRuns.setState({ trainBlocked: null });
  }, [result, errors, blocked]);
  const warnings = (result?.errors.length ?? 0) - errors;
  return (
    <Tabs.Root className="bottom-panel" value={tab} onValueChange={setTab} data-testid="bottom-panel" style={{ height }}>
      <div
        className="resize-handle"
        role="separator"
        aria-orientation="horizontal"
        aria-label="Resize the bottom panel (arrow keys)"
        aria-valuenow={height}
        tabIndex={0}
        onPointerDown={startResize}
        onKeyDown={(e) => {
          if (e.key === "ArrowUp") setHeight((h) => clampHeight(h + 20));
          else if (e.key === "ArrowDown") setHeight((h) => clampHeight(h - 20));
        }}
      />
      <Tabs.List className="tabs" aria-label="Graph details">
        <Tabs.Trigger value="problems" className="tab" data-testid="tab-problems">
          Problems {errors + warnings > 0 && <span className={`pill ${errors ? "err" : "warn"}`} data-testid="problem-count">{errors + warnings}</span>}
        </Tabs.Trigger>
        <Tabs.Trigger value="summary" className="tab" data-testid="tab-summary">
          Summary
        </Tabs.Trigger>
        <Tabs.Trigger value="code" className="tab" data-testid="tab-code">
          Code
        </Tabs.Trigger>
      </Tabs.List>
      <Tabs.Content value="problems" className="tab-body">
        <Problems />
      </Tabs.Content>
      <Tabs.Content value="summary" className="tab-body">
        <Summary />
      </Tabs.Content>
      <Tabs.Content value="code" className="tab-body">
        <Code active={tab === "code"} />
      </Tabs.Content>
    </Tabs.Root>
  );
}
