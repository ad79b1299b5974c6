"""The YouTube personalization study (seed 002) on DuckDB and PostgreSQL: the generator fills the
production schema, and every analysis is checked against an independent pandas computation on
the raw tables; the sanity checks find exactly the planted faults."""

from __future__ import annotations

from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

import workbench as wb
from workbench.errors import WorkbenchError
from workbench.studies import ytdpnl
from workbench.studies.ytdpnl.generator import StudySize

SCHEMA = "ytdpnl"
TEST_SIZE = StudySize(
    participants=24,
    days=16,
    active_day_probability=0.6,
    sessions_per_active_day=1.6,
    pages_per_session=5.0,
    list_length=5,
    home_list_length=4,
)
TABLES = (
    "participant",
    "session",
    "event",
    "watch_time",
    "video",
    "video_list_item",
    "video_metadata",
    "daily_activity_time",
    "transition_event",
    "transition_setting",
    "experiment_config",
    "voucher",
)
CLICKS = ("PERSONALIZED_CLICKED", "NON_PERSONALIZED_CLICKED", "MIXED_CLICKED")


class Study:
    """A generated study on one backend: read-only connection, raw tables and planted faults."""

    def __init__(self, url: str, faults: dict[str, list[int]]):
        self.db = wb.connect(url)
        self.faults = faults
        self.raw = {}
        for table in TABLES:
            frame = self.db.sql(f"SELECT * FROM {SCHEMA}.{table}")
            for column in frame.columns:
                if (
                    frame[column].dtype == object
                    and len(frame)
                    and not isinstance(
                        frame[column].dropna().iloc[0] if frame[column].notna().any() else "", (str, list, dict)
                    )
                ):
                    frame[column] = frame[column].map(lambda v: None if v is None else str(v))
            for column in ("arm", "type", "list_type", "video_type", "reason", "operator", "session_uuid", "uuid"):
                if column in frame:
                    frame[column] = frame[column].map(lambda v: None if v is None else str(v))
            self.raw[table] = frame

    def events(self) -> pd.DataFrame:
        """Events with their participant id and code."""
        r = self.raw
        owner = r["session"][["uuid", "participant_code"]].merge(
            r["participant"][["id", "code"]], left_on="participant_code", right_on="code"
        )
        return r["event"].merge(
            owner.rename(columns={"id": "participant_id"})[["uuid", "participant_id", "code"]],
            left_on="session_uuid",
            right_on="uuid",
        )


@pytest.fixture(scope="module")
def study(backend) -> Study:
    url = backend.new_url("ytdpnl_study")
    writer = wb.connect(url, read_only=False)
    generated = ytdpnl.generate_study(writer, TEST_SIZE, seed=7, schema=SCHEMA, inject_faults=True, reset_share=0.25)
    writer.dispose()
    return Study(url, generated.faults.as_dict())


def epoch_ms(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values)
    out = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    return out.astype("Int64")


