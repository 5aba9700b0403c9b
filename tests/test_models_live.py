"""Black-box: models trained by one server run are there for the next, however configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.live import live_server
from tests.models_helpers import line_records

TIMEOUT = 60
LINE = {"features": ["Years:int:1"], "predict": "Salary:float:1"}
TEN = {"t": {"features": {"Years": 10}}}


def call(method: str, url: str, body: Any = None) -> Any:
    response = requests.request(method, url, json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def predicted_salary(url: str, ctx: str) -> float:
    body = call("POST", f"{url}/model/{ctx}/predict/0", TEN)
    value: float = body["records"]["t"]["prediction"]["Salary"]["value"]
    return value


def test_trained_models_survive_a_restart(tmp_path: Path) -> None:
    serve = ("-insecure", "-upload-dir", "data")
    with live_server(*serve, cwd=tmp_path) as server:
        url = server.url
        call("POST", f"{url}/configure/source/memory/train", {"records": line_records(range(5))})
        call("GET", f"{url}/context/source/train/train")
        call("POST", f"{url}/configure/model/slr/m", {**LINE, "location": "models/m"})
        call("GET", f"{url}/context/model/m/m")
        assert call("POST", f"{url}/model/m/train", ["train"]) == {"error": None}
    assert server.process.returncode == 0

    # Started again and reconfigured by a client: predicts without training.
    with live_server(*serve, cwd=tmp_path) as server:
        # The PyPI release's name for the location.
        call("POST", f"{server.url}/configure/model/slr/m", {**LINE, "directory": "models/m"})
        call("GET", f"{server.url}/context/model/m/m")
        assert predicted_salary(server.url, "m") == pytest.approx(110)

    # Preloaded by the operator, from the command line and from -config: ready at once.
    (tmp_path / "preload.yaml").write_text(
        "models:\n"
        "  fromyaml:\n"
        "    plugin: slr\n"
        "    config:\n"
        "      features: ['Years:int:1']\n"
        "      predict: 'Salary:float:1'\n"
        "      location: data/models/m\n"
    )
    with live_server(
        *serve,
        *("-config", "preload.yaml", "-models", "fromcli=slr"),
        *("-model-fromcli-features", "Years:int:1", "-model-fromcli-predict", "Salary:float:1"),
        *("-model-fromcli-location", "data/models/m"),
        cwd=tmp_path,
    ) as server:
        for ctx in ("fromyaml", "fromcli"):
            assert predicted_salary(server.url, ctx) == pytest.approx(110)
