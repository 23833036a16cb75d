// Right-click menus on the canvas: on a node (copy, duplicate, group, open block, freeze,
// delete) and on the empty canvas (paste, select all, auto-layout, fit view).
import * as Menu from "@radix-ui/react-dropdown-menu";
import { copy, group, layout, paste } from "../actions";
import { canvasApi } from "../canvasApi";
import { offersFreeze } from "../freezable";
import { useLive } from "../live";
import { useEditor } from "../store";

export interface MenuAt {
  x: number;
  y: number;
  node: string | null;
}

function Item({ onSelect, children, shortcut, testId }: { onSelect: () => void; children: string; shortcut?: string; testId?: string }) {
  return (
    <Menu.Item className="menu-item" onSelect={onSelect} data-testid={testId}>
      {children}
      {shortcut && <span className="menu-shortcut">{shortcut}</span>}
    </Menu.Item>
  );
}

export function CanvasMenu({ at, onClose }: { at: MenuAt | null; onClose: () => void }) {
  const st = useEditor.getState;
  const node = at?.node ? st().nodes.find((n) => n.id === at.node) : undefined;
  const spec = node ? st().catalog?.spec(node.data.type) : undefined;
  const selectedCount = st().nodes.filter((n) => n.selected).length;
  const block = node?.data.type && spec?.role === "block" ? node.data.params.block : undefined;
  return (
    <Menu.Root open={!!at} onOpenChange={(o) => !o && onClose()} modal={false}>
      <Menu.Trigger asChild>
        <span aria-hidden="true" style={{ position: "fixed", left: at?.x ?? 0, top: at?.y ?? 0, width: 1, height: 1, pointerEvents: "none" }} />
      </Menu.Trigger>
      <Menu.Portal>
        <Menu.Content className="menu" align="start" sideOffset={2} data-testid="context-menu" onCloseAutoFocus={(e) => e.preventDefault()}>
          {node ? (
            <>
              <Item onSelect={() => void copy()} shortcut="Ctrl+C">Copy</Item>
              <Item onSelect={() => st().duplicateSelection()} shortcut="Ctrl+D" testId="ctx-duplicate">Duplicate</Item>
              {selectedCount > 1 && (
                <Item onSelect={group} shortcut="Ctrl+G" testId="ctx-group">Group into block</Item>
              )}
              {typeof block === "string" && (
                <Item onSelect={() => st().openBlock(block)} testId="ctx-open-block">{`Open block ${block}`}</Item>
              )}
              {offersFreeze(spec, st().scope === null ? useLive.getState().result?.nodes[node.id] : undefined) && (
                <Item onSelect={() => st().setTrainable(node.id, !node.data.trainable)}>{node.data.trainable ? "Freeze (not trainable)" : "Unfreeze"}</Item>
              )}
              <Menu.Separator className="menu-sep" />
              <Item onSelect={() => st().deleteSelection()} shortcut="Del" testId="ctx-delete">Delete</Item>
            </>
          ) : (
            <>
              <Item onSelect={() => void paste()} shortcut="Ctrl+V">Paste</Item>
              <Item onSelect={() => st().selectAll()} shortcut="Ctrl+A">Select all</Item>
              <Item onSelect={() => void layout()} shortcut="L">Auto-layout</Item>
              <Item onSelect={() => canvasApi()?.fitView()} shortcut="F">Fit view</Item>
            </>
          )}
        </Menu.Content>
      </Menu.Portal>
    </Menu.Root>
  );
}
