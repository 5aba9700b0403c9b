"""examples/plugin installed like a user's package, listed and run by the real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.conftest import install_package
from tests.live import live_server

EXAMPLE = Path(__file__).parents[1] / "examples" / "plugin"


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_package(EXAMPLE, tmp_path_factory.mktemp("example_plugin"))


def test_example_plugin_is_listed_and_runs(example_site: Path, tmp_path: Path) -> None:
    upload_dir = tmp_path / "data"
    notes = "Mail ann@example.com or bob.smith@mail.example.org.\nCall 5551234, not ann.\n"
    with live_server(
        *("-insecure", "-upload-dir", str(upload_dir)),
        cwd=tmp_path,
        env={"PYTHONPATH": str(example_site)},
    ) as server:
        url = server.url
        listing = requests.get(f"{url}/list/modules", timeout=10).json()
        text = listing["text"]
        assert text["tagline"] == "Redact and count words in text files"
        redact = text["functions"]["redact"]
        assert redact["modifies_input_files"] is True
        assert redact["expected_filetype"] == "txt"
        assert redact["optional_filetypes"] == ["md"]
        assert redact["options"][0] == {
            "name": "what",
            "type": "enum",
            "choices": ["email", "digits"],
            "required": True,
            "help": "what to mask: e-mail addresses or 4+ digit runs",
        }
        assert "dataset" in listing  # the built-ins are still there

        upload = requests.post(
            f"{url}/service/upload/notes.txt", files={"file": ("notes.txt", notes)}, timeout=10
        )
        assert upload.status_code == 200, upload.text
        for path in ("/configure/module/text/t", "/context/module/t/t"):
            response = requests.post(f"{url}{path}", json={}, timeout=10)
            assert response.json() == {"error": None}

        response = requests.post(
            f"{url}/module/t/redact",
            json={"files": ["notes.txt"], "options": {"what": "email", "mask": "<hidden>"}},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        (out,) = body["files"]
        assert out["filename"] == f"outputs/{body['run']}/notes.txt"
        assert out["tags"] == {"redactions": 2}
        assert body["logs"] == ["notes.txt: 2 email match(es) masked"]
        assert (upload_dir / out["filename"]).read_text() == (
            "Mail <hidden> or <hidden>.\nCall 5551234, not ann.\n"
        )
        assert (upload_dir / "notes.txt").read_text() == notes  # the input is untouched

        response = requests.post(
            f"{url}/module/t/wordcount", json={"files": [out["filename"]]}, timeout=30
        )
        assert response.status_code == 200, response.text
        (count,) = response.json()["files"]
        summary = json.loads((upload_dir / count["filename"]).read_text())
        assert summary["words"] == count["tags"]["words"] == 7  # mail hidden or hidden call not ann
        assert summary["top"][0] == ["hidden", 2]

        response = requests.post(
            f"{url}/module/t/wordcount",
            json={"files": ["notes.txt"], "options": {"top": -1}},
            timeout=10,
        )
        assert response.status_code == 400
        assert "top must be 0 or more" in response.json()["error"]
    assert server.process.returncode == 0
