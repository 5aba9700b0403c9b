"""The Open Inference Protocol against the real CLI with the real client, tritonclient[http]:
docs/inference.md's program runs as written and prints what the page shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.live import LiveServer, live_server

PAGE = Path(__file__).resolve().parents[1] / "docs" / "inference.md"


def documented() -> tuple[str, str]:
    """The page's Python program and the output it shows (the indented block after it)."""
    text = PAGE.read_text(encoding="utf-8")
    program = re.search(r"```python\n(.*?)```", text, re.S)
    assert program is not None
    shown = re.search(r"It prints:\n\n((?:    .*\n)+)", text[program.end() :])
    assert shown is not None
    return program.group(1), "".join(line[4:] + "\n" for line in shown.group(1).splitlines())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server("-insecure", cwd=tmp_path) as running:
        yield running


def test_the_documented_tritonclient_program(server: LiveServer, tmp_path: Path) -> None:
    program, output = documented()
    script = tmp_path / "triton_example.py"
    script.write_text(program, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SERVER": f"127.0.0.1:{server.port}"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == output


def test_tritonclient_sees_the_protocols_errors(server: LiveServer) -> None:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live()
        assert not client.is_model_ready("nobody")
        with pytest.raises(InferenceServerException, match="Model not loaded"):
            client.get_model_metadata("nobody")
        years = triton.InferInput("Years", [1], "INT64")
        years.set_data_from_numpy(np.array([1], dtype=np.int64))
        with pytest.raises(InferenceServerException, match="Model not loaded"):
            client.infer("nobody", [years])
    finally:
        client.close()


def test_tritonclient_under_token_auth_rules_and_the_audit_log(tmp_path: Path) -> None:
    """Each user's model contexts are their own models; the token, the audit log and the
    request's name apply to the protocol's routes as to every route."""
    data = tmp_path / "data"
    data.mkdir()
    env = {"DFFML_SERVICE_HTTP_SECRET_KEY": "k" * 48}
    passwords = {"bob": "bob-password-1", "alice": "alice-password-1"}
    for name, password in passwords.items():
        made = subprocess.run(
            [
                *(sys.executable, "-m", "service", "createuser", "-username", name),
                *("-upload-dir", "data", "-password-stdin"),
            ],
            cwd=tmp_path,
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **env},
        )
        assert made.returncode == 0, made.stderr
    with live_server(
        *("-insecure", "-upload-dir", "data", "-auth", "token", "-audit-log", "audit.jsonl"),
        cwd=tmp_path,
        env=env,
    ) as server:
        tokens = {
            name: requests.post(
                f"{server.url}/auth/login",
                json={"username": name, "password": password},
                timeout=30,
            ).json()["access_token"]
            for name, password in passwords.items()
        }
        bob = {"Authorization": f"Bearer {tokens['bob']}"}
        people = {str(y): {"features": {"Years": y, "Salary": 10 * y + 10}} for y in range(6)}
        model = {"features": ["Years:int:1"], "predict": "Salary:float:1"}
        for method, path, body in (
            ("POST", "/configure/source/memory/people", {"records": people}),
            ("GET", "/context/source/people/people", None),
            ("POST", "/configure/model/slr/salary", model),
            ("GET", "/context/model/salary/salary", None),
            ("POST", "/model/salary/train", ["people"]),
        ):
            answer = requests.request(method, server.url + path, json=body, headers=bob, timeout=30)
            assert answer.status_code == 200, answer.text

        client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            assert client.is_server_live()  # public, as /health/live
            years = triton.InferInput("Years", [1], "INT64")
            years.set_data_from_numpy(np.array([3], dtype=np.int64))
            result = client.infer("salary", [years], headers=bob, request_id="bob-1")
            assert result.as_numpy("Salary").tolist() == pytest.approx([40])
            with pytest.raises(InferenceServerException) as no_token:
                client.infer("salary", [years])
            assert no_token.value.status() == "401"
            alice = {"Authorization": f"Bearer {tokens['alice']}"}
            with pytest.raises(InferenceServerException, match="Model not loaded"):
                client.infer("salary", [years], headers=alice)  # bob's, not hers
        finally:
            client.close()
    # Named as its model (docs/inference.md): kind model, the name, action infer. The server has
    # stopped, so its audit writer has written every line.
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    infers = [line for line in lines if line.get("resource") == "model/salary/infer"]
    assert [(line["user"], line["status"]) for line in infers] == [
        ("bob", 200),
        ("-", 401),
        ("alice", 404),
    ]
