"""CSV tables (stdlib csv + numpy): a header row, one sample per row, one target column.

Numeric columns become float features; text columns become one-hot columns ("color=red", the
categories sorted) or integer codes ("index"). Missing cells (empty, NA, NaN, null, None) are an
error that lists them, or are imputed (mean / median for numbers, the most frequent value for
text), or drop their rows. Row numbers in messages are the file's lines: the header is row 1.

A validation file (val_path) is encoded with the training file's schema: the same columns,
categories, fill values and classes.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import budget
from .errors import DataError
from .loaded import Loaded

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
MAX_ONEHOT = 1000  # categories per one-hot column
MAX_LISTED = 10  # missing cells listed in the error


@dataclass
class Column:
    name: str
    numeric: bool
    fill: float | str | None = None  # imputed value (missing = mean / median)
    categories: list[str] = field(default_factory=list)  # text columns, sorted


@dataclass
class Schema:
    columns: list[Column]  # features, in file order
    target: str
    task: str
    classes: list[str] | None  # classification: the class names, in id order
    categorical: str
    missing: str

    def feature_names(self) -> list[str]:
        out: list[str] = []
        for col in self.columns:
            if col.numeric or self.categorical == "index":
                out.append(col.name)
            else:
                out.extend(f"{col.name}={v}" for v in col.categories)
        return out


@dataclass
class _Table:
    display: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # the file row of each data row

    def column(self, j: int) -> list[str]:
        return [r[j] for r in self.rows]


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _read_table(path: Path) -> _Table:
    display = path.name
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{display} cannot be read ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{display} is not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}; "
            "expected a UTF-8 (or ASCII) CSV file"
        ) from None
    if not text.strip():
        raise DataError(f"{display} is empty; expected a header row and data rows")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row:
                continue  # blank line
            if header is None:
                header = [c.strip() for c in row]
                _check_header(display, header)
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{display} row {reader.line_num} has {len(row)} columns, "
                    f"expected {len(header)}"
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise DataError(f"{display} row {reader.line_num}: not valid CSV ({e})") from None
    if header is None or not rows:
        raise DataError(f"{display} has a header but no data rows")
    return _Table(display, header, rows, lines)


def _sniff(text: str) -> str:
    sample = text[:65536]
    first = sample.splitlines()[0] if sample else ""
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","
    return delimiter if delimiter in first else ","


def _check_header(display: str, header: list[str]) -> None:
    for j, name in enumerate(header):
        if not name:
            raise DataError(
                f"{display} row 1: column {j + 1} has no name; expected a header row that "
                "names every column"
            )
    if len(header) > 1 and all(_number(h) is not None for h in header):
        raise DataError(
            f"{display} row 1 holds only numbers ({', '.join(header[:4])}"
            f"{', …' if len(header) > 4 else ''}); expected a header row naming the columns"
        )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{display} row 1: the column name {name!r} appears twice")
        seen.add(name)
    if len(header) < 2:
        raise DataError(
            f"{display} has one column ({header[0]!r}); expected feature columns and a target"
        )


def _target_index(t: _Table, target_column: str) -> int:
    name = target_column.strip()
    if not name:
        return len(t.header) - 1
    if name in t.header:
        return t.header.index(name)
    lower = [h.lower() for h in t.header]
    if name.lower() in lower:
        return lower.index(name.lower())
    try:
        j = int(name)
    except ValueError:
        j = None
    if j is not None and -len(t.header) <= j < len(t.header):
        return j % len(t.header)
    raise DataError(
        f"{t.display}: no column named {name!r} (target_column); the columns are "
        + ", ".join(repr(h) for h in t.header)
    )


def _handle_missing(t: _Table, target: int, policy: str) -> _Table:
    """Apply the 'error' and 'drop' policies, and drop rows without a target under mean/median."""
    missing_rows: list[tuple[int, list[str]]] = []
    total = 0
    keep: list[int] = []
    no_target = 0
    for i, row in enumerate(t.rows):
        cols = [t.header[j] for j, cell in enumerate(row) if _is_missing(cell)]
        if not cols:
            keep.append(i)
            continue
        total += len(cols)
        if len(missing_rows) < MAX_LISTED:
            missing_rows.append((t.lines[i], cols))
        if policy in ("mean", "median"):
            if _is_missing(row[target]):
                no_target += 1
            else:
                keep.append(i)
    if total and policy == "error":
        listed = "; ".join(
            f"row {line} column{'s' if len(cols) > 1 else ''} " + ", ".join(repr(c) for c in cols)
            for line, cols in missing_rows
        )
        more = ", …" if len(missing_rows) == MAX_LISTED else ""
        raise DataError(
            f"{t.display} has {total} missing cell{'s' if total > 1 else ''} (empty or "
            f"NA/NaN/null/None): {listed}{more}; expected a value in every cell (or set "
            "missing to mean, median or drop)"
        )
    if len(keep) == len(t.rows):
        return t
    if not keep:
        raise DataError(
            f"{t.display}: every row has a missing cell{' in the target' if no_target else ''}; "
            "no rows are left"
        )
    return _Table(t.display, t.header, [t.rows[i] for i in keep], [t.lines[i] for i in keep])


def _fit_column(t: _Table, j: int, policy: str, categorical: str) -> Column:
    name = t.header[j]
    cells = [c for c in t.column(j) if not _is_missing(c)]
    if not cells:
        raise DataError(f"{t.display}: column {name!r} has no values (every cell is missing)")
    values = [_number(c) for c in cells]
    if all(v is not None for v in values):
        fill = None
        if policy == "mean":
            fill = float(np.mean(values))
        elif policy == "median":
            fill = float(np.median(values))
        return Column(name, True, fill)
    stripped = [c.strip() for c in cells]
    counts = Counter(stripped)
    categories = sorted(counts)
    if categorical == "onehot" and len(categories) > MAX_ONEHOT:
        first = next(c for c, v in zip(cells, values, strict=True) if v is None)
        raise DataError(
            f"{t.display}: text column {name!r} has {len(categories):,} distinct values (e.g. "
            f"{first!r}); one-hot would add that many features, expected at most {MAX_ONEHOT:,}. "
            "Remove the column, or set categorical to index"
        )
    fill_text = min(counts, key=lambda c: (-counts[c], c)) if policy in ("mean", "median") else None
    return Column(name, False, fill_text, categories)


def _encode(t: _Table, schema: Schema, index: dict[str, int]) -> np.ndarray:
    blocks: list[np.ndarray] = []
    n = len(t.rows)
    for col in schema.columns:
        j = index[col.name]
        cells = t.column(j)
        if col.numeric:
            out = np.empty(n, dtype=np.float32)
            for i, cell in enumerate(cells):
                if _is_missing(cell):
                    out[i] = col.fill  # only reached under mean / median
                    continue
                v = _number(cell)
                if v is None:
                    raise DataError(
                        f"{t.display} row {t.lines[i]} column {col.name!r}: {cell.strip()!r} is "
                        "not a number; expected a number, as in the training file"
                    )
                out[i] = v
            blocks.append(out[:, None])
            continue
        codes = {c: k for k, c in enumerate(col.categories)}
        ids = np.array(
            [codes.get(col.fill if _is_missing(c) else c.strip(), -1) for c in cells],
            dtype=np.int64,
        )
        if schema.categorical == "index":
            blocks.append(ids.astype(np.float32)[:, None])
        else:
            onehot = np.zeros((n, len(col.categories)), dtype=np.float32)
            known = ids >= 0
            onehot[np.flatnonzero(known), ids[known]] = 1.0
            blocks.append(onehot)
    if not blocks:
        return np.zeros((n, 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1)


def _class_key(cells: list[str]) -> tuple[list[str], dict[str, str]]:
    """Distinct target values in sorted order (numerically when all are numbers) and the map
    from each cell's text to its class name."""
    stripped = {c.strip() for c in cells}
    numbers = {c: _number(c) for c in stripped}
    if all(v is not None for v in numbers.values()):
        name = {c: (str(int(v)) if v.is_integer() else repr(v)) for c, v in numbers.items()}
        order = sorted(set(name.values()), key=float)
        return order, name
    return sorted(stripped), {c: c for c in stripped}


