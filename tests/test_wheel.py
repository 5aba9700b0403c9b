"""The package as users install it: the sdist and the wheel, installed into a fresh environment.

Every other test runs against the editable checkout, where a folder the wheel leaves out still
imports. Here the wheel is built as a release would build it, its file list is compared with the
source tree (every module and data file), and it is installed (not editable, with the ``dask``
extra) into a new virtual environment whose ``dffml-service-http`` then serves a short flow
from a directory outside the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
import requests

from service import __version__
from tests.live import create_user, live_server

ROOT = Path(__file__).resolve().parents[1]


def shipped(tree: Path) -> set[str]:
    """What the wheel must hold of ``tree``: every file under service/ but bytecode."""
    return {
        path.relative_to(tree).as_posix()
        for path in (tree / "service").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def build(tree: Path, out: Path, *what: str) -> list[Path]:
    """``python -m build`` without isolation: the setuptools of this environment, no network."""
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", *what, "--outdir", str(out), str(tree)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return sorted(out.iterdir())


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if name.startswith("service/")}


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A copy of what the sdist is built from, so build/ and *.egg-info never land in the checkout.
    tree = tmp_path_factory.mktemp("tree")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree)
    shutil.copytree(
        ROOT / "service", tree / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    build(tree, out)
    return out


def the(dist: Path, suffix: str) -> Path:
    (found,) = [path for path in dist.iterdir() if path.name.endswith(suffix)]
    return found


def test_the_wheel_holds_every_module_and_data_file(dist: Path) -> None:
    wheel = the(dist, ".whl")
    assert wheel.name == f"dffml_service_http-{__version__}-py3-none-any.whl"
    expected = shipped(ROOT)
    held = wheel_files(wheel)
    assert expected - held == set(), "left out of the wheel"
    assert held - expected == set(), "in the wheel but not in the tree"
    assert "service/web/ui/index.html" in held
    assert "service/web/static/api.js" in held


def test_the_sdist_holds_the_tree(dist: Path) -> None:
    sdist = the(dist, ".tar.gz")
    assert sdist.name == f"dffml_service_http-{__version__}.tar.gz"
    prefix = sdist.name.removesuffix(".tar.gz") + "/"
    with tarfile.open(sdist) as archive:
        names = {m.name.removeprefix(prefix) for m in archive.getmembers() if m.isfile()}
    assert {p for p in shipped(ROOT) if p.endswith(".py")} <= names


def test_a_package_folder_without_init_is_caught(tmp_path: Path) -> None:
    """The comparison above fails the day a folder of code loses its __init__.py."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree)
    shutil.copytree(
        ROOT / "service", tree / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tree / "service" / "observability" / "__init__.py").unlink()
    (wheel,) = [p for p in build(tree, tmp_path / "dist", "--wheel") if p.suffix == ".whl"]
    missing = shipped(tree) - wheel_files(wheel)
    assert "service/observability/middleware.py" in missing


@pytest.fixture(scope="session")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its ``dask`` extra, from the registry."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    wheel = the(dist, ".whl")
    subprocess.run(
        [
            env_dir / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            f"{wheel}[dask]",
        ],
        check=True,
        timeout=900,
        capture_output=True,
    )
    return env_dir


@pytest.fixture(autouse=True)
def outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """No trace of the checkout in what the installed commands inherit: they stand on their own
    (each also runs in a temporary directory, not the checkout)."""
    for name in ("PYTHONPATH", "VIRTUAL_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_the_installed_cli_says_its_version(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [installed / "bin" / "dffml-service-http", "-version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == __version__
    # and the package it runs is the installed one, not the checkout
    where = subprocess.run(
        [installed / "bin" / "python", "-c", "import service; print(service.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert where.startswith(str(installed)), where


def test_the_installed_server_serves_a_whole_flow(installed: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = "Years,Salary\n" + "".join(f"{y},{10 * y + 5}\n" for y in range(20))
    command = [str(installed / "bin" / "dffml-service-http")]
    with live_server(
        *("-insecure", "-upload-dir", "data", "-js"),
        cwd=tmp_path,
        command=command,
    ) as server:
        url = server.url
        health = requests.get(f"{url}/health", timeout=30).json()
        assert health["version"] == __version__
        ui = requests.get(f"{url}/ui/", timeout=30)
        assert ui.status_code == 200
        assert "<html" in ui.text.lower()
        docs = requests.get(f"{url}/docs/assets/swagger-ui.css", timeout=30)
        assert docs.status_code == 200
        assert len(docs.content) > 1000
        js = requests.get(f"{url}/api.js", timeout=30)
        assert js.status_code == 200
        assert "class" in js.text

        files = {"file": ("salaries.csv", rows)}
        assert requests.post(f"{url}/service/upload/salaries.csv", files=files, timeout=30).ok
        calls = [
            ("POST", "/configure/source/csv/s", {"filename": "salaries.csv"}),
            ("GET", "/context/source/s/s", None),
            (
                "POST",
                "/configure/model/slr/m",
                {"features": ["Years:int:1"], "predict": "Salary:int:1"},
            ),
            ("GET", "/context/model/m/m", None),
            ("POST", "/model/m/train", ["s"]),
            ("POST", "/configure/module/dataset/ds", {}),
            ("GET", "/context/module/ds/ds", None),
        ]
        for method, path, body in calls:
            response = requests.request(method, url + path, json=body, timeout=60)
            assert response.json() == {"error": None}, (path, response.text)
        predicted = requests.post(
            f"{url}/model/m/predict/0", json={"x": {"features": {"Years": 30}}}, timeout=60
        ).json()
        assert predicted["records"]["x"]["prediction"]["Salary"]["value"] == 305
        described = requests.post(
            f"{url}/module/ds/describe", json={"files": ["salaries.csv"]}, timeout=120
        )
        assert described.status_code == 200, described.text
        (output,) = described.json()["files"]
        downloaded = requests.get(f"{url}/service/files/{output['filename']}", timeout=30)
        assert downloaded.status_code == 200
        assert len(downloaded.content) == output["size"]
    assert server.process.returncode == 0


def test_the_installed_server_logs_users_in(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    cli = installed / "bin" / "dffml-service-http"
    made = create_user("ann", "a long enough password", tmp_path, cli=[str(cli)])
    assert made.returncode == 0, made.stderr
    with live_server(
        *("-insecure", "-upload-dir", "data", "-auth", "token"),
        cwd=tmp_path,
        command=[str(cli)],
    ) as server:
        login = requests.post(
            f"{server.url}/auth/login",
            json={"username": "ann", "password": "a long enough password"},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        me = requests.get(
            f"{server.url}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert me.json()["username"] == "ann"
        assert requests.get(f"{server.url}/labels", timeout=30).status_code == 401
    # the signing key was made beside the state store, outside the upload dir, mode 0600
    key = tmp_path / "data.jwt-key"
    assert key.is_file()
    assert (key.stat().st_mode & 0o777) == 0o600
    assert not list((tmp_path / "data").glob("*.jwt-key"))
