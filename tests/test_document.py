"""The graph document: parsing, the JSON Schema, format upgrades, symbolic batch shapes."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

import graph_compiler.document as document_module
from graph_compiler import FORMAT, GraphDocument, analyze, json_schema, parse_document
from graph_compiler.shapes import B, Batch, TensorInfo, format_shape, shape_json, symbolic
from tests.helpers import chain, cnn, find_node, loss_on, mlp

# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["dict", "str", "bytes", "document"])
def test_parse_every_form(form):
    raw = mlp()
    data = {
        "dict": raw,
        "str": json.dumps(raw),
        "bytes": json.dumps(raw).encode(),
        "document": parse_document(raw)[0],
    }[form]
    doc, problems = parse_document(data)
    assert problems == []
    assert isinstance(doc, GraphDocument)
    assert doc.format == FORMAT
    assert [n.id for n in doc.nodes] == [n["id"] for n in raw["nodes"]]
    assert doc.edges[0].source == "data" and doc.edges[0].source_port == "x"
    assert doc.edges[0].target == "fc1" and doc.edges[0].target_port == "in"


def test_parse_does_not_modify_its_input():
    raw = mlp()
    del raw["format"]
    before = json.dumps(raw, sort_keys=True)
    doc, problems = parse_document(raw)
    assert doc is not None and [p.code for p in problems] == ["format_missing"]
    assert json.dumps(raw, sort_keys=True) == before


def test_defaults_fill_in():
    doc, problems = parse_document(
        {
            "format": FORMAT,
            "nodes": [{"id": "a", "type": "ReLU"}],
            "edges": [{"source": "a", "target": "a"}],
        }
    )
    assert problems == []
    assert doc.name == "Untitled"
    n = doc.nodes[0]
    assert n.params == {} and n.position == (0.0, 0.0) and n.trainable is True and n.label is None
    assert n.display == "a"
    e = doc.edges[0]
    assert (e.source_port, e.target_port) == ("out", "in")
    assert doc.blocks == {} and doc.ui == {}


@pytest.mark.parametrize(
    "position", [[10, 20.5], (10, 20.5), {"x": 10, "y": 20.5}], ids=["list", "tuple", "xy"]
)
def test_position_forms(position):
    raw = mlp()
    raw["nodes"][1]["position"] = position
    doc, problems = parse_document(raw)
    assert problems == []
    assert doc.nodes[1].position == (10.0, 20.5)
    # always written back as a list
    assert doc.to_json_dict()["nodes"][1]["position"] == [10.0, 20.5]


@pytest.mark.parametrize(
    "position",
    [{"x": 1}, {"x": 1, "y": 2, "z": 3}, [1], [1, 2, 3], [math.nan, 0], "1,2"],
    ids=["x-only", "xyz", "short", "long", "nan", "string"],
)
def test_bad_positions_are_reported_on_the_node(position):
    raw = mlp()
    raw["nodes"][1]["position"] = position
    doc, problems = parse_document(raw)
    assert doc is None
    assert problems and all(p.code == "invalid_document" for p in problems)
    assert problems[0].node == "fc1"
    assert problems[0].field.startswith("position")


def test_unknown_top_level_field_is_rejected_clearly():
    doc, problems = parse_document({**mlp(), "layers": [], "version": 2})
    assert doc is None
    fields = sorted(p.field for p in problems)
    assert fields == ["layers", "version"]
    for p in problems:
        assert p.code == "invalid_document"
        assert p.field in p.message and "not permitted" in p.message


def test_unknown_node_and_edge_fields_are_rejected():
    raw = mlp()
    raw["nodes"][1]["colour"] = "red"
    raw["edges"][2]["weight"] = 1
    doc, problems = parse_document(raw)
    assert doc is None
    by_field = {p.field: p for p in problems}
    assert by_field["colour"].node == "fc1"
    assert by_field["colour"].message.startswith("fc1: colour")
    assert "edges[2].weight" in by_field


def test_node_without_id_is_named_by_index():
    raw = mlp()
    del raw["nodes"][2]["id"]
    doc, problems = parse_document(raw)
    assert doc is None
    assert problems[0].node == "nodes[2]" and problems[0].field == "id"


@pytest.mark.parametrize("node_id", ["", "x" * 201], ids=["empty", "too-long"])
def test_node_id_length(node_id):
    raw = mlp()
    raw["nodes"][1]["id"] = node_id
    assert parse_document(raw)[0] is None


@pytest.mark.parametrize(
    "data,code",
    [
        ("", "invalid_json"),
        ("{", "invalid_json"),
        (b"\x80\x81", "invalid_json"),
        ("null", "invalid_document"),
        ("[]", "invalid_document"),
        (42, "invalid_document"),
        (None, "invalid_document"),
    ],
)
def test_not_a_document(data, code):
    doc, problems = parse_document(data)
    assert doc is None
    assert [p.code for p in problems] == [code]


def test_documents_are_frozen():
    doc, _ = parse_document(mlp())
    with pytest.raises(ValidationError):
        doc.name = "other"
    with pytest.raises(ValidationError):
        doc.nodes[0].type = "Linear"


def test_round_trip():
    doc, _ = parse_document(cnn())
    again, problems = parse_document(json.dumps(doc.to_json_dict()))
    assert problems == []
    assert again == doc


def test_label_is_the_display_name():
    raw = mlp()
    find_node(raw, "fc1")["label"] = "hidden"
    doc, _ = parse_document(raw)
    assert doc.nodes[1].display == "hidden"


# --- the JSON Schema ---------------------------------------------------------------------------


def _check(instance, schema: dict, root: dict, path: str = "$") -> list[str]:
    """A small JSON Schema checker for the keywords pydantic emits (enough for these tests)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return _check(instance, root["$defs"][name], root, path)
    if "anyOf" in schema:
        options = [_check(instance, s, root, path) for s in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{path}: matches no anyOf option"]
    problems: list[str] = []
    kind = schema.get("type")
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "number": (int, float),
        "integer": int,
        "boolean": bool,
        "null": type(None),
    }
    if kind and not isinstance(instance, types[kind]):
        return [f"{path}: expected {kind}"]
    if kind == "number" and isinstance(instance, bool):
        return [f"{path}: expected number"]
    if kind == "object":
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in instance:
                problems.append(f"{path}: missing {req}")
        for key, value in instance.items():
            if key in props:
                problems += _check(value, props[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}: unexpected {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += _check(value, schema["additionalProperties"], root, f"{path}.{key}")
    if kind == "array":
        if len(instance) < schema.get("minItems", 0):
            problems.append(f"{path}: too short")
        if len(instance) > schema.get("maxItems", len(instance)):
            problems.append(f"{path}: too long")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(instance):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if sub:
                problems += _check(item, sub, root, f"{path}[{i}]")
    if kind == "string":
        if len(instance) < schema.get("minLength", 0):
            problems.append(f"{path}: too short")
        if len(instance) > schema.get("maxLength", len(instance)):
            problems.append(f"{path}: too long")
    return problems


def test_json_schema_shape():
    schema = json_schema()
    json.dumps(schema)
    assert schema["type"] == "object"
    assert {"nodes", "edges", "blocks", "format", "name"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert FORMAT in schema["$id"] and FORMAT in schema["title"]
    defs = schema["$defs"]
    assert {"Node", "Edge", "BlockDef"} <= set(defs)
    assert set(defs["Node"]["required"]) == {"id", "type"}
    assert set(defs["Edge"]["required"]) == {"source", "target"}
    for d in defs.values():
        assert d["additionalProperties"] is False


def test_json_schema_accepts_valid_documents():
    schema = json_schema()
    for raw in (mlp(), cnn(), chain("digits", [("fc", "Linear", {"out_features": 10})])):
        doc, _ = parse_document(raw)
        assert _check(doc.to_json_dict(), schema, schema) == []
        assert _check(raw, schema, schema) == []


def test_json_schema_rejects_what_the_parser_rejects():
    schema = json_schema()
    assert _check({**mlp(), "layers": []}, schema, schema)
    bad_node = mlp()
    del bad_node["nodes"][0]["type"]
    assert _check(bad_node, schema, schema)
    bad_edge = mlp()
    bad_edge["edges"][0]["weight"] = 2
    assert _check(bad_edge, schema, schema)


# --- upgrades ----------------------------------------------------------------------------------


def _v0_to_v1(raw: dict) -> dict:
    """A made-up format 0: `links` with `from`/`to` ("node.port") instead of `edges`."""
    raw = dict(raw)
    edges = []
    for link in raw.pop("links", []):
        src, _, sport = link["from"].partition(".")
        dst, _, dport = link["to"].partition(".")
        edges.append(
            {
                "source": src,
                "source_port": sport or "out",
                "target": dst,
                "target_port": dport or "in",
            }
        )
    raw["edges"] = edges
    return raw


def _as_v0(raw: dict) -> dict:
    links = [
        {
            "from": f"{e['source']}.{e['source_port']}",
            "to": f"{e['target']}.{e['target_port']}",
        }
        for e in raw["edges"]
    ]
    out = {k: v for k, v in raw.items() if k != "edges"}
    return {**out, "format": "torchloom.graph/0", "links": links}


def test_upgrade_from_v0(monkeypatch):
    monkeypatch.setattr(document_module, "FORMAT_VERSION", 1)
    monkeypatch.setattr(document_module, "UPGRADERS", {0: _v0_to_v1})
    old = _as_v0(mlp())
    doc, problems = parse_document(old)
    assert problems == []
    assert doc.format == "torchloom.graph/1"
    assert doc == parse_document(mlp())[0]
    a = analyze(json.dumps(old))
    assert a.ok, [str(e) for e in a.errors]
    assert str(a.result("fc2").outputs["out"]) == "(B, 10)"


def test_upgrade_chain_runs_every_step_in_order(monkeypatch):
    calls = []

    def step(n):
        def run(raw):
            calls.append(n)
            assert raw["format"] == f"torchloom.graph/{n}"
            return {**raw, "description": raw.get("description", "") + f"<{n}>"}

        return run

    monkeypatch.setattr(document_module, "FORMAT_VERSION", 3)
    monkeypatch.setattr(document_module, "UPGRADERS", {1: step(1), 2: step(2)})
    doc, problems = parse_document(mlp())
    assert problems == []
    assert calls == [1, 2]
    assert doc.format == "torchloom.graph/3"
    assert doc.description == "<1><2>"
    # the current version is not upgraded; a newer one is refused
    assert parse_document({**mlp(), "format": "torchloom.graph/3"})[0].description == ""
    doc, problems = parse_document({**mlp(), "format": "torchloom.graph/4"})
    assert doc is None and [p.code for p in problems] == ["format_too_new"]


def test_upgrade_with_a_missing_step(monkeypatch):
    monkeypatch.setattr(document_module, "FORMAT_VERSION", 3)
    monkeypatch.setattr(document_module, "UPGRADERS", {1: lambda raw: raw})
    doc, problems = parse_document(mlp())
    assert doc is None
    assert [p.code for p in problems] == ["format_unsupported"]
    assert "torchloom.graph/2" in problems[0].message


@pytest.mark.parametrize(
    "fmt", ["torchloom.graph/", "torchloom.graph/x", "torchloom.graph/-1", 1, None]
)
def test_malformed_format_strings(fmt):
    doc, problems = parse_document({**mlp(), "format": fmt})
    assert doc is None
    assert [p.code for p in problems] == ["format_unknown"]


# --- symbolic batch shapes ---------------------------------------------------------------------


def test_flatten_over_the_batch_gives_a_multiple_of_b():
    doc = loss_on(chain("digits", [("flat0", "Flatten", {"start_dim": 0})]), "flat0")
    a = analyze(doc)
    info = a.result("flat0").outputs["out"]
    # a parameter-free probe graph: the only expected problem is that nothing would train
    assert {e.code for e in a.errors} == {"nothing_to_train"}, [str(e) for e in a.errors]
    assert info.shape == (Batch(64),)
    assert str(info) == "(64B,)"
    assert a.to_json()["nodes"]["flat0"]["outputs"]["out"] == {
        "shape": ["64B"],
        "dtype": "float32",
        "text": "(64B,)",
    }
    assert info.concrete(5) == (320,)


def test_reshape_with_batch_dims_moved():
    doc = chain(
        "digits_images",
        [("perm", "Permute", {"dims": [1, 0, 2, 3]}), ("flat", "Flatten", {"start_dim": 1})],
    )
    a = analyze(loss_on(doc, "flat"))
    assert {e.code for e in a.errors} == {"nothing_to_train"}, [str(e) for e in a.errors]
    assert str(a.result("perm").outputs["out"]) == "(1, B, 8, 8)"
    assert str(a.result("flat").outputs["out"]) == "(1, 64B)"
    assert a.to_json()["nodes"]["flat"]["outputs"]["out"]["shape"] == [1, "64B"]


def test_shape_json_uses_b():
    a = analyze(cnn())
    out = a.to_json()
    assert out["nodes"]["data"]["outputs"]["x"]["shape"] == ["B", 1, 8, 8]
    assert out["nodes"]["data"]["outputs"]["y"] == {
        "shape": ["B"],
        "dtype": "int64",
        "text": "(B,)",
    }
    assert out["nodes"]["fc"]["outputs"]["out"]["shape"] == ["B", 10]
    # one entry per document edge, in order
    assert len(out["edges"]) == len(cnn()["edges"])
    assert out["edges"][0]["text"] == "(B, 1, 8, 8)"
    json.dumps(out)


def test_edge_shapes_are_null_where_unknown():
    doc = mlp()
    find_node(doc, "fc1")["params"]["out_features"] = 0
    out = analyze(doc).to_json()
    assert out["ok"] is False
    assert out["edges"][0]["text"] == "(B, 64)"  # data.x → fc1
    assert out["edges"][1] is None  # fc1 → relu


def test_symbolic_helpers():
    assert symbolic((2, 5), (3, 5)) == (B, 5)
    assert symbolic((128,), (192,)) == (Batch(64),)
    assert symbolic((1, 5), (1, 5)) == (1, 5)
    assert symbolic((1,), (2,)) is None  # B - 1: not a multiple of B
    assert symbolic((2,), (3, 1)) is None
    assert format_shape((B,)) == "(B,)"
    assert format_shape((B, Batch(3), 4)) == "(B, 3B, 4)"
    assert shape_json((B, Batch(3), 4)) == ["B", "3B", 4]
    assert TensorInfo((B, 4)).batch_leading and not TensorInfo((4, B)).batch_leading
    assert TensorInfo((B,), "int64").is_float is False


@pytest.mark.parametrize(
    "layer",
    [
        ("cut", "Slice", {"dim": 0, "start": 1}),
        ("cut", "Slice", {"dim": 0, "end": 3}),
        ("cut", "Chunk", {"dim": 0}),
    ],
    ids=["slice-batch-start", "slice-batch-end", "chunk-batch"],
)
def test_batch_dependent_sizes_are_not_reported_as_fixed(layer):
    port = "out0" if layer[1] == "Chunk" else "out"
    a = analyze(loss_on(chain("digits", [layer]), "cut", port))
    # Either the analysis refuses the graph, or the shape it reports holds for other batches:
    # x[1:] has B - 1 rows, x[:3] has min(B, 3), chunk 0 of 2 has ceil(B / 2).
    real = {"start": 64 - 1, "end": 3, "chunks": 32}
    key = "chunks" if layer[1] == "Chunk" else next(k for k in ("start", "end") if k in layer[2])
    info = a.result("cut").outputs[port] if a.result("cut") else None
    assert not a.ok or info.concrete(64)[0] == real[key]
