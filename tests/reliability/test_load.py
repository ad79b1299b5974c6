"""Load (issue 9): the Voila dashboard with 10 viewers at once, ``run-reports`` over 50
experiments, and ingestion of 1,000,000 events with 1% malformed lines — each at full size, with
wall time and the peak resident memory of the whole process tree (sampled every 0.2 s) measured,
and the numbers checked against pandas on the raw tables or against what the test planted."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil
import pytest

import workbench as wb
from support.offline_browser import CHROMIUM, wait_for_port
from support.pg_server import free_port
from workbench.reports.data import load_report_cache

pytestmark = pytest.mark.reliability

WORKBENCH = str(Path(sys.executable).with_name("workbench"))
MB = 1024 * 1024
EXPERIMENTS = 50
VIEWERS = 10


# --- measuring a process tree ---------------------------------------------------------------------
@dataclass
class Sample:
    seconds: float
    tree_mb: float  # the root process and every descendant
    host_mb: float  # every process but the kernels (the command and its worker processes)
    kernels: int  # kernels (distinct connection files) among the descendants
    progress: int  # what the caller's ``progress()`` said at that moment


@dataclass
class TreeSampler:
    """Samples the resident memory of ``pid`` and its descendants every ``interval`` seconds in a
    thread, until stopped; ``progress`` is called at each sample (e.g. reports finished so far)."""

    pid: int
    progress: object = lambda: 0
    interval: float = 0.2
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.sample()
            if sample:
                self.samples.append(sample)
            self._stop.wait(self.interval)

    def sample(self) -> Sample | None:
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        total = host = 0
        kernels: set[str] = set()  # connection files: a process a kernel forks shares its command line
        for proc in processes:
            try:
                rss = proc.memory_info().rss
                cmdline = proc.cmdline()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            kernel = any("ipykernel" in part for part in cmdline)
            if kernel:
                kernels.add(next((part for part in cmdline if part.endswith(".json")), " ".join(cmdline)))
            total, host = total + rss, host + (0 if kernel else rss)
        return Sample(time.perf_counter() - self._started, total / MB, host / MB, len(kernels), self.progress())

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.samples

    def settled(self, kernels: int, timeout: float = 120) -> float:
        """Wait until ``kernels`` kernels run and the tree's memory holds still (within 2 MB over a
        second); the tree's MB then."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            recent = [s for s in self.samples if s.seconds > self.samples[-1].seconds - 1] if self.samples else []
            if recent and all(s.kernels == kernels for s in recent):
                mbs = [s.tree_mb for s in recent]
                if max(mbs) - min(mbs) < 2 and recent[-1].seconds - recent[0].seconds >= 0.8:
                    return recent[-1].tree_mb
            time.sleep(0.2)
        raise AssertionError(f"not {kernels} settled kernels after {timeout} s")

    def peak(self, until_progress: int | None = None) -> float:
        chosen = [s.tree_mb for s in self.samples if until_progress is None or s.progress < until_progress]
        return max(chosen)


