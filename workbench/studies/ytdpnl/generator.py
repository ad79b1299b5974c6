"""Generate a synthetic copy of the YouTube personalization study (seed 002), seeded and in bulk.

Participants in both arms browse YouTube in sessions (one per tab) and move through phases
0 → 1 → 2 by the server's automatic rule (daily activity against the current transition
settings) or by an admin (FORCED); a few are reset to phase 0. Every event type is written with
the production quirks: PAGE_VIEW and RECOMMENDATIONS_SHOWN in either order within 1.5 s, clicks
after the recommendations they come from, the first PAGE_VIEW of a first session missing before
2023-02-13. Derived tables (daily_activity_time, transition_event, participant.phase,
extension_activated_at, vouchers) follow the rules of the reference
(/work/shared/reference/ytdpnl-schema.md). Work is vectorised per chunk of participants and
written with :mod:`workbench.db.bulk_write` in one transaction.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from workbench.db.bulk_write import BulkWriter, write_transaction
from workbench.db.connection import SqlDatabase
from workbench.db.sql_files import TableDefinition
from workbench.errors import WorkbenchError
from workbench.progress import progress_bar
from workbench.studies.ytdpnl import daily_rules
from workbench.studies.ytdpnl.faults import InjectedFaults, plant_faults
from workbench.studies.ytdpnl.tables import (
    STUDY_TABLES,
    STUDY_TYPES,
    WORKBENCH_SCHEMA,
    schema_statements,
    study_schema,
)

YOUTUBE = "https://www.youtube.com"
FIRST_PAGE_VIEW_FIX = pd.Timestamp("2023-02-13")  # before this day the first PAGE_VIEW of a first session was lost
PAGE_KINDS = ("home", "watch", "search", "channel")
HOME, WATCH, SEARCH, CHANNEL = range(4)
LIST_TYPES = ("PERSONALIZED", "NON_PERSONALIZED", "SHOWN", "HOME_DEFAULT", "HOME_REPLACEMENT_SOURCE", "HOME_SHOWN")
VIDEO_TYPES = ("PERSONALIZED", "NON_PERSONALIZED", "MIXED")  # list items carry these as codes until written
MS = 1000


@dataclass(frozen=True)
class StudySize:
    """How big the study is: participants, calendar days and behaviour means."""

    participants: int = 50
    days: int = 21
    active_day_probability: float = 0.6
    sessions_per_active_day: float = 1.8  # mean, at least 1
    pages_per_session: float = 6.0  # mean, at least 1
    list_length: int = 10  # items per recommendation list
    home_list_length: int = 8  # items per home-page list


SIZES = {
    "tiny": StudySize(
        participants=16, days=14, sessions_per_active_day=1.5, pages_per_session=5.0, list_length=6, home_list_length=4
    ),
    "pilot": StudySize(),
    "medium": StudySize(
        participants=500, days=35, active_day_probability=0.7, sessions_per_active_day=2.5, pages_per_session=11.0
    ),
    "large": StudySize(
        participants=5000, days=42, active_day_probability=0.7, sessions_per_active_day=2.5, pages_per_session=11.0
    ),
}


@dataclass(frozen=True)
class TransitionRule:
    """One transition_setting row: minimums a day must reach (ANY/ALL of the non-zero ones) for ``min_days`` days."""

    from_phase: int
    to_phase: int
    operator: str
    min_pages_viewed: int = 0
    min_video_pages_viewed: int = 0
    min_video_time_viewed_seconds: float = 0.0
    min_time_spent_on_youtube_seconds: float = 0.0
    min_sidebar_recommendations_clicked: int = 0
    min_days: int = 3

    def minimums(self) -> dict[str, float]:
        return {column: getattr(self, f"min_{column}") for column in daily_rules.FIGURES}


DEFAULT_RULES = (
    TransitionRule(0, 1, "ANY", min_pages_viewed=8, min_time_spent_on_youtube_seconds=900.0, min_days=3),
    TransitionRule(1, 2, "ALL", min_pages_viewed=5, min_video_pages_viewed=2, min_days=5),
)


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything that shapes a generated study; the same settings and seed give the same data."""

    size: StudySize = field(default_factory=StudySize)
    seed: int = 0
    start: dt.date = dt.date(2023, 2, 6)  # first calendar day; some first sessions fall before 2023-02-13
    rules: tuple[TransitionRule, ...] = DEFAULT_RULES
    non_personalized_probabilities: tuple[float, float] = (0.3, 0.5)  # old config, then the current one from mid-study
    click_probability: float = 0.3  # a watch page leads to a sidebar click
    home_click_probability: float = 0.3  # a home page leads to a tile click (tracked for injected tiles only)
    home_injection_probability: float = 0.3  # a home tile is replaced by the replacement pool (treatment, phase 1)
    forced_share: float = 0.1  # participants an admin moves to phase 1 on their second active day
    reset_share: float = 0.05  # participants reset to phase 0 on their last active day
    missing_metadata: int = 3  # shown videos left without a video_metadata row
    unassigned_vouchers: int = 5
    chunk_participants: int = 200


@dataclass
class GeneratedStudy:
    """What :func:`generate_study` wrote: rows per table, the planted faults and the wall time (s)."""

    schema: str
    rows: dict[str, int]
    faults: InjectedFaults | None
    seconds: float

    def __repr__(self) -> str:
        return f"<GeneratedStudy schema={self.schema} events={self.rows.get('event', 0):,} seconds={self.seconds:.1f}>"


