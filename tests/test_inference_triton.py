"""The Open Inference Protocol against the real CLI with the real client, tritonclient[http]:
docs/inference.md's program runs as written and prints what the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
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
