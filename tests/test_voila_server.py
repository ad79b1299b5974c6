"""The Voila entry point's sliced kernel-channel waits (workbench.reports.voila_server): a wake-up the
event loop never delivers costs at most a slice, where the stock wait hangs for ever; the
``get_msg`` contract is unchanged on real zmq sockets. The 10-viewer load test
(tests/reliability/test_load.py) shows the effect on the served dashboard. The access rules the
entry point enforces (token, kernel cap, culling) are decided here without a server and proven on the
served dashboard in tests/reliability/test_dashboard_access.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from workbench.errors import WorkbenchError
from workbench.reports import voila_server
from workbench.reports.dashboard import (
    MAX_KERNELS,
    PREHEAT_ENV,
    TOKEN_ENV,
    dashboard_token,
    is_loopback,
    voila_command,
    voila_environment,
)


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


def test_a_token_is_needed_beyond_loopback_and_never_goes_on_the_command_line():
    assert [is_loopback(ip) for ip in ("127.0.0.1", "127.1.2.3", "localhost", "::1")] == [True] * 4
    assert [is_loopback(ip) for ip in ("0.0.0.0", "", "::", "192.0.2.2", "dashboard.example.com")] == [False] * 5
    assert dashboard_token("127.0.0.1", environ={}) is None  # this machine only: no token needed
    with pytest.raises(WorkbenchError, match=r"^Refusing to serve the dashboard on 0\.0\.0\.0 without a token"):
        dashboard_token("0.0.0.0", environ={})
    with pytest.raises(WorkbenchError, match=f"^{TOKEN_ENV} must be at least 16 printable characters") as short:
        dashboard_token("127.0.0.1", environ={TOKEN_ENV: "c4nary-short"})
    assert "c4nary" not in str(short.value)
    given = "c4nary-given-token-1234"
    assert dashboard_token("0.0.0.0", environ={TOKEN_ENV: given}) == given
    generated = {dashboard_token("0.0.0.0", new_token=True, environ={TOKEN_ENV: given}) for _ in range(3)}
    assert len(generated) == 3 and all(len(t) == 43 and t != given for t in generated)  # 32 random bytes each

    token = generated.pop()
    command = voila_command(8899, "0.0.0.0", cull_idle_seconds=300, max_kernels=4)
    assert not any(token in arg for arg in command)  # `ps` shows the command line to every user
    assert voila_environment({}, token=token)[TOKEN_ENV] == token and TOKEN_ENV not in voila_environment({})
    assert "--CappedKernelManager.max_kernels=4" in command
    assert "--MappingKernelManager.cull_idle_timeout=300" in command
    assert "--MappingKernelManager.cull_interval=60" in command  # a quarter of the idle time, at most a minute
    assert "--MappingKernelManager.cull_interval=3" in voila_command(8899, cull_idle_seconds=15)
    assert f"--CappedKernelManager.max_kernels={MAX_KERNELS}" in voila_command(8899)
    assert "--MappingKernelManager.cull_interval=2" in voila_command(
        8899, cull_idle_seconds=60, cull_interval_seconds=2
    )


def test_kernels_started_at_once_are_each_counted_once_against_the_cap(monkeypatch):
    """A kernel the manager already lists while its start is still awaited (jupyter_server waits for
    its first reply after listing it) must not count twice: a load run once refused 2 of 10 viewers
    with only 8 kernels started. With the cap at 3 and that wait stretched to 2 s, a second and third
    start during the first one's wait both run, and a fourth is refused."""
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    finish = AsyncMappingKernelManager._finish_kernel_start

    async def slow_finish(self, kernel_id):
        await asyncio.sleep(2)
        return await finish(self, kernel_id)

    monkeypatch.setattr(AsyncMappingKernelManager, "_finish_kernel_start", slow_finish)
    manager = voila_server.CappedKernelManager(max_kernels=3)

    async def scenario() -> tuple[list, list[str]]:
        first = asyncio.create_task(manager.start_kernel(kernel_name="python3"))
        while not manager.list_kernel_ids():  # listed, its start still awaited
            await asyncio.sleep(0.05)
        more = await asyncio.gather(
            *(manager.start_kernel(kernel_name="python3") for _ in range(2)), return_exceptions=True
        )
        started = [await first, *more]
        try:
            fourth = await asyncio.gather(manager.start_kernel(kernel_name="python3"), return_exceptions=True)
            return started, manager.list_kernel_ids(), fourth[0]
        finally:
            await manager.shutdown_all(now=True)

    started, listed, fourth = asyncio.run(scenario())
    assert all(isinstance(kernel, str) for kernel in started), started
    assert sorted(started) == sorted(listed) and len(set(started)) == 3
    assert isinstance(fourth, voila_server.DashboardBusy), fourth


