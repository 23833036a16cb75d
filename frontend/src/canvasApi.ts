// What other panels ask of the canvas (set by Canvas once React Flow is ready).
export interface CanvasApi {
  center(): { x: number; y: number };
  focusNode(id: string): void;
  fitView(): void;
}

let current: CanvasApi | null = null;

export function setCanvasApi(api: CanvasApi | null): void {
  current = api;
}

export function canvasApi(): CanvasApi | null {
  return current;
}
