"""The ONNX exporter's graph clean-up, less its batch-norm folding.

torch.onnx.export(optimize=True) runs onnxscript's optimizer: constant folding, its default
rewrite rules, then tidying passes. One of those rules folds an eval-mode BatchNormalization into
the Conv / ConvTranspose / Gemm before it, which loses the norm's four tensors: a model.onnx
re-imported (import-onnx) then has fewer parameters than the run, and cannot be fine-tuned as
the same model. So write_onnx exports with optimize=False and runs the same passes here with
those rules left out. onnxruntime fuses BatchNormalization into the convolution itself when it
loads the model (its basic graph optimizations), so inference is as fast as with the folded file
(bench/onnx_batchnorm.py measures it).

The default rule list is private in onnxscript (`rewriter._DEFAULT_REWRITE_RULES`, present from
0.2 to 0.7 at least); without it only the folding and tidying passes run — still a valid,
slightly larger graph, which the export's onnxruntime comparison checks.
"""

from __future__ import annotations

from typing import Any

TIDY_PASSES = (
    "LiftSubgraphInitializersToMainGraphPass",
    "DeduplicateInitializersPass",
    "CommonSubexpressionEliminationPass",
    "OutputFixPass",
    "NameFixPass",
)


def batch_norm_folding_rules() -> set[int]:
    """ids of onnxscript's rules that merge a BatchNormalization into the layer before it."""
    from onnxscript.rewriter.rules import common

    names = [n for n in getattr(common, "__all__", ()) if n.startswith("fuse_batchnorm_into_")]
    return {id(getattr(common, n)) for n in names}


def optimize_keeping_batch_norm(model: Any) -> None:
    """What torch's ONNXProgram.optimize() runs (onnxscript.optimizer.optimize_ir, then its ONNX
    fusions), on an onnx_ir Model in place, without the batch-norm folding rules."""
    import onnx_ir.passes.common as common_passes
    from onnxscript import ir, rewriter
    from onnxscript.optimizer import fold_constants_ir

    folding = batch_norm_folding_rules()
    rules = [r for r in getattr(rewriter, "_DEFAULT_REWRITE_RULES", ()) if id(r) not in folding]

    class _Fold(ir.passes.InPlacePass):
        def call(self, model):
            result = fold_constants_ir(model, onnx_shape_inference=True)
            return ir.passes.PassResult(model, bool(result))  # a bool in older onnxscript

    loop = [_Fold()]
    if rules:
        loop.append(rewriter.RewritePass(rules))
    loop += [
        common_passes.RemoveUnusedNodesPass(),
        common_passes.RemoveUnusedFunctionsPass(),
        common_passes.RemoveUnusedOpsetsPass(),
    ]
    tidy = [
        common_passes.RemoveUnusedNodesPass(),
        common_passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
    ]
    for name in TIDY_PASSES:  # newer onnx_ir releases only: run those this one has
        made = getattr(common_passes, name, None)
        if made is not None:
            tidy.append(made())
    passes = ir.passes.Sequential(
        common_passes.InlinePass(), ir.passes.PassManager(loop, steps=2, early_stop=True), *tidy
    )
    passes(model)
    try:  # as torch's optimize() does since 2.8
        from onnxscript.rewriter import onnx_fusions
    except ImportError:
        return
    onnx_fusions.fuse(model)
