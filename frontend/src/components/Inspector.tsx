// The inspector: the selected node's params as typed widgets from its catalog entry, inline
// errors, descriptions, shapes, params and FLOPs; label, freeze, block and custom-code editing.
import { useEffect, useId, useState } from "react";
import { useShallow } from "zustand/react/shallow";
import type { GraphErrorJson, NodeInfo } from "../api";
import { checkParam, formatCount, paramListed, paramText, parseParamText, type ParamSpec } from "../catalog";
import type { GNode } from "../doc";
import { errorKey, useLive } from "../live";
import { useEditor } from "../store";
import { offersFreeze } from "../freezable";
import { CodeEditor } from "./CodeEditor";
import { DatasetPanel } from "./DatasetPanel";

function ParamField({ node, p, info, serverErrors }: { node: GNode; p: ParamSpec; info?: NodeInfo; serverErrors: GraphErrorJson[] }) {
  const id = useId();
  const value = node.data.params[p.name];
  const set = (v: unknown) => useEditor.getState().updateParam(node.id, p.name, v);
  const [text, setText] = useState(() => paramText(p, value));
  const [focused, setFocused] = useState(false);
  useEffect(() => {
    if (!focused) setText(paramText(p, value));
  }, [value, focused, p]);
  const clientError = checkParam(p, value);
  const messages = [...(clientError && clientError !== "required" ? [clientError] : []), ...serverErrors.map((e) => e.message)];
  const inferred = info?.inferred?.[p.name];
  const placeholder =
    inferred !== undefined
      ? `auto: ${paramText(p, inferred)}`
      : p.inferred
        ? "auto (from the input)"
        : p.default !== undefined
          ? p.default === null
            ? "auto"
            : `default: ${paramText(p, p.default)}`
          : "required";
  const range =
    p.min !== undefined || p.max !== undefined
      ? ` Range: ${p.min !== undefined ? (p.exclusive_min ? `> ${p.min}` : `≥ ${p.min}`) : ""}${p.min !== undefined && p.max !== undefined ? ", " : ""}${p.max !== undefined ? `≤ ${p.max}` : ""}.`
      : "";
  const hint = `${p.description}${range}${p.length ? ` ${p.length} values.` : ""}`;
  let widget;
  const common = {
    id,
    "aria-invalid": messages.length > 0,
    "aria-describedby": `${id}-desc`,
    "data-testid": `param-${p.name}`,
  };
  if (p.kind === "bool") {
    const checked = value === undefined ? p.default === true : value === true;
    widget = <input type="checkbox" {...common} checked={checked} onChange={(e) => set(e.target.checked)} />;
  } else if (p.kind === "choice") {
    const current = value === undefined ? "" : JSON.stringify(value);
    widget = (
      <select {...common} value={current} onChange={(e) => set(e.target.value === "" ? undefined : JSON.parse(e.target.value))}>
        <option value="">{p.default !== undefined ? `default (${String(p.default)})` : "— choose —"}</option>
        {(p.choices ?? []).map((c) => (
          <option key={JSON.stringify(c)} value={JSON.stringify(c)}>
            {String(c)}
          </option>
        ))}
      </select>
    );
  } else if (p.kind === "code") {
    widget = (
      <CodeEditor value={typeof value === "string" ? value : String(p.default ?? "")} onChange={(v) => set(v)} ariaLabel={`${p.name} (Python)`} testId={`param-${p.name}`} />
    );
  } else {
    const numeric = (p.kind === "int" || p.kind === "float") && !p.strings?.length;
    const multiline = p.kind === "json";
    const onText = (t: string) => {
      setText(t);
      set(parseParamText(p, t));
    };
    widget = multiline ? (
      <textarea {...common} rows={3} value={text} placeholder={placeholder} onFocus={() => setFocused(true)} onBlur={() => setFocused(false)} onChange={(e) => onText(e.target.value)} spellCheck={false} />
    ) : (
      <input
        {...common}
        type={numeric ? "number" : "text"}
        inputMode={numeric ? (p.kind === "int" ? "numeric" : "decimal") : undefined}
        step={numeric ? (p.kind === "int" ? 1 : "any") : undefined}
        min={numeric ? p.min : undefined}
        max={numeric ? p.max : undefined}
        value={text}
        placeholder={placeholder}
        onFocus={() => setFocused(true)}
        onBlur={() => setFocused(false)}
        onChange={(e) => onText(e.target.value)}
        spellCheck={false}
      />
    );
  }
  return (
    <div className={`field${messages.length ? " invalid" : ""}${p.kind === "bool" ? " field-bool" : ""}`} data-testid={`field-${p.name}`}>
      <label htmlFor={id}>
        {p.name}
        {p.required && <span className="req" title="required"> *</span>}
      </label>
      {widget}
      <div className="field-desc" id={`${id}-desc`}>
        {hint}
      </div>
      {messages.map((m, i) => (
        <div className="field-error" role="alert" key={i} data-testid={`field-error-${p.name}`}>
          {m}
        </div>
      ))}
    </div>
  );
}

