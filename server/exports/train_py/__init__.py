"""The exported train.py: runtime.py is its static part (real code, copied in), sources.py and
generate.py write what depends on the run's graph."""

from .generate import generate_train_py

__all__ = ["generate_train_py"]