def _targets(t: _Table, j: int, schema: Schema) -> torch.Tensor:
    cells = t.column(j)
    if schema.task == "regression":
        out = np.empty((len(cells), 1), dtype=np.float32)
        for i, cell in enumerate(cells):
            v = _number(cell)
            if v is None:
                raise DataError(
                    f"{t.display} row {t.lines[i]}: target {schema.target!r} is "
                    f"{cell.strip()!r}; expected a number (task is regression)"
                )
            out[i, 0] = v
        return torch.from_numpy(out)
    assert schema.classes is not None
    ids = {name: k for k, name in enumerate(schema.classes)}
    _, name_of = _class_key(cells)
    out_ids = np.empty(len(cells), dtype=np.int64)
    for i, cell in enumerate(cells):
        k = ids.get(name_of[cell.strip()])
        if k is None:
            raise DataError(
                f"{t.display} row {t.lines[i]}: target {schema.target!r} is {cell.strip()!r}, "
                "which is not one of the training classes ("
                + ", ".join(schema.classes[:20])
                + (", …" if len(schema.classes) > 20 else "")
                + ")"
            )
        out_ids[i] = k
    return torch.from_numpy(out_ids)


def read(path: Path, p: Mapping[str, Any], schema: Schema | None = None) -> tuple[Loaded, Schema]:
    t = _read_table(path)
    rows_in_file = len(t.rows)
    policy = str(p.get("missing", "error"))
    if schema is None:
        target = _target_index(t, str(p.get("target_column", "")))
        t = _handle_missing(t, target, policy)
        task = str(p.get("task", "classification"))
        categorical = str(p.get("categorical", "onehot"))
        columns = [
            _fit_column(t, j, policy, categorical) for j in range(len(t.header)) if j != target
        ]
        classes = None
        if task == "classification":
            classes, _ = _class_key(t.column(target))
            if len(classes) < 2:
                raise DataError(
                    f"{t.display}: target {t.header[target]!r} has one value "
                    f"({classes[0]!r}); classification needs at least 2 classes"
                )
        schema = Schema(columns, t.header[target], task, classes, categorical, policy)
    else:
        absent = [c.name for c in schema.columns if c.name not in t.header]
        if schema.target not in t.header:
            absent.append(schema.target)
        if absent:
            raise DataError(
                f"{t.display}: missing the column{'s' if len(absent) > 1 else ''} "
                + ", ".join(repr(a) for a in absent)
                + " of the training file"
            )
        target = t.header.index(schema.target)
        t = _handle_missing(t, target, policy)
    index = {name: j for j, name in enumerate(t.header)}
    width = len(schema.feature_names())
    # the encoded blocks and their concatenation exist at once: twice the table
    budget.check(
        t.display,
        f"{len(t.rows):,} rows × {width:,} features after encoding",
        2 * 4 * len(t.rows) * width,
    )
    x = torch.from_numpy(_encode(t, schema, index))
    y = _targets(t, target, schema)
    names = schema.feature_names()
    text_cols = sum(not c.numeric for c in schema.columns)
    description = (
        f"{t.display}: {len(t.rows)} rows, {len(names)} features"
        + (f" ({text_cols} text column{'s' if text_cols > 1 else ''}, {schema.categorical})"
           if text_cols else "")
        + f", target {schema.target!r}"
        + (f" with {len(schema.classes)} classes" if schema.classes else " (regression)")
        + (f"; {rows_in_file - len(t.rows)} rows with missing cells dropped"
           if len(t.rows) < rows_in_file else "")
    )  # fmt: skip
    loaded = Loaded(
        x=x,
        y=y,
        task=schema.task,
        num_classes=len(schema.classes) if schema.classes else None,
        class_names=list(schema.classes) if schema.classes else None,
        feature_names=names,
        description=description,
    )
    return loaded, schema
