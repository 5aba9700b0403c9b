"""Fuzzing /configure and /context through HTTP: every answer is the JSON envelope, never a 500.

Bodies are generated from each plugin's own /list schema (right names, wrong and right types,
DFFML's nested form and the flat one) plus byte-level damage to valid bodies; URL parts include
unicode, very long labels and percent-encoded slashes. The generator is seeded: a failure names
the request that caused it and reproduces.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from yarl import URL

from service.plugins.registry import Registry
from service.plugins.sources.memory import MemorySource
from tests import fakes
from tests.conftest import MakeClient

KIND_PLURALS = {"source": "sources", "model": "models", "scorer": "scorers", "module": "modules"}

ODD_LABELS = [
    "plain",
    "%C3%BCn%C3%AFc%C3%B6d%C3%A9",  # ünïcödé
    "%F0%9F%98%80",  # an emoji
    "a%2Fb",  # an encoded slash inside one label
    "a%2F..%2F..%2Fetc",
    "%2e%2e",
    "a%00b",
    "%ff%fe",  # not UTF-8 once decoded
    "%",
    "x" * 4000,
    "semi;colon",
    "q%3Fx%3D1",
    "sp%20ace",
    "back%5Cslash",
]

SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    -0.0,
    1e308,
    float("nan"),
    float("-inf"),
    "",
    "a",
    "true",
    "7",
    "Years:int:1",
    "../../etc/passwd",
    "/etc/passwd",
    "x" * 300,
    "\u0000",
    "ünï",
]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth >= 3 or roll < 0.55:
        return rng.choice(SCALARS)
    if roll < 0.8:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["features", "extra", "plugin", "config", "name", "dtype", "length", "k", ""]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def field_value(rng: random.Random, info: dict[str, Any]) -> Any:
    """Often a plausible value for the field's declared type, often not."""
    plausible: dict[str, list[Any]] = {
        "int": [1, "3", -5, 0],
        "float": [0.5, "2.5", 3],
        "bool": [True, "false", "yes"],
        "str": ["abc", ""],
        "path": ["a.csv", "sub/b.csv", "../x", "/abs"],
        "enum": list(info.get("choices", [])),
    }
    candidates = plausible.get(info.get("type", ""), [])
    if candidates and rng.random() < 0.5:
        return rng.choice(candidates)
    if str(info.get("type", "")).startswith("List") and rng.random() < 0.5:
        return [rng.choice(["Years:int:1", "a", 1, {"name": "x", "dtype": "int", "length": 1}])]
    return random_value(rng)


def bodies_for(rng: random.Random, kind: str, fields: dict[str, Any], count: int) -> list[bytes]:
    out: list[bytes] = []
    names = [*fields, "bogus"]
    for _ in range(count):
        chosen = rng.sample(names, k=rng.randrange(len(names) + 1))
        flat = {name: field_value(rng, fields.get(name, {}).get("plugin", {})) for name in chosen}
        if rng.random() < 0.4:
            config = {
                name: {"plugin": value if isinstance(value, list) else [value], "config": {}}
                if rng.random() < 0.8
                else value
                for name, value in flat.items()
            }
            body: Any = {kind: {"plugin": rng.choice([None, "x"]), "config": config}}
        else:
            body = flat
        raw = json.dumps(body).encode()  # stdlib: big ints, NaN and Infinity pass through
        damage = rng.random()
        if damage < 0.15:
            raw = raw[: rng.randrange(len(raw) + 1)]
        elif damage < 0.25:
            at = rng.randrange(len(raw) + 1)
            raw = raw[:at] + bytes([rng.randrange(256)]) + raw[at:]
        out.append(raw)
    return out


def assert_envelope(status: int, content_type: str, body: bytes, what: str) -> None:
    assert status < 500, what
    assert content_type == "application/json", what
    parsed = orjson.loads(body)
    assert isinstance(parsed, dict), what
    assert set(parsed) == {"error"} or status == 200, what
    if status >= 400:
        assert isinstance(parsed["error"], str), what
        assert parsed["error"], what
        assert "Traceback" not in parsed["error"], what