def run_measured(
    command: list[str], env: dict, progress=lambda: 0, timeout: float = 900, cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess, TreeSampler, float]:
    """Run ``command`` to completion while sampling its process tree; (result, sampler, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    sampler = TreeSampler(proc.pid, progress)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        sampler.stop()
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr), sampler, time.perf_counter() - started


# --- 50 experiments over generated data -----------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """One configured experiment: the generated experiment it reads, its window and goal metric."""

    key: str
    base: str
    start: pd.Timestamp
    end: pd.Timestamp
    goal: str


def planned_experiments(n: int, days: pd.DataFrame) -> list[Planned]:
    """``n`` experiments: each generated experiment (``days``: experimentId, first and last day of
    exposure) under several keys ``<experiment>-<letter>``, the k-th of K keys with its own window
    (k/4K of the exposure days cut at each end) and goal metric."""
    plans: list[Planned] = []
    keys = -(-n // len(days))
    for k in range(keys):
        for base, first, last in days.itertuples(index=False):
            cut = pd.Timedelta(days=int((last - first).days * k / (4 * keys)))
            plans.append(
                Planned(
                    f"{base}-{chr(ord('a') + k)}",
                    base,
                    first + cut,
                    last - cut,
                    "purchased" if (k + len(plans)) % 2 == 0 else "revenue",
                )
            )
    return plans[:n]


def config_text(plans: list[Planned]) -> str:
    values = ", ".join(f"('{s}')" for s in sorted({p.key.rsplit("-", 1)[1] for p in plans}))
    lines = [
        "# run-reports load test: every generated experiment under several keys, one per window",
        "identifier_types: [user_id]",
        "assignment_queries:",
        "  - name: users",
        "    identifier_type: user_id",
        "    sql: >-",
        "      SELECT v.userId AS user_id, v.timestamp, v.experimentId || '-' || s.n AS experiment_id,",
        "             v.variationId AS variation_id, v.browser",
        f"      FROM experiment_viewed v CROSS JOIN (VALUES {values}) AS s(n)",
        "metrics:",
        "  - {name: purchased, type: binomial, sql: 'SELECT userId AS user_id, timestamp FROM orders'}",
        "  - {name: revenue, type: mean, sql: 'SELECT userId AS user_id, timestamp, amount AS value FROM orders'}",
        "  - {name: sessions, type: count, sql: 'SELECT userId AS user_id, sessionStart AS timestamp, 1 AS value FROM sessions'}",
        "experiments:",
    ]
    for p in plans:
        other = "revenue" if p.goal == "purchased" else "purchased"
        lines += [
            f"  - key: {p.key}",
            f"    start: {p.start.date()}",
            f"    end: {p.end.date()}",
            f"    goal_metrics: [{p.goal}]",
            f"    secondary_metrics: [{other}]",
            "    guardrail_metrics: [sessions]",
        ]
    return "\n".join(lines) + "\n"


def pandas_units(views: pd.DataFrame, orders: pd.DataFrame, plan: Planned) -> pd.DataFrame:
    """Units of ``plan`` (exposed start..end, one variation only): variation, first exposure and
    whether they ordered between their first exposure and the end (inclusive of the end day)."""
    end = plan.end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    v = views[(views["experimentId"] == plan.base) & (views["timestamp"] >= plan.start) & (views["timestamp"] <= end)]
    units = v.groupby("userId").agg(
        first=("timestamp", "min"), variations=("variationId", "nunique"), variation=("variationId", "first")
    )
    units = units[units["variations"] == 1]
    joined = orders.merge(units[["first"]], left_on="userId", right_index=True)
    buyers = set(joined.loc[(joined["timestamp"] >= joined["first"]) & (joined["timestamp"] <= end), "userId"])
    units["purchased"] = units.index.isin(buyers).astype(float)
    return units


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """``workbench run-reports --jobs 2`` over 50 experiments on 2,000 generated users (DuckDB),
    its process tree sampled; progress = reports finished (status.json files written). The config
    is given relative to the working directory, which is not the project root the kernels run in
    (it used to fail every report: "The config file load.yml does not exist")."""
    home = tmp_path_factory.mktemp("load-home")
    url = f"duckdb:///{home / 'load.duckdb'}"
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
    subprocess.run(
        [WORKBENCH, "generate", "--users", "2000", "--seed", "1"], check=True, capture_output=True, env=env, timeout=300
    )
    db = wb.connect(url)
    views = db.sql("SELECT userId, timestamp, experimentId, variationId FROM experiment_viewed", limit=None)
    orders = db.sql("SELECT userId, timestamp FROM orders", limit=None)
    db.dispose()
    days = views.groupby("experimentId")["timestamp"].agg(["min", "max"]).reset_index()
    days["min"], days["max"] = days["min"].dt.normalize(), days["max"].dt.normalize()
    plans = planned_experiments(EXPERIMENTS, days)
    config = home / "load.yml"
    config.write_text(config_text(plans), encoding="utf-8")
    reports = home / "reports"

    def finished() -> int:
        return len(list(reports.glob("*/status.json")))

    workdir = home / "elsewhere"
    workdir.mkdir()
    result, sampler, seconds = run_measured(
        [WORKBENCH, "run-reports", "--config", "../load.yml", "--jobs", "2"], env, finished, cwd=workdir
    )
    return home, plans, result, sampler, seconds, views, orders


@pytest.mark.notebook
def test_run_reports_over_50_experiments_keeps_memory_flat(batch, ledger):
    home, plans, result, sampler, seconds, views, orders = batch
    assert result.returncode == 0, result.stderr[-3000:]
    assert sum(line.startswith("ok ") for line in result.stdout.splitlines()) == EXPERIMENTS
    for plan in plans:
        results = load_report_cache(home / "reports" / plan.key / "cache").results
        units = pandas_units(views, orders, plan)
        srm = results.health.srm.set_index("dimension").loc["overall"]
        counts = units["variation"].value_counts()
        assert len(counts) >= 2, plan  # every window holds traffic in two arms at least
        assert {k[len("users_") :]: v for k, v in srm.items() if k.startswith("users_")} == {
            str(v): int(n) for v, n in counts.items()
        }, plan.key
        if plan.goal == "purchased":
            means = units.groupby("variation")["purchased"].mean()
            table = results.table
            for r in table[(table["metric"] == "purchased") & (table["dimension"] == "overall")].to_dict("records"):
                assert r["mean"] == pytest.approx(means[r["variation"]], rel=1e-9), plan.key
                assert r["baseline_mean"] == pytest.approx(means[r["baseline"]], rel=1e-9), plan.key
    index = (home / "reports" / "index.html").read_text()
    assert all(plan.key in index for plan in plans)
    # memory: the peak over all 50 is the peak of the first 10 (within 15% + 40 MB), and the
    # run-reports process and its workers (kernels aside) do not grow from report 10 to report 50
    first_ten, whole = sampler.peak(until_progress=10), sampler.peak()
    host_at_ten = max(s.host_mb for s in sampler.samples if 10 <= s.progress < 12)
    host_at_end = max(s.host_mb for s in sampler.samples if s.progress >= EXPERIMENTS - 2)
    assert whole <= first_ten * 1.15 + 40, (first_ten, whole)
    assert host_at_end <= host_at_ten * 1.1 + 40, (host_at_ten, host_at_end)
    assert max(s.kernels for s in sampler.samples) <= 2  # one kernel per job at most
    bases = len({plan.base for plan in plans})
    ledger(
        "Load",
        f"`workbench run-reports --jobs 2` over {EXPERIMENTS} experiments (the {bases} generated experiments under "
        f"{-(-EXPERIMENTS // bases)} windows each, 2,000 users, DuckDB; config given relative to another directory); "
        f"units per variation of all {EXPERIMENTS} and the purchased means checked against pandas",
        f"all {EXPERIMENTS} ok in {seconds:.0f} s ({seconds / EXPERIMENTS:.1f} s per report); peak RSS of the process tree "
        f"{first_ten:.0f} MB over the first 10 reports, {whole:.0f} MB over all 50; run-reports and its workers "
        f"{host_at_ten:.0f} MB at report 10, {host_at_end:.0f} MB at report 50; at most {max(s.kernels for s in sampler.samples)} kernels at once",
    )


# --- the dashboard with 10 viewers at once ------------------------------------------------------------
CHART = "() => { const e = document.querySelector('.wb-interval-chart'); return e ? e.innerHTML : ''; }"
TABLE = "() => { const e = document.querySelector('.wb-results'); return e ? e.innerText : ''; }"
# Above the longest a page's kernel waits for its browser: 10 pages rendering at once on 2 cores
# took 80-93 s, and a kernel whose page had not connected after 60 s was once culled under it.
CULL_IDLE_SECONDS, CULL_INTERVAL_SECONDS = 120, 2
RENDER_SECONDS = 180  # no reloads: a page Voila left waiting for a lost execute reply (voila#1446) fails the test
# (workbench.reports.voila_server is the repair; before it, 1-3 pages in 10 hung here)
HANG = "https://github.com/voila-dashboards/voila/issues/1446"


async def viewers(base_url: str, picks: list[str]) -> tuple[list[dict], list[str]]:
    """Open one browser context per entry of ``picks`` at once; each waits up to ``RENDER_SECONDS``
    for the results table and chart, then picks its experiment and waits for the chart to change.
    Returns per viewer the seconds to render and to answer and the table after the pick, and every
    request that left the server (refused)."""
    from playwright.async_api import async_playwright

    external: list[str] = []

    async def route(r):
        if r.request.url.startswith(base_url):
            await r.continue_()
        else:
            external.append(r.request.url)
            await r.abort()

    async def rendered(page, seconds: float) -> None:
        await page.wait_for_selector(".wb-results", state="visible", timeout=seconds * 1000)
        await page.wait_for_selector(".wb-interval-chart", state="visible", timeout=seconds * 1000)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        contexts = [await browser.new_context(viewport={"width": 1280, "height": 1000}) for _ in picks]

        async def view(context, pick: str) -> dict:
            await context.route("**/*", route)
            page = await context.new_page()
            started = time.perf_counter()
            await page.goto(base_url, timeout=RENDER_SECONDS * 1000, wait_until="commit")
            await rendered(page, RENDER_SECONDS)
            seconds = time.perf_counter() - started
            before = await page.evaluate(CHART)
            started = time.perf_counter()
            await page.locator("select").nth(0).select_option(pick)
            await page.wait_for_function(f"(b) => ({CHART})() !== b", arg=before, timeout=180_000)
            answered = time.perf_counter() - started
            return {"rendered": seconds, "answered": answered, "table": await page.evaluate(TABLE), "first": before}

        results = await asyncio.gather(*(view(c, pick) for c, pick in zip(contexts, picks)))
        for context in contexts:
            await context.close()
        await browser.close()
    return list(results), external


@pytest.mark.browser
@pytest.mark.notebook
def test_dashboard_serves_10_viewers_at_once_and_culls_their_kernels(batch, ledger):
    from workbench.reports.dashboard import IOPUB_TIMEOUT_SECONDS, WARM_KERNELS, voila_command, voila_environment

    home, plans, _result, _sampler, _seconds, views, orders = batch
    port = free_port()
    command = voila_command(port, cull_idle_seconds=CULL_IDLE_SECONDS, cull_interval_seconds=CULL_INTERVAL_SECONDS)
    log_path = home / "voila-load.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**voila_environment(), "WORKBENCH_HOME": str(home)}
        )
        try:
            wait_for_port(port)
            sampler = TreeSampler(server.pid)
            idle_mb = sampler.settled(WARM_KERNELS)  # the kernel kept warm for the first viewer
            picks = [plans[i].key for i in range(1, 2 * VIEWERS, 2)]  # ten different experiments, none the first shown
            results, external = asyncio.run(viewers(f"http://127.0.0.1:{port}/", picks))
            closed = time.perf_counter()
            while sampler.samples[-1].kernels > WARM_KERNELS and time.perf_counter() - closed < CULL_IDLE_SECONDS + 60:
                time.sleep(0.5)
            culled_after = time.perf_counter() - closed
            time.sleep(1)
            samples = sampler.stop()
        finally:
            server.terminate()
            server.wait(timeout=30)
    log_text = log_path.read_text()
    assert not external, external  # no CDN, no font, nothing outside the server
    by_key = {p.key: p for p in plans}
    for pick, result in zip(picks, results):
        counts = pandas_units(views, orders, by_key[pick])["variation"].value_counts()
        control = min(counts.index)
        treated = [v for v in sorted(counts.index) if v != control]
        for variation in treated:  # each arm's units, counted under its value in every row of the goal metric
            for arm in (control, variation):
                assert f"{counts[arm]:,} units" in result["table"], (pick, result["table"])
        assert result["first"]  # a chart was drawn before the pick
    peak_kernels = max(s.kernels for s in samples)
    peak_mb = max(s.tree_mb for s in samples)
    after_mb = samples[-1].tree_mb
    assert peak_kernels == VIEWERS + WARM_KERNELS  # one kernel per page and the next one's, warm; no more
    started_kernels = log_text.count("Kernel started:")
    culled = log_text.count("seconds of inactivity")  # jupyter_server's line per culled kernel
    assert started_kernels == VIEWERS + WARM_KERNELS, log_text[-3000:]  # the first warm one, then a refill per viewer
    assert culled == VIEWERS and samples[-1].kernels == WARM_KERNELS, log_text[-3000:]  # the warm one stays
    assert "waiting for execute reply" not in log_text, log_text[-3000:]
    assert "Timeout waiting for IOPub output" not in log_text, log_text[-3000:]  # no page lost its widgets
    assert (peak_mb - idle_mb) / VIEWERS < 400  # per viewer
    assert after_mb < idle_mb + 150, (idle_mb, after_mb)  # the kernels' memory is given back
    rendered = sorted(r["rendered"] for r in results)
    answered = sorted(r["answered"] for r in results)
    assert answered[-1] < 120
    ledger(
        "Load",
        f"{VIEWERS} Playwright viewers opening the Voila dashboard at once (one Chromium, 2 cores), each picking another "
        f"experiment; kernels culled after {CULL_IDLE_SECONDS} s idle; every request outside the server refused and recorded",
        f"all {VIEWERS} rendered the results table and chart (median {rendered[len(rendered) // 2]:.1f} s, slowest {rendered[-1]:.1f} s) and "
        f"answered the pick with pandas' unit counts (median {answered[len(answered) // 2]:.1f} s, slowest {answered[-1]:.1f} s); "
        f"{peak_kernels} kernels at most; Voila + kernels {idle_mb:.0f} MB idle, {peak_mb:.0f} MB peak "
        f"({(peak_mb - idle_mb) / VIEWERS:.0f} MB per viewer), {after_mb:.0f} MB after every kernel was culled "
        f"({culled} culled, the last {culled_after:.0f} s after the viewers closed); 0 external requests (the CDN Font Awesome links are gone); "
        f"no page hung on a lost execute reply ({HANG}; before workbench.reports.voila_server's sliced waits 1-3 pages in 10 did) "
        f"and none lost its widgets to Voila's 4 s wait for a cell's outputs (now {IOPUB_TIMEOUT_SECONDS} s; one page in 10 did, 2026-12-04)",
    )


# --- ingestion of 1,000,000 lines, 1% malformed ----------------------------------------------------
LINES, MALFORMED_SHARE = 1_000_000, 0.01
PRODUCER_KEY = "load-test-key-0001"
MALFORMED = {  # a bad line -> the start of the quarantine reason it must get
    b"{not json": "the line is not valid JSON",
    b'{"type": "page_view"}': "userId or anonymousId is required",
    b'{"userId": "u-1", "data": {"path": "/"}}': "type is required",
    b'{"type": "x", "userId": "u-1", "data": {"a": {"b": 1}}}': "data.a holds a nested dict",
    b"\xff\xfe not utf-8": "the line is not valid UTF-8",
    b'{"type": "x", "anonymousId": "a-1", "occurredAt": "yesterday"}': "occurredAt 'yesterday' is neither ISO 8601",
}


def events_file(folder: Path) -> tuple[Path, dict[int, str], pd.Series, int]:
    """``LINES`` lines of simulated events with 1% malformed lines at random places; (path, line
    number -> expected reason, good events per type, good payload pairs)."""
    from workbench.events.simulate import simulate_stream

    bad = int(LINES * MALFORMED_SHARE)
    records = simulate_stream(round((LINES - bad) / 13), seed=11).records()[: LINES - bad]
    assert len(records) == LINES - bad
    rng = random.Random(11)
    bad_lines = set(rng.sample(range(1, LINES + 1), bad))
    kinds = list(MALFORMED)
    expected: dict[int, str] = {}
    good = iter(records)
    path = folder / "events.jsonl"
    with path.open("wb") as out:
        for number in range(1, LINES + 1):
            if number in bad_lines:
                line = kinds[number % len(kinds)]
                expected[number] = MALFORMED[line]
                out.write(line + b"\n")
            else:
                out.write(json.dumps(next(good)).encode() + b"\n")
    types = pd.Series([r["type"] for r in records]).value_counts()
    pairs = sum(len(r["data"]) for r in records)
    return path, expected, types, pairs


@pytest.mark.postgres
def test_ingest_1m_lines_with_1pct_malformed_accounts_for_every_line(tmp_path, pg_server, ledger):
    path, expected, types, pairs = events_file(tmp_path)
    (tmp_path / "workbench.yml").write_text(f"events:\n  api_keys:\n    loadtest: {PRODUCER_KEY}\n", encoding="utf-8")
    pg_server.create_database("load_events")
    url = pg_server.url_with_password("load_events")
    quarantine = tmp_path / "rejected.jsonl"
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path), "WORKBENCH_EVENTS_API_KEY": PRODUCER_KEY}
    env.pop("WORKBENCH_DATABASE_URL", None)

    def quarantined_so_far() -> int:
        try:
            return quarantine.read_bytes().count(b"\n")
        except OSError:
            return 0

    result, sampler, seconds = run_measured(
        [WORKBENCH, "ingest", "events", str(path), "--quarantine", str(quarantine), "--database", url],
        env,
        quarantined_so_far,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rejected = [json.loads(line) for line in quarantine.read_text().splitlines()]
    db = wb.connect(url)
    stored = db.sql("SELECT type, count(*) AS n FROM grouparoo.events GROUP BY type").set_index("type")["n"]
    stored_pairs = int(db.sql("SELECT count(*) AS n FROM grouparoo.event_data")["n"].iloc[0])
    db.dispose()
    assert int(stored.sum()) + len(rejected) == LINES  # in = stored + quarantined, exactly
    assert stored.sort_index().to_dict() == types.sort_index().to_dict() and stored_pairs == pairs
    assert {r["line"]: r["reason"] for r in rejected}.keys() == expected.keys()
    wrong = [(r["line"], r["reason"]) for r in rejected if not r["reason"].startswith(expected[r["line"]])]
    assert not wrong, wrong[:5]
    assert f"stored {LINES - len(expected):,}, quarantined {len(expected):,}" in result.stdout, result.stdout
    # memory: the ingesting process streams (one batch of 50,000 at a time), so the peak of the
    # whole run is the peak of its first fifth (within 15% + 30 MB). On DuckDB the same run grows
    # from ≈390 to ≈810 MB: the database engine in the process holds its ART indexes in memory.
    early, whole = sampler.peak(until_progress=len(expected) // 5), sampler.peak()
    assert whole <= early * 1.15 + 30, (early, whole)
    size_mb = path.stat().st_size / MB
    ledger(
        "Load",
        f"`workbench ingest events` of {LINES:,} JSON lines ({size_mb:.0f} MB) with {len(expected):,} malformed (6 kinds: "
        "invalid JSON, no ids, no type, nested data, invalid UTF-8, bad occurredAt) at random places, into PostgreSQL",
        f"in = stored + quarantined exactly: {LINES:,} = {int(stored.sum()):,} + {len(rejected):,}; events per type and "
        f"{stored_pairs:,} payload pairs as planted; every malformed line quarantined with its line number and reason; "
        f"{seconds:.0f} s ({LINES / seconds:,.0f} lines/s); peak RSS of the ingesting process {early:.0f} MB over the first fifth, {whole:.0f} MB overall",
    )
