// Whether Trainable / Freeze is offered for a node: only where it may own parameters. The
// node's own inference result is the truth (a Block of ReLUs, BatchNorm with affine off); before
// inference, or inside a block editor, the catalog's has_params says so for the node type.
import type { NodeInfo } from "./api";
import type { NodeSpec } from "./catalog";

export function offersFreeze(spec: NodeSpec | undefined, info?: Pick<NodeInfo, "num_params">): boolean {
  if (!spec?.has_params) return false;
  return info ? info.num_params > 0 : true;
}
