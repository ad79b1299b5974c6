"""Report kernels connect through Unix sockets in a folder of their own: kernels started at the same
moment by separate processes (``run-reports --jobs N``) cannot take each other's ports."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.notebook

# A purpose-built notebook: the kernel prints the transport and address of its own connection file.
CONNECTION_CELL = (
    "import json, ipykernel.connect\n"
    "info = json.load(open(ipykernel.connect.get_connection_file()))\n"
    "print(info['transport'], info['ip'])"
)


def connection_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(CONNECTION_CELL)]
    nbformat.write(nb, path)
    return path


def run_with_kernel_sockets(source: str, output: str) -> tuple[str, bool]:
    """Execute ``source`` as the report runner does; the kernel's printed line, and whether the
    socket folder still existed while its context was open."""
    import papermill as pm

    from workbench.notebook_runs import KERNEL_ARGUMENTS, KERNEL_NAME, kernel_sockets

    with kernel_sockets() as sockets:
        folder = Path(sockets["config"]["KernelManager"]["ip"]).parent
        nb = pm.execute_notebook(source, output, kernel_name=KERNEL_NAME, progress_bar=False,
                                 extra_arguments=KERNEL_ARGUMENTS, **sockets)
        existed = folder.is_dir()
    return nb.cells[0].outputs[0]["text"].strip(), existed


def test_a_report_kernel_uses_unix_sockets_in_a_private_folder_removed_afterwards(tmp_path):
    source = connection_notebook(tmp_path / "connection.ipynb")
    line, existed = run_with_kernel_sockets(str(source), str(tmp_path / "out.ipynb"))
    transport, address = line.split(" ", 1)
    folder = Path(address).parent
    assert transport == "ipc"
    assert existed and folder.name.startswith("wb-kernel-")
    assert len(address) < 100  # a Unix socket path must fit in 108 bytes
    assert not folder.exists()


def _run_in_child(args: tuple[str, str]) -> str:
    return run_with_kernel_sockets(*args)[0]


def test_kernels_started_at_once_by_separate_processes_each_get_their_own_sockets(tmp_path):
    source = str(connection_notebook(tmp_path / "connection.ipynb"))
    jobs = [(source, str(tmp_path / f"out-{i}.ipynb")) for i in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        lines = pool.map(_run_in_child, jobs)
    addresses = [line.split(" ", 1)[1] for line in lines]
    assert all(line.startswith("ipc ") for line in lines)
    assert len({os.path.dirname(a) for a in addresses}) == 4
