"""Execute a parameterized notebook with papermill and export it as a code-free HTML report.

Outputs are written atomically (temporary file, then rename), so a failed run never replaces
the last good report; a failed notebook is kept beside it as ``<stem>.failed.ipynb``.
The database URL never travels as a notebook parameter: the kernel inherits it through
``$WORKBENCH_DATABASE_URL``, so executed notebooks never hold it.
"""

from __future__ import annotations

import ast
import datetime as dt
import errno
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.db.settings import URL_ENV
from workbench.display import CHART_IMAGES_ENV
from workbench.errors import WorkbenchError, did_you_mean, shown
from workbench.files import atomic_write, temporary_file
from workbench.paths import CONFIG_ENV, shown_path
from workbench.redaction import redact
from workbench.reports.page_assets import PLOTLY_MIME, asset_names, has_plotly_figures, plotly_js

KERNEL_NAME = "python3"
# The kernel talks to us over loopback only; its "running over TCP without encryption" warning
# would otherwise print on every report run, and its "KeyboardInterrupt caught in kernel" whenever
# a run is aborted while a cell executes (jupyter_client interrupts the kernel it shuts down).
# Cell errors reach us through papermill, not this log.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
REPORT_ENV = {
    # Figures leave only their JSON in the notebook (no 4.8 MB plotly.js per run); export_html draws
    # them with the shared script or an inlined one.
    "PLOTLY_RENDERER": "plotly_mimetype",
    "WORKBENCH_PROGRESS": "0",  # no progress widgets in executed reports
    CHART_IMAGES_ENV: "0",  # no static chart images: export_html draws the figures' JSON
}


# A Unix socket's path must fit in 108 bytes: the kernel's sockets go under /tmp when the temporary
# folder's own path is longer than this.
SOCKET_FOLDER_MAX_CHARS = 80
KERNEL_LOG = "kernel-stderr.log"


@dataclass(frozen=True)
class NotebookRun:
    """Where an executed notebook and its HTML report were written."""

    notebook: Path
    html: Path


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _report_kernel_manager() -> type:
    """An ``AsyncKernelManager`` whose kernel writes its standard error to ``stderr_path`` instead of
    ours: ipykernel's own shutdown races (an "Uncaught exception in ZMQStream callback" traceback
    when its iopub socket closes first) would otherwise print into every command's output."""
    from jupyter_client import AsyncKernelManager
    from traitlets import Unicode

    class ReportKernelManager(AsyncKernelManager):
        stderr_path = Unicode("", config=True, help="File that receives the kernel's standard error.")

        async def start_kernel(self, **kw: Any) -> None:
            if self.stderr_path:
                with open(self.stderr_path, "ab") as stderr:  # the kernel keeps its own descriptor
                    kw["stderr"] = stderr
                    await super().start_kernel(**kw)
            else:
                await super().start_kernel(**kw)

    return ReportKernelManager


@contextmanager
def kernel_sockets() -> Iterator[tuple[dict[str, Any], Path]]:
    """papermill engine options that connect the report kernel through Unix sockets (ZeroMQ
    ``ipc``) in a private folder, removed afterwards, instead of TCP ports; and the file there that
    receives the kernel's standard error (:data:`KERNEL_LOG`).

    jupyter_client picks "free" TCP ports by binding port 0 and closing the socket before the
    kernel binds it, so a kernel started at the same moment by another process
    (``run-reports --jobs N``) could take the same port, and one of them died with "Address already
    in use". A folder of its own holds each kernel's sockets, so no other process can take them."""
    from traitlets.config import Config

    parent = tempfile.gettempdir()
    if len(parent) > SOCKET_FOLDER_MAX_CHARS:
        parent = "/tmp"
    folder = tempfile.mkdtemp(prefix="wb-kernel-", dir=parent)
    manager, stderr_path = _report_kernel_manager(), Path(folder) / KERNEL_LOG
    config = Config(
        {
            "KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")},
            manager.__name__: {"stderr_path": str(stderr_path)},
        }
    )
    try:
        yield {"config": config, "kernel_manager_class": manager}, stderr_path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def kernel_last_words(path: Path) -> str:
    """The last line a kernel wrote to its standard error file ``path`` ('' if none)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def output_error(exc: OSError, folder: Path) -> WorkbenchError:
    """One sentence for an output that could not be written to ``folder`` (a full disk says so)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WorkbenchError(
            f"No space left on device for {folder}: free some space there, then run again (the last good report is kept)."
        )
    return WorkbenchError(
        f"Writing to {folder} failed ({exc.strerror or exc}): check that folder, then run again (the last good report is kept)."
    )