def generate_study(
    db: SqlDatabase,
    size: str | StudySize = "pilot",
    seed: int = 0,
    schema: str = WORKBENCH_SCHEMA,
    inject_faults: bool = False,
    **settings,
) -> GeneratedStudy:
    """Replace the study's tables in ``schema`` of ``db`` with a generated study; see :class:`GeneratorSettings`.

    ``size`` is a preset name (``tiny``, ``pilot``, ``medium``, ``large``) or a :class:`StudySize`.
    With ``inject_faults`` a few known faults are planted for :func:`sanity_checks` to find; their
    ids are returned in ``faults``.
    """
    schema = study_schema(schema)
    if schema is None:
        raise WorkbenchError(
            "generate_study needs an explicit schema (e.g. 'ytdpnl'): it replaces the study's tables there."
        )
    if isinstance(size, str):
        if size not in SIZES:
            raise WorkbenchError(f"size={size!r} is not a study size: pick one of {sorted(SIZES)} or pass a StudySize.")
        size = SIZES[size]
    unknown = set(settings) - set(GeneratorSettings.__dataclass_fields__)
    if unknown:
        raise WorkbenchError(
            f"generate_study got unknown setting(s) {sorted(unknown)}: use fields of GeneratorSettings."
        )
    config = GeneratorSettings(size=size, seed=seed, **settings)
    began = time.perf_counter()
    rows: dict[str, int] = {}
    with write_transaction(db) as writer:
        _create_tables(writer, db, schema)
        order = _column_order(writer, schema)
        study = _StudyBuilder(config)
        for name, frame in study.fixed_tables().items():
            rows[name] = rows.get(name, 0) + _append(writer, name, frame, order)
        bar = progress_bar(config.size.participants, desc="Generating participants", unit="participant")
        faults = None
        for first in range(0, config.size.participants, config.chunk_participants):
            chunk = study.chunk(first, min(first + config.chunk_participants, config.size.participants))
            if inject_faults and faults is None:
                faults = plant_faults(chunk, np.random.default_rng([config.seed, 1]), study.next_session_id())
                study.reserve_session_ids(len(faults.sessions_without_events))
            chunk.update(study.derived_tables(chunk))
            for name in _WRITE_ORDER:
                if name in chunk:
                    rows[name] = rows.get(name, 0) + _append(writer, name, chunk[name], order)
            bar.update(chunk["participant"].shape[0])
        bar.close()
        for name, frame in study.closing_tables().items():
            rows[name] = rows.get(name, 0) + _append(writer, name, frame, order)
        if faults is not None:
            faults.missing_video_metadata = study.videos_without_metadata
        for table in STUDY_TABLES:
            if table != "watch_time" and (reset := db.dialect.sequence_reset(table)):
                writer.execute(reset)
    return GeneratedStudy(schema, rows, faults, time.perf_counter() - began)


_WRITE_ORDER = (
    "participant",
    "session",
    "event",
    "watch_time",
    "video_list_item",
    "daily_activity_time",
    "transition_event",
    "voucher",
)


def _create_tables(writer: BulkWriter, db: SqlDatabase, schema: str) -> None:
    writer.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    writer.execute(db.dialect.set_search_path(schema))
    for table in STUDY_TABLES:
        writer.execute(db.dialect.drop_table(f"{schema}.{table}", cascade=True))
    for type_name in STUDY_TYPES:
        writer.execute(f"DROP TYPE IF EXISTS {schema}.{type_name}")
    for statement in schema_statements(db):
        writer.execute(statement)


def _column_order(writer: BulkWriter, schema: str) -> dict[str, list[str]]:
    """Each study table's columns in their declared order (bulk appends may be positional)."""
    cursor = writer.raw.cursor()
    cursor.execute(
        f"SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = '{schema}' ORDER BY table_name, ordinal_position"
    )
    rows = cursor.fetchall()
    cursor.close()
    order: dict[str, list[str]] = {}
    for table, column in rows:
        order.setdefault(table, []).append(column)
    return order


def _append(writer: BulkWriter, name: str, frame: pd.DataFrame, order: dict[str, list[str]]) -> int:
    """Append ``frame`` (every column of table ``name``) in the table's column order."""
    frame = frame[order[name]]
    if writer.dialect.bulk_load == "copy":  # COPY's CSV reads a text[] column from its literal
        frame = frame.assign(
            **{c: frame[c].map(_array_literal) for c in frame.columns if frame[c].map(type).eq(list).any()}
        )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for index, column in enumerate(table.schema):
        if pa.types.is_dictionary(column.type):  # categorical codes become plain text for both engines
            table = table.set_column(index, column.name, table.column(index).cast(pa.string()))
    return writer.append(TableDefinition(name, tuple((c, "") for c in table.column_names)), table)


def _array_literal(values: list[str]) -> str:
    """A PostgreSQL text[] literal for ``COPY`` (each element quoted and escaped)."""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in escaped) + "}"


def _ms_to_timestamp(ms: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(ms, dtype="int64"), unit="ms"))


