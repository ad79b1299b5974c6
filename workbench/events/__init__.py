"""Grouparoo-style events (seed 001): ingestion that loses nothing, identity resolution, profile
properties and exploration, in the schema named by ``events.schema`` (default ``grouparoo``).

Heavy modules load on first use so that ``import workbench.events`` stays fast.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ingest": "workbench.events.ingest",
    "resolve_identities": "workbench.events.identities",
    "profile_properties": "workbench.events.properties",
    "event_catalogue": "workbench.events.explore",
    "event_counts": "workbench.events.explore",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench.events' has no attribute {name!r}")
