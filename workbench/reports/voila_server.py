"""Voila's entry point with one repair: no wait on a kernel channel is longer than a second.

Voila 0.5 waits for each cell's ``execute_reply`` with ``await socket.poll()`` and no timeout on a
``zmq.asyncio`` socket (through jupyter_client's ``AsyncZMQSocketChannel.get_msg``). With several
pages rendering at once that poll sometimes misses the socket's edge-triggered wake-up: the reply
sits in the socket (``zmq.EVENTS`` says POLLIN), the page spins until its kernel is culled
(voila-dashboards/voila#1446). Measured here with 10 viewers at once on 2 cores: 14 pages in 130 hung
with the stock wait (ipykernel 6 and 7, pyzmq 26 and 27 alike), 0 in 180 with sliced waits.

:func:`sliced_get_msg` replaces ``get_msg``: the same contract (a message, or ``queue.Empty`` once
``timeout`` seconds pass; ``None`` waits for ever), built from polls of at most
:data:`POLL_SLICE_SECONDS`, so a missed wake-up costs at most that long. Run as
``python -m workbench.reports.voila_server <voila arguments>`` (what :func:`workbench.reports.dashboard.voila_command`
builds).

It also enforces the dashboard's access rules (:class:`DashboardVoila`): a token, taken from
``$WORKBENCH_DASHBOARD_TOKEN`` and removed from the environment before any kernel starts, guards the
page, the kernel websockets and Voila's REST routes; beyond loopback the server refuses to start
without one; a token given in the URL is exchanged for the login cookie and dropped from the address;
request logs never show it; the HTML reports under ``reports/`` are served behind the same login
(:class:`ReportFileHandler`). :class:`CappedKernelManager` serves at most ``max_kernels`` viewers at once,
and one viewer more gets a one-sentence "busy" page (HTTP 503) instead of a kernel; Voila keeps one
kernel warm ahead of the next viewer (``--preheat_kernel``), outside that count.
"""

from __future__ import annotations

import html
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any
from urllib.parse import urlencode

import tornado.web
import voila.app
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.log import log_request
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from traitlets import Integer
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler
from voila.voila_kernel_manager import voila_kernel_manager_factory

from workbench import paths
from workbench.errors import WorkbenchError
from workbench.reports.dashboard import MAX_KERNELS, PREHEAT_ENV, TOKEN_ENV, check_access

POLL_SLICE_SECONDS = 1.0
RETRY_AFTER_SECONDS = 60
REPORT_FILES = (".html", ".js", ".css")
# Where a warm kernel dials the server for its viewer's request (voila.utils.wait_for_request; default 127.0.0.1)
APP_IP_ENV = "VOILA_APP_IP"  # pages and the shared plotly.js and stylesheet they link


async def sliced_get_msg(self, timeout: float | None = None) -> dict[str, Any]:
    """The next message of the channel ``self``; ``queue.Empty`` after ``timeout`` seconds
    (``None``: no limit). Each poll lasts at most :data:`POLL_SLICE_SECONDS`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = (
            POLL_SLICE_SECONDS if deadline is None else max(0.0, min(POLL_SLICE_SECONDS, deadline - time.monotonic()))
        )
        if await self.socket.poll(int(left * 1000)):
            return await self._recv()
        if deadline is not None and time.monotonic() >= deadline:
            raise Empty


def install() -> None:
    """Make every asyncio kernel channel of this process wait in slices, and Voila build its kernel
    manager with :func:`kernel_manager_factory`."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    AsyncZMQSocketChannel.get_msg = sliced_get_msg  # type: ignore[method-assign]
    voila.app.voila_kernel_manager_factory = kernel_manager_factory


class DashboardBusy(tornado.web.HTTPError):
    """HTTP 503: every kernel the dashboard may run is taken."""

    def __init__(self, max_kernels: int) -> None:
        super().__init__(
            503,
            f"The dashboard is busy: it already serves {max_kernels} viewers, the most it runs at once; "
            "please try again in a few minutes.",
        )


