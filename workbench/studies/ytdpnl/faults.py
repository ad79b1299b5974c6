"""Known faults planted in generated study data, so that the sanity checks can be proven exact.

Each fault is named after the sanity check that must find it and lists the ids that check reports
(event ids, session ids or video ids). Faults only touch rows whose change cannot be seen by any
other check (targets are chosen away from phase transitions and from each other).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

PAIRING_SHIFT_MS = 120_000  # a RECOMMENDATIONS_SHOWN moved two minutes away from its PAGE_VIEW
CLICK_SHIFT_MS = 3_000  # a click moved to before the recommendations it comes from
TRANSITION_MARGIN_MS = 600_000  # no planted fault within ten minutes of a phase transition


@dataclass
class InjectedFaults:
    """Ids each sanity check must report on data generated with ``inject_faults=True``."""

    page_view_pairing: list[int] = field(default_factory=list)  # event ids (the moved RS and its PAGE_VIEW)
    clicks_without_recommendation: list[int] = field(default_factory=list)  # event ids
    arm_or_phase_mismatch: list[int] = field(default_factory=list)  # event ids
    sessions_without_events: list[int] = field(default_factory=list)  # session ids
    watch_times_without_event: list[int] = field(default_factory=list)  # event ids a watch_time row points to
    watch_time_events_without_seconds: list[int] = field(default_factory=list)  # WATCH_TIME event ids
    duplicate_local_uuids: list[int] = field(default_factory=list)  # none: unique(local_uuid) forbids them
    list_position_gaps: list[int] = field(default_factory=list)  # event ids
    missing_video_metadata: list[int] = field(default_factory=list)  # video ids

    def as_dict(self) -> dict[str, list[int]]:
        return {name: sorted(int(i) for i in ids) for name, ids in asdict(self).items()}


def plant_faults(chunk: dict[str, pd.DataFrame], rng: np.random.Generator, next_session_id: int) -> InjectedFaults:
    """Change ``chunk``'s rows in place to hold one or two faults per check; return their ids."""
    events = chunk["event"]
    faults = InjectedFaults()
    t = events["created_at"].to_numpy().astype("datetime64[ms]").astype("int64")
    owner = chunk["session"].set_index("uuid")["participant_code"].reindex(events["session_uuid"]).to_numpy()
    marks = chunk["_transitions"]
    code_of = chunk["participant"].set_index("id")["code"]
    near_transition = np.zeros(len(events), dtype=bool)
    for p, mark in zip(marks["p"], marks["t"]):
        near_transition |= (owner == code_of[p + 1]) & (np.abs(t - mark) < TRANSITION_MARGIN_MS)
    used: set[int] = set()
    # one (session, url) page per fault: its url appears once in the session, so nothing else pairs with it
    kind = events["type"].to_numpy()
    page_url = np.where(
        np.char.endswith(kind.astype(str), "CLICKED"), events["context"].to_numpy(), events["url"].to_numpy()
    )
    key = events["session_uuid"].astype(str) + " " + pd.Series(page_url, index=events.index).astype(str)
    views_per_page = key[kind == "PAGE_VIEW"].value_counts()
    single_page = key.map(views_per_page).fillna(0).to_numpy() == 1
    clicked_pages = set(key[np.char.endswith(kind.astype(str), "CLICKED")])
    has_click = key.isin(clicked_pages).to_numpy()
    safe = single_page & ~near_transition

    def pick(mask: np.ndarray) -> int:
        candidates = np.flatnonzero(mask & ~np.isin(np.arange(len(events)), list(used)))
        if candidates.size == 0:
            raise WorkbenchError(
                "The study is too small to plant every fault: generate more participants or days, or leave inject_faults off."
            )
        chosen = int(rng.choice(candidates))
        used.update(np.flatnonzero(key.to_numpy() == key.iat[chosen]).tolist())
        return chosen

    is_shown = kind == "RECOMMENDATIONS_SHOWN"
    first_shown = np.zeros(len(events), dtype=bool)  # the seed's quirk exempts a session's first list: never move it
    first_shown[events[is_shown].sort_values("created_at").drop_duplicates("session_uuid").index] = True
    shown = pick(safe & is_shown & ~first_shown & ~has_click)
    view = int(np.flatnonzero((key.to_numpy() == key.iat[shown]) & (kind == "PAGE_VIEW"))[0])
    events.loc[shown, "created_at"] += pd.Timedelta(milliseconds=PAIRING_SHIFT_MS)
    faults.page_view_pairing = [int(events.at[shown, "id"]), int(events.at[view, "id"])]

    sidebar = np.isin(kind, ["PERSONALIZED_CLICKED", "NON_PERSONALIZED_CLICKED", "MIXED_CLICKED"])
    click = pick(safe & sidebar)
    source = np.flatnonzero((key.to_numpy() == key.iat[click]) & (kind == "RECOMMENDATIONS_SHOWN"))[0]
    events.loc[click, "created_at"] = events.at[source, "created_at"] - pd.Timedelta(milliseconds=CLICK_SHIFT_MS)
    faults.clicks_without_recommendation = [int(events.at[click, "id"])]

    views = safe & (kind == "PAGE_VIEW")
    wrong_phase, wrong_arm = pick(views), pick(views)
    events.loc[wrong_phase, "phase"] = (events.at[wrong_phase, "phase"] + 1) % 3
    events.loc[wrong_arm, "arm"] = "control" if events.at[wrong_arm, "arm"] == "treatment" else "treatment"
    faults.arm_or_phase_mismatch = [int(events.at[wrong_phase, "id"]), int(events.at[wrong_arm, "id"])]

    watch_times = chunk["watch_time"]
    orphan_target = pick(views)
    chunk["watch_time"] = pd.concat(
        [watch_times, pd.DataFrame({"event_id": [int(events.at[orphan_target, "id"])], "seconds_watched": [42.0]})],
        ignore_index=True,
    )
    faults.watch_times_without_event = [int(events.at[orphan_target, "id"])]
    lost = pick(safe & (kind == "WATCH_TIME"))
    chunk["watch_time"] = chunk["watch_time"][chunk["watch_time"]["event_id"] != events.at[lost, "id"]].reset_index(
        drop=True
    )
    faults.watch_time_events_without_seconds = [int(events.at[lost, "id"])]

    items = chunk["video_list_item"]
    repeated = items["video_id"].map(items["video_id"].value_counts()).to_numpy() > 1
    candidates = np.flatnonzero(
        (items["list_type"].to_numpy() == "SHOWN") & (items["position"].to_numpy() == 2) & repeated
    )
    hole = int(rng.choice(candidates))
    faults.list_position_gaps = [int(items.at[hole, "event_id"])]
    chunk["video_list_item"] = items.drop(index=hole).reset_index(drop=True)

    sessions = chunk["session"]
    owners = rng.choice(chunk["participant"]["code"].to_numpy(), 2, replace=False)
    at = sessions["created_at"].max() + pd.Timedelta(hours=1)  # after every real session: first sessions stay first
    empty = pd.DataFrame(
        {
            "id": [next_session_id, next_session_id + 1],
            "uuid": [f"00000000-0000-4000-a000-{i:012d}" for i in (1, 2)],
            "participant_code": owners,
            "created_at": [at, at],
            "updated_at": [at, at],
        }
    )
    chunk["session"] = pd.concat([sessions, empty], ignore_index=True)
    faults.sessions_without_events = [next_session_id, next_session_id + 1]
    return faults
