"""Optimizers and LR schedulers (categories "optimizers" and "schedulers")."""

from __future__ import annotations

from torch import optim
from torch.optim import lr_scheduler

from .registry import register
from .spec import REQUIRED, InferContext, NodeSpec, Param, Port

OPT_IN = (Port("loss", kind="loss", multi=True, description="One or more losses (weighted sum)."),)
OPT_OUT = (Port("optimizer", kind="optimizer"),)


def lr(default: float) -> Param:
    return Param("lr", "float", default, "Learning rate.", min=0, exclusive_min=True, max=10)


WEIGHT_DECAY = Param("weight_decay", "float", 0.0, "L2 penalty.", min=0)
BETAS = Param(
    "betas", "floats", (0.9, 0.999), "Running-average coefficients.", min=0, max=1, length=2
)
EPS = Param(
    "eps", "float", 1e-8, "Added to the denominator for stability.", min=0, exclusive_min=True
)


def _optimizer(cls, doc: str, *params: Param) -> None:
    register(
        NodeSpec(
            type=cls.__name__,
            category="optimizers",
            doc=doc,
            role="optimizer",
            torch_class=cls,
            params=params,
            inputs=OPT_IN,
            outputs=OPT_OUT,
            keywords=("optimizer", "gradient descent"),
        )
    )


_optimizer(
    optim.SGD,
    "Stochastic gradient descent, with optional momentum and Nesterov.",
    lr(0.01),
    Param("momentum", "float", 0.0, "Momentum factor.", min=0, max=1),
    Param("dampening", "float", 0.0, "Dampening for momentum.", min=0, max=1),
    WEIGHT_DECAY,
    Param("nesterov", "bool", False, "Nesterov momentum (needs momentum > 0)."),
)
_optimizer(
    optim.Adam,
    "Adam: adaptive moments.",
    lr(0.001),
    BETAS,
    EPS,
    WEIGHT_DECAY,
    Param("amsgrad", "bool", False, "AMSGrad variant."),
)
_optimizer(
    optim.AdamW,
    "Adam with decoupled weight decay.",
    lr(0.001),
    BETAS,
    EPS,
    Param("weight_decay", "float", 0.01, "Decoupled weight decay.", min=0),
    Param("amsgrad", "bool", False, "AMSGrad variant."),
)
_optimizer(
    optim.RMSprop,
    "RMSprop: scales steps by a running RMS of gradients.",
    lr(0.01),
    Param("alpha", "float", 0.99, "Smoothing constant.", min=0, max=1),
    EPS,
    WEIGHT_DECAY,
    Param("momentum", "float", 0.0, "Momentum factor.", min=0, max=1),
    Param("centered", "bool", False, "Normalize by the estimated variance."),
)
_optimizer(
    optim.Adagrad,
    "Adagrad: per-parameter rates from accumulated squared gradients.",
    lr(0.01),
    Param("lr_decay", "float", 0.0, "Learning-rate decay.", min=0),
    WEIGHT_DECAY,
    Param(
        "eps", "float", 1e-10, "Added to the denominator for stability.", min=0, exclusive_min=True
    ),
)
_optimizer(
    optim.NAdam,
    "Adam with Nesterov momentum.",
    lr(0.002),
    BETAS,
    EPS,
    WEIGHT_DECAY,
    Param("momentum_decay", "float", 0.004, "Momentum decay.", min=0),
)

SCHED_IN = (Port("optimizer", kind="optimizer"),)
SCHED_OUT = (Port("scheduler", kind="scheduler"),)


def interval(default: str) -> Param:
    return Param(
        "interval",
        "choice",
        default,
        "Call scheduler.step() after every epoch or after every optimizer step.",
        choices=("epoch", "step"),
        torch_arg=False,
    )


def _remaining(ctx: InferContext, length: int | None) -> int | None:
    """The schedule's length, less the steps an earlier SequentialLR stage already used."""
    if length is None:
        return None
    return max(1, length - ctx.settings.get("offset", 0))


def _run_steps(ctx: InferContext) -> int | None:
    epochs, per_epoch = ctx.settings.get("epochs"), ctx.settings.get("steps_per_epoch")
    return epochs * per_epoch if epochs and per_epoch else None


def _total_steps(ctx: InferContext) -> int | None:
    return _remaining(ctx, _run_steps(ctx))


def _t_max(ctx: InferContext) -> int | None:
    if ctx.settings.get("interval") == "step":
        return _total_steps(ctx)
    return _remaining(ctx, ctx.settings.get("epochs"))


