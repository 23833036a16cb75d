// The top bar's training controls: Train (Ctrl+Enter), the run-settings popover (epochs, batch
// size, device from /api/system, precision, fast path, seed) and the Runs panel toggle.
import * as Popover from "@radix-ui/react-popover";
import { useEffect, useState } from "react";
import { useEditor } from "../store";
import { useUi } from "../ui";
import { runsApi, type Device } from "./runsApi";
import { openDock, setSettings, train, useRuns } from "./store";
import { isActive } from "./types";

function onKey(e: KeyboardEvent) {
  if (!(e.ctrlKey || e.metaKey) || e.key !== "Enter" || e.altKey || e.shiftKey) return;
  if (useUi.getState().dialog) return;
  const el = e.target as HTMLElement | null;
  if (el?.closest?.(".cm-editor")) return; // a code editor keeps its own Ctrl+Enter
  e.preventDefault();
  void train();
}

function trainingParams(): Record<string, unknown> {
  const st = useEditor.getState();
  const nodes = st.scope === null ? st.nodes : st.main.nodes;
  const node = nodes.find((n) => n.data.type === "Training");
  return (node?.data.params as Record<string, unknown>) ?? {};
}

function Settings() {
  const s = useRuns((st) => st.settings);
  const [devices, setDevices] = useState<Device[] | null>(null);
  useEffect(() => {
    runsApi.system().then(
      (r) => setDevices(r.devices),
      () => setDevices([{ name: "cpu", kind: "cpu" }]),
    );
  }, []);
  const g = trainingParams();
  const ph = (k: string, fallback: string) => (g[k] !== undefined && g[k] !== null ? `${g[k]} (graph)` : fallback);
  return (
    <div className="run-settings" data-testid="run-settings">
      <h4>Run settings</h4>
      <p className="muted small">Blank: the Training node's value. Applies to the next run.</p>
      <label>
        Epochs
        <input type="number" min={1} value={s.epochs} placeholder={ph("epochs", "graph")} onChange={(e) => setSettings({ epochs: e.target.value })} data-testid="set-epochs" />
      </label>
      <label>
        Batch size
        <input type="number" min={1} value={s.batch_size} placeholder={ph("batch_size", "graph")} onChange={(e) => setSettings({ batch_size: e.target.value })} data-testid="set-batch-size" />
      </label>
      <label>
        Device
        <select value={s.device} onChange={(e) => setSettings({ device: e.target.value })} data-testid="set-device">
          <option value="">{ph("device", "graph / auto")}</option>
          <option value="auto">auto</option>
          {(devices ?? []).map((d) => (
            <option key={d.name} value={d.name}>
              {d.name}
              {d.label ? ` — ${d.label}` : ""}
              {d.memory_mb ? ` (${Math.round(d.memory_mb / 1024)} GB)` : ""}
            </option>
          ))}
        </select>
      </label>
      <label>
        Precision
        <select value={s.precision} onChange={(e) => setSettings({ precision: e.target.value })} data-testid="set-precision">
          <option value="">{ph("precision", "graph")}</option>
          <option value="fp32">fp32</option>
          <option value="bf16">bf16</option>
          <option value="fp16">fp16</option>
        </select>
      </label>
      <label>
        Fast path
        <select value={s.fast_path} onChange={(e) => setSettings({ fast_path: e.target.value as "" | "on" | "off" })} data-testid="set-fast-path">
          <option value="">{ph("fast_path", "graph")}</option>
          <option value="on">on (data on the device)</option>
          <option value="off">off (DataLoader)</option>
        </select>
      </label>
      <label>
        Seed
        <input type="number" value={s.seed} placeholder={ph("seed", "graph")} onChange={(e) => setSettings({ seed: e.target.value })} data-testid="set-seed" />
      </label>
      <button type="button" className="btn small ghost" onClick={() => setSettings({ epochs: "", batch_size: "", device: "", precision: "", fast_path: "", seed: "" })} data-testid="set-reset">
        Reset to the graph's
      </button>
    </div>
  );
}

export function TrainControls() {
  const starting = useRuns((s) => s.starting);
  const open = useRuns((s) => s.open);
  const active = useRuns((s) => s.rows.filter((r) => isActive(r.status)).length);
  const overridden = useRuns((s) => Object.values(s.settings).some((v) => v !== ""));
  useEffect(() => {
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  return (
    <div className="train-controls">
      <button type="button" className="btn primary" onClick={() => void train()} disabled={starting} title="Validate, save a version and train (Ctrl+Enter)" data-testid="train">
        {starting ? "Starting…" : <><span aria-hidden="true">▶ </span>Train</>}
      </button>
      <Popover.Root>
        <Popover.Trigger className={`btn ghost${overridden ? " set" : ""}`} aria-label="Run settings" title="Run settings" data-testid="run-settings-open">
          ⚙{overridden ? "•" : ""}
        </Popover.Trigger>
        <Popover.Portal>
          <Popover.Content className="menu popover" sideOffset={6} align="end">
            <Settings />
          </Popover.Content>
        </Popover.Portal>
      </Popover.Root>
      <button
        type="button"
        className={`btn ghost${open ? " on" : ""}`}
        onClick={() => (open ? useRuns.setState({ open: false }) : openDock())}
        title="Runs, charts, playground and downloads"
        data-testid="runs-toggle"
        aria-pressed={open}
      >
        Runs{active ? <span className="pill run-pill">{active}</span> : null}
      </button>
    </div>
  );
}
