"""New work from the templates in ``templates/``: an experiment entry appended to the config
file (comments and layout kept, validated before it is kept) and an analysis notebook."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from workbench import paths
from workbench.errors import ConfigError, WorkbenchError

NOTEBOOK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")  # \Z: $ would let a trailing newline through


def experiment_entry(key: str, assignment_query: str, start: dt.date, end: dt.date) -> str:
    """``templates/workbench/experiment.yml`` filled in for ``key`` (a YAML list item)."""
    template = (paths.templates_dir() / "workbench" / "experiment.yml").read_text(encoding="utf-8")
    return template.format(key=key, assignment_query=assignment_query, start=start.isoformat(), end=end.isoformat())


def new_experiment(key: str, config_path: Path | None = None, today: dt.date | None = None) -> Path:
    """Append an entry for ``key`` (first assignment query, starting ``today``, four weeks long) to
    the config file, keeping its comments; the file is checked with the entry and left unchanged
    if the result is invalid. Returns the config path."""
    from workbench.experiments.config import EXPERIMENT_KEY, load_config

    config = load_config(config_path)
    if not EXPERIMENT_KEY.match(key):
        raise ConfigError(f"experiment key {key!r} may hold only letters, digits and _ . : - (e.g. new-checkout).")
    if key in config.experiments:
        raise ConfigError(f"{config.path}: experiment {key!r} already exists; pick another key or edit its entry.")
    if not config.assignment_queries:
        raise ConfigError(
            f"{config.path}: define an assignment query under 'assignment_queries' before adding experiments."
        )
    today = today or dt.date.today()
    entry = experiment_entry(key, next(iter(config.assignment_queries)), today, today + dt.timedelta(days=27))
    original = config.path.read_text(encoding="utf-8")
    lines = original.splitlines()
    header = next((i for i, line in enumerate(lines) if re.match(r"^experiments\s*:", line)), None)
    if header is None:
        lines += ["", "experiments:"]
        header = len(lines) - 1
    lines[header] = "experiments:"
    after = next((i for i in range(header + 1, len(lines)) if re.match(r"^[A-Za-z_]", lines[i])), len(lines))
    while after > header + 1 and not lines[after - 1].strip():
        after -= 1
    indent = next((m.group(1) for line in lines[header + 1 : after] if (m := re.match(r"^(\s*)- ", line))), "  ")
    lines[after:after] = [indent + line if line else line for line in entry.splitlines()]
    config.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_config(config.path)
    except ConfigError:
        config.path.write_text(original, encoding="utf-8")
        raise
    return config.path


def new_analysis(name: str, directory: Path | None = None) -> Path:
    """``<directory>/<name>.ipynb`` (default: ``notebooks/``) from ``templates/notebooks/analysis.ipynb``,
    titled after ``name``."""
    if not NOTEBOOK_NAME.match(name):
        raise WorkbenchError(
            f"notebook name {name!r} must be letters, digits and _ starting with a letter (e.g. pricing_deep_dive)."
        )
    target = Path(directory or paths.notebooks_dir()) / f"{name}.ipynb"
    if target.exists():
        raise WorkbenchError(f"{target} already exists; pick another name.")
    title = name.replace("_", " ").capitalize()
    notebook = json.loads((paths.templates_dir() / "notebooks" / "analysis.ipynb").read_text(encoding="utf-8"))
    notebook["metadata"]["title"] = title
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = source.replace("{title}", title)
    target.write_text(json.dumps(notebook, indent=1) + "\n", encoding="utf-8")
    return target
