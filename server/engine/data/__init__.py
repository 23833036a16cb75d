"""The training engine's data layer: built-in, generated and file data, read into tensors.

    loaded = load_data(dataset_params, base_dir=uploads)   # Loaded(x, y, task, ...)
    (xt, yt), (xv, yv) = split(loaded, val_split, seed)
    norm = Normalizer.fit(xt)                               # fit on the training split only

Everything wrong with the data raises DataError, whose message names the file and the row,
entry or key at fault. Imports neither Flask nor anything from the server.
"""

from __future__ import annotations

from .errors import DataError
from .load import file_shapes, load_data
from .loaded import Loaded
from .normalize import Normalizer, TargetScaler
from .params import with_defaults
from .preview import preview
from .split import split

__all__ = [
    "DataError",
    "Loaded",
    "Normalizer",
    "TargetScaler",
    "file_shapes",
    "load_data",
    "preview",
    "split",
    "with_defaults",
]
