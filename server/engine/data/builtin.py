"""The scikit-learn toy datasets (bundled with scikit-learn: read offline)."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from graph_compiler.datasets import BUILTINS

from .errors import DataError
from .loaded import Loaded

_LOADERS = {
    "digits": "load_digits",
    "digits_images": "load_digits",
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
}
NAMES = frozenset(_LOADERS)


@cache
def _bunch(loader: str):
    try:
        import sklearn.datasets as skd
    except ImportError as e:  # pragma: no cover - depends on the install
        raise DataError(
            "the built-in datasets come from scikit-learn, which is not installed "
            "(pip install scikit-learn)"
        ) from e
    return getattr(skd, loader)()


def load(name: str) -> Loaded:
    bunch = _bunch(_LOADERS[name])
    data = np.asarray(bunch.data, dtype=np.float32)
    description = BUILTINS[name].description
    if name == "diabetes":
        return Loaded(
            x=torch.tensor(data),
            y=torch.tensor(np.asarray(bunch.target, dtype=np.float32)[:, None]),
            task="regression",
            num_classes=None,
            class_names=None,
            feature_names=[str(f) for f in bunch.feature_names],
            description=description,
        )
    if name == "digits_images":
        data = data.reshape(-1, 1, 8, 8)
    names = [str(c) for c in bunch.target_names]
    features = None if name.startswith("digits") else [str(f) for f in bunch.feature_names]
    return Loaded(
        x=torch.tensor(data),
        y=torch.tensor(np.asarray(bunch.target, dtype=np.int64)),
        task="classification",
        num_classes=len(names),
        class_names=names,
        feature_names=features,
        description=description,
    )
