"""Config fuzzing: hypothesis mutates the repository's own ``workbench.yml`` (structure, types,
references, names, dates, raw bytes) and ``load_config`` either returns a consistent config or
raises ONE ``ConfigError`` whose single line names the file and the entry — never another
exception. The CLI turns the same mistakes into one ``error:`` line on stderr, exit status 1
(``workbench.cli.app.fail``), never a traceback."""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import ConfigError
from workbench.experiments import sql as sql_builder
from workbench.experiments.config import NAME, load_config

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
BASE_TEXT = (ROOT / "workbench.yml").read_text(encoding="utf-8")
BASE = yaml.safe_load(BASE_TEXT)
SECTIONS = ("identifier_types", "identity_joins", "assignment_queries", "metrics", "experiments")
# Reproducible in CI: a fixed number of examples derived from each test's name, no example database.
settings.register_profile(
    "config-fuzzing",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ = settings.get_profile("config-fuzzing")
CLI_FUZZ = settings(FUZZ, max_examples=40)  # each example runs a CLI command

# One value of each YAML type, to replace a value of another type (list <-> dict <-> str <-> int <-> null).
TYPED = {
    "list": ["x"],
    "dict": {"x": 1},
    "str": "x",
    "int": 7,
    "float": 0.5,
    "bool": True,
    "null": None,
    "date": dt.date(2026, 1, 1),
}
ODD_VALUES = [
    [],
    {},
    "",
    " ",
    "x y",
    "1abc",
    "a-b",
    "é",
    "a'; DROP TABLE t; --",
    "SELECT 'unclosed",
    "SELECT * FROM t",
    "__multiple__",
    "2026-13-45",
    "2026-02-30 10:00:00",
    "not a date",
    -1,
    0,
    10**30,
    10**400,
    float("nan"),
    float("inf"),
    -0.0,
    [[1]],
    [{"a": 1}],
    [None],
    {"b": [1]},
    {None: 1},
    {1: 2},
    "x" * 5000,
]
BAD_NAMES = [
    "",
    " ",
    "1st",
    "a b",
    "a-b",
    "a.b",
    "a;b",
    "naïve",
    "a'b",
    'a"b',
    "DROP TABLE x",
    "a\nb",
    "user_id\n",
    "9",
    "x" * 64,
]
# "<file>: <entry>: …" or "<file> line N: …" where the entry is a section, a position or a named entry.
ENTRY = re.compile(
    r"^: (?:(?:identifier_types|identity_joins|assignment_queries|fact_tables|metrics|experiments|database"
    r"|currency|incremental|late_data_hours|state_schema)\b"
    r"|(?:metric|experiment|assignment query|fact table) '[^']*'|unknown top-level key|the file must hold a mapping)"
)


def type_name(value) -> str:
    for name, example in TYPED.items():
        if type(value) is type(example):
            return name
    return "null" if value is None else type(value).__name__


def locations(node, path=()):
    """Every (path, value) below ``node``, the root excluded."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield (*path, key), child
        yield from locations(child, (*path, key))


def parent_of(data, path):
    for key in path[:-1]:
        data = data[key]
    return data


@st.composite
def structural_mutations(draw):
    """1–3 edits at random places of the base config: delete a key or item, change a value's type,
    put an odd value, add an unknown key, empty a list, duplicate a list item."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        places = list(locations(data))
        if not places:
            break
        path, value = draw(st.sampled_from(places))
        parent = parent_of(data, path)
        op = draw(st.sampled_from(["delete", "retype", "odd", "unknown_key", "empty", "duplicate"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "retype":
            other = draw(st.sampled_from([t for t in TYPED if t != type_name(value)]))
            parent[path[-1]] = copy.deepcopy(TYPED[other])
        elif op == "odd":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif op == "unknown_key" and isinstance(value, dict):
            value[draw(st.sampled_from(["colour", "Name", "sql ", 1, True, "identifier_type"]))] = draw(
                st.sampled_from([1, "x", None])
            )
        elif op == "empty" and isinstance(value, (list, dict)):
            parent[path[-1]] = type(value)()
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(value))
    return data


def quoted(value) -> str:
    """The start of ``repr(value)``: messages cut long values (``'xxx…' (64 characters)``)."""
    return repr(value)[:40]


@st.composite
def semantic_mistakes(draw):
    """A config with one mistake of meaning and the texts its message must contain (a tuple: one
    of them) to name the entry and the offending value."""
    data = copy.deepcopy(BASE)
    kind = draw(
        st.sampled_from(
            [
                "unknown_metric",
                "ratio_of_ratio",
                "ratio_cycle",
                "ratio_self",
                "duplicate",
                "bad_name",
                "bad_date",
                "unknown_key",
            ]
        )
    )
    ratios = [m for m in data["metrics"] if m["type"] == "ratio"]
    if kind == "unknown_metric":
        exp = draw(st.sampled_from(data["experiments"]))
        group = draw(st.sampled_from(["goal_metrics", "secondary_metrics", "guardrail_metrics"]))
        missing = draw(
            st.from_regex(NAME, fullmatch=True).filter(lambda n: n not in {m["name"] for m in data["metrics"]})
        )
        exp.setdefault(group, []).append(missing)
        return data, [f"experiment {exp['key']!r}.{group}", quoted(missing)]
    if kind in ("ratio_of_ratio", "ratio_self"):
        ratio = draw(st.sampled_from(ratios))
        part = draw(st.sampled_from(["numerator", "denominator"]))
        target = (
            ratio["name"]
            if kind == "ratio_self"
            else draw(st.sampled_from([r["name"] for r in ratios if r is not ratio]))
        )
        ratio[part] = target
        return data, [f"metric {ratio['name']!r}.{part}: ", quoted(target)]
    if kind == "ratio_cycle":  # a -> b -> a
        a, b = draw(
            st.lists(
                st.from_regex(NAME, fullmatch=True).filter(lambda n: n not in {m["name"] for m in data["metrics"]}),
                min_size=2,
                max_size=2,
                unique=True,
            )
        )
        at = draw(st.integers(0, len(data["metrics"])))
        data["metrics"][at:at] = [
            {"name": a, "type": "ratio", "numerator": b, "denominator": "purchased"},
            {"name": b, "type": "ratio", "numerator": a, "denominator": "purchased"},
        ]
        return data, ["metric '"]
    if kind == "duplicate":
        section = draw(st.sampled_from(["metrics", "experiments", "identifier_types", "assignment_queries"]))
        i = draw(st.integers(0, len(data[section]) - 1))
        copy_of = copy.deepcopy(data[section][i])
        data[section].insert(draw(st.integers(0, len(data[section]))), copy_of)
        name = copy_of if section == "identifier_types" else copy_of["key" if section == "experiments" else "name"]
        return data, [section, quoted(name)]
    if kind == "bad_name":
        section = draw(st.sampled_from(["metrics", "assignment_queries", "identifier_types"]))
        i = draw(st.integers(0, len(data[section]) - 1))
        bad = draw(st.sampled_from(BAD_NAMES))
        if section == "identifier_types":
            data[section][i] = bad
            return data, ["identifier_types", quoted(bad)]
        data[section][i]["name"] = bad
        label = "metric" if section == "metrics" else "assignment query"
        return data, [(f"{section}[{i}]", f"{label} {bad!r}")] + (
            [quoted(bad)] if bad else []
        )  # '' reads "the key 'name' is required"
    if kind == "bad_date":
        exp = draw(st.sampled_from(data["experiments"]))
        field = draw(st.sampled_from(["start", "end"]))
        exp[field] = draw(
            st.sampled_from(
                [
                    "2026-13-01",
                    "2026-02-30T00:00:00",
                    "yesterday",
                    "25/09/2026",
                    "2026-09-25 25:00",
                    20260925,
                    [2026, 9, 25],
                    {"day": 1},
                    True,
                ]
            )
        )
        return data, [f"experiment {exp['key']!r}.{field}"]
    section = draw(st.sampled_from(["identity_joins", "assignment_queries", "metrics", "experiments"]))
    i = draw(st.integers(0, len(data[section]) - 1))
    entry = data[section][i]
    unknown = draw(st.sampled_from(["colour", "Window", "numerator2", "goal_metric"]))
    entry[unknown] = 1
    label = {"metrics": "metric", "experiments": "experiment", "assignment_queries": "assignment query"}.get(section)
    named = entry["key"] if section == "experiments" else entry.get("name")  # an experiment's name is for people
    return data, [(f"{section}[{i}]", f"{label} {named!r}"), quoted(unknown)]


@st.composite
def broken_bytes(draw):
    """The base file's bytes with YAML syntax broken or bytes that are not UTF-8 inserted, and the
    1-based line of the damage (None when YAML's own error may point elsewhere)."""
    raw = BASE_TEXT.encode("utf-8")
    at = draw(st.integers(0, len(raw)))
    at = raw.rfind(b"\n", 0, at) + 1 if draw(st.booleans()) else at  # often at a line start
    line = raw[:at].count(b"\n") + 1
    if draw(st.booleans()):
        junk = draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\xe2\x82", b"\x80abc", b"\xed\xa0\x80"]))
        return raw[:at] + junk + raw[at:], line
    junk = draw(
        st.sampled_from(
            [
                b"{",
                b"[",
                b"]",
                b": :",
                b"\t",
                b'"',
                b"'",
                b"&a ",
                b"*nowhere ",
                b"!!python/object:os.system ",
                b"- ",
                b"? ",
                b"%",
                b"\x00",
                b"\x07",
                b"---\n- x\n",
            ]
        )
    )
    return raw[:at] + junk + raw[at:], None


def single_line(message: str) -> bool:
    return "\n" not in message and "\r" not in message and message.strip() == message and bool(message)


def check_rejection(error: ConfigError, path: Path) -> str:
    """The message of ``error``: one line, starting with the file, then naming the entry or line."""
    message = str(error)
    assert single_line(message), message
    assert message.startswith(str(path)), message
    rest = message[len(str(path)) :]
    assert re.match(r"^ line \d+: ", rest) or ENTRY.match(rest), message
    assert "Traceback" not in message
    return message


def check_consistent(cfg) -> None:
    """A config that loads is usable: references resolve, ratios are of base metrics, names are plain,
    and every experiment's queries compile."""
    assert all(NAME.match(t) for t in cfg.identifier_types)
    for metric in cfg.metrics.values():
        if metric.type == "ratio":
            assert {metric.numerator.type, metric.denominator.type} <= {"binomial", "count", "mean", "duration"}
            assert (
                cfg.metrics[metric.numerator.name] is metric.numerator
                and cfg.metrics[metric.denominator.name] is metric.denominator
            )
    for exp in cfg.experiments.values():
        assert cfg.assignment_queries[exp.assignment_query.name] is exp.assignment_query
        assert all(cfg.metrics[m.name] is m for m in exp.metrics)
        assert not exp.variations or exp.control is None or exp.control in exp.variations
        assert all(isinstance(v, str) for v in exp.variations)
        try:  # it compiles, or says in one line why not (e.g. no identity join)
            sql_builder.experiment_query(cfg, exp, exp.dimensions)
        except ConfigError as error:
            check_rejection(error, cfg.path)


def load_outcome(path: Path, tally: Counter):
    """Load ``path``: the config, or the checked message of its one ConfigError; any other
    exception propagates and fails the test."""
    tally["generated"] += 1
    try:
        cfg = first_broken(load_config(path))
    except ConfigError as error:
        tally["rejected"] += 1
        return check_rejection(error, path)
    tally["loaded"] += 1
    check_consistent(cfg)
    return cfg


def first_broken(cfg):
    """``cfg``, after checking that the experiments it holds are consistent and that each broken
    entry fails alone (analysing it raises its own sentence); raises the first one's sentence."""
    if cfg.broken_experiments:
        check_consistent(cfg)
    for key, sentence in cfg.broken_experiments.items():
        with pytest.raises(ConfigError, match=re.escape(sentence)):
            cfg.experiment(key)
    return cfg.strict()


def write(path: Path, data) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_structural_mutations_end_in_one_line_naming_file_and_entry(tmp_path, ledger):
    path, tally = tmp_path / "workbench.yml", Counter()

    @FUZZ
    @given(structural_mutations())
    def check(data):
        write(path, data)
        load_outcome(path, tally)

    check()
    assert tally["rejected"] > tally["generated"] // 2  # the mutations mostly break the file
    ledger(
        "Config fuzzing",
        "hypothesis: 1–3 random edits of workbench.yml (delete keys/items, list↔dict↔str↔int↔null↔date, odd values such as 10**400, NaN, '', unclosed SQL quotes, unknown keys, empty lists, duplicated items)",
        f"{tally['generated']:,} generated configs: {tally['rejected']:,} rejected (a broken experiment entry: that experiment alone), each with one line naming the file and the entry; "
        f"{tally['loaded']:,} loaded, consistent and compiling to SQL; 0 other exceptions",
    )


def test_mistakes_of_meaning_name_the_entry_that_holds_them(tmp_path, ledger):
    path, tally = tmp_path / "workbench.yml", Counter()

    @FUZZ
    @given(semantic_mistakes())
    def check(case):
        data, expected = case
        write(path, data)
        outcome = load_outcome(path, tally)
        assert isinstance(outcome, str), "a config with a mistake of meaning loaded"
        for need in expected:
            assert any(text in outcome for text in (need if isinstance(need, tuple) else (need,))), (need, outcome)

    check()
    assert tally["rejected"] == tally["generated"]
    ledger(
        "Config fuzzing",
        "hypothesis: unknown metric references in experiments, ratio numerator/denominator naming a ratio (itself, another, an a→b→a cycle), "
        "duplicate metric/experiment/identifier-type/assignment-query names, bad identifiers, impossible dates, unknown keys",
        f"{tally['generated']:,} generated configs: all {tally['rejected']:,} rejected (a broken experiment entry: that experiment alone) with one line naming the file, the entry "
        f"(e.g. experiment 'x'.goal_metrics, metric 'y', metrics[3]) and the offending value; 0 other exceptions",
    )


def test_broken_yaml_and_non_utf8_bytes_name_the_file_and_line(tmp_path, ledger):
    path, tally, lines_right = tmp_path / "workbench.yml", Counter(), Counter()

    @FUZZ
    @given(broken_bytes())
    def check(case):
        raw, line = case
        path.write_bytes(raw)
        outcome = load_outcome(path, tally)
        if line is not None:  # bytes that are not UTF-8: the message points at their line
            assert isinstance(outcome, str) and f"{path} line {line}: " in outcome, outcome
            lines_right["non-utf8"] += 1

    check()
    ledger(
        "Config fuzzing",
        "hypothesis: workbench.yml bytes with YAML syntax broken ({, [, tabs, quotes, aliases, python tags, NUL) or non-UTF-8 bytes inserted",
        f"{tally['generated']:,} broken files: {tally['rejected']:,} rejected with one line naming the file (and line); "
        f"{lines_right['non-utf8']:,} non-UTF-8 cases name the exact line; {tally['loaded']:,} still valid YAML loaded consistently; 0 other exceptions",
    )


def cli_lines(result_stderr: str) -> list[str]:
    return [line for line in result_stderr.splitlines() if line.strip()]


def test_cli_turns_bad_configs_into_one_error_line(tmp_path, ledger):
    from typer.testing import CliRunner

    from workbench.cli import app

    path, empty_db = tmp_path / "bad.yml", tmp_path / "empty.duckdb"
    import duckdb

    duckdb.connect(str(empty_db)).close()
    runner, tally = CliRunner(), Counter()

    @CLI_FUZZ
    @given(
        st.one_of(structural_mutations(), semantic_mistakes().map(lambda case: case[0])),
        st.sampled_from(["analyze", "experiments", "report"]),
    )
    def check(data, command):
        write(path, data)
        try:
            cfg = load_config(path)
        except ConfigError as error:
            expected = str(error)
        else:  # the file loads: only a broken checkout-layout entry fails the command
            if command == "experiments" or "checkout-layout" not in cfg.broken_experiments:
                return
            expected = cfg.broken_experiments["checkout-layout"]
        args = {
            "analyze": ["analyze", "checkout-layout"],
            "experiments": ["experiments"],
            "report": ["report", "checkout-layout"],
        }[command]
        result = runner.invoke(app, [*args, "--config", str(path), "--database", f"duckdb:///{empty_db}"])
        tally[command] += 1
        assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
        assert cli_lines(result.stderr) == [f"error: {expected}"], result.stderr
        assert result.stdout == ""

    check()
    # The installed console script, in a fresh process: no traceback reaches the terminal.
    cases = {
        "not UTF-8": BASE_TEXT.encode() + b"\n# caf\xe9\n",
        "YAML syntax": BASE_TEXT.encode().replace(b"metrics:", b"metrics: [", 1),
        "ratio cycle": yaml.safe_dump(
            BASE
            | {
                "metrics": BASE["metrics"]
                + [
                    {"name": "a", "type": "ratio", "numerator": "b", "denominator": "purchased"},
                    {"name": "b", "type": "ratio", "numerator": "a", "denominator": "purchased"},
                ]
            }
        ).encode(),
        "wrong type": yaml.safe_dump(BASE | {"experiments": {"key": "x"}}).encode(),
    }
    script = Path(sys.executable).with_name("workbench")
    for name, raw in cases.items():
        path.write_bytes(raw)
        run = subprocess.run(
            [str(script), "analyze", "checkout-layout", "--config", str(path), "--database", f"duckdb:///{empty_db}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=os.environ | {"WORKBENCH_CONFIG": ""},
        )
        assert run.returncode == 1, (name, run.stderr)
        assert "Traceback" not in run.stderr + run.stdout, (name, run.stderr)
        lines = cli_lines(run.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), (name, run.stderr)
        tally["subprocess"] += 1
    ledger(
        "Config fuzzing",
        "hypothesis: rejected configs given to `workbench analyze|experiments|report --config bad.yml` (CliRunner), "
        "plus 4 (non-UTF-8, YAML syntax, ratio cycle, wrong type) through the installed `workbench` script",
        f"{tally['analyze'] + tally['experiments'] + tally['report']:,} CLI runs and {tally['subprocess']} subprocesses: exit status 1, "
        "exactly one `error: <file>: <entry>: …` line on stderr equal to load_config's message, nothing on stdout, 0 tracebacks",
    )


def metric_named(data, name):
    return next(m for m in data["metrics"] if m["name"] == name)


def experiment_keyed(data, key):
    return next(e for e in data["experiments"] if e["key"] == key)


# What the fuzzer found (each raised TypeError, ValueError, OverflowError, UnicodeDecodeError or
# sqlglot's TokenError before the fix), as fixed cases: (change, text the message must hold).
FOUND = {
    "unclosed quote in metric SQL": (
        lambda d: metric_named(d, "revenue_per_user").update(sql="SELECT 'abc"),
        "metric 'revenue_per_user'",
    ),
    "unclosed quote in a filter": (
        lambda d: metric_named(d, "added_to_cart").update(filter="event = 'Add"),
        "metric 'added_to_cart'.filter",
    ),
    "variations a number": (
        lambda d: experiment_keyed(d, "results-order").update(variations=5),
        "experiment 'results-order'.variations",
    ),
    "variations holding a list": (
        lambda d: experiment_keyed(d, "results-order").update(variations=[["0"], "1"]),
        "experiment 'results-order'.variations",
    ),
    "control a list": (
        lambda d: experiment_keyed(d, "results-order").update(control=["0"]),
        "experiment 'results-order'.control",
    ),
    "activation_metric a list": (
        lambda d: experiment_keyed(d, "results-order").update(activation_metric=["purchased"]),
        "experiment 'results-order'.activation_metric",
    ),
    "unknown keys of mixed types": (
        lambda d: metric_named(d, "purchased").update({1: 2, None: 3}),
        "metric 'purchased': unknown key(s) [1, None]",
    ),
    "top-level keys of mixed types": (lambda d: d.update({1: 2, "zzz": 3}), "unknown top-level key(s) [1, 'zzz']"),
    "a number too large for a float": (
        lambda d: metric_named(d, "retention_rate").update(window={"delay_hours": 10**400}),
        "metric 'retention_rate'.window.delay_hours",
    ),
    "an impossible date as text": (
        lambda d: experiment_keyed(d, "results-order").update(start="2026-13-45"),
        "experiment 'results-order'.start",
    ),
    "a name ending in a newline": (
        lambda d: d.update(identifier_types=["user_id\n", "anonymous_id"]),
        "identifier_types: 'user_id\\n' is not a plain name",
    ),
}
FOUND_BYTES = {
    "an impossible YAML date": (BASE_TEXT.replace("start: 2026-09-27", "start: 2026-02-30"), " line "),
    "a byte that is not UTF-8": (BASE_TEXT.replace("# Step 4", "# St\udcffep 4"), " line 4: byte 0xff is not UTF-8"),
    "a NUL character": (BASE_TEXT.replace("# Step 4", "# Step\x00 4"), " line 4: special characters are not allowed"),
}


def test_what_the_fuzzer_found_stays_fixed(tmp_path, ledger):
    path = tmp_path / "workbench.yml"
    messages = []
    for name, (change, expected) in FOUND.items():
        data = copy.deepcopy(BASE)
        change(data)
        write(path, data)
        with pytest.raises(ConfigError) as caught:
            first_broken(load_config(path))
        messages.append(check_rejection(caught.value, path))
        assert expected is None or expected in messages[-1], (name, messages[-1])
    for name, (text, expected) in FOUND_BYTES.items():
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        messages.append(check_rejection(caught.value, path))
        assert expected in messages[-1], (name, messages[-1])
    ledger(
        "Config fuzzing",
        f"{len(FOUND) + len(FOUND_BYTES)} fixed cases replaying the crashes the fuzzer found (unclosed SQL quotes, variations/control/activation_metric of the wrong type, "
        "unknown keys of mixed types, 10**400, impossible dates, a name with a trailing newline, non-UTF-8 byte, NUL)",
        f"{len(messages)} of {len(messages)} now one ConfigError line naming the file and the entry or line (before the fix: TypeError, ValueError, "
        "OverflowError, UnicodeDecodeError, sqlglot TokenError tracebacks)",
    )


DATABASE_MISTAKES = [  # (key, value, what the message must name); before the fix the last four ran or failed in DuckDB
    ("statement_timeout_seconds", "ten", "database.statement_timeout_seconds"),
    ("statement_timeout_seconds", [1], "database.statement_timeout_seconds"),
    ("duckdb_threads", None, "database.duckdb_threads"),
    ("duckdb_threads", {"a": 1}, "database.duckdb_threads"),
    ("statement_timeout_seconds", -5, "database.statement_timeout_seconds"),
    ("duckdb_threads", -5, "database.duckdb_threads"),
    ("duckdb_memory_limit", "lots", "database.duckdb_memory_limit"),
    ("duckdb_memory_limit", 4, "database.duckdb_memory_limit"),
]


def test_database_section_mistakes_name_their_key_through_the_cli(tmp_path, ledger):
    from typer.testing import CliRunner

    from workbench.cli import app

    path, runner = tmp_path / "workbench.yml", CliRunner()
    for key, value, named in DATABASE_MISTAKES:
        write(path, BASE | {"database": {"url": f"duckdb:///{tmp_path / 'absent.duckdb'}", key: value}})
        result = runner.invoke(app, ["analyze", "checkout-layout", "--config", str(path)])
        lines = cli_lines(result.stderr)
        assert result.exit_code == 1 and len(lines) == 1, (key, value, result.stderr, result.exception)
        assert lines[0].startswith(f"error: {path}: {named} must be ") and "Traceback" not in result.output, lines[0]
    ledger(
        "Config fuzzing",
        f"{len(DATABASE_MISTAKES)} bad `database:` settings (timeout 'ten', [1] or -5; threads null, a mapping or -5; memory limit 'lots' or 4) "
        "through `workbench analyze --config`",
        f"{len(DATABASE_MISTAKES)} of {len(DATABASE_MISTAKES)}: exit 1, one line naming the file and the key (before the fix: one message for two keys, "
        "and -5 threads / 'lots' of memory reached DuckDB, whose error named the database, not the setting; -5 s ran without a limit)",
    )
