"""Shared fixtures: an isolated project home, a throwaway PostgreSQL server, and one parametrised
``backend`` fixture so that the same test runs on every engine with the same data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.reliability_ledger import ledger, pytest_terminal_summary  # noqa: F401  (the reliability table)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = Path(os.environ.get("WORKBENCH_SAMPLE_DIR", ROOT.parent / "shared" / "data" / "growthbook-sample"))
ARTIFACTS = ROOT / "test-artifacts"
# GrowthBook's statistics engine at its main branch: the reference of every statistics test
ORACLE_DIR = Path(os.environ.get("WORKBENCH_GBSTATS_ORACLE", ROOT.parent / "shared" / "oracles" / "gbstats"))


@pytest.fixture(autouse=True, scope="session")
def isolated_home(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read the developer's data/, .env or environment database settings."""
    home = tmp_path_factory.mktemp("workbench-home")
    saved = {
        k: os.environ.get(k)
        for k in ("WORKBENCH_HOME", "WORKBENCH_DATABASE_URL", "WORKBENCH_DATABASE_PASSWORD", "WORKBENCH_CONFIG")
    }
    os.environ["WORKBENCH_HOME"] = str(home)
    for key in ("WORKBENCH_DATABASE_URL", "WORKBENCH_DATABASE_PASSWORD", "WORKBENCH_CONFIG"):
        os.environ.pop(key, None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server started for this test session (as ``nobody`` when root), stopped after."""
    from support.pg_server import start_postgres

    server = start_postgres()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def oracle():
    """GrowthBook's gbstats from ``ORACLE_DIR`` (put first on ``sys.path``), for comparisons only;
    the test skips saying where it is expected when the folder is absent."""
    import importlib
    import sys

    if not (ORACLE_DIR / "gbstats" / "__init__.py").exists():
        pytest.skip(f"the gbstats oracle is not at {ORACLE_DIR} (set WORKBENCH_GBSTATS_ORACLE)")
    if str(ORACLE_DIR) not in sys.path:
        sys.path.insert(0, str(ORACLE_DIR))
    return importlib.import_module("gbstats")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE_DIR / "experimentViews.csv.gz").exists() and not (SAMPLE_DIR / "experimentViews.csv").exists():
        pytest.skip(f"GrowthBook's sample data is not at {SAMPLE_DIR} (set WORKBENCH_SAMPLE_DIR)")
    return SAMPLE_DIR


@dataclass
class Backend:
    """One engine for a test: ``new_url(name)`` gives a fresh, empty, writable database URL."""

    name: str
    tmp: Path
    server: object | None = None

    def new_url(self, label: str) -> str:
        if self.name == "duckdb":
            return f"duckdb:///{self.tmp / (label + '.duckdb')}"
        self.server.create_database(label)  # type: ignore[union-attr]
        return self.server.url_with_password(label)  # type: ignore[union-attr]


@pytest.fixture(scope="session", params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request, tmp_path_factory) -> Backend:
    """Every test that takes ``backend`` runs once on DuckDB and once on PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"backend-{request.param}")
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    return Backend(request.param, tmp, server)


@pytest.fixture(scope="session")
def growthbook_url(backend: Backend, sample_dir: Path) -> str:
    """A database on ``backend`` holding GrowthBook's sample data, loaded once per session."""
    import workbench as wb
    from workbench.growthbook_sample import load_growthbook_sample

    url = backend.new_url("growthbook_sample")
    db = wb.connect(url, read_only=False)
    load_growthbook_sample(db, sample_dir)
    db.dispose()
    return url


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots and reports for a human to look at (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def spark_connect_server(tmp_path_factory):
    """A Spark Connect server (local mode, from the installed pyspark) for this test session,
    stopped after; skips saying why when Java is missing."""
    pytest.importorskip("pyspark.sql.connect.client", reason="pyspark[connect] is not installed: run `make setup`")
    from support.spark_server import java_missing_reason, start_spark_connect

    if reason := java_missing_reason():
        pytest.skip(reason)
    server = start_spark_connect(tmp_path_factory.mktemp("spark-connect"))
    yield server
    server.stop()
