"""The ``lab`` command: JupyterLab on 127.0.0.1 with the project's kernel and notebooks folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.app import app, fail, say

KERNEL_NAME = "python3"  # the kernelspec every workbench notebook names
TOKEN_ENV = "JUPYTER_TOKEN"  # Jupyter Server reads its token from here


def ensure_project_kernel() -> str:
    """Register this Python as the ``python3`` kernel in this environment unless it already is.

    Returns the interpreter the kernel runs.
    """
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv
    except NoSuchKernel:
        argv = []
    if not argv or not _runs_this_python(argv[0]):
        install(kernel_name=KERNEL_NAME, display_name="Python 3 (workbench)", prefix=sys.prefix)
        argv = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv
    return argv[0]


def _runs_this_python(interpreter: str) -> bool:
    """True for this environment's python (any of its names in its bin folder) or a bare name."""
    return interpreter in ("python", "python3") or Path(interpreter).parent == Path(sys.executable).parent


def lab_arguments(port: int, open_browser: bool) -> list[str]:
    """The ``python -m jupyter lab`` command line: loopback only, the notebooks folder as root."""
    from workbench import paths

    arguments = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={paths.notebooks_dir()}",
        f"--ServerApp.open_browser={open_browser}",
    ]
    if os.geteuid() == 0:  # containers often run as root; the server only listens on loopback
        arguments.append("--ServerApp.allow_root=True")
    return arguments


def lab_token() -> str:
    """The server's access token: ``$JUPYTER_TOKEN`` when set, else a new random one put there, so
    the server takes it from its environment (never the command line, which ``ps`` shows) and the
    address printed first already opens the lab."""
    import secrets

    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    return token


@app.command("lab")
def lab_command(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (it must be free).")] = 8888,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open a browser tab.")] = False,
) -> None:
    """Start JupyterLab on 127.0.0.1 with the project's kernel and the notebooks folder open."""
    if not 1 <= port <= 65535:
        fail(f"--port {port} is not a TCP port: pick one between 1024 and 65535.")
    kernel = ensure_project_kernel()
    token = lab_token()
    say(f"JupyterLab: http://127.0.0.1:{port}/lab?token={token}")
    say(f"(open that address; kernel {KERNEL_NAME}: {kernel}; stop it with Ctrl-C)")
    arguments = lab_arguments(port, browser)
    sys.stdout.flush()
    os.execv(arguments[0], arguments)  # JupyterLab takes this process over: signals reach it directly
