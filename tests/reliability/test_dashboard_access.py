"""Dashboard access (issue 17, item 5): the review bound ``workbench dashboard --ip 0.0.0.0`` and, as
an anonymous visitor on the network, started a kernel with every GET (6 GETs: 486 → 1,623 MB),
kept them 600 s, and read ``/api/kernels/<id>`` without any credentials. These runs start the real
command (Voila through ``workbench.reports.voila_server``) and repeat the visit over HTTP and in
Chromium, counting kernels in the server's process tree."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from support.offline_browser import CHROMIUM, wait_for_port
from support.pg_server import free_port
from workbench.reports.dashboard import TOKEN_ENV, WARM_KERNELS

pytestmark = [pytest.mark.reliability]

WORKBENCH = str(Path(sys.executable).parent / "workbench")
TOKEN = "c4nary-dashboard-token-7e21"
REFUSAL = f"error: Refusing to serve the dashboard on 0.0.0.0 without a token: set {TOKEN_ENV}, pass --new-token (printed once), or bind 127.0.0.1."
ANONYMOUS_GETS = 6
MAX_KERNELS, VIEWERS = 2, 4  # four viewers at once against a cap of two
CULL_MINUTES = 0.25  # 15 s, the shortest the command takes


def lan_address() -> str:
    """This machine's first non-loopback IPv4 address (what a visitor on the network connects to), else 127.0.0.1."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family.name == "AF_INET" and not address.address.startswith("127."):
                return address.address
    return "127.0.0.1"


