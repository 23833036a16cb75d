// Dialogs: projects (open, rename, duplicate, delete, new), examples gallery, versions
// (restore), keyboard shortcuts.
import * as Dialog from "@radix-ui/react-dialog";
import { useEffect, useState, type ReactNode } from "react";
import { api, type ExampleInfo, type ProjectSummary, type VersionInfo } from "../api";
import { errorText, newProject, openProject, restoreVersion, toast, useSession } from "../session";
import { useEditor } from "../store";
import { openDialog, useUi, type DialogName } from "../ui";

function when(t: number | string | undefined): string {
  if (t === undefined) return "";
  const d = typeof t === "number" ? new Date(t < 1e12 ? t * 1000 : t) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

function Frame({ name, title, children, wide }: { name: DialogName; title: string; children: ReactNode; wide?: boolean }) {
  const open = useUi((s) => s.dialog === name);
  return (
    <Dialog.Root open={open} onOpenChange={(o) => openDialog(o ? name : null)}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className={`dialog${wide ? " wide" : ""}`} data-testid={`dialog-${name}`} aria-describedby={undefined}>
          <div className="dialog-head">
            <Dialog.Title className="dialog-title">{title}</Dialog.Title>
            <Dialog.Close className="btn icon" aria-label="Close">
              ×
            </Dialog.Close>
          </div>
          <div className="dialog-body">{open && children}</div>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

function ProjectsList() {
  const [projects, setProjects] = useState<ProjectSummary[] | null>(null);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [draft, setDraft] = useState("");
  const current = useSession((s) => s.projectId);
  const load = () => api.projects().then((r) => setProjects(r.projects), (e) => toast(errorText(e)));
  useEffect(() => {
    void load();
  }, []);
  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      toast(errorText(e));
    }
    await load();
  };
  return (
    <>
      <div className="dialog-actions">
        <button
          type="button"
          className="btn primary"
          onClick={() => act(async () => {
            await newProject("Untitled");
            openDialog(null);
          })}
          data-testid="new-project"
        >
          New project
        </button>
      </div>
      {!projects ? (
        <p className="muted">Loading…</p>
      ) : (
        <ul className="list" data-testid="projects-list">
          {projects.map((p) => (
            <li key={p.id} className={p.id === current ? "current" : ""}>
              {renaming === p.id ? (
                <form
                  className="row grow"
                  onSubmit={(e) => {
                    e.preventDefault();
                    setRenaming(null);
                    void act(async () => {
                      await api.rename(p.id, draft);
                      if (p.id === current) useEditor.getState().rename(draft);
                    });
                  }}
                >
                  <input autoFocus value={draft} onChange={(e) => setDraft(e.target.value)} aria-label="New name" />
                  <button className="btn small" type="submit">
                    Rename
                  </button>
                </form>
              ) : (
                <button
                  type="button"
                  className="list-main"
                  onClick={() => act(async () => {
                    await openProject(p.id);
                    openDialog(null);
                  })}
                  data-testid="project-item"
                >
                  <strong>{p.name}</strong>
                  <span className="muted small">
                    v{p.version} · {when(p.updated)}
                  </span>
                </button>
              )}
              <div className="row">
                <button type="button" className="btn small" onClick={() => { setRenaming(p.id); setDraft(p.name); }} aria-label={`Rename ${p.name}`}>
                  Rename
                </button>
                <button type="button" className="btn small" onClick={() => act(() => api.duplicate(p.id))} aria-label={`Duplicate ${p.name}`}>
                  Duplicate
                </button>
                <button
                  type="button"
                  className="btn small danger"
                  disabled={p.id === current}
                  title={p.id === current ? "Open another project to delete this one" : undefined}
                  onClick={() => {
                    if (confirm(`Delete ${p.name} and all its versions?`)) void act(() => api.remove(p.id));
                  }}
                  aria-label={`Delete ${p.name}`}
                >
                  Delete
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function Examples() {
  const [examples, setExamples] = useState<ExampleInfo[] | null>(null);
  useEffect(() => {
    api.examples().then((r) => setExamples(r.examples), (e) => toast(errorText(e)));
  }, []);
  if (!examples) return <p className="muted">Loading…</p>;
  return (
    <div className="gallery" data-testid="examples-list">
      {examples.map((ex) => (
        <button
          key={ex.file}
          type="button"
          className="card"
          onClick={async () => {
            try {
              await newProject(ex.name, ex.document);
              openDialog(null);
            } catch (e) {
              toast(errorText(e));
            }
          }}
          data-testid={`example-${ex.file.replace(/\.json$/, "")}`}
        >
          <strong>{ex.name}</strong>
          <span className="muted small">{ex.description}</span>
          <span className="muted small">{ex.document.nodes?.length ?? 0} nodes{Object.keys(ex.document.blocks ?? {}).length ? ` · blocks: ${Object.keys(ex.document.blocks ?? {}).join(", ")}` : ""}</span>
        </button>
      ))}
    </div>
  );
}

function Versions() {
  const id = useSession((s) => s.projectId);
  const [versions, setVersions] = useState<VersionInfo[] | null>(null);
  useEffect(() => {
    if (id) api.versions(id).then((r) => setVersions(r.versions), (e) => toast(errorText(e)));
  }, [id]);
  if (!id) return null;
  if (!versions) return <p className="muted">Loading…</p>;
  return (
    <ul className="list" data-testid="versions-list">
      {versions.map((v, i) => (
        <li key={v.version}>
          <div className="list-main">
            <strong>Version {v.version}</strong>
            <span className="muted small">
              {v.message} · {when(v.created)}
            </span>
          </div>
          {i === 0 ? (
            <span className="muted small">current</span>
          ) : (
            <button
              type="button"
              className="btn small"
              onClick={async () => {
                try {
                  await restoreVersion(id, v.version);
                  openDialog(null);
                  toast(`Restored version ${v.version}`);
                } catch (e) {
                  toast(errorText(e));
                }
              }}
            >
              Restore
            </button>
          )}
        </li>
      ))}
    </ul>
  );
}

export const SHORTCUTS: [string, string][] = [
  ["Ctrl+Z", "Undo"],
  ["Ctrl+Shift+Z / Ctrl+Y", "Redo"],
  ["Ctrl+C / Ctrl+V", "Copy / paste nodes (JSON on the clipboard, also between projects)"],
  ["Ctrl+D", "Duplicate the selection"],
  ["Delete / Backspace", "Delete the selection"],
  ["Ctrl+A", "Select all nodes"],
  ["Shift+drag", "Box-select; Ctrl+click adds to the selection"],
  ["Ctrl+G", "Group the selection into a block; double-click a block to edit it"],
  ["Right-click", "Node menu (duplicate, group, open block, freeze, delete) or canvas menu"],
  ["Ctrl+S", "Save now (edits are saved automatically)"],
  ["Ctrl+Enter", "Train: validate, save a version and start a run (settings: the gear by Train)"],
  ["L", "Auto-layout"],
  ["F", "Fit the graph to the view"],
  ["/", "Search the palette; Enter adds the first match"],
  ["Enter (palette)", "Add the focused node at the view's centre"],
  ["Esc", "Clear the selection / close a dialog"],
  ["?", "This help"],
];

function Shortcuts() {
  return (
    <table className="shortcuts" data-testid="shortcuts-table">
      <tbody>
        {SHORTCUTS.map(([k, v]) => (
          <tr key={k}>
            <td>
              <kbd>{k}</kbd>
            </td>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Dialogs() {
  return (
    <>
      <Frame name="projects" title="Projects">
        <ProjectsList />
      </Frame>
      <Frame name="examples" title="Examples — each opens as a new project" wide>
        <Examples />
      </Frame>
      <Frame name="versions" title="Versions">
        <Versions />
      </Frame>
      <Frame name="shortcuts" title="Keyboard shortcuts">
        <Shortcuts />
      </Frame>
    </>
  );
}
