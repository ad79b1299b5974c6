"""``reports/index.html``, the page that never lies: per experiment its decision, its health, its
last successful run and, in red, a failed last run (with its one-sentence error) or a stale one —
no successful run within its schedule. The schedule is what ``workbench run-reports --every``
recorded in the experiment's ``status.json`` (``every_hours``); a report with none recorded is
never called stale.

A row is stale once ``now`` passes its ``stale_at`` = last successful run + ``every_hours`` ×
(1 + :data:`STALE_GRACE`). The page is static, so the same deadline is also written into the row
and a few lines of script mark it stale when the page is viewed after it: an index a stopped
scheduler no longer rewrites turns red by itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
from pathlib import Path

from workbench import paths
from workbench.display import BACKGROUNDS, NOTICE, missing
from workbench.errors import WorkbenchError
from workbench.files import atomic_write

STALE_GRACE = 0.1  # a run may finish this share of its schedule late (its batch's own run time)
OVERVIEW = Path("overview") / "overview.html"  # where `workbench overview` writes the data overview
# state colours as classes, so the script can turn a row stale
_STATE_CSS = (
    f".wb-state-ok{{background:{BACKGROUNDS['better']}}}"
    f".wb-state-failed,.wb-state-stale{{background:{BACKGROUNDS['worse']}}}"
)
# marks rows stale when the page is viewed after their deadline (the text comes from the row)
_STALE_SCRIPT = """<script>
for (const row of document.querySelectorAll("tr[data-stale-at]")) {
  const cell = row.querySelector(".wb-state");
  if (cell.dataset.state === "ok" && Date.now() >= Date.parse(row.dataset.staleAt)) {
    cell.dataset.state = "stale"; cell.className = "wb-state wb-state-stale"; cell.textContent = row.dataset.staleText;
  }
}
</script>"""


def read_status(folder: Path) -> dict:
    """``folder/status.json`` ({} when missing or unreadable)."""
    try:
        return json.loads((folder / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_status(folder: Path, status: dict) -> None:
    """Replace ``folder/status.json`` with ``status`` atomically (an ``OSError`` on a full disk
    leaves the old one whole)."""
    atomic_write(folder / "status.json", json.dumps(status, indent=1, default=str))


def record_schedule(keys: list[str], every_hours: float, reports_dir: Path | None = None) -> None:
    """Record in each of ``keys``' ``status.json`` that its reports run every ``every_hours`` hours
    (a status that cannot be rewritten, on a full disk, keeps its old schedule)."""
    if not every_hours > 0:
        raise WorkbenchError(f"The schedule must be a positive number of hours, not {every_hours!r}.")
    root = Path(reports_dir or paths.reports_dir())
    for key in keys:
        status = read_status(root / key)
        if status:
            status["every_hours"] = every_hours
            with contextlib.suppress(OSError):
                write_status(root / key, status)


def run_time(stem: str) -> dt.datetime:
    """The UTC time a run's file stem (``YYYYMMDD-HHMMSS``, maybe ``-2``) names."""
    return dt.datetime.strptime(stem[:15], "%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC)


def stale_at(status: dict) -> dt.datetime | None:
    """When the experiment of ``status`` turns stale; None without a schedule or a successful run."""
    every, good = status.get("every_hours"), status.get("last_good_run")
    if not every or not good:
        return None
    return run_time(good) + dt.timedelta(hours=float(every) * (1 + STALE_GRACE))


def _shown_time(stem: str) -> str:
    return run_time(stem).strftime("%Y-%m-%d %H:%M UTC")


def _state(status: dict, now: dt.datetime) -> tuple[str, str]:
    """(state, sentence): "failed" with the error, "stale" past the schedule, "ok", or "not run"."""
    state = status.get("status", "not run")
    if state == "failed":
        return "failed", f"failed: {status.get('error', '')}"
    deadline = stale_at(status)
    if state == "ok" and deadline is not None and now >= deadline:
        return "stale", _stale_text(status)
    return state, state


def _stale_text(status: dict) -> str:
    good = status.get("last_good_run")
    since = _shown_time(good) if good else "ever"
    return f"stale: no successful run since {since}, scheduled every {float(status['every_hours']):g} h"


def _cached(folder: Path):
    """The experiment's cached results (None when it has none)."""
    from workbench.reports.data import load_report_cache

    try:
        return load_report_cache(folder / "cache").results
    except (OSError, ValueError, WorkbenchError):
        return None


def key_results(results) -> str:
    """The goal metrics' overall effects of ``results`` as one line."""
    settings, t = results.settings, results.table
    chosen = t[
        t["metric"].isin(settings.goal_metrics)
        & (t["dimension"] == "overall")
        & (t["variation"] != settings.control)
        & t["relative_effect"].notna()
    ]
    parts = []
    for r in chosen.to_dict("records"):
        p = r["p_value_adjusted"] if settings.correction != "none" else r["p_value"]
        sure = (
            f"p {p:.2g}"
            if not missing(p)
            else (f"chance to win {r['chance_to_win']:.0%}" if not missing(r["chance_to_win"]) else "")
        )
        parts.append(f"{r['metric']} {results.labels.variation(r['variation'])}: {r['relative_effect']:+.1%} ({sure})")
    return "; ".join(parts)


def _cell(text: str, colour: str = "", cls: str = "", extra: str = "") -> str:
    style = f' style="background:{colour}"' if colour else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}{style}{extra}>{text}</td>"


