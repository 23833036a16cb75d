"""Small requests must not blow up the web process (issue 11, item 2).

Measured before: a 1.2 MB CSV one-hot encoding 300 text columns → +2.35 GB in the web process,
an MNIST zip of gzipped zeros → +2.6 GB, a tiny image zip with image_size 4096,4096 → +2 GB,
a 60 MiB JSON body to start a run → +1.25 GB, a 250 MiB body to /predict parsed before the run
was looked up → 500. Memory is measured in a subprocess (the web process of a test app) whose
address space is limited to its size + 1 GiB, never in the test process."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from server import limited
from tests.server_app import AUTH, make_app

ROOT = Path(__file__).resolve().parent.parent


def upload(client, data: bytes, filename: str, **form):
    fields = {"file": (io.BytesIO(data), filename), **form}
    return client.post(
        "/api/datasets", data=fields, headers=AUTH, content_type="multipart/form-data"
    )


# --- the hostile files --------------------------------------------------------------------------


def onehot_csv(columns: int = 300, rows: int = 1000, categories: int = 999) -> bytes:
    """~1.2 MB whose text columns one-hot encode into ~300,000 features (1.2 GB as float32)."""
    header = ",".join(f"c{j}" for j in range(columns)) + ",label\n"
    body = "".join(
        ",".join(f"v{(i + j) % categories}" for j in range(columns)) + f",{i % 2}\n"
        for i in range(rows)
    )
    return (header + body).encode()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def mnist_zeros_zip(expanded: int = 300 * 2**20) -> bytes:
    """An MNIST zip whose images file is a gzip of a valid 60000×28×28 header followed by far
    more zeros than it declares (the zip stores a few hundred KB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    header = struct.pack(">IIII", 2051, 60000, 28, 28)
    chunk = bytes(2**20)
    parts = [z.compress(header)] + [z.compress(chunk) for _ in range(expanded // 2**20)]
    images = b"".join(parts) + z.flush()
    labels = gzip.compress(struct.pack(">II", 2049, 60000) + bytes(60000))
    return zip_of({"train-images-idx3-ubyte.gz": images, "train-labels-idx1-ubyte.gz": labels})


def png(size=(4, 4)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def tiny_image_zip(count: int = 12) -> bytes:
    return zip_of({f"set/{'ab'[i % 2]}/{i}.png": png() for i in range(count)})


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width × height (nothing to decode)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# --- measured in a web process with an address-space limit --------------------------------------

HARNESS = textwrap.dedent(
    """
    import io, json, resource, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from tests.server_app import AUTH, make_app
    from tests.test_server_request_memory import attacks

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024

    app = make_app(Path(sys.argv[2]))
    client = app.test_client()
    cases = attacks()
    # warm up: the limited reader's fork server, the routes, the database
    warm = client.post("/api/datasets", data={"file": (io.BytesIO(b"a,b\\n1,x\\n2,y\\n"),
                       "w.csv")}, headers=AUTH, content_type="multipart/form-data")
    assert warm.status_code == 201, warm.get_json()
    budget = 2**30
    resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") + budget, resource.RLIM_INFINITY))
    out = {}
    for name, send in cases.items():
        before = status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak (VmHWM) to the current RSS
        except OSError:
            pass
        try:
            r = send(client)
            body = r.get_json(silent=True) or {}
            answer = [r.status_code, (body.get("error") or {}).get("code"),
                      (body.get("error") or {}).get("message")]
        except MemoryError:
            answer = ["MemoryError", None, None]
        out[name] = answer + [max(status("VmHWM"), status("VmRSS")) - before]
    print(json.dumps(out))
    """
)


def attacks() -> dict:
    """name → a function sending the attack with a Flask test client (the harness runs them)."""
    project_body = b'{"overrides": {"epochs": 1}, "pad": "' + b"x" * (60 * 2**20) + b'"}'

    def form(data: bytes, name: str, **extra):
        return lambda c: c.post(
            "/api/datasets",
            data={"file": (io.BytesIO(data), name), **extra},
            headers=AUTH,
            content_type="multipart/form-data",
        )

    return {
        "csv_onehot": form(onehot_csv(), "wide.csv"),
        "mnist_zeros": form(mnist_zeros_zip(), "digits.zip"),
        "images_4096": form(tiny_image_zip(), "pets.zip", image_size="4096,4096"),
        "run_start_60mib": lambda c: c.post(
            "/api/projects/0000000000000000/runs",
            data=project_body,
            headers={**AUTH, "Content-Type": "application/json"},
        ),
        "predict_250mib": lambda c: c.post(
            "/api/runs/0000000000000000/predict",
            input_stream=io.BytesIO(b'{"input": [' + b"1," * 1000),
            headers={**AUTH, "Content-Type": "application/json"},
            environ_overrides={"CONTENT_LENGTH": str(250 * 2**20)},
        ),
    }


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    data_dir = tmp_path_factory.mktemp("web")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, str(ROOT), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    print("web-process peak RSS growth (MB):", {k: v[3] // 2**20 for k, v in results.items()})
    results["_stored"] = sorted(p.name for p in (data_dir / "datasets").iterdir())
    return results


GROWTH = 150 * 2**20  # what one refused request may add to the web process's peak RSS


def test_a_csv_that_one_hot_encodes_into_gigabytes_is_refused_before_encoding(measured):
    status, code, message, growth = measured["csv_onehot"]
    assert (status, code) == (413, "too_large"), message
    assert "wide.csv" in message and "features after encoding" in message
    assert growth < GROWTH


def test_an_mnist_gzip_that_unpacks_beyond_its_header_is_refused(measured):
    status, code, message, growth = measured["mnist_zeros"]
    assert (status, code) == (422, "bad_data"), message
    assert "47,040,016 bytes" in message  # what the header declares, not what the gzip holds
    assert growth < GROWTH


def test_images_resized_into_gigabytes_are_refused(measured):
    status, code, message, growth = measured["images_4096"]
    assert (status, code) == (413, "too_large"), message
    assert "12 images of 3×4096×4096" in message
    assert growth < GROWTH
    assert len(measured["_stored"]) == 1  # the warm-up's file only: refused uploads leave none


def test_a_60_mib_run_start_body_is_refused_unread(measured):
    status, code, message, growth = measured["run_start_60mib"]
    assert (status, code) == (413, "too_large"), message
    assert "65,536 bytes" in message
    assert growth < GROWTH


def test_a_250_mib_prediction_body_is_refused_unread(measured):
    status, _code, message, growth = measured["predict_250mib"]
    # an unknown run: 404 before the body is read; a known one: 413 (below)
    assert status in (404, 413), message
    assert growth < GROWTH


# --- in-process checks (fast) -------------------------------------------------------------------


def test_uploads_are_read_in_another_process(tmp_path, monkeypatch):
    """The web process never parses an upload: its reader is broken here, and still the
    upload is read (by the limited child)."""
    import server.engine.data.load as load

    def broken(*a, **k):
        raise AssertionError("an upload was parsed in the web process")

    monkeypatch.setattr(load, "load_data", broken)
    monkeypatch.setattr(load.files, "load", broken)
    client = make_app(tmp_path).test_client()
    r = upload(client, b"a,b,label\n1,2,x\n3,4,y\n5,6,x\n", "fine.csv")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["shapes"]["x_shape"] == [2]


def test_the_child_is_bounded_in_memory_and_time():
    assert limited.call(os.getpid, memory_bytes=2**28, seconds=60) != os.getpid()
    with pytest.raises(limited.LimitExceeded) as exc:
        limited.call(bytearray, 2**30, memory_bytes=2**28, seconds=60, what="reading x.csv")
    assert exc.value.kind == "memory" and "reading x.csv" in str(exc.value)
    started = time.monotonic()
    with pytest.raises(limited.LimitExceeded) as exc:
        limited.call(time.sleep, 60, memory_bytes=2**28, seconds=1)
    assert exc.value.kind == "time" and time.monotonic() - started < 30


def test_a_read_over_its_time_limit_is_refused_and_nothing_is_kept(tmp_path):
    limits = {"read_seconds": 0.001}
    client = make_app(tmp_path, extra={"dataset_limits": limits}).test_client()
    r = upload(client, b"a,b,label\n1,2,x\n3,4,y\n", "slow.csv")
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_slow"
    assert "slow.csv" in r.get_json()["error"]["message"]
    assert list((tmp_path / "datasets").iterdir()) == []


def test_a_decompression_bomb_png_reports_its_real_size(tmp_path):
    client = make_app(tmp_path).test_client()
    data = zip_of({"p/a/1.png": png_header_only(40000, 30000), "p/b/1.png": png()})
    r = upload(client, data, "bomb.zip")
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "image_too_large"
    assert "40000×30000 pixels" in r.get_json()["error"]["message"]


@pytest.mark.parametrize(
    "method,path,kind_limit",
    [
        ("post", "/api/projects/{pid}/runs", 64 * 2**10),
        ("post", "/api/runs/{run}/stop", 64 * 2**10),
        ("post", "/api/runs/{run}/predict", 2 * 2**20),
        ("post", "/api/validate", 5 * 2**20),
        ("put", "/api/projects/{pid}", 5 * 2**20),
    ],
)
def test_each_route_has_a_body_limit_checked_before_reading(tmp_path, method, path, kind_limit):
    client = make_app(tmp_path).test_client()
    pid = client.post("/api/projects", json={}, headers=AUTH).get_json()["id"]
    url = path.format(pid=pid, run="0123456789abcdef")
    send = getattr(client, method)
    # declared over the limit: refused on the header, the (short) body never read
    r = send(
        url,
        input_stream=io.BytesIO(b"{}"),
        headers={**AUTH, "Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": str(kind_limit + 1)},
    )
    assert r.status_code == 413, r.get_json()
    assert f"{kind_limit:,} bytes" in r.get_json()["error"]["message"]
    # no Content-Length (chunked): cut off at the limit while it is read
    r = send(
        url,
        input_stream=io.BytesIO(b'{"x": "' + b"y" * (kind_limit + 10) + b'"}'),
        headers={**AUTH, "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 413, r.get_json()
    assert f"{kind_limit:,} bytes" in r.get_json()["error"]["message"]