@dataclass
class Server:
    """A running ``workbench dashboard``: its process (Voila, the command execs it), port and output file."""

    process: subprocess.Popen
    port: int
    output: Path

    def kernels(self) -> list[psutil.Process]:
        """The kernel processes Voila runs now (one that exited since the listing is left out)."""
        found = []
        for child in psutil.Process(self.process.pid).children():
            with suppress(psutil.Error):  # gone, or a zombie not yet reaped
                if "ipykernel" in " ".join(child.cmdline()):
                    found.append(child)
        return found

    def tree_mb(self) -> float:
        """Resident memory of Voila and its kernels, in MB."""
        root = psutil.Process(self.process.pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            with suppress(psutil.Error):
                total += process.memory_info().rss
        return total / 2**20

    def text(self) -> str:
        """Everything the command and the server printed."""
        return self.output.read_text()

    def settled(self, kernels: int, timeout: float = 120) -> float:
        """Wait until ``kernels`` kernels run and the tree's memory holds still (within 2 MB over
        a second: the warm kernel's imports are done); its memory then, in MB."""
        deadline = time.perf_counter() + timeout
        before = -1.0
        while time.perf_counter() < deadline:
            now = self.tree_mb()
            if len(self.kernels()) == kernels and abs(now - before) < 2:
                return now
            before = now
            time.sleep(1)
        raise AssertionError(f"{len(self.kernels())} kernels after {timeout} s, expected {kernels}")


def dashboard_env(home: Path, token: str | None) -> dict[str, str]:
    """This environment with its own project home and ``token`` (or none) in $WORKBENCH_DASHBOARD_TOKEN."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env["WORKBENCH_HOME"] = str(home)
    if token:
        env[TOKEN_ENV] = token
    return env


@contextmanager
def serving(home: Path, *args: str, token: str | None = None) -> Iterator[Server]:
    """``workbench dashboard --port P *args`` on an empty project home (no cached results) until the block ends."""
    home.mkdir(exist_ok=True)
    port = free_port()
    output = home / "dashboard.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [WORKBENCH, "dashboard", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dashboard_env(home, token),
        )
        try:
            wait_for_port(port, 60)
            yield Server(process, port, output)
        finally:
            process.terminate()
            process.wait(timeout=30)


def kernel_id(page: str) -> str:
    """The kernel id Voila wrote into a rendered page."""
    return re.search(r'"kernelId": "([0-9a-f-]{36})"', page).group(1)


def websocket_status(host: str, port: int, kernel: str) -> int:
    """The status Voila answers an anonymous websocket upgrade of ``kernel``'s channels with."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    return requests.get(f"http://{host}:{port}/api/kernels/{kernel}/channels", headers=headers, timeout=10).status_code


def test_binding_beyond_loopback_without_a_valid_token_is_refused(tmp_path, ledger):
    port = free_port()
    runs = {
        "no token": subprocess.run(
            [WORKBENCH, "dashboard", "--ip", "0.0.0.0", "--port", str(port)],
            capture_output=True,
            text=True,
            env=dashboard_env(tmp_path, None),
            timeout=120,
        ),
        "a short token": subprocess.run(
            [WORKBENCH, "dashboard", "--ip", "0.0.0.0", "--port", str(port)],
            capture_output=True,
            text=True,
            env=dashboard_env(tmp_path, "c4nary-short"),
            timeout=120,
        ),
        "a token with a space": subprocess.run(
            [WORKBENCH, "dashboard", "--ip", lan_address(), "--port", str(port)],
            capture_output=True,
            text=True,
            env=dashboard_env(tmp_path, "c4nary token with spaces"),
            timeout=120,
        ),
        # the server's own entry point, started without the command's checks, refuses as well
        "Voila started directly": subprocess.run(
            [sys.executable, "-m", "workbench.reports.voila_server", "--Voila.ip=0.0.0.0", f"--port={port}"],
            capture_output=True,
            text=True,
            env=dashboard_env(tmp_path, None),
            timeout=120,
        ),
    }
    for case, run in runs.items():
        assert run.returncode == 1, (case, run.stdout, run.stderr[-2000:])
        assert "c4nary" not in run.stdout + run.stderr, case
    assert runs["no token"].stderr.strip() == REFUSAL and not runs["no token"].stdout
    assert runs["Voila started directly"].stderr.strip().splitlines()[-1] == REFUSAL
    too_short = f"error: {TOKEN_ENV} must be at least 16 printable characters without spaces: set another one, or pass --new-token to have one generated."
    assert runs["a short token"].stderr.strip() == too_short
    assert runs["a token with a space"].stderr.strip() == too_short
    with pytest.raises(OSError):  # nothing was left listening
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    ledger(
        "Dashboard access",
        "`workbench dashboard --ip 0.0.0.0` without $WORKBENCH_DASHBOARD_TOKEN, with a 12-character token, with a token "
        "containing spaces (bound to the LAN address), and `python -m workbench.reports.voila_server --Voila.ip=0.0.0.0` "
        "started directly without a token",
        "all 4 exit 1 with one sentence (set the token, pass --new-token or bind 127.0.0.1); the token never shown; nothing "
        "listens on the port",
    )


def test_beyond_loopback_nothing_answers_without_the_token_and_kernels_are_capped_and_culled(tmp_path, ledger):
    args = ("--ip", "0.0.0.0", "--max-kernels", str(MAX_KERNELS), "--cull-idle-minutes", str(CULL_MINUTES))
    report = tmp_path / "home" / "reports" / "some-test" / "latest.html"  # a report the dashboard links
    report.parent.mkdir(parents=True)
    report.write_text("<title>some-test: experiment report</title>", encoding="utf-8")
    with serving(tmp_path / "home", *args, token=TOKEN) as server:
        host = lan_address()
        base = f"http://{host}:{server.port}"
        idle_mb = server.settled(WARM_KERNELS)  # the kernel kept warm for the next viewer, started by the server

        # an anonymous visitor on the network
        anonymous = [requests.get(f"{base}/", allow_redirects=False, timeout=30) for _ in range(ANONYMOUS_GETS)]
        wrong = requests.get(f"{base}/?token=c4nary-wrong-token-0000", allow_redirects=False, timeout=30)
        routes = ["/api/kernels", "/api/sessions", "/api/contents", "/api/kernelspecs", "/voila/files/dashboard.ipynb"]
        routes.append("/reports/some-test/latest.html")
        rest = {route: requests.get(base + route, allow_redirects=False, timeout=30).status_code for route in routes}
        assert [r.status_code for r in anonymous] == [302] * ANONYMOUS_GETS
        assert {r.headers["Location"] for r in anonymous} == {"/login?next=%2F"}
        assert wrong.status_code == 302 and wrong.headers["Location"].startswith("/login")
        assert all(status in (302, 403, 404) for status in rest.values()), rest
        shown = requests.get(
            f"{base}/reports/some-test/latest.html", headers={"Authorization": f"token {TOKEN}"}, timeout=30
        )
        assert shown.status_code == 200 and shown.text == report.read_text()  # with the token, the report
        time.sleep(1)
        assert len(server.kernels()) == WARM_KERNELS and server.text().count("Kernel started") == WARM_KERNELS
        anonymous_mb = server.tree_mb()

        # four viewers with the token at once, against a cap of two
        def view(_: int) -> requests.Response:
            return requests.get(f"{base}/?token={TOKEN}", timeout=120)  # exchanged for the cookie, then the page

        started = time.perf_counter()
        with ThreadPoolExecutor(VIEWERS) as pool:
            answers = list(pool.map(view, range(VIEWERS)))
        viewed = time.perf_counter() - started
        served = [a for a in answers if a.status_code == 200]
        busy = [a for a in answers if a.status_code == 503]
        assert len(served) == MAX_KERNELS and len(busy) == VIEWERS - MAX_KERNELS, [a.status_code for a in answers]
        assert all(
            a.url == f"{base}/" and "No cached results yet" in a.text for a in served
        )  # token dropped from the address
        sentence = re.search(r"<p>(.*)</p>", busy[0].text).group(1)
        assert sentence == (
            f"The dashboard is busy: it already serves {MAX_KERNELS} viewers, the most it runs at once; "
            "please try again in a few minutes."
        )
        assert busy[0].headers["Retry-After"] == "60"
        server.settled(MAX_KERNELS + WARM_KERNELS)  # the viewers' and the next one's, warm
        kernels = server.kernels()
        assert all(TOKEN not in "".join(k.environ().values()) for k in kernels)  # never handed to a kernel
        peak_mb = server.tree_mb()

        # the kernel's REST route and websocket, anonymous and with the token
        kernel = kernel_id(served[0].text)
        api = f"{base}/api/kernels/{kernel}"
        anonymous_get = requests.get(api, timeout=30)
        anonymous_delete = requests.delete(api, timeout=30)
        anonymous_socket = websocket_status(host, server.port, kernel)
        with_token = requests.get(api, headers={"Authorization": f"token {TOKEN}"}, timeout=30)
        assert (anonymous_get.status_code, anonymous_delete.status_code, anonymous_socket) == (403, 403, 403)
        assert with_token.status_code == 200 and with_token.json()["id"] == kernel
        assert len(server.kernels()) == MAX_KERNELS + WARM_KERNELS  # the anonymous DELETE shut nothing down

        # idle kernels are culled after the configured minutes, and viewers are served again
        while len(server.kernels()) > WARM_KERNELS and time.perf_counter() - started < 120:
            time.sleep(0.5)
        culled_after = time.perf_counter() - started
        assert len(server.kernels()) == WARM_KERNELS  # the warm one is never culled
        culled_mb = server.tree_mb()
        again = requests.get(f"{base}/", headers={"Authorization": f"token {TOKEN}"}, timeout=120)
        assert again.status_code == 200 and "No cached results yet" in again.text
        server.settled(1 + WARM_KERNELS)  # its kernel and the pool's, refilled
        output = server.text()
    # the first warm kernel, then one refill of the pool per viewer served (two at once, one again)
    assert output.count("Kernel started") == WARM_KERNELS + MAX_KERNELS + 1
    assert output.count("seconds of inactivity") == MAX_KERNELS  # jupyter_server's line per culled kernel
    assert output.count("Refused a viewer") == VIEWERS - MAX_KERNELS
    assert TOKEN not in output  # neither the command's line nor Voila's log shows it
    assert output.splitlines()[0] == f"Dashboard: http://0.0.0.0:{server.port}/?token=<${TOKEN_ENV}> (Ctrl-C to stop)"
    assert anonymous_mb < idle_mb + 20, (idle_mb, anonymous_mb)
    ledger(
        "Dashboard access",
        f"`workbench dashboard --ip 0.0.0.0 --max-kernels {MAX_KERNELS} --cull-idle-minutes {CULL_MINUTES}` with "
        f"$WORKBENCH_DASHBOARD_TOKEN; from the LAN address: {ANONYMOUS_GETS} anonymous GETs of the page, a wrong token, "
        f"{', '.join(routes)}; then {VIEWERS} viewers with the token at once; anonymous GET, DELETE and websocket on "
        "`/api/kernels/<id>` of a running kernel",
        f"anonymous: {ANONYMOUS_GETS} × 302 to /login, REST routes {sorted(set(rest.values()))}, no kernel started "
        f"by them ({WARM_KERNELS} kept warm by the server), "
        f"Voila {idle_mb:.0f} → {anonymous_mb:.0f} MB (the review: 486 → 1,623 MB); with the token {MAX_KERNELS} pages "
        f"served and {VIEWERS - MAX_KERNELS} × 503 with one sentence and Retry-After in {viewed:.1f} s, tree {peak_mb:.0f} MB; "
        f"kernel API and websocket 403 / 403 / 403 anonymous, 200 with the token (and the report under /reports/); both kernels culled "
        f"{culled_after:.0f} s after the viewers came (tree {culled_mb:.0f} MB), then a viewer was served again; the "
        "token in no log line, no kernel's environment, no address after the redirect",
    )


@pytest.mark.browser
def test_a_generated_token_is_printed_once_and_lets_a_browser_in(tmp_path, ledger):
    from playwright.sync_api import sync_playwright

    with serving(tmp_path / "home", "--ip", "0.0.0.0", "--new-token") as server:
        server.settled(WARM_KERNELS)
        printed = server.text().splitlines()[0]
        url = re.fullmatch(r"Dashboard: (\S+) \(this token is not shown again; Ctrl-C to stop\)", printed).group(1)
        token = url.split("?token=")[1]
        base = f"http://127.0.0.1:{server.port}/"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            stranger = browser.new_page()
            stranger.goto(base, timeout=60_000)
            stranger_url, stranger_kernels = stranger.url, len(server.kernels())
            viewer = browser.new_page()
            started = time.perf_counter()
            viewer.goto(f"{base}?token={token}", timeout=120_000)
            viewer.get_by_text("No cached results yet").wait_for(timeout=120_000)
            rendered = time.perf_counter() - started
            kernel = kernel_id(viewer.content())
            deadline = time.perf_counter() + 30
            while time.perf_counter() < deadline:  # the page's websocket, authenticated by the login cookie
                model = requests.get(
                    f"{base}api/kernels/{kernel}", headers={"Authorization": f"token {token}"}, timeout=30
                ).json()
                if model["connections"]:
                    break
                time.sleep(0.5)
            viewer_url = viewer.url
            browser.close()
        output = server.text()
    assert len(token) >= 40
    assert stranger_url.startswith(f"{base}login") and stranger_kernels == WARM_KERNELS  # only the server's warm one
    assert viewer_url == base  # the token left the address bar
    assert model["connections"] == 1
    assert output.count(token) == 1  # printed once, by the command, never by Voila
    ledger(
        "Dashboard access",
        "`workbench dashboard --ip 0.0.0.0 --new-token`; Chromium opening the page without the token, then the printed "
        "address",
        f"a {len(token)}-character token printed once (in no other line of the output); without it the login form and "
        f"no kernel started by the visit; with it the page rendered in {rendered:.1f} s, the address bar lost the token and the page's kernel "
        "websocket connected with the login cookie (1 connection)",
    )
