"""Experiment reports on disk: ``reports/<key>/<timestamp>.ipynb`` and ``.html`` from
``notebooks/experiment_report.ipynb``, ``latest.html``, the results cache the dashboard reads
(``reports/<key>/cache/``), a ``status.json`` per experiment, ``reports/index.html`` and the
plotly.js and stylesheet every page links (:mod:`workbench.reports.page_assets`). Only the newest runs are kept
(:func:`prune_runs`).

Each report runs in its own kernel (papermill); a failure in one never stops the others, and
outputs are replaced by rename only after success, so a failed run (a query error, a database
gone, a full disk) leaves the last good report (and its cache) in place, no half-written or
temporary file, and keeps ``<timestamp>.failed.ipynb`` for debugging when the notebook failed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from workbench import paths
from workbench.errors import ConfigError, WorkbenchError, shown
from workbench.experiments.config import EXPERIMENT_KEY
from workbench.files import replace_file, swap_directory
from workbench.redaction import redact
from workbench.reports.index_page import read_status, record_schedule, write_index, write_status

REPORT_NOTEBOOK = "experiment_report.ipynb"
KEEP_RUNS = 10  # runs (timestamped notebook and HTML) kept per experiment


@dataclass(frozen=True)
class ReportRun:
    """One experiment's run: ``status`` "ok" or "failed", what was written, the error sentence."""

    key: str
    status: str
    notebook: Path | None = None
    html: Path | None = None
    latest: Path | None = None
    failed_notebook: Path | None = None
    error: str = ""
    seconds: float = 0.0