class CappedKernelManager(AsyncMappingKernelManager):
    """Voila's kernel manager, serving at most ``max_kernels`` viewers at once (kernels still starting
    included); one viewer more raises :class:`DashboardBusy` without starting anything. Kernels Voila
    starts ahead of any request (its pre-heated pool, started with ``VOILA_PREHEAT=True``) are not
    viewers until one claims them (:meth:`claimed`), so the server runs at most ``max_kernels``
    viewers' kernels plus the pool's."""

    max_kernels = Integer(MAX_KERNELS, config=True, help="Kernels (viewers) running at once, at most.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._starting: set[str] = set()
        self._warm: set[str] = set()  # started for the pool; no viewer has claimed them yet
        self._claiming = 0  # viewers being handed a warm kernel

    def viewers(self) -> int:
        """Kernels serving viewers: running or starting, less the unclaimed warm ones, plus the
        claims in progress."""
        return len((set(self.list_kernel_ids()) | self._starting) - self._warm) + self._claiming

    def admit(self) -> None:
        """Raise :class:`DashboardBusy` when ``max_kernels`` viewers are served or starting."""
        if self.viewers() >= self.max_kernels:
            self.log.warning("Refused a viewer: %d viewers' kernels are running, the most allowed.", self.max_kernels)
            raise DashboardBusy(self.max_kernels)

    async def claimed(self, claim: Callable[[], Awaitable[tuple]]) -> tuple:
        """A viewer admitted (:meth:`admit`) onto a warm kernel: ``claim()`` (Voila's hand-over,
        whose result ends with the kernel's id) counted as a viewer from the start."""
        self.admit()
        self._claiming += 1
        try:
            handed = await claim()
        finally:
            self._claiming -= 1
        self._warm.discard(handed[-1])
        return handed

    async def start_kernel(self, *args: Any, kernel_id: str | None = None, **kwargs: Any) -> str:
        """A new kernel's id, or :class:`DashboardBusy` when ``max_kernels`` viewers are served or
        starting (never for the pool's kernels). A starting kernel is counted by its id, once,
        whether or not the manager lists it yet."""
        if kernel_id is not None and kernel_id in self:  # an existing kernel, reused
            return await super().start_kernel(*args, kernel_id=kernel_id, **kwargs)
        warm = (kwargs.get("env") or {}).get(PREHEAT_ENV) == "True"
        if not warm:
            self.admit()
        kernel_id = kernel_id or str(uuid.uuid4())
        self._starting.add(kernel_id)  # before the first await, so concurrent requests cannot overshoot
        if warm:
            self._warm.add(kernel_id)
        try:
            return await super().start_kernel(*args, kernel_id=kernel_id, **kwargs)
        except BaseException:
            self._warm.discard(kernel_id)
            raise
        finally:
            self._starting.discard(kernel_id)


def _ready(task: Any) -> bool:
    """Whether a task of Voila's kernel pool has started its kernel and notebook."""
    return task.done() and not task.cancelled() and task.exception() is None


def kernel_manager_factory(base: type, preheat_kernel: bool, default_pool_size: int, **kwargs: Any) -> type:
    """Voila's kernel-manager factory (``voila_kernel_manager_factory``), with every hand-over of a
    pre-heated kernel to a viewer admitted by :meth:`CappedKernelManager.claimed`."""
    made = voila_kernel_manager_factory(base, preheat_kernel, default_pool_size, **kwargs)
    if not preheat_kernel:
        return made

    class WarmKernelManager(made):  # type: ignore[misc, valid-type]
        def get_pool_size(self, notebook_name: str) -> int:
            """The pool's kernels that are started and running the notebook: a viewer is handed
            one of these or gets a kernel of its own, never waits on a refill still starting
            (Voila counts those too, so a burst of viewers queued behind the refills)."""
            return sum(1 for task in self._pools.get(notebook_name, ()) if _ready(task))

        async def get_rendered_notebook(self, notebook_name: str, *args: Any, **kw: Any) -> tuple:
            pool = self._pools.get(notebook_name, [])
            pool.sort(key=lambda task: not _ready(task))  # Voila hands over the first: a ready one
            return await self.claimed(
                lambda: super(WarmKernelManager, self).get_rendered_notebook(notebook_name, *args, **kw)
            )

    return WarmKernelManager


class DashboardHandler(TornadoVoilaHandler):
    """Voila's page: a ``?token=`` that authenticated (and set the login cookie) is dropped from the
    address by a redirect, so it reaches neither the kernel's environment nor the browser's history;
    :class:`DashboardBusy` is answered with its sentence."""

    @tornado.web.authenticated
    async def get(self, path: str | None = None) -> None:
        """The rendered dashboard, or a redirect to the same address without ``token``."""
        if "token" in self.request.query_arguments:
            kept = {k: v for k, v in self.request.query_arguments.items() if k != "token"}
            query = urlencode([(k, value.decode()) for k, values in kept.items() for value in values])
            self.redirect(self.request.path + (f"?{query}" if query else ""))
            return
        await super().get(path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A plain page with the sentence of :class:`DashboardBusy`; Voila's error page otherwise."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(error, DashboardBusy):
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self.write(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Dashboard busy</title></head>"
            f"<body><p>{html.escape(error.log_message or '')}</p></body></html>"
        )


class ReportFileHandler(JupyterHandler, tornado.web.StaticFileHandler):
    """``/reports/<path>``: the HTML reports under ``reports/`` (the dashboard links each
    experiment's ``latest.html``) and the shared files they link, for viewers past the same login as
    the dashboard; anything else there (notebooks, caches, status) is 404."""

    @tornado.web.authenticated
    async def get(self, path: str, include_body: bool = True) -> None:
        """The file at ``path`` under ``reports/`` when it ends in one of :data:`REPORT_FILES`."""
        if not path.endswith(REPORT_FILES):
            raise tornado.web.HTTPError(404)
        await tornado.web.StaticFileHandler.get(self, path, include_body)


def reachable_host(ip: str) -> str:
    """The host a kernel on this machine dials to reach a server bound to ``ip`` (a URL's host part):
    loopback for the wildcard addresses, an IPv6 address in brackets."""
    if ip in ("", "0.0.0.0"):
        return "127.0.0.1"
    if ip == "::":
        return "[::1]"
    return f"[{ip}]" if ":" in ip else ip


class DashboardVoila(Voila):
    """Voila with the dashboard's access rules: at most ``--CappedKernelManager.max_kernels`` kernels,
    the token from :data:`TOKEN_ENV`, a refusal to bind beyond loopback without one,
    :class:`DashboardHandler` for the page and scrubbed request logs."""

    def initialize(self, argv: list[str] | None = None) -> None:
        """Voila's set-up, then :class:`CappedKernelManager`, the token out of the environment (kernels
        inherit it) and the checks."""
        super().initialize(argv)
        self.voila_configuration.multi_kernel_manager_class = CappedKernelManager
        token = os.environ.pop(TOKEN_ENV, "")
        if token:
            self.token = token
        try:
            check_access(self.ip, self.token)
        except WorkbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            self.exit(1)
        self.tornado_settings = {**self.tornado_settings, "log_function": log_request}
        os.environ[APP_IP_ENV] = reachable_host(self.ip)  # read by the warm kernels, which inherit it

    def init_handlers(self) -> list:
        """Voila's routes with :class:`DashboardHandler` in place of its page handler, after
        :class:`ReportFileHandler` (before Voila's catch-all page route)."""
        reports = (
            url_path_join(self.server_url, r"/reports/(.*)"),
            ReportFileHandler,
            {"path": str(paths.reports_dir())},
        )
        return [reports] + [
            (route[0], DashboardHandler, *route[2:]) if route[1] is TornadoVoilaHandler else route
            for route in super().init_handlers()
        ]


def main() -> int:
    """:class:`DashboardVoila` with :func:`install` applied first; arguments from ``sys.argv``."""
    install()
    return DashboardVoila.launch_instance() or 0


if __name__ == "__main__":
    sys.exit(main())
