// The one node component: ports, key params, output shape, parameter count and an error badge,
// all driven by the node's catalog entry and the latest validation.
import * as Tooltip from "@radix-ui/react-tooltip";
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo } from "react";
import { formatCount, paramText, type PortSpec } from "../catalog";
import type { GNode } from "../doc";
import { errorKey, useLive } from "../live";
import { nodeRefs } from "../nodeRefs";
import { nodePorts } from "../rules";
import { useEditor } from "../store";

function portTitle(p: PortSpec): string {
  let t = `${p.name} (${p.kind}${p.multi ? ", several inputs" : ""})`;
  if (p.ranks?.length) t += ` — ${p.ranks.map((r) => `${r}-D`).join(" or ")}`;
  if (p.description) t += `\n${p.description}`;
  return t;
}

function GraphNodeImpl({ id, data, selected }: NodeProps<GNode>) {
  const catalog = useEditor((s) => s.catalog);
  const scope = useEditor((s) => s.scope);
  const blocks = useEditor((s) => s.blocks);
  const info = useLive((s) => (scope === null ? s.result?.nodes[id] : undefined));
  const errors = useLive((s) => s.nodeErrors[errorKey(scope, id)]);
  const spec = catalog?.spec(data.type);
  // the nodes this one names (a tied Embedding), as text: a string keeps re-renders to changes
  const refs = useEditor((s) => (spec ? nodeRefs(spec, data.params, s.nodes).map((r) => `${r.label === null ? "!" : ""}${r.text}`).join("\n") : ""));
  if (!catalog || !spec) {
    return <div className="gnode gnode-unknown" data-testid={`node-${id}`}>Unknown type {data.type}</div>;
  }
  const { inputs, outputs } = nodePorts(catalog, { id, data } as GNode, blocks);
  const hard = errors?.filter((e) => e.severity !== "warning") ?? [];
  const warn = errors?.filter((e) => e.severity === "warning") ?? [];
  const shown = spec.params
    .filter((p) => p.kind !== "code" && p.kind !== "json" && (p.name in data.params || p.required))
    .slice(0, 3);
  const outShapes = info ? Object.entries(info.outputs) : [];
  const rows = Math.max(inputs.length, outputs.length);
  return (
    <div
      className={`gnode cat-${spec.category} role-${spec.role}${selected ? " selected" : ""}${hard.length ? " has-error" : ""}${data.trainable ? "" : " frozen"}`}
      data-testid={`node-${id}`}
      data-type={data.type}
    >
      <div className="gnode-head">
        <span className="gnode-title" title={data.label || id}>{data.label || id}</span>
        <span className="gnode-type">{data.type}{spec.role === "block" && typeof data.params.block === "string" ? ` · ${data.params.block}${Number(data.params.repeat ?? 1) > 1 ? ` ×${data.params.repeat}` : ""}` : ""}</span>
        {(hard.length > 0 || warn.length > 0) && (
          <Tooltip.Root delayDuration={150}>
            <Tooltip.Trigger asChild>
              <span
                className={`gnode-badge ${hard.length ? "err" : "warn"}`}
                data-testid={`node-error-${id}`}
                role="img"
                aria-label={`${hard.length} error(s), ${warn.length} warning(s): ${[...hard, ...warn].map((e) => e.message).join("; ")}`}
                tabIndex={0}
              >
                {hard.length || warn.length}
              </span>
            </Tooltip.Trigger>
            <Tooltip.Portal>
              <Tooltip.Content className="tooltip tooltip-error" side="top" sideOffset={6}>
                {[...hard, ...warn].map((e, i) => (
                  <div key={i}>{e.message}</div>
                ))}
                <Tooltip.Arrow className="tooltip-arrow" />
              </Tooltip.Content>
            </Tooltip.Portal>
          </Tooltip.Root>
        )}
      </div>
      {rows > 0 && (
        <div className="gnode-ports">
          {Array.from({ length: rows }, (_, i) => (
            <div className="gnode-port-row" key={i}>
              <div className="gnode-port in">
                {inputs[i] && (
                  <>
                    <Handle
                      type="target"
                      position={Position.Left}
                      id={inputs[i].name}
                      className={`port port-${inputs[i].kind}${inputs[i].multi ? " multi" : ""}`}
                      title={portTitle(inputs[i])}
                      data-testid={`port-in-${id}-${inputs[i].name}`}
                    />
                    <span>{inputs[i].name}</span>
                  </>
                )}
              </div>
              <div className="gnode-port out">
                {outputs[i] && (
                  <>
                    <span>{outputs[i].name}</span>
                    <Handle
                      type="source"
                      position={Position.Right}
                      id={outputs[i].name}
                      className={`port port-${outputs[i].kind}`}
                      title={portTitle(outputs[i])}
                      data-testid={`port-out-${id}-${outputs[i].name}`}
                    />
                  </>
                )}
              </div>
            </div>
          ))}
        </div>
      )}
      {shown.length > 0 && (
        <div className="gnode-params">
          {shown.map((p) => (
            <div key={p.name} className="gnode-param">
              <span className="k">{p.name}</span>
              <span className={`v${p.name in data.params ? "" : " missing"}`}>
                {p.name in data.params ? paramText(p, data.params[p.name]) || "—" : "required"}
              </span>
            </div>
          ))}
        </div>
      )}
      {refs !== "" &&
        refs.split("\n").map((line) => {
          const missing = line.startsWith("!");
          const text = missing ? line.slice(1) : line;
          return (
            <div key={text} className={`gnode-ref${missing ? " missing" : ""}`} data-testid={`node-ref-${id}`} role="note" aria-label={text} title={text}>
              <span aria-hidden="true">⛓ </span>
              {text}
            </div>
          );
        })}
      {spec.params.some((p) => p.kind === "code") && !catalog.customCodeAllowed && (
        <div className="gnode-note" title="Start the server with --allow-custom-code to train graphs with custom code (trusted graphs only)">
          Custom code is off on this server
        </div>
      )}
      {info && (outShapes.length > 0 || info.num_params > 0) && (
        <div className="gnode-foot">
          <span className="gnode-shape" data-testid={`node-shape-${id}`}>
            {outShapes.map(([port, s]) => (outShapes.length > 1 ? `${port}: ${s.text}` : s.text)).join("  ")}
          </span>
          {info.num_params > 0 && <span className="gnode-count" title={`${info.num_params.toLocaleString()} parameters`}>{formatCount(info.num_params)} params</span>}
        </div>
      )}
    </div>
  );
}

export const GraphNode = memo(GraphNodeImpl);
