"""The Open Inference Protocol (KServe V2 REST) in-process: metadata, readiness, infer with JSON
and binary tensors, the tensor <-> record mapping, and its refusals (docs/inference.md)."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from service.api.keys import OPENAPI
from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records

HEADER = "Inference-Header-Content-Length"


async def trained_line(client: Any, label: str = "salary", plugin: str = "slr") -> None:
    await add_source(client, "people", line_records(range(8)))
    await add_model(client, plugin, label, LINE_MODEL)
    await expect(await client.post(f"/model/{label}/train", json=["people"]))


def tensor(name: str, datatype: str, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


async def test_server_metadata_liveness_and_readiness(client: Any) -> None:
    meta = await expect(await client.get("/v2"))
    assert meta["name"] == "dffml-service-http"
    assert "binary_tensor_data" in meta["extensions"]
    assert await expect(await client.get("/v2/health/live")) == {"live": True}
    assert await expect(await client.get("/v2/health/ready")) == {"ready": True}


async def test_model_metadata_comes_from_the_declared_features(client: Any) -> None:
    await add_model(
        client,
        "scikitlr",
        "pairs",
        {"features": ["Years:int:1", "Pos:float:2"], "predict": "Salary:float:1"},
    )
    meta = await expect(await client.get("/v2/models/pairs"))
    assert meta["name"] == "pairs"
    assert meta["inputs"] == [
        {"name": "Years", "datatype": "INT64", "shape": [-1]},
        {"name": "Pos", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert meta["outputs"] == [
        {"name": "Salary", "datatype": "FP64", "shape": [-1]},
        {"name": "confidence", "datatype": "FP64", "shape": [-1]},
    ]
    # Without a location the model keeps no versions (tests/test_inference_versions.py).
    assert meta["versions"] == []
    assert (await expect(await client.get("/v2/models/pairs/versions/1"), 404))["error"]
    # Not trained yet: not ready, and infer says why.
    assert (await expect(await client.get("/v2/models/pairs/ready"), 503))["error"]
    body = {"inputs": [tensor("Years", "INT64", [1], [1]), tensor("Pos", "FP64", [1, 2], [1, 2])]}
    refused = await expect(await client.post("/v2/models/pairs/infer", json=body), 400)
    assert refused == {"error": "Model not trained"}


async def test_infer_with_one_tensor_per_feature_echoes_the_id(client: Any) -> None:
    await trained_line(client)
    assert await expect(await client.get("/v2/models/salary/ready")) == {
        "name": "salary",
        "ready": True,
    }
    body = {"id": "req-7", "inputs": [tensor("Years", "INT64", [3, 1], [[1], [4], [10]])]}
    answer = await expect(await client.post("/v2/models/salary/infer", json=body))
    assert answer["id"] == "req-7"
    assert answer["model_name"] == "salary"
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["Salary"]["datatype"] == "FP64"
    assert outputs["Salary"]["shape"] == [3]
    assert outputs["Salary"]["data"] == pytest.approx([20, 50, 110])
    assert outputs["confidence"]["shape"] == [3]
    # The same rows through DFFML's predict give the same values.
    dffml = await expect(
        await client.post(
            "/model/salary/predict/0",
            json={str(i): {"features": {"Years": y}} for i, y in enumerate([1, 4, 10])},
        )
    )
    for i, value in enumerate(outputs["Salary"]["data"]):
        assert dffml["records"][str(i)]["prediction"]["Salary"]["value"] == value


async def test_one_two_dimensional_tensor_whose_columns_are_the_features(client: Any) -> None:
    await add_source(
        client,
        "grid",
        {
            str(i): {"features": {"A": i, "B": [i, 2 * i], "Y": 3 * i + 2 * i + 4 * i + 1}}
            for i in range(10)
        },
    )
    config = {"features": ["A:float:1", "B:float:2"], "predict": "Y:float:1"}
    await add_model(client, "scikitlr", "grid", config)
    await expect(await client.post("/model/grid/train", json=["grid"]))
    rows = [[1, 1, 2], [2, 2, 4]]
    by_columns = {"inputs": [tensor("input", "FP32", [2, 3], rows)]}
    by_feature = {
        "inputs": [
            tensor("A", "FP32", [2], [1, 2]),
            tensor("B", "FP32", [2, 2], [[1, 2], [2, 4]]),
        ]
    }
    one = await expect(await client.post("/v2/models/grid/infer", json=by_columns))
    two = await expect(await client.post("/v2/models/grid/infer", json=by_feature))
    assert one["outputs"] == two["outputs"]
    assert one["outputs"][0]["data"] == pytest.approx([10, 19], abs=1e-6)
    wrong = {"inputs": [tensor("input", "FP32", [2, 2], [[1, 1], [2, 2]])]}
    refused = await expect(await client.post("/v2/models/grid/infer", json=wrong), 400)
    assert "shape [N, 3]" in refused["error"]


def bytes_tensor(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


async def test_binary_tensor_data_in_and_out(client: Any) -> None:
    await trained_line(client)
    years = np.array([[2], [7]], dtype="<i8")
    header = {
        "id": "bin",
        "inputs": [
            {
                "name": "Years",
                "datatype": "INT64",
                "shape": [2, 1],
                "parameters": {"binary_data_size": years.nbytes},
            }
        ],
        "outputs": [{"name": "Salary", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    response = await client.post(
        "/v2/models/salary/infer",
        data=head + years.tobytes(),
        headers={HEADER: str(len(head)), "Content-Type": "application/octet-stream"},
    )
    assert response.status == 200
    raw = await response.read()
    length = int(response.headers[HEADER])
    answer = json.loads(raw[:length])
    assert answer["id"] == "bin"
    [output] = answer["outputs"]
    assert output["name"] == "Salary"
    assert "data" not in output
    values = np.frombuffer(raw[length:], dtype="<f8")
    assert output["parameters"]["binary_data_size"] == values.nbytes
    assert values.tolist() == pytest.approx([30, 80])


async def test_text_features_and_class_labels_are_bytes_tensors(client: Any) -> None:
    await add_source(
        client,
        "flowers",
        {
            str(i): {"features": {"Size": i % 2 * 10 + i % 3, "Kind": "big" if i % 2 else "small"}}
            for i in range(12)
        },
    )
    config = {"features": ["Size:float:1"], "predict": "Kind:str:1"}
    await add_model(client, "scikitknn", "flowers", {**config, "n_neighbors": 1})
    await expect(await client.post("/model/flowers/train", json=["flowers"]))
    meta = await expect(await client.get("/v2/models/flowers"))
    assert meta["outputs"][0] == {"name": "Kind", "datatype": "BYTES", "shape": [-1]}
    body = {
        "inputs": [tensor("Size", "FP64", [2], [11, 0])],
        "parameters": {"binary_data_output": True},
    }
    response = await client.post("/v2/models/flowers/infer", json=body)
    raw = await response.read()
    length = int(response.headers[HEADER])
    outputs = json.loads(raw[:length])["outputs"]
    assert [o["name"] for o in outputs] == ["Kind", "confidence"]
    kind_size = outputs[0]["parameters"]["binary_data_size"]
    assert raw[length : length + kind_size] == bytes_tensor([b"big", b"small"])
    json_answer = await expect(
        await client.post(
            "/v2/models/flowers/infer", json={"inputs": [tensor("Size", "FP64", [1], [10])]}
        )
    )
    assert json_answer["outputs"][0]["data"] == ["big"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'inputs' must be a non-empty list"),
        ({"inputs": [tensor("Years", "INT128", [1], [1])]}, "unknown datatype"),
        ({"inputs": [tensor("Years", "INT64", [2], [1])]}, "needs 2 elements, got 1"),
        ({"inputs": [tensor("Years", "INT64", [1], ["x"])]}, "INT64 elements, got string"),
        ({"inputs": [tensor("Other", "INT64", [1], [1])]}, "shape [N, 1]"),
        ({"inputs": [tensor("Years", "INT64", [1, 2], [1, 2])]}, "has length 1"),
        ({"inputs": [tensor("Years", "INT64", [1, 0], [])]}, "has no columns"),
        (
            {"inputs": [tensor("Years", "INT64", [1], [1])], "outputs": [{"name": "nope"}]},
            "no output 'nope'",
        ),
        ({"id": 5, "inputs": [tensor("Years", "INT64", [1], [1])]}, "'id' must be a string"),
    ],
)
async def test_refusals_are_the_error_envelope(client: Any, body: Any, message: str) -> None:
    await trained_line(client)
    refused = await expect(await client.post("/v2/models/salary/infer", json=body), 400)
    assert message in refused["error"]


async def test_unknown_models_versions_and_bad_binary(client: Any) -> None:
    await trained_line(client)
    for path in ("/v2/models/nope", "/v2/models/nope/ready"):
        assert await expect(await client.get(path), 404) == {"error": "Model not loaded"}
    missing = await expect(await client.get("/v2/models/salary/versions/2"), 404)
    assert missing["error"].startswith("No version '2' of this model")
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "Years",
                    "datatype": "INT64",
                    "shape": [2],
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    ).encode()
    for extra, header in ((b"\0" * 8, str(len(head))), (b"\0" * 16, "x")):
        response = await client.post(
            "/v2/models/salary/infer", data=head + extra, headers={HEADER: header}
        )
        assert response.status == 400, await response.text()
        assert "error" in await response.json()


async def test_the_routes_are_in_the_openapi_document(client: Any) -> None:
    spec = client.server.app[OPENAPI].document()
    paths = spec["paths"]
    for path in ("/v2", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        assert path in paths
    assert "/v1/v2" not in paths
    assert (await client.get("/v1/v2")).status == 404


async def test_rules_name_an_inference_request_as_its_model(make_client: Any) -> None:
    rules = ("source/.*", "model/salary/(configure|context|train|infer|ready)", "health/.*")
    client = await make_client(rule=rules)
    await trained_line(client)
    body = {"inputs": [tensor("Years", "INT64", [1], [1])]}
    await expect(await client.post("/v2/models/salary/infer", json=body))
    await expect(await client.get("/v2/models/salary/ready"))
    await expect(await client.get("/v2/health/live"))
    # Not allowed by the rules: the metadata (model/salary/get), another model's inference.
    assert (await client.get("/v2/models/salary")).status == 403
    assert (await client.post("/v2/models/other/infer", json=body)).status == 403
    assert (await client.get("/v2")).status == 403


async def test_requests_are_counted_in_the_metrics(client: Any) -> None:
    await trained_line(client)
    body = {"inputs": [tensor("Years", "INT64", [1], [1])]}
    await expect(await client.post("/v2/models/salary/infer", json=body))
    metrics = await (await client.get("/metrics")).text()
    assert "/v2/models/{name}/infer" in metrics