def timestamp_stem(now: dt.datetime | None = None) -> str:
    """``YYYYMMDD-HHMMSS`` in UTC: report file names sort by time."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")


# A run holds its stem with the hidden file ``.<stem>.running`` (its process id inside) until it ends.
CLAIM_SUFFIX = ".running"
# A parallel run's worker process is replaced after this many reports, so the memory one report's
# analysis leaves behind (pandas and allocator fragments) cannot pile up over a long batch.
REPORTS_PER_WORKER = 8


def _claim_stem(folder: Path) -> str:
    """A file stem for a new run in ``folder``, held by this process: the timestamp, with ``-2``,
    ``-3``, … when another run of the same second has it (such names still sort by time)."""
    base = timestamp_stem()
    n = 0
    while True:
        n += 1
        stem = base if n == 1 else f"{base}-{n}"
        if any((folder / f"{stem}{ending}").exists() for ending in (".ipynb", ".html", ".failed.ipynb")):
            continue
        claim = folder / f".{stem}{CLAIM_SUFFIX}"
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "w") as file:
                file.write(str(os.getpid()))
        except OSError:  # a full disk: no claim left behind
            claim.unlink(missing_ok=True)
            raise
        return stem


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_abandoned(folder: Path) -> list[str]:
    """Remove what runs killed outright (SIGKILL, a power cut) left in ``folder``: for each claim
    whose process is gone, the hidden notebook being executed, the staging cache and the claim.
    Returns the stems cleaned up."""
    cleaned = []
    for claim in folder.glob(f".*{CLAIM_SUFFIX}"):
        try:
            pid = int(claim.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pid = 0
        if pid and _process_alive(pid):
            continue
        stem = claim.name[1 : -len(CLAIM_SUFFIX)]
        for leftover in [*folder.glob(f".{stem}.*"), folder / f".cache-{stem}", *folder.glob(f"..cache-{stem}.*")]:
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        cleaned.append(stem)
    return cleaned


def run_report(
    key: str,
    *,
    database_url: str | None = None,
    config_path: Path | None = None,
    dimension: str = "",
    reports_dir: Path | None = None,
    parameters: dict | None = None,
    standalone: bool = False,
    keep: int = KEEP_RUNS,
) -> ReportRun:
    """Execute the experiment report of ``key`` into ``reports/<key>/`` and update ``latest.html``,
    the cache and ``status.json``; never raises for a failed notebook (the run says ``failed``).
    The page links the shared plotly.js and stylesheet in ``reports/``, or inlines them when
    ``standalone``; then
    only the newest ``keep`` runs stay (:func:`prune_runs`). Runs of the same second get distinct
    files; what a killed run left is removed first."""
    import time

    started = time.perf_counter()
    if not isinstance(key, str) or not EXPERIMENT_KEY.match(key):  # the key names a folder: never ../ or /
        raise ConfigError(
            f"{shown(key)} is not an experiment key (letters, digits and _ . : -, at most 100 characters); reports go to reports/<key>/."
        )
    root = Path(reports_dir or paths.reports_dir())
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    try:
        remove_abandoned(folder)
        stem = _claim_stem(folder)
    except OSError as exc:  # a full disk
        from workbench.reports.notebooks import output_error

        return ReportRun(key, "failed", error=str(output_error(exc, folder)), seconds=time.perf_counter() - started)
    staging_cache = folder / f".cache-{stem}"
    try:
        run = _run_claimed(
            key, folder, stem, staging_cache, started, database_url, config_path, dimension, parameters, standalone
        )
    finally:  # an interrupt (Ctrl-C, SIGTERM) too: the staging cache (swapped in after success) and the claim go
        shutil.rmtree(staging_cache, ignore_errors=True)
        (folder / f".{stem}{CLAIM_SUFFIX}").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # pruning is housekeeping: the run's outcome stands
        prune_runs(folder, keep)
    return run


def _run_claimed(
    key: str,
    folder: Path,
    stem: str,
    staging_cache: Path,
    started: float,
    database_url: str | None,
    config_path: Path | None,
    dimension: str,
    parameters: dict | None,
    standalone: bool,
) -> ReportRun:
    """:func:`run_report`'s work once ``stem`` is held."""
    import time

    from workbench.experiments.config import load_config
    from workbench.reports.data import cache_dir
    from workbench.reports.notebooks import output_error, run_notebook

    root = folder.parent
    params = {"experiment": key, "dimension": dimension, "cache_dir": str(staging_cache), **(parameters or {})}
    if config_path:
        params["config_path"] = str(Path(config_path).absolute())  # the kernel runs in the project root, not here
    status = read_status(folder)
    status.update(key=key, last_run=stem)
    try:
        load_config(config_path).experiment(key)  # a broken entry fails here with its own sentence
        shared_assets = None if standalone else linked_page_assets(root)
        run = run_notebook(
            REPORT_NOTEBOOK,
            folder,
            params,
            database_url=database_url,
            stem=stem,
            title=f"{key}: experiment report",
            config_path=config_path,
            shared_assets=shared_assets,
        )
    except WorkbenchError as exc:
        failed = folder / f"{stem}.failed.ipynb"
        error = redact(str(exc))
        status.update(status="failed", error=error, failed_notebook=failed.name if failed.exists() else None)
        with contextlib.suppress(
            OSError
        ):  # a full disk: the error is returned all the same, the old status stays whole
            write_status(folder, status)
        return ReportRun(
            key,
            "failed",
            failed_notebook=failed if failed.exists() else None,
            error=error,
            seconds=time.perf_counter() - started,
        )
    latest = folder / "latest.html"
    try:
        replace_file(run.html, latest)
        if staging_cache.is_dir():
            swap_directory(staging_cache, cache_dir(key, root))
        status.update(status="ok", error="", failed_notebook=None, last_good_run=stem, last_good_html=run.html.name)
        write_status(folder, status)
    except OSError as exc:  # a full disk: drop this run's files, the last good report stays
        run.notebook.unlink(missing_ok=True)
        run.html.unlink(missing_ok=True)
        return ReportRun(key, "failed", error=str(output_error(exc, folder)), seconds=time.perf_counter() - started)
    return ReportRun(key, "ok", run.notebook, run.html, latest, seconds=time.perf_counter() - started)


def linked_page_assets(root: Path) -> str:
    """Write the shared page files into ``root`` when missing and return their address from a
    page's folder one level below it (``"../"``: a report's, the data overview's); a failed write
    (a full disk) is one sentence, like every other output of the run."""
    from workbench.reports.notebooks import output_error
    from workbench.reports.page_assets import write_page_assets

    try:
        write_page_assets(root)
    except OSError as exc:
        raise output_error(exc, root) from None
    return "../"


def _run_stems(folder: Path) -> list[str]:
    """The runs in ``folder``, oldest first: the stems of its timestamped notebooks and pages
    (``<stem>.ipynb``, ``<stem>.html``, ``<stem>.failed.ipynb``)."""
    stems = {
        p.name.split(".", 1)[0]
        for p in folder.iterdir()
        if p.name[:1].isdigit() and p.name.endswith((".ipynb", ".html"))
    }
    return sorted(stems)


