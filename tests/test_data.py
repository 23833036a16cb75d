"""The engine's data layer: built-in and generated sources against the compiler's table, every
file format on tiny files written here, the errors they raise, split, normalization, preview."""

from __future__ import annotations

import gzip
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graph_compiler import analyze
from graph_compiler.datasets import BUILTINS, describe
from graph_compiler.training import split_counts
from server.engine.data import (
    DataError,
    Loaded,
    Normalizer,
    TargetScaler,
    file_shapes,
    load_data,
    preview,
    split,
    with_defaults,
)
from tests.helpers import chain

SYNTHETIC = [name for name, b in BUILTINS.items() if b.synthetic]


def assert_matches_table(loaded: Loaded, params: dict) -> None:
    info = describe(with_defaults(params))
    assert loaded.x.shape == (info.samples, *info.x_shape)
    assert str(loaded.x.dtype) == f"torch.{info.x_dtype}"
    assert loaded.y.shape == (info.samples, *info.y_shape)
    assert str(loaded.y.dtype) == f"torch.{info.y_dtype}"
    assert loaded.task == info.task
    assert loaded.num_classes == info.num_classes
    if loaded.task == "classification":
        assert int(loaded.y.min()) >= 0 and int(loaded.y.max()) < info.num_classes
        assert loaded.class_names is not None and len(loaded.class_names) == info.num_classes
    assert torch.isfinite(loaded.x).all()


# --- built-in and generated sources ----------------------------------------------------------


@pytest.mark.parametrize("source", list(BUILTINS))
def test_builtin_matches_the_compiler_table(source):
    assert_matches_table(load_data({"source": source}), {"source": source})


@pytest.mark.parametrize(
    "params",
    [
        {"source": "spirals", "num_classes": 5, "samples": 123, "noise": 0.3},
        {"source": "sine_classify", "num_classes": 4, "seq_len": 10, "samples": 50},
        {"source": "sine_regress", "seq_len": 7, "samples": 33, "noise": 0.0},
        {"source": "random_images", "image_shape": [3, 8, 6], "num_classes": 7, "samples": 20},
        {"source": "shapes_segmentation", "image_shape": [3, 12, 10], "samples": 9},
        {"source": "moons", "samples": 11, "noise": 0.0},
        {"source": "circles", "samples": 10, "noise": 2.0},
    ],
)
def test_synthetic_params_match_the_compiler_table(params):
    assert_matches_table(load_data(params), params)


def test_digits_values_are_sklearns():
    digits = load_data({"source": "digits"})
    images = load_data({"source": "digits_images"})
    assert float(digits.x.max()) == 16.0 and float(digits.x.min()) == 0.0
    assert torch.equal(images.x.reshape(-1, 64), digits.x)
    assert digits.class_names == [str(i) for i in range(10)]
    assert load_data({"source": "iris"}).class_names == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("source", SYNTHETIC)
def test_synthetic_is_deterministic(source):
    params = {"source": source, "samples": 64, "num_classes": 3, "seq_len": 8}
    params["image_shape"] = [1, 4, 4]
    a = load_data({**params, "data_seed": 1})
    b = load_data({**params, "data_seed": 1})
    c = load_data({**params, "data_seed": 2})
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_synthetic_classes_are_balanced():
    y = load_data({"source": "spirals", "num_classes": 4, "samples": 102}).y
    assert torch.bincount(y).tolist() == [26, 26, 25, 25]


def test_sine_bands_are_separable_by_frequency():
    """The class is recoverable from the dominant frequency alone (what a small GRU learns)."""
    loaded = load_data({"source": "sine_classify", "num_classes": 3, "samples": 600})
    spectrum = torch.fft.rfft(loaded.x[:, :, 0], dim=1).abs()[:, 1:]
    peak = spectrum.argmax(dim=1).float()
    # learn the thresholds from the first half, score on the second
    half = 300
    centers = torch.stack([peak[:half][loaded.y[:half] == k].mean() for k in range(3)])
    guess = (peak[half:, None] - centers).abs().argmin(dim=1)
    assert (guess == loaded.y[half:]).float().mean() > 0.9


