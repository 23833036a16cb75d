"""The server's secure defaults: token on every route (constant-time), the start URL's cookie,
Host and Origin checks, security headers, JSON errors without tracebacks, request limits, and
validation errors reported as data (fuzzed: /api/validate never answers 500)."""

from __future__ import annotations

import copy
import hmac
import json
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.config import ServerConfig
from server.security import COOKIE
from tests.helpers import add, chain, edge, mlp, node, set_params
from tests.server_app import AUTH, TOKEN, make_app


def error(resp) -> dict:
    body = resp.get_json()
    assert body is not None, resp.get_data(as_text=True)[:200]
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def validate(client, doc, **kw):
    r = client.post("/api/validate", json={"document": doc}, headers=AUTH, **kw)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.get_json()


def error_codes(analysis: dict) -> set[tuple[str, str | None, str | None]]:
    return {(e["code"], e.get("node"), e.get("field")) for e in analysis["errors"]}


# --- the token ----------------------------------------------------------------------------------


def _routes(app):
    """(method, url) for every rule, its arguments filled with plausible values."""
    sample = {"IntegerConverter": "1", "PathConverter": "x/y.js"}
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for arg, conv in rule._converters.items():
            start = url.index("<")
            end = url.index(">", start)
            assert url[start + 1 : end].endswith(arg)
            value = sample.get(type(conv).__name__, "0123456789abcdef")
            url = url[:start] + value + url[end + 1 :]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url


def test_every_route_needs_the_token(app):
    client = app.test_client()
    routes = sorted(set(_routes(app)))
    assert ("GET", "/api/projects") in routes
    assert ("POST", "/api/datasets") in routes
    assert ("DELETE", "/api/datasets/0123456789abcdef") in routes
    assert ("GET", "/") in routes
    for method, url in routes:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"X-Torchloom-Token": "x"}):
            r = client.open(url, method=method, headers=headers)
            assert r.status_code == 401, (method, url, headers, r.status_code)
            assert error(r)["code"] == "unauthorized"
    # unknown URLs too (no route enumeration without the token)
    assert client.get("/api/nope").status_code == 401
    assert client.get("/api/projects", headers=AUTH).status_code == 200
    assert client.get("/api/projects", headers={"X-Torchloom-Token": TOKEN}).status_code == 200


def test_token_compared_in_constant_time(client, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert client.get("/api/projects", headers=AUTH).status_code == 200
    assert client.get("/api/projects", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert (TOKEN.encode(), TOKEN.encode()) in calls
    assert (b"nope", TOKEN.encode()) in calls


def test_start_url_sets_cookie_and_drops_the_token(client):
    r = client.get(f"/api/projects?token={TOKEN}&x=1")
    assert r.status_code == 302
    assert r.headers["Location"] == "/api/projects?x=1"
    assert TOKEN not in r.headers["Location"]
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN}")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # the cookie now authenticates
    assert client.get("/api/projects").status_code == 200
    r = client.get("/?token=" + TOKEN)
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_bad_start_url_token(client):
    r = client.get("/?token=wrong")
    assert r.status_code == 401 and "Set-Cookie" not in r.headers
    assert client.get("/api/projects").status_code == 401


def test_cookie_auth(client):
    client.set_cookie(COOKIE, TOKEN)
    assert client.get("/api/catalog").status_code == 200
    client.set_cookie(COOKIE, "wrong")
    assert client.get("/api/catalog").status_code == 401


def test_socketio_connect_needs_the_token(tmp_path):
    from server.extensions import socketio

    make_app(tmp_path / "first")
    app = make_app(tmp_path / "second")  # as in any process that builds more than one app
    assert socketio.test_client(app, auth={"token": TOKEN}).is_connected()
    assert not socketio.test_client(app, auth={"token": "wrong"}).is_connected()
    assert not socketio.test_client(app).is_connected()


# --- Host and Origin ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "localhost.evil:5000", ""])
def test_foreign_host_refused(client, host):
    r = client.get("/api/projects", headers={**AUTH, "Host": host})
    assert r.status_code == 400
    assert error(r)["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1:5000", "[::1]:5000"])
