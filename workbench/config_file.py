"""Read the project config file (``workbench.yml``) as plain data, with errors naming the file.

The experiment model built from it lives in :mod:`workbench.config`; this module only parses YAML
and reads the ``database`` section, which :mod:`workbench.settings` needs before anything else.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workbench.errors import ConfigError

DATABASE_KEYS = {"url", "statement_timeout_seconds", "duckdb_memory_limit", "duckdb_threads"}


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; an empty mapping when the file does not exist."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}; fix the YAML syntax there.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must hold a mapping of keys (identifier_types:, metrics:, …), not a {type(data).__name__}.")
    return data


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