def test_generator_follows_the_seed_and_the_reference(study: Study):
    r, events = study.raw, study.events()
    assert set(r["participant"]["arm"]) == {"treatment", "control"}
    assert set(events["type"]) == {
        "PAGE_VIEW",
        "RECOMMENDATIONS_SHOWN",
        "PERSONALIZED_CLICKED",
        "NON_PERSONALIZED_CLICKED",
        "MIXED_CLICKED",
        "WATCH_TIME",
        "SESSION_END",
        "PHASE_TRANSITION",
        "EXTENSION_INSTALLED",
        "EXTENSION_ACTIVATED",
        "HOME_SHOWN",
        "HOME_INJECTED_TILE_CLICKED",
    }
    te = r["transition_event"]
    assert {"AUTOMATIC", "FORCED"} <= set(te["reason"]) and {1, 2} <= set(te["to_phase"])
    automatic = te["reason"] == "AUTOMATIC"
    assert te.loc[automatic, ["event_id", "transition_setting_id"]].notna().all().all()
    assert te.loc[~automatic, ["event_id", "transition_setting_id"]].isna().all().all()
    # PAGE_VIEW and RECOMMENDATIONS_SHOWN of a page come in either order within 1.5 s
    views = events[events["type"] == "PAGE_VIEW"][["session_uuid", "url", "created_at"]]
    shown = events[events["type"] == "RECOMMENDATIONS_SHOWN"][["session_uuid", "url", "created_at", "id"]]
    pairs = shown.merge(views, on=["session_uuid", "url"], suffixes=("", "_view"))
    gap = (pairs["created_at"] - pairs["created_at_view"]).dt.total_seconds()
    nearest = gap.abs().groupby(pairs["id"]).min()
    signed = gap[gap.abs() <= 1.5]
    assert (nearest <= 1.5).mean() > 0.99 and (signed < 0).any() and (signed > 0).any()
    # the first PAGE_VIEW of a first session before 2023-02-13 is missing
    first_sessions = r["session"].sort_values(["created_at", "id"]).groupby("participant_code").head(1)
    early = first_sessions[first_sessions["created_at"] < pd.Timestamp("2023-02-13")]
    first_events = events[
        events["session_uuid"].isin(early["uuid"])
        & events["type"].isin(["PAGE_VIEW", "RECOMMENDATIONS_SHOWN", "HOME_SHOWN"])
    ]
    page_opening = first_events.sort_values("created_at").groupby("session_uuid").head(1)
    assert len(early) > 0 and (page_opening["type"] != "PAGE_VIEW").all()
    # lists: NON_PERSONALIZED/PERSONALIZED lists carry their own type, SHOWN any of the three, home lists too
    items = r["video_list_item"]
    assert set(items.loc[items["list_type"] == "NON_PERSONALIZED", "video_type"]) == {"NON_PERSONALIZED"}
    assert set(items.loc[items["list_type"] == "PERSONALIZED", "video_type"]) == {"PERSONALIZED"}
    assert set(items.loc[items["list_type"] == "SHOWN", "video_type"]) == {"PERSONALIZED", "NON_PERSONALIZED", "MIXED"}
    assert {"HOME_DEFAULT", "HOME_REPLACEMENT_SOURCE", "HOME_SHOWN"} <= set(items["list_type"])
    # non-personalized items are only shown to treatment participants in phase 1
    shown_np = items[(items["list_type"] == "SHOWN") & (items["video_type"] == "NON_PERSONALIZED")].merge(
        events, left_on="event_id", right_on="id"
    )
    assert set(zip(shown_np["arm"], shown_np["phase"])) == {("treatment", 1)}
    vouchers = r["voucher"]
    assert (vouchers["participant_id"].isna() == vouchers["delivered_at"].isna()).all() and vouchers[
        "participant_id"
    ].notna().any()