class _StudyBuilder:
    """Holds the study-wide state (videos, configs, id counters) and builds one chunk at a time."""

    def __init__(self, config: GeneratorSettings):
        self.config, self.size = config, config.size
        self.rng = np.random.default_rng(config.seed)
        self.start_ms = int(pd.Timestamp(config.start).value // 1_000_000)
        n = self.size.participants
        self.n_popular, self.n_news = 300, 100
        self.n_tail = max(2000, 40 * n)
        self.n_videos = self.n_popular + self.n_news + self.n_tail
        self.youtube_ids = np.array(
            [
                f"v{i:06x}"
                + "".join(self.rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 4))
                for i in range(self.n_videos)
            ]
        )
        self.watch_urls = np.char.add(YOUTUBE + "/watch?v=", self.youtube_ids.astype(str)).astype(object)
        self.arms = np.where(self.rng.permutation(n) % 2 == 0, "treatment", "control")
        self.codes = np.array([uuid.UUID(bytes=self.rng.bytes(16)).hex[:20] for _ in range(n)])
        self.pool_offset = self.rng.integers(0, self.n_tail, n)
        self.config_switch_ms = self.start_ms + (self.size.days // 2) * 86_400_000
        self.session_counter, self.event_counter, self.item_counter = 0, 0, 0
        self.day_counter, self.transition_counter = 0, 0
        self.shown_video_ids: set[int] = set()
        self.activations: list[tuple[int, int]] = []  # (participant id, activation ms)
        self.videos_without_metadata: list[int] = []

    # ------------------------------------------------------------------ study-wide tables
    def fixed_tables(self) -> dict[str, pd.DataFrame]:
        c = self.config
        before = _ms_to_timestamp(np.array([self.start_ms - 86_400_000]))[0]
        switch = _ms_to_timestamp(np.array([self.config_switch_ms]))[0]
        admin = pd.DataFrame(
            {
                "id": [1],
                "name": ["Study admin"],
                "email": ["admin@example.org"],
                "password": ["$2b$10$" + "x" * 53],
                "created_at": [before],
                "updated_at": [before],
            }
        )
        configs = pd.DataFrame(
            {
                "id": [1, 2],
                "comment": ["pilot probability", "raised mid-study"],
                "non_personalized_probability": list(c.non_personalized_probabilities),
                "is_current": [False, True],
                "admin_id": [1, 1],
                "created_at": [before, switch],
                "updated_at": [switch, switch],
            }
        )
        rules = pd.DataFrame(
            [
                {
                    **dict(r.__dict__.items()),
                    "id": i + 1,
                    "is_current": True,
                    "created_at": before,
                    "updated_at": before,
                }
                for i, r in enumerate(c.rules)
            ]
        )
        channel = pd.DataFrame(
            {
                "id": [1],
                "title": ["news channels"],
                "is_default": [True],
                "created_at": [before],
                "updated_at": [before],
            }
        )
        items = pd.DataFrame(
            {
                "id": np.arange(1, 6),
                "channel_source_id": 1,
                "position": np.arange(5),
                "youtube_channel_id": [f"UCnews{i}" for i in range(5)],
                "created_at": before,
                "updated_at": before,
            }
        )
        speed = pd.DataFrame(
            {"id": [1], "speed_hours": [24.0], "is_current": [True], "created_at": [before], "updated_at": [before]}
        )
        unusable = pd.DataFrame(
            {"id": [1], "youtube_channel_id": ["UCgone"], "created_at": [before], "updated_at": [before]}
        )
        videos = pd.DataFrame(
            {
                "id": np.arange(1, self.n_videos + 1),
                "title": [f"Video {i}" for i in range(1, self.n_videos + 1)],
                "url": pd.Series(self.watch_urls).str.slice(len(YOUTUBE)),
                "youtube_id": self.youtube_ids,
                "metadata_available": True,
                "created_at": before,
                "updated_at": before,
            }
        )
        return {
            "admin": admin,
            "channel_source": channel,
            "channel_source_item": items,
            "channel_rotation_speed_setting": speed,
            "unusable_channel": unusable,
            "experiment_config": configs,
            "transition_setting": rules,
            "video": videos,
        }

    def closing_tables(self) -> dict[str, pd.DataFrame]:
        """Video metadata (some shown videos left without) and vouchers, once every chunk is built."""
        c = self.config
        shown = np.array(sorted(self.shown_video_ids))
        missing = (
            set(self.rng.choice(shown, size=min(c.missing_metadata, shown.size), replace=False).tolist())
            if shown.size
            else set()
        )
        self.videos_without_metadata = sorted(int(v) for v in missing)
        keep = np.array([v for v in range(1, self.n_videos + 1) if v not in missing])
        before = _ms_to_timestamp(np.array([self.start_ms - 86_400_000]))[0]
        published = _ms_to_timestamp(self.start_ms - self.rng.integers(1, 2_000, keep.size) * 86_400_000)
        categories = np.array(["News & Politics", "Music", "Gaming", "Education", "Comedy"])
        cat = self.rng.integers(0, categories.size, keep.size)
        metadata = pd.DataFrame(
            {
                "id": np.arange(1, keep.size + 1),
                "youtube_id": self.youtube_ids[keep - 1],
                "youtube_category_id": (cat + 20).astype(str),
                "category_title": categories[cat],
                "youtube_channel_id": [f"UC{v % 997:04d}" for v in keep],
                "video_title": [f"Video {v}" for v in keep],
                "video_description": None,
                "published_at": published,
                "view_count": self.rng.integers(100, 10_000_000, keep.size),
                "like_count": self.rng.integers(0, 100_000, keep.size),
                "comment_count": self.rng.integers(0, 5_000, keep.size),
                "tags": [["tag" + str(v % 7), "tag" + str(v % 11)] for v in keep],
                "topic_categories": [["https://en.wikipedia.org/wiki/Society"]] * keep.size,
                "created_at": before,
                "updated_at": before,
            }
        )
        activations = sorted(self.activations)
        delivered = [p for p in activations if self.rng.random() < 0.8]
        n_vouchers = len(delivered) + c.unassigned_vouchers
        vouchers = pd.DataFrame(
            {
                "id": np.arange(1, n_vouchers + 1),
                "participant_id": pd.array([p for p, _ in delivered] + [None] * c.unassigned_vouchers, dtype="Int64"),
                "voucher_code": [
                    f"GIFT-{uuid.UUID(bytes=self.rng.bytes(16)).hex[:12].upper()}" for _ in range(n_vouchers)
                ],
                "delivered_at": pd.Series(
                    list(_ms_to_timestamp(np.array([t for _, t in delivered], dtype="int64")))
                    + [pd.NaT] * c.unassigned_vouchers,
                    dtype="datetime64[ns]",
                ),
                "created_at": before,
                "updated_at": before,
            }
        )
        return {"video_metadata": metadata, "voucher": vouchers}

    def next_session_id(self) -> int:
        return self.session_counter + 1

    def reserve_session_ids(self, n: int) -> None:
        self.session_counter += n

    # ------------------------------------------------------------------ one chunk of participants
    def chunk(self, first: int, stop: int) -> dict[str, pd.DataFrame]:
        """Participants ``first``..``stop-1``: their sessions, events, watch times and lists (ids assigned)."""
        pages = self._pages(first, stop)
        events = self._event_skeleton(pages)
        transitions = self._transitions(first, stop, events)
        events = self._add_lifecycle_events(events, transitions)
        events = self._assign_phase_arm_config(events, transitions, first)
        events, items = self._lists_and_clicks(events, pages, first)
        return self._finish(first, stop, pages, events, items, transitions)

    def _pages(self, first: int, stop: int) -> pd.DataFrame:
        rng, size = self.rng, self.size
        n = stop - first
        propensity = np.clip(size.active_day_probability * rng.uniform(0.5, 1.4, n), 0.05, 1.0)
        active = rng.random((n, size.days)) < propensity[:, None]
        participant, day = np.nonzero(active)
        per_day = 1 + rng.poisson(max(size.sessions_per_active_day - 1, 0), participant.size)
        s_participant = np.repeat(participant, per_day)
        s_day = np.repeat(day, per_day)
        s_start = self.start_ms + s_day * 86_400_000 + rng.integers(7 * 3600 * MS, 22 * 3600 * MS, s_participant.size)
        order = np.lexsort((s_start, s_participant))
        s_participant, s_day, s_start = s_participant[order], s_day[order], s_start[order]
        n_pages = 1 + rng.poisson(max(size.pages_per_session - 1, 0), s_participant.size)
        session = np.repeat(np.arange(s_participant.size), n_pages)
        position = np.arange(session.size) - np.repeat(np.cumsum(n_pages) - n_pages, n_pages)
        last = position == np.repeat(n_pages - 1, n_pages)
        first_kind = rng.choice([HOME, WATCH, SEARCH], session.size, p=[0.4, 0.45, 0.15])
        later_kind = rng.choice([HOME, WATCH, SEARCH, CHANNEL], session.size, p=[0.1, 0.65, 0.15, 0.1])
        kind = np.where(position == 0, first_kind, later_kind)
        click_flag = ~last & (
            ((kind == WATCH) & (rng.random(session.size) < self.config.click_probability))
            | ((kind == HOME) & (rng.random(session.size) < self.config.home_click_probability))
        )
        kind[1:] = np.where(click_flag[:-1] & (position[1:] > 0), WATCH, kind[1:])
        base = {HOME: 25, WATCH: 200, SEARCH: 30, CHANNEL: 60}
        mean = np.choose(kind, [base[HOME], base[WATCH], base[SEARCH], base[CHANNEL]])
        active_ms = (rng.exponential(1.0, session.size) * mean * MS).astype("int64") + 4 * MS
        idle_ms = np.where(rng.random(session.size) < 0.04, rng.integers(1900, 5000, session.size) * MS, 0)
        step = active_ms + idle_ms + rng.integers(300, 1500, session.size)
        cumulative = np.cumsum(step) - step
        offset = cumulative - np.repeat(cumulative[np.cumsum(n_pages) - n_pages], n_pages)
        t = np.repeat(s_start, n_pages) + offset
        frame = pd.DataFrame(
            {
                "p": first + s_participant[session],
                "s": session,
                "position": position,
                "last": last,
                "kind": kind,
                "click": click_flag,
                "t": t,
                "active_ms": active_ms,
                "watched": np.where(
                    kind == WATCH, np.round(active_ms / MS * rng.uniform(0.3, 1.0, session.size), 3), np.nan
                ),
            }
        )
        frame.attrs["session_participant"] = first + s_participant
        return frame

    def _event_skeleton(self, pages: pd.DataFrame) -> pd.DataFrame:
        """Events of every page before phases are known: PV, RS/HOME_SHOWN, clicks (kind decided later), WATCH_TIME."""
        rng = self.rng
        n = len(pages)
        page = np.arange(n)
        first_session_of_participant = ~pd.Series(pages["p"].to_numpy()).duplicated().to_numpy() & (
            pages["position"].to_numpy() == 0
        )
        lost_first_view = first_session_of_participant & (
            pages["t"].to_numpy() < FIRST_PAGE_VIEW_FIX.value // 1_000_000
        )
        t, kind = pages["t"].to_numpy(), pages["kind"].to_numpy()
        end = t + pages["active_ms"].to_numpy()
        shown_at = t + rng.integers(-1500, 1500, n)
        shown_at = np.where(kind == HOME, t + rng.integers(100, 1000, n), shown_at)
        parts = [
            pd.DataFrame({"page": page[~lost_first_view], "type": "PAGE_VIEW", "t": t[~lost_first_view]}),
            pd.DataFrame({"page": page[kind == WATCH], "type": "RECOMMENDATIONS_SHOWN", "t": shown_at[kind == WATCH]}),
            pd.DataFrame({"page": page[kind == HOME], "type": "HOME_SHOWN", "t": shown_at[kind == HOME]}),
            pd.DataFrame({"page": page[kind == WATCH], "type": "WATCH_TIME", "t": end[kind == WATCH] - 200}),
        ]
        clicked = pages["click"].to_numpy()
        click_at = np.maximum(t, shown_at) + ((end - 300 - np.maximum(t, shown_at)) * rng.uniform(0.2, 0.9, n)).astype(
            "int64"
        )
        parts.append(
            pd.DataFrame(
                {
                    "page": page[clicked],
                    "type": np.where(kind[clicked] == WATCH, "SIDEBAR_CLICK", "HOME_CLICK"),
                    "t": click_at[clicked],
                }
            )
        )
        events = pd.concat(parts, ignore_index=True)
        events["p"] = pages["p"].to_numpy()[events["page"]]
        events["s"] = pages["s"].to_numpy()[events["page"]]
        events["url"] = np.where(kind[events["page"]] == WATCH, "/watch", "/")
        events["seconds"] = np.where(
            events["type"] == "WATCH_TIME", pages["watched"].to_numpy()[events["page"]], np.nan
        )
        return events.sort_values(["p", "t"], kind="stable", ignore_index=True)

    def _transitions(self, first: int, stop: int, events: pd.DataFrame) -> pd.DataFrame:
        """Transition rows (ms, from, to, reason, figures) per participant by the server's daily rule."""
        c = self.config
        figures = daily_rules.daily_figures(
            events.assign(type=events["type"].replace({"SIDEBAR_CLICK": "PERSONALIZED_CLICKED"})), self.start_ms
        )
        rules = {r.from_phase: r for r in c.rules}
        rows = []
        rng = self.rng
        forced = rng.random(stop - first) < c.forced_share
        reset = rng.random(stop - first) < c.reset_share
        created = self._created_ms(first, stop, events)
        by_participant = {p: f for p, f in figures.groupby("p")}  # noqa: C416 - dict(GroupBy) calls its .keys, a string
        event_times = {p: g["t"].to_numpy() for p, g in events.groupby("p")}
        for i, p in enumerate(range(first, stop)):
            if p not in by_participant:
                continue
            days = by_participant[p].sort_values("day")
            times = event_times[p]
            day_of = (times - self.start_ms) // 86_400_000
            phase, entry_day = 0, (created[i] - self.start_ms) // 86_400_000
            matched, sums, pending, matched_days = 0, np.zeros(len(daily_rules.FIGURES)), False, []
            for row_number, (day, values) in enumerate(
                zip(days["day"].to_numpy(), days[list(daily_rules.FIGURES)].to_numpy())
            ):
                on_day = times[day_of == day]
                if pending:
                    rows.append(
                        (p, int(on_day.min()) - 1, phase, phase + 1, "AUTOMATIC", *sums, matched, tuple(matched_days))
                    )
                    phase, entry_day, matched, sums, pending, matched_days = (
                        phase + 1,
                        day,
                        0,
                        np.zeros_like(sums),
                        False,
                        [],
                    )
                if forced[i] and phase == 0 and row_number == 1 and on_day.size >= 2:
                    rows.append((p, _midpoint(on_day, 0), 0, 1, "FORCED", *np.zeros_like(sums), 0, ()))
                    phase, entry_day, matched, sums, matched_days = 1, day, 0, np.zeros_like(sums), []
                if (
                    phase in rules
                    and day >= entry_day
                    and daily_rules.day_matches(values, rules[phase].minimums(), rules[phase].operator)
                ):
                    matched, sums = matched + 1, sums + values
                    matched_days.append(int(day))
                    pending = matched >= rules[phase].min_days
            if reset[i] and phase > 0:
                last_day = times[day_of == days["day"].max()]
                if last_day.size >= 2:
                    rows.append(
                        (
                            p,
                            _midpoint(last_day, last_day.size - 2),
                            phase,
                            0,
                            "FORCED",
                            *np.zeros(len(daily_rules.FIGURES)),
                            0,
                            (),
                        )
                    )
        columns = ["p", "t", "from_phase", "to_phase", "reason", *daily_rules.FIGURES, "num_days", "matched_days"]
        frame = pd.DataFrame(rows, columns=columns).astype(
            {
                "p": "int64",
                "t": "int64",
                "from_phase": "int64",
                "to_phase": "int64",
                "num_days": "int64",
                **dict.fromkeys(daily_rules.FIGURES, "float64"),
            }
        )
        frame.attrs["created_ms"] = created
        return frame

    def _created_ms(self, first: int, stop: int, events: pd.DataFrame) -> np.ndarray:
        """Participant creation: up to two days before their first event (the study start when idle)."""
        first_event = events.groupby("p")["t"].min().reindex(range(first, stop)).to_numpy()
        lead = self.rng.integers(60 * MS, 2 * 86_400_000, stop - first)
        return np.where(np.isnan(first_event), self.start_ms, np.nan_to_num(first_event) - lead).astype("int64")

    def _add_lifecycle_events(self, events: pd.DataFrame, transitions: pd.DataFrame) -> pd.DataFrame:
        """EXTENSION_INSTALLED, EXTENSION_ACTIVATED (≥ 3 pages and ≥ 5 min), PHASE_TRANSITION and SESSION_END events."""
        views = events[events["type"] == "PAGE_VIEW"].copy()
        views["gap"] = daily_rules.page_view_gaps(views["s"].to_numpy(), views["t"].to_numpy())
        views["pages"] = views.groupby("p").cumcount() + 1
        views["time"] = views.groupby("p")["gap"].cumsum()
        reached = views[(views["pages"] >= 3) & (views["time"] >= 300)].groupby("p").head(1)
        self.activations.extend(zip(reached["p"].astype(int) + 1, reached["t"].astype("int64") + 1))
        first = events.groupby("p").head(1)
        session_end = events.groupby("s").tail(1)
        session_end = session_end[self.rng.random(len(session_end)) < 0.5]
        auto = transitions[transitions["reason"] == "AUTOMATIC"]
        first_at = events.drop_duplicates(["p", "t"]).set_index(["p", "t"])["s"].to_dict()
        auto_session = [first_at[(p, t + 1)] for p, t in zip(auto["p"], auto["t"])]
        extra = [
            pd.DataFrame(
                {
                    "page": -1,
                    "type": "EXTENSION_INSTALLED",
                    "t": first["t"].to_numpy() - 2000,
                    "p": first["p"].to_numpy(),
                    "s": first["s"].to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "page": reached["page"].to_numpy(),
                    "type": "EXTENSION_ACTIVATED",
                    "t": reached["t"].to_numpy() + 1,
                    "p": reached["p"].to_numpy(),
                    "s": reached["s"].to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "page": -1,
                    "type": "PHASE_TRANSITION",
                    "t": auto["t"].to_numpy(),
                    "p": auto["p"].to_numpy(),
                    "s": np.array(auto_session, dtype="int64"),
                }
            ),
            pd.DataFrame(
                {
                    "page": -1,
                    "type": "SESSION_END",
                    "t": session_end["t"].to_numpy() + 500,
                    "p": session_end["p"].to_numpy(),
                    "s": session_end["s"].to_numpy(),
                }
            ),
        ]
        return pd.concat([events, *extra], ignore_index=True).sort_values(["p", "t"], kind="stable", ignore_index=True)

    def _assign_phase_arm_config(self, events: pd.DataFrame, transitions: pd.DataFrame, first: int) -> pd.DataFrame:
        """Phase at each event's time (latest transition at or before it), the participant's arm and the active config."""
        events = events.sort_values("t", kind="stable", ignore_index=True)
        marks = transitions[["p", "t", "to_phase"]].sort_values("t", kind="stable")
        merged = pd.merge_asof(events[["t", "p"]].reset_index(), marks, on="t", by="p", direction="backward")
        events["phase"] = merged.sort_values("index")["to_phase"].fillna(0).astype("int16").to_numpy()
        events["arm"] = self.arms[events["p"].to_numpy()]
        events["experiment_config_id"] = np.where(events["t"].to_numpy() >= self.config_switch_ms, 2, 1)
        return events

    def _lists_and_clicks(
        self, events: pd.DataFrame, pages: pd.DataFrame, first: int
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Recommendation and home lists, click kinds and the clicked videos that the next page shows."""
        rng, size, c = self.rng, self.size, self.config
        n_pages = len(pages)
        page_video = np.full(n_pages, -1, dtype="int64")
        watch = pages["kind"].to_numpy() == WATCH
        p_of_page = pages["p"].to_numpy()
        tail_start = self.n_popular + self.n_news
        from_pool = tail_start + (self.pool_offset[p_of_page] + rng.integers(0, 60, n_pages)) % self.n_tail
        popular = rng.integers(0, self.n_popular, n_pages)
        page_video[watch] = np.where(rng.random(n_pages) < 0.7, from_pool, popular)[watch]
        items, click_video = [], {}
        # sidebar recommendations (3 lists per RECOMMENDATIONS_SHOWN)
        shown = events[events["type"] == "RECOMMENDATIONS_SHOWN"]
        L = size.list_length
        if len(shown):
            sp = shown["p"].to_numpy()
            nonpersonal = _distinct_draws(rng, len(shown), self.n_popular, L)
            personal = (
                tail_start + (self.pool_offset[sp][:, None] + _distinct_draws(rng, len(shown), 60, L)) % self.n_tail
            )
            mixed = rng.random((len(shown), L)) < 0.2
            personal = np.where(mixed, nonpersonal, personal)
            probability = np.where(
                shown["experiment_config_id"].to_numpy() == 2,
                c.non_personalized_probabilities[1],
                c.non_personalized_probabilities[0],
            )
            intervened = (shown["arm"].to_numpy() == "treatment") & (shown["phase"].to_numpy() == 1)
            swap = intervened[:, None] & ~mixed & (rng.random((len(shown), L)) < probability[:, None])
            shown_list = np.where(swap, nonpersonal, personal)
            shown_type = np.where(mixed, 2, np.where(swap, 1, 0)).astype("int8")
            row = np.arange(len(shown))
            for list_type, videos, types in (
                (1, nonpersonal, np.full((len(shown), L), 1, dtype="int8")),
                (0, personal, np.zeros((len(shown), L), dtype="int8")),
                (2, shown_list, shown_type),
            ):
                items.append(
                    pd.DataFrame(
                        {
                            "row": np.repeat(row, L),
                            "is_rs": True,
                            "list_type": np.int8(list_type),
                            "video": videos.ravel(),
                            "video_type": types.ravel(),
                            "position": np.tile(np.arange(L), len(shown)),
                        }
                    )
                )
            clicked_position = np.minimum(rng.geometric(0.3, len(shown)) - 1, L - 1)
            rs_page = shown["page"].to_numpy()
            for page, video, kind in zip(rs_page, shown_list[row, clicked_position], shown_type[row, clicked_position]):
                click_video[("RS", int(page))] = (int(video), f"{VIDEO_TYPES[kind]}_CLICKED")
        # home page lists (HOME_DEFAULT, HOME_REPLACEMENT_SOURCE, HOME_SHOWN per HOME_SHOWN event)
        home = events[events["type"] == "HOME_SHOWN"]
        H = size.home_list_length
        if len(home):
            hp = home["p"].to_numpy()
            default = (
                tail_start + (self.pool_offset[hp][:, None] + _distinct_draws(rng, len(home), 60, H)) % self.n_tail
            )
            replacement = self.n_popular + _distinct_draws(rng, len(home), self.n_news, H)
            injected = ((home["arm"].to_numpy() == "treatment") & (home["phase"].to_numpy() == 1))[:, None] & (
                rng.random((len(home), H)) < c.home_injection_probability
            )
            home_shown = np.where(injected, replacement, default)
            row = np.arange(len(home))
            for list_type, videos, types in (
                (3, default, np.zeros((len(home), H), dtype="int8")),
                (4, replacement, np.ones((len(home), H), dtype="int8")),
                (5, home_shown, injected.astype("int8")),
            ):
                items.append(
                    pd.DataFrame(
                        {
                            "row": np.repeat(row, H),
                            "is_rs": False,
                            "list_type": np.int8(list_type),
                            "video": videos.ravel(),
                            "video_type": types.ravel(),
                            "position": np.tile(np.arange(H), len(home)),
                        }
                    )
                )
            for page, inj, vids in zip(home["page"].to_numpy(), injected, home_shown):
                if inj.any():
                    click_video[("HOME", int(page))] = (int(vids[np.flatnonzero(inj)[0]]), "HOME_INJECTED_TILE_CLICKED")
        # clicks: kind from the clicked item; the next page shows the clicked video
        kinds = events["type"].to_numpy().astype(object)
        keep = np.ones(len(events), dtype=bool)
        click_url = np.full(len(events), None, dtype=object)
        event_page, page_session = events["page"].to_numpy(), pages["s"].to_numpy()
        for index in np.flatnonzero(np.isin(kinds, ["SIDEBAR_CLICK", "HOME_CLICK"])):
            page = int(event_page[index])
            found = click_video.get(("RS" if kinds[index] == "SIDEBAR_CLICK" else "HOME", page))
            if found is None:
                keep[index] = False  # a click on a home tile that was not injected is not tracked
                continue
            video, kinds[index] = found
            click_url[index] = self.watch_urls[video]
            if page + 1 < n_pages and page_session[page + 1] == page_session[page]:
                page_video[page + 1] = video
        events = events.assign(type=kinds, click_url=click_url)[keep].reset_index(drop=True)
        # page urls and referrers
        search = np.char.add(YOUTUBE + "/results?search_query=topic", (p_of_page % 40).astype(str)).astype(object)
        channel = np.char.add(YOUTUBE + "/@channel", (p_of_page % 25).astype(str)).astype(object)
        url = np.select(
            [pages["kind"].to_numpy() == HOME, watch, pages["kind"].to_numpy() == SEARCH],
            [YOUTUBE + "/", self.watch_urls[np.maximum(page_video, 0)], search],
            channel,
        ).astype(object)
        previous = np.concatenate([[None], url[:-1]]).astype(object)
        previous[pages["position"].to_numpy() == 0] = None
        page_index = events["page"].to_numpy()
        has_page = page_index >= 0
        event_url = np.where(has_page, url[np.maximum(page_index, 0)], YOUTUBE + "/")
        context = np.where(has_page, previous[np.maximum(page_index, 0)], None)
        is_click = np.char.endswith(events["type"].to_numpy().astype(str), "CLICKED")
        events["url"] = np.where(is_click, events["click_url"], event_url)
        events["context"] = np.where(is_click, event_url, context)
        events["seconds"] = np.where(
            events["type"] == "WATCH_TIME", pages["watched"].to_numpy()[np.maximum(page_index, 0)], np.nan
        )
        item_frame = (
            pd.concat(items, ignore_index=True)
            if items
            else pd.DataFrame(columns=["row", "is_rs", "list_type", "video", "video_type", "position"])
        )
        item_frame.attrs["rs_pages"] = shown["page"].to_numpy() if len(shown) else np.array([], dtype="int64")
        item_frame.attrs["home_pages"] = home["page"].to_numpy() if len(home) else np.array([], dtype="int64")
        return events.drop(columns=["click_url"]), item_frame

    def _finish(
        self,
        first: int,
        stop: int,
        pages: pd.DataFrame,
        events: pd.DataFrame,
        items: pd.DataFrame,
        transitions: pd.DataFrame,
    ) -> dict[str, pd.DataFrame]:
        """Assign ids and build the rows of participant, session, event, watch_time, video_list_item."""
        rng = self.rng
        session_participant = pages.attrs["session_participant"]
        session_first = events.groupby("s")["t"].min()
        n_sessions = session_participant.size
        session_start = session_first.reindex(range(n_sessions)).to_numpy()
        present = ~np.isnan(session_start)
        order = np.argsort(np.where(present, session_start, np.inf), kind="stable")
        session_id = np.empty(n_sessions, dtype="int64")
        session_id[order] = self.session_counter + 1 + np.arange(n_sessions)
        self.session_counter += n_sessions
        session_uuid = _uuids(rng, n_sessions)
        created = _ms_to_timestamp(np.nan_to_num(session_start).astype("int64") - rng.integers(50, 500, n_sessions))
        sessions = pd.DataFrame(
            {
                "id": session_id,
                "uuid": session_uuid,
                "participant_code": self.codes[session_participant],
                "created_at": created,
                "updated_at": created,
            }
        )[present].sort_values("id", ignore_index=True)
        events = events.sort_values(["t", "s"], kind="stable", ignore_index=True)
        event_id = self.event_counter + 1 + np.arange(len(events))
        self.event_counter += len(events)
        at = _ms_to_timestamp(events["t"].to_numpy())
        event_rows = pd.DataFrame(
            {
                "id": event_id,
                "session_uuid": session_uuid[events["s"].to_numpy()],
                "experiment_config_id": events["experiment_config_id"].to_numpy(),
                "arm": events["arm"].to_numpy(),
                "type": events["type"].to_numpy(),
                "url": events["url"].to_numpy(),
                "local_uuid": _uuids(rng, len(events)),
                "context": events["context"].to_numpy(),
                "extension_version": "2.3.1",
                "phase": events["phase"].to_numpy().astype("int16"),
                "tab_active": True,
                "local_zero_hour": pd.NaT,
                "extra": None,
                "created_at": at,
                "updated_at": at,
            }
        )
        event_rows["local_zero_hour"] = event_rows["local_zero_hour"].astype("datetime64[ns]")
        watch = events["type"].to_numpy() == "WATCH_TIME"
        watch_rows = pd.DataFrame({"event_id": event_id[watch], "seconds_watched": events["seconds"].to_numpy()[watch]})
        # list items: map (source, row) back to the event id
        rs_event = pd.Series(
            event_id[events["type"].to_numpy() == "RECOMMENDATIONS_SHOWN"],
            index=events.loc[events["type"] == "RECOMMENDATIONS_SHOWN", "page"].to_numpy(),
        )
        home_event = pd.Series(
            event_id[events["type"].to_numpy() == "HOME_SHOWN"],
            index=events.loc[events["type"] == "HOME_SHOWN", "page"].to_numpy(),
        )
        is_rs = items["is_rs"].to_numpy(dtype=bool)
        item_page = np.where(
            is_rs,
            items.attrs["rs_pages"][np.where(is_rs, items["row"], 0)] if len(items.attrs["rs_pages"]) else -1,
            items.attrs["home_pages"][np.where(~is_rs, items["row"], 0)] if len(items.attrs["home_pages"]) else -1,
        )
        item_event = np.where(is_rs, rs_event.reindex(item_page).to_numpy(), home_event.reindex(item_page).to_numpy())
        item_time = event_rows.set_index("id")["created_at"].reindex(item_event).to_numpy()
        item_rows = pd.DataFrame(
            {
                "id": self.item_counter + 1 + np.arange(len(items)),
                "event_id": item_event.astype("int64"),
                "video_id": items["video"].to_numpy().astype("int64") + 1,
                "list_type": pd.Categorical.from_codes(items["list_type"].to_numpy(), LIST_TYPES),
                "video_type": pd.Categorical.from_codes(items["video_type"].to_numpy(), VIDEO_TYPES),
                "position": items["position"].to_numpy().astype("int32"),
                "created_at": item_time,
                "updated_at": item_time,
            }
        )
        self.item_counter += len(items)
        self.shown_video_ids.update(np.unique(item_rows["video_id"]).tolist())
        created_ms = transitions.attrs["created_ms"]
        participants = pd.DataFrame(
            {
                "id": np.arange(first, stop) + 1,
                "code": self.codes[first:stop],
                "arm": self.arms[first:stop],
                "created_at": _ms_to_timestamp(created_ms),
                "updated_at": _ms_to_timestamp(created_ms),
            }
        )
        return {
            "participant": participants,
            "session": sessions,
            "event": event_rows,
            "watch_time": watch_rows,
            "video_list_item": item_rows,
            "_transitions": transitions,
            "_phase_transition_events": event_rows[event_rows["type"] == "PHASE_TRANSITION"],
        }

    def derived_tables(self, chunk: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """daily_activity_time, transition_event and the participant columns the server derives, from the chunk's final rows."""
        participants, events, sessions = chunk["participant"], chunk["event"], chunk["session"]
        owner = sessions.set_index("uuid")["participant_code"]
        code_to_id = participants.set_index("code")["id"]
        ev = pd.DataFrame(
            {
                "id": events["id"],
                "p": code_to_id.reindex(owner.reindex(events["session_uuid"]).to_numpy()).to_numpy(),
                "s": events["session_uuid"],
                "type": events["type"],
                "url": events["url"],
                "t": events["created_at"].to_numpy().astype("datetime64[ms]").astype("int64"),
            }
        )
        ev = ev.merge(
            chunk["watch_time"].rename(columns={"event_id": "id", "seconds_watched": "seconds"}), on="id", how="left"
        )
        figures = daily_rules.daily_figures(ev, 0)
        day_rows = pd.DataFrame(
            {
                "id": self.day_counter + 1 + np.arange(len(figures)),
                "participant_id": figures["p"].astype("int64"),
                **{column: figures[column].to_numpy() for column in daily_rules.FIGURES},
                "created_at": pd.to_datetime(figures["day"].to_numpy(), unit="D").date,
                "updated_at": pd.to_datetime(figures["day"].to_numpy() + 1, unit="D"),
            }
        )
        for column in ("pages_viewed", "video_pages_viewed", "sidebar_recommendations_clicked"):
            day_rows[column] = day_rows[column].astype("int32")
        self.day_counter += len(day_rows)
        transitions = chunk.pop("_transitions")
        marks = chunk.pop("_phase_transition_events")
        marks = marks.assign(
            p=code_to_id.reindex(owner.reindex(marks["session_uuid"]).to_numpy()).to_numpy() - 1,
            t=marks["created_at"].to_numpy().astype("datetime64[ms]").astype("int64"),
        )
        transition_event_ids = (
            transitions[["p", "t"]].merge(marks[["p", "t", "id"]], on=["p", "t"], how="left")["id"].to_numpy()
        )
        rules = {r.from_phase: i + 1 for i, r in enumerate(self.config.rules)}
        # the server sums the stored figures of the matching days, as they are once every event is in
        first_day = self.start_ms // daily_rules.DAY_MS
        matched = transitions[["p", "matched_days"]].reset_index().explode("matched_days").dropna()
        matched = matched.assign(p=matched["p"] + 1, day=first_day + matched["matched_days"].astype("int64"))
        sums = matched.merge(figures, on=["p", "day"]).groupby("index")[list(daily_rules.FIGURES)].sum()
        transitions.loc[sums.index, list(daily_rules.FIGURES)] = sums.to_numpy(dtype="float64")
        at = _ms_to_timestamp(transitions["t"].to_numpy())
        automatic = transitions["reason"].to_numpy() == "AUTOMATIC"
        transition_rows = pd.DataFrame(
            {
                "id": self.transition_counter + 1 + np.arange(len(transitions)),
                "event_id": pd.array(np.where(automatic, transition_event_ids, np.nan), dtype="Int64"),
                "transition_setting_id": pd.array(
                    [rules[f] if a else None for f, a in zip(transitions["from_phase"], automatic)], dtype="Int64"
                ),
                "participant_id": transitions["p"].to_numpy() + 1,
                "reason": transitions["reason"].to_numpy(),
                "from_phase": transitions["from_phase"].astype("int16"),
                "to_phase": transitions["to_phase"].astype("int16"),
                **{column: transitions[column].to_numpy() for column in daily_rules.FIGURES},
                "num_days": transitions["num_days"].astype("int32"),
                "created_at": at,
                "updated_at": at,
            }
        )
        for column in ("pages_viewed", "video_pages_viewed", "sidebar_recommendations_clicked"):
            transition_rows[column] = transition_rows[column].round().astype("int32")
        self.transition_counter += len(transition_rows)
        final_phase = transition_rows.groupby("participant_id")["to_phase"].last()
        participants = participants.copy()
        participants["phase"] = final_phase.reindex(participants["id"]).fillna(0).astype("int16").to_numpy()
        activated = dict(self.activations)
        participants["extension_installed"] = participants["code"].isin(owner.to_numpy())
        participants["extension_activated_at"] = _ms_to_timestamp(
            np.array([activated.get(i, -1) for i in participants["id"]])
        ).where(participants["id"].isin(activated).to_numpy())
        participants["is_paid"] = participants["id"] % 3 == 0
        participants["channel_source_id"] = pd.array(
            np.where(participants["arm"] == "treatment", 1, np.nan), dtype="Int64"
        )
        participants["pos_in_channel_source"] = 0
        participants["pos_in_channel_source_last_updated_at"] = participants["created_at"]
        return {"participant": participants, "daily_activity_time": day_rows, "transition_event": transition_rows}


def _distinct_draws(rng: np.random.Generator, rows: int, population: int, k: int) -> np.ndarray:
    """``rows`` × ``k`` indices below ``population``, distinct within each row, in random order."""
    keys = rng.random((rows, population))
    chosen = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < population else np.argsort(keys, axis=1)
    order = np.argsort(np.take_along_axis(keys, chosen, axis=1), axis=1)
    return np.take_along_axis(chosen, order, axis=1)


def _uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUID strings drawn from ``rng`` (so they follow the seed)."""
    digits = rng.bytes(16 * n).hex()
    return np.array(
        [
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
            for h in (digits[i : i + 32] for i in range(0, 32 * n, 32))
        ],
        dtype=object,
    )


def _midpoint(times: np.ndarray, index: int) -> int:
    """A millisecond strictly between the ``index``-th and next of the sorted ``times`` (or just after the first)."""
    ordered = np.sort(times)
    low, high = int(ordered[index]), int(ordered[index + 1])
    return (low + high) // 2 if high - low >= 2 else low + 1
