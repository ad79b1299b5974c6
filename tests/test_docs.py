"""Every code block of README.md and docs/**/*.md runs, every config example is accepted, every
relative link and #anchor resolves (the conventions are in docs/contributing.md and below).

Per Markdown file, in document order, in a temporary project holding the repository's
``workbench.yml`` and a demo database (``workbench generate --users 2000 --seed 1``, built once):

- ```python blocks run in one IPython namespace per file (so ``%load_ext`` works);
- ```sql blocks starting with ``%%sql`` run as a cell in that namespace; others parse with sqlglot;
- ```console lines starting with ``$ `` run with bash and must exit 0 (other lines are output); an
  ``$ export NAME=value`` line sets NAME for the file's later blocks, as in the reader's shell;
- ```yaml blocks parse; one holding workbench.yml top-level keys passes ``validate_config_file``;
- ```json blocks parse; ```text, ```mermaid, ```ini, ```cron, ```markdown and unlabelled blocks are not run.

``<!-- docs-test: skip (reason) -->`` on the line before a block skips it (a reason is required);
``<!-- docs-test: fragment -->`` before a yaml block means "parse only". Any other label fails, so a
block is never silently left untested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = {"python", "console", "sql", "yaml", "json"}
NOT_RUN = {"", "text", "mermaid", "ini", "cron", "markdown"}
CONFIG_TOP_KEYS = {
    "database",
    "identifier_types",
    "identity_joins",
    "assignment_queries",
    "metrics",
    "experiments",
    "events",
    "event_sources",
}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>skip|fragment)\b\s*(?P<rest>.*?)\s*-->\s*$")
CONSOLE_TIMEOUT_S = 240


@dataclass
class Block:
    """One fenced code block: its label, text, first line number (1-based) and marker."""

    language: str
    text: str
    line: int
    marker: str | None = None
    reason: str = ""


def code_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, dedented by their fence's indentation, with the
    docs-test marker of the last non-blank line before each."""
    blocks, lines, i, previous = [], text.splitlines(), 0, ""
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, fence, start = len(match["indent"]), match["fence"], i
        body = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence[0] * len(fence)) and lines[i].strip().strip(fence[0]) == ""
        ):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i].lstrip())
            i += 1
        marker = MARKER.match(previous)
        blocks.append(
            Block(
                match["info"].lower(),
                "\n".join(body) + "\n",
                start + 1,
                marker["what"] if marker else None,
                marker["rest"].strip(" ()") if marker else "",
            )
        )
        previous = ""
        i += 1
    return blocks


