// Editor commands shared by the menus and the keyboard shortcuts.
import { canvasApi } from "./canvasApi";
import { autoLayout } from "./layout";
import { saveNow, toast } from "./session";
import { useEditor } from "./store";

export async function copy(): Promise<void> {
  const text = useEditor.getState().copySelection();
  if (!text) return;
  try {
    await navigator.clipboard?.writeText(text);
  } catch {
    /* the internal clipboard still has it */
  }
  const n = useEditor.getState().nodes.filter((x) => x.selected).length;
  toast(`Copied ${n} node${n === 1 ? "" : "s"}`);
}

export async function paste(): Promise<void> {
  let text: string | null = null;
  try {
    text = (await navigator.clipboard?.readText()) ?? null;
  } catch {
    text = null;
  }
  const st = useEditor.getState();
  let ids = text ? st.paste(text) : [];
  if (!ids.length) ids = st.paste(null);
  if (ids.length) toast(`Pasted ${ids.length} node${ids.length === 1 ? "" : "s"}`);
}

export async function layout(): Promise<void> {
  const st = useEditor.getState();
  if (!st.nodes.length) return;
  const positions = await autoLayout(st.nodes, st.edges);
  useEditor.getState().setPositions(positions);
  setTimeout(() => canvasApi()?.fitView(), 50);
}

export function group(): void {
  const name = useEditor.getState().groupSelection();
  if (name) toast(`Grouped into block ${name} — double-click it or use “Open block” to edit`);
  else toast("Select one or more layers to group into a block");
}

export function save(): void {
  void saveNow("saved");
}
