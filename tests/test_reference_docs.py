"""The generated reference pages (docs/reference/) are current, cover every config key and every
notebook parameter, and the mistakes found while writing them stay fixed."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from workbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_committed_reference_pages_are_what_the_generator_writes_now():
    from tools.reference_docs import reference_pages

    stale = [
        relative
        for relative, text in reference_pages().items()
        if not (ROOT / relative).exists() or (ROOT / relative).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"{stale} differ from the code: run `python -m tools.reference_docs` and commit them."


def test_every_key_the_loaders_accept_is_documented_and_nothing_else():
    from tools.reference_config import accepted_keys, documented_keys

    assert accepted_keys() == documented_keys()


def _parameters_cell_names(path: Path) -> list[str]:
    """Names assigned in the notebook's `parameters` cell, read with Python's own parser."""
    notebook = nbformat.read(path, as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    tree = ast.parse(cell.source)
    return [
        node.target.id if isinstance(node, ast.AnnAssign) else node.targets[0].id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_papermill_sees_every_parameter_of_every_notebook(path: Path):
    """`papermill --help-notebook` drops a line holding two '=' (e.g. a comment `"" = all`)."""
    assert list(papermill.inspect_notebook(str(path))) == _parameters_cell_names(path)


def test_a_bad_bayesian_prior_is_a_config_error_naming_the_file(tmp_path: Path):
    from tools.reference_config import BASE_CONFIG
    from workbench.config_check import validate_config_file

    data = yaml.safe_load(BASE_CONFIG)
    data["experiments"][0]["analysis"] = {"engine": "bayesian", "prior": {"sd": 0, "proper": True}}
    path = tmp_path / "workbench.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"workbench\.yml: experiments\[checkout-layout\]\.analysis: prior sd must be positive"
    ):
        validate_config_file(path)


def test_a_bare_on_key_in_unit_join_is_read_as_on(tmp_path: Path):
    """YAML 1.1 reads `on:` as the boolean true; the documented example must still work."""
    from workbench.toolkit.sources import configured_sources

    path = tmp_path / "workbench.yml"
    path.write_text(
        "event_sources:\n  clicks:\n    table: clicks\n    unit: account_id\n    timestamp: at\n"
        "    unit_join: {table: visits, on: visit_id, key: id}\n",
        encoding="utf-8",
    )
    assert yaml.safe_load(path.read_text())["event_sources"]["clicks"]["unit_join"] == {
        "table": "visits",
        True: "visit_id",
        "key": "id",
    }
    join = configured_sources(path)["clicks"].unit_join
    assert (join.table, join.on, join.key) == ("visits", "visit_id", "id")
