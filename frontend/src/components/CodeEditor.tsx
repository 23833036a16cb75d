import { lazy, Suspense } from "react";
import type { CodeMirrorProps } from "./CodeMirrorView";

const CodeMirrorView = lazy(() => import("./CodeMirrorView"));

/** A CodeMirror view, loaded on first use; a plain <pre>/<textarea> shows meanwhile. */
export function CodeEditor(props: CodeMirrorProps) {
  const fallback = props.readOnly ? (
    <pre className="code-fallback" data-testid={props.testId}>{props.value}</pre>
  ) : (
    <textarea className="code-fallback" aria-label={props.ariaLabel} value={props.value} onChange={(e) => props.onChange?.(e.target.value)} />
  );
  return (
    <Suspense fallback={fallback}>
      <CodeMirrorView {...props} />
    </Suspense>
  );
}
