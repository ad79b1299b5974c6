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
(:class:`ReportFileHandler`). :class:`CappedKernelManager` runs at most ``max_kernels`` kernels at once,
and one viewer more gets a one-sentence "busy" page (HTTP 503) instead of a kernel.
"""

from __future__ import annotations

import html
import os
import sys
import time
import uuid
from queue import Empty
from typing import Any
from urllib.parse import urlencode

import tornado.web
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.log import log_request
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from traitlets import Integer
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

from workbench import paths
from workbench.errors import WorkbenchError
from workbench.reports.dashboard import MAX_KERNELS, TOKEN_ENV, check_access

POLL_SLICE_SECONDS = 1.0
RETRY_AFTER_SECONDS = 60
REPORT_FILES = (".html", ".js", ".css")  # pages and the shared plotly.js and stylesheet they link


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
    """Make every asyncio kernel channel of this process wait in slices."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    AsyncZMQSocketChannel.get_msg = sliced_get_msg  # type: ignore[method-assign]


class DashboardBusy(tornado.web.HTTPError):
    """HTTP 503: every kernel the dashboard may run is taken."""

    def __init__(self, max_kernels: int) -> None:
        super().__init__(
            503,
            f"The dashboard is busy: it already serves {max_kernels} viewers, the most it runs at once; "
            "please try again in a few minutes.",
        )


class CappedKernelManager(AsyncMappingKernelManager):
    """Voila's kernel manager, running at most ``max_kernels`` kernels (those still starting
    included); one start more raises :class:`DashboardBusy` without starting anything."""

    max_kernels = Integer(MAX_KERNELS, config=True, help="Kernels (viewers) running at once, at most.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._starting: set[str] = set()

    async def start_kernel(self, *args: Any, kernel_id: str | None = None, **kwargs: Any) -> str:
        """A new kernel's id, or :class:`DashboardBusy` when ``max_kernels`` are running or starting.
        A starting kernel is counted by its id, once, whether or not the manager lists it yet."""
        if kernel_id is not None and kernel_id in self:  # an existing kernel, reused
            return await super().start_kernel(*args, kernel_id=kernel_id, **kwargs)
        taken = set(self.list_kernel_ids()) | self._starting
        if len(taken) >= self.max_kernels:
            self.log.warning("Refused a viewer: %d kernels are running, the most allowed.", self.max_kernels)
            raise DashboardBusy(self.max_kernels)
        kernel_id = kernel_id or str(uuid.uuid4())
        self._starting.add(kernel_id)  # before the first await, so concurrent requests cannot overshoot
        try:
            return await super().start_kernel(*args, kernel_id=kernel_id, **kwargs)
        finally:
            self._starting.discard(kernel_id)


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
