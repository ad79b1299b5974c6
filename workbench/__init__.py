"""workbench: analyse experiments and product events stored in SQL databases, from notebooks.

The first cell of any notebook is ``import workbench as wb; db = wb.connect()``.
Heavy modules are imported lazily so that ``import workbench`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from workbench.db import Database  # a protocol: connect() returns a SqlDatabase
from workbench.db.connection import connect
from workbench.errors import WorkbenchError

# name -> module that defines it, imported on first use
_LAZY = {"analyze": "workbench.experiments.analysis", "load_config": "workbench.experiments.config"}

__all__ = ["Database", "WorkbenchError", "connect", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
