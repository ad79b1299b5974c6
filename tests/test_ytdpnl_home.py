"""The home-page experiment of the YouTube personalization study (seed 002) on DuckDB and
PostgreSQL: every analysis against an independent pandas computation on the generated tables,
edited so that each rule (other tiles, a second channel source, positions past a source's items,
an unusable channel still listed, a changed rotation speed) has rows to show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

import workbench as wb
from workbench.errors import WorkbenchError
from workbench.studies import ytdpnl
from workbench.studies.ytdpnl.generator import StudySize

SCHEMA = "ytdpnl"
SIZE = StudySize(participants=24, days=16, pages_per_session=5.0, list_length=4, home_list_length=4)
AS_OF = pd.Timestamp("2023-02-20 12:00")
EDITS = (
    # a shown tile from neither list (an "other" tile) and one listed in both (a default tile)
    "UPDATE {s}.video_list_item SET video_id = 1 WHERE id = (SELECT min(id) FROM {s}.video_list_item WHERE list_type = 'HOME_SHOWN')",
    "UPDATE {s}.video_list_item SET video_id = (SELECT min(v.video_id) FROM {s}.video_list_item v WHERE v.list_type = 'HOME_REPLACEMENT_SOURCE' "
    "AND v.event_id = video_list_item.event_id) WHERE id = (SELECT max(id) FROM {s}.video_list_item WHERE list_type = 'HOME_DEFAULT')",
    "INSERT INTO {s}.channel_source (id, title, is_default, created_at, updated_at) VALUES (2, NULL, false, '2023-02-10', '2023-02-10')",
    "INSERT INTO {s}.channel_source_item (id, channel_source_id, position, youtube_channel_id, created_at, updated_at) VALUES "
    "(6, 2, 0, 'UCa', '2023-02-10', '2023-02-10'), (7, 2, 1, 'UCgone', '2023-02-10', '2023-02-10'), (8, 2, 2, 'UCb', '2023-02-10', '2023-02-10')",
    "INSERT INTO {s}.unusable_channel (id, youtube_channel_id, created_at, updated_at) VALUES (2, 'UCnews2', '2023-02-15 08:00', '2023-02-15 08:00')",
    "UPDATE {s}.channel_rotation_speed_setting SET is_current = false",
    "INSERT INTO {s}.channel_rotation_speed_setting (id, speed_hours, is_current, created_at, updated_at) VALUES (2, 12.5, true, '2023-02-12', '2023-02-12')",
    "UPDATE {s}.participant SET channel_source_id = 2, pos_in_channel_source = 1, pos_in_channel_source_last_updated_at = '2023-02-20 00:00' "
    "WHERE id IN (SELECT id FROM {s}.participant WHERE arm = 'treatment' ORDER BY id LIMIT 3)",
    "UPDATE {s}.participant SET channel_source_id = 2, pos_in_channel_source = 5, pos_in_channel_source_last_updated_at = '2023-02-19 08:00' "
    "WHERE id = (SELECT max(id) FROM {s}.participant WHERE arm = 'treatment')",
    "UPDATE {s}.participant SET channel_source_id = NULL, pos_in_channel_source = 2, pos_in_channel_source_last_updated_at = '2023-02-18 09:00' "
    "WHERE id IN (SELECT id FROM {s}.participant WHERE arm = 'treatment' ORDER BY id DESC LIMIT 3 OFFSET 1)",
)


class Raw:
    """The generated study on one backend: a read-only connection and its raw tables as pandas."""

    def __init__(self, url: str):
        self.db = wb.connect(url)
        self.tables = {}
        for table in (
            "participant",
            "session",
            "event",
            "video_list_item",
            "video",
            "video_metadata",
            "channel_source",
            "channel_source_item",
            "channel_rotation_speed_setting",
            "unusable_channel",
        ):
            frame = self.db.sql(f"SELECT * FROM {SCHEMA}.{table}", limit=None)
            for column in ("arm", "type", "list_type", "session_uuid", "uuid"):
                if column in frame:
                    frame[column] = frame[column].map(str)
            self.tables[table] = frame

    def events(self) -> pd.DataFrame:
        """Events with their participant id and code."""
        t = self.tables
        owner = t["session"][["uuid", "participant_code"]].merge(
            t["participant"][["id", "code"]].rename(columns={"id": "participant_id"}),
            left_on="participant_code",
            right_on="code",
        )
        return t["event"].merge(owner[["uuid", "participant_id", "code"]], left_on="session_uuid", right_on="uuid")


@pytest.fixture(scope="module")
def raw(backend) -> Raw:
    url = backend.new_url("ytdpnl_home")
    writer = wb.connect(url, read_only=False)
    ytdpnl.generate_study(writer, SIZE, seed=11, schema=SCHEMA)
    for statement in EDITS:
        writer.sql(statement.format(s=SCHEMA))
    writer.dispose()
    return Raw(url)


def per_unit(raw: Raw, codes=None, start=None, end=None) -> pd.DataFrame:
    """Per participant, arm and phase (and phase 'all'): home_shown, shown/default/replacement tiles, injected_clicks."""
    events = raw.events()
    if codes is not None:
        events = events[events["code"].isin(codes)]
    if start is not None:
        events = events[(events["created_at"] >= pd.Timestamp(start)) & (events["created_at"] < pd.Timestamp(end))]
    items = raw.tables["video_list_item"]
    listed = {
        kind: set(
            zip(items.loc[items["list_type"] == kind, "event_id"], items.loc[items["list_type"] == kind, "video_id"])
        )
        for kind in ("HOME_DEFAULT", "HOME_REPLACEMENT_SOURCE")
    }
    shown = items[items["list_type"] == "HOME_SHOWN"]
    keys = list(zip(shown["event_id"], shown["video_id"]))
    is_default = np.array([k in listed["HOME_DEFAULT"] for k in keys], dtype=bool)
    is_replacement = np.array([k in listed["HOME_REPLACEMENT_SOURCE"] for k in keys], dtype=bool) & ~is_default
    tiles = (
        pd.DataFrame(
            {"id": shown["event_id"], "tiles": 1.0, "default": is_default * 1.0, "replacement": is_replacement * 1.0}
        )
        .groupby("id")
        .sum()
    )
    events = events.merge(tiles, left_on="id", right_index=True, how="left")
    home = events["type"] == "HOME_SHOWN"
    events = events.assign(
        home_shown=home * 1.0,
        shown_tiles=events["tiles"].where(home, 0.0).fillna(0.0),
        default_tiles=events["default"].where(home, 0.0).fillna(0.0),
        replacement_tiles=events["replacement"].where(home, 0.0).fillna(0.0),
        injected_clicks=(events["type"] == "HOME_INJECTED_TILE_CLICKED") * 1.0,
    )
    columns = ["home_shown", "shown_tiles", "default_tiles", "replacement_tiles", "injected_clicks"]
    by_phase = events.assign(phase=events["phase"].astype(int).astype(str)).groupby(["participant_id", "arm", "phase"])
    every = events.assign(phase="all").groupby(["participant_id", "arm", "phase"])
    return pd.concat([by_phase[columns].sum(), every[columns].sum()]).reset_index()


@pytest.mark.parametrize("subset", [False, True])
def test_home_page_matches_pandas(raw: Raw, subset: bool):
    codes = list(raw.tables["participant"]["code"][::2]) if subset else None
    window = ("2023-02-09", "2023-02-17 13:00") if subset else (None, None)
    units = per_unit(raw, codes, *window)
    frame = ytdpnl.home_page(raw.db, schema=SCHEMA, codes=codes, start=window[0], end=window[1])
    grouped = units.groupby(["arm", "phase"])
    expected = grouped.agg(
        participants=("participant_id", "size"),
        home_shown=("home_shown", "sum"),
        shown_tiles=("shown_tiles", "sum"),
        default_tiles=("default_tiles", "sum"),
        replacement_tiles=("replacement_tiles", "sum"),
        injected_clicks=("injected_clicks", "sum"),
    )
    expected["participants_shown_home"] = grouped["home_shown"].apply(lambda s: int((s > 0).sum()))
    got = frame.set_index(["arm", "phase"])
    assert list(got.index) == sorted(expected.index)
    expected = expected.loc[got.index]
    for column in ("participants", "participants_shown_home", "home_shown", "shown_tiles", "default_tiles"):
        np.testing.assert_array_equal(got[column], expected[column].astype("int64"), err_msg=column)
    np.testing.assert_array_equal(got["replacement_tiles"], expected["replacement_tiles"])
    np.testing.assert_array_equal(
        got["other_tiles"], expected["shown_tiles"] - expected["default_tiles"] - expected["replacement_tiles"]
    )
    np.testing.assert_allclose(got["home_shown_per_participant"], expected["home_shown"] / expected["participants"])
    tiles = expected["shown_tiles"].replace(0, np.nan)
    np.testing.assert_allclose(got["replacement_share"], expected["replacement_tiles"] / tiles)
    np.testing.assert_allclose(got["default_share"], expected["default_tiles"] / tiles)
    np.testing.assert_allclose(
        got["click_through"], expected["injected_clicks"] / expected["home_shown"].replace(0, np.nan)
    )
    if not subset:  # the edits and the generator's design show up
        assert got.loc[got.index.get_level_values("phase") == "all", "other_tiles"].sum() >= 1
        treated = got.loc[("treatment", "1")]
        assert treated["replacement_tiles"] > 0 and treated["injected_clicks"] > 0
        assert got.loc[("control", "1"), "replacement_tiles"] == 0


def test_home_page_comparison_uses_the_statistics_engine(raw: Raw):
    units = per_unit(raw)
    table = ytdpnl.home_page_sufficient_statistics(raw.db, schema=SCHEMA)
    results = ytdpnl.home_page_comparison(raw.db, schema=SCHEMA).set_index(["metric", "dimension_value"])
    metrics = {
        "home_shown": ("home_shown", None),
        "replacement_tile_share": ("replacement_tiles", "shown_tiles"),
        "injected_tile_click_through": ("injected_clicks", "home_shown"),
    }
    tested = 0
    for metric, (main, denominator) in metrics.items():
        rows = table[table["metric"] == metric].set_index(["dimension_value", "variation"])
        assert list(rows.index.get_level_values(0).unique()) == ["all", "0", "1", "2"]
        for phase in ("all", "0", "1", "2"):
            here = units[units["phase"] == phase]
            for arm in ("control", "treatment"):
                mine, row = here[here["arm"] == arm], rows.loc[(phase, arm)]
                assert row["dimension"] == ("overall" if phase == "all" else "phase")
                assert row["users"] == len(mine)
                y = mine[main].to_numpy()
                np.testing.assert_allclose([row["main_sum"], row["main_sum_squares"]], [y.sum(), (y**2).sum()])
                if denominator:
                    d = mine[denominator].to_numpy()
                    np.testing.assert_allclose(
                        [row["denominator_sum"], row["denominator_sum_squares"], row["main_denominator_sum_product"]],
                        [d.sum(), (d**2).sum(), (y * d).sum()],
                    )
            result = results.loc[(metric, phase)]
            t, c = here[here["arm"] == "treatment"], here[here["arm"] == "control"]
            if denominator is None:
                np.testing.assert_allclose(result["absolute_effect"], t[main].mean() - c[main].mean())
                if t[main].var() > 0 and c[main].var() > 0:
                    np.testing.assert_allclose(
                        result["p_value"], scipy_stats.ttest_ind(t[main], c[main], equal_var=False).pvalue, rtol=1e-6
                    )
                    tested += 1
            else:
                np.testing.assert_allclose(result["mean"], t[main].sum() / t[denominator].sum())
                np.testing.assert_allclose(result["baseline_mean"], c[main].sum() / c[denominator].sum())
    assert tested >= 2
    with pytest.raises(WorkbenchError, match=r"^code is not a filter of the study's analyses"):
        ytdpnl.home_page_comparison(raw.db, schema=SCHEMA, code=["x"])


def test_channel_positions_match_pandas(raw: Raw):
    t = raw.tables
    frame = ytdpnl.channel_positions(raw.db, AS_OF, schema=SCHEMA)
    speed = t["channel_rotation_speed_setting"]
    hours = float(speed.loc[speed["is_current"].astype(bool), "speed_hours"].iloc[0])
    default = int(t["channel_source"].loc[t["channel_source"]["is_default"].astype(bool), "id"].min())
    people = t["participant"][t["participant"]["arm"] == "treatment"]
    people = people.assign(
        source=people["channel_source_id"].fillna(default).astype(int),
        due=(
            (AS_OF - pd.to_datetime(people["pos_in_channel_source_last_updated_at"])).dt.total_seconds() >= 3600 * hours
        )
        & (people["phase"] <= 1),
    )
    placed = people.groupby(["source", "pos_in_channel_source"]).agg(
        participants=("id", "size"), participants_due=("due", "sum")
    )
    items = t["channel_source_item"].set_index(["channel_source_id", "position"])["youtube_channel_id"]
    keys = sorted(set(placed.index) | set(items.index))
    got = frame.set_index(["channel_source_id", "position"])
    assert list(got.index) == keys
    assert list(got["youtube_channel_id"]) == [items.get(k) for k in keys]
    np.testing.assert_array_equal(got["participants"], [placed["participants"].get(k, 0) for k in keys])
    np.testing.assert_array_equal(got["participants_due"], [placed["participants_due"].get(k, 0) for k in keys])
    last = t["channel_source_item"].groupby("channel_source_id")["position"].max()
    assert list(got["is_last"]) == [k in items.index and k[1] == last[k[0]] for k in keys]
    marked = t["unusable_channel"].set_index("youtube_channel_id")["created_at"]
    assert list(got["unusable_since"].notna()) == [items.get(k) in marked.index for k in keys]
    assert (got["speed_hours"] == hours).all()
    assert got.loc[(2, 5), "participants"] == 1 and pd.isna(got.loc[(2, 5), "youtube_channel_id"])
    assert 0 < got["participants_due"].sum() < got["participants"].sum()


def test_rotation_speeds_and_unusable_channels_match_pandas(raw: Raw):
    t = raw.tables
    speeds = ytdpnl.rotation_speeds(raw.db, schema=SCHEMA)
    settings = t["channel_rotation_speed_setting"].sort_values(["created_at", "id"])
    assert list(speeds["id"]) == list(settings["id"])
    np.testing.assert_allclose(speeds["speed_hours"], settings["speed_hours"].astype(float))
    assert list(speeds["replaced_at"].iloc[:-1]) == list(pd.to_datetime(settings["created_at"]).iloc[1:])
    assert speeds["replaced_at"].iloc[-1] is pd.NaT and list(speeds["is_current"]) == [False, True]

    unusable = ytdpnl.unusable_channels(raw.db, schema=SCHEMA)
    default = int(t["channel_source"].loc[t["channel_source"]["is_default"].astype(bool), "id"].min())
    people = t["participant"][t["participant"]["arm"] == "treatment"]
    there = (
        people.assign(source=people["channel_source_id"].fillna(default).astype(int))
        .groupby(["source", "pos_in_channel_source"])["id"]
        .size()
    )
    expected = (
        t["unusable_channel"]
        .merge(t["channel_source_item"], on="youtube_channel_id", how="left", suffixes=("", "_item"))
        .sort_values(["created_at", "id", "channel_source_id", "position"])
    )
    assert list(unusable["youtube_channel_id"]) == list(expected["youtube_channel_id"])
    assert list(unusable["channel_source_id"].astype(object).where(unusable["channel_source_id"].notna(), None)) == [
        None if pd.isna(v) else int(v) for v in expected["channel_source_id"]
    ]
    assert list(unusable["participants_there"]) == [
        0 if pd.isna(s) else int(there.get((int(s), int(p)), 0))
        for s, p in zip(expected["channel_source_id"], expected["position"])
    ]
    assert unusable["participants_there"].sum() > 0


@pytest.mark.parametrize("subset", [False, True])
def test_pool_channels_match_pandas(raw: Raw, subset: bool):
    t = raw.tables
    codes = list(t["participant"]["code"][1::3]) if subset else None
    window = ("2023-02-10", "2023-02-15") if subset else (None, None)
    frame = ytdpnl.pool_channels(raw.db, schema=SCHEMA, codes=codes, start=window[0], end=window[1])
    events = raw.events()
    events = events[events["type"] == "HOME_SHOWN"]
    if subset:
        events = events[
            events["code"].isin(codes)
            & (events["created_at"] >= pd.Timestamp(window[0]))
            & (events["created_at"] < pd.Timestamp(window[1]) + pd.Timedelta(days=1))
        ]
    items = t["video_list_item"][t["video_list_item"]["list_type"] == "HOME_REPLACEMENT_SOURCE"]
    channel = t["video"].merge(t["video_metadata"], on="youtube_id", how="left").set_index("id_x")["youtube_channel_id"]
    pool = items.assign(channel=items["video_id"].map(channel)).merge(events, left_on="event_id", right_on="id")
    pool = pool.assign(day=pd.to_datetime(pool["created_at_y"]).dt.normalize(), channel=pool["channel"].fillna("-"))
    keys = ["day", "code", "arm", "phase", "channel"]
    expected = pool.groupby(keys).agg(home_shown=("event_id", "nunique"), pool_videos=("event_id", "size"))
    got = frame.assign(channel=frame["youtube_channel_id"].fillna("-")).set_index(keys)
    assert len(got) == len(expected) > 0
    expected = expected.loc[got.index]
    np.testing.assert_array_equal(got["home_shown"], expected["home_shown"])
    np.testing.assert_array_equal(got["pool_videos"], expected["pool_videos"])
    # every home page's pool shows under at least one channel
    assert frame["home_shown"].sum() >= len(events) == pool["event_id"].nunique()
