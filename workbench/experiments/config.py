"""The project model in ``workbench.yml``: identifier types, identity joins, assignment queries,
metrics and experiments (GrowthBook's data-source model), validated before any query runs.

``load_config()`` reads the file (``--config`` / ``$WORKBENCH_CONFIG`` / ``workbench.yml``) and
returns a frozen :class:`Config`; every mistake raises one :class:`ConfigError` sentence naming
the file, the entry and what to change. The columns each SQL returns are read statically with
sqlglot; SQL whose columns cannot be read that way (``SELECT *``) is probed on the database by
:func:`check_columns` before the experiment query runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import metric_types, paths
from workbench.config_file import DATABASE_KEYS, read_config_file
from workbench.db.dialects import IDENTIFIER, LOWER_CASE_IDENTIFIER, SOURCE_DIALECT
from workbench.display import FORMATS, Currency, ValueFormat
from workbench.errors import ConfigError, did_you_mean, shown
from workbench.metric_types import RATIO, MetricType

NAME = IDENTIFIER  # a plain SQL identifier, the rule every module shares
EXPERIMENT_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}\Z")  # at most 100 characters: keys name report folders
TOP_KEYS = {
    "database",
    "identifier_types",
    "identity_joins",
    "assignment_queries",
    "fact_tables",
    "metrics",
    "experiments",
    "currency",
    "incremental",  # the experiments' default (incremental refresh, docs/experiment-engine.md)
    "late_data_hours",
    "state_schema",
}
DEFAULT_LATE_DATA_HOURS = 24.0  # hours before the watermark an incremental refresh reads again
DEFAULT_STATE_SCHEMA = "workbench_state"  # where incremental refresh keeps its state
# sections other modules own and validate themselves (workbench.events.settings, workbench.toolkit.sources)
OTHER_SECTIONS = {"events", "event_sources"}
IDENTITY_JOIN_KEYS = {"sql", "identifier_types"}
ASSIGNMENT_KEYS = {"name", "identifier_type", "sql", "dimensions", "description"}
ASSIGNMENT_COLUMNS = ("timestamp", "experiment_id", "variation_id")
FACT_TABLE_KEYS = {"name", "sql", "identifier_types", "description"}
# A fact metric's `column` that counts rows instead of reading a column (counts and binomials).
ROWS = "rows"
METRIC_KEYS = {
    "name",
    "type",
    "sql",
    "fact_table",
    "column",
    "row_filter",
    "identifier_types",
    "window",
    "capping",
    "cuped",
    "quantile",
    "filter",
    "numerator",
    "denominator",
    "inverse",
    "prior",
    "description",
    "format",
    "currency",
}
# What a metric's filter may be built of, as sqlglot node kinds (an allow-list): the rows' columns,
# values, operators, CASE, CAST and a few pure functions. Anything else is refused before a query
# runs: subqueries, placeholders, table and file functions (read_csv, pg_read_file, glob, …).
# The kinds its outermost node may be (true or false for each row; a bare column is a boolean one):
FILTER_CONDITIONS = frozenset(
    {"EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is", "In", "Between", "Like", "ILike"}
    | {"Escape", "And", "Or", "Not", "Boolean", "Column"}
)
# the functions a filter may call; sqlglot's node kind for each is its name in title case
FILTER_FUNCTIONS = ("coalesce", "nullif", "lower", "upper", "length", "substring", "trim", "abs", "round", "extract")
FILTER_NODES = (
    FILTER_CONDITIONS
    | {name.title() for name in FILTER_FUNCTIONS}
    | {"Identifier", "Literal", "Null", "Paren", "Neg", "Add", "Sub", "Mul", "Div", "Mod", "DPipe"}
    | {"Case", "If", "Cast", "DataType", "DataTypeParam", "Var", "Interval"}
)
WINDOW_KEYS = {"delay_hours", "hours"}
CAPPING_KEYS = {"type", "value", "ignore_zeros"}
PRIOR_KEYS = {"mean", "stddev"}
CUPED_KEYS = {"lookback_days"}
QUANTILE_KEYS = {"value", "level"}
CURRENCY_KEYS = {"symbol", "decimals", "symbol_after"}
VARIATION_KEYS = {"id", "name"}
EXPERIMENT_KEYS = {
    "key",
    "name",
    "description",
    "hypothesis",
    "assignment_query",
    "start",
    "end",
    "variations",
    "control",
    "weights",
    "dimensions",
    "activation_metric",
    "goal_metrics",
    "secondary_metrics",
    "guardrail_metrics",
    "incremental",
    "late_data_hours",
    "analysis",
}
METRIC_GROUPS = ("goal_metrics", "secondary_metrics", "guardrail_metrics")


@dataclass(frozen=True)
class Window:
    """Conversion window after first exposure: rows count from ``delay_hours`` for ``hours``
    (``hours=None``: until the experiment's end)."""

    delay_hours: float = 0.0
    hours: float | None = None


@dataclass(frozen=True)
class Capping:
    """``absolute``: per-unit values above ``value`` become ``value``; ``percentile``: above the
    ``value`` quantile (0 < value < 1, nearest rank) of the experiment's per-unit values, of its
    non-zero ones only with ``ignore_zeros`` (GrowthBook's "ignore zeros")."""

    type: str
    value: float
    ignore_zeros: bool = False


@dataclass(frozen=True)
class Prior:
    """A metric's own Bayesian prior on the relative effect: normal(``mean``, ``stddev``)."""

    mean: float
    stddev: float


@dataclass(frozen=True)
class FactTable:
    """SQL returning rows of facts: one column per identifier type it is keyed by, ``timestamp``
    and the columns metrics read (``columns``: its output columns, None when they cannot be read
    statically and are probed on the database before a query runs)."""

    name: str
    sql: str
    identifier_types: tuple[str, ...]
    columns: tuple[str, ...] | None = None
    description: str = ""


@dataclass(frozen=True)
class Metric:
    """One metric of type ``kind`` (the registry's entry, :mod:`workbench.metric_types`). ``sql``
    returns the columns ``kind.required_columns(identifier_types)``; a ratio metric holds its
    ``numerator`` and ``denominator`` metrics instead. A metric over a fact table names it
    (``fact_table``), the ``column`` it reads (None: it counts rows) and its ``row_filter``; its
    ``sql`` is then the same rows in the shape above, for queries that read one metric alone."""

    name: str
    kind: MetricType
    sql: str | None = None
    identifier_types: tuple[str, ...] = ()
    window: Window = Window()
    capping: Capping | None = None
    cuped_lookback_days: float | None = None
    quantile: float | None = None
    filter: str | None = None
    numerator: Metric | None = None
    denominator: Metric | None = None
    inverse: bool = False
    description: str = ""
    prior: Prior | None = None
    fact_table: FactTable | None = None
    column: str | None = None
    row_filter: str | None = None
    format: ValueFormat | None = None

    @property
    def type(self) -> str:
        """The type's name, as written in ``workbench.yml``."""
        return self.kind.name

    @property
    def parts(self) -> tuple[Metric, ...]:
        """The metrics whose rows make this one: a ratio's numerator and denominator, else itself."""
        if self.numerator is not None and self.denominator is not None:
            return (self.numerator, self.denominator)
        return (self,)


@dataclass(frozen=True)
class IdentityJoin:
    """SQL returning one column per identifier type it links; ``timestamp``: it also returns a
    ``timestamp`` column (when the pair was seen), so an incremental refresh reads only its new
    rows (the pairs are then taken to be appended, never deleted, like metric rows)."""

    sql: str
    identifier_types: tuple[str, ...]
    timestamp: bool = False


@dataclass(frozen=True)
class AssignmentQuery:
    """SQL returning ``<identifier_type>, timestamp, experiment_id, variation_id`` and the dimensions."""

    name: str
    identifier_type: str
    sql: str
    dimensions: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment entry, its assignment query and metrics resolved. ``variations`` empty means
    "every variation found"; ``control`` defaults to the first variation; ``weights`` default to an
    equal split; ``analysis`` holds the statistics settings (engine, alpha, …) the statistics
    engine validates; ``variation_names`` the configured names (id → name), ``name``,
    ``description`` and ``hypothesis`` what the reports' header says."""

    key: str
    assignment_query: AssignmentQuery
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    variations: tuple[str, ...] = ()
    control: str | None = None
    weights: tuple[float, ...] = ()
    dimensions: tuple[str, ...] = ()
    activation_metric: Metric | None = None
    goal_metrics: tuple[Metric, ...] = ()
    secondary_metrics: tuple[Metric, ...] = ()
    guardrail_metrics: tuple[Metric, ...] = ()
    analysis: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    name: str = ""
    description: str = ""
    hypothesis: str = ""
    variation_names: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    incremental: bool = False  # analyses keep and update a per-unit state (incremental refresh)
    late_data_hours: float = DEFAULT_LATE_DATA_HOURS  # rows this many hours before the watermark are read again

    @property
    def metrics(self) -> tuple[Metric, ...]:
        """Goal, secondary then guardrail metrics, each once."""
        return tuple({m.name: m for m in self.goal_metrics + self.secondary_metrics + self.guardrail_metrics}.values())


@dataclass(frozen=True)
class Config:
    """The validated contents of ``workbench.yml``."""

    path: Path
    identifier_types: tuple[str, ...]
    identity_joins: tuple[IdentityJoin, ...]
    assignment_queries: dict[str, AssignmentQuery]
    metrics: dict[str, Metric]
    experiments: dict[str, ExperimentConfig]
    database: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    fact_tables: dict[str, FactTable] = field(default_factory=dict)
    # experiment entries that failed validation, key -> the sentence saying why: each fails alone
    # (analysing it raises that sentence); the other experiments work
    broken_experiments: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    experiment_keys: tuple[str, ...] = ()  # every experiment entry's key in file order, broken ones too
    # the schema (DuckDB: the attached state file; Spark: the catalog database) incremental refresh writes
    state_schema: str = DEFAULT_STATE_SCHEMA

    def metric(self, name: str) -> Metric:
        if name not in self.metrics:
            raise ConfigError(
                f"{self.path}: there is no metric named {shown(name)}; defined: {sorted(self.metrics)}."
                + did_you_mean(name, self.metrics)
            )
        return self.metrics[name]

    def strict(self) -> Config:
        """This config, or the :class:`ConfigError` of its first broken experiment entry (where
        analysis lets each broken entry fail alone, a check wants every mistake)."""
        for sentence in self.broken_experiments.values():
            raise ConfigError(sentence)
        return self

    def experiment(self, key: str) -> ExperimentConfig:
        if key in self.broken_experiments:
            raise ConfigError(self.broken_experiments[key])
        if key not in self.experiments:
            raise ConfigError(
                f"{self.path}: there is no experiment {shown(key)} under 'experiments'; add an entry "
                f"(or run `workbench experiments --write-stubs`); configured: {sorted(self.experiments)}."
                + did_you_mean(key, self.experiments)
            )
        return self.experiments[key]

    def report_dimensions(self, key: str, choice: str | None) -> tuple[str, ...]:
        """The dimensions experiment ``key``'s report breaks results down by: ``choice``, where "" or
        None means every configured dimension, "none" overall only, and otherwise assignment-query
        columns separated by commas; a column the query lacks raises one sentence."""
        exp = self.experiment(key)
        if not choice:
            return tuple(exp.dimensions)
        if choice == "none":
            return ()
        chosen = tuple(dict.fromkeys(c.strip() for c in choice.split(",")))
        for column in chosen:
            if column not in exp.assignment_query.dimensions:
                raise ConfigError(
                    f"{self.path}: dimension {shown(column)} is not a column of experiment {key!r}'s assignment query "
                    f"{exp.assignment_query.name!r}; use some of {list(exp.assignment_query.dimensions)} or none."
                )
        return chosen

    def assignment_query(self, name: str) -> AssignmentQuery:
        return self.assignment_queries[name]

    def identity_join(self, from_type: str, to_type: str) -> IdentityJoin | None:
        """The first identity join linking the two identifier types, if any."""
        return next((j for j in self.identity_joins if {from_type, to_type} <= set(j.identifier_types)), None)


def load_config(path: Path | None = None) -> Config:
    """The validated config in ``path`` (default :func:`workbench.paths.config_path`)."""
    path = Path(path) if path is not None else paths.config_path()
    if not path.exists():
        raise ConfigError(
            f"The config file {path} does not exist: create it (see docs/experiment-engine.md) or pass --config / set WORKBENCH_CONFIG."
        )
    return parse_config(read_config_file(path), path)


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate the mapping read from ``path`` into a :class:`Config`."""
    return _Parser(data, Path(path)).config()


def select_columns(sql: str) -> tuple[str, ...] | None:
    """The output column names of ``sql`` (lower case), or None when they cannot be read statically."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except sqlglot.errors.SqlglotError:  # ParseError, or TokenError for e.g. an unclosed quote
        return None
    if not isinstance(tree, exp.Query) or any(isinstance(s, exp.Star) or s.is_star for s in tree.selects):
        return None
    names = tuple(n.lower() for n in tree.named_selects)
    return names if all(names) else None


def filter_columns(condition: str | None) -> set[str]:
    """The column names (lower case) a validated filter reads."""
    if condition is None:
        return set()
    import sqlglot
    from sqlglot import exp

    return {c.name.lower() for c in sqlglot.parse_one(condition, read=SOURCE_DIALECT).find_all(exp.Column)}


def _finite(x: float) -> bool:
    """Whether ``x`` is a finite number a float can hold (``10**400`` is not)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """``value`` as a naive UTC timestamp: one with an offset (``+02:00``) is converted to UTC."""
    return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)


class _Parser:
    """Walks the raw mapping once; each check raises a sentence naming the file and the entry."""

    def __init__(self, data: dict[str, Any], path: Path) -> None:
        self.data, self.path = data, path

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")

    def config(self) -> Config:
        unknown = set(self.data) - TOP_KEYS - OTHER_SECTIONS
        if unknown:
            raise ConfigError(
                f"{self.path}: unknown top-level key(s) {sorted(unknown, key=str)}; allowed: {sorted(TOP_KEYS | OTHER_SECTIONS)}."
            )
        database = self.data.get("database") or {}
        if not isinstance(database, dict) or set(database) - DATABASE_KEYS:
            raise self.fail("database", f"must be a mapping with keys among {sorted(DATABASE_KEYS)}.")
        self.identifier_types = self.names(self.data.get("identifier_types") or [], "identifier_types")
        self.currency = self.currency_format(self.data.get("currency"), "currency", Currency())
        identity_joins = tuple(self.identity_join(e, i) for i, e in enumerate(self.entries("identity_joins")))
        assignment = self.unique(
            [self.assignment_query(e, i) for i, e in enumerate(self.entries("assignment_queries"))],
            "assignment_queries",
            "name",
        )
        self.fact_tables = self.unique(
            [self.fact_table(e, i) for i, e in enumerate(self.entries("fact_tables"))], "fact_tables", "name"
        )
        self.ratio_parts: dict[str, tuple[str, str]] = {}  # ratio metric -> (numerator, denominator) names
        metrics = self.unique([self.metric(e, i) for i, e in enumerate(self.entries("metrics"))], "metrics", "name")
        metrics = self.resolve_ratios(metrics)
        self.metrics_known, self.assignment_known = metrics, assignment
        self.incremental = self.flag(self.data.get("incremental", False), "incremental")
        self.late_data_hours = self.number(
            self.data.get("late_data_hours", DEFAULT_LATE_DATA_HOURS), "late_data_hours", 0
        )
        state_schema = self.data.get("state_schema", DEFAULT_STATE_SCHEMA)
        if not isinstance(state_schema, str) or not LOWER_CASE_IDENTIFIER.match(state_schema):
            raise self.fail(
                "state_schema",
                f"must be a lower-case plain name like {DEFAULT_STATE_SCHEMA}, not {shown(state_schema)}.",
            )
        parsed, broken = [], {}
        for i, entry in enumerate(self.entries("experiments")):
            key = entry.get("key")
            try:
                parsed.append(self.experiment(entry, i))
            except ConfigError as exc:
                if not isinstance(key, str) or not EXPERIMENT_KEY.match(key) or key in broken:
                    raise  # an entry without a usable key cannot fail alone
                broken[key] = str(exc)
        experiments = self.unique(parsed, "experiments", "key")
        if clash := set(broken) & set(experiments):
            raise self.fail("experiments", f"two entries share the key {shown(min(clash))}; rename one.")
        keys = tuple(str(e["key"]) for e in self.entries("experiments"))
        return Config(
            self.path,
            self.identifier_types,
            identity_joins,
            assignment,
            metrics,
            experiments,
            database,
            self.fact_tables,
            broken,
            keys,
            state_schema,
        )

    # -- generic checks -------------------------------------------------------------------------
    def entries(self, key: str) -> list[dict[str, Any]]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of entries (each starting with '- '), not a {type(value).__name__}.")
        for i, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise self.fail(f"{key}[{i}]", f"must be a mapping of keys, not {shown(entry)}.")
        return value

    def keys(self, entry: dict[str, Any], allowed: set[str], where: str, required: tuple[str, ...] = ()) -> None:
        unknown = set(entry) - allowed
        if unknown:
            hint = did_you_mean(next(iter(unknown)), allowed) if len(unknown) == 1 else ""
            raise self.fail(where, f"unknown key(s) {sorted(unknown, key=str)}; allowed: {sorted(allowed)}.{hint}")
        for key in required:
            if entry.get(key) in (None, ""):
                raise self.fail(where, f"the key '{key}' is required.")

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, not {shown(value)}.")
        return value

    def names(self, value: Any, where: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list of names, not {shown(value)}.")
        for name in value:
            if not isinstance(name, str) or not NAME.match(name):
                raise self.fail(
                    where,
                    f"{shown(name)} is not a plain name (letters, digits and _, not starting with a digit, at most 63 characters).",
                )
        if len(set(value)) != len(value):
            raise self.fail(where, f"lists a name twice: {value}.")
        return tuple(value)

    def entry_name(self, entry: dict[str, Any], key: str, position: str, kind: str) -> str:
        """``metric 'purchased'`` when the entry has a usable name, else its position ``metrics[3]``."""
        value = entry.get(key)
        return f"{kind} {value!r}" if isinstance(value, str) and EXPERIMENT_KEY.match(value) else position

    def name(self, entry: dict[str, Any], key: str, where: str) -> str:
        value = entry.get(key)
        if not isinstance(value, str) or not NAME.match(value):
            raise self.fail(
                where,
                f"'{key}' must be a plain name (letters, digits and _, at most 63 characters), not {shown(value)}.",
            )
        return value

    def text(self, entry: dict[str, Any], key: str, where: str) -> str:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"'{key}' must be a non-empty string of SQL or text.")
        return value.strip().rstrip(";").strip()

    def number(
        self, value: Any, where: str, low: float | None = None, high: float | None = None, open_low: bool = False
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise self.fail(where, f"must be a number, not {shown(value)}.")
        if low is not None and (value < low or (open_low and value == low)):
            raise self.fail(where, f"must be {'>' if open_low else '≥'} {low}, not {value}.")
        if high is not None and value > high:
            raise self.fail(where, f"must be ≤ {high}, not {value}.")
        return float(value)

    def listed(self, value: Any, where: str) -> list[Any]:
        """``value`` as a list (absent or empty: ``[]``)."""
        if value is None or value == "":
            return []
        if not isinstance(value, list):
            raise self.fail(where, f'must be a list such as ["0", "1"], not {shown(value)}.')
        return value

    def variation_id(self, value: Any, where: str) -> str:
        """A variation id as text (numbers are written as text, e.g. 1 → "1")."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
            raise self.fail(where, f'a variation id must be text or a number such as "0", not {shown(value)}.')
        return str(value)

    def variation(self, value: Any, where: str) -> tuple[str, str]:
        """(id, name) of one ``variations`` entry: a plain id (no name: ``""``) or ``{id: "0", name: "Control"}``."""
        if not isinstance(value, dict):
            return self.variation_id(value, where), ""
        if set(value) - VARIATION_KEYS or "id" not in value:
            raise self.fail(where, f'an entry must be an id or {{id: "0", name: "Control"}}, not {shown(value)}.')
        name = value.get("name", "")
        if not isinstance(name, str) or (name and not name.strip()):
            raise self.fail(where, f"the name of variation {shown(value['id'])} must be text, not {shown(name)}.")
        return self.variation_id(value["id"], where), name.strip()

    def currency_format(self, value: Any, where: str, default: Currency) -> Currency:
        """A ``currency: {symbol, decimals, symbol_after}`` mapping over ``default``; absent: ``default``."""
        if value is None:
            return default
        if not isinstance(value, dict) or set(value) - CURRENCY_KEYS:
            raise self.fail(
                where,
                f'must be a mapping with keys among {sorted(CURRENCY_KEYS)}, e.g. {{symbol: "€", symbol_after: true}}.',
            )
        symbol = value.get("symbol", default.symbol)
        decimals = value.get("decimals", default.decimals)
        after = value.get("symbol_after", default.symbol_after)
        if not isinstance(symbol, str):
            raise self.fail(f"{where}.symbol", f'must be text such as "€", not {shown(symbol)}.')
        if not isinstance(after, bool):
            raise self.fail(f"{where}.symbol_after", f"must be true or false, not {shown(after)}.")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
            raise self.fail(f"{where}.decimals", f"must be a whole number from 0 to 6, not {shown(decimals)}.")
        return Currency(symbol, decimals, after)

    def value_format(self, entry: dict[str, Any], where: str) -> ValueFormat | None:
        """A metric's ``format`` (None: its type's) with its ``currency`` over the top-level one."""
        kind = entry.get("format")
        if kind is None:
            if "currency" in entry:
                raise self.fail(where, "'currency' needs 'format: currency'; add it or remove 'currency'.")
            return None
        if kind not in FORMATS:
            raise self.fail(f"{where}.format", f"{shown(kind)} is not one of {list(FORMATS)}.")
        if "currency" in entry and kind != "currency":
            raise self.fail(where, f"'currency' applies to 'format: currency' only, not {kind!r}; remove it.")
        return ValueFormat(kind, self.currency_format(entry.get("currency"), f"{where}.currency", self.currency))

    def unique(self, items: list[Any], section: str, attr: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for item in items:
            key = getattr(item, attr)
            if key in seen:
                raise self.fail(section, f"two entries share the {attr} {shown(key)}; rename one.")
            seen[key] = item
        return seen

    def known_type(self, name: str, where: str) -> None:
        if name not in self.identifier_types:
            raise self.fail(
                where,
                f"{shown(name)} is not one of identifier_types {list(self.identifier_types)}; add it there or fix the name.",
            )

    def sql_columns(self, sql: str, required: list[str], where: str, what: str) -> tuple[str, ...] | None:
        columns = select_columns(sql)
        if columns is not None:
            missing = [c for c in required if c not in columns]
            if missing:
                raise self.fail(
                    where,
                    f"the SQL returns {list(columns)} but {what} needs {missing}; add them to its SELECT (e.g. `userId AS user_id`).",
                )
        return columns

    # -- sections -------------------------------------------------------------------------------
    def identity_join(self, entry: dict[str, Any], i: int) -> IdentityJoin:
        where = f"identity_joins[{i}]"
        self.keys(entry, IDENTITY_JOIN_KEYS, where, ("sql",))
        sql = self.text(entry, "sql", where)
        if "identifier_types" in entry:
            types = self.names(entry["identifier_types"], f"{where}.identifier_types")
        else:
            columns = select_columns(sql)
            if columns is None:
                raise self.fail(where, "its columns cannot be read from the SQL; list them under 'identifier_types'.")
            types = tuple(c for c in columns if c in self.identifier_types)
        for t in types:
            self.known_type(t, f"{where}.identifier_types")
        if len(types) < 2:
            raise self.fail(
                where,
                f"an identity join must return at least two identifier types of {list(self.identifier_types)}, it returns {list(types)}.",
            )
        columns = self.sql_columns(sql, list(types), where, "the identity join")
        return IdentityJoin(sql, types, timestamp=columns is not None and "timestamp" in columns)

    def assignment_query(self, entry: dict[str, Any], i: int) -> AssignmentQuery:
        where = self.entry_name(entry, "name", f"assignment_queries[{i}]", "assignment query")
        self.keys(entry, ASSIGNMENT_KEYS, where, ("name", "identifier_type", "sql"))
        name = self.name(entry, "name", where)
        where = f"assignment query {name!r}"
        identifier = self.name(entry, "identifier_type", where)
        self.known_type(identifier, f"{where}.identifier_type")
        dimensions = self.names(entry.get("dimensions") or [], f"{where}.dimensions")
        reserved = set(ASSIGNMENT_COLUMNS) | set(self.identifier_types)
        if clash := reserved & set(dimensions):
            raise self.fail(
                where, f"dimensions {sorted(clash)} clash with the required columns; use other column names."
            )
        sql = self.text(entry, "sql", where)
        self.sql_columns(sql, [identifier, *ASSIGNMENT_COLUMNS, *dimensions], where, "an assignment query")
        return AssignmentQuery(name, identifier, sql, dimensions, str(entry.get("description") or ""))

    def metric(self, entry: dict[str, Any], i: int) -> Metric:
        where = self.entry_name(entry, "name", f"metrics[{i}]", "metric")
        self.keys(entry, METRIC_KEYS, where, ("name", "type"))
        name = self.name(entry, "name", where)
        where = f"metric {name!r}"
        if not isinstance(entry["type"], str) or entry["type"] not in metric_types.REGISTRY:
            raise self.fail(where, f"type {shown(entry['type'])} is not one of {list(metric_types.names())}.")
        kind = metric_types.get(entry["type"])
        inverse = entry.get("inverse", False)
        if not isinstance(inverse, bool):
            raise self.fail(f"{where}.inverse", f"must be true or false, not {shown(inverse)}.")
        if kind.shape == RATIO:
            self.keys(
                entry,
                {"name", "type", "numerator", "denominator", "inverse", "description", "capping", "prior", "cuped"}
                | {"format", "currency"},
                where,
                ("numerator", "denominator"),
            )
            if "capping" in entry:
                raise self.fail(
                    where,
                    f"{kind.name} metrics take capping from their numerator and denominator metrics; move 'capping' there.",
                )
            if "cuped" in entry and not kind.cuped:
                raise self.fail(where, f"{kind.name} metrics take no 'cuped'; remove it.")
            self.ratio_parts[name] = (self.name(entry, "numerator", where), self.name(entry, "denominator", where))
            return Metric(
                name,
                kind,
                cuped_lookback_days=self.cuped(entry.get("cuped"), where),
                inverse=inverse,
                description=str(entry.get("description") or ""),
                prior=self.prior(entry.get("prior"), where),
                format=self.value_format(entry, where),
            )
        for key in ("numerator", "denominator"):
            if key in entry:
                raise self.fail(where, f"'{key}' belongs to ratio metrics only; remove it or set type: ratio.")
        quantile = None
        if kind.quantile_level:
            kind, quantile = self.quantile(entry, kind, where)
        elif "quantile" in entry:
            raise self.fail(where, "'quantile' belongs to quantile metrics only; remove it or set type: quantile.")
        refused = [
            key for key, allowed in (("cuped", kind.cuped), ("capping", kind.capping)) if key in entry and not allowed
        ]
        if refused:
            raise self.fail(
                where,
                f"{kind.name} metrics take no {' and no '.join(repr(k) for k in refused)}; remove {'them' if len(refused) > 1 else 'it'}.",
            )
        common = {
            "window": self.window(entry.get("window"), where),
            "capping": self.capping(entry.get("capping"), where),
            "cuped_lookback_days": self.cuped(entry.get("cuped"), where),
            "quantile": quantile,
            "inverse": inverse,
            "description": str(entry.get("description") or ""),
            "prior": self.prior(entry.get("prior"), where),
            "format": self.value_format(entry, where),
        }
        if "fact_table" in entry:
            return Metric(name, kind, **common, **self.fact_metric(entry, kind, where))
        for key in ("column", "row_filter"):
            if key in entry:
                raise self.fail(where, f"'{key}' belongs to metrics over a fact table; add 'fact_table' or remove it.")
        sql = self.text(entry, "sql", where)
        types = self.identifiers(entry, sql, where)
        self.sql_columns(sql, kind.required_columns(types), where, f"a {kind.name} metric")
        return Metric(
            name, kind, sql=sql, identifier_types=types, filter=self.filter(entry.get("filter"), where), **common
        )

    def identifiers(self, entry: dict[str, Any], sql: str, where: str) -> tuple[str, ...]:
        """The identifier types ``sql`` returns: listed under ``identifier_types``, else read from it."""
        columns = select_columns(sql)
        if "identifier_types" in entry:
            types = self.names(entry["identifier_types"], f"{where}.identifier_types")
        elif columns is not None:
            types = tuple(t for t in self.identifier_types if t in columns)
        else:
            raise self.fail(
                where, "its columns cannot be read from the SQL; list its identifier columns under 'identifier_types'."
            )
        if not types:
            raise self.fail(
                where,
                f"the SQL returns none of the identifier types {list(self.identifier_types)}; select e.g. `userId AS user_id`.",
            )
        for t in types:
            self.known_type(t, f"{where}.identifier_types")
        return types

    def fact_table(self, entry: dict[str, Any], i: int) -> FactTable:
        where = self.entry_name(entry, "name", f"fact_tables[{i}]", "fact table")
        self.keys(entry, FACT_TABLE_KEYS, where, ("name", "sql"))
        name = self.name(entry, "name", where)
        where = f"fact table {name!r}"
        sql = self.text(entry, "sql", where)
        types = self.identifiers(entry, sql, where)
        columns = self.sql_columns(sql, [*types, "timestamp"], where, "a fact table")
        return FactTable(name, sql, types, columns, str(entry.get("description") or ""))

    def fact_metric(self, entry: dict[str, Any], kind: MetricType, where: str) -> dict[str, Any]:
        """The fields of a metric over a fact table: the table, the ``column`` it reads (``rows``:
        none, it counts rows), its ``row_filter``, and the same rows as one metric's ``sql``, every
        reference checked against the table's columns when they can be read statically."""
        for key, instead in (("sql", "its rows come from the fact table"), ("filter", "use 'row_filter'")):
            if key in entry:
                raise self.fail(where, f"a metric over a fact table takes no '{key}' ({instead}); remove it.")
        table_name = self.name(entry, "fact_table", where)
        if table_name not in self.fact_tables:
            raise self.fail(
                f"{where}.fact_table",
                f"{shown(table_name)} is not a defined fact table; define it under 'fact_tables' or fix the name "
                f"(defined: {sorted(self.fact_tables)})." + did_you_mean(table_name, self.fact_tables),
            )
        table = self.fact_tables[table_name]
        known = f"; its columns are {list(table.columns)}" if table.columns is not None else ""
        column = entry.get("column", ROWS)
        if not isinstance(column, str) or not NAME.match(column):
            raise self.fail(
                f"{where}.column", f"must name a column of fact table {table.name!r} or be `rows`, not {shown(column)}."
            )
        if kind.reads_value and column == ROWS:
            raise self.fail(
                f"{where}.column",
                f"{kind.name} metrics read a column's values; name a column of fact table {table.name!r}{known}.",
            )
        if not kind.reads_value and column != ROWS:
            raise self.fail(
                f"{where}.column",
                f"{kind.name} metrics count rows; write `column: rows` (or leave it out), or use type mean to sum {column!r}.",
            )
        row_filter = self.filter(entry.get("row_filter"), where, "row_filter")
        if table.columns is not None:
            for what, names in (("column", {column} - {ROWS}), ("row_filter", filter_columns(row_filter))):
                if unknown := sorted(names - set(table.columns)):
                    raise self.fail(
                        f"{where}.{what}",
                        f"{unknown} {'is not a column' if len(unknown) == 1 else 'are not columns'} of fact table {table.name!r}{known}."
                        + did_you_mean(unknown[0], table.columns),
                    )
        value = "1" if column == ROWS else f"f.{column}"
        ids = ", ".join(f"f.{t}" for t in table.identifier_types)
        sql = f"SELECT {ids}, f.timestamp, {value} AS value FROM ({table.sql}) f" + (
            f" WHERE {row_filter}" if row_filter else ""
        )
        return {
            "sql": sql,
            "identifier_types": table.identifier_types,
            "fact_table": table,
            "column": None if column == ROWS else column,
            "row_filter": row_filter,
        }

    def window(self, value: Any, where: str) -> Window:
        if value is None:
            return Window()
        if not isinstance(value, dict):
            raise self.fail(f"{where}.window", "must be a mapping like {delay_hours: 24, hours: 72}.")
        self.keys(value, WINDOW_KEYS, f"{where}.window")
        delay = self.number(value.get("delay_hours", 0), f"{where}.window.delay_hours", 0)
        hours = value.get("hours")
        return Window(delay, None if hours is None else self.number(hours, f"{where}.window.hours", 0, open_low=True))

    def capping(self, value: Any, where: str) -> Capping | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{where}.capping", "must be a mapping like {type: absolute, value: 100}.")
        self.keys(value, CAPPING_KEYS, f"{where}.capping", ("type", "value"))
        if value["type"] not in ("absolute", "percentile"):
            raise self.fail(f"{where}.capping.type", f"must be absolute or percentile, not {shown(value['type'])}.")
        if value["type"] == "percentile":
            level = self.number(value["value"], f"{where}.capping.value", 0, 1, open_low=True)
        else:
            level = self.number(value["value"], f"{where}.capping.value", 0)
        ignore_zeros = value.get("ignore_zeros", False)
        if not isinstance(ignore_zeros, bool):
            raise self.fail(f"{where}.capping.ignore_zeros", f"must be true or false, not {shown(ignore_zeros)}.")
        if ignore_zeros and value["type"] != "percentile":
            raise self.fail(
                f"{where}.capping.ignore_zeros",
                "applies to percentile caps only (an absolute cap does not depend on the other values); remove it or use type: percentile.",
            )
        return Capping(value["type"], level, ignore_zeros)

    def prior(self, value: Any, where: str) -> Prior | None:
        """A metric's own Bayesian prior on the relative effect, ``{mean: 0, stddev: 0.3}``."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{where}.prior", "must be a mapping like {mean: 0.0, stddev: 0.3} (relative effect).")
        self.keys(value, PRIOR_KEYS, f"{where}.prior", ("stddev",))
        mean = self.number(value.get("mean", 0.0), f"{where}.prior.mean")
        return Prior(mean, self.number(value["stddev"], f"{where}.prior.stddev", 0, open_low=True))

    def quantile(self, entry: dict[str, Any], kind: MetricType, where: str) -> tuple[MetricType, float]:
        """``(type, level ν)`` of a quantile metric: ``quantile: 0.9`` (at the type's own level:
        event for ``quantile``) or ``quantile: {value: 0.9, level: event | unit}``; the level picks
        the registered type (``type: quantile`` with ``level: unit`` is a ``quantile_unit`` metric)."""
        value, level, at = entry.get("quantile"), kind.quantile_level, f"{where}.quantile"
        if value is None:
            raise self.fail(
                where,
                f"{kind.name} metrics need 'quantile: {{value: 0.9, level: event}}' (a level between 0 and 1, "
                "taken over events or over units' values).",
            )
        if isinstance(value, dict):
            self.keys(value, QUANTILE_KEYS, at, ("value",))
            level = value.get("level", level)
            levels = [name for name in metric_types.QUANTILE_LEVELS.values() if metric_types.quantile_type(name)]
            if level not in levels:
                raise self.fail(f"{at}.level", f"must be {' or '.join(levels)}, not {shown(level)}.")
            value, at = value["value"], f"{at}.value"
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.fail(
                at, f"must be a number like 0.9 or a mapping like {{value: 0.9, level: unit}}, not {shown(value)}."
            )
        nu = self.number(value, at, 0, 1, open_low=True)
        if nu >= 1:
            raise self.fail(at, f"must be < 1, not {nu}.")
        return metric_types.quantile_type(level, kind) or kind, nu

    def cuped(self, value: Any, where: str) -> float | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{where}.cuped", "must be a mapping like {lookback_days: 14}.")
        self.keys(value, CUPED_KEYS, f"{where}.cuped", ("lookback_days",))
        return self.number(value["lookback_days"], f"{where}.cuped.lookback_days", 0, open_low=True)

    def filter(self, value: Any, where: str, key: str = "filter") -> str | None:
        """``value`` (the entry's ``key``) if it is one SQL condition built only of
        :data:`FILTER_NODES`, checked on its parse tree: no comment, no ``;`` outside a quoted
        string, no subquery or other function."""
        if value is None:
            return None
        import sqlglot
        from sqlglot.tokens import TokenType

        where = f"{where}.{key}"

        not_condition = f"{shown(value)} is not a SQL condition; write e.g. \"event = 'Search'\"."
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be a SQL condition such as \"event = 'Search'\".")
        dialect = sqlglot.Dialect.get_or_raise(SOURCE_DIALECT)
        try:
            tokens = dialect.tokenize(value)
            trees = dialect.parser().parse(tokens, value)
        except sqlglot.errors.SqlglotError:  # ParseError, or TokenError for e.g. an unclosed quote
            raise self.fail(where, not_condition) from None
        if any(t.comments for t in tokens):
            raise self.fail(where, f"{shown(value)} holds a comment (-- or /* */), which would hide SQL; remove it.")
        if any(t.token_type == TokenType.SEMICOLON for t in tokens):
            raise self.fail(where, f"{shown(value)} holds ';' outside a quoted string; a filter is one condition.")
        tree = trees[0] if len(trees) == 1 else None
        if tree is None:  # nothing but a comment
            raise self.fail(where, not_condition)
        for node in tree.walk():
            if type(node).__name__ not in FILTER_NODES:
                raise self.fail(
                    where,
                    f"{shown(value)} uses {shown(node.sql())}; a filter may use only the "
                    f"metric's columns, values, operators, CASE, CAST and {', '.join(FILTER_FUNCTIONS)}.",
                )
        if type(tree.unnest()).__name__ not in FILTER_CONDITIONS:
            raise self.fail(where, not_condition)
        return value.strip()

    def resolve_ratios(self, metrics: dict[str, Metric]) -> dict[str, Metric]:
        """``metrics`` with each ratio holding its numerator and denominator metrics, which must
        have a per-unit value (so a ratio never names a ratio: no cycle of definitions)."""
        usable = [kind.name for kind in metric_types.REGISTRY.values() if kind.per_unit]
        for name, (numerator, denominator) in self.ratio_parts.items():
            for key, part in (("numerator", numerator), ("denominator", denominator)):
                if part not in metrics:
                    raise self.fail(
                        f"metric {name!r}.{key}",
                        f"{shown(part)} is not a defined metric; define it or fix the name."
                        + did_you_mean(part, metrics),
                    )
                if not metrics[part].kind.per_unit:
                    raise self.fail(
                        f"metric {name!r}.{key}",
                        f"{part!r} is a {metrics[part].type} metric, which cannot be a numerator or denominator (a ratio of ratios is a cycle of definitions); use a {', '.join(usable[:-1])} or {usable[-1]} metric.",
                    )
            metrics[name] = dataclasses.replace(
                metrics[name], numerator=metrics[numerator], denominator=metrics[denominator]
            )
        return metrics

    def experiment(self, entry: dict[str, Any], i: int) -> ExperimentConfig:
        where = self.entry_name(entry, "key", f"experiments[{i}]", "experiment")
        self.keys(entry, EXPERIMENT_KEYS, where, ("key",))
        key = str(entry["key"])
        if not EXPERIMENT_KEY.match(key):
            raise self.fail(
                where, f"key {shown(key)} may hold only letters, digits and _ . : - (at most 100 characters)."
            )
        where = f"experiment {key!r}"
        if "assignment_query" in entry:
            aq_name = self.name(entry, "assignment_query", where)
        elif len(self.assignment_known) == 1:
            aq_name = next(iter(self.assignment_known))
        else:
            raise self.fail(where, f"name its 'assignment_query', one of {sorted(self.assignment_known)}.")
        if aq_name not in self.assignment_known:
            raise self.fail(
                where,
                f"assignment_query {shown(aq_name)} is not defined; use one of {sorted(self.assignment_known)}."
                + did_you_mean(aq_name, self.assignment_known),
            )
        aq = self.assignment_known[aq_name]
        groups = {}
        for group in METRIC_GROUPS:
            names = self.names(entry.get(group) or [], f"{where}.{group}")
            for name in names:
                if name not in self.metrics_known:
                    raise self.fail(
                        f"{where}.{group}",
                        f"{shown(name)} is not a defined metric; define it under 'metrics' or fix the name (defined: {sorted(self.metrics_known)})."
                        + did_you_mean(name, self.metrics_known),
                    )
            groups[group] = tuple(self.metrics_known[name] for name in names)
        activation = entry.get("activation_metric")
        if activation is not None and (
            not isinstance(activation, str)
            or activation not in self.metrics_known
            or self.metrics_known[activation].kind.shape == RATIO
        ):
            raise self.fail(
                f"{where}.activation_metric", f"{shown(activation)} must name a defined metric that is not a ratio."
            )
        activation = None if activation is None else self.metrics_known[activation]
        entries = [
            self.variation(v, f"{where}.variations")
            for v in self.listed(entry.get("variations"), f"{where}.variations")
        ]
        variations = tuple(v for v, _ in entries)
        if len(set(variations)) != len(variations) or "__multiple__" in variations:
            raise self.fail(
                f"{where}.variations",
                f"lists a variation twice or uses the reserved id '__multiple__': {list(variations)}.",
            )
        variation_names = {v: name for v, name in entries if name}
        if len(set(variation_names.values())) != len(variation_names):
            raise self.fail(f"{where}.variations", f"two variations share a name: {list(variation_names.values())}.")
        for text_key in ("name", "description", "hypothesis"):
            if not isinstance(entry.get(text_key) or "", str):
                raise self.fail(f"{where}.{text_key}", f"must be text, not {shown(entry[text_key])}.")
        control = entry.get("control")
        control = None if control is None else self.variation_id(control, f"{where}.control")
        if control is not None and variations and control not in variations:
            raise self.fail(f"{where}.control", f"{shown(control)} is not one of its variations {list(variations)}.")
        weights = entry.get("weights") or []
        if weights:
            if not isinstance(weights, list) or len(weights) != len(variations):
                raise self.fail(
                    f"{where}.weights",
                    f"must list one weight per variation ({len(variations)}), e.g. {[round(1 / max(len(variations), 1), 3)] * len(variations)}.",
                )
            weights = [self.number(w, f"{where}.weights", 0, open_low=True) for w in weights]
            weights = [w / sum(weights) for w in weights]
        dimensions = self.names(entry.get("dimensions") or [], f"{where}.dimensions")
        for d in dimensions:
            if d not in aq.dimensions:
                raise self.fail(
                    f"{where}.dimensions",
                    f"{shown(d)} is not a dimension of assignment query {shown(aq.name)} {list(aq.dimensions)}."
                    + did_you_mean(d, aq.dimensions),
                )
        start = self.timestamp(entry.get("start"), f"{where}.start")
        end = self.timestamp(entry.get("end"), f"{where}.end", end_of_day=True)
        if start and end and end < start:
            raise self.fail(where, f"end {end} is before start {start}.")
        analysis = entry.get("analysis") or {}
        if not isinstance(analysis, dict):
            raise self.fail(f"{where}.analysis", "must be a mapping of statistics settings (engine, alpha, …).")
        if analysis.get("post_stratification") is not None:
            strata = self.names(analysis["post_stratification"], f"{where}.analysis.post_stratification")
            unknown = [d for d in strata if d not in aq.dimensions]
            if unknown:
                raise self.fail(
                    f"{where}.analysis.post_stratification",
                    f"{', '.join(map(repr, unknown))} {'is not a dimension' if len(unknown) == 1 else 'are not dimensions'} "
                    f"of assignment query {aq.name!r}; use some of {list(aq.dimensions)}."
                    + did_you_mean(unknown[0], aq.dimensions),
                )
        return ExperimentConfig(
            key,
            aq,
            start,
            end,
            variations,
            control,
            tuple(weights),
            dimensions,
            activation,
            groups["goal_metrics"],
            groups["secondary_metrics"],
            groups["guardrail_metrics"],
            analysis,
            str(entry.get("name") or "").strip(),
            str(entry.get("description") or "").strip(),
            str(entry.get("hypothesis") or "").strip(),
            variation_names,
            self.flag(entry.get("incremental", self.incremental), f"{where}.incremental"),
            self.number(entry.get("late_data_hours", self.late_data_hours), f"{where}.late_data_hours", 0),
        )

    def timestamp(self, value: Any, where: str, end_of_day: bool = False) -> dt.datetime | None:
        """A naive UTC timestamp; a bare date as an end means the whole day (inclusive)."""
        if value is None:
            return None
        try:
            if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
                value = dt.date.fromisoformat(value.strip())
            if isinstance(value, dt.datetime):
                return _naive_utc(value)
            if isinstance(value, dt.date):
                day = dt.datetime(value.year, value.month, value.day)
                return day + dt.timedelta(days=1, microseconds=-1) if end_of_day else day
            return _naive_utc(dt.datetime.fromisoformat(value))  # a non-string: TypeError
        except (ValueError, OverflowError, TypeError):
            raise self.fail(
                where, f"{shown(value)} is not a date or timestamp; write 2026-09-25 or 2026-09-25 13:00:00 (UTC)."
            ) from None
