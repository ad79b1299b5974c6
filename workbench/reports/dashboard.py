"""The experiment dashboard (served by Voila from ``notebooks/dashboard.ipynb``): experiment
picker, metric-group tabs, segment selector, the decision with the health banner, interval chart with a "highlight
significant" toggle, cumulative effect chart and a results table with hover details.

It reads the cached results of ``reports/<key>/cache/`` (written by ``workbench report`` and
``workbench run-reports``), so it answers at once; "Refresh" recomputes one experiment from the
database and rewrites its cache. Everything it shows is HTML widgets, the charts inline SVG
(:mod:`workbench.reports.svg_charts`): a pick replaces their values, and Voila loads only the
widget extensions (:data:`EXTENSIONS`), not plotly.js.
"""

from __future__ import annotations

import html
import ipaddress
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from workbench import paths
from workbench.display import NEUTRAL, WORSE, decision_and_health_html, header_html
from workbench.errors import WorkbenchError
from workbench.reports.data import ReportData, cache_dir, load_report_cache
from workbench.reports.tables import GROUPS

DEFAULT_PORT = 8866
CULL_IDLE_MINUTES = 5.0
CULL_INTERVAL_SECONDS = 60  # the longest wait between two checks for idle kernels
MAX_KERNELS = 10  # viewers served at once, one kernel each (≈190 MB): the 10 of tests/reliability/test_load.py
# kernels Voila keeps started ahead of the next viewer, the notebook run up to its wait (`--warm-kernels`);
# a viewer takes one that is ready or starts its own (workbench.reports.voila_server.kernel_manager_factory)
WARM_KERNELS = 1
# How long Voila waits for a cell's outputs after its reply (nbclient's iopub_timeout, default 4 s):
# past it the outputs are dropped, and under load (10 kernels starting on 2 cores) the dashboard's
# widgets were, so a page never drew and its kernel sat idle until culled (2026-12-04)
IOPUB_TIMEOUT_SECONDS = 60
VOILA_ENV = "VOILA_BASE_URL"  # set in every kernel Voila starts (and in no other)
PREHEAT_ENV = "VOILA_PREHEAT"  # "True" in the kernels Voila starts for that pool (voila.utils.ENV_VARIABLE)
TOKEN_ENV = "WORKBENCH_DASHBOARD_TOKEN"
TOKEN_PATTERN = re.compile(r"[!-~]{16,}")  # at least 16 printable ASCII characters, no spaces
# templates/voila/templates/workbench_dashboard: Voila's lab template without its CDN stylesheet links
TEMPLATE = "workbench_dashboard"
FIRST_SCREEN = "wb-first-screen"  # class of the static first screen (Dashboard.first_screen_html)
FIRST_SCREEN_MIME = "application/vnd.workbench.first-screen+html"  # its output's type, which TEMPLATE draws
RESULTS_VIEW = "wb-results-view"  # class of the results widget: once drawn, TEMPLATE removes the first screen
# the only JupyterLab extensions the page loads (Voila's allowlist): the widgets; plotly's alone was 4.8 MB evaluated
# on every page, and the results widget drew at 2.0-2.3 s without it against 2.9-3.4 s with it (2026-12-04)
EXTENSIONS = ("@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8")


def warm_up() -> None:
    """Run once what the first draw runs the first time, which a kernel pays for on its first page:
    the imports (pandas, the statistics, the charts, pyarrow's Parquet reader)."""
    import ipywidgets  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import workbench.reports.svg_charts
    import workbench.reports.tables
    import workbench.stats  # noqa: F401


def wait_for_viewer() -> None:
    """In a kernel Voila keeps warm (:data:`PREHEAT_ENV`), :func:`warm_up`, then wait until a
    viewer's request claims the kernel, so the cached results are read when a page is asked for,
    not when the kernel started. Anywhere else (JupyterLab, papermill) return at once."""
    if os.environ.get(PREHEAT_ENV) != "True":
        return
    warm_up()
    from voila.utils import wait_for_request

    wait_for_request()


def cached_keys(reports_dir: Path | None = None) -> list[str]:
    """Experiments with cached results under ``reports_dir``, sorted."""
    root = Path(reports_dir or paths.reports_dir())
    return sorted(p.parent.parent.name for p in root.glob("*/cache/results.json"))