def prune_runs(folder: Path, keep: int = KEEP_RUNS) -> list[str]:
    """Delete the timestamped notebooks and pages of all but the newest ``keep`` runs in ``folder``;
    the last good run (``status.json``) always stays, and ``latest.html``, the cache and runs in
    progress are never touched. Returns the stems removed."""
    if keep < 1:
        raise WorkbenchError(f"keep={keep} would leave no run: keep at least 1.")
    protected = read_status(folder).get("last_good_run")
    doomed = [stem for stem in _run_stems(folder)[:-keep] if stem != protected]
    for stem in doomed:
        for ending in (".ipynb", ".html", ".failed.ipynb"):
            (folder / f"{stem}{ending}").unlink(missing_ok=True)
    return doomed


def report_keys(
    keys: list[str],
    config_path: Path | None = None,
    all_discovered: bool = False,
    database_url: str | None = None,
    dimension: str = "",
) -> tuple[list[str], Path | None]:
    """The experiments to report on and the config to use: ``keys`` (checked against the config,
    with ``dimension`` checked against each one's assignment query before any kernel starts),
    else every configured experiment; with ``all_discovered`` also every experiment found in the
    assignment queries, reported from a copy of the config with stub entries (health and units,
    no metrics) written under ``data/``."""
    from workbench.experiments.config import load_config

    config = load_config(config_path)
    chosen = list(keys) or list(config.experiment_keys)  # a broken entry fails in its own run
    for key in chosen:
        if key not in config.broken_experiments:
            config.report_dimensions(key, dimension)  # raises a sentence naming the config file
    if keys or not all_discovered:
        return chosen, config_path
    from workbench.db.connection import connect
    from workbench.experiments.discovery import discover_experiments, write_experiment_stubs

    db = connect(database_url, config_path=config.path)
    try:
        found = discover_experiments(db, config)
    finally:
        db.dispose()
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    copy = paths.data_dir() / ".discovered-workbench.yml"  # not reports/, which readers get: it holds events.api_keys
    shutil.copyfile(config.path, copy)
    extra = write_experiment_stubs(load_config(copy), found)
    return chosen + [k for k in extra if k not in chosen], copy


def run_reports(
    keys: list[str],
    *,
    database_url: str | None = None,
    config_path: Path | None = None,
    reports_dir: Path | None = None,
    dimension: str = "",
    jobs: int = 1,
    every_hours: float | None = None,
    keep: int = KEEP_RUNS,
) -> list[ReportRun]:
    """Run :func:`run_report` for each key (each its own kernel; failures recorded, never raised),
    ``jobs`` at a time (each in a worker process of its own when above 1), keeping the newest
    ``keep`` runs of each, record ``every_hours`` (how often this batch is scheduled) in each
    status, then write ``reports/index.html``; the runs come back in the order of ``keys``."""
    from workbench.progress import progress

    options = {
        "database_url": database_url,
        "config_path": config_path,
        "dimension": dimension,
        "reports_dir": reports_dir,
        "keep": keep,
    }
    if jobs > 1 and len(keys) > 1:
        import functools
        import multiprocessing

        # Leaving the pool terminates its workers, so an interrupted batch (Ctrl-C, SIGTERM) stops
        # at once instead of running the reports still queued.
        pool_size = min(jobs, len(keys))
        with multiprocessing.get_context("spawn").Pool(pool_size, maxtasksperchild=REPORTS_PER_WORKER) as pool:
            runs = list(
                progress(
                    pool.imap(functools.partial(_guarded_run, options=options), keys),
                    total=len(keys),
                    desc="Experiment reports",
                    unit="report",
                )
            )
    else:
        runs = [_guarded_run(key, options) for key in progress(keys, desc="Experiment reports", unit="report")]
    try:
        if every_hours is not None:
            record_schedule(keys, every_hours, reports_dir)
        write_index(reports_dir, keys)
    except WorkbenchError:  # a full disk: the old index stays whole
        if all(run.status == "ok" for run in runs):
            raise  # else the failed runs already say why, one line each
    return runs


def _guarded_run(key: str, options: dict) -> ReportRun:
    """:func:`run_report`, with any exception turned into a failed run."""
    try:
        return run_report(key, **options)
    except Exception as exc:  # one experiment's failure must never stop the others
        return ReportRun(key, "failed", error=redact(f"{type(exc).__name__}: {exc}"))
