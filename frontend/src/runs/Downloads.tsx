// Downloads: a run's code zip (model.py, train.py, README), state_dict .pt, .safetensors, ONNX
// (with the parity figure the server measured), the graph document it trained; and from the
// editor the current model.py.
import { useEffect, useState } from "react";
import { api } from "../api";
import { errorText, toast } from "../session";
import { useEditor } from "../store";
import { exportUrl, runsApi, type OnnxReport } from "./runsApi";
import { hasWeights, type RunRow } from "./types";

function saveBlob(name: string, text: string, type: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function safeName(s: string): string {
  return (s || "graph").replace(/[^\w.-]+/g, "_");
}

export async function downloadModelPy(): Promise<void> {
  try {
    const doc = useEditor.getState().document();
    const { source } = await api.codegen(doc);
    saveBlob("model.py", source, "text/x-python");
  } catch (e) {
    toast(`Cannot generate model.py: ${errorText(e)}`);
  }
}

function Link({ run, name, label, hint }: { run: string; name: string; label: string; hint: string }) {
  return (
    <li>
      <a className="btn small" href={exportUrl(run, name)} download data-testid={`dl-${name.replace(/\./g, "-")}`}>
        ⤓ {label}
      </a>
      <span className="muted small">{hint}</span>
    </li>
  );
}

function OnnxParity({ runId }: { runId: string }) {
  const [report, setReport] = useState<OnnxReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setReport(null);
    setError(null);
    runsApi.onnxReport(runId).then(
      (r) => live && setReport(r),
      (e) => live && setError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [runId]);
  if (error) return <span className="err small" data-testid="dl-onnx-error">ONNX export failed: {error}</span>;
  if (!report) return <span className="muted small">exporting and checking in onnxruntime…</span>;
  const ok = report.within_tolerance ?? report.max_abs_diff <= (report.tolerance ?? 1e-4);
  return (
    <span className={`small ${ok ? "ok" : "err"}`} data-testid="dl-onnx-parity" data-max-abs-diff={report.max_abs_diff}>
      opset {report.opset}; max |ONNX − torch| = {report.max_abs_diff.toExponential(2)} on {report.samples ?? "?"} {report.sample_source ?? ""} samples {ok ? "✓" : "✗"}
    </span>
  );
}

export function Downloads({ row }: { row: RunRow | undefined }) {
  const ready = hasWeights(row);
  const downloadGraph = async () => {
    if (!row) return;
    try {
      const v = await runsApi.version(row.project_id, row.version);
      saveBlob(`${safeName(v.name)}-v${row.version}.json`, JSON.stringify(v.document, null, 2) + "\n", "application/json");
    } catch (e) {
      toast(`Cannot download the graph: ${errorText(e)}`);
    }
  };
  return (
    <div className="downloads" data-testid="downloads">
      <h4 className="run-sub">From the editor</h4>
      <ul className="dl-list">
        <li>
          <button type="button" className="btn small" onClick={() => void downloadModelPy()} data-testid="dl-model-py">
            ⤓ model.py
          </button>
          <span className="muted small">the current graph's generated module</span>
        </li>
      </ul>
      <h4 className="run-sub">From run {row ? row.id.slice(0, 8) : "—"}</h4>
      {!row ? (
        <p className="muted small">Select a run.</p>
      ) : (
        <ul className="dl-list">
          <li>
            <button type="button" className="btn small" onClick={() => void downloadGraph()} data-testid="dl-graph">
              ⤓ graph.json
            </button>
            <span className="muted small">the graph document it trained (version {row.version})</span>
          </li>
          {ready ? (
            <>
              <Link run={row.id} name="code.zip" label="code.zip" hint="model.py, train.py, graph.json, preprocess.json, README" />
              <Link run={row.id} name="state_dict.pt" label="state_dict.pt" hint="torch.save of the state_dict" />
              <Link run={row.id} name="model.safetensors" label="model.safetensors" hint="the same weights as safetensors" />
              <li>
                <a className="btn small" href={exportUrl(row.id, "model.onnx")} download data-testid="dl-model-onnx">
                  ⤓ model.onnx
                </a>
                <OnnxParity runId={row.id} />
              </li>
            </>
          ) : (
            <li className="muted small">Weights are exported once the run finishes (or is stopped with a checkpoint); it is {row.status}.</li>
          )}
        </ul>
      )}
    </div>
  );
}
