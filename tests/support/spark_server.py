"""A throwaway Spark Connect server for tests and benchmarks, started from the installed pyspark.

The pyspark wheel ships Spark itself (``pyspark/sbin/start-connect-server.sh`` and the
spark-connect jar); with Java 17 it starts in local mode in about 10 s. ``--wait`` keeps it in the
foreground in its own process group, so stopping it stops its JVM and nothing else. Logs, pid
files and the catalog's warehouse live under ``root``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from support.pg_server import free_port
from workbench.errors import WorkbenchError

START_TIMEOUT_S = 90


def java_missing_reason() -> str | None:
    """Why Spark cannot run here (no ``java``), else None."""
    if shutil.which("java") is None:
        return "Java is not installed, and Spark needs it: run `make system-deps` (installs openjdk-17-jre-headless)."
    return None


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark."""
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class SparkConnectServer:
    """A running Spark Connect server on 127.0.0.1:``port``; ``url`` is its ``sc://`` URL."""

    root: Path
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    def log(self) -> str:
        return (self.root / "server.out").read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server's process group (its JVM) and wait for it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_spark_connect(
    root: Path, master: str = "local[2]", extra_conf: dict[str, str] | None = None
) -> SparkConnectServer:
    """Start a Spark Connect server submitting to ``master`` and wait until it accepts connections."""
    home = spark_home()
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = {
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dderby.system.home={root}",
        **(extra_conf or {}),
    }
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOG_DIR": str(root / "logs"),
        "SPARK_PID_DIR": str(root / "pids"),
        "PYSPARK_PYTHON": sys.executable,
    }
    command = [str(home / "sbin" / "start-connect-server.sh"), "--wait", "--master", master, "--driver-memory", "2g"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    with open(root / "server.out", "wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = SparkConnectServer(root, port, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WorkbenchError(f"The Spark Connect server exited ({process.returncode}): {server.log()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise WorkbenchError(
        f"The Spark Connect server did not listen on {port} within {START_TIMEOUT_S} s: {server.log()[-2000:]}"
    )
