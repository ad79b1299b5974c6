"""Everything an experiment report or the dashboard shows, computed once: results, the
abautomator interval view, units per day, the cumulative effect of goal metrics, the SQL that ran
and the run's provenance; saved under ``reports/<key>/cache/`` (Parquet + JSON) so the dashboard
answers without touching the database.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import pandas as pd


CACHE_FRAMES = ("sufficient_statistics", "results", "intervals", "units_per_day", "cumulative")
PROVENANCE_PACKAGES = ("workbench", "duckdb", "pandas", "numpy", "scipy", "plotly", "sqlalchemy", "psycopg")


@dataclass
class ReportData:
    """One experiment's report content. Frames: ``results`` (``ExperimentResults.to_pandas()``),
    ``intervals`` (68%/95% view), ``units_per_day`` (day, variation, users), ``cumulative``
    (:mod:`workbench.experiments.cumulative`), ``sufficient_statistics``; ``summary`` is
    ``ExperimentResults.to_dict()`` without the statistics rows; ``sql`` the queries that ran."""

    key: str
    results: pd.DataFrame
    intervals: pd.DataFrame
    units_per_day: pd.DataFrame
    cumulative: pd.DataFrame
    sufficient_statistics: pd.DataFrame
    summary: dict[str, Any]
    sql: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def control(self) -> str:
        return str(self.summary["settings"]["control"])

    @property
    def warnings(self) -> list[str]:
        return list(self.summary["health"]["warnings"])

    @property
    def srm_flagged(self) -> bool:
        srm = [r for r in self.summary["health"]["srm"] if r.get("dimension") == "overall"]
        return bool(srm and srm[0].get("srm_flagged"))


def config_hash(path: Path) -> str:
    """First 12 hex digits of the SHA-256 of the config file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a report's numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PROVENANCE_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def report_data(
    key: str,
    db=None,
    *,
    config_path: str | Path | None = None,
    dimension: str | None = None,
    cumulative_points: int = 14,
    **setting_overrides: Any,
) -> ReportData:
    """Compute the report of experiment ``key`` of ``config_path`` (default: the project's
    ``workbench.yml``) on ``db``: overall results plus per value of ``dimension`` (None or "":
    the experiment's first configured dimension, if any; "none": overall only), the cumulative
    effect of goal metrics at up to ``cumulative_points`` days.
    ``setting_overrides`` are ``AnalysisSettings`` fields (engine, alpha, …)."""
    import time

    from workbench.experiments.analysis import analysis_settings, analyze
    from workbench.experiments.config import load_config
    from workbench.experiments.cumulative import cumulative_effects, end_days
    from workbench.experiments.engine import experiment, health_facts

    started = time.perf_counter()
    config = load_config(Path(config_path) if config_path else None)
    exp = experiment(key, config)
    if not dimension:
        dimension = exp.settings.dimensions[0] if exp.settings.dimensions else None
    elif dimension == "none":
        dimension = None
    if dimension and dimension not in exp.settings.assignment_query.dimensions:
        raise WorkbenchError(f"dimension {dimension!r} is not a column of experiment {key!r}'s assignment query; use one of {list(exp.settings.assignment_query.dimensions)}.")
    if db is None:  # a session of its own, closed afterwards so it holds no DuckDB file open
        from workbench.db.connection import connect

        db = connect()
        try:
            return report_data(key, db, config_path=config_path, dimension=dimension or "none",
                               cumulative_points=cumulative_points, **setting_overrides)
        finally:
            db.dispose()
    results = analyze(exp, db, dimensions=[dimension] if dimension else [], **setting_overrides)
    _units, days = health_facts(exp, None, db)
    days = days[days["variation"].isin(list(exp.variations) or days["variation"].unique())].reset_index(drop=True)
    points = end_days(days["day"].min().date(), days["day"].max().date(), cumulative_points) if len(days) else []
    settings = analysis_settings(exp, **setting_overrides)
    cumulative = cumulative_effects(exp, db, settings, points)
    sql = [*results.sufficient_statistics.attrs.get("sql", []), days.attrs.get("sql", "")]
    provenance = {
        "experiment": key,
        "config_file": str(config.path),
        "config_sha256": config_hash(config.path),
        "database": getattr(getattr(db, "settings", None), "display_url", getattr(db, "dialect_name", "")),
        "data_window": _data_window(exp, days),
        "dimension": dimension or None,
        "computed_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "seconds": round(time.perf_counter() - started, 2),
        "packages": package_versions(),
    }
    summary = results.to_dict()
    summary.pop("sufficient_statistics")
    return ReportData(key, results.to_pandas(), results.intervals(), days, cumulative,
                      results.sufficient_statistics, summary, [s for s in sql if s], provenance)


def _data_window(exp, days: pd.DataFrame) -> dict[str, str | None]:
    def text(value) -> str | None:
        return None if value is None else str(value)

    return {
        "configured_start": text(exp.settings.start), "configured_end": text(exp.settings.end),
        "first_exposure_day": str(days["day"].min().date()) if len(days) else None,
        "last_exposure_day": str(days["day"].max().date()) if len(days) else None,
    }


def cache_dir(key: str, reports_dir: Path | None = None) -> Path:
    """``reports/<key>/cache``."""
    from workbench import paths

    return Path(reports_dir or paths.reports_dir()) / key / "cache"


def save_report_cache(data: ReportData, directory: Path) -> Path:
    """Write ``data`` into ``directory`` (one Parquet file per frame and ``results.json``); the
    folder is replaced in one rename, so readers never see half a cache."""
    import shutil

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name in CACHE_FRAMES:
            frame = getattr(data, name).copy()
            frame.attrs = {}  # the SQL and its parameters go to results.json, not Parquet metadata
            frame.to_parquet(staging / f"{name}.parquet", index=False)
        payload = {"key": data.key, "summary": data.summary, "sql": data.sql, "provenance": data.provenance}
        (staging / "results.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def load_report_cache(directory: Path) -> ReportData:
    """The :class:`ReportData` saved by :func:`save_report_cache` in ``directory``."""
    import pandas as pd

    directory = Path(directory)
    if not (directory / "results.json").is_file():
        raise WorkbenchError(f"No cached results in {directory}: run `workbench report <key>` or `workbench run-reports` first.")
    payload = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    frames = {name: pd.read_parquet(directory / f"{name}.parquet") for name in CACHE_FRAMES}
    return ReportData(payload["key"], summary=payload["summary"], sql=payload["sql"], provenance=payload["provenance"], **frames)
