"""What a report page loads besides itself: plotly.js (about 4.8 MB) and JupyterLab's stylesheet
(about 250 KB). Experiment reports link one shared copy of each under ``reports/`` by a relative
address, so pages stay small and still open offline, from file:// too; a standalone page (for
e-mail) inlines both.
"""

from __future__ import annotations

from pathlib import Path

from workbench.files import atomic_write

PLOTLY_MIME = "application/vnd.plotly.v1+json"  # what a figure leaves in a notebook: its JSON only
LAB_STYLESHEETS = ("index.css", "theme-light.css")  # nbconvert's lab template, light theme


def plotly_js() -> str:
    """The minified plotly.js shipped with the installed plotly package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def lab_stylesheet() -> str:
    """JupyterLab's light-theme stylesheet as nbconvert's lab template ships it (one text)."""
    from jupyter_core.paths import jupyter_path

    for folder in map(Path, jupyter_path("nbconvert", "templates", "lab", "static")):
        if all((folder / name).is_file() for name in LAB_STYLESHEETS):
            return "\n".join((folder / name).read_text(encoding="utf-8") for name in LAB_STYLESHEETS)
    raise FileNotFoundError("nbconvert's lab template stylesheets are not installed")


def asset_names() -> dict[str, str]:
    """The shared files by role (``plotly``, ``stylesheet``), named for the versions they come from,
    so pages written before an upgrade keep the files they were made with."""
    from importlib.metadata import version

    from plotly.offline import get_plotlyjs_version

    return {"plotly": f"plotly-{get_plotlyjs_version()}.min.js", "stylesheet": f"jupyterlab-{version('nbconvert')}.css"}


def asset_texts() -> dict[str, str]:
    """The shared files' contents by role, as :func:`asset_names`."""
    return {"plotly": plotly_js(), "stylesheet": lab_stylesheet()}


def write_page_assets(folder: Path) -> dict[str, Path]:
    """Write the shared files into ``folder`` (each atomically) unless already there whole; returns
    their paths by role."""
    written = {}
    for role, text in asset_texts().items():
        target = Path(folder) / asset_names()[role]
        if not target.is_file() or target.stat().st_size != len(text.encode("utf-8")):
            atomic_write(target, text)
        written[role] = target
    return written


def has_plotly_figures(notebook: dict) -> bool:
    """True when any output of ``notebook`` (nbformat 4) holds a plotly figure."""
    return any(
        PLOTLY_MIME in output.get("data", {})
        for cell in notebook.get("cells", [])
        if cell.get("cell_type") == "code"
        for output in cell.get("outputs", [])
    )
