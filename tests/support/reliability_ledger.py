"""The reliability ledger: each reliability test records what it tried and what held, and the
session ends with one table of them (printed, written to ``test-artifacts/reliability.md`` and, when
``WORKBENCH_RELIABILITY_DOC`` names a file, spliced into that file between its table markers)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/support/ is two levels down
TABLE_START = "<!-- reliability-table:start -->"
TABLE_END = "<!-- reliability-table:end -->"


@dataclass(frozen=True)
class Trial:
    """One line of the table: the area (e.g. "Secrets"), what was tried, and what held (with figures)."""

    area: str
    tried: str
    held: str


_TRIALS: list[Trial] = []


@pytest.fixture
def ledger():
    """``ledger(area, tried, held)`` records a trial; call it after the test's assertions passed."""

    def record(area: str, tried: str, held: str) -> None:
        _TRIALS.append(Trial(area, tried, held))

    return record


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def reliability_table(trials: list[Trial], failed: list[str]) -> str:
    """The ledger as a Markdown table, sorted by area; failed reliability tests are rows too."""
    lines = ["| Area | Tried | Held |", "|---|---|---|"]
    for trial in sorted(trials, key=lambda t: t.area):
        lines.append(f"| {_cell(trial.area)} | {_cell(trial.tried)} | {_cell(trial.held)} |")
    for nodeid in failed:
        lines.append(f"| FAILED | {_cell(nodeid)} | **did not hold** (see the test output) |")
    return "\n".join(lines) + "\n"


def splice_table(doc: Path, table: str) -> None:
    """Replace the text between the table markers of ``doc`` with ``table``."""
    text = doc.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"{doc} has no {TABLE_START} … {TABLE_END} markers for the reliability table")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    doc.write_text(f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    failed = [r.nodeid for r in terminalreporter.stats.get("failed", []) if "reliability/" in r.nodeid]
    if not _TRIALS and not failed:
        return
    table = reliability_table(_TRIALS, failed)
    terminalreporter.section("reliability: what was tried and what held")
    terminalreporter.write(table)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "reliability.md").write_text(table)
    doc = os.environ.get("WORKBENCH_RELIABILITY_DOC")
    if doc:
        splice_table(Path(doc), table)
        terminalreporter.write_line(f"table written to {doc}")
