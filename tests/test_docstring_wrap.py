"""Generated docstrings stay ruff-clean at every length around the line limit: a description
that fits on one line only without its closing quotes must not be left as a lone first line
(ruff format would pull the quotes up onto it, past the limit)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from graph_compiler import generate
from tests.helpers import chain

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _ruff() -> str:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed")
    return str(ruff)


def test_descriptions_near_the_line_limit_generate_ruff_clean_docstrings(tmp_path):
    ruff = _ruff()
    for n in range(88, 100):  # the class docstring is indented by 4: 4 + 3 + n + 3 ≷ 100
        doc = chain("iris", [("fc", "Linear", {"out_features": 3})])
        words = ("word " * 30)[: n - 1].strip()
        doc["description"] = words + "." * (n - len(words))
        path = tmp_path / f"model_{n}.py"
        path.write_text(generate(doc), encoding="utf-8")
        for command in (["check", "--quiet"], ["format", "--check", "--diff"]):
            done = subprocess.run(
                [ruff, *command, "--config", str(PYPROJECT), "--no-cache", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{n}: {done.stdout}{done.stderr}"
