"""The Voila entry point's sliced kernel-channel waits (workbench.reports.voila_server): a wake-up the
event loop never delivers costs at most a slice, where the stock wait hangs for ever; the
``get_msg`` contract is unchanged on real zmq sockets. The 10-viewer load test
(tests/reliability/test_load.py) shows the effect on the served dashboard."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from workbench.reports import voila_server
from workbench.reports.dashboard import voila_command


class MissedWakeupSocket:
    """A socket holding a message whose wake-up the event loop lost: a poll without a timeout never
    returns (what Voila's stuck pages wait on), a poll with one finds the message when it expires."""

    def __init__(self) -> None:
        self.polls: list[int | None] = []

    async def poll(self, timeout_ms: int | None = None) -> int:
        self.polls.append(timeout_ms)
        if timeout_ms is None:
            await asyncio.Event().wait()
        await asyncio.sleep(timeout_ms / 1000)
        return zmq.POLLIN


class Channel:
    """Just what ``get_msg`` uses of ``AsyncZMQSocketChannel``: ``socket`` and ``_recv``."""

    def __init__(self, socket) -> None:
        self.socket = socket

    async def _recv(self) -> dict:
        return {"msg_type": "execute_reply", "parent_header": {"msg_id": "cell-3"}}


def test_a_lost_wakeup_hangs_the_stock_wait_and_costs_the_sliced_wait_one_slice():
    async def stock() -> None:
        await asyncio.wait_for(AsyncZMQSocketChannel.get_msg(Channel(MissedWakeupSocket())), timeout=3)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(stock())

    socket = MissedWakeupSocket()
    started = time.perf_counter()
    msg = asyncio.run(voila_server.sliced_get_msg(Channel(socket)))
    assert msg["msg_type"] == "execute_reply"
    assert time.perf_counter() - started < voila_server.POLL_SLICE_SECONDS + 0.5
    assert socket.polls == [int(voila_server.POLL_SLICE_SECONDS * 1000)]


def test_sliced_wait_keeps_get_msg_contract_on_real_sockets():
    """Messages arrive in order whether they are waiting or come later; a timeout still ends in
    ``queue.Empty`` after about that long, also when it is longer than a slice."""

    async def scenario() -> tuple[list[str], float, float]:
        context = zmq.asyncio.Context()
        router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        session = Session(key=b"k")
        channel = AsyncZMQSocketChannel(dealer, session)
        session.send(dealer, "kernel_info_request")
        identity, *_ = await router.recv_multipart()  # the router now knows the dealer

        received = []
        session.send(router, "first", ident=identity)
        received.append((await voila_server.sliced_get_msg(channel, timeout=5))["msg_type"])

        async def later() -> None:
            await asyncio.sleep(1.5)  # beyond one slice
            session.send(router, "second", ident=identity)

        sender = asyncio.ensure_future(later())
        received.append((await voila_server.sliced_get_msg(channel))["msg_type"])
        await sender

        started = time.perf_counter()
        with pytest.raises(Empty):
            await voila_server.sliced_get_msg(channel, timeout=0.3)
        short = time.perf_counter() - started
        started = time.perf_counter()
        with pytest.raises(Empty):
            await voila_server.sliced_get_msg(channel, timeout=2.2)
        long = time.perf_counter() - started
        dealer.close(0)
        router.close(0)
        context.term()
        return received, short, long

    received, short, long = asyncio.run(scenario())
    assert received == ["first", "second"]
    assert 0.3 <= short < 0.8
    assert 2.2 <= long < 2.8


def test_the_dashboard_command_runs_voila_through_the_repair():
    command = voila_command(8899)
    assert command[:3] == [sys.executable, "-m", "workbench.reports.voila_server"]
    shown = subprocess.run([*command[:3], "--help"], check=False, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("voila [OPTIONS] NOTEBOOK_FILENAME"), shown.stderr[-2000:]