def test_generator_is_seeded(backend, study: Study):
    url = backend.new_url("ytdpnl_again")
    writer = wb.connect(url, read_only=False)
    again = ytdpnl.generate_study(writer, TEST_SIZE, seed=7, schema=SCHEMA, inject_faults=True, reset_share=0.25)
    writer.dispose()
    assert again.faults.as_dict() == study.faults
    other = wb.connect(url)
    events = other.sql(f"SELECT id, CAST(type AS text) AS type, url, created_at FROM {SCHEMA}.event ORDER BY id")
    expected = study.raw["event"].sort_values("id")[["id", "type", "url", "created_at"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(events, expected, check_dtype=False)
    other.dispose()


def test_participants_report_matches_pandas(study: Study):
    r = study.raw
    got = ytdpnl.participants_report(study.db, schema=SCHEMA)
    te = r["transition_event"].sort_values("id")
    p = r["participant"].sort_values("id").reset_index(drop=True)
    expected = pd.DataFrame(
        {
            "identifier": p["code"],
            "phase": p["phase"].astype("int64"),
            "activated_browser_extension_at": epoch_ms(p["extension_activated_at"]),
        }
    )
    for phase, column in (
        (1, "entered_intervention_at"),
        (2, "entered_post_intervention_at"),
        (0, "was_reset_to_pre_intervention_at"),
    ):
        latest = te[te["to_phase"] == phase].groupby("participant_id")["updated_at"].last()
        expected[column] = epoch_ms(pd.Series(latest.reindex(p["id"]).to_numpy(), dtype="datetime64[us]"))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["was_reset_to_pre_intervention_at"].notna().any() and got["entered_post_intervention_at"].notna().any()
    subset = ytdpnl.participants_report(study.db, schema=SCHEMA, codes=list(p["code"][:3]))
    assert list(subset["identifier"]) == list(p["code"][:3])


@pytest.mark.parametrize("min_pages, window", [(10, (None, None)), (0, ("2023-02-10", "2023-02-15"))])
def test_participant_overview_matches_pandas(study: Study, min_pages: int, window):
    r = study.raw
    start, end = window
    sessions = r["session"].merge(
        r["participant"][["id", "code", "arm"]].rename(columns={"id": "participant_id"}),
        left_on="participant_code",
        right_on="code",
    )
    if start:
        sessions = sessions[
            (sessions["created_at"] >= pd.Timestamp(start))
            & (sessions["created_at"] < pd.Timestamp(end) + pd.Timedelta(days=1))
        ]
    events = r["event"][r["event"]["session_uuid"].isin(sessions["uuid"])].merge(
        sessions[["uuid", "participant_id"]], left_on="session_uuid", right_on="uuid"
    )
    grouped = sessions.groupby(["participant_id", "code", "arm"])
    expected = grouped.agg(
        n_sessions=("id", "nunique"), first_session=("created_at", "min"), last_session=("created_at", "max")
    ).reset_index()
    pages = events[events["type"] == "PAGE_VIEW"].groupby("participant_id")["url"].nunique()
    expected["n_pages_viewed"] = expected["participant_id"].map(pages).fillna(0).astype("int64")
    expected["pages_per_session"] = expected["n_pages_viewed"] / expected["n_sessions"]
    for column, kind in (
        ("n_non_personalized_clicked", "NON_PERSONALIZED_CLICKED"),
        ("n_personalized_clicked", "PERSONALIZED_CLICKED"),
        ("n_mixed_clicked", "MIXED_CLICKED"),
        ("n_home_injected_tile_clicked", "HOME_INJECTED_TILE_CLICKED"),
    ):
        counts = events[events["type"] == kind].groupby("participant_id")["id"].nunique()
        expected[column] = expected["participant_id"].map(counts).fillna(0).astype("int64")
    expected = (
        expected[expected["n_pages_viewed"] >= min_pages]
        .sort_values(["n_pages_viewed", "participant_id"], ascending=[False, True])
        .reset_index(drop=True)
    )
    got = ytdpnl.participant_overview(study.db, min_pages=min_pages, schema=SCHEMA, start=start, end=end)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False)


def test_participant_summary_and_session_events_match_pandas(study: Study):
    r, events = study.raw, study.events()
    code = r["participant"]["code"].iloc[3]
    got = ytdpnl.participant_summary(study.db, code, schema=SCHEMA)
    sessions = r["session"][r["session"]["participant_code"] == code]
    per_session = (
        events[events["code"] == code]
        .groupby("session_uuid")
        .agg(started_at=("created_at", "min"), ended_at=("created_at", "max"), event_count=("id", "count"))
    )
    expected = sessions.merge(per_session, left_on="uuid", right_index=True, how="left").sort_values(
        "id", ascending=False
    )
    assert list(got["session_id"]) == list(expected["id"]) and got.attrs["n_sessions"] == len(sessions)
    assert list(got["event_count"]) == list(expected["event_count"].fillna(0).astype(int))
    assert list(got["started_at"]) == list(expected["started_at"]) and list(got["ended_at"]) == list(
        expected["ended_at"]
    )

    clicked = events[events["type"] == "MIXED_CLICKED"]["session_uuid"].iloc[0]
    frame = ytdpnl.session_events(study.db, clicked, schema=SCHEMA)
    raw = r["event"][r["event"]["session_uuid"] == clicked].sort_values(["created_at", "id"], ascending=False)
    assert list(frame["id"]) == list(raw["id"]) and list(frame["type"]) == list(raw["type"])
    seconds = r["watch_time"].set_index("event_id")["seconds_watched"]
    watch = frame["type"] == "WATCH_TIME"
    np.testing.assert_allclose(frame.loc[watch, "seconds_watched"], frame.loc[watch, "id"].map(seconds))
    items = r["video_list_item"].merge(
        r["video"][["id", "youtube_id"]].rename(columns={"id": "video_id"}), on="video_id"
    )
    for row in frame[frame["type"] == "RECOMMENDATIONS_SHOWN"].itertuples():
        for list_type, column in (
            ("NON_PERSONALIZED", "non_personalized"),
            ("PERSONALIZED", "personalized"),
            ("SHOWN", "shown"),
        ):
            mine = items[(items["event_id"] == row.id) & (items["list_type"] == list_type)].sort_values("position")
            assert [v["youtube_id"] for v in getattr(row, column)] == list(mine["youtube_id"])
            assert [v["video_type"] for v in getattr(row, column)] == list(mine["video_type"])
    with pytest.raises(WorkbenchError, match="not a UUID"):
        ytdpnl.session_events(study.db, "x'; drop table event; --", schema=SCHEMA)


def test_the_seeds_latest_sessions_watch_times_and_recommendations(study: Study):
    r, events = study.raw, study.events()
    code = r["participant"]["code"].iloc[1]
    sessions = ytdpnl.latest_sessions(study.db, code, limit=5, schema=SCHEMA)
    mine = r["session"][r["session"]["participant_code"] == code].sort_values("id", ascending=False).head(5)
    assert list(sessions["session_id"]) == list(mine["id"]) and list(sessions["session_uuid"]) == list(mine["uuid"])
    watch = ytdpnl.latest_watch_times(study.db, code, limit=7, schema=SCHEMA)
    seconds = r["watch_time"].set_index("event_id")["seconds_watched"]
    expected = events[(events["code"] == code) & (events["type"] == "WATCH_TIME") & events["id"].isin(seconds.index)]
    expected = expected.sort_values(["created_at", "id"], ascending=False).head(7)
    assert list(watch["event_id"]) == list(expected["id"])
    np.testing.assert_allclose(watch["seconds_watched"], expected["id"].map(seconds))
    shown = ytdpnl.latest_recommendations(study.db, code, limit=50, schema=SCHEMA)
    order = {
        t: i
        for i, t in enumerate(
            ["PERSONALIZED", "NON_PERSONALIZED", "SHOWN", "HOME_DEFAULT", "HOME_REPLACEMENT_SOURCE", "HOME_SHOWN"]
        )
    }
    items = r["video_list_item"].merge(
        events[(events["code"] == code) & (events["type"] == "RECOMMENDATIONS_SHOWN")][["id", "created_at"]],
        left_on="event_id",
        right_on="id",
        suffixes=("", "_event"),
    )
    items = (
        items.assign(rank=items["list_type"].map(order))
        .sort_values(["created_at_event", "event_id", "rank", "position"], ascending=[False, False, True, True])
        .head(50)
    )
    assert list(zip(shown["event_id"], shown["list_type"], shown["position"], shown["video_id"])) == list(
        zip(items["event_id"], items["list_type"], items["position"], items["video_id"])
    )
    with pytest.raises(WorkbenchError, match="limit must be a positive"):
        ytdpnl.latest_sessions(study.db, code, limit=0, schema=SCHEMA)


def pandas_daily_activity(study: Study) -> pd.DataFrame:
    events = study.events()
    events["day"] = events["created_at"].dt.normalize()
    views = events[events["type"] == "PAGE_VIEW"].sort_values(["session_uuid", "created_at", "id"]).copy()
    gap = views.groupby("session_uuid")["created_at"].diff().dt.total_seconds()
    views["time"] = gap.where((gap >= 0) & (gap <= 1800), 0.0).fillna(0.0)
    watch = events[events["type"] == "WATCH_TIME"].merge(
        study.raw["watch_time"], left_on="id", right_on="event_id", how="left"
    )
    parts = [
        views.assign(
            pages_viewed=1,
            video_pages_viewed=views["url"].str.contains("/watch", regex=False).astype(int),
            time_spent_on_youtube_seconds=views["time"],
        ),
        watch.assign(video_time_viewed_seconds=watch["seconds_watched"].fillna(0.0)),
        events[events["type"].isin(CLICKS)].assign(sidebar_recommendations_clicked=1),
    ]
    columns = [
        "pages_viewed",
        "video_pages_viewed",
        "video_time_viewed_seconds",
        "time_spent_on_youtube_seconds",
        "sidebar_recommendations_clicked",
    ]
    frame = pd.concat([p[["participant_id", "day", *[c for c in columns if c in p]]] for p in parts]).fillna(0.0)
    return (
        frame.groupby(["participant_id", "day"], as_index=False)[columns]
        .sum()
        .sort_values(["participant_id", "day"], ignore_index=True)
    )


def test_daily_activity_recomputes_the_servers_rules(study: Study):
    expected = pandas_daily_activity(study)
    got = ytdpnl.daily_activity(study.db, schema=SCHEMA)
    assert len(got) == len(expected) and got["matches"].all()
    np.testing.assert_array_equal(got["participant_id"], expected["participant_id"])
    np.testing.assert_array_equal(got["day"].to_numpy(), expected["day"].to_numpy())
    for column in expected.columns[2:]:
        np.testing.assert_allclose(got[column], expected[column], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got[f"stored_{column}"], expected[column], rtol=1e-6, atol=1e-3)
    code = study.raw["participant"]["code"].iloc[0]
    window = ytdpnl.daily_activity(study.db, schema=SCHEMA, codes=[code], start="2023-02-08", end="2023-02-12")
    pid = int(study.raw["participant"]["id"].iloc[0])
    mine = expected[
        (expected["participant_id"] == pid) & (expected["day"] >= "2023-02-08") & (expected["day"] <= "2023-02-12")
    ]
    assert list(window["day"]) == list(mine["day"])


def test_transition_audit_agrees_with_the_stored_days(study: Study):
    r = study.raw
    got = ytdpnl.transition_audit(study.db, schema=SCHEMA)
    te = r["transition_event"].sort_values(["participant_id", "created_at", "id"])
    created = r["participant"].set_index("id")["created_at"]
    previous = te.groupby("participant_id")["created_at"].shift()
    te = te.assign(
        entry_day=previous.fillna(te["participant_id"].map(created)).dt.normalize(),
        transition_day=te["created_at"].dt.normalize(),
    )
    settings = r["transition_setting"].set_index("id")
    days = r["daily_activity_time"].assign(day=lambda d: pd.to_datetime(d["created_at"]))
    figures = [
        "pages_viewed",
        "video_pages_viewed",
        "video_time_viewed_seconds",
        "time_spent_on_youtube_seconds",
        "sidebar_recommendations_clicked",
    ]
    expected = {}
    for row in te[te["reason"] == "AUTOMATIC"].itertuples():
        s = settings.loc[row.transition_setting_id]
        mine = days[
            (days["participant_id"] == row.participant_id)
            & (days["day"] >= row.entry_day)
            & (days["day"] < row.transition_day)
        ]
        hits = pd.concat([mine[c] >= s[f"min_{c}"] for c in figures if s[f"min_{c}"] > 0], axis=1)
        matched = hits.any(axis=1) if s["operator"] == "ANY" else hits.all(axis=1)
        expected[row.id] = (int(matched.sum()), int(s["min_days"]), float(mine.loc[matched, "pages_viewed"].sum()))
    automatic = got[got["reason"] == "AUTOMATIC"].set_index("transition_event_id")
    assert len(expected) > 0 and set(automatic.index) == set(expected)
    for transition_id, (matching, min_days, pages) in expected.items():
        assert (
            automatic.at[transition_id, "matching_days"]
            == matching
            == min_days
            == automatic.at[transition_id, "num_days"]
        )
        assert (
            automatic.at[transition_id, "matched_pages_viewed"] == pages == automatic.at[transition_id, "pages_viewed"]
        )
    assert automatic["consistent"].all() and got.loc[got["reason"] == "FORCED", "consistent"].isna().all()
    day_rows = ytdpnl.transition_audit(study.db, by="day", schema=SCHEMA)
    assert day_rows["matched"].notna().sum() == sum(
        len(
            days[
                (days["participant_id"] == r_.participant_id)
                & (days["day"] >= r_.entry_day)
                & (days["day"] < r_.transition_day)
            ]
        )
        for r_ in te[te["reason"] == "AUTOMATIC"].itertuples()
    )


def path_type(url: str) -> str:
    path = urlparse(url).path
    if path.startswith("/watch"):
        return "watch"
    if path.startswith("/results"):
        return "search"
    if path.startswith(("/@", "/channel/", "/c/")):
        return "channel"
    return "home" if path in ("", "/") else "other"


def test_monitoring_matches_pandas(study: Study):
    events = study.events()
    start, end = pd.Timestamp("2023-02-09"), pd.Timestamp("2023-02-14 12:00")
    views = events[
        (events["type"] == "PAGE_VIEW") & (events["created_at"] >= start) & (events["created_at"] < end)
    ].copy()
    views["path_type"] = views["url"].map(path_type)
    got = ytdpnl.monitoring(study.db, start, end, top=3, schema=SCHEMA)
    total = got[got["section"] == "total"].iloc[0]
    assert total["page_views"] == len(views) and total["active_participants"] == views["participant_id"].nunique()
    by_type = views.groupby("path_type").agg(
        page_views=("id", "size"), active_participants=("participant_id", "nunique")
    )
    mine = got[got["section"] == "path_type"].set_index("key")
    assert mine["page_views"].to_dict() == by_type["page_views"].to_dict()
    assert mine["active_participants"].to_dict() == by_type["active_participants"].to_dict()
    np.testing.assert_allclose(mine["share"], mine["page_views"] / len(views))
    by_url = (
        views.groupby("url").size().reset_index(name="n").sort_values(["n", "url"], ascending=[False, True]).head(3)
    )
    urls = got[got["section"] == "url"]
    assert list(urls["key"]) == list(by_url["url"]) and list(urls["page_views"]) == list(by_url["n"])


def test_arm_comparison_uses_phase_zero_as_covariate(study: Study):
    r, events = study.raw, study.events()
    units = r["participant"][
        r["participant"]["id"].isin(r["transition_event"].loc[r["transition_event"]["to_phase"] == 1, "participant_id"])
    ]
    events = events.merge(r["watch_time"], left_on="id", right_on="event_id", how="left")

    def per_unit(phase: int, kinds: tuple[str, ...], value: str | None = None) -> pd.Series:
        mine = events[(events["phase"] == phase) & events["type"].isin(kinds)]
        sums = mine.groupby("participant_id")[value].sum() if value else mine.groupby("participant_id").size()
        return units["id"].map(sums).fillna(0.0).astype(float).to_numpy()

    arms = units["arm"].to_numpy()
    metrics = {
        "personalized_clicks": ("PERSONALIZED_CLICKED",),
        "non_personalized_clicks": ("NON_PERSONALIZED_CLICKED",),
        "mixed_clicks": ("MIXED_CLICKED",),
        "home_injected_tile_clicks": ("HOME_INJECTED_TILE_CLICKED",),
        "pages_viewed": ("PAGE_VIEW",),
    }
    table = ytdpnl.arm_sufficient_statistics(study.db, schema=SCHEMA).set_index(["metric", "variation"])
    results = ytdpnl.arm_comparison(study.db, schema=SCHEMA).set_index("metric")
    checked = 0
    for metric, kinds in {**metrics, "watch_time_seconds": ("WATCH_TIME",)}.items():
        value = "seconds_watched" if metric == "watch_time_seconds" else None
        y, x = per_unit(1, kinds, value), per_unit(0, kinds, value)
        for arm in ("control", "treatment"):
            row = table.loc[(metric, arm)]
            mask = arms == arm
            assert row["users"] == mask.sum()
            np.testing.assert_allclose(
                [row["main_sum"], row["main_sum_squares"], row["covariate_sum"], row["main_covariate_sum_product"]],
                [y[mask].sum(), (y[mask] ** 2).sum(), x[mask].sum(), (x[mask] * y[mask]).sum()],
            )
        c, t = arms == "control", arms == "treatment"
        result = results.loc[metric]
        np.testing.assert_allclose(
            result["unadjusted_absolute_effect"] if result["cuped"] else result["absolute_effect"],
            y[t].mean() - y[c].mean(),
        )
        if result["cuped"]:
            theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)
            np.testing.assert_allclose(result["theta"], theta)
            np.testing.assert_allclose(
                result["absolute_effect"], (y[t].mean() - theta * x[t].mean()) - (y[c].mean() - theta * x[c].mean())
            )
            np.testing.assert_allclose(
                result["unadjusted_p_value"], scipy_stats.ttest_ind(y[t], y[c], equal_var=False).pvalue, rtol=1e-6
            )
            checked += 1
    assert checked >= 3
    share = table.loc[("non_personalized_click_share", "treatment")]
    treated = arms == "treatment"
    np.testing.assert_allclose(share["denominator_sum"], sum(per_unit(1, (k,))[treated].sum() for k in CLICKS))
    assert results.loc["non_personalized_clicks", "absolute_effect"] > 0


