// An edge labelled with the tensor shape that flows through it (from the latest validation).
import { BaseEdge, EdgeLabelRenderer, getBezierPath, type EdgeProps } from "@xyflow/react";
import { memo } from "react";
import { shapeLabel } from "../catalog";
import { useLive } from "../live";
import { useEditor } from "../store";

function ShapeEdgeImpl(props: EdgeProps) {
  const { id, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, markerEnd, selected } = props;
  const scope = useEditor((s) => s.scope);
  const shape = useLive((s) => (scope === null ? s.edgeShapes[id] : undefined));
  const [path, labelX, labelY] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  const text = shape ? shapeLabel(shape.shape) : "";
  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd} className={selected ? "edge-selected" : undefined} />
      {text && (
        <EdgeLabelRenderer>
          <div
            className="edge-label nodrag nopan"
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
            data-testid={`edge-label-${id}`}
            title={`${shape?.text} ${shape?.dtype ?? ""}`}
          >
            {text}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

export const ShapeEdge = memo(ShapeEdgeImpl);
