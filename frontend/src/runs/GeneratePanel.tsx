// The playground of a language-model run: a prompt and the sampling settings; Generate streams
// the sampled continuation in over the socket as it is sampled, Stop ends it between slices.
import { useEffect, useReducer, useRef, useState } from "react";
import { feedSocket } from "./feed";
import { genReducer, genRequest, initialGen, isRunning, type GenAction, type GenForm } from "./generation";

export function GeneratePanel({ runId }: { runId: string }) {
  const [state, dispatch] = useReducer(genReducer, initialGen);
  const [form, setForm] = useState<GenForm>({ prompt: "", temperature: "0.8", topK: "", maxNewTokens: "200", seed: "0" });
  const [formError, setFormError] = useState<string | null>(null);
  const idRef = useRef<string | null>(null);
  idRef.current = state.id;

  useEffect(() => {
    const socket = feedSocket();
    const onPiece = (m: { id: string; text: string }) => dispatch({ type: "piece", id: m.id, text: m.text });
    const onEnd = (m: Extract<GenAction, { type: "end" }>) => dispatch({ ...m, type: "end" });
    const onLost = () => dispatch({ type: "lost" });
    socket.on("generation", onPiece);
    socket.on("generation_end", onEnd);
    socket.on("disconnect", onLost);
    return () => {
      socket.off("generation", onPiece);
      socket.off("generation_end", onEnd);
      socket.off("disconnect", onLost);
      if (idRef.current) socket.emit("generate_stop", { id: idRef.current });
    };
  }, [runId]);

  const running = isRunning(state);
  const start = () => {
    const req = genRequest(form);
    if ("error" in req) {
      setFormError(req.error);
      return;
    }
    setFormError(null);
    dispatch({ type: "start", prompt: req.prompt });
    feedSocket().emit("generate", { run_id: runId, ...req }, (reply: { ok: boolean; id?: string; error?: string }) =>
      dispatch(reply?.ok && reply.id ? { type: "started", id: reply.id } : { type: "refused", error: reply?.error ?? "generation refused" }),
    );
  };
  const stop = () => {
    if (!state.id) return;
    dispatch({ type: "stop" });
    feedSocket().emit("generate_stop", { id: state.id });
  };
  const field = (key: keyof GenForm) => ({
    value: form[key],
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => setForm({ ...form, [key]: e.target.value }),
  });

  return (
    <form
      className="pg-generate"
      data-testid="pg-generate"
      aria-label="Generate text"
      onSubmit={(e) => {
        e.preventDefault();
        if (!running) start();
      }}
    >
      <label className="pg-prompt">
        Prompt
        <textarea rows={3} {...field("prompt")} data-testid="pg-prompt" aria-label="Prompt" />
      </label>
      <div className="pg-controls">
        <label>
          Temperature
          <input type="number" min={0} max={100} step="0.1" {...field("temperature")} data-testid="pg-temperature" aria-label="Temperature" />
        </label>
        <label>
          Top-k
          <input type="number" min={0} step={1} placeholder="all" {...field("topK")} data-testid="pg-top-k" aria-label="Top-k" />
        </label>
        <label>
          Max new tokens
          <input type="number" min={1} step={1} {...field("maxNewTokens")} data-testid="pg-max-new" aria-label="Max new tokens" />
        </label>
        <label>
          Seed
          <input type="number" min={0} step={1} {...field("seed")} data-testid="pg-seed" aria-label="Seed" />
        </label>
        <button type="submit" className="btn small primary" disabled={running} data-testid="pg-generate-btn">
          Generate
        </button>
        <button type="button" className="btn small" disabled={state.status !== "streaming"} onClick={stop} data-testid="pg-stop">
          Stop
        </button>
        {running && <span className="muted small">{state.status === "stopping" ? "stopping…" : "sampling…"}</span>}
      </div>
      {(formError || state.error) && (
        <div className="notice small err" role="alert" data-testid="pg-gen-error">
          {formError ?? state.error}
        </div>
      )}
      <pre className="pg-text" data-testid="pg-text" role="log" aria-label="Generated text" tabIndex={0}>
        <span className="muted">{state.prompt}</span>
        {state.text}
      </pre>
      {state.status === "stopped" && <span className="muted small">stopped</span>}
    </form>
  );
}