def test_loopback_hosts_allowed(client, host):
    assert client.get("/api/projects", headers={**AUTH, "Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:6666"])
def test_foreign_origin_refused_on_post(client, origin):
    r = client.post("/api/validate", json={"document": mlp()}, headers={**AUTH, "Origin": origin})
    assert r.status_code == 403
    assert error(r)["code"] == "origin_not_allowed"
    r = client.delete("/api/datasets/0123456789abcdef", headers={**AUTH, "Origin": origin})
    assert r.status_code == 403


def test_same_origin_post_ok(client):
    for origin in ("http://localhost:5000", "http://127.0.0.1:5000"):
        r = client.post(
            "/api/validate", json={"document": mlp()}, headers={**AUTH, "Origin": origin}
        )
        assert r.status_code == 200, origin
        assert r.get_json()["ok"] is True


# --- headers, config ----------------------------------------------------------------------------


def test_security_headers(client):
    r = client.get("/api/projects", headers=AUTH)
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    html = client.get("/", headers=AUTH)
    assert html.status_code == 200 and html.mimetype == "text/html"
    csp = html.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert html.headers["X-Frame-Options"] == "DENY"
    denied = client.get("/api/projects")  # errors carry them too
    assert denied.headers["X-Frame-Options"] == "DENY"


def test_no_token_only_on_loopback(tmp_path):
    with pytest.raises(ValueError):
        ServerConfig(host="0.0.0.0", no_token=True).resolved()
    with pytest.raises(ValueError):
        ServerConfig(host="192.168.1.10", no_token=True).resolved()
    cfg = ServerConfig(data_dir=tmp_path, no_token=True, start_runner=False, seed_examples=False)
    assert cfg.resolved().token == ""
    client = create_app(cfg).test_client()
    assert client.get("/api/projects").status_code == 200


def test_generated_token_is_long_and_random():
    a = ServerConfig().resolved().token
    b = ServerConfig().resolved().token
    assert a != b
    assert len(a) >= 32  # token_urlsafe(24): 192 bits
    assert ServerConfig(token="given").resolved().token == "given"


# --- errors -------------------------------------------------------------------------------------


def test_unexpected_errors_are_json_without_traceback(tmp_path):
    app = make_app(tmp_path)

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret detail in /home/user/file.py")

    r = app.test_client().get("/api/boom", headers=AUTH)
    assert r.status_code == 500
    err = error(r)
    assert err["code"] == "internal_error"
    text = r.get_data(as_text=True)
    assert "Traceback" not in text and "secret detail" not in text and "file.py" not in text