def test_sanity_checks_find_exactly_the_planted_faults(study: Study):
    found = ytdpnl.sanity_checks(study.db, schema=SCHEMA, max_rows=1000)
    for check, ids in study.faults.items():
        assert found.offending_ids(check) == ids, check
    summary = found.summary.set_index("check")["n_offending"].to_dict()
    assert summary == {
        check: len(set(ids)) if check != "list_position_gaps" else len(ids) for check, ids in study.faults.items()
    }
    limited = ytdpnl.sanity_checks(study.db, schema=SCHEMA, max_rows=1)
    assert limited.summary.set_index("check").loc["page_view_pairing", "n_offending"] == 2
    assert len(limited.offending["page_view_pairing"]) == 1


def test_functions_read_the_connections_search_path_and_validate_the_schema(backend):
    url = backend.new_url("ytdpnl_default_schema")
    writer = wb.connect(url, read_only=False)
    default = "public" if backend.name == "postgresql" else "main"
    ytdpnl.generate_study(writer, "tiny", seed=3, schema=default)
    ytdpnl.generate_study(writer, "tiny", seed=3, schema=SCHEMA)
    writer.dispose()
    db = wb.connect(url)
    pd.testing.assert_frame_equal(
        ytdpnl.participant_overview(db, min_pages=0), ytdpnl.participant_overview(db, min_pages=0, schema=SCHEMA)
    )
    with pytest.raises(WorkbenchError, match="not a plain SQL identifier"):
        ytdpnl.participants_report(db, schema="public; drop table participant")
    with pytest.raises(WorkbenchError, match=r"study's tables are not in schema 'elsewhere'.*pass schema="):
        ytdpnl.participants_report(db, schema="elsewhere")
    db.dispose()
    # a copy made without the unique index (e.g. from a CSV dump) may hold duplicate local_uuids
    writer = wb.connect(url, read_only=False)
    if backend.name == "postgresql":
        writer.sql("ALTER TABLE public.event DROP CONSTRAINT event_local_uuid_key")
    else:
        writer.sql("DROP TABLE main.event")
        writer.sql("CREATE TABLE main.event AS SELECT * FROM ytdpnl.event")
    if backend.name == "postgresql":  # sequences continue after the ids the generator wrote
        assert (
            writer.sql(
                "INSERT INTO public.admin (name, email, password) VALUES ('b', 'b@example.org', 'x') RETURNING id"
            )["id"].iloc[0]
            == 2
        )
        assert (
            writer.sql(
                "INSERT INTO public.video (title, url, youtube_id) VALUES ('t', '/watch?v=new', 'new') RETURNING id"
            )["id"].iloc[0]
            == writer.sql("SELECT count(*) AS n FROM public.video")["n"].iloc[0]
        )
    writer.sql(
        f"UPDATE {default}.event SET local_uuid = (SELECT local_uuid FROM {default}.event WHERE id = 5) WHERE id = 9"
    )
    writer.dispose()
    db = wb.connect(url)
    found = ytdpnl.sanity_checks(db, max_rows=1)
    assert (
        found.offending_ids("duplicate_local_uuids") == [5]
        and found.summary.set_index("check").loc["duplicate_local_uuids", "n_offending"] == 2
    )
    db.dispose()
