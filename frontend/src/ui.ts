import { create } from "zustand";

export type DialogName = "projects" | "examples" | "versions" | "shortcuts" | null;

export const useUi = create<{ dialog: DialogName }>()(() => ({ dialog: null }));

export function openDialog(dialog: DialogName): void {
  useUi.setState({ dialog });
}
