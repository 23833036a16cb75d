"""Uploaded datasets over HTTP: round trips for CSV, NPZ and image zips, and the hostile
uploads (pickles, zip-slip, zip bombs, oversize files, lying headers, traversal ids)."""

from __future__ import annotations

import builtins
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.engine.data import load_data
from server.errors import ApiError
from server.storage import files as files_module
from tests.helpers import chain
from tests.server_app import AUTH, make_app

STORED = re.compile(r"^[0-9a-f]{16}\.(csv|tsv|npz|npy|safetensors|zip)$")


def upload(client, data: bytes, filename: str, **form):
    fields = {"file": (io.BytesIO(data), filename), **form}
    return client.post(
        "/api/datasets", data=fields, headers=AUTH, content_type="multipart/form-data"
    )


def stored(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "datasets").iterdir())


def error(resp) -> dict:
    body = resp.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- builders -----------------------------------------------------------------------------------

CSV = b"a,b,color,label\n1,2,red,x\n3,4,blue,y\n5,6,red,x\n7,8,blue,y\n9,1,red,y\n"


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def png(size=(8, 8), color=(255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def image_zip(size=(8, 8)) -> bytes:
    return zip_bytes(
        {
            "pets/cat/1.png": png(size, (255, 0, 0)),
            "pets/cat/2.png": png(size, (250, 10, 0)),
            "pets/dog/1.png": png(size, (0, 0, 255)),
            "pets/dog/2.png": png(size, (0, 10, 250)),
        }
    )


class Evil:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


# --- round trips --------------------------------------------------------------------------------


def test_list_has_builtins_and_no_uploads(client):
    body = client.get("/api/datasets", headers=AUTH).get_json()
    assert body["uploaded"] == []
    by_name = {b["name"]: b for b in body["builtin"]}
    assert by_name["digits"] == {
        "name": "digits",
        "description": by_name["digits"]["description"],
        "synthetic": False,
        "x_shape": [64],
        "x_dtype": "float32",
        "vocab_size": None,
        "task": "classification",
        "num_classes": 10,
        "samples": 1797,
    }
    assert by_name["moons"]["synthetic"] is True
    assert by_name["diabetes"]["task"] == "regression"
    assert by_name["diabetes"]["num_classes"] is None


def test_csv_round_trip(client, app, tmp_path):
    r = upload(client, CSV, "../../my data.csv")
    assert r.status_code == 201, r.get_json()
    made = r.get_json()
    ds_id = made["id"]
    assert re.fullmatch(r"[0-9a-f]{16}", ds_id)
    assert made["name"] == "my data.csv"  # the last path component only
    assert made["format"] == "csv"
    assert made["size"] == len(CSV)
    assert made["shapes"]["x_shape"] == [4]  # a, b, color=blue, color=red
    assert made["shapes"]["num_classes"] == 2
    assert made["preview"]["feature_names"] == ["a", "b", "color=blue", "color=red"]
    assert made["preview"]["description"].startswith("my data.csv:")
    params = made["dataset_params"]
    assert params["source"] == "file" and params["dataset_id"] == ds_id
    assert params["x_shape"] == [4] and params["task"] == "classification"
    assert params["num_classes"] == 2 and params["y_dim"] == 1
    assert params["format"] == "csv" and params["missing"] == "error"
    # stored under a server-generated name, inside the data dir, nothing else written
    assert stored(tmp_path) == [f"{ds_id}.csv"]
    assert not (tmp_path.parent / "my data.csv").exists()

    listed = client.get("/api/datasets", headers=AUTH).get_json()["uploaded"]
    assert [d["id"] for d in listed] == [ds_id]
    got = client.get(f"/api/datasets/{ds_id}", headers=AUTH)
    assert got.status_code == 200
    assert got.get_json()["dataset_params"] == params
    prev = client.get(f"/api/datasets/{ds_id}/preview", headers=AUTH)
    assert prev.status_code == 200
    assert prev.get_json()["preview"]["num_samples"] == 5

    # the params make a valid graph, and the run starter's path reads the same data
    doc = chain(params, [("fc", "Linear", {"out_features": 2})])
    analysis = client.post("/api/validate", json={"document": doc}, headers=AUTH).get_json()
    assert analysis["ok"], analysis["errors"]
    from server.api.datasets import dataset_path

    path = dataset_path(app.extensions["torchloom"], ds_id)
    assert path == (tmp_path / "datasets" / f"{ds_id}.csv").resolve()
    loaded = load_data({**params, "path": str(path)})
    assert loaded.x_shape == (4,) and loaded.samples == 5

    assert client.delete(f"/api/datasets/{ds_id}", headers=AUTH).status_code == 204
    assert stored(tmp_path) == []
    for url in (f"/api/datasets/{ds_id}", f"/api/datasets/{ds_id}/preview"):
        r = client.get(url, headers=AUTH)
        assert r.status_code == 404 and error(r)["code"] == "not_found"
    assert client.delete(f"/api/datasets/{ds_id}", headers=AUTH).status_code == 404
    with pytest.raises(ApiError) as exc:
        dataset_path(app.extensions["torchloom"], ds_id)
    assert exc.value.status == 404


def test_csv_regression_with_options(client):
    data = b"x1;x2;price\n1;2;10.5\n2;3;11\n3;NA;12\n4;5;13.25\n"
    r = upload(
        client,
        data,
        "houses.csv",
        task="regression",
        target_column="price",
        missing="mean",
        name="  House\x00prices\n",
    )
    assert r.status_code == 201, r.get_json()
    made = r.get_json()
    assert made["name"] == "House prices"
    assert made["shapes"]["task"] == "regression"
    params = made["dataset_params"]
    assert "num_classes" not in params  # regression: no class count
    assert params["task"] == "regression" and params["y_dim"] == 1
    assert params["target_column"] == "price" and params["missing"] == "mean"


def test_npz_round_trip(client, tmp_path):
    rng = np.random.default_rng(0)
    data = npz_bytes(x=rng.normal(size=(30, 3)).astype(np.float32), y=np.arange(30) % 3)
    r = upload(client, data, "arrays.npz")
    assert r.status_code == 201, r.get_json()
    made = r.get_json()
    assert made["format"] == "npz"
    assert made["shapes"]["x_shape"] == [3] and made["shapes"]["num_classes"] == 3
    assert stored(tmp_path) == [f"{made['id']}.npz"]
    assert client.get(f"/api/datasets/{made['id']}/preview", headers=AUTH).status_code == 200
    assert client.delete(f"/api/datasets/{made['id']}", headers=AUTH).status_code == 204
    assert stored(tmp_path) == []


def test_image_zip_round_trip(client, tmp_path):
    r = upload(client, image_zip(), "pets.zip")
    assert r.status_code == 201, r.get_json()
    made = r.get_json()
    assert made["format"] == "image_zip"
    assert made["shapes"]["x_shape"] == [3, 8, 8]
    assert made["shapes"]["num_classes"] == 2
    assert made["preview"]["is_image"] is True
    assert [c["name"] for c in made["preview"]["classes"]] == ["cat", "dog"]

    r = upload(client, image_zip(), "pets.zip", color="grayscale", image_size="4,4")
    assert r.status_code == 201, r.get_json()
    gray = r.get_json()
    assert gray["shapes"]["x_shape"] == [1, 4, 4]
    assert gray["dataset_params"]["image_size"] == [4, 4]
    assert gray["dataset_params"]["color"] == "grayscale"
    ids = {d["id"] for d in client.get("/api/datasets", headers=AUTH).get_json()["uploaded"]}
    assert ids == {made["id"], gray["id"]}
    for ds_id in ids:
        assert client.delete(f"/api/datasets/{ds_id}", headers=AUTH).status_code == 204
    assert stored(tmp_path) == []


# --- bad data -----------------------------------------------------------------------------------


def test_bad_csv_names_the_row_and_keeps_nothing(client, tmp_path):
    r = upload(client, b"a,b,label\n1,2,x\n3,4\n5,6,y\n", "broken.csv")
    assert r.status_code == 422
    err = error(r)
    assert err["code"] == "bad_data"
    assert "broken.csv" in err["message"] and "row 3" in err["message"]
    assert stored(tmp_path) == []

    r = upload(client, b"a,b,label\n1,2,x\n3,,y\n", "holes.csv")
    assert r.status_code == 422
    assert "row 3" in error(r)["message"] and "'b'" in error(r)["message"]


def test_npz_with_wrong_keys(client, tmp_path):
    r = upload(client, npz_bytes(inputs=np.zeros((4, 2)), labels=np.zeros(4)), "keys.npz")
    assert r.status_code == 422
    message = error(r)["message"]
    assert "keys.npz" in message and "'inputs'" in message
    assert stored(tmp_path) == []


def test_unsupported_extension_and_format_mismatch(client, tmp_path):
    for name in ("model.pt", "run.exe", "data.csv.gz", "noextension", ""):
        r = upload(client, CSV, name)
        assert r.status_code == 400, name
        assert error(r)["code"] in ("unsupported_type", "missing_file")
    r = upload(client, CSV, "data.csv", format="npz")
    assert r.status_code == 400 and error(r)["code"] == "format_mismatch"
    r = upload(client, CSV, "data.csv", format="not-a-format")
    assert r.status_code == 400 and error(r)["code"] == "bad_option"
    r = upload(client, image_zip(), "pets.zip", image_size="99999,2")
    assert r.status_code == 400 and error(r)["code"] == "bad_option"
    r = upload(client, b"", "empty.csv")
    assert r.status_code == 400 and error(r)["code"] == "empty_file"
    r = client.post("/api/datasets", data={}, headers=AUTH, content_type="multipart/form-data")
    assert r.status_code == 400 and error(r)["code"] == "missing_file"
    assert stored(tmp_path) == []


def test_pickles_never_execute(client, tmp_path):
    # the payload is live: unpickling it creates its marker
    probe = tmp_path / "probe-marker"
    pickle.loads(pickle.dumps(Evil(probe)))
    assert probe.exists()

    marker = tmp_path / "pwned"
    payload = pickle.dumps(Evil(marker))
    for name in ("weights.pt", "weights.npz", "weights.npy", "weights.safetensors"):
        r = upload(client, payload, name)
        assert 400 <= r.status_code < 500, (name, r.status_code)
        assert "Traceback" not in r.get_data(as_text=True)
    # a pickled object array inside a real npz, and a torch.save zip disguised as npz
    objects = io.BytesIO()
    np.savez(objects, x=np.array([Evil(marker)], dtype=object), y=np.zeros(1))
    r = upload(client, objects.getvalue(), "objects.npz")
    assert r.status_code == 422 and "pickled" in error(r)["message"]
    import torch

    saved = io.BytesIO()
    torch.save({"x": torch.zeros(3, 2), "y": torch.zeros(3), "evil": Evil(marker)}, saved)
    r = upload(client, saved.getvalue(), "checkpoint.npz")
    assert 400 <= r.status_code < 500
    assert not marker.exists()
    assert stored(tmp_path) == []


def test_zip_slip_is_refused(client, tmp_path):
    data = zip_bytes({"cat/1.png": png(), "dog/1.png": png(), "../evil.png": png()})
    r = upload(client, data, "pets.zip")
    assert r.status_code == 400
    err = error(r)
    assert err["code"] == "unsafe_archive" and "../evil.png" in err["message"]
    assert "pets.zip" in err["message"]
    assert not (tmp_path / "evil.png").exists()
    assert stored(tmp_path) == []


def _count_decompression(monkeypatch) -> list[int]:
    counted: list[int] = []
    real = zipfile.ZipExtFile.read

    def read(self, n=-1):
        out = real(self, n)
        counted.append(len(out))
        return out

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    return counted


def test_zip_bomb_is_refused_without_expanding(client, tmp_path, monkeypatch):
    bomb = zip_bytes(
        {"cat/1.png": png(), "dog/1.png": png(), "dog/2.png": b"\0" * (64 * 2**20)},
        zipfile.ZIP_DEFLATED,
    )
    assert len(bomb) < 2**20
    counted = _count_decompression(monkeypatch)
    r = upload(client, bomb, "pets.zip")
    assert r.status_code == 413
    err = error(r)
    assert err["code"] == "compression_ratio" and "dog/2.png" in err["message"]
    assert sum(counted) == 0  # decided from the central directory alone
    assert stored(tmp_path) == []

    # the same inside an .npz (numpy would inflate the whole entry into memory)
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros((2**23, 2), dtype=np.float32), y=np.zeros(2**23))
    r = upload(client, buf.getvalue(), "zeros.npz")
    assert r.status_code == 413 and error(r)["code"] == "compression_ratio"
    assert stored(tmp_path) == []


def test_zip_total_expanded_size_is_bounded(tmp_path):
    limits = {"zip_expanded_bytes": 2**20}
    client = make_app(tmp_path, extra={"dataset_limits": limits}).test_client()
    noise = np.random.default_rng(0).integers(0, 256, 700_000, dtype=np.uint8).tobytes()
    data = zip_bytes({"cat/1.png": noise, "dog/1.png": noise})
    r = upload(client, data, "pets.zip")
    assert r.status_code == 413 and error(r)["code"] == "too_large"
    assert "dog/1.png" in error(r)["message"]
    assert stored(tmp_path) == []


def test_image_pixel_and_decoded_size_limits(tmp_path):
    client = make_app(tmp_path, extra={"dataset_limits": {"image_pixels": 100}}).test_client()
    r = upload(client, image_zip((16, 16)), "pets.zip")
    assert r.status_code == 413 and error(r)["code"] == "image_too_large"
    assert "pets.zip entry" in error(r)["message"]

    other = tmp_path / "other"
    client = make_app(other, extra={"dataset_limits": {"decoded_bytes": 10_000}}).test_client()
    r = upload(client, image_zip(), "pets.zip", image_size="64,64")
    assert r.status_code == 413 and error(r)["code"] == "too_large"
    assert stored(tmp_path) == [] and stored(other) == []


def test_npy_header_cannot_promise_more_than_it_holds(client, tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 2)}
    )
    r = upload(client, buf.getvalue() + b"\0" * 64, "huge.npy")
    assert r.status_code == 422
    assert "huge.npy" in error(r)["message"] and "truncated" in error(r)["message"]
    good = io.BytesIO()
    np.save(good, np.column_stack([np.zeros((6, 2)), np.arange(6) % 2]).astype(np.float32))
    r = upload(client, good.getvalue(), "table.npy")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["shapes"]["x_shape"] == [2]


