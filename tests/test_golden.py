"""The generated model.py of every example, byte for byte, against tests/golden/<example>.py.

A change to code generation shows up here as a reviewable diff. To accept intended changes:

    TORCHLOOM_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py

then read the rewritten golden files (git diff tests/golden) before committing them.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from graph_compiler import generate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE_VAR = "TORCHLOOM_UPDATE_GOLDEN"
UPDATE = os.environ.get(UPDATE_VAR) == "1"
HOW_TO_UPDATE = (
    f"If the change is intended, rerun with {UPDATE_VAR}=1 to rewrite the golden files "
    f"(`{UPDATE_VAR}=1 pytest tests/test_golden.py`) and review `git diff tests/golden`."
)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_generated_code_matches_golden(path: Path):
    source = generate(path.read_bytes())
    golden = GOLDEN / f"{path.stem}.py"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(source.encode("utf-8"))
        return
    shown = golden.relative_to(ROOT)
    if not golden.exists():
        pytest.fail(f"{shown} is missing. {HOW_TO_UPDATE}", pytrace=False)
    expected = golden.read_bytes().decode("utf-8")
    if source != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                source.splitlines(keepends=True),
                fromfile=str(shown),
                tofile=f"generate({path.name})",
            )
        )
        pytest.fail(
            f"the code generated for {path.name} differs from {shown}:\n{diff}\n{HOW_TO_UPDATE}",
            pytrace=False,
        )


def test_every_golden_file_has_an_example():
    stems = {p.stem for p in EXAMPLES}
    orphans = sorted(p.name for p in GOLDEN.glob("*.py") if p.stem not in stems)
    assert not orphans, f"golden files without an example in examples/ (delete them): {orphans}"
