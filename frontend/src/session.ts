// The open project: load, autosave (debounced, with a visible state), versions, import/export.
import { create } from "zustand";
import { api, ApiError, type Project } from "./api";
import type { GraphDocument } from "./doc";
import { useEditor } from "./store";

export type SaveState = "saved" | "dirty" | "saving" | "error";

interface SessionState {
  projectId: string | null;
  saveState: SaveState;
  savedRev: number;
  error: string | null;
  lastSaved: number | null;
  toast: string | null;
}

export const useSession = create<SessionState>()(() => ({
  projectId: null,
  saveState: "saved",
  savedRev: 0,
  error: null,
  lastSaved: null,
  toast: null,
}));

let toastTimer: ReturnType<typeof setTimeout> | null = null;
export function toast(message: string): void {
  useSession.setState({ toast: message });
  if (toastTimer) clearTimeout(toastTimer);
  toastTimer = setTimeout(() => useSession.setState({ toast: null }), 3500);
}

function errorText(e: unknown): string {
  if (e instanceof ApiError && Array.isArray(e.details) && e.details.length) {
    const first = e.details[0] as { message?: string };
    return `${e.message}: ${first.message ?? ""}`;
  }
  return e instanceof Error ? e.message : String(e);
}

function show(project: Project): void {
  useEditor.getState().load(project.document);
  const rev = useEditor.getState().rev;
  useSession.setState({ projectId: project.id, savedRev: rev, saveState: "saved", error: null, lastSaved: Date.now() });
  const hash = `#/p/${project.id}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
  localStorage.setItem("torchloom.lastProject", project.id);
}

export async function openProject(id: string): Promise<void> {
  await flushSave();
  show(await api.project(id));
}

/** Restore an earlier version of the open project: the server makes it the newest version, and
 * the editor shows it as one undo step (undo brings back the graph it replaced, which the
 * autosave then stores as a newer version). Another project's version opens that project. */
export async function restoreVersion(id: string, version: number): Promise<void> {
  await flushSave();
  const project = await api.restore(id, version);
  if (useSession.getState().projectId !== id) {
    show(project);
    return;
  }
  useEditor.getState().replaceDocument(project.document);
  useSession.setState({ savedRev: useEditor.getState().rev, saveState: "saved", error: null, lastSaved: Date.now() });
}

/** Open a project named in the address bar (#/p/<id>): a wrong or deleted id says so. */
export async function openProjectFromAddress(id: string): Promise<void> {
  try {
    await openProject(id);
  } catch (e) {
    toast(`Cannot open project ${id}: ${errorText(e)}`);
  }
}

export async function newProject(name = "Untitled", document?: GraphDocument): Promise<void> {
  await flushSave();
  show(await api.create(name, document ? { ...document, name } : undefined));
}

/** The project to open at start: the URL's, else the last opened, else the newest, else a new one. */
function initialId(): string | null {
  return /^#\/p\/([\w-]+)/.exec(location.hash)?.[1] ?? localStorage.getItem("torchloom.lastProject");
}

/** Start fetching the project the page will open (while the catalog loads). */
export function prefetchInitial(): Promise<Project | null> {
  const id = initialId();
  return id ? api.project(id).catch(() => null) : Promise.resolve(null);
}

export async function openInitial(prefetched?: Promise<Project | null>): Promise<void> {
  const early = prefetched ? await prefetched : null;
  if (early) {
    show(early);
    return;
  }
  const fromHash = /^#\/p\/([\w-]+)/.exec(location.hash)?.[1];
  const last = localStorage.getItem("torchloom.lastProject");
  for (const id of [fromHash, last]) {
    if (!id) continue;
    try {
      show(await api.project(id));
      return;
    } catch {
      /* gone: try the next */
    }
  }
  const { projects } = await api.projects();
  if (projects.length) show(await api.project(projects[0].id));
  else await newProject("Untitled");
}

let saveTimer: ReturnType<typeof setTimeout> | null = null;
let saving: Promise<void> | null = null;

export async function saveNow(message = "autosave"): Promise<void> {
  if (saveTimer) {
    clearTimeout(saveTimer);
    saveTimer = null;
  }
  if (saving) await saving;
  const { projectId } = useSession.getState();
  if (!projectId) return;
  const rev = useEditor.getState().rev;
  if (rev === useSession.getState().savedRev && useSession.getState().saveState !== "error") return;
  const doc = useEditor.getState().document();
  useSession.setState({ saveState: "saving" });
  saving = (async () => {
    try {
      await api.save(projectId, doc, message);
      if (useSession.getState().projectId !== projectId) return;
      const dirty = useEditor.getState().rev !== rev;
      useSession.setState({ savedRev: rev, saveState: dirty ? "dirty" : "saved", error: null, lastSaved: Date.now() });
      if (dirty) scheduleSave();
    } catch (e) {
      useSession.setState({ saveState: "error", error: errorText(e) });
    }
  })();
  await saving;
  saving = null;
}

export function scheduleSave(delay = 700): void {
  useSession.setState({ saveState: "dirty" });
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    saveTimer = null;
    void saveNow();
  }, delay);
}

export async function flushSave(): Promise<void> {
  if (saveTimer || useSession.getState().saveState === "dirty") await saveNow();
  else if (saving) await saving;
}

export async function importFile(file: File): Promise<void> {
  let data: unknown;
  try {
    data = JSON.parse(await file.text());
  } catch {
    toast(`${file.name} is not a JSON file`);
    return;
  }
  try {
    await flushSave();
    show(await api.importDocument(data, file.name));
    toast(`Imported ${file.name}`);
  } catch (e) {
    toast(`Import failed: ${errorText(e)}`);
  }
}

export function exportDocument(): void {
  const doc = useEditor.getState().document();
  const blob = new Blob([JSON.stringify(doc, null, 2) + "\n"], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `${(doc.name || "graph").replace(/[^\w.-]+/g, "_")}.json`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export { errorText };
