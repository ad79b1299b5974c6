"""Read the project config file (``workbench.yml``) as plain data, with errors naming the file.

The experiment model built from it lives in :mod:`workbench.experiments.config`; this module only parses YAML
and reads the ``database`` section, which :mod:`workbench.db.settings` needs before anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workbench.errors import ConfigError

DATABASE_KEYS = {
    "url",
    "statement_timeout_seconds",
    "duckdb_memory_limit",
    "duckdb_threads",
    "allow_privileged_role",
    "spark_tables",
}


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; an empty mapping when the file does not exist."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} line {line}: byte {raw[exc.start]:#04x} is not UTF-8 text; save the file as UTF-8."
        ) from None
    try:
        data = yaml.safe_load(text)
    except ValueError as exc:  # a well-formed but impossible date, e.g. 2026-02-30
        raise ConfigError(
            f"{path}{_date_line(text)}: {exc} (an impossible date or time); write a real day such as 2026-09-25."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        if isinstance(exc, yaml.reader.ReaderError):  # a control character such as NUL
            where = f" line {text[: exc.position].count(chr(10)) + 1}"
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}; fix the YAML syntax there.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the file must hold a mapping of keys (identifier_types:, metrics:, …), not a {type(data).__name__}."
        )
    return data


def _date_line(text: str) -> str:
    """`` line N`` of the first date-like value that is not a real day, else ``""``."""
    import datetime as dt
    import re

    for number, line in enumerate(text.splitlines(), 1):
        for day in re.findall(r"\b(\d{4}-\d{1,2}-\d{1,2})\b", line):
            try:
                dt.date(*map(int, day.split("-")))
            except ValueError:
                return f" line {number}"
    return ""


def config_section(path: Path, name: str, allowed: set[str]) -> dict[str, Any]:
    """The ``name:`` mapping of the config file (empty when absent), holding only ``allowed`` keys."""
    section = read_config_file(path).get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: '{name}' must be a mapping with keys {sorted(allowed)}.")
    unknown = set(section) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)} under '{name}'; allowed: {sorted(allowed)}.")
    return section


def database_section(path: Path) -> dict[str, Any]:
    """The validated ``database:`` mapping of the config file (empty when absent)."""
    return config_section(path, "database", DATABASE_KEYS)