def test_oversize_upload(tmp_path):
    client = make_app(tmp_path, max_request_bytes=10_000).test_client()
    r = upload(client, b"a,b\n" + b"1,2\n" * 5000, "big.csv")
    assert r.status_code == 413
    assert error(r)["code"] in ("too_large", "request_entity_too_large")
    assert stored(tmp_path) == []


def test_per_kind_upload_limit(tmp_path):
    limits = {"upload_bytes": {".csv": 1000}}
    client = make_app(tmp_path, extra={"dataset_limits": limits}).test_client()
    r = upload(client, b"a,b\n" + b"1,2\n" * 500, "big.csv")
    assert r.status_code == 413 and error(r)["code"] == "too_large"
    assert stored(tmp_path) == []
    r = upload(client, npz_bytes(x=np.zeros((4, 2)), y=np.arange(4) % 2), "small.npz")
    assert r.status_code == 201  # other kinds keep their limits


@pytest.mark.parametrize(
    "ident",
    ["..", "%2e%2e", "%2E%2E%2Fx", "..%2f..%2fetc", "%00", "abc%00", "ABCDEF0123456789", "zz",
     "0" * 33, "a.csv", "%5c..%5cx", "0123456789abcdef%0a", "0123456789abcdef%00"],
)  # fmt: skip
def test_traversal_ids_never_touch_files(client, app, monkeypatch, ident):
    def refuse(*args, **kw):
        raise AssertionError(f"the filesystem was reached for {ident!r}")

    monkeypatch.setattr(files_module, "contained", refuse)
    monkeypatch.setattr(files_module.DataDir, "dataset_path", refuse)
    for method, suffix in (("get", ""), ("get", "/preview"), ("delete", "")):
        r = getattr(client, method)(f"/api/datasets/{ident}{suffix}", headers=AUTH)
        assert r.status_code in (400, 404), (method, suffix, r.status_code)
        error(r)
    from server.api.datasets import dataset_path

    raw = ident.replace("%2e", ".").replace("%2E", ".").replace("%2F", "/").replace("%00", "\0")
    with pytest.raises(ApiError) as exc:
        dataset_path(app.extensions["torchloom"], raw)
    assert exc.value.status == 404


