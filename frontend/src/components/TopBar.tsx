// The top bar: project name, saved state, validation state, project and edit menus.
import * as Menu from "@radix-ui/react-dropdown-menu";
import { useEffect, useRef, useState } from "react";
import { copy, group, layout, paste } from "../actions";
import { canvasApi } from "../canvasApi";
import { useLive } from "../live";
import { exportDocument, importFile, newProject, saveNow, useSession } from "../session";
import { useEditor } from "../store";
import { openDialog } from "../ui";
import { TrainControls } from "../runs/TrainControls";

const SAVE_TEXT = { saved: "Saved", dirty: "Unsaved changes", saving: "Saving…", error: "Save failed" } as const;

function Item({ onSelect, children, shortcut, testId, disabled }: { onSelect: () => void; children: string; shortcut?: string; testId?: string; disabled?: boolean }) {
  return (
    <Menu.Item className="menu-item" onSelect={onSelect} data-testid={testId} disabled={disabled}>
      {children}
      {shortcut && <span className="menu-shortcut">{shortcut}</span>}
    </Menu.Item>
  );
}

export function TopBar() {
  const name = useEditor((s) => s.name);
  const canUndo = useEditor((s) => s.past.length > 0);
  const canRedo = useEditor((s) => s.future.length > 0);
  const saveState = useSession((s) => s.saveState);
  const saveError = useSession((s) => s.error);
  const result = useLive((s) => s.result);
  const pending = useLive((s) => s.pending);
  const [draft, setDraft] = useState(name);
  const file = useRef<HTMLInputElement>(null);
  useEffect(() => setDraft(name), [name]);
  const errors = result?.errors.filter((e) => e.severity !== "warning").length ?? 0;

  const commitName = () => {
    const v = draft.trim();
    if (v && v !== name) useEditor.getState().rename(v);
    else setDraft(name);
  };

  return (
    <header className="topbar">
      <div className="brand" aria-label="torchloom">
        <span className="logo" aria-hidden="true">◈</span> torchloom
      </div>
      <Menu.Root>
        <Menu.Trigger className="btn ghost" data-testid="menu-project">
          Project ▾
        </Menu.Trigger>
        <Menu.Portal>
          <Menu.Content className="menu" sideOffset={4} align="start">
            <Item onSelect={() => void newProject("Untitled")} testId="menu-new">New project</Item>
            <Item onSelect={() => openDialog("projects")} testId="menu-open">Open…</Item>
            <Item onSelect={() => openDialog("examples")} testId="menu-examples">Examples…</Item>
            <Item onSelect={() => openDialog("versions")} testId="menu-versions">Versions…</Item>
            <Menu.Separator className="menu-sep" />
            <Item onSelect={() => file.current?.click()} testId="menu-import">Import JSON…</Item>
            <Item onSelect={exportDocument} testId="menu-export">Export JSON</Item>
            <Menu.Separator className="menu-sep" />
            <Item onSelect={() => void saveNow("saved")} shortcut="Ctrl+S">Save now</Item>
          </Menu.Content>
        </Menu.Portal>
      </Menu.Root>
      <Menu.Root>
        <Menu.Trigger className="btn ghost" data-testid="menu-edit">
          Edit ▾
        </Menu.Trigger>
        <Menu.Portal>
          <Menu.Content className="menu" sideOffset={4} align="start">
            <Item onSelect={() => useEditor.getState().undo()} shortcut="Ctrl+Z" disabled={!canUndo}>Undo</Item>
            <Item onSelect={() => useEditor.getState().redo()} shortcut="Ctrl+Shift+Z" disabled={!canRedo}>Redo</Item>
            <Menu.Separator className="menu-sep" />
            <Item onSelect={() => void copy()} shortcut="Ctrl+C">Copy</Item>
            <Item onSelect={() => void paste()} shortcut="Ctrl+V">Paste</Item>
            <Item onSelect={() => useEditor.getState().duplicateSelection()} shortcut="Ctrl+D">Duplicate</Item>
            <Item onSelect={() => useEditor.getState().deleteSelection()} shortcut="Del">Delete</Item>
            <Item onSelect={() => useEditor.getState().selectAll()} shortcut="Ctrl+A">Select all</Item>
            <Menu.Separator className="menu-sep" />
            <Item onSelect={group} shortcut="Ctrl+G" testId="menu-group">Group into block</Item>
            <Item onSelect={() => void layout()} shortcut="L" testId="menu-layout">Auto-layout</Item>
            <Item onSelect={() => canvasApi()?.fitView()} shortcut="F">Fit view</Item>
          </Menu.Content>
        </Menu.Portal>
      </Menu.Root>
      <input
        ref={file}
        type="file"
        accept=".json,application/json"
        hidden
        data-testid="import-file"
        aria-label="Import a graph document"
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) void importFile(f);
          e.target.value = "";
        }}
      />
      <div className="project-name">
        <input
          aria-label="Project name"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onBlur={commitName}
          onKeyDown={(e) => {
            if (e.key === "Enter") (e.target as HTMLInputElement).blur();
            if (e.key === "Escape") {
              setDraft(name);
              (e.target as HTMLInputElement).blur();
            }
          }}
          data-testid="project-name"
        />
      </div>
      <span className={`status save-${saveState}`} data-testid="save-state" title={saveError ?? undefined} role="status">
        {SAVE_TEXT[saveState]}
      </span>
      <span className={`status ${errors ? "err" : result ? "ok" : ""}`} data-testid="valid-state" role="status">
        {pending && !result ? "Validating…" : errors ? `${errors} error${errors === 1 ? "" : "s"}` : result ? "Valid" : ""}
      </span>
      <div className="spacer" />
      <TrainControls />
      <button type="button" className="btn ghost" onClick={() => useEditor.getState().undo()} disabled={!canUndo} aria-label="Undo" title="Undo (Ctrl+Z)" data-testid="undo">
        ↶
      </button>
      <button type="button" className="btn ghost" onClick={() => useEditor.getState().redo()} disabled={!canRedo} aria-label="Redo" title="Redo (Ctrl+Shift+Z)" data-testid="redo">
        ↷
      </button>
      <button type="button" className="btn ghost" onClick={() => void layout()} title="Auto-layout (L)" data-testid="auto-layout">
        Layout
      </button>
      <button type="button" className="btn ghost" onClick={() => openDialog("shortcuts")} aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" data-testid="help">
        ?
      </button>
    </header>
  );
}
