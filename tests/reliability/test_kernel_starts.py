"""Kernels started at the same moment (issue 9): ``run-reports --jobs 2`` once lost a report when two
kernels took the same TCP port ("Address already in use"). Report kernels now connect through Unix
sockets in a folder of their own; these runs start them together for real, in separate processes."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.reliability, pytest.mark.notebook]

KERNELS = 6
# A purpose-built notebook: the kernel prints the transport and address of its own connection file,
# and whether the folder of that address exists while it runs.
CONNECTION_CELL = (
    "import json, os, ipykernel.connect\n"
    "info = json.load(open(ipykernel.connect.get_connection_file()))\n"
    "print(info['transport'], os.path.isdir(os.path.dirname(info['ip'])), info['ip'])"
)


def one_cell_notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)
    return path


def connection_notebook(path: Path) -> Path:
    return one_cell_notebook(path, CONNECTION_CELL)


def run_with_kernel_sockets(source: str, output: str) -> tuple[str, bool]:
    """Execute ``source`` as the report runner does: ``transport address`` from the kernel's own
    connection file, and whether the address's folder existed while the kernel ran."""
    from workbench.reports.notebooks import execute_notebook

    execute_notebook(Path(source), Path(output), {}, {})
    transport, existed, address = nbformat.read(output, as_version=4).cells[0].outputs[0]["text"].split()
    return f"{transport} {address}", existed == "True"


def test_a_report_kernel_uses_unix_sockets_in_a_private_folder_removed_afterwards(tmp_path):
    source = connection_notebook(tmp_path / "connection.ipynb")
    line, existed = run_with_kernel_sockets(str(source), str(tmp_path / "out.ipynb"))
    transport, address = line.split(" ", 1)
    folder = Path(address).parent
    assert transport == "ipc"
    assert existed and folder.name.startswith("wb-kernel-")
    assert len(address) < 100  # a Unix socket path must fit in 108 bytes
    assert not folder.exists()


def _start_together(barrier, source: str, output: str, results) -> None:
    barrier.wait()
    try:
        results.put(("ok", *run_with_kernel_sockets(source, output)))
    except Exception as exc:  # the parent reports what failed
        results.put(("failed", f"{type(exc).__name__}: {exc}", False))


def test_kernels_started_at_once_by_separate_processes_all_run(tmp_path, ledger):
    source = str(connection_notebook(tmp_path / "connection.ipynb"))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(KERNELS), context.Queue()
    workers = [
        context.Process(target=_start_together, args=(barrier, source, str(tmp_path / f"out-{i}.ipynb"), results))
        for i in range(KERNELS)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    seconds = time.perf_counter() - started
    failures = [detail for status, detail, _ in outcomes if status != "ok"]
    assert not failures
    addresses = [detail.split(" ", 1)[1] for _, detail, _ in outcomes]
    assert all(detail.startswith("ipc ") for _, detail, _ in outcomes)
    assert len({str(Path(a).parent) for a in addresses}) == KERNELS
    assert not any(Path(a).parent.exists() for a in addresses)
    ledger(
        "Load",
        f"{KERNELS} report kernels started at the same moment by {KERNELS} processes (a barrier before papermill), "
        "as `run-reports --jobs N` starts them; once 1 report in 50 died with 'Address already in use' when two kernels "
        "took the same TCP port",
        f"all {KERNELS} ran ({seconds:.0f} s): each connected over Unix sockets (ZeroMQ ipc) in a folder of its own, "
        "no TCP port picked; every folder removed afterwards",
    )


def test_what_a_kernel_writes_to_its_own_stderr_stays_out_of_the_command_output(tmp_path):
    """ipykernel 7.4 sometimes prints a ZMQ traceback while it shuts down (a CI run failed on one in
    a command's stderr); anything the kernel process writes to its standard error after the cells
    ran, as that traceback is, goes to a file of its own, not to the command's output."""
    source = one_cell_notebook(
        tmp_path / "at-exit.ipynb", "import atexit, os\natexit.register(os.write, 2, b'kernel stderr at exit\\n')"
    )
    runner = (
        "import sys; from pathlib import Path; from workbench.reports.notebooks import execute_notebook; "
        "execute_notebook(Path(sys.argv[1]), Path(sys.argv[2]), {}, {})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", runner, str(source), str(tmp_path / "out.ipynb")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.ipynb").is_file()
    assert "kernel stderr at exit" not in proc.stderr + proc.stdout


def test_a_kernel_that_dies_at_start_is_reported_with_its_last_words(tmp_path):
    """A broken kernel install prints why on its standard error: the run's error carries that line."""
    from workbench.reports.notebooks import execute_notebook

    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "ipykernel_launcher.py").write_text(
        "import sys\nsys.stderr.write('Traceback (most recent call last):\\nImportError: a broken kernel install\\n')\n"
        "sys.exit(1)\n",
        encoding="utf-8",
    )
    source = one_cell_notebook(tmp_path / "one.ipynb", "print(1)")
    with pytest.raises(RuntimeError, match=r"Kernel died.*last words: ImportError: a broken kernel install"):
        execute_notebook(source, tmp_path / "out.ipynb", {}, {"PYTHONPATH": str(shadow)})