def test_raw_traversal_paths(client, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    for path in ("/api/datasets/../secret.txt", "/api/datasets/..%2f..%2fsecret.txt"):
        r = client.get(path, headers=AUTH)
        assert r.status_code in (400, 404)
        assert "secret" not in json.dumps(r.get_json()).replace("secret.txt", "")


def _idx(magic: int, array: np.ndarray) -> bytes:
    import struct

    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def test_mnist_zip_and_gzip_bomb_inside(tmp_path):
    import gzip

    images = np.random.default_rng(0).integers(0, 256, (12, 4, 4))
    labels = np.arange(12) % 3
    mnist = zip_bytes(
        {
            "mnist/train-images-idx3-ubyte.gz": gzip.compress(_idx(2051, images)),
            "mnist/train-labels-idx1-ubyte.gz": gzip.compress(_idx(2049, labels)),
        }
    )
    limits = {"zip_expanded_bytes": 2**20}
    client = make_app(tmp_path, extra={"dataset_limits": limits}).test_client()
    r = upload(client, mnist, "digits.zip")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["format"] == "mnist"
    assert r.get_json()["shapes"]["x_shape"] == [1, 4, 4]

    bomb = zip_bytes(
        {
            "train-images-idx3-ubyte.gz": gzip.compress(b"\0" * (8 * 2**20)),
            "train-labels-idx1-ubyte.gz": gzip.compress(_idx(2049, labels)),
        }
    )
    assert len(bomb) < 100_000
    r = upload(client, bomb, "bomb.zip")
    assert r.status_code == 413 and error(r)["code"] == "too_large"
    assert "train-images-idx3-ubyte.gz" in error(r)["message"]
    assert stored(tmp_path) == [
        f"{client.get('/api/datasets', headers=AUTH).get_json()['uploaded'][0]['id']}.zip"
    ]
