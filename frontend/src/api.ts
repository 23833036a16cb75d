// The server's HTTP API. The session cookie (set from the start URL's token) authenticates
// every request; same-origin requests pass the server's Origin check.
import type { CatalogJson } from "./catalog";
import type { GraphDocument } from "./doc";
import { importUrl } from "./importUrl";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** One JSON (or FormData) request; a non-2xx answer throws the server's {error} as ApiError. */
export async function call<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const init: RequestInit = { method, credentials: "same-origin", signal, headers: {} };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["Content-Type"] = "application/json";
  }
  const res = await fetch(url, init);
  if (res.status === 204) return undefined as T;
  let data: unknown = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? "http_error", err?.message ?? `${res.status} ${res.statusText}`, err?.details);
  }
  return data as T;
}

export interface ShapeInfo {
  shape: (string | number)[];
  dtype: string;
  text: string;
}

export interface GraphErrorJson {
  code: string;
  message: string;
  node: string | null;
  field: string | null;
  severity?: "error" | "warning";
  block?: string;
  /** an error inside a Block node's instance: the failing node in the innermost block ... */
  inner_node?: string;
  /** ... and the Block nodes leading there, outermost first */
  path?: BlockStepJson[];
}

export interface BlockStepJson {
  node: string;
  block: string;
  repetition: number; // 1-based
  repeat: number;
  label: string;
}

export interface NodeInfo {
  type: string;
  params: Record<string, unknown>;
  inferred: Record<string, unknown>;
  inputs: Record<string, ShapeInfo[]>;
  outputs: Record<string, ShapeInfo>;
  num_params: number;
  trainable_params: number;
  flops: number;
}

export interface ValidationJson {
  ok: boolean;
  errors: GraphErrorJson[];
  nodes: Record<string, NodeInfo>;
  edges: (ShapeInfo | null)[];
  totals: { params: number; trainable_params: number; flops: number } | null;
  settings: Record<string, unknown>;
}

export interface ProjectSummary {
  id: string;
  name: string;
  version?: number;
  created?: number | string;
  updated?: number | string;
  [k: string]: unknown;
}

export interface Project extends ProjectSummary {
  document: GraphDocument;
}

export interface VersionInfo {
  version: number;
  message?: string;
  created?: number | string;
  [k: string]: unknown;
}

export interface ExampleInfo {
  file: string;
  name: string;
  description: string;
  document: GraphDocument;
}

export interface BuiltinDataset {
  name: string;
  description: string;
  synthetic: boolean;
  x_shape: number[];
  x_dtype?: string;
  vocab_size?: number | null;
  task: string;
  num_classes: number | null;
  samples: number;
}

export interface UploadedDataset {
  id: string;
  name: string;
  dataset_params?: Record<string, unknown>;
  [k: string]: unknown;
}

export const api = {
  catalog: () => call<CatalogJson>("GET", "/api/catalog"),
  validate: (document: GraphDocument, signal?: AbortSignal) => call<ValidationJson>("POST", "/api/validate", { document }, signal),
  codegen: (document: GraphDocument, signal?: AbortSignal) => call<{ source: string }>("POST", "/api/codegen", { document }, signal),
  projects: () => call<{ projects: ProjectSummary[] }>("GET", "/api/projects"),
  project: (id: string) => call<Project>("GET", `/api/projects/${encodeURIComponent(id)}`),
  create: (name: string, document?: GraphDocument) => call<Project>("POST", "/api/projects", document ? { name, document } : { name }),
  save: (id: string, document: GraphDocument, message = "saved") =>
    call<Project>("PUT", `/api/projects/${encodeURIComponent(id)}`, { document, message, name: document.name || "Untitled" }),
  rename: (id: string, name: string) => call<Project>("PATCH", `/api/projects/${encodeURIComponent(id)}`, { name }),
  duplicate: (id: string) => call<Project>("POST", `/api/projects/${encodeURIComponent(id)}/duplicate`, {}),
  remove: (id: string) => call<void>("DELETE", `/api/projects/${encodeURIComponent(id)}`),
  versions: (id: string) => call<{ versions: VersionInfo[] }>("GET", `/api/projects/${encodeURIComponent(id)}/versions`),
  restore: (id: string, version: number) => call<Project>("POST", `/api/projects/${encodeURIComponent(id)}/versions/${version}/restore`, {}),
  // fileName names a document without a "name" of its own (the server makes names unique)
  importDocument: (document: unknown, fileName?: string) =>
    call<Project>("POST", importUrl(fileName), document),
  examples: () => call<{ examples: ExampleInfo[] }>("GET", "/api/examples"),
  system: () => call<Record<string, unknown>>("GET", "/api/system"),
  datasets: () => call<{ builtin: BuiltinDataset[]; uploaded: UploadedDataset[] }>("GET", "/api/datasets"),
  uploadDataset: (form: FormData) => call<UploadedDataset>("POST", "/api/datasets", form),
  rereadDataset: (id: string, form: FormData) =>
    call<UploadedDataset & { preview: Record<string, unknown> }>("POST", `/api/datasets/${encodeURIComponent(id)}/read`, form),
  datasetPreview: (id: string) => call<{ id: string; preview: Record<string, unknown> }>("GET", `/api/datasets/${encodeURIComponent(id)}/preview`),
  builtinPreview: (name: string, params: Record<string, unknown>) =>
    call<{ id: string; preview: Record<string, unknown> }>(
      "GET",
      `/api/datasets/builtin/${encodeURIComponent(name)}/preview?params=${encodeURIComponent(JSON.stringify(params))}`,
    ),
};
