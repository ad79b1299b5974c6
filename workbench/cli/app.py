"""The ``workbench`` typer application and the small helpers every command module shares.

Commands only parse arguments and call the package; errors the user can fix end in one sentence
on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from workbench.redaction import redact

if TYPE_CHECKING:
    from workbench.db.connection import SqlDatabase

app = typer.Typer(
    help="Analyse experiments and product events stored in SQL databases.", no_args_is_help=True, add_completion=False
)

# Options several commands take, declared once.
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database", help="Database URL (default: $WORKBENCH_DATABASE_URL, workbench.yml, then data/workbench.duckdb)."
    ),
]
IncrementalOption = Annotated[
    bool,
    typer.Option(
        "--incremental",
        help="Update the experiment's state from the rows since the last run, then read it (default: the entry's incremental).",
    ),
]
FullRefreshOption = Annotated[
    bool,
    typer.Option("--full-refresh", help="Rebuild the experiment's incremental state from every row, then read it."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Project config file (default: $WORKBENCH_CONFIG, then workbench.yml in the project root)."
    ),
]


@app.callback()
def _every_command() -> None:
    """Analyse experiments and product events stored in SQL databases."""
    import signal

    warnings.showwarning = _show_warning

    # SIGTERM (kill, cron or systemd stopping a run) unwinds like Ctrl-C: report kernels are shut
    # down and temporary files removed instead of left behind.
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: object) -> NoReturn:
    import logging

    # The cell the kernel was running is abandoned with its kernel: its task's DeadKernelError is
    # expected, and asyncio would print it as a traceback ("exception was never retrieved").
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    raise SystemExit(128 + signum)


_PYTHON_SHOWWARNING = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Workbench's own warnings as one ``warning:`` sentence on stderr, not Python's source line."""
    if category.__module__.startswith("workbench."):
        typer.echo(f"warning: {redact(str(message))}", err=True)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


def fail(error: BaseException | str) -> NoReturn:
    """Print one redacted sentence on stderr and exit with status 1."""
    typer.echo(f"error: {redact(error)}", err=True)
    raise typer.Exit(1)


def say(message: str) -> None:
    """Print a line for the user on stdout."""
    typer.echo(message)


@contextmanager
def opened_database(url: str | None, read_only: bool = True) -> Iterator[SqlDatabase]:
    """``connect(url)`` for one command, always disposed (DuckDB's bindings complain about
    connections still open at interpreter exit); a ``WorkbenchError`` ends the command cleanly."""
    from workbench.db.connection import connect
    from workbench.errors import WorkbenchError

    db = None
    try:
        db = connect(url, read_only=read_only)
        yield db
    except WorkbenchError as exc:
        fail(exc)
    finally:
        if db is not None:
            db.dispose()
