"""The data source and the training settings (categories "data" and "training")."""

from __future__ import annotations

from ..datasets import BUILTINS, FILE, FILE_FORMATS
from .registry import register
from .spec import NodeSpec, Param, Port
from .text_data import TEXT_PARAMS, TOKEN_PARAMS

_SYNTHETIC = tuple(name for name, b in BUILTINS.items() if b.synthetic)
_NOISY = tuple(name for name in _SYNTHETIC if name != "markov_text")


def _when(*sources: str) -> dict:
    return {"source": sources}


register(
    NodeSpec(
        type="Dataset",
        category="data",
        doc="The data source: yields x (inputs) and y (targets) in batches.",
        role="data",
        params=(
            Param(
                "source",
                "choice",
                "digits",
                "Built-in dataset, or your own file (CSV, NPZ, safetensors, images, MNIST, CIFAR).",
                choices=(*BUILTINS, FILE),
            ),
            Param(
                "samples",
                "int",
                1000,
                "Number of generated samples.",
                min=10,
                max=10_000_000,
                visible_if=_when(*_SYNTHETIC),
            ),
            Param(
                "noise",
                "float",
                0.1,
                "Noise level of generated data.",
                min=0,
                max=10,
                visible_if=_when(*_NOISY),
            ),
            Param(
                "num_classes",
                "int",
                3,
                "Number of classes.",
                min=2,
                max=100_000,
                visible_if=_when("spirals", "sine_classify", "random_images", FILE),
            ),
            Param(
                "seq_len",
                "int",
                32,
                "Steps per sequence (markov_text: the block size T of each window).",
                min=2,
                max=100_000,
                visible_if=_when("sine_classify", "sine_regress", "markov_text"),
            ),
            Param(
                "image_shape",
                "ints",
                (1, 28, 28),
                "Image shape (C, H, W).",
                min=1,
                length=3,
                visible_if=_when("random_images", "shapes_segmentation"),
            ),
            Param(
                "data_seed",
                "int",
                0,
                "Seed of the generator.",
                min=0,
                visible_if=_when(*_SYNTHETIC),
            ),
            Param(
                "dataset_id",
                "str",
                "",
                "The uploaded dataset to train on.",
                visible_if=_when(FILE),
                file_ref="dataset_id",
            ),
            Param(
                "path",
                "str",
                "",
                "The data file or folder (headless `torchloom train` only; the server reads "
                "uploaded datasets only and sets it from dataset_id).",
                visible_if=_when(FILE),
                file_ref="path",
                path_from="dataset_id",
            ),
            Param(
                "format",
                "choice",
                "auto",
                "File format (auto: from the file name).",
                choices=FILE_FORMATS,
                visible_if=_when(FILE),
            ),
            Param(
                "target_column",
                "str",
                "",
                "CSV: the column to predict (default: the last one).",
                visible_if=_when(FILE),
            ),
            Param(
                "categorical",
                "choice",
                "onehot",
                "CSV: how text columns become numbers.",
                choices=("onehot", "index"),
                visible_if=_when(FILE),
            ),
            Param(
                "missing",
                "choice",
                "error",
                "CSV: what to do with empty cells (error lists them).",
                choices=("error", "mean", "median", "drop"),
                visible_if=_when(FILE),
            ),
            Param(
                "image_size",
                "ints",
                None,
                "Images: resize to (H, W) (default: the first image's size).",
                min=1,
                length=2,
                nullable=True,
                visible_if=_when(FILE),
            ),
            Param(
                "color",
                "choice",
                "rgb",
                "Images: channels.",
                choices=("rgb", "grayscale"),
                visible_if=_when(FILE),
            ),
            Param(
                "val_dataset_id",
                "str",
                "",
                "Optional uploaded dataset used as the validation set (same format); replaces "
                "val_split.",
                visible_if=_when(FILE),
                file_ref="dataset_id",
            ),
            Param(
                "val_path",
                "str",
                "",
                "Optional separate validation file (same format; headless `torchloom train` "
                "only, the server sets it from val_dataset_id); replaces val_split.",
                visible_if=_when(FILE),
                file_ref="path",
                path_from="val_dataset_id",
            ),
            Param(
                "x_shape",
                "ints",
                (),
                "Per-sample input shape (filled in when the file is read).",
                min=1,
                visible_if=_when(FILE),
            ),
            Param(
                "task",
                "choice",
                "classification",
                "What the targets are.",
                choices=("classification", "regression", "language_model"),
                visible_if=_when(FILE),
            ),
            Param(
                "y_dim", "int", 1, "Regression targets per sample.", min=1, visible_if=_when(FILE)
            ),
            *TEXT_PARAMS,
            *TOKEN_PARAMS,
        ),
        inputs=(),
        outputs=(
            Port("x", description="Inputs (B, ...)."),
            Port("y", description="Targets: class ids (B,) or values (B, k)."),
        ),
        keywords=("data", "input", "dataset", "source"),
    )
)

register(
    NodeSpec(
        type="Training",
        category="training",
        doc="How to train: epochs, batch size, validation split, device, precision, seed.",
        role="settings",
        params=(
            Param("epochs", "int", 10, "Passes over the training data.", min=1, max=100_000),
            Param("batch_size", "int", 64, "Samples per optimizer step.", min=1, max=1_000_000),
            Param("shuffle", "bool", True, "Shuffle the training data every epoch."),
            Param("val_split", "float", 0.2, "Fraction held out for validation.", min=0, max=0.9),
            Param(
                "device",
                "choice",
                "auto",
                "Where to train (auto: CUDA when available).",
                choices=("auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(8))),
            ),
            Param(
                "precision",
                "choice",
                "fp32",
                "Arithmetic: bf16/fp16 use autocast.",
                choices=("fp32", "bf16", "fp16"),
            ),
            Param("seed", "int", 0, "Seed for weights, split and shuffling.", min=0),
            Param(
                "grad_clip",
                "float",
                None,
                "Clip the gradient norm to this value.",
                min=0,
                exclusive_min=True,
                nullable=True,
            ),
            Param("grad_accumulation", "int", 1, "Batches per optimizer step.", min=1, max=1024),
            Param("fast_path", "bool", True, "Keep small datasets on the device; index batches."),
            Param("compile", "bool", False, "Use torch.compile."),
            Param(
                "checkpoint_every",
                "int",
                1,
                "Checkpoint every N epochs (0: only at the end).",
                min=0,
            ),
            Param(
                "keep_checkpoints",
                "int",
                2,
                "Checkpoints kept: the last N, plus the best epoch's by the validation metric.",
                min=1,
                max=1000,
            ),
        ),
        inputs=(),
        outputs=(),
        keywords=("settings", "epochs", "batch size", "device", "precision"),
    )
)
