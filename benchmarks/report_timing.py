"""How long `workbench report KEY` takes end to end on the demo data (GrowthBook's sample in
DuckDB), and how fast the Voila dashboard renders and answers from the cached results.

Runs in a throwaway project home; prints a table. Usage: python benchmarks/report_timing.py
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SAMPLE = Path(os.environ.get("WORKBENCH_SAMPLE_DIR", ROOT.parent / "shared" / "data" / "growthbook-sample"))
KEYS = ("add-to-cart-cta", "checkout-layout")  # the dashboard opens on the first (sorted), then picks the second
CHART = "() => { const e = document.querySelector('.wb-interval-chart'); return e ? e.innerHTML : ''; }"
TABLE = "() => { const e = document.querySelector('.wb-results-view'); return e ? e.innerHTML : ''; }"
# In the page from its first script on: the time since the navigation started (the browser's clock) of the
# first frame drawn with the first screen, and with the live widgets (results rows and both charts)
DRAWN = """window.__drawn = {};
new MutationObserver(() => {
  const parts = {first: ['.wb-first-screen-slot .wb-results'],
                 live: ['.wb-results-view .wb-results', '.wb-interval-chart', '.wb-cumulative-chart']};
  for (const [name, selectors] of Object.entries(parts))
    if (!(name in window.__drawn) && selectors.every(s => document.querySelector(s))) {
      window.__drawn[name] = null;
      requestAnimationFrame(() => { window.__drawn[name] = performance.now(); });
    }
}).observe(document, {subtree: true, childList: true});"""


def timed_report(env: dict, key: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(BIN / "workbench"), "report", key], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def warm_kernel(pid: int) -> None:
    """Wait until the server ``pid`` runs a kernel whose memory holds still for a second (the
    pre-heated kernel has done its imports and waits for a viewer)."""
    import psutil

    before = -1
    while True:
        kernels = [c for c in psutil.Process(pid).children() if "ipykernel" in " ".join(c.cmdline())]
        now = sum(k.memory_info().rss for k in kernels)
        if kernels and abs(now - before) < 2**21:
            return
        before = now
        time.sleep(1)


def dashboard_timings(env: dict) -> list[tuple[str, float]]:
    from playwright.sync_api import sync_playwright

    from workbench.reports.dashboard import voila_command, voila_environment

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        voila_command(port),
        env=voila_environment(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        warm_kernel(server.pid)  # a server that has been up a while: its kernel for the next viewer is ready
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            page.add_init_script(DRAWN)
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", timeout=300_000, wait_until="commit")
            page.wait_for_function("() => window.__drawn.live", timeout=300_000)
            seen = time.perf_counter() - started
            drawn = page.evaluate("() => window.__drawn")
            rows.append(("dashboard first screen (decision and results rows)", drawn["first"] / 1000))
            rows.append(("dashboard live (controls, rows and both charts)", drawn["live"] / 1000))
            rows.append(("dashboard live, as the test driver saw it", seen))
            for name, seconds in rows[-3:]:
                print(f"{name:<52} {seconds:>8.2f}", flush=True)
            # (name, action, whether it changes the results rows: highlighting mutes the chart's bars only)
            actions = [
                ("pick another experiment", lambda: page.locator("select").nth(0).select_option(KEYS[1]), True),
                ("switch tab (secondary)", lambda: page.get_by_role("button", name="secondary").click(), True),
                (
                    "highlight significant",
                    lambda: page.get_by_role("button", name="Highlight significant").click(),
                    False,
                ),
                ("pick a segment", lambda: page.locator("select").nth(1).select_option(index=1), True),
                ("back to all units", lambda: page.locator("select").nth(1).select_option(index=0), True),
            ]
            for name, act, redraws_rows in actions:  # each until the chart (and the rows it changes) are redrawn
                chart, table = page.evaluate(CHART), page.evaluate(TABLE)
                started = time.perf_counter()
                act()
                page.wait_for_function(f"(b) => ({CHART})() !== b", arg=chart, timeout=60_000)
                if redraws_rows:
                    page.wait_for_function(f"(b) => ({TABLE})() !== b", arg=table, timeout=60_000)
                rows.append((f"dashboard: {name}", time.perf_counter() - started))
                print(f"{rows[-1][0]:<52} {rows[-1][1]:>8.2f}", flush=True)
                page.wait_for_timeout(500)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    return rows


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="report-timing-"))
    shutil.copyfile(ROOT / "workbench.yml", home / "workbench.yml")
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("WORKBENCH_DATABASE_URL", None)
    try:
        subprocess.run(
            [str(BIN / "workbench"), "load", "growthbook-sample", str(SAMPLE)], env=env, check=True, capture_output=True
        )
        rows = []
        for key in (*KEYS, KEYS[1]):
            rows.append((f"workbench report {key}", timed_report(env, key)))
            print(f"{rows[-1][0]:<52} {rows[-1][1]:>8.2f}", flush=True)
        rows += dashboard_timings(env)
        load = os.getloadavg()[0]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n{'step':<52} {'seconds':>8}")
    for name, seconds in rows:
        print(f"{name:<52} {seconds:>8.2f}")
    print(f"(load average during the run: {load:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