function Shapes({ info }: { info: NodeInfo }) {
  const ins = Object.entries(info.inputs).flatMap(([port, list]) => list.map((s, i) => [list.length > 1 ? `${port}[${i}]` : port, s.text] as const));
  const outs = Object.entries(info.outputs).map(([port, s]) => [port, s.text] as const);
  return (
    <dl className="facts" data-testid="inspector-facts">
      {ins.map(([k, v]) => (
        <div key={`i-${k}`}>
          <dt>in · {k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
      {outs.map(([k, v]) => (
        <div key={`o-${k}`}>
          <dt>out · {k}</dt>
          <dd data-testid={`inspector-out-${k}`}>{v}</dd>
        </div>
      ))}
      <div>
        <dt>params</dt>
        <dd>
          {info.num_params.toLocaleString()}
          {info.trainable_params !== info.num_params ? ` (${info.trainable_params.toLocaleString()} trainable)` : ""}
        </dd>
      </div>
      <div>
        <dt>FLOPs</dt>
        <dd>{formatCount(info.flops)}</dd>
      </div>
    </dl>
  );
}

function NodeInspector({ node }: { node: GNode }) {
  const catalog = useEditor((s) => s.catalog)!;
  const scope = useEditor((s) => s.scope);
  const blocks = useEditor((s) => s.blocks);
  const info = useLive((s) => (scope === null ? s.result?.nodes[node.id] : undefined));
  const errors = useLive((s) => s.nodeErrors[errorKey(scope, node.id)]) ?? [];
  const spec = catalog.spec(node.data.type);
  const [label, setLabel] = useState(node.data.label ?? "");
  useEffect(() => setLabel(node.data.label ?? ""), [node.id, node.data.label]);
  if (!spec) return <p className="msg-pad">Unknown node type {node.data.type}.</p>;
  const nodeLevel = errors.filter((e) => !e.field || !spec.params.some((p) => p.name === e.field));
  const visible = spec.params.filter((p) => paramListed(p, node.data.params, spec));
  const isCustom = spec.params.some((p) => p.kind === "code");
  return (
    <div className="inspector-body" data-testid="inspector-node" data-node={node.id}>
      <div className="insp-head">
        <div className={`insp-type cat-fg-${spec.category}`}>{spec.type}</div>
        <div className="insp-doc">{spec.doc}</div>
      </div>
      <div className="field">
        <label htmlFor="node-label">Label</label>
        <input
          id="node-label"
          value={label}
          placeholder={node.id}
          onChange={(e) => {
            setLabel(e.target.value);
            useEditor.getState().setLabel(node.id, e.target.value);
          }}
          data-testid="node-label"
        />
        <div className="field-desc">Display name; also names the submodule in model.py. Id: {node.id}</div>
      </div>
      {offersFreeze(spec, info) && (
        <div className="field field-bool">
          <label htmlFor="node-trainable">Trainable</label>
          <input id="node-trainable" type="checkbox" checked={node.data.trainable} onChange={(e) => useEditor.getState().setTrainable(node.id, e.target.checked)} data-testid="node-trainable" />
          <div className="field-desc">Off freezes this node's parameters (requires_grad = False).</div>
        </div>
      )}
      {nodeLevel.length > 0 && (
        <div className="insp-errors" role="alert">
          {nodeLevel.map((e, i) => (
            <div key={i} className={e.severity === "warning" ? "warn" : "err"}>
              {e.message}
            </div>
          ))}
        </div>
      )}
      {isCustom && !catalog.customCodeAllowed && (
        <div className="notice" role="note" data-testid="custom-code-off">
          This server does not run custom code: the graph validates but cannot train or export here. Start the server with
          <code> --allow-custom-code</code> (trusted graphs only).
        </div>
      )}
      {spec.role === "block" && (
        <div className="field">
          <label htmlFor="block-def">Block definition</label>
          <select id="block-def" value={typeof node.data.params.block === "string" ? node.data.params.block : ""} onChange={(e) => useEditor.getState().updateParam(node.id, "block", e.target.value || undefined)} data-testid="block-def">
            <option value="">— choose —</option>
            {Object.keys(blocks).map((b) => (
              <option key={b} value={b}>
                {b}
              </option>
            ))}
          </select>
          {typeof node.data.params.block === "string" && blocks[node.data.params.block] && (
            <button type="button" className="btn small" onClick={() => useEditor.getState().openBlock(node.data.params.block as string)} data-testid="open-block">
              Open block {String(node.data.params.block)}
            </button>
          )}
        </div>
      )}
      {spec.role === "data" && <DatasetPanel node={node} spec={spec} />}
      <h3 className="insp-section">Parameters</h3>
      {visible.filter((p) => !(spec.role === "block" && p.name === "block")).map((p) => (
        <ParamField key={p.name} node={node} p={p} info={info} serverErrors={errors.filter((e) => e.field === p.name)} />
      ))}
      {!visible.length && <p className="muted">No parameters.</p>}
      {info && (
        <>
          <h3 className="insp-section">Shapes &amp; size</h3>
          <Shapes info={info} />
        </>
      )}
      <div className="insp-actions">
        <button type="button" className="btn danger small" onClick={() => useEditor.getState().deleteNode(node.id)}>
          Delete node
        </button>
      </div>
    </div>
  );
}

export function Inspector() {
  const selectedNodes = useEditor(useShallow((s) => s.nodes.filter((n) => n.selected)));
  const count = selectedNodes.length;
  const node = count === 1 ? selectedNodes[0] : null;
  const totals = useLive((s) => s.result?.totals);
  const name = useEditor((s) => s.name);
  const nodes = useEditor((s) => s.nodes.length);
  return (
    <aside className="inspector" aria-label="Inspector" data-testid="inspector">
      {node ? (
        <NodeInspector key={node.id} node={node} />
      ) : count > 1 ? (
        <div className="inspector-body">
          <h2 className="insp-title">{count} nodes selected</h2>
          <div className="insp-actions col">
            <button type="button" className="btn" onClick={() => useEditor.getState().groupSelection()} data-testid="group-selection">
              Group into block (Ctrl+G)
            </button>
            <button type="button" className="btn" onClick={() => useEditor.getState().duplicateSelection()}>
              Duplicate (Ctrl+D)
            </button>
            <button type="button" className="btn danger" onClick={() => useEditor.getState().deleteSelection()}>
              Delete (Del)
            </button>
          </div>
        </div>
      ) : (
        <div className="inspector-body">
          <h2 className="insp-title">{name}</h2>
          <p className="muted">
            {nodes} node{nodes === 1 ? "" : "s"}
            {totals ? ` · ${totals.params.toLocaleString()} parameters · ${formatCount(totals.flops)} FLOPs` : ""}
          </p>
          <p className="muted">Select a node to edit its parameters. Drag nodes from the palette, or focus one and press Enter. Connect an output (right) to an input (left). Press ? for shortcuts.</p>
        </div>
      )}
    </aside>
  );
}
