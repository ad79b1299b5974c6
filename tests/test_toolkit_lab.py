"""``workbench lab`` serves JupyterLab on 127.0.0.1; the starter notebook runs under papermill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from support.pg_server import free_port
from workbench import paths

WORKBENCH = Path(sys.executable).parent / "workbench"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        return json.loads(answer.read())


def test_lab_serves_the_notebooks_with_the_project_kernel(tmp_path):
    port = free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [str(WORKBENCH), "lab", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                version = _get(f"http://127.0.0.1:{port}/api")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "lab.log").read_text()
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(0.5)
        assert "version" in version
        runtime = next((tmp_path / "runtime").glob("jpserver-*.json"))
        info = json.loads(runtime.read_text())
        assert info["hostname"] == "127.0.0.1" and info["port"] == port
        assert Path(info["root_dir"]) == paths.notebooks_dir()
        first = (tmp_path / "lab.log").read_text().splitlines()[0]  # the address comes first, tokened
        token = info["token"]
        assert first == f"JupyterLab: http://127.0.0.1:{port}/lab?token={token}" and len(token) >= 32
        with pytest.raises(urllib.error.HTTPError, match="403"):
            _get(f"http://127.0.0.1:{port}/api/contents")  # nothing without it
        specs = _get(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}")
        kernel = specs["kernelspecs"]["python3"]["spec"]["argv"][0]
        assert kernel in ("python", "python3") or Path(kernel).parent == Path(sys.executable).parent
        listing = _get(f"http://127.0.0.1:{port}/api/contents?token={token}")
        assert "explore_events.ipynb" in {item["name"] for item in listing["content"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_lab_rejects_a_bad_port():
    result = subprocess.run(
        [str(WORKBENCH), "lab", "--port", "70000"], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and result.stderr.startswith("error: --port 70000 is not a TCP port")


def test_starter_notebook_has_the_house_shape():
    nb = nbformat.read(paths.notebooks_dir() / "explore_events.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == "import workbench as wb\ndb = wb.connect()"
    assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])] == [code[1]]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.notebook
@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)  # the queries themselves run on both engines elsewhere
def test_starter_notebook_runs_on_the_growthbook_sample(growthbook_url, sample_dir, tmp_path):
    from workbench.reports.notebooks import run_notebook

    run = run_notebook(
        "explore_events.ipynb", tmp_path, {"inactivity": "45min", "funnel_by": "browser"}, database_url=growthbook_url
    )
    nb = nbformat.read(run.notebook, as_version=4)
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    )
    pages = pd.read_csv(sample_dir / "pageViews.csv.gz", dtype=str, keep_default_na=False, na_values=[r"\N"])
    pages = pages.dropna(subset=["userId"]).assign(timestamp=lambda f: pd.to_datetime(f["timestamp"]))
    pages = pages.sort_values(["userId", "timestamp"])
    gap = pages.groupby("userId")["timestamp"].diff()
    sessions = int((gap.isna() | (gap > pd.Timedelta("45min"))).sum())
    assert f"{sessions:,} sessions of {pages['userId'].nunique():,} units" in text
    assert "date_trunc('day', ts)" in text  # the SQL is visible in the report
    assert run.html.stat().st_size > 0
    figures = [
        o for c in nb.cells for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figures) == 5


@pytest.mark.notebook
def test_toolkit_charts_survive_a_plain_nbconvert_export(tmp_path, monkeypatch):
    """A funnel drawn in a kernel with plotly's default renderer (its JSON only, which nbconvert
    drops) also leaves a PNG of itself, made by kaleido in Debian's Chromium: JupyterLab keeps the
    interactive figure, `jupyter nbconvert --to html` shows the image."""
    import base64
    import struct

    import papermill as pm

    for name in ("PLOTLY_RENDERER", "WORKBENCH_CHART_IMAGES"):
        monkeypatch.delenv(name, raising=False)
    code = (
        "import pandas as pd\nfrom workbench.toolkit.frames import Funnel\n"
        "steps = pd.DataFrame({'step': ['/', '/cart', '/success'], 'units': [100, 40, 10]})\n"
        "Funnel.of(steps, 'SELECT 1', {}).plot()"
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(code)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, tmp_path / "funnel.ipynb")
    pm.execute_notebook(
        str(tmp_path / "funnel.ipynb"), str(tmp_path / "run.ipynb"), progress_bar=False, cwd=str(tmp_path)
    )
    (output,) = nbformat.read(tmp_path / "run.ipynb", as_version=4).cells[0].outputs
    assert set(output["data"]) == {"application/vnd.plotly.v1+json", "image/png"}
    assert output["data"]["application/vnd.plotly.v1+json"]["data"][0]["type"] == "funnel"
    png = base64.b64decode(output["data"]["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (900, 420)  # width, height
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(tmp_path / "run.ipynb")],
        check=True,
        capture_output=True,
    )
    page = (tmp_path / "run.html").read_text()
    assert f'src="data:image/png;base64,{output["data"]["image/png"]}"' in page.replace("\n", "")
