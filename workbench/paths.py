"""Every path the workbench uses, computed from one project root.

The root is ``$WORKBENCH_HOME`` when set, else the checkout this package lives in (the folder
holding ``pyproject.toml`` and ``sql/``), else the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_ENV = "WORKBENCH_CONFIG"  # the config file every process of a command reads (see config_path)


def project_root() -> Path:
    """The project folder: ``$WORKBENCH_HOME``, the package's checkout, or the working directory."""
    if home := os.environ.get("WORKBENCH_HOME"):
        return Path(home).expanduser().resolve()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "sql").is_dir():
        return checkout
    return Path.cwd()


def source_root() -> Path:
    """The folder holding the shipped ``sql/``, ``notebooks/`` and ``templates/`` folders."""
    return _PACKAGE_DIR.parent


def sql_dir() -> Path:
    return source_root() / "sql"


def notebooks_dir() -> Path:
    return source_root() / "notebooks"


def templates_dir() -> Path:
    return source_root() / "templates"


def data_dir() -> Path:
    """Where the embedded database and other generated data live (git-ignored)."""
    return project_root() / "data"


def reports_dir() -> Path:
    """Where executed notebooks and HTML reports are written (git-ignored)."""
    return project_root() / "reports"


def default_duckdb_path() -> Path:
    return data_dir() / "workbench.duckdb"


def state_path(database: Path) -> Path:
    """The incremental-refresh state file of the DuckDB file ``database``:
    ``data/state/<database stem>.state.duckdb`` (the analysed file itself is never written)."""
    return data_dir() / "state" / f"{database.stem}.state.duckdb"


def config_path() -> Path:
    """The project config file: ``$WORKBENCH_CONFIG`` or ``workbench.yml`` in the project root."""
    if explicit := os.environ.get(CONFIG_ENV):
        return Path(explicit).expanduser().resolve()
    return project_root() / "workbench.yml"


def dotenv_path() -> Path:
    """The git-ignored file of secrets (``WORKBENCH_DATABASE_PASSWORD=…``) in the project root."""
    return project_root() / ".env"


def shown_path(path: str | Path) -> str:
    """``path`` as a page may show it without the machine's folders: relative to the project root
    when inside it, else ``…/<file name>``."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return f"…/{path.name}"