def test_sine_regress_target_continues_the_wave():
    loaded = load_data({"source": "sine_regress", "noise": 0.0, "samples": 20, "seq_len": 16})
    x = loaded.x[:, :, 0].double()
    # a noise-free sine satisfies s[t+1] = 2 cos(w) s[t] - s[t-1]
    c = (x[:, 2] + x[:, 0]) / (2 * x[:, 1])
    predicted = 2 * c * x[:, -1] - x[:, -2]
    assert torch.allclose(predicted, loaded.y[:, 0].double(), atol=1e-3)


def test_unknown_source():
    with pytest.raises(DataError, match="unknown data source 'nope'"):
        load_data({"source": "nope"})


# --- files: helpers ---------------------------------------------------------------------------


def file_params(path, **kw) -> dict:
    return {"source": "file", "path": str(path), **kw}


def png(color, size=(6, 4), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def cifar_batch(labels: list[int], seed: int = 0) -> tuple[bytes, np.ndarray]:
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    data = b"".join(bytes([label]) + pixels[i].tobytes() for i, label in enumerate(labels))
    return data, pixels


# --- CSV --------------------------------------------------------------------------------------

CSV = """\
size,color,weight,label
1.5,red,10,cat
2.0,blue,,dog
NA,red,12,cat
3.5,green,14,bird
2.5,blue,9,dog
"""


def test_csv_onehot_with_imputed_cells(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    loaded = load_data(file_params("t.csv", missing="mean"), base_dir=tmp_path)
    assert loaded.feature_names == ["size", "color=blue", "color=green", "color=red", "weight"]
    assert loaded.class_names == ["bird", "cat", "dog"]
    assert loaded.y.tolist() == [1, 2, 1, 0, 2]
    assert loaded.x.dtype == torch.float32 and loaded.x.shape == (5, 5)
    assert loaded.x[2, 0] == pytest.approx((1.5 + 2.0 + 3.5 + 2.5) / 4)  # mean of size
    assert loaded.x[1, 4] == pytest.approx((10 + 12 + 14 + 9) / 4)  # mean of weight
    assert loaded.x[3].tolist()[1:4] == [0.0, 1.0, 0.0]
    assert loaded.num_classes == 3 and loaded.task == "classification"


def test_csv_index_and_median(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    loaded = load_data(
        file_params(
            tmp_path / "t.csv", missing="median", categorical="index", target_column="label"
        )
    )
    assert loaded.feature_names == ["size", "color", "weight"]
    assert loaded.x[:, 1].tolist() == [2.0, 0.0, 2.0, 1.0, 0.0]  # blue, green, red
    assert loaded.x[2, 0] == pytest.approx(2.25)  # median of 1.5, 2.0, 3.5, 2.5
    assert loaded.x[1, 2] == pytest.approx(11.0)


def test_csv_drop_rows_with_missing_cells(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    loaded = load_data(file_params(tmp_path / "t.csv", missing="drop"))
    assert loaded.x.shape == (3, 5)
    assert loaded.y.tolist() == [1, 0, 2]


def test_csv_regression_and_numeric_classes(tmp_path):
    (tmp_path / "r.csv").write_text("a;b;y\n1;2;0.5\n3;4;1.5\n\n5;6;-2\n")
    loaded = load_data(file_params(tmp_path / "r.csv", task="regression"))
    assert loaded.y.shape == (3, 1) and loaded.y.dtype == torch.float32
    assert loaded.y[:, 0].tolist() == [0.5, 1.5, -2.0]
    assert loaded.num_classes is None
    (tmp_path / "c.csv").write_text("a,y\n1,10\n2,9\n3,10.0\n4,2\n")
    classes = load_data(file_params(tmp_path / "c.csv"))
    assert classes.class_names == ["2", "9", "10"]  # numeric order, 10.0 == 10
    assert classes.y.tolist() == [2, 1, 2, 0]


def test_csv_missing_cells_are_listed(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    with pytest.raises(DataError) as e:
        load_data(file_params(tmp_path / "t.csv"))
    msg = str(e.value)
    assert "t.csv has 2 missing cells" in msg
    assert "row 3 column 'weight'" in msg and "row 4 column 'size'" in msg


def test_csv_ragged_row(tmp_path):
    (tmp_path / "table.csv").write_text("a,b,c,d\n" + "1,2,3,4\n" * 5 + "1,2,3,4,5\n")
    with pytest.raises(DataError, match=r"table.csv row 7 has 5 columns, expected 4"):
        load_data(file_params(tmp_path / "table.csv"))


def test_csv_regression_target_not_a_number(tmp_path):
    (tmp_path / "t.csv").write_text("a,price\n1,2.5\n2,cheap\n")
    with pytest.raises(DataError, match=r"t.csv row 3: target 'price' is 'cheap'; expected a num"):
        load_data(file_params(tmp_path / "t.csv", task="regression"))


@pytest.mark.parametrize(
    ("text", "params", "fragments"),
    [
        ("1,2,3\n4,5,6\n", {}, ["t.csv row 1", "header"]),
        ("a,b\n", {}, ["t.csv", "no data rows"]),
        ("", {}, ["t.csv is empty"]),
        ("a,b\n1,x\n2,x\n", {}, ["target 'b' has one value", "at least 2 classes"]),
        ("a,b\n1,x\n2,y\n", {"target_column": "z"}, ["no column named 'z'", "'a', 'b'"]),
        ("a,,c\n1,2,3\n", {}, ["t.csv row 1: column 2 has no name"]),
        ("a,a\n1,2\n", {}, ["column name 'a' appears twice"]),
    ],
)
def test_csv_errors(tmp_path, text, params, fragments):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataError) as e:
        load_data(file_params(tmp_path / "t.csv", **params))
    for fragment in fragments:
        assert fragment in str(e.value)


def test_csv_not_utf8(tmp_path):
    (tmp_path / "t.csv").write_bytes(b"a,b\n1,\xff\n")
    with pytest.raises(DataError, match=r"t.csv is not UTF-8 text: byte 0xff"):
        load_data(file_params(tmp_path / "t.csv"))


def test_csv_val_path_uses_the_training_encoding(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    (tmp_path / "v.csv").write_text("label,weight,color,size\ndog,,purple,1\ncat,3,red,2\n")
    loaded = load_data(file_params("t.csv", missing="mean", val_path="v.csv"), base_dir=tmp_path)
    vx, vy = loaded.val
    assert vy.tolist() == [2, 1]
    assert vx.shape == (2, 5)
    assert vx[0].tolist() == [1.0, 0.0, 0.0, 0.0, pytest.approx(11.25)]  # unseen colour: zeros
    assert vx[1].tolist() == [2.0, 0.0, 0.0, 1.0, 3.0]
    (tmp_path / "bad.csv").write_text("size,color,weight,label\n1,red,2,fish\n")
    with pytest.raises(DataError, match=r"bad.csv row 2: target 'label' is 'fish', which is not"):
        load_data(file_params("t.csv", missing="mean", val_path="bad.csv"), base_dir=tmp_path)


# --- NPZ / NPY / safetensors ------------------------------------------------------------------


def test_npz_round_trip_with_upper_case_keys(tmp_path):
    x = np.arange(40, dtype=np.float64).reshape(10, 2, 2)
    y = np.array([0, 1, 2, 1, 0, 1, 2, 1, 0, 1], dtype=np.float32)  # integral floats accepted
    np.savez(tmp_path / "d.npz", X=x, Y=y)
    loaded = load_data(file_params(tmp_path / "d.npz"))
    assert loaded.x.dtype == torch.float32 and loaded.x.shape == (10, 2, 2)
    assert loaded.y.dtype == torch.int64 and loaded.y.tolist() == y.astype(int).tolist()
    assert loaded.num_classes == 3 and loaded.val is None


def test_npz_token_ids_stay_int64_with_x_dtype(tmp_path):
    """An imported token model's Dataset (x_dtype int64) reads ids as ids, not floats."""
    x = np.arange(30, dtype=np.int32).reshape(10, 3) % 7
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 2)
    loaded = load_data(file_params(tmp_path / "d.npz", x_dtype="int64"))
    assert loaded.x.dtype == torch.int64 and loaded.x.tolist() == x.tolist()
    np.savez(tmp_path / "f.npz", x=x + 0.5, y=np.arange(10) % 2)
    with pytest.raises(DataError, match=r"f.npz: x_dtype int64 needs integer token ids"):
        load_data(file_params(tmp_path / "f.npz", x_dtype="int64"))
    np.savez(tmp_path / "n.npz", x=x - 1, y=np.arange(10) % 2)
    with pytest.raises(DataError, match=r"n\.npz: x\[0\] holds the negative id -1"):
        load_data(file_params(tmp_path / "n.npz", x_dtype="int64"))


def test_npz_train_test_pairs_and_regression(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x_train=rng.normal(size=(8, 3)),
        y_train=rng.normal(size=(8, 2)),
        x_test=rng.normal(size=(4, 3)),
        y_test=rng.normal(size=(4, 2)),
    )
    loaded = load_data(file_params(tmp_path / "d.npz", task="regression"))
    assert loaded.y.shape == (8, 2) and loaded.val[0].shape == (4, 3)
    assert file_shapes(file_params(tmp_path / "d.npz", task="regression")) == {
        "x_shape": [3],
        "x_dtype": "float32",
        "vocab_size": None,
        "pad_id": None,
        "task": "regression",
        "num_classes": None,
        "y_dim": 2,
    }


@pytest.mark.parametrize(
    ("arrays", "fragments"),
    [
        (
            {"a": np.zeros((2, 2)), "b": np.zeros(2)},
            ["d.npz", "'x' and 'y'", "found keys: 'a', 'b'"],
        ),
        ({"x": np.zeros((100, 2)), "y": np.zeros(99)}, ["d.npz: x has 100 samples but y has 99"]),
        ({"x": np.zeros((3, 2)), "y": np.array([0, -1, 1])}, ["d.npz: y[1] = -1", "≥ 0"]),
        ({"x": np.zeros((3, 2)), "y": np.array([0, 0.5, 1])}, ["y[1] = 0.5", "whole number"]),
        ({"x": np.zeros((3, 2)), "y": np.zeros((3, 2))}, ["shape (N,)", "(3, 2)"]),
        ({"x": np.array([[0.0], [np.nan]]), "y": np.array([0, 1])}, ["x[1]", "NaN"]),
        ({"x": np.zeros((2, 1)), "y": np.array(["a", "b"])}, ["integer class ids", "<U1"]),
        ({"x": np.zeros((2, 1)), "y": np.array([0, 0])}, ["every target is class 0"]),
    ],
)
def test_npz_errors(tmp_path, arrays, fragments):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError) as e:
        load_data(file_params(tmp_path / "d.npz"))
    for fragment in fragments:
        assert fragment in str(e.value)


def test_npy_target_column(tmp_path):
    table = np.array([[1.0, 0.0, 5.0], [2.0, 1.0, 6.0], [3.0, 1.0, 7.0]])
    np.save(tmp_path / "t.npy", table)
    last = load_data(file_params(tmp_path / "t.npy", task="regression"))
    assert last.x.tolist() == [[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]]
    assert last.y[:, 0].tolist() == [5.0, 6.0, 7.0]
    middle = load_data(file_params(tmp_path / "t.npy", target_column="1"))
    assert middle.y.tolist() == [0, 1, 1] and middle.x[:, 1].tolist() == [5.0, 6.0, 7.0]
    with pytest.raises(DataError, match=r"t.npy: target_column 'price' must be a column index"):
        load_data(file_params(tmp_path / "t.npy", target_column="price"))
    with pytest.raises(DataError, match=r"t.npy: target_column 7 is out of range; .* 3 columns"):
        load_data(file_params(tmp_path / "t.npy", target_column="7"))
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(DataError, match=r"flat.npy: expected one 2-D array.*shape \(5,\)"):
        load_data(file_params(tmp_path / "flat.npy"))


def test_safetensors_round_trip_and_errors(tmp_path):
    from safetensors.torch import save_file

    x = torch.randn(6, 4, dtype=torch.float16)
    save_file({"x": x, "y": torch.tensor([0, 1, 2, 0, 1, 2])}, str(tmp_path / "d.safetensors"))
    loaded = load_data(file_params(tmp_path / "d.safetensors"))
    assert loaded.x.dtype == torch.float32 and torch.equal(loaded.x, x.float())
    assert loaded.y.tolist() == [0, 1, 2, 0, 1, 2] and loaded.num_classes == 3
    save_file({"inputs": x}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(DataError, match=r"bad.safetensors: expected .*found keys: 'inputs'"):
        load_data(file_params(tmp_path / "bad.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match=r"junk.safetensors is not a readable safetensors"):
        load_data(file_params(tmp_path / "junk.safetensors"))


def test_val_path_arrays_shape_must_match(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 3)), y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "b.npz", x=np.zeros((2, 3)), y=np.array([1, 2]))
    np.savez(tmp_path / "c.npz", x=np.zeros((2, 5)), y=np.array([1, 0]))
    loaded = load_data(file_params("a.npz", val_path="b.npz"), base_dir=tmp_path)
    assert loaded.val[0].shape == (2, 3) and loaded.num_classes == 3  # classes of both sets
    with pytest.raises(DataError, match=r"c.npz: validation samples have shape \(5,\); expected"):
        load_data(file_params("a.npz", val_path="c.npz"), base_dir=tmp_path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(DataError, match=r"nothere.csv not found"):
        load_data(file_params("nothere.csv"), base_dir=tmp_path)
    with pytest.raises(DataError, match="no data file"):
        load_data(file_params(""))
    (tmp_path / "d.xyz").write_text("?")
    with pytest.raises(DataError, match=r"d.xyz: cannot tell the format"):
        load_data(file_params(tmp_path / "d.xyz"))
    (tmp_path / "d.npz").write_text("not a zip")
    with pytest.raises(DataError, match=r"d.npz is not a readable .npz file"):
        load_data(file_params(tmp_path / "d.npz"))


# --- images -----------------------------------------------------------------------------------

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def image_entries(prefix: str = "") -> dict[str, bytes]:
    return {
        f"{prefix}cat/1.png": png(RED),
        f"{prefix}cat/2.png": png(RED, size=(12, 8)),  # resized to the first image's size
        f"{prefix}dog/1.png": png(BLUE),
        f"{prefix}dog/sub/3.png": png(GREEN),
        f"{prefix}dog/notes.txt": b"not an image",
        "__MACOSX/cat/._1.png": b"resource fork",
        f"{prefix}.DS_Store": b"junk",
    }


def test_image_zip_round_trip(tmp_path):
    write_zip(tmp_path / "pets.zip", image_entries("pets/"))
    loaded = load_data(file_params(tmp_path / "pets.zip"))
    assert loaded.x.shape == (4, 3, 4, 6) and loaded.x.dtype == torch.float32
    assert loaded.class_names == ["cat", "dog"] and loaded.y.tolist() == [0, 0, 1, 1]
    assert loaded.x[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert loaded.x[2, :, 0, 0].tolist() == [0.0, 0.0, 1.0]
    assert float(loaded.x.min()) >= 0.0 and float(loaded.x.max()) <= 1.0
    grey = load_data(file_params(tmp_path / "pets.zip", color="grayscale", image_size=[5, 3]))
    assert grey.x.shape == (4, 1, 5, 3)
    assert file_shapes(file_params(tmp_path / "pets.zip")) == {
        "x_shape": [3, 4, 6],
        "x_dtype": "float32",
        "vocab_size": None,
        "pad_id": None,
        "task": "classification",
        "num_classes": 2,
        "y_dim": 1,
    }


def test_image_folder_and_train_val_layout(tmp_path):
    root = tmp_path / "imgs"
    for name, data in image_entries().items():
        (root / "train" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "train" / name).write_bytes(data)
    (root / "val" / "dog").mkdir(parents=True)
    (root / "val" / "dog" / "9.png").write_bytes(png(BLUE, size=(3, 3)))
    loaded = load_data(file_params(root))
    assert loaded.x.shape == (4, 3, 4, 6)
    assert loaded.val[0].shape == (1, 3, 4, 6) and loaded.val[1].tolist() == [1]
    (train, _), (_, vy) = split(loaded, 0.5, 0)
    assert train.shape[0] == 4 and vy.tolist() == [1]


def test_image_val_path_with_unknown_class(tmp_path):
    write_zip(tmp_path / "a.zip", image_entries())
    write_zip(tmp_path / "b.zip", {"dog/1.png": png(BLUE), "cat/1.png": png(RED)})
    loaded = load_data(file_params("a.zip", val_path="b.zip"), base_dir=tmp_path)
    assert loaded.val[1].tolist() == [0, 1] and loaded.val[0].shape == (2, 3, 4, 6)
    write_zip(tmp_path / "c.zip", {"fox/1.png": png(BLUE)})
    with pytest.raises(DataError, match=r"c.zip entry 'fox/1.png'.*'fox'.*not among"):
        load_data(file_params("a.zip", val_path="c.zip"), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("entries", "fragments"),
    [
        ({"cat/1.png": png(RED), "../evil.png": png(RED)}, ["a.zip", "'../evil.png'", "'..'"]),
        ({"cat/1.png": png(RED), "/etc/evil.png": png(RED)}, ["'/etc/evil.png'", "absolute"]),
        ({"cat/1.png": png(RED), "dog/2.png": b"\x89PNG broken"}, ["a.zip entry 'dog/2.png'"]),
        ({"cat/1.png": png(RED), "2.png": png(RED)}, ["a.zip entry '2.png' is not in a class"]),
        ({"cat/1.png": png(RED)}, ["only the class folder 'cat'", "at least 2"]),
        ({"readme.txt": b"hi"}, ["cannot tell the format"]),
    ],
)
def test_image_zip_errors(tmp_path, entries, fragments):
    write_zip(tmp_path / "a.zip", entries)
    with pytest.raises(DataError) as e:
        load_data(file_params(tmp_path / "a.zip", format="auto"))
    for fragment in fragments:
        assert fragment in str(e.value)


def test_image_zip_limits(tmp_path, monkeypatch):
    from server.engine.data import container

    write_zip(tmp_path / "a.zip", image_entries())
    monkeypatch.setattr(container, "MAX_ENTRIES", 3)
    with pytest.raises(DataError, match=r"a.zip has 7 entries; expected at most 3"):
        load_data(file_params(tmp_path / "a.zip"))
    monkeypatch.setattr(container, "MAX_ENTRIES", 100)
    monkeypatch.setattr(container, "MAX_TOTAL_BYTES", 100)
    with pytest.raises(DataError, match=r"a.zip unpacks to more than"):
        load_data(file_params(tmp_path / "a.zip"))
    (tmp_path / "b.zip").write_bytes(b"PK not really")
    with pytest.raises(DataError, match=r"b.zip is not a readable zip archive"):
        load_data(file_params(tmp_path / "b.zip", format="image_zip"))


def test_images_are_classification_only(tmp_path):
    write_zip(tmp_path / "a.zip", image_entries())
    with pytest.raises(DataError, match=r"a.zip: image folders give class labels"):
        load_data(file_params(tmp_path / "a.zip", task="regression"))


# --- MNIST IDX --------------------------------------------------------------------------------


def write_mnist(folder: Path, n_train=5, n_test=3, gz_test=True) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    labels = np.arange(n_train) % 10
    (folder / "train-images-idx3-ubyte").write_bytes(idx_images(images))
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_labels(labels))
    if n_test:
        test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        suffix, wrap = (".gz", gzip.compress) if gz_test else ("", bytes)
        (folder / f"t10k-images-idx3-ubyte{suffix}").write_bytes(wrap(idx_images(test)))
        (folder / f"t10k-labels-idx1-ubyte{suffix}").write_bytes(wrap(idx_labels(labels[:n_test])))
    return images, labels


def test_mnist_round_trip(tmp_path):
    images, labels = write_mnist(tmp_path / "mnist")
    loaded = load_data(file_params(tmp_path / "mnist"))  # auto: a folder of IDX files
    assert loaded.x.shape == (5, 1, 28, 28) and loaded.x.dtype == torch.float32
    assert torch.allclose(loaded.x[:, 0], torch.from_numpy(images).float() / 255)
    assert loaded.y.tolist() == labels.tolist() and loaded.num_classes == 10
    assert loaded.val[0].shape == (3, 1, 28, 28) and loaded.val[1].tolist() == [0, 1, 2]
    (tr, _), (vx, _) = split(loaded, 0.2, 0)
    assert tr.shape[0] == 5 and vx.shape[0] == 3


def test_mnist_in_a_zip(tmp_path):
    write_mnist(tmp_path / "m", n_test=0)
    write_zip(
        tmp_path / "m.zip",
        {f"mnist/{p.name}": p.read_bytes() for p in (tmp_path / "m").iterdir()},
    )
    loaded = load_data(file_params(tmp_path / "m.zip", format="mnist"))
    assert loaded.x.shape == (5, 1, 28, 28) and loaded.val is None


def test_mnist_errors(tmp_path):
    folder = tmp_path / "m"
    write_mnist(folder, gz_test=False)
    data = (folder / "train-images-idx3-ubyte").read_bytes()
    (folder / "train-images-idx3-ubyte").write_bytes(struct.pack(">I", 2049) + data[4:])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: bad magic number 2049.*2051"):
        load_data(file_params(folder, format="mnist"))
    (folder / "train-images-idx3-ubyte").write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"m/train-images-idx3-ubyte is truncated"):
        load_data(file_params(folder, format="mnist"))
    (folder / "train-images-idx3-ubyte").write_bytes(data)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(np.arange(2)))
    with pytest.raises(DataError, match=r"has 3 images but t10k-labels-idx1-ubyte has 2 labels"):
        load_data(file_params(folder, format="mnist"))
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"found t10k-images-idx3-ubyte but no t10k-labels"):
        load_data(file_params(folder, format="mnist"))
    (folder / "t10k-images-idx3-ubyte").write_bytes(gzip.compress(b"x")[:5])
    (folder / "t10k-images-idx3-ubyte").rename(folder / "t10k-images-idx3-ubyte.gz")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels(np.arange(3))))
    with pytest.raises(DataError, match=r"m/t10k-images-idx3-ubyte.gz is not a valid gzip file"):
        load_data(file_params(folder, format="mnist"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no MNIST files"):
        load_data(file_params(tmp_path / "empty", format="mnist"))


# --- CIFAR-10 ---------------------------------------------------------------------------------


def test_cifar_round_trip(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    b1, pixels = cifar_batch([3, 1, 4])
    b2, _ = cifar_batch([1, 5], seed=1)
    test, _ = cifar_batch([9, 0], seed=2)
    (folder / "data_batch_1.bin").write_bytes(b1)
    (folder / "data_batch_3.bin").write_bytes(b2)
    (folder / "test_batch.bin").write_bytes(test)
    names = [f"class {i}" for i in range(10)]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    loaded = load_data(file_params(folder))
    assert loaded.x.shape == (5, 3, 32, 32) and loaded.x.dtype == torch.float32
    assert loaded.y.tolist() == [3, 1, 4, 1, 5] and loaded.class_names == names
    expected = torch.from_numpy(pixels[0].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(loaded.x[0], expected)
    assert loaded.val[1].tolist() == [9, 0] and loaded.num_classes == 10
    (folder / "data_batch_3.bin").write_bytes(b2[:-7])
    with pytest.raises(DataError, match=r"data_batch_3.bin is truncated.*3073-byte records"):
        load_data(file_params(folder))
    (folder / "data_batch_3.bin").write_bytes(bytes([12]) + b2[1:])
    with pytest.raises(DataError, match=r"data_batch_3.bin: record 0 has label 12; expected 0–9"):
        load_data(file_params(folder, format="cifar10"))


# --- split ------------------------------------------------------------------------------------


def test_split_is_seeded_and_sized_by_split_counts():
    loaded = load_data({"source": "moons", "samples": 101})
    (xt, _), (xv, _) = split(loaded, 0.2, seed=7)
    assert (len(xt), len(xv)) == split_counts(101, 0.2)
    (xt2, _), (xv2, _) = split(loaded, 0.2, seed=7)
    assert torch.equal(xt, xt2) and torch.equal(xv, xv2)
    (xt3, _), _ = split(loaded, 0.2, seed=8)
    assert not torch.equal(xt, xt3)
    rows = {tuple(r) for r in torch.cat([xt, xv]).tolist()}
    assert len(rows) == 101  # a partition of the samples
    _, (x0, y0) = split(loaded, 0.0, seed=0)
    assert x0.shape == (0, 2) and y0.shape == (0,)
    _, (x1, _) = split(load_data({"source": "moons", "samples": 10}), 0.01, seed=0)
    assert len(x1) == 1  # split_counts keeps the validation set non-empty


def test_split_uses_an_explicit_validation_set():
    loaded = load_data({"source": "iris"})
    loaded.val = (loaded.x[:5], loaded.y[:5])
    (xt, _), (xv, _) = split(loaded, 0.5, seed=0)
    assert xt is loaded.x and xv.shape[0] == 5


# --- normalization ----------------------------------------------------------------------------


def test_normalizer_features_fit_on_train_only():
    x = torch.tensor([[1.0, 5.0, 3.0], [3.0, 5.0, 5.0], [5.0, 5.0, 7.0]])
    norm = Normalizer.fit(x[:2])
    assert norm.kind == "features"
    out = norm.apply(x)
    assert out[:2, 0].tolist() == [-1.0, 1.0] and out[2, 0] == 3.0  # train stats only
    assert out[:, 1].tolist() == [0.0, 0.0, 0.0]  # zero variance: std 1, no NaN
    again = Normalizer.from_state_dict(norm.state_dict())
    assert torch.equal(again.apply(x), out) and again.kind == "features"


def test_normalizer_kinds():
    images = torch.rand(10, 3, 4, 4) * torch.tensor([1.0, 10.0, 100.0])[:, None, None]
    norm = Normalizer.fit(images)
    assert norm.kind == "images" and norm.mean.shape == (1, 3, 1, 1)
    out = norm.apply(images)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    seq = torch.randn(6, 5, 2) * 4 + 1
    sn = Normalizer.fit(seq)
    assert sn.kind == "sequence" and sn.mean.shape == (1, 1, 2)
    assert torch.allclose(sn.apply(seq).mean(dim=(0, 1)), torch.zeros(2), atol=1e-5)
    tokens = torch.randint(0, 9, (4, 7))
    tn = Normalizer.fit(tokens)
    assert tn.kind == "none" and tn.apply(tokens) is tokens
    assert Normalizer.from_state_dict(tn.state_dict()).kind == "none"
    state = Normalizer.fit(images).state_dict()
    assert set(state) == {"kind", "mean", "std"} and state["kind"] == "images"


def test_target_scaler():
    y = torch.tensor([[1.0, 7.0], [3.0, 7.0], [5.0, 7.0]])
    scaler = TargetScaler.fit(y[:2])
    scaled = scaler.apply(y)
    assert scaled[:, 0].tolist() == [-1.0, 1.0, 3.0] and scaled[:, 1].tolist() == [0.0] * 3
    assert torch.allclose(scaler.inverse(scaled), y)
    again = TargetScaler.from_state_dict(scaler.state_dict())
    assert torch.equal(again.apply(y), scaled)


# --- preview and file_shapes ------------------------------------------------------------------


def test_preview_classification_and_regression():
    p = preview(load_data({"source": "iris"}), n=3)
    json.dumps(p, allow_nan=False)
    assert p["num_samples"] == 150 and p["x_shape"] == [4] and p["x_dtype"] == "float32"
    assert [c["count"] for c in p["classes"]] == [50, 50, 50]
    assert p["classes"][0]["name"] == "setosa" and len(p["samples"]) == 3
    assert p["samples"][0]["label"] == p["classes"][p["samples"][0]["y"]]["name"]
    r = preview(load_data({"source": "diabetes"}))
    json.dumps(r, allow_nan=False)
    stats = r["targets"][0]
    assert stats["min"] == 25.0 and stats["max"] == 346.0 and 150 < stats["mean"] < 155
    assert isinstance(r["samples"][0]["y"], list) and "val_samples" not in r


def test_preview_shrinks_images_and_shows_the_validation_set():
    loaded = load_data(
        {"source": "random_images", "image_shape": [3, 64, 40], "samples": 12, "num_classes": 2}
    )
    loaded.val = (loaded.x[:2], loaded.y[:2])
    p = preview(loaded, n=2)
    json.dumps(p, allow_nan=False)
    x = np.array(p["samples"][0]["x"])
    assert x.shape[0] == 3 and max(x.shape[1:]) <= 28
    assert p["num_val_samples"] == 2 and len(p["val_samples"]) == 2
    seq = preview(load_data({"source": "sine_regress", "seq_len": 5000, "samples": 10}), n=1)
    assert len(seq["samples"][0]["x"]) <= 2048 and seq["samples"][0]["x_truncated"]


def test_file_shapes_feed_the_compiler(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    params = file_params("t.csv", missing="mean")
    shapes = file_shapes(params, base_dir=tmp_path)
    assert shapes == {
        "x_shape": [5],
        "x_dtype": "float32",
        "vocab_size": None,
        "pad_id": None,
        "task": "classification",
        "num_classes": 3,
        "y_dim": 1,
    }
    doc = chain({**params, **shapes}, [("Linear", {"out_features": 3})])
    analysis = analyze(doc)
    assert analysis.ok, analysis.errors
    loaded = load_data(params, base_dir=tmp_path)
    assert tuple(loaded.x.shape[1:]) == analysis.data.x_shape