def is_loopback(ip: str) -> bool:
    """Whether binding ``ip`` serves this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def check_access(ip: str, token: str | None) -> None:
    """Raise :class:`WorkbenchError` when ``token`` is malformed, or missing while ``ip`` reaches beyond
    this machine; the message never shows the token."""
    if token and not TOKEN_PATTERN.fullmatch(token):
        raise WorkbenchError(
            f"{TOKEN_ENV} must be at least 16 printable characters without spaces: set another one, "
            "or pass --new-token to have one generated."
        )
    if not token and not is_loopback(ip):
        raise WorkbenchError(
            f"Refusing to serve the dashboard on {ip} without a token: set {TOKEN_ENV}, pass --new-token "
            "(printed once), or bind 127.0.0.1."
        )


def dashboard_token(ip: str, new_token: bool = False, environ: Mapping[str, str] | None = None) -> str | None:
    """The token viewers must present: a new random one when ``new_token``, else ``$WORKBENCH_DASHBOARD_TOKEN``
    from ``environ`` (default: this process's environment), else ``None`` (allowed on loopback only;
    :func:`check_access` raises otherwise)."""
    env = os.environ if environ is None else environ
    token = secrets.token_urlsafe(32) if new_token else env.get(TOKEN_ENV, "")
    check_access(ip, token)
    return token or None


def voila_command(
    port: int = DEFAULT_PORT,
    ip: str = "127.0.0.1",
    cull_idle_seconds: int = round(CULL_IDLE_MINUTES * 60),
    cull_interval_seconds: int | None = None,
    max_kernels: int = MAX_KERNELS,
    warm_kernels: int = WARM_KERNELS,
) -> list[str]:
    """The Voila command line (through :mod:`workbench.reports.voila_server`, which stops pages hanging on a
    missed execute reply and enforces the access rules) serving only ``notebooks/dashboard.ipynb``:
    bound to ``ip`` (``--Voila.ip``; a bare ``--ip`` is ignored), sources stripped, tracebacks hidden,
    the page loading nothing from outside the server (:data:`TEMPLATE`; run it with
    :func:`voila_environment`), at most ``max_kernels`` viewers' kernels at once (one more viewer gets
    a "busy" page, HTTP 503) plus ``warm_kernels`` started ahead of the next viewer (Voila's
    pre-heated kernels, the notebook run up to :func:`wait_for_viewer`), each viewer's shut down
    once idle ``cull_idle_seconds``, even while its page is still open (checked every
    ``cull_interval_seconds``; default a quarter of the idle time, at most
    :data:`CULL_INTERVAL_SECONDS`), a cell's outputs awaited up to :data:`IOPUB_TIMEOUT_SECONDS`.
    The token never goes on the command line (``ps`` shows it to every user):
    :func:`voila_environment` passes it."""
    interval = cull_interval_seconds or min(CULL_INTERVAL_SECONDS, max(1, int(cull_idle_seconds) // 4))
    return [
        sys.executable,
        "-m",
        "workbench.reports.voila_server",
        str(paths.notebooks_dir() / "dashboard.ipynb"),
        f"--port={int(port)}",
        f"--Voila.ip={ip}",
        "--no-browser",
        f"--template={TEMPLATE}",
        "--strip_sources=True",
        "--show_tracebacks=False",
        f"--CappedKernelManager.max_kernels={int(max_kernels)}",
        f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_seconds)}",
        f"--MappingKernelManager.cull_interval={int(interval)}",
        "--MappingKernelManager.cull_connected=True",
        f"--VoilaExecutor.iopub_timeout={IOPUB_TIMEOUT_SECONDS}",
        f"--VoilaConfiguration.extension_allowlist={json.dumps(list(EXTENSIONS))}",
        *(["--preheat_kernel=True", f"--pool_size={int(warm_kernels)}"] if warm_kernels > 0 else []),
    ]


def voila_environment(base: Mapping[str, str] | None = None, token: str | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``templates/`` first on ``JUPYTER_PATH``,
    where Voila finds :data:`TEMPLATE`, and ``token`` (when given) in :data:`TOKEN_ENV`, which the
    server takes out of its environment before any kernel starts."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(paths.templates_dir()), env.get("JUPYTER_PATH", "")) if p)
    if token:
        env[TOKEN_ENV] = token
    return env


class Dashboard:
    """The dashboard's widgets and their wiring. ``widget`` is what the notebook displays;
    ``chart_rows`` holds the rows of the interval chart last drawn (for tests and callers)."""

    def __init__(self, reports_dir: Path | str | None = None) -> None:
        import ipywidgets as w

        wait_for_viewer()
        self.reports_dir = Path(reports_dir) if reports_dir else paths.reports_dir()
        self._data: dict[str, ReportData] = {}
        self._unreadable: set[str] = set()  # experiments whose cache could not be read
        keys = cached_keys(self.reports_dir)
        self.experiment = w.Dropdown(options=keys, description="Experiment", layout=w.Layout(width="360px"))
        self.group = w.ToggleButtons(options=list(GROUPS), description="Metrics", style={"button_width": "110px"})
        self.segment = w.Dropdown(
            options=[("all units", ("overall", "all"))], description="Segment", layout=w.Layout(width="360px")
        )
        self.highlight = w.ToggleButton(
            value=False,
            description="Highlight significant",
            icon="star",
            tooltip="Mute results that are not significant",
            layout=w.Layout(width="200px"),
        )
        self.refresh = w.Button(description="Refresh from database", icon="refresh", layout=w.Layout(width="220px"))
        self.status = w.HTML()
        self.banner = w.HTML()
        self.chart = w.HTML()
        self.table = w.HTML()
        self.table.add_class(RESULTS_VIEW)
        self.cumulative = w.HTML()
        self.chart_rows = None
        self.heading = w.HTML(
            "<h2 style='margin:4px 0'>Experiments</h2>"
            if keys
            else "<h2>Experiments</h2><p>No cached results yet: run <code>workbench run-reports</code>, then reload.</p>"
        )
        self.widget = w.VBox(
            [
                self.heading,
                w.HBox([self.experiment, self.refresh]),
                self.status,
                self.banner,
                w.HBox([self.group, self.highlight]),
                self.segment,
                self.chart,
                self.table,
                w.HTML("<h3>Cumulative effect on the goal metrics</h3>"),
                self.cumulative,
            ]
        )
        self.experiment.observe(lambda _: self.show_experiment(), names="value")
        for control in (self.group, self.segment, self.highlight):
            control.observe(lambda _: self.draw_results(), names="value")
        self.refresh.on_click(lambda _: self.recompute())
        if keys:
            self.show_experiment()

    def first_screen_html(self) -> str:
        """The dashboard's first screen as static HTML, shown with the page Voila sends, before its
        scripts load and the widgets draw (it is removed once the results widget, :data:`RESULTS_VIEW`,
        is drawn): the heading, the picked experiment's header, decision and health, and its
        results rows as the widgets first show them."""
        picked = (
            f"<p style='color:{NEUTRAL}'>Experiment <b>{html.escape(self.experiment.value)}</b> · "
            f"{html.escape(self.group.value)} metrics · {html.escape(self.segment.label)} (controls loading…)</p>"
            if self.experiment.value
            else ""
        )
        parts = (self.heading.value, picked, self.status.value, self.banner.value, self.table.value)
        return f'<div class="{FIRST_SCREEN}">{"".join(parts)}</div>'

    def _ipython_display_(self) -> None:
        """Show the widgets after :meth:`first_screen_html` as :data:`FIRST_SCREEN_MIME`, which the
        dashboard's Voila template (:data:`TEMPLATE`) draws as soon as the page arrives and
        JupyterLab, lacking a renderer, leaves out."""
        from IPython.display import display

        display({FIRST_SCREEN_MIME: self.first_screen_html(), "text/plain": ""}, raw=True)
        display(self.widget)

    def data(self, key: str) -> ReportData:
        """The cached results of ``key`` (read once)."""
        if key not in self._data:
            self._data[key] = load_report_cache(cache_dir(key, self.reports_dir))
        return self._data[key]

    def show_experiment(self) -> None:
        """Load the picked experiment: banner with the link to its full report, segment options
        (every value of every cached dimension, as (dimension, value)), results and cumulative chart."""
        from workbench.reports.tables import dimension_values

        key = self.experiment.value
        try:
            data = self.data(key)
        except WorkbenchError as exc:  # e.g. a cache an older workbench wrote: its sentence, the others still shown
            self._unreadable.add(key)
            self.status.value = f"<span style='color:{WORSE}'>{html.escape(str(exc))}</span>"
            self.banner.value = self.table.value = self.chart.value = self.cumulative.value = ""
            return
        self._unreadable.discard(key)
        p = data.provenance
        self.status.value = (
            header_html(data.results)
            + f"<span style='color:{NEUTRAL}'>Control: {html.escape(data.results.labels.variation(data.control))} · computed {html.escape(str(p.get('computed_at')))}"
            f" · data {html.escape(str(p.get('data_window', {}).get('first_exposure_day')))} to {html.escape(str(p.get('data_window', {}).get('last_exposure_day')))}</span>"
        )
        link = self.report_link(self.experiment.value)
        self.banner.value = decision_and_health_html(data.results.decision, data.results.health, link)
        options = [
            ("all units" if dim == "overall" else f"{dim} = {value}", (dim, value))
            for dim, value in dimension_values(data.results)
        ]
        with self.segment.hold_trait_notifications():
            self.segment.options = options
            self.segment.value = ("overall", "all")
        self.draw_results()
        self.draw_cumulative()

    def draw_results(self) -> None:
        """Redraw the interval chart and the table for the current tab, segment and toggle."""
        from workbench.reports.charts import interval_rows
        from workbench.reports.svg_charts import interval_chart_svg
        from workbench.reports.tables import group_table_html

        if not self.experiment.value or self.experiment.value in self._unreadable:
            return
        data = self.data(self.experiment.value)
        rows = interval_rows(data.results, data.intervals, self.group.value, *self.segment.value)
        self.chart_rows = rows
        title = f"{self.group.value.capitalize()} metrics — {self.segment.label}"
        self.table.value = group_table_html(data.results, self.group.value, *self.segment.value)
        self.chart.value = interval_chart_svg(rows, title, self.highlight.value)

    def report_link(self, key: str) -> str:
        """A link to ``key``'s full report, ``reports/<key>/latest.html``, served beside the dashboard
        by :mod:`workbench.reports.voila_server`; outside Voila (JupyterLab, whose server does not
        serve ``reports/``) its path to open by hand; "" when it has none."""
        if not (self.reports_dir / key / "latest.html").is_file():
            return ""
        if VOILA_ENV not in os.environ:
            path = html.escape(f"{self.reports_dir.name}/{key}/latest.html")
            return f' <span class="wb-report-path" style="margin-left:1em;font-weight:normal">full report: <code>{path}</code></span>'
        href = html.escape(f"reports/{quote(key)}/latest.html")
        return f' <a class="wb-report-link" href="{href}" target="_blank" style="margin-left:1em">full report</a>'

    def draw_cumulative(self) -> None:
        """Draw the cumulative effect of each goal metric of the picked experiment."""
        from workbench.reports.svg_charts import cumulative_chart_svg

        data = self.data(self.experiment.value)
        metrics = list(data.cumulative["metric"].unique())
        self.cumulative.value = (
            "".join(cumulative_chart_svg(data.cumulative, metric, labels=data.results.labels) for metric in metrics)
            or "<i>No goal metrics, so no cumulative chart.</i>"
        )

    def recompute(self) -> None:
        """Recompute the picked experiment from the database, rewrite its cache, redraw."""
        from workbench.reports.data import report_data, save_report_cache

        key = self.experiment.value
        if not key:
            return
        self.status.value = f"Recomputing {html.escape(key)} from the database…"
        try:
            old = self.data(key)
            dimensions = ",".join(old.provenance.get("dimensions", [])) or "none"
            fresh = report_data(key, dimension=dimensions, config_path=old.provenance.get("config_file"))
            save_report_cache(fresh, cache_dir(key, self.reports_dir))
        except Exception as exc:  # shown to the user, the dashboard keeps the cached results
            from workbench.redaction import redact

            self.status.value = f"<span style='color:{WORSE}'>Refresh failed: {html.escape(redact(str(exc)))}</span>"
            return
        self._data[key] = fresh
        self.show_experiment()
