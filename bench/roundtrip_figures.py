"""The figures the round-trip tests measure, printed: parameter counts and largest output
differences of the import-module and import-ONNX round trips, and the exported train.py's
reproduction of the app's run (ONNX differences and opsets).

    .venv/bin/python bench/roundtrip_figures.py

Runs the test files in-process (each records its figures in its module's FIGURES while
it asserts) and prints what they recorded: figures for the issues' closing notes, not checks.
"""

from __future__ import annotations

import importlib
import json
import sys

import pytest

FILES = {
    "import-module round trips": "tests.test_import_module",
    "standard definitions (import-module, then ONNX re-import)": "tests.test_import_standard",
    "import-onnx round trips": "tests.test_import_onnx",
    "reproduction / ONNX figures": "tests.test_export_reproduction",
}


def main() -> int:
    paths = [name.replace(".", "/") + ".py" for name in FILES.values()]
    code = pytest.main(["-q", "-p", "no:cacheprovider", *paths])
    for title, name in FILES.items():
        print(f"\n{title}:", json.dumps(importlib.import_module(name).FIGURES, indent=2))
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
