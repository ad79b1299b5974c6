"""`workbench events serve` as a real process for tests: a free port, start (once /healthz answers), stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(url: str, port: int, home: Path) -> subprocess.Popen:
    """The service on 127.0.0.1:``port`` storing into ``url``, with ``home`` as WORKBENCH_HOME (its
    workbench.yml, if any, configures it); returns once /healthz answers 200."""
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("WORKBENCH_CONFIG", None)
    process = subprocess.Popen(
        [str(BIN / "workbench"), "events", "serve", "--port", str(port), "--database", url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return process
        except requests.RequestException:
            time.sleep(0.2)
        if process.poll() is not None:
            raise AssertionError(f"the service exited: {process.stderr.read()}")
    process.kill()
    raise AssertionError("the service did not answer /healthz within 60 s")


def wait_for_current_profiles(health: Callable[[], dict], seconds: float = 60) -> dict:
    """Wait until two rounds of the profile keeper began after this call (so one began after the
    events sent before it) and the latest left no event without a profile; its ``profiles``."""
    start = health()["profiles"]["rounds"]
    deadline = time.monotonic() + seconds
    while True:
        profiles = health()["profiles"]
        if profiles["rounds"] >= start + 2 and profiles["events_without_profile"] == 0:
            return profiles
        assert time.monotonic() < deadline and profiles["error"] is None, f"profiles not kept current: {profiles}"
        time.sleep(0.1)
