"""The import contract of scripts/check: it holds on the tree, and it catches what it forbids.

Each case copies service/ and pyproject.toml (where the contracts live) into a temporary
directory, adds one module, and runs lint-imports there as scripts/check does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(
        ROOT / "service",
        root / "service",
        ignore=shutil.ignore_patterns("static", "ui", "__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


@pytest.fixture
def added(tree: Path):
    """Write one module into the copied tree for one test, and remove it after."""
    written: list[Path] = []

    def add(relative: str, text: str) -> None:
        path = tree / relative
        path.write_text(text, encoding="utf-8")
        written.append(path)

    yield add
    for path in written:
        path.unlink()


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("where", "imported"),
    [
        ("service/kernel/upward.py", "service.routes"),  # kernel -> api
        ("service/sdk/upward.py", "service.engine.cursors"),  # sdk -> engine
        ("service/engine/upward.py", "service.api.keys"),  # engine -> api
        ("service/plugins/upward.py", "service.contexts"),  # plugins -> engine
        ("service/auth/upward.py", "service.routes"),  # auth -> api
    ],
)
def test_an_import_pointing_up_breaks_the_layers(added, tree: Path, where: str, imported: str):
    added(where, f"import {imported}  # noqa: F401\n")
    result = _lint(tree)
    assert result.returncode == 1
    module = where.removesuffix(".py").replace("/", ".")
    assert f"{module} -> {imported}" in result.stdout


def test_an_import_under_type_checking_may_point_anywhere(added, tree: Path) -> None:
    added(
        "service/kernel/annotated.py",
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import service.routes\n",
    )
    result = _lint(tree)
    assert result.returncode == 0, result.stdout


def test_the_engine_importing_aiohttp_breaks_the_contract(added, tree: Path) -> None:
    added("service/engine/web.py", "from aiohttp import web  # noqa: F401\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "service.engine is not allowed to import aiohttp" in result.stdout


def test_keys_and_settings_load_nothing_else() -> None:
    """keys.py imports nothing at run time; settings import no feature code (and no aiohttp)."""
    probe = (
        "import sys\n"
        "import service.api.keys, service.settings\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('service'))\n"
        "print(' '.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    features = [
        m
        for m in out
        if m.partition(".")[2].split(".")[0]
        in {"auth", "observability", "engine", "contexts", "plugins", "routes", "app", "web"}
    ]
    assert features == []
    assert "service.api.keys" in out
    assert "service.settings" in out
