"""Distribution metadata for dffml-service-http.

Built-in plugins are registered through the same entry-point groups that third-party
plugin packages use, so the server discovers its own plugins exactly as it discovers theirs.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

# -executor dask / dask://HOST:PORT runs module functions on a Dask distributed cluster
# (docs/pipelines.md); the extra brings the `dask` command (dask scheduler, dask worker) too.
DASK = ["dask[distributed]>=2024.1"]

HERE = Path(__file__).parent
# The version lives in service/__init__.py alone: -version, /health and the wheel all read it.
VERSION = re.search(
    r'^__version__ = "([^"]+)"$',
    (HERE / "service" / "__init__.py").read_text(encoding="utf-8"),
    re.M,
)
if VERSION is None:
    raise SystemExit("setup.py: service/__init__.py has no __version__ line")

setup(
    name="dffml-service-http",
    version=VERSION[1],
    description="HTTP service exposing DFFML-style sources, models, scorers and modules",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["service", "service.*"]),
    package_data={
        "service": [
            "py.typed",
            "web/static/*",
            "web/static/docs/*",
            "web/ui/*",
            "web/ui/js/*",
            "web/ui/js/pages/*",
        ]
    },
    install_requires=[
        "aiohttp>=3.9",
        "aiohttp-cors>=0.7",
        "aiofiles>=23.1",
        "pyyaml>=6.0",
        "importlib-metadata>=6.0",
        "orjson>=3.9",
        "cryptography>=41",
        "scikit-learn>=1.4",
        "skops>=0.10",
        # /metrics in Prometheus' text format (docs/observability.md)
        "prometheus-client>=0.20",
        # -auth token: JWT access tokens (issue 14); docs/auth.md says why each is here.
        "pyjwt>=2.8",
        "argon2-cffi>=23.1",
        # -state postgresql://...: several hosts share one state store (docs/scaling.md).
        # psycopg 3 with its binary extra bundles libpq, so no system library is needed.
        "psycopg[binary]>=3.1",
        # The columnar data path (docs/plugins.md, "Column batches"): Arrow record batches,
        # its multi-threaded CSV reader and the parquet source.
        "pyarrow>=15",
    ],
    extras_require={
        "dev": [
            # below 9.2: pytest-xdist's --dist loadgroup (scripts/test) renames node ids in a way
            # pytest 9.2 no longer reads, so the groups in tests/conftest.py would not hold
            "pytest>=8,<9.2",
            "pytest-aiohttp>=1.0",
            # scripts/test runs the suite on every core (docs/testing.md)
            "pytest-xdist>=3.5",
            # scripts/check: the layers contract over the import graph (docs/architecture.md)
            "import-linter>=2.0",
            # tests/test_wheel.py builds the sdist and the wheel as a release would
            "build>=1.0",
            "ruff>=0.5",
            "mypy>=1.10",
            # tests install a plugin package without build isolation (bdist_wheel built in)
            "setuptools>=70.1",
            "requests>=2.31",
            "selenium>=4.20",
            "types-PyYAML",
            "types-aiofiles",
            "types-requests",
            # the OpenAPI document is validated against the 3.1 schema (docs/openapi.md)
            "openapi-spec-validator>=0.7",
            # contract fuzzing of a live server against /openapi.json (docs/openapi.md)
            "schemathesis>=3.30",
            # tests/test_fuzz_routes.py: property-based fuzzing of every route (docs/limits.md)
            "hypothesis>=6.100",
            # the Open Inference Protocol is tested with a real client of it (docs/inference.md)
            "tritonclient[http]>=2.40",
            # the Dask executor's tests run a LocalCluster and real `dask` scheduler/workers
            *DASK,
        ],
        "dask": DASK,
    },
    entry_points={
        "console_scripts": ["dffml-service-http = service.cli:main"],
        "dffml_service_http.source": [
            "memory = service.plugins.sources.memory:MemorySource",
            "csv = service.plugins.sources.csvfile:CSVSource",
            "json = service.plugins.sources.jsonfile:JSONSource",
            "sqlite = service.plugins.sources.sqlite:SQLiteSource",
            "parquet = service.plugins.sources.parquetfile:ParquetSource",
        ],
        "dffml_service_http.model": [
            "slr = service.plugins.models.slr:SLRModel",
            "scikitlr = service.plugins.models.scikit:LinearRegressionModel",
            "scikitlor = service.plugins.models.scikit:LogisticRegressionModel",
            "scikitrf = service.plugins.models.scikit:RandomForestClassifierModel",
            "scikitrfr = service.plugins.models.scikit:RandomForestRegressorModel",
            "scikitknn = service.plugins.models.scikit:KNeighborsModel",
        ],
        "dffml_service_http.scorer": [
            "mse = service.plugins.scorers.metrics:MSEScorer",
            "mae = service.plugins.scorers.metrics:MAEScorer",
            "r2 = service.plugins.scorers.metrics:R2Scorer",
            "clf = service.plugins.scorers.metrics:AccuracyScorer",
        ],
        "dffml_service_http.module": [
            "dataset = service.plugins.modules.dataset:Dataset",
            "evasion = service.plugins.modules.evasion:Evasion",
        ],
    },
)
