"""The project's set-up files agree: pyproject.toml is the one dependency list, environment.yml a
valid conda environment that installs the project with pip, the Makefile and CI use them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_is_a_conda_env_that_installs_this_project():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert set(env) <= {"name", "channels", "dependencies"} and env["name"]
    deps = env["dependencies"]
    conda_specs = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    # conda supplies only the interpreter and pip; every package comes from pyproject.toml
    assert sorted(re.split(r"[=<> ]", s)[0] for s in conda_specs) == ["pip", "python"]
    python_spec = next(s for s in conda_specs if s.startswith("python"))
    assert python_spec.replace(" ", "") in ("python=3.11", "python==3.11")
    assert len(pip_sections) == 1
    (pip,) = pip_sections
    assert len(pip) == 1, "the pip section installs the project, whose pyproject.toml lists the dependencies"
    match = re.fullmatch(r"(-e\s+)?\.(\[(?P<extras>[\w,\-]+)\])?", pip[0].strip())
    assert match, f"pip section must install the project ('-e .[extras]'), not {pip[0]!r}"
    extras = set((match.group("extras") or "").split(",")) - {""}
    assert extras <= set(_pyproject()["project"]["optional-dependencies"]), (
        "environment.yml names an extra pyproject.toml lacks"
    )


def test_python_versions_agree():
    project = _pyproject()["project"]
    assert project["requires-python"].startswith(">=3.11")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert sys.version_info[:2] == (3, 11)


def test_installed_environment_satisfies_pyproject():
    """Every dependency pyproject.toml lists is installed at a version it allows (pip's own check)."""
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement

    declared = {Requirement(r).name.lower() for r in _pyproject()["project"]["dependencies"]}
    metadata = {Requirement(r).name.lower() for r in requires("workbench") if "extra ==" not in r}
    assert declared == metadata, "the installed workbench metadata is stale: run `make setup`"
    for spec in _pyproject()["project"]["dependencies"]:
        requirement = Requirement(spec)
        assert requirement.specifier.contains(version(requirement.name), prereleases=True), (
            f"{requirement} not satisfied"
        )


def test_duckdb_is_pinned_exactly():
    deps = _pyproject()["project"]["dependencies"]
    assert any(re.fullmatch(r"duckdb==\d+\.\d+\.\d+", d.split("#")[0].strip()) for d in deps)


def test_makefile_and_ci_use_the_readme_commands():
    readme_head = "\n".join((ROOT / "README.md").read_text().splitlines()[:10])
    assert "make demo" in readme_head and "make test" in readme_head
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    assert {"demo", "test", "setup", "system-deps", "lab"} <= targets


def test_kernel_python3_runs_this_interpreter():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"], capture_output=True, text=True, check=True
    )
    spec = json.loads(out.stdout)["kernelspecs"]["python3"]
    argv0 = json.loads((Path(spec["resource_dir"]) / "kernel.json").read_text())["argv"][0]
    assert Path(argv0).is_absolute()
    assert Path(argv0).resolve() == Path(sys.executable).resolve()


def test_notebooks_are_committed_clean():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), f"{path} has outputs"
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path} needs exactly one cell tagged 'parameters'"
        for line in "".join(tagged[0]["source"]).splitlines():
            if line.strip():
                assert re.match(r"^\w+: [\w\[\], |]+ = .+#\s*\S", line), (
                    f"{path}: parameter line {line!r} needs a type and a comment"
                )