def _scheduler(cls, doc: str, *params: Param, every: str = "epoch", **kw) -> None:
    register(
        NodeSpec(
            type=cls.__name__,
            category="schedulers",
            doc=doc,
            role="scheduler",
            torch_class=cls,
            params=(*params, interval(every)),
            inputs=kw.pop("inputs", SCHED_IN),
            outputs=SCHED_OUT,
            interval=every,
            keywords=("learning rate", "schedule", "lr", *kw.pop("keywords", ())),
            **kw,
        )
    )


GAMMA = Param("gamma", "float", 0.1, "Multiplicative factor of decay.", min=0, exclusive_min=True)
_scheduler(
    lr_scheduler.StepLR,
    "Multiplies the LR by gamma every step_size epochs.",
    Param("step_size", "int", REQUIRED, "Period of decay.", min=1),
    GAMMA,
)
_scheduler(
    lr_scheduler.MultiStepLR,
    "Multiplies the LR by gamma at each milestone.",
    Param("milestones", "ints", REQUIRED, "Increasing epoch (or step) indices.", min=1),
    GAMMA,
)
_scheduler(
    lr_scheduler.ExponentialLR,
    "Multiplies the LR by gamma every epoch.",
    Param("gamma", "float", 0.95, "Multiplicative factor of decay.", min=0, exclusive_min=True),
)
_scheduler(
    lr_scheduler.CosineAnnealingLR,
    "Cosine decay from the LR to eta_min over T_max epochs (default: the whole run).",
    Param("T_max", "int", min=1, infer=_t_max, description="Length of the decay (inferred: run)."),
    Param("eta_min", "float", 0.0, "Final learning rate.", min=0),
)
_scheduler(
    lr_scheduler.OneCycleLR,
    "One-cycle policy: warm up to max_lr, then anneal; stepped every batch.",
    Param("max_lr", "float", 0.01, "Peak learning rate.", min=0, exclusive_min=True),
    Param(
        "total_steps",
        "int",
        min=1,
        infer=_total_steps,
        description="Total optimizer steps (inferred: epochs × steps per epoch).",
    ),
    Param("pct_start", "float", 0.3, "Fraction of the cycle spent increasing.", min=0, max=1),
    Param("anneal_strategy", "choice", "cos", "Annealing shape.", choices=("cos", "linear")),
    Param("div_factor", "float", 25.0, "Initial LR = max_lr / div_factor.", min=1),
    Param("final_div_factor", "float", 1e4, "Final LR = initial / final_div_factor.", min=1),
    Param("three_phase", "bool", False, "Use a third annihilation phase."),
    Param("cycle_momentum", "bool", True, "Cycle momentum (or Adam's beta1) inversely to the LR."),
    every="step",
)
_scheduler(
    lr_scheduler.LinearLR,
    "Linear ramp of the LR factor from start_factor to end_factor over total_iters (warm-up).",
    Param("start_factor", "float", 1 / 3, "Factor at the start.", min=0, exclusive_min=True, max=1),
    Param("end_factor", "float", 1.0, "Factor at the end.", min=0, max=1),
    Param("total_iters", "int", 5, "Steps of the ramp.", min=1),
)
_scheduler(
    lr_scheduler.ReduceLROnPlateau,
    "Reduces the LR when the monitored metric stops improving.",
    Param("mode", "choice", "min", "Minimize or maximize the metric.", choices=("min", "max")),
    Param("factor", "float", 0.1, "LR multiplier on plateau.", min=0, exclusive_min=True, max=1),
    Param("patience", "int", 10, "Epochs without improvement before reducing.", min=0),
    Param("threshold", "float", 1e-4, "Minimum change that counts as improvement.", min=0),
    Param("cooldown", "int", 0, "Epochs to wait after a reduction.", min=0),
    Param("min_lr", "float", 0.0, "Lower bound on the LR.", min=0),
    Param(
        "monitor",
        "choice",
        "val_loss",
        "Metric to watch.",
        choices=("val_loss", "train_loss", "val_accuracy"),
        torch_arg=False,
    ),
)
_scheduler(
    lr_scheduler.SequentialLR,
    "Runs `first` until `milestone`, then `then` (e.g. LinearLR warm-up → CosineAnnealingLR).",
    Param("milestone", "int", 5, "When to switch from first to then.", min=1),
    inputs=(Port("first", kind="scheduler"), Port("then", kind="scheduler")),
    keywords=("warmup", "warm-up", "chain"),
)
