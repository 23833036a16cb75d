import * as Tooltip from "@radix-ui/react-tooltip";
import { ReactFlowProvider } from "@xyflow/react";
import { useEffect } from "react";
import { group, layout, save } from "./actions";
import { canvasApi } from "./canvasApi";
import { BottomPanel } from "./components/BottomPanel";
import { Canvas } from "./components/Canvas";
import { Dialogs } from "./components/Dialogs";
import { Inspector } from "./components/Inspector";
import { Palette } from "./components/Palette";
import { TopBar } from "./components/TopBar";
import { RunsDock } from "./runs/RunsDock";
import { scheduleValidation } from "./live";
import { flushSave, openProjectFromAddress, scheduleSave, toast, useSession } from "./session";
import { useEditor } from "./store";
import { openDialog, useUi } from "./ui";

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  return el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName) || !!el.closest?.(".cm-editor");
}

function onKey(e: KeyboardEvent) {
  if (useUi.getState().dialog) return;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  const st = useEditor.getState();
  if (mod && key === "s") {
    e.preventDefault();
    save();
    return;
  }
  if (typing(e.target)) return;
  if (mod && key === "z" && !e.shiftKey) {
    e.preventDefault();
    st.undo();
  } else if (mod && ((key === "z" && e.shiftKey) || key === "y")) {
    e.preventDefault();
    st.redo();
  } else if (mod && (key === "c" || key === "v")) {
    // the browser's copy / paste events follow (handled below): they reach the system clipboard
    // without a permission prompt
  } else if (mod && key === "d") {
    e.preventDefault();
    st.duplicateSelection();
  } else if (mod && key === "a") {
    e.preventDefault();
    st.selectAll();
  } else if (mod && key === "g") {
    e.preventDefault();
    group();
  } else if (!mod && (e.key === "Delete" || e.key === "Backspace")) {
    e.preventDefault();
    st.deleteSelection();
  } else if (!mod && e.key === "?") {
    e.preventDefault();
    openDialog("shortcuts");
  } else if (!mod && e.key === "/") {
    e.preventDefault();
    document.getElementById("palette-search")?.focus();
  } else if (!mod && !e.altKey && key === "l") {
    e.preventDefault();
    void layout();
  } else if (!mod && !e.altKey && key === "f") {
    e.preventDefault();
    canvasApi()?.fitView();
  } else if (e.key === "Escape") {
    st.select([]);
  }
}

/** Copy the selected nodes as JSON (torchloom.clipboard/1) onto the system clipboard. */
function onCopy(e: ClipboardEvent) {
  if (useUi.getState().dialog || typing(e.target) || hasTextSelection()) return;
  const text = useEditor.getState().copySelection();
  if (!text || !e.clipboardData) return;
  e.clipboardData.setData("text/plain", text);
  e.preventDefault();
  const n = useEditor.getState().nodes.filter((x) => x.selected).length;
  toast(`Copied ${n} node${n === 1 ? "" : "s"}`);
}

/** Paste nodes from the system clipboard (another project's copy too), else the last copy. */
function onPaste(e: ClipboardEvent) {
  if (useUi.getState().dialog || typing(e.target)) return;
  const st = useEditor.getState();
  const text = e.clipboardData?.getData("text/plain") ?? "";
  let ids = text ? st.paste(text) : [];
  if (!ids.length) ids = st.paste(null);
  if (ids.length) {
    e.preventDefault();
    toast(`Pasted ${ids.length} node${ids.length === 1 ? "" : "s"}`);
  }
}

function hasTextSelection(): boolean {
  const sel = window.getSelection();
  return !!sel && !sel.isCollapsed && sel.toString().length > 0;
}

export function App() {
  useEffect(() => {
    // validate every document change (debounced, stale answers dropped) and autosave it
    const unsub = useEditor.subscribe((s, prev) => {
      if (s.rev === prev.rev) return;
      // a newly opened graph is validated at once; edits are debounced
      scheduleValidation(() => useEditor.getState().document(), s.viewKey !== prev.viewKey ? 0 : 150);
      if (useSession.getState().projectId && s.rev !== useSession.getState().savedRev) scheduleSave();
    });
    scheduleValidation(() => useEditor.getState().document(), 0);
    window.addEventListener("keydown", onKey);
    window.addEventListener("copy", onCopy);
    window.addEventListener("paste", onPaste);
    // a project id typed or pasted into the address bar (#/p/<id>) opens that project
    const onHash = () => {
      const id = /^#\/p\/([\w-]+)/.exec(location.hash)?.[1];
      if (id && id !== useSession.getState().projectId) void openProjectFromAddress(id);
    };
    window.addEventListener("hashchange", onHash);
    const beforeUnload = (e: BeforeUnloadEvent) => {
      const state = useSession.getState().saveState;
      if (state === "dirty" || state === "saving") {
        void flushSave();
        e.preventDefault();
      }
    };
    window.addEventListener("beforeunload", beforeUnload);
    return () => {
      unsub();
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("copy", onCopy);
      window.removeEventListener("paste", onPaste);
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("beforeunload", beforeUnload);
    };
  }, []);
  const toastText = useSession((s) => s.toast);
  return (
    <ReactFlowProvider>
      <Tooltip.Provider>
        <div className="app">
          <TopBar />
          <div className="main">
            <Palette />
            <div className="workspace">
              <Canvas />
              <BottomPanel />
            </div>
            <Inspector />
          </div>
          <Dialogs />
          <RunsDock />
          {toastText && (
            <div className="toast" role="status" data-testid="toast">
              {toastText}
            </div>
          )}
        </div>
      </Tooltip.Provider>
    </ReactFlowProvider>
  );
}
