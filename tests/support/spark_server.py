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

    def log(self) -> str:
        return (self.root / "server.out").read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server's process group (its JVM) and wait for it."""
        stop_group(self.process)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group ``process`` leads (SIGKILL after 30 s) and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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


@dataclass
class StandaloneCluster:
    """A Spark standalone master and one worker (``spark-class``), each in its own process group."""

    root: Path
    port: int
    processes: list[subprocess.Popen]

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def work_dir(self) -> Path:
        """Where the worker keeps each application's executor logs (``app-*/<executor>/stderr``)."""
        return self.root / "work"

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_group(process)


def start_standalone(root: Path, worker_cores: int = 1, worker_memory: str = "1g") -> StandaloneCluster:
    """Start a standalone master on 127.0.0.1 and one worker with ``worker_cores`` cores and
    ``worker_memory``; wait until the worker has registered."""
    home = spark_home()
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_DAEMON_MEMORY": "256m", "SPARK_LOG_DIR": str(root / "logs")}
    port = free_port()
    spark_class = str(home / "bin" / "spark-class")
    master = [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
    master += ["--webui-port", str(free_port())]
    cluster = StandaloneCluster(root, port, [])
    with open(root / "master.out", "wb") as out:
        cluster.processes.append(
            subprocess.Popen(master, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        )
    _wait_for_line(root / "master.out", "I have been elected leader", cluster)
    worker = [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url, "--host", "127.0.0.1"]
    worker += ["--cores", str(worker_cores), "--memory", worker_memory, "--webui-port", str(free_port())]
    worker += ["--work-dir", str(cluster.work_dir)]
    with open(root / "worker.out", "wb") as out:
        cluster.processes.append(
            subprocess.Popen(worker, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        )
    _wait_for_line(root / "worker.out", "Successfully registered with master", cluster)
    return cluster


def _wait_for_line(log: Path, line: str, cluster: StandaloneCluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if log.exists() and line in log.read_text(errors="replace"):
            return
        if any(p.poll() is not None for p in cluster.processes):
            break
        time.sleep(0.5)
    cluster.stop()
    raise WorkbenchError(
        f"Spark standalone did not log {line!r} within {START_TIMEOUT_S} s: {log.read_text(errors='replace')[-2000:]}"
    )