def provenance_footer(notebook_name: str, parameters: dict[str, Any]) -> str:
    """The report's last line: versions, notebook, time and parameters (absolute paths among them
    shown relative to the project root, or by name: no folder of the machine in a page)."""
    from importlib.metadata import version

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    shown = {k: shown_path(v) if isinstance(v, str) and os.path.isabs(v) else v for k, v in parameters.items()}
    return (
        f"Generated by workbench {version('workbench')} from {notebook_name} on {stamp} "
        f"(Python {platform.python_version()}, parameters: {redact(shown) if shown else 'defaults'})."
    )


def export_html(
    notebook_path: Path,
    html_path: Path,
    footer: str = "",
    title: str | None = None,
    shared_assets: str | None = None,
) -> Path:
    """Write ``notebook_path`` as a code-free HTML report at ``html_path`` (atomically), titled
    ``title`` (default: the notebook's ``title`` metadata, else its name). The page links plotly.js
    and the stylesheet in the folder at ``shared_assets`` (an address relative to the page, such as
    ``"../"``, holding :func:`~workbench.reports.page_assets.write_page_assets`'s files), or,
    without one, inlines them: a standalone page (about 5 MB more when it has charts)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook_path, as_version=4)
    exporter = HTMLExporter(
        extra_template_basedirs=[str(paths.templates_dir() / "nbconvert")],
        template_name="workbench_report",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    shown = exporter.config.NbConvertBase  # the output filter the exporter makes reads its priority here
    shown.display_data_priority = [PLOTLY_MIME, *shown.display_data_priority]  # the template draws figures
    title = title or nb.metadata.get("title") or notebook_path.stem.replace("_", " ")
    nb.metadata["title"] = title  # the lab template prefers the notebook's own title
    page = {"footer": footer}
    figures = has_plotly_figures(nb)
    if shared_assets is not None:
        names = asset_names()
        page["stylesheet_href"] = shared_assets + names["stylesheet"]
        if figures:
            page["plotly_src"] = shared_assets + names["plotly"]
    elif figures:
        page["plotly_js"] = plotly_js()
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}, "workbench": page})
    atomic_write(html_path, body)
    return html_path


def execute_notebook(
    source: Path, output: Path, parameters: dict[str, Any], env: dict[str, str], cwd: Path | None = None
) -> None:
    """Execute ``source`` into ``output`` with papermill as every report run does: the kernel gets
    :data:`REPORT_ENV` and ``env`` in its environment, ``cwd`` (default: the project root) as its
    working directory and sockets of its own (:func:`kernel_sockets`); papermill's cell errors propagate, and any other
    failure (a kernel that died) carries the kernel's last line of standard error."""
    import papermill as pm

    with _environment({**REPORT_ENV, **env}), kernel_sockets() as (options, stderr_path):
        try:
            pm.execute_notebook(
                str(source),
                str(output),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                progress_bar=False,
                cwd=str(cwd or paths.project_root()),
                log_output=False,
                request_save_on_cell_execute=False,  # one write at the end, not one per cell
                extra_arguments=KERNEL_ARGUMENTS,
                **options,
            )
        except pm.PapermillExecutionError:
            raise
        except Exception as exc:
            said = kernel_last_words(stderr_path)
            if said and not isinstance(exc, OSError):  # an OSError is about our outputs, not the kernel
                raise RuntimeError(f"{exc} (the kernel's last words: {said})") from exc
            raise


