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
"""

from __future__ import annotations

import sys
import time
from queue import Empty
from typing import Any

POLL_SLICE_SECONDS = 1.0


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


def main() -> int:
    """Voila's own ``main`` with :func:`install` applied first; arguments from ``sys.argv``."""
    install()
    from voila.app import main as voila_main

    return voila_main() or 0


if __name__ == "__main__":
    sys.exit(main())