def _row(key: str, root: Path, now: dt.datetime) -> str:
    status = read_status(root / key)
    results = _cached(root / key)
    name = html.escape(key)
    good = status.get("last_good_run")
    link = f'<a href="{name}/latest.html">{name}</a>' if status.get("last_good_html") else name
    if results is None:
        decision = _cell("no report yet")
        health = _cell("")
        effects = ""
    else:
        d = results.decision
        why = f"<br><small>{html.escape(d.reasons[0])}</small>" if d.reasons else ""
        decision = _cell(f"<b>{html.escape(d.label)}</b>{why}", BACKGROUNDS.get(d.tone, NOTICE), "wb-decision")
        warnings = results.health.warnings
        health = (
            _cell("⚠ " + html.escape(warnings[0]), BACKGROUNDS["worse"], "wb-health")
            if warnings
            else _cell("healthy", BACKGROUNDS["better"], "wb-health")
        )
        effects = html.escape(key_results(results))
    state, sentence = _state(status, now)
    state_cell = _cell(
        html.escape(sentence), "", f"wb-state wb-state-{state.replace(' ', '-')}", f' data-state="{state}"'
    )
    deadline = stale_at(status)
    stale = (
        f' data-stale-at="{deadline.isoformat()}" data-stale-text="{html.escape(_stale_text(status))}"'
        if deadline
        else ""
    )
    return (
        f'<tr data-key="{name}"{stale}><td>{link}</td>{decision}{health}'
        f"<td>{html.escape(_shown_time(good)) if good else 'never'}</td>{state_cell}<td>{effects}</td></tr>"
    )


def write_index(reports_dir: Path | None = None, keys: list[str] | None = None) -> Path:
    """``reports/index.html``: every experiment with a report folder (and every key in ``keys``),
    linked by name to its latest report, with its decision, health, last successful run, state
    (ok, failed with its error, stale past its schedule) and goal-metric effects, and a link to the
    data overview; a write that fails (a full disk) leaves the old index whole and raises one sentence."""
    from workbench.reports.notebooks import output_error

    root = Path(reports_dir or paths.reports_dir())
    root.mkdir(parents=True, exist_ok=True)
    names = sorted({p.parent.name for p in root.glob("*/status.json")} | set(keys or []))
    now = dt.datetime.now(dt.UTC)
    rows = "".join(_row(key, root, now) for key in names)
    overview = (
        f'<a href="{OVERVIEW.as_posix()}">the data overview</a>'
        if (root / OVERVIEW).is_file()
        else "no data overview yet (run <code>workbench overview</code>)"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Experiment reports</title><style>body{font-family:sans-serif;margin:2em}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
        f"{_STATE_CSS}</style></head><body>"
        f"<h1>Experiment reports</h1><p>Updated {now:%Y-%m-%d %H:%M UTC}. What is in the database: {overview}.</p>"
        "<table><thead><tr><th>experiment</th><th>decision</th><th>health</th><th>last successful run</th><th>state</th>"
        f"<th>key results (goal metrics, overall)</th></tr></thead><tbody>{rows}</tbody></table>{_STALE_SCRIPT}</body></html>"
    )
    index = root / "index.html"
    try:
        atomic_write(index, page)
    except OSError as exc:
        raise output_error(exc, root) from None
    return index
