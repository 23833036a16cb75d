// The data source: built-in datasets, uploaded files (CSV, NPZ/NPY, safetensors, text, image
// zip, MNIST, CIFAR-10) with an upload form and a preview (shapes, classes, samples as
// thumbnails, or decoded text next to token ids for text data).
import { useEffect, useRef, useState } from "react";
import { api, type BuiltinDataset, type UploadedDataset } from "../api";
import { datasetPickers, paramVisible, type NodeSpec } from "../catalog";
import { TEXT_OPTIONS, staleReadOptions } from "../datasetReads";
import type { GNode } from "../doc";
import { errorText, toast } from "../session";
import { useEditor } from "../store";
import { hasTokens, tokenCells, tokenSummary, type TokenSample } from "../tokenPreview";

// Dataset params the upload form takes for text data (server/api/datasets.py reads them)

type Preview = Record<string, unknown> & {
  num_samples?: number;
  x_shape?: number[];
  task?: string;
  num_classes?: number | null;
  is_image?: boolean;
  classes?: { id: number; name: string; count: number }[];
  samples?: TokenSample[];
  pad_id?: number | null;
};

function TokenView({ sample, padId }: { sample: TokenSample; padId: number | null | undefined }) {
  return (
    <div className="ds-tokens" data-testid="dataset-tokens">
      <div className="ds-text">{sample.text}</div>
      <div className="ds-token-ids">
        {tokenCells(sample, padId).map((c, i) => (
          <span key={i} className={c.pad ? "ds-token muted" : "ds-token"} title={`id ${c.id}`}>
            <code>{c.text}</code>
            <sub>{c.id}</sub>
          </span>
        ))}
      </div>
    </div>
  );
}

function Thumb({ x }: { x: unknown }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    if (!c || !Array.isArray(x)) return;
    const chw = x as number[][][];
    const channels = chw.length;
    const h = chw[0]?.length ?? 0;
    const w = chw[0]?.[0]?.length ?? 0;
    if (!h || !w) return;
    c.width = w;
    c.height = h;
    let lo = Infinity;
    let hi = -Infinity;
    for (const ch of chw) for (const row of ch) for (const v of row) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    const ctx = c.getContext("2d");
    if (!ctx) return;
    const img = ctx.createImageData(w, h);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const k = (i * w + j) * 4;
        for (let ch = 0; ch < 3; ch++) img.data[k + ch] = (chw[channels === 3 ? ch : 0][i][j] - lo) * scale;
        img.data[k + 3] = 255;
      }
    ctx.putImageData(img, 0, 0);
  }, [x]);
  return <canvas ref={ref} className="thumb" aria-hidden="true" />;
}

function PreviewView({ preview }: { preview: Preview }) {
  return (
    <div className="ds-preview" data-testid="dataset-preview">
      <div>
        {preview.num_samples?.toLocaleString()} samples · x {JSON.stringify(preview.x_shape)} · {preview.task}
        {preview.num_classes ? ` · ${preview.num_classes} classes` : ""}
      </div>
      {tokenSummary(preview) && <div className="muted small">{tokenSummary(preview)}</div>}
      {preview.classes && (
        <div className="muted small">
          {preview.classes.slice(0, 12).map((c) => `${c.name}: ${c.count}`).join(" · ")}
          {preview.classes.length > 12 ? " …" : ""}
        </div>
      )}
      <div className="ds-samples">
        {(preview.samples ?? []).map((s, i) => (
          <div key={i} className="ds-sample">
            {preview.is_image ? (
              <Thumb x={s.x} />
            ) : hasTokens(s) ? (
              <TokenView sample={s} padId={preview.pad_id} />
            ) : (
              <code>{JSON.stringify(s.x).slice(0, 60)}</code>
            )}
            <span className="muted small">{s.label ?? JSON.stringify(s.y)}</span>
          </div>
        ))}
      </div>
    </div>
  );
}

/** The built-in and uploaded datasets; null (and a toast saying why) when they cannot be listed. */
export async function loadDatasetLists(): Promise<{ builtin: BuiltinDataset[]; uploaded: UploadedDataset[] } | null> {
  try {
    return await api.datasets();
  } catch (e) {
    toast(`Cannot list the datasets: ${errorText(e)}`);
    return null;
  }
}

