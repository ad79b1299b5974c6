"""Which database to use and how: from an argument, the environment, ``.env`` or ``workbench.yml``.

Precedence for the URL: explicit argument > ``$WORKBENCH_DATABASE_URL`` > ``database.url`` in the
config file > the embedded DuckDB file ``data/workbench.duckdb``. A password (a Spark Connect
token) may come from the URL in the environment or from ``$WORKBENCH_DATABASE_PASSWORD``
(environment or the git-ignored ``.env``), never from the config file, which is under version
control. Spark Connect's own ``sc://host:port`` is held as ``spark+connect://host:port``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from dotenv import dotenv_values

from workbench import paths
from workbench.config_file import database_section
from workbench.db.dialects import DIALECTS, IDENTIFIER
from workbench.errors import ConfigError, shown
from workbench.redaction import register_secret

URL_ENV = "WORKBENCH_DATABASE_URL"
PASSWORD_ENV = "WORKBENCH_DATABASE_PASSWORD"
DEFAULT_STATEMENT_TIMEOUT_S = 600.0
DEFAULT_DUCKDB_MEMORY_LIMIT = "4GB"
DEFAULT_DUCKDB_THREADS = 2
MEMORY_LIMIT = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)\s*\Z", re.IGNORECASE)  # DuckDB's sizes: 512MB, 4GB, 1.5GiB
_URL_HELP = "use " + " or ".join(d.url_example for d in DIALECTS.values() if d.url_example)


@dataclass(frozen=True)
class DatabaseSettings:
    """A resolved database target. ``url`` carries the password; show only ``display_url``."""

    url: sa.URL
    source: str
    statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    duckdb_threads: int = DEFAULT_DUCKDB_THREADS
    allow_privileged_role: bool = False  # analyse as a PostgreSQL superuser (or a role that reaches server files)
    spark_tables: tuple[tuple[str, str], ...] = ()  # Spark: (view name, Parquet folder or file as the server sees it)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"DatabaseSettings(url={self.display_url!r}, source={self.source!r})"


def environment_value(name: str) -> str | None:
    """``$name`` from the environment, else from the project's ``.env`` file."""
    if name in os.environ:
        return os.environ[name]
    env_file = paths.dotenv_path()
    if env_file.is_file():
        value = dotenv_values(env_file).get(name)
        return value if value else None
    return None


def parse_url(text: str, source: str) -> sa.URL:
    """A SQLAlchemy URL for ``text``, normalised to a driver we ship; errors never echo a password."""
    try:
        url = sa.make_url(text.strip())
    except Exception:
        raise ConfigError(f"{source} is not a database URL: {_URL_HELP}.") from None
    register_secret(url.password)
    aliases = {alias: name for d in DIALECTS.values() for alias, name in d.url_aliases}
    if url.drivername in aliases:
        url = _spark_connect_url(url.set(drivername=aliases[url.drivername]), source)
    backend = url.get_backend_name()
    dialect = DIALECTS.get(backend)
    if dialect is not None and dialect.url_example is not None:
        driver = url.drivername.partition("+")[2] or backend
        if dialect.url_drivers and driver not in dialect.url_drivers:
            raise ConfigError(f"{source} asks for the {dialect.title} driver {driver!r}; {_URL_HELP}.")
        return url.set(drivername=dialect.url_drivername) if dialect.url_drivername else url
    raise ConfigError(
        f"{source} names the unsupported database {backend!r} ({url.render_as_string(hide_password=True)}): {_URL_HELP}."
    )


def _spark_connect_url(url: sa.URL, source: str) -> sa.URL:
    """Spark Connect's ``sc://host:port/;key=value;…`` with its parameters (``use_ssl``, ``user_id``…)
    moved into the URL's query; a token in the URL is refused, since URLs are shown and logged."""
    params = dict(part.partition("=")[::2] for part in (url.database or "").split(";") if part.strip("/ "))
    if "token" in params:
        register_secret(params["token"])
        raise ConfigError(
            f"{source} holds a Spark Connect token: remove ;token=… from the URL and set {PASSWORD_ENV} "
            "in the environment or the git-ignored .env file."
        )
    return url.set(database=None, query={**url.query, **params})


def resolve_database(url: str | None = None, config_path: Path | None = None) -> DatabaseSettings:
    """Work out which database to open, with which password and limits."""
    cfg_path = config_path or paths.config_path()
    section = database_section(cfg_path)
    if url:
        parsed, source = parse_url(url, "the database URL argument"), "argument"
    elif env_url := environment_value(URL_ENV):
        parsed, source = parse_url(env_url, URL_ENV), URL_ENV
    elif section.get("url"):
        parsed, source = parse_url(str(section["url"]), f"{cfg_path} database.url"), str(cfg_path)
        if parsed.password:
            raise ConfigError(
                f"{cfg_path}: database.url holds a password, and this file is under version control; "
                f"remove it and set {PASSWORD_ENV} in the environment or the git-ignored .env file."
            )
    else:
        parsed, source = sa.URL.create("duckdb", database=str(paths.default_duckdb_path())), "default"
    dialect = DIALECTS[parsed.get_backend_name()]
    if not dialect.embedded and not parsed.password and (password := environment_value(PASSWORD_ENV)):
        register_secret(password)
        parsed = parsed.set(password=password)
    if dialect.embedded and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).expanduser().resolve()))
    timeout = section.get("statement_timeout_seconds", DEFAULT_STATEMENT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < 10**9:
        raise ConfigError(
            f"{cfg_path}: database.statement_timeout_seconds must be a number of seconds ≥ 0 (0: no limit), not {shown(timeout)}."
        )
    threads = section.get("duckdb_threads", DEFAULT_DUCKDB_THREADS)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
        raise ConfigError(
            f"{cfg_path}: database.duckdb_threads must be a whole number of threads ≥ 1, such as 2, not {shown(threads)}."
        )
    memory = section.get("duckdb_memory_limit", DEFAULT_DUCKDB_MEMORY_LIMIT)
    if not isinstance(memory, str) or not MEMORY_LIMIT.match(memory):
        raise ConfigError(
            f"{cfg_path}: database.duckdb_memory_limit must be a size such as 4GB or 512MB, not {shown(memory)}."
        )
    allow_privileged = section.get("allow_privileged_role", False)
    if not isinstance(allow_privileged, bool):
        raise ConfigError(
            f"{cfg_path}: database.allow_privileged_role must be true or false, not {shown(allow_privileged)}."
        )
    return DatabaseSettings(
        spark_tables=_spark_tables(section.get("spark_tables", {}), cfg_path),
        url=parsed,
        source=source,
        statement_timeout_s=float(timeout),
        duckdb_memory_limit=memory.strip(),
        duckdb_threads=threads,
        allow_privileged_role=allow_privileged,
    )


def _spark_tables(value: object, cfg_path: Path) -> tuple[tuple[str, str], ...]:
    """``database.spark_tables``: table name -> Parquet folder or file, as the Spark server sees it."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and IDENTIFIER.match(k) and isinstance(v, str) and v.strip() for k, v in value.items()
    ):
        raise ConfigError(
            f"{cfg_path}: database.spark_tables must map table names to Parquet paths, such as "
            f"{{orders: /data/orders.parquet}}, not {shown(value)}."
        )
    return tuple((name, path.strip()) for name, path in value.items())
