"""The catalog says which node types own parameters, so Freeze is offered only there."""

from graph_compiler.catalog import catalog_json


def test_has_params_marks_only_types_with_parameters():
    nodes = {n["type"]: n for n in catalog_json()["nodes"]}
    for t in ("ReLU", "Flatten", "MaxPool2d", "Dropout", "Dataset", "CrossEntropyLoss"):
        assert nodes[t]["has_params"] is False, t
    for t in ("Linear", "Conv2d", "BatchNorm2d", "Embedding", "Block", "CustomLayer", "Parameter"):
        assert nodes[t]["has_params"] is True, t
