"""Run commands, notebooks and Voila with ``audit_hook/`` on ``PYTHONPATH``: its sitecustomize wraps
``workbench.connect`` in every Python process (kernels included) and logs each session opened, with
the fate of a write attempted through each read-only one."""

from __future__ import annotations

import json
import os
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parent / "audit_hook"


def audit_env(log: Path) -> dict[str, str]:
    """Environment entries that turn the audit on for child processes, logging to ``log``."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{HOOK_DIR}{os.pathsep}{path}" if path else str(HOOK_DIR), "WB_CONNECT_AUDIT": str(log)}


def audit_entries(log: Path) -> list[dict]:
    """The sessions logged so far (none when nothing connected)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