export function DatasetPanel({ node, spec }: { node: GNode; spec: NodeSpec }) {
  const [builtin, setBuiltin] = useState<BuiltinDataset[]>([]);
  const [uploaded, setUploaded] = useState<UploadedDataset[]>([]);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [busy, setBusy] = useState(false);
  const file = useRef<HTMLInputElement>(null);
  const source = (node.data.params.source as string | undefined) ?? "digits";
  const datasetId = node.data.params.dataset_id as string | undefined;

  const refresh = () =>
    loadDatasetLists().then((d) => {
      if (!d) return;
      setBuiltin(d.builtin);
      setUploaded(d.uploaded);
    });
  useEffect(() => {
    void refresh();
  }, []);
  const info = builtin.find((b) => b.name === source);
  // built-in token sources (e.g. markov_text) are previewed with the node's params
  const builtinTokens = info?.x_dtype === "int64";
  const paramsKey = builtinTokens ? JSON.stringify(node.data.params) : "";
  useEffect(() => {
    setPreview(null);
    if (source === "file" && datasetId) {
      api.datasetPreview(datasetId).then((p) => setPreview(p.preview as Preview), () => setPreview(null));
    } else if (builtinTokens) {
      api.builtinPreview(source, JSON.parse(paramsKey) as Record<string, unknown>).then(
        (p) => setPreview(p.preview as Preview),
        () => setPreview(null),
      );
    }
  }, [source, datasetId, builtinTokens, paramsKey]);

  // a read option changed on the node (tokenizer, block_size, ...): read the upload again so
  // that the shapes and the vocabulary shown are the data's (debounced while typing)
  const current = uploaded.find((d) => d.id === datasetId);
  const staleKey = source === "file" ? JSON.stringify(staleReadOptions(node.data.params, current)) : "{}";
  useEffect(() => {
    if (staleKey === "{}" || !datasetId) return;
    const timer = setTimeout(() => {
      const form = new FormData();
      for (const [k, v] of Object.entries(JSON.parse(staleKey) as Record<string, string>)) form.append(k, v);
      setBusy(true);
      api
        .rereadDataset(datasetId, form)
        .then(
          (d) => {
            setUploaded((list) => list.map((u) => (u.id === d.id ? d : u)));
            setPreview(d.preview as Preview);
            use(d);
          },
          (e) => toast(`Cannot read ${current?.name ?? "the upload"} with these options: ${errorText(e)}`),
        )
        .finally(() => setBusy(false));
    }, 500);
    return () => clearTimeout(timer);
  }, [staleKey, datasetId]);

  const use = (d: UploadedDataset) => {
    const st = useEditor.getState();
    st.checkpoint();
    for (const [k, v] of Object.entries(d.dataset_params ?? { source: "file", dataset_id: d.id })) st.updateParam(node.id, k, v);
  };
  // the training data takes the upload's params (shapes, options); another dataset-id param
  // (the validation set) takes the id only
  const pick = (name: string, d: UploadedDataset | undefined) => {
    if (d && (d.dataset_params === undefined || name in d.dataset_params)) return use(d);
    const st = useEditor.getState();
    st.checkpoint();
    st.updateParam(node.id, name, d ? d.id : undefined);
  };
  const pickers = datasetPickers(spec).filter((p) => p.name === "dataset_id" || (source === "file" && paramVisible(p, node.data.params, spec)));

  const upload = async (f: File) => {
    const form = new FormData();
    form.append("file", f);
    form.append("name", f.name);
    // the text options already set on the node are how the upload is read (tokenizer, T, ...)
    for (const key of TEXT_OPTIONS) {
      const v = node.data.params[key];
      if (v !== undefined && v !== null && v !== "") form.append(key, String(v));
    }
    setBusy(true);
    try {
      const created = await api.uploadDataset(form);
      toast(`Uploaded ${f.name}`);
      await refresh();
      use(created);
    } catch (e) {
      toast(`Upload failed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="ds-panel" data-testid="dataset-panel">
      <h3 className="insp-section">Data</h3>
      {info && (
        <p className="muted small" data-testid="dataset-info">
          {info.description} — x {JSON.stringify(info.x_shape)}, {info.samples.toLocaleString()} samples, {info.task}
          {info.num_classes ? ` (${info.num_classes} classes)` : ""}
        </p>
      )}
      {uploaded.length > 0 &&
        pickers.map((p) => {
          const value = node.data.params[p.name];
          const main = p.name === "dataset_id";
          return (
            <div className="field" key={p.name} data-testid={`pick-${p.name}`}>
              <label htmlFor={`ds-${p.name}`}>{main ? "Uploaded datasets" : p.name}</label>
              <select
                id={`ds-${p.name}`}
                value={source === "file" && typeof value === "string" ? value : ""}
                onChange={(e) => pick(p.name, uploaded.find((u) => u.id === e.target.value))}
              >
                <option value="">{main ? "— choose —" : "— none —"}</option>
                {uploaded.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.name}
                  </option>
                ))}
              </select>
              {!main && <div className="field-desc">{p.description}</div>}
            </div>
          );
        })}
      <input
        ref={file}
        type="file"
        hidden
        accept=".csv,.tsv,.txt,.npz,.npy,.safetensors,.zip,.gz,.idx,.bin,.ubyte"
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) void upload(f);
          e.target.value = "";
        }}
        data-testid="dataset-file"
        aria-label="Dataset file"
      />
      <button type="button" className="btn small" disabled={busy} onClick={() => file.current?.click()}>
        {busy ? "Uploading…" : "Upload a dataset (CSV, text, NPZ, safetensors, image zip)…"}
      </button>
      {preview && <PreviewView preview={preview} />}
    </div>
  );
}
