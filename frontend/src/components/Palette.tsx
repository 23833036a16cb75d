// The palette: the catalog's categories, a search box, each entry's doc on hover. Drag an entry
// onto the canvas, or focus it and press Enter (or double-click) to add it at the view's centre.
import * as Tooltip from "@radix-ui/react-tooltip";
import { useMemo, useRef, useState, type KeyboardEvent } from "react";
import { canvasApi } from "../canvasApi";
import { useEditor } from "../store";
import { PALETTE_MIME } from "./Canvas";

const CATEGORY_LABEL: Record<string, string> = {
  data: "Data",
  layers: "Layers",
  activations: "Activations",
  merges: "Merges & ops",
  losses: "Losses",
  optimizers: "Optimizers",
  schedulers: "Schedulers",
  training: "Training",
  blocks: "Blocks",
  custom: "Custom code",
};

export function addAtCenter(type: string, params?: Record<string, unknown>): string | null {
  const c = canvasApi()?.center() ?? { x: 0, y: 0 };
  const s = useEditor.getState();
  // do not stack new nodes exactly on each other
  let pos = { x: Math.round((c.x - 80) / 20) * 20, y: Math.round((c.y - 30) / 20) * 20 };
  while (s.nodes.some((n) => Math.abs(n.position.x - pos.x) < 10 && Math.abs(n.position.y - pos.y) < 10)) {
    pos = { x: pos.x + 40, y: pos.y + 40 };
  }
  return s.addNode(type, pos, params);
}

/** One palette entry: a catalog node type, or a block definition of this document (a Block
 * node preset to it). */
interface Entry {
  key: string;
  label: string;
  type: string;
  doc: string;
  params?: Record<string, unknown>;
}

export function Palette() {
  const catalog = useEditor((s) => s.catalog);
  const scope = useEditor((s) => s.scope);
  const [query, setQuery] = useState("");
  const [collapsed, setCollapsed] = useState<Record<string, boolean>>({});
  const list = useRef<HTMLDivElement>(null);

  const blocks = useEditor((s) => s.blocks);
  const groups = useMemo(() => {
    if (!catalog) return [];
    const hits = new Set(catalog.search(query).map((n) => n.type));
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    return catalog.categories
      .map((cat) => {
        const items: Entry[] = catalog
          .inCategory(cat)
          .filter((n) => hits.has(n.type))
          .filter((n) => scope !== null || n.role !== "block_io")
          .map((n) => ({ key: n.type, label: n.type, type: n.type, doc: n.doc }));
        for (const spec of catalog.inCategory(cat).filter((n) => n.role === "block")) {
          for (const [name, def] of Object.entries(blocks)) {
            if (name === scope) continue;
            const hay = `${name} block ${def.description}`.toLowerCase();
            if (!words.every((w) => hay.includes(w))) continue;
            items.push({
              key: `${spec.type}:${name}`,
              label: name,
              type: spec.type,
              doc: def.description || `A ${spec.type} node using this document's block ${name}.`,
              params: { block: name, repeat: 1 },
            });
          }
        }
        return { cat, items };
      })
      .filter((g) => g.items.length);
  }, [catalog, query, scope, blocks]);

  // the new node is added at the view's centre, selected (its params show in the inspector)
  const add = (entry: Entry) => addAtCenter(entry.type, entry.params);

  const items = () => Array.from(list.current?.querySelectorAll<HTMLButtonElement>(".palette-item") ?? []);
  const onItemKey = (e: KeyboardEvent<HTMLButtonElement>, entry: Entry) => {
    const all = items();
    const i = all.indexOf(e.currentTarget);
    if (e.key === "Enter") {
      e.preventDefault();
      add(entry);
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      all[Math.min(i + 1, all.length - 1)]?.focus();
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      if (i <= 0) document.getElementById("palette-search")?.focus();
      else all[i - 1]?.focus();
    }
  };

  return (
    <aside className="palette" aria-label="Node palette" data-testid="palette">
      <div className="palette-search">
        <input
          id="palette-search"
          type="search"
          placeholder="Search nodes…  (/)"
          aria-label="Search nodes"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "ArrowDown") {
              e.preventDefault();
              items()[0]?.focus();
            } else if (e.key === "Enter") {
              const first = groups[0]?.items[0];
              if (first) add(first);
            } else if (e.key === "Escape") setQuery("");
          }}
          data-testid="palette-search"
        />
      </div>
      <div className="palette-list" ref={list}>
        {groups.map(({ cat, items: entries }) => {
          const closed = collapsed[cat] && !query;
          return (
            <section key={cat} className="palette-group">
              <button
                type="button"
                className="palette-cat"
                aria-expanded={!closed}
                onClick={() => setCollapsed((c) => ({ ...c, [cat]: !c[cat] }))}
              >
                <span className={`dot cat-bg-${cat}`} aria-hidden="true" />
                {CATEGORY_LABEL[cat] ?? cat}
                <span className="count">{entries.length}</span>
              </button>
              {!closed &&
                entries.map((entry) => (
                  <Tooltip.Root key={entry.key} delayDuration={400}>
                    <Tooltip.Trigger asChild>
                      <button
                        type="button"
                        className="palette-item"
                        draggable
                        onDragStart={(e) => {
                          e.dataTransfer.setData(PALETTE_MIME, JSON.stringify({ type: entry.type, params: entry.params }));
                          e.dataTransfer.effectAllowed = "move";
                        }}
                        onKeyDown={(e) => onItemKey(e, entry)}
                        onDoubleClick={() => add(entry)}
                        aria-label={`${entry.label}: ${entry.doc} (Enter adds it)`}
                        data-testid={entry.params ? `palette-block-${entry.label}` : `palette-${entry.type}`}
                      >
                        <span className={`dot cat-bg-${cat}`} aria-hidden="true" />
                        {entry.label}
                      </button>
                    </Tooltip.Trigger>
                    <Tooltip.Portal>
                      <Tooltip.Content className="tooltip" side="right" sideOffset={8}>
                        <strong>{entry.label}</strong>
                        <div>{entry.doc}</div>
                        <Tooltip.Arrow className="tooltip-arrow" />
                      </Tooltip.Content>
                    </Tooltip.Portal>
                  </Tooltip.Root>
                ))}
            </section>
          );
        })}
        {!groups.length && <p className="muted msg-pad">No node matches “{query}”.</p>}
      </div>
    </aside>
  );
}