def test_warm_kernels_wait_outside_the_cap_and_count_once_a_viewer_claims_one():
    """With a cap of one viewer: a kernel started for Voila's pool (``VOILA_PREHEAT=True``) is not a
    viewer, a viewer's cold start is, a second viewer is refused whether it asks for a cold start or
    for the warm kernel, and once the first viewer's kernel is gone the warm one is handed over and
    counted."""
    manager = voila_server.CappedKernelManager(max_kernels=1)
    warm_env, cold_env = ({**os.environ, PREHEAT_ENV: flag} for flag in ("True", "False"))

    async def hand_over(kernel_id: str) -> tuple:
        return None, [], kernel_id  # Voila's (render task, rendered cells, kernel id)

    async def scenario() -> tuple:
        warm = await manager.start_kernel(kernel_name="python3", env=warm_env)
        counted = [manager.viewers()]
        viewer = await manager.start_kernel(kernel_name="python3", env=cold_env)
        counted.append(manager.viewers())
        refused = await asyncio.gather(
            manager.start_kernel(kernel_name="python3"),
            manager.claimed(lambda: hand_over(warm)),
            return_exceptions=True,
        )
        await manager.shutdown_kernel(viewer, now=True)
        handed = await manager.claimed(lambda: hand_over(warm))
        counted.append(manager.viewers())
        try:
            return warm, counted, refused, handed, sorted(manager.list_kernel_ids())
        finally:
            await manager.shutdown_all(now=True)

    warm, counted, refused, handed, listed = asyncio.run(scenario())
    assert counted == [0, 1, 1]
    assert all(isinstance(r, voila_server.DashboardBusy) for r in refused), refused
    assert handed[-1] == warm and listed == [warm]


def _warm_server(tmp_path, port: int, log):
    """A dashboard server on ``port`` with one warm kernel, returned once that kernel's imports are
    done (its memory holds still)."""
    import psutil

    from support.offline_browser import wait_for_port

    server = subprocess.Popen(
        voila_command(port, warm_kernels=1),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**voila_environment(), "WORKBENCH_HOME": str(tmp_path)},
    )
    wait_for_port(port, 60)
    deadline, before = time.perf_counter() + 120, -1
    while time.perf_counter() < deadline:
        kernels = [c for c in psutil.Process(server.pid).children() if "ipykernel" in " ".join(c.cmdline())]
        now = sum(k.memory_info().rss for k in kernels)
        if kernels and abs(now - before) < 2**21:
            break
        before = now
        time.sleep(1)
    return server


def test_a_warm_kernel_reads_the_cached_results_when_its_viewer_comes(tmp_path):
    """The dashboard's kernel, started and warmed before any viewer, waits for the viewer's request
    before reading ``reports/``: an experiment whose cache is removed after the kernel warmed up is
    not offered, and the page came from the pre-heated kernel."""
    import requests

    from support.pg_server import free_port

    cache = tmp_path / "reports" / "gone-experiment" / "cache"
    cache.mkdir(parents=True)
    (cache / "results.json").write_text("{}")
    port = free_port()
    log = tmp_path / "voila.log"
    with log.open("w") as out:
        server = _warm_server(tmp_path, port, out)
        try:
            assert "Kernel pool of" in log.read_text()
            (cache / "results.json").unlink()
            page = requests.get(f"http://127.0.0.1:{port}/", timeout=120)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert page.status_code == 200 and "No cached results yet" in page.text
    assert "Using pre-heated kernel" in log.read_text()


def test_a_burst_of_viewers_takes_the_ready_warm_kernel_once_and_starts_the_rest(tmp_path):
    """Three viewers at once: one is handed the warm kernel, which is ready; the other two start
    kernels of their own instead of queueing behind the pool's refill, which is still starting
    (Voila counts a starting refill as available). Every page is served whole."""
    import concurrent.futures

    import requests

    from support.pg_server import free_port

    (tmp_path / "reports").mkdir()
    port = free_port()
    log = tmp_path / "voila.log"
    with log.open("w") as out:
        server = _warm_server(tmp_path, port, out)
        try:
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                pages = list(pool.map(lambda _: requests.get(f"http://127.0.0.1:{port}/", timeout=180), range(3)))
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log.read_text()
    assert [p.status_code for p in pages] == [200] * 3
    assert all("No cached results yet" in p.text and "window.voila_finish()" in p.text for p in pages)
    assert text.count("Using pre-heated kernel") == 1, text
    assert text.count("Kernel started:") >= 3, text  # the warm one and the two viewers' own (and the refill)