def typed_parameters(source: Path, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The ``(name, text)`` pairs as values of the parameters ``source`` declares in its cell tagged
    ``parameters``, each converted to the type its annotation names (``int``, ``float``, ``bool``,
    ``str``; unannotated: a Python literal, else the text). An undeclared name, a notebook without
    such a cell or a value of the wrong type is one sentence."""
    import papermill as pm

    try:
        declared = pm.inspect_notebook(str(source))
    except Exception as exc:  # not JSON, not a notebook: nbformat's and papermill's own errors
        raise WorkbenchError(
            f"{source.name} is not a notebook that can be read ({redact(exc)}): give an .ipynb file."
        ) from None
    values: dict[str, Any] = {}
    for name, text in pairs:
        if not declared:
            raise WorkbenchError(
                f"{source.name} has no cell tagged 'parameters', so -p {name} has nothing to set: tag the cell of its settings 'parameters'."
            )
        if name not in declared:
            raise WorkbenchError(
                f"{source.name} has no parameter {shown(name)}: it declares {', '.join(declared)}.{did_you_mean(name, declared)}"
            )
        kind = declared[name]["inferred_type_name"]
        values[name] = _typed_value(name, text, kind, source.name)
    return values


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _typed_value(name: str, text: str, kind: str, notebook: str) -> Any:
    """``text`` as a value of ``kind`` (a type's name from a parameters cell) for :func:`typed_parameters`."""
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            return _BOOLEANS[text.strip().lower()]
    except (ValueError, KeyError):
        raise WorkbenchError(
            f"-p {name} {shown(text)}: {notebook} declares {name} as {kind}, so give "
            + {"int": "a whole number.", "float": "a number.", "bool": "true or false."}[kind]
        ) from None
    if kind == "str":
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_notebook(
    name: str | Path,
    output_dir: Path,
    parameters: dict[str, Any] | None = None,
    database_url: str | None = None,
    stem: str | None = None,
    title: str | None = None,
    config_path: Path | None = None,
    shared_assets: str | None = None,
    cwd: Path | None = None,
) -> NotebookRun:
    """Execute the notebook ``name`` (a file in ``notebooks/``, or the absolute path of any notebook)
    with ``parameters`` into ``output_dir/<stem>.ipynb`` and ``.html``, in ``cwd`` (default: the
    project root). ``database_url`` and ``config_path`` reach the kernel as
    ``$WORKBENCH_DATABASE_URL`` and ``$WORKBENCH_CONFIG``, so every session and config the notebook
    opens is theirs; the page links the files in ``shared_assets`` or inlines them
    (:func:`export_html`)."""
    import papermill as pm

    source = paths.notebooks_dir() / name  # an absolute name stays itself
    if not source.is_file():
        raise WorkbenchError(
            f"The notebook {source} does not exist: pick one of {sorted(p.name for p in paths.notebooks_dir().glob('*.ipynb'))}."
        )
    name = source.name
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or source.stem
    final_nb, final_html = output_dir / f"{stem}.ipynb", output_dir / f"{stem}.html"
    if final_nb.resolve() == source.resolve():
        raise WorkbenchError(
            f"The executed notebook would overwrite {source}: write it to another folder (--output-dir)."
        )
    tmp_nb = temporary_file(output_dir, stem, suffix=".ipynb")
    try:
        env = {URL_ENV: database_url} if database_url else {}
        if config_path:
            env[CONFIG_ENV] = str(Path(config_path).absolute())  # the kernel runs in another folder
        execute_notebook(source, tmp_nb, parameters or {}, env, cwd=cwd)
    except pm.PapermillExecutionError as exc:
        failed = output_dir / f"{stem}.failed.ipynb"
        os.replace(tmp_nb, failed)
        raise WorkbenchError(
            f"{name} failed in cell {exc.exec_count} ({exc.ename}: {redact(exc.evalue)}); the failed notebook is kept at {failed}."
        ) from None
    except BaseException as exc:  # an interrupt (Ctrl-C, SIGTERM) leaves no temporary notebook either
        tmp_nb.unlink(missing_ok=True)
        if not isinstance(exc, Exception):
            raise
        if isinstance(exc, OSError):
            raise output_error(exc, output_dir) from None
        raise WorkbenchError(f"{name} could not be executed: {redact(exc)}") from None
    os.replace(tmp_nb, final_nb)
    try:
        export_html(
            final_nb,
            final_html,
            footer=provenance_footer(name, parameters or {}),
            title=title,
            shared_assets=shared_assets,
        )
    except OSError as exc:
        final_nb.unlink()  # no notebook without its report
        raise output_error(exc, output_dir) from None
    return NotebookRun(final_nb, final_html)