def prose(text: str, code_spans: str = "") -> str:
    """The Markdown text without fenced blocks; inline code spans (where links are not links)
    become ``code_spans`` (``"\\2"``: their text)."""
    kept, fence = [], ""
    for line in text.splitlines():
        if fence:
            if line.strip() and line.strip().strip(fence[0]) == "" and len(line.strip()) >= len(fence):
                fence = ""
        elif match := FENCE.match(line):
            fence = match["fence"]
        else:
            kept.append(re.sub(r"(`+)(.+?)\1", code_spans, line))
    return "\n".join(kept)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline markup dropped, lower case, punctuation removed
    (letters, digits, ``_``, ``-`` and spaces kept), spaces turned into ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images keep their text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN").replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a Markdown file: heading slugs (duplicates numbered -1, -2 …) and explicit
    ``<a id=…>`` / ``<a name=…>`` targets."""
    seen: dict[str, int] = {}
    found = set()
    text = path.read_text(encoding="utf-8")
    for line in prose(text, code_spans=r"\2").splitlines():
        if match := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            slug = github_slug(match[1])
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    found |= set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return found


def links(text: str) -> list[str]:
    """Targets of inline links and images and of reference definitions, outside code."""
    body = prose(text)
    inline = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", body)
    return inline + re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", body, flags=re.MULTILINE)


def broken_links(path: Path) -> list[str]:
    """One line per relative link of ``path`` whose file or #anchor does not exist."""
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.exists():
            problems.append(
                f"{target}: {resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved} does not exist"
            )
        elif anchor and resolved.suffix == ".md" and unquote(anchor).lower() not in anchors(resolved):
            problems.append(f"{target}: no heading in {resolved.name} has the anchor #{anchor}")
    return problems


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """A project with the repository's workbench.yml and the generated demo database, built once."""
    home = tmp_path_factory.mktemp("docs-demo")
    shutil.copy(ROOT / "workbench.yml", home / "workbench.yml")
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    subprocess.run(
        [str(BIN / "workbench"), "generate", "--users", "2000", "--seed", "1"],
        cwd=home,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return home


@pytest.fixture()
def project(demo_project, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the demo project for one Markdown file, as cwd and WORKBENCH_HOME."""
    home = tmp_path / "project"
    shutil.copytree(demo_project, home)
    monkeypatch.chdir(home)
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return home


@pytest.fixture()
def ipython():
    """The test IPython shell; names a file's blocks define are removed afterwards."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    before = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - before:
        shell.user_ns.pop(name, None)


def run_cell(shell, code: str) -> None:
    result = shell.run_cell(code, store_history=False)
    if result.error_before_exec or result.error_in_exec:
        raise AssertionError(repr(result.error_before_exec or result.error_in_exec))


def console_commands(text: str) -> list[str]:
    """The ``$ `` lines of a console block, with ``\\`` continuations joined."""
    commands, current = [], None
    for line in text.splitlines():
        if current is not None:
            current += "\n" + line
        elif line.startswith("$ "):
            current = line[2:]
        if current is not None and not current.endswith("\\"):
            commands.append(current)
            current = None
    return commands


def check_console(block: Block, project: Path, setenv: Callable[[str, str], None]) -> None:
    """Run each ``$ `` line with bash in ``project``; what an ``export`` line sets goes to ``setenv``
    (the environment of the file's later blocks)."""
    commands = console_commands(block.text)
    assert commands, "a console block without `$ ` lines: label it text instead"
    for command in commands:
        exporting = command.startswith("export ")
        done = subprocess.run(
            ["bash", "-c", f"set -e\n{command}\nenv -0" if exporting else command],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=CONSOLE_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, (
            f"`{command}` exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        if exporting:
            exported = dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
            name = command.removeprefix("export ").split("=", 1)[0].strip()
            setenv(name, exported[name])


def check_yaml(block: Block, tmp_path: Path) -> None:
    from workbench.config_check import validate_config_file

    data = yaml.safe_load(block.text)
    if block.marker == "fragment" or not (isinstance(data, dict) and set(data) & CONFIG_TOP_KEYS):
        return
    folder = tmp_path / f"yaml-{block.line}"
    folder.mkdir()
    (folder / "workbench.yml").write_text(block.text, encoding="utf-8")
    validate_config_file(folder / "workbench.yml")


def check_sql(block: Block, shell) -> None:
    import sqlglot

    if block.text.lstrip().startswith("%%sql"):
        run_cell(shell, block.text)
        return
    statements = [s for s in sqlglot.parse(block.text, read="duckdb") if s is not None]
    assert statements, "an empty sql block"


def block_failures(path: Path, project: Path, shell, tmp_path: Path, setenv: Callable[[str, str], None]) -> list[str]:
    """Run each block of ``path`` in document order; one line per failure, naming file and line;
    ``setenv`` receives what ``export`` lines set."""
    failures = []
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    for block in code_blocks(path.read_text(encoding="utf-8")):
        where = f"{name}:{block.line} ({block.language or 'unlabelled'})"
        if block.marker == "skip":
            if not block.reason:
                failures.append(f"{where}: a docs-test skip marker needs a reason: <!-- docs-test: skip (why) -->")
            continue
        if block.language in NOT_RUN:
            continue
        if block.language not in RUN:
            failures.append(f"{where}: unknown label; use one of {sorted(RUN | NOT_RUN - {''})}")
            continue
        started = time.perf_counter()
        try:
            if block.language == "python":
                run_cell(shell, block.text)
            elif block.language == "console":
                check_console(block, project, setenv)
            elif block.language == "yaml":
                check_yaml(block, tmp_path)
            elif block.language == "json":
                json.loads(block.text)
            else:
                check_sql(block, shell)
        except Exception as exc:  # every block is tried; all failures are reported together
            failures.append(f"{where}: {type(exc).__name__}: {exc}")
        if (elapsed := time.perf_counter() - started) > 10:
            print(f"{where} took {elapsed:.1f} s (keep blocks under 5 s)")
    return failures


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_code_blocks_run(path: Path, project: Path, ipython, tmp_path: Path, monkeypatch) -> None:
    """Each block of the file runs (or parses) in document order; the getting-started tour leaves
    the demo's database, reports and config as they were."""
    demo = [project / "data" / "workbench.duckdb", project / "workbench.yml"]
    before = [p.read_bytes() for p in demo]
    failures = block_failures(path, project, ipython, tmp_path, monkeypatch.setenv)
    assert not failures, "\n".join(failures)
    if path.name == "getting-started.md":
        assert [p.read_bytes() for p in demo] == before and not (project / "reports").exists()


def test_the_runner_reports_every_kind_of_failure(project: Path, ipython, tmp_path: Path, monkeypatch) -> None:
    """A page with one broken block of each kind yields one failure each, at the right line; a
    skipped block and a fragment are not run, and names defined by one block reach the next."""
    page = tmp_path / "broken.md"
    page.write_text(
        "```python\nn = 3\n```\n"  # 1: defines n
        "```python\nassert n == 4, 'n is 3'\n```\n"  # 4: fails
        "```console\n$ test -f workbench.yml -a -f data/workbench.duckdb\n$ workbench no-such-command\n```\n"  # 7: second line fails
        "```yaml\nmetrics:\n  - name: x\n    type: sum\n```\n"  # 11: not a metric type
        "<!-- docs-test: fragment -->\n```yaml\nmetrics: [{type: sum}]\n```\n"
        "```sql\nSELECT FROM WHERE\n```\n"  # 20: does not parse
        "<!-- docs-test: skip (a server) -->\n```console\n$ false\n```\n"
        "<!-- docs-test: skip -->\n```console\n$ false\n```\n"  # 28: skip without a reason
        "```bash\nfalse\n```\n"  # 31: unknown label
        "```console\n$ export DOCS_TEST_HOME=$PWD/elsewhere  # a comment\n```\n"  # reaches the blocks below
        "```python\nimport os\nassert os.environ['DOCS_TEST_HOME'] == os.getcwd() + '/elsewhere'\n```\n"
        '```console\n$ test "$DOCS_TEST_HOME" = "$PWD/elsewhere"\n```\n',
        encoding="utf-8",
    )
    failures = block_failures(page, project, ipython, tmp_path, monkeypatch.setenv)
    assert [f.split(":")[1].split()[0] for f in failures] == ["4", "7", "11", "20", "28", "31"], failures
    assert "n is 3" in failures[0] and "`workbench no-such-command` exited 2" in failures[1]
    assert "type 'sum' is not one of" in failures[2] and "ParseError" in failures[3]


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_links_resolve(path: Path) -> None:
    """Every relative link names an existing file, and every #anchor a heading of its target."""
    assert not (problems := broken_links(path)), f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_the_block_reader_and_the_slugs_follow_github(tmp_path: Path) -> None:
    """The runner's own parsing, checked against hand-worked GitHub examples."""
    text = (
        "# One report: `workbench report KEY`\n## Results\n## Results\n### CUPED, θ & co.\n"
        "<!-- docs-test: skip (starts a server) -->\n\n```console\n$ workbench dashboard\n```\n"
        "  ```python\n  x = 1\n  ```\n`[not](a-link.md)` and [a link](other.md#results-1)\n"
    )
    blocks = code_blocks(text)
    assert [(b.language, b.text, b.line, b.marker, b.reason) for b in blocks] == [
        ("console", "$ workbench dashboard\n", 7, "skip", "starts a server"),
        ("python", "x = 1\n", 10, None, ""),
    ]
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    assert anchors(page) == {"one-report-workbench-report-key", "results", "results-1", "cuped-θ--co"}
    assert links(text) == ["other.md#results-1"]
    assert console_commands("$ a \\\n  --b\noutput\n$ c\n") == ["a \\\n  --b", "c"]
