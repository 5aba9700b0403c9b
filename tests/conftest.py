"""Shared fixtures: the real app factory in-process, and the real CLI as a live server."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.plugins.registry import Registry
from service.settings import Settings

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def upload_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(upload_dir: Path) -> Settings:
    return Settings(insecure=True, upload_dir=upload_dir)


@pytest.fixture
def make_client(aiohttp_client: Any, settings: Settings) -> MakeClient:
    """Build a client for the real app; keyword arguments override settings fields."""

    async def make(
        registry: Registry | None = None, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(dataclasses.replace(settings, **overrides), registry=registry)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[web.Request, web.Application]:
    """The app with the real entry-point registry and an upload dir."""
    return await make_client()


EXT_PLUGIN_SOURCE = Path(__file__).parent / "fixtures" / "ext_plugin"


@pytest.fixture(scope="session")
def ext_plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/ext_plugin installed like a user's plugin package; put it on PYTHONPATH."""
    return install_package(EXT_PLUGIN_SOURCE, tmp_path_factory.mktemp("ext_plugin"))


def install_package(package: Path, work: Path) -> Path:
    """pip-install a copy of ``package`` into ``work``/site, as a user installs a plugin
    package, and return that directory for PYTHONPATH.

    Built from a copy so the build leaves nothing in the repository, offline (no index, no
    build isolation: setuptools comes from the test environment).
    """
    source = work / "src"
    shutil.copytree(package, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = work / "site"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--no-index", "--no-build-isolation", "--target", str(site)),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


# --- Dask ------------------------------------------------------------------------------------

# The tests' Dask settings: one retry when a worker dies under a function (as -executor dask
# and the docs' external scheduler have), no profiler, and short timeouts so a lost peer is
# noticed in seconds, not the default 30 s.
DASK_TEST_CONFIG: dict[str, Any] = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.worker.profile.enabled": False,
    "distributed.comm.timeouts.connect": "5s",
    "distributed.client.heartbeat": "1s",
    # A worker whose nanny restarts it (after a kill or a cancel) stays part of the cluster
    # however slowly it comes back on a loaded machine (Dask gives up on it after 15 s).
    "distributed.deploy.lost-worker-timeout": "300s",
}


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A ``distributed.LocalCluster`` of two single-threaded worker processes on 127.0.0.1,
    started once for every in-process Dask test (starting and stopping one takes seconds on
    each module that would otherwise have its own). A test that kills a worker leaves it to
    its nanny to bring a new one: tests begin with :func:`dask_workers`, which waits for both."""
    import dask.config
    from distributed import LocalCluster

    with (
        dask.config.set(DASK_TEST_CONFIG),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
        ) as cluster,
    ):
        yield cluster


async def dask_workers(cluster: Any, count: int = 2, seconds: float = 60) -> set[str]:
    """The addresses of the cluster's workers once ``count`` of them are up (polled, bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        workers = set(cluster.scheduler_info["workers"])
        if len(workers) >= count:
            return workers
        assert time.monotonic() < deadline, f"{len(workers)} of {count} Dask workers up"
        await asyncio.sleep(0.05)


def dask_executor_option(cluster: Any) -> str:
    """``-executor dask://127.0.0.1:PORT`` of ``cluster``."""
    return str(cluster.scheduler_address).replace("tcp://", "dask://")


# --- xdist groups ----------------------------------------------------------------------------
# scripts/test runs pytest -n auto --dist loadgroup: the tests of one group run on one worker,
# one after another. Each group below holds what must not share the machine's cores with
# itself (one Dask cluster per worker, one browser at a time, the fuzzers, the wheel's build
# and install); the rest spreads freely over the workers.
XDIST_GROUPS = {
    "test_dask_executor": "dask",
    "test_dask_faults": "dask",
    "test_dask_live": "dask",
    "test_dask_pipelines": "dask",
    "test_dask_tasks": "dask",
    "test_ui_browser": "browser",
    "test_examples": "browser",
    "test_auth_examples": "browser",
    "test_http_options": "browser",
    "test_openapi_pages": "browser",
    "test_fuzz_routes": "fuzz",
    "test_schemathesis": "fuzz",
    "test_wheel": "wheel",
    # each of its tests already runs two node processes (and their servers) at a time
    "test_js_standalone": "node",
    # One PostgreSQL server (tests/postgres.py) for all of them, on one worker.
    "test_state": "postgres",
    "test_state_backends": "postgres",
    "test_state_hosts": "postgres",
}


# tryfirst: xdist's own hook reads the xdist_group marks to group the tests, so they must be
# there before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = XDIST_GROUPS.get(item.path.stem)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # The long groups first: xdist hands out work in this order, so the many short tests fill
    # the other worker while a group runs instead of leaving one worker alone with it at the end.
    items.sort(key=lambda item: item.path.stem not in XDIST_GROUPS)