def test_http_errors_are_json(client):
    r = client.get("/api/does-not-exist", headers=AUTH)
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    r = client.delete("/api/catalog", headers=AUTH)
    assert r.status_code == 405 and error(r)["code"] == "method_not_allowed"
    r = client.post(
        "/api/validate", data="{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and error(r)["code"] == "invalid_json"
    r = client.post("/api/validate", json=[1, 2], headers=AUTH)
    assert r.status_code == 400 and error(r)["code"] == "invalid_body"
    r = client.post("/api/validate", json={}, headers=AUTH)
    assert r.status_code == 400 and error(r)["code"] == "missing_document"


def test_huge_body_refused(client):
    body = b'{"document": {"name": "' + b"x" * (50 * 2**20) + b'"}}'
    t = time.perf_counter()
    r = client.post(
        "/api/validate", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert error(r)["code"] in ("document_too_large", "too_large", "request_entity_too_large")
    assert time.perf_counter() - t < 5


def test_too_many_nodes_refused_quickly(client):
    doc = mlp()
    doc["nodes"] = [{"id": f"n{i}", "type": "ReLU"} for i in range(100_000)]
    t = time.perf_counter()
    r = client.post("/api/validate", json={"document": doc}, headers=AUTH)
    assert r.status_code == 413
    assert error(r)["code"] == "too_many_nodes"
    assert time.perf_counter() - t < 5


# --- validation errors are data -----------------------------------------------------------------


def test_validation_errors_are_reported_not_raised(client):
    cases = [
        (set_params(mlp(), "fc1", out_features=-3), ("param_range", "fc1", "out_features")),
        (set_params(mlp(), "fc1", out_features=0), ("param_range", "fc1", "out_features")),
        (
            set_params(mlp(), "fc1", out_features=math.nan),
            ("param_not_finite", "fc1", "out_features"),
        ),
        (set_params(mlp(), "opt", lr=math.nan), ("param_not_finite", "opt", "lr")),
        (set_params(mlp(), "opt", lr=math.inf), ("param_not_finite", "opt", "lr")),
        (add(mlp(), node("zz", "NoSuchLayer")), ("unknown_type", "zz", "type")),
    ]
    for doc, expected in cases:
        analysis = validate(client, doc)
        assert analysis["ok"] is False
        assert expected in error_codes(analysis), (expected, analysis["errors"])
    cyclic = chain(
        "digits",
        [
            ("add", "Add", {}),
            ("fc1", "Linear", {"out_features": 64}),
            ("act", "ReLU", {}),
            ("fc2", "Linear", {"out_features": 10}),
        ],
    )
    add(cyclic, edge("act", "add"))
    analysis = validate(client, cyclic)
    assert "cycle" in {c for c, _, _ in error_codes(analysis)}


def test_codegen_on_invalid_graph(client):
    r = client.post(
        "/api/codegen",
        json={"document": set_params(mlp(), "fc1", out_features=-3)},
        headers=AUTH,
    )
    assert r.status_code == 422
    err = error(r)
    assert err["code"] == "invalid_graph"
    assert any(d["code"] == "param_range" and d["node"] == "fc1" for d in err["details"])
    ok = client.post("/api/codegen", json={"document": mlp()}, headers=AUTH)
    assert ok.status_code == 200 and "class" in ok.get_json()["source"]


def _custom_layer_doc() -> dict:
    doc = chain(
        "digits",
        [
            ("cl", "CustomLayer", {"code": "return x * 2", "parameters": []}),
            ("fc", "Linear", {"out_features": 10}),
        ],
    )
    doc["edges"][0]["target_port"] = "x"
    return doc


def test_custom_code_policy(client, tmp_path):
    assert client.get("/api/catalog", headers=AUTH).get_json()["custom_code_allowed"] is False
    analysis = validate(client, _custom_layer_doc())
    assert ("custom_code_disabled", "cl", "code") in error_codes(analysis)
    r = client.post("/api/codegen", json={"document": _custom_layer_doc()}, headers=AUTH)
    assert r.status_code == 422

    allowed = make_app(tmp_path / "allowed", allow_custom_code=True).test_client()
    assert allowed.get("/api/catalog", headers=AUTH).get_json()["custom_code_allowed"] is True
    analysis = validate(allowed, _custom_layer_doc())
    assert analysis["ok"], analysis["errors"]


# --- fuzz ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)

BASE = mlp()


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutated_documents(draw):
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        last = path[-1]
        if action == "replace":
            parent[last] = draw(json_values)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        else:
            parent[draw(st.text(max_size=8))] = copy.deepcopy(parent[last])
    return doc


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("fuzz")).test_client()


def _post_raw(client, payload) -> int:
    text = json.dumps(payload)  # NaN / Infinity as JSON5-ish literals, which Python accepts
    r = client.post(
        "/api/validate", data=text, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code < 500, (r.status_code, text[:500], r.get_data(as_text=True)[:500])
    if r.status_code == 200:
        assert isinstance(r.get_json()["errors"], list)
    else:
        error(r)
    return r.status_code


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=json_values, wrap=st.booleans())
def test_fuzz_validate_random_json(fuzz_client, value, wrap):
    _post_raw(fuzz_client, {"document": value} if wrap else value)


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=mutated_documents())
def test_fuzz_validate_mutated_documents(fuzz_client, doc):
    assert _post_raw(fuzz_client, {"document": doc}) == 200
