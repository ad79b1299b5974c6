"""Progress bars for long work: shown in terminals, silent in executed reports and when asked.

``WORKBENCH_PROGRESS=0`` (set by report runs) disables every bar, so executed notebooks and HTML
stay free of dead widgets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    if os.environ.get("WORKBENCH_PROGRESS", "").lower() in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty()


def progress(items: Iterable[T], **kwargs) -> Iterable[T]:
    """``items`` wrapped in a plain-text tqdm bar when progress is enabled."""
    from tqdm import tqdm  # plain tqdm, never tqdm.auto: widget bars die in executed HTML

    return tqdm(items, disable=not progress_enabled(), file=sys.stderr, **kwargs)


def progress_bar(total: int, **kwargs):
    """A manually updated plain-text bar (``.update(n)``, ``.close()``), or a silent one."""
    from tqdm import tqdm

    return tqdm(total=total, disable=not progress_enabled(), file=sys.stderr, **kwargs)
