"""The HTTP collection service under load, then killed mid-stream.

    .venv/bin/python benchmarks/events_service.py [--clients 4] [--seconds 60] [--postgres]

1. Load: ``--clients`` processes post single events (as ``@grouparoo/client-web`` does, plus a
   ``messageId``) to ``workbench events serve`` for ``--seconds``, each waiting for the answer
   before the next; reports accepted events per second, p50/p99 latency of the accepted requests
   and the service's peak resident memory (VmHWM).
2. Crash: the same clients post for ``--crash-seconds``; a third of the way in the service gets
   SIGKILL and is started again. A client whose request fails (no answer, 503) sends the same
   event (same messageId) again until it is acknowledged. Then counts: every acknowledged event is
   stored, none twice.

Prints one table row per phase. The database is a fresh DuckDB file (or a database on a
throwaway PostgreSQL server with --postgres).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests

import workbench as wb
from workbench.events.api_keys import create_api_key
from workbench.events.settings import EventSettings

SETTINGS = EventSettings(schema="grouparoo", source="the benchmark")
BIN = Path(sys.executable).parent
RETRY_PAUSE_S = 0.05


def start_service(url: str, port: int, home: Path) -> subprocess.Popen:
    """``workbench events serve`` on 127.0.0.1:``port``; returns once /healthz answers."""
    process = subprocess.Popen(
        [str(BIN / "workbench"), "events", "serve", "--port", str(port), "--database", url],
        env={**os.environ, "WORKBENCH_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the service did not start within 60 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client(args: tuple[int, str, str, float, str]) -> tuple[list[float], list[str]]:
    """Post events until ``seconds`` pass; each is sent again until acknowledged (up to 60 s more).
    (latencies in ms of the acknowledged requests, messageIds acknowledged)."""
    index, endpoint, key, seconds, phase = args
    session = requests.Session()
    latencies, acknowledged = [], []
    stop, sequence = time.monotonic() + seconds, 0
    while time.monotonic() < stop:
        sequence += 1
        message_id = f"{phase}-c{index}-{sequence}"
        event = {
            "apiKey": key,
            "type": "pageview",
            "data": {"path": f"/p/{sequence % 50}", "client": index},
            "userId": None,
            "anonymousId": f"aid-{index}-{sequence % 100}",
            "sessionId": f"sid-{index}",
            "ocurredAt": int(time.time() * 1000),
            "messageId": message_id,
        }
        give_up = time.monotonic() + seconds + 60
        while time.monotonic() < give_up:
            started = time.perf_counter()
            try:
                answer = session.post(endpoint, json=event, timeout=30)
            except requests.RequestException:
                session = requests.Session()
                time.sleep(RETRY_PAUSE_S)
                continue
            if answer.status_code == 200:
                latencies.append((time.perf_counter() - started) * 1000)
                acknowledged.append(message_id)
                break
            time.sleep(RETRY_PAUSE_S)
    return latencies, acknowledged


def run_clients(clients: int, endpoint: str, key: str, seconds: float, phase: str, pool) -> tuple[list, list]:
    results = pool.map_async(client, [(i, endpoint, key, seconds, phase) for i in range(clients)])
    return results


def stored_counts(url: str, phase: str) -> tuple[int, int]:
    """(events of ``phase`` stored, distinct messageIds among them)."""
    db = wb.connect(url)
    row = db.sql(
        "SELECT count(*) AS n, count(DISTINCT message_id) AS ids FROM grouparoo.events WHERE message_id LIKE :prefix",
        prefix=f"{phase}-%",
    ).iloc[0]
    db.dispose()
    return int(row["n"]), int(row["ids"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--crash-seconds", type=float, default=30)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        server = None
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from support.pg_server import start_postgres

            server = start_postgres()
            server.create_database("events_service")
            url, engine = server.url_with_password("events_service"), "PostgreSQL"
        else:
            url, engine = f"duckdb:///{home / 'events.duckdb'}", "DuckDB"
        db = wb.connect(url, read_only=False)
        key = create_api_key(db, "Load test", SETTINGS)
        db.dispose()
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}/api/v1/track"
        print(
            "| engine | phase | clients | seconds | acknowledged | events/s | p50 ms | p99 ms | peak RSS MiB | stored | duplicates | lost |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        service = None
        try:
            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                service = start_service(url, port, home)
                started = time.perf_counter()
                results = run_clients(args.clients, endpoint, key, args.seconds, "load", pool).get()
                elapsed = time.perf_counter() - started
                rss = peak_rss_mib(service.pid)
                service.send_signal(signal.SIGTERM)
                service.wait()
                latencies = sorted(x for lat, _ in results for x in lat)
                acked = {m for _, ids in results for m in ids}
                stored, distinct = stored_counts(url, "load")
                p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
                print(
                    f"| {engine} | load | {args.clients} | {elapsed:.0f} | {len(acked):,} | {len(acked) / elapsed:,.0f} | "
                    f"{statistics.median(latencies):.1f} | {p99:.1f} | {rss:.0f} | {stored:,} | {stored - distinct} | "
                    f"{len(acked) - stored:,} |"
                )

                service = start_service(url, port, home)
                pending = run_clients(args.clients, endpoint, key, args.crash_seconds, "crash", pool)
                time.sleep(args.crash_seconds / 3)
                service.send_signal(signal.SIGKILL)
                service.wait()
                time.sleep(1)
                service = start_service(url, port, home)
                results = pending.get()
                service.send_signal(signal.SIGTERM)
                service.wait()
                acked = {m for _, ids in results for m in ids}
                stored, distinct = stored_counts(url, "crash")
                db = wb.connect(url)
                stored_ids = set(
                    db.sql("SELECT message_id FROM grouparoo.events WHERE message_id LIKE 'crash-%'", limit=None)[
                        "message_id"
                    ]
                )
                db.dispose()
                lost = len(acked - stored_ids)
                print(
                    f"| {engine} | SIGKILL at {args.crash_seconds / 3:.0f} s, restart | {args.clients} | {args.crash_seconds:.0f} | "
                    f"{len(acked):,} | | | | | {stored:,} | {stored - distinct} | {lost} |"
                )
                if lost or stored != distinct:
                    raise SystemExit(f"FAILED: {lost} acknowledged events lost, {stored - distinct} stored twice")
        finally:
            if service is not None and service.poll() is None:
                service.kill()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