async def exercise(client: Any, rng: random.Random, per_plugin: int) -> int:
    sent = 0
    for kind, plural in KIND_PLURALS.items():
        listing = await (await client.get(f"/list/{plural}")).json()
        for plugin, entry in listing.items():
            if "unavailable" in entry:
                continue
            fields = entry[kind]["config"][plugin]["config"]
            for i, raw in enumerate(bodies_for(rng, kind, fields, per_plugin)):
                label = rng.choice(ODD_LABELS)
                url = URL(f"/configure/{kind}/{plugin}/{label}", encoded=True)
                response = await client.post(
                    url, data=raw, headers={"Content-Type": "application/json"}
                )
                what = f"POST {url} {raw[:200]!r}"
                assert_envelope(response.status, response.content_type, await response.read(), what)
                sent += 1
                if i % 4 == 0:
                    ctx = rng.choice(ODD_LABELS)
                    for method, path in (
                        (rng.choice(["GET", "POST"]), f"/context/{kind}/{label}/{ctx}"),
                        ("DELETE", f"/context/{kind}/{ctx}"),
                        ("DELETE", f"/configure/{kind}/{label}"),
                    ):
                        url = URL(path, encoded=True)
                        response = await client.request(method, url, data=raw)
                        body = await response.read()
                        assert_envelope(
                            response.status, response.content_type, body, f"{method} {url}"
                        )
                        sent += 1
    return sent


async def test_fuzzed_configure_and_context_never_500(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Every built-in plugin's schema, through the real registry."""
    sent = await exercise(client, random.Random(20240611), per_plugin=40)
    assert sent > 100
    assert "Unhandled error" not in caplog.text
    assert (await client.get("/health")).status == 200


async def test_fuzzed_field_types_never_500(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A plugin declaring every supported field type (path, enum, list, optional, …)."""
    registry = Registry.empty()
    registry.register("source", "fake", fakes.FakeSource)
    registry.register("source", "memory", MemorySource)
    client = await make_client(registry=registry)
    await exercise(client, random.Random(7), per_plugin=150)
    assert "Unhandled error" not in caplog.text


@pytest.mark.parametrize("label", ODD_LABELS)
async def test_odd_labels_round_trip(client: Any, label: str) -> None:
    """A label is an opaque string: whatever decodes from the URL names the same thing again."""
    for method, path in (
        ("POST", f"/configure/source/memory/{label}"),
        ("GET", f"/context/source/{label}/{label}"),
        ("DELETE", f"/context/source/{label}"),
        ("DELETE", f"/configure/source/{label}"),
    ):
        response = await client.request(method, URL(path, encoded=True), json={})
        assert (response.status, await response.json()) == (200, {"error": None}), (method, path)
    response = await client.get(URL(f"/context/source/{label}/c", encoded=True))
    assert response.status == 404
    # The label as the route decodes it (yarl, as aiohttp), named in the documented message.
    decoded = URL(f"/context/source/{label}/c", encoded=True).parts[3]
    assert (await response.json())["error"] == f"{decoded} source not found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/configure/source/memory"),
        ("POST", "/configure/source/memory/a/b"),
        ("POST", "/configure/source//x"),
        ("GET", "/context/source/x"),
        ("GET", "/context//x/y"),
        ("PUT", "/configure/source/memory/x"),
        ("PATCH", "/context/source/x/y"),
        ("POST", "/configure/source/memory/.."),
        ("POST", "/configure/%2e%2e/memory/x"),
        ("POST", "/configure/SOURCE/memory/x"),
        ("POST", "/configure/sources/memory/x"),
    ],
)
async def test_odd_paths_are_json_4xx(client: Any, method: str, path: str) -> None:
    response = await client.request(method, URL(path, encoded=True), data=b"{}")
    assert 400 <= response.status < 500
    assert isinstance((await response.json())["error"], str)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Content-Encoding": "gzip"},
        {"Content-Type": "application/json; charset=latin-1"},
    ],
)
async def test_odd_content_headers_are_handled(client: Any, headers: dict[str, str]) -> None:
    response = await client.post(
        "/configure/source/memory/x", data=b'{"records": {}}', headers=headers
    )
    assert response.status < 500
    assert "error" in await response.json()


async def test_body_that_cannot_be_decoded_is_400(client: Any) -> None:
    response = await client.post(
        "/configure/source/memory/x",
        data=b'{"records": {}}',
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert (response.status, await response.json()) == (
        400,
        {"error": "Invalid request body: Can not decode content-encoding: gzip"},
    )
