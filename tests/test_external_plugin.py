"""A plugin package installed on its own (tests/fixtures/ext_plugin), seen by the real server."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.live import live_server


def test_installed_plugin_is_listed_usable_and_a_broken_one_unavailable(
    ext_plugin_path: Path, tmp_path: Path
) -> None:
    upload_dir = tmp_path / "data"
    with live_server(
        *("-insecure", "-upload-dir", str(upload_dir)),
        cwd=tmp_path,
        env={"PYTHONPATH": str(ext_plugin_path)},
    ) as server:
        listing = requests.get(f"{server.url}/list/sources", timeout=10).json()
        fields = listing["journal"]["source"]["config"]["journal"]["config"]
        assert fields["journal"]["plugin"] == {
            "type": "path",
            "required": True,
            "help": "file that records each open and close",
        }
        assert fields["greeting"]["plugin"]["default"] == "hello"
        assert "memory" in listing  # the built-ins are still there
        broken = listing["ext-broken"]
        assert broken["unavailable"] == (
            "ImportError: ext_journal.broken needs the 'missing-native-lib' package"
        )
        assert listing["ext-exits"]["unavailable"] == (
            "SystemExit: ext_journal.exits: this plugin needs a GPU"
        )

        response = requests.post(
            f"{server.url}/configure/source/journal/j",
            json={"journal": "j.log", "greeting": "hi"},
            timeout=10,
        )
        assert (response.status_code, response.json()) == (200, {"error": None})
        response = requests.get(f"{server.url}/context/source/j/jc", timeout=10)
        assert (response.status_code, response.json()) == (200, {"error": None})
        assert (upload_dir / "j.log").read_text() == "open source hi\nopen context hi\n"

        response = requests.post(
            f"{server.url}/configure/source/journal/bad",
            json={"journal": "x", "count": "many"},
            timeout=10,
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "JournalSource 'count' of source.bad must be int, got \"many\""
        }
        response = requests.post(f"{server.url}/configure/source/ext-broken/b", json={}, timeout=10)
        assert response.status_code == 400
        assert "unavailable" in response.json()["error"]
        assert "missing-native-lib" in response.json()["error"]
        assert requests.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"
        assert "ext-broken" in server.stderr()  # the failure is logged for the operator
    assert server.process.returncode == 0
    assert (upload_dir / "j.log").read_text().endswith("close context hi\nclose source hi\n")
