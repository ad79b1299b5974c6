"""Simulate one chunk of users as numpy arrays: sessions, page views, events, orders and exposures.

Vectorised over the chunk: a users × session-slots matrix decides who comes back when, then a
sessions × page-slots matrix walks each visit through the funnel
``/ → /search → /item/<n>… → /cart → /checkout → /success``. No Python loop runs per user,
session or row. Times are whole seconds since the start of the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.generator.planted import PLANTED_EXPERIMENTS, PlantedExperiment

SECONDS_PER_DAY = 86_400
COUNTRIES = ("US", "UK", "CA", "AU")
COUNTRY_WEIGHTS = (0.60, 0.20, 0.10, 0.10)
BROWSERS = ("Chrome", "Safari", "Edge", "Firefox", "Samsung Internet", "Opera")
BROWSER_WEIGHTS = (0.68, 0.19, 0.04, 0.04, 0.03, 0.02)
# Relative traffic per hour of the day (UTC), quiet at night, busiest in the evening.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 7, 6, 6, 6, 7, 8, 9, 9, 8, 6, 4)
ITEMS = 10  # item ids 1..10; an item's price is its id
ITEM_WEIGHTS = tuple(1 / np.sqrt(np.arange(1, ITEMS + 1)))  # cheap items are viewed more
PATHS = ("/", "/search", "/cart", "/checkout", "/success", *tuple(f"/item/{i}" for i in range(1, ITEMS + 1)))
EVENTS = ("Open Nav", "Search", "Sort Results", "Add to Cart", "Cart Loaded")

MAX_SESSIONS = 12  # sessions per user at most
RETURN_MAX, RETURN_BETA = 0.8, (8.0, 2.0)  # per-user chance of a first return visit: 0.8 × Beta(8, 2), mean 0.64
RETURN_DECAY = 0.9  # each further return is 0.9 times as likely as the one before (retention decays)
GAP_DAYS_MEAN = 1.5  # days between visits: 1 + floor(Exponential(1.5 × 1.35^k)), growing with k
GAP_GROWTH = 1.35
COOKIE_CLEAR_SHARE = 0.05  # sessions that start with cleared cookies (a new anonymousId)
OPEN_NAV_SHARE = 0.45
SEARCH_SHARE = 0.70
SORT_SHARE = 0.10
ITEM_SLOTS = 4  # item pages per session at most
ADD_TO_CART_BASE = 0.40  # per viewed item, before the user's propensity and planted effects
CHECKOUT_SHARE = 0.85  # sessions with a cart that go on to /checkout
PURCHASE_BASE = 0.60  # per checkout, before the user's propensity and planted effects
PROPENSITY_BETA = 4.0  # per-user add/buy propensities: 0.5 + Beta(4, 4), in (0.5, 1.5) with mean 1
PROPENSITY_MAX = 1.5
BASE_PROBABILITY = {
    "add_to_cart": ADD_TO_CART_BASE * PROPENSITY_MAX,
    "purchase": PURCHASE_BASE * PROPENSITY_MAX,
    "return_visit": RETURN_MAX,
}  # the highest each can be before planted effects
NULL_AMOUNT_SHARE = 0.15  # orders whose amount is NULL (lost by the tracking, on purpose)
DWELL_MIN_S, DWELL_MEAN_S = 3, 14  # seconds on a page: 3 + floor(Exponential(14))

# Page slots of a session, in the order they are visited.
HOME, SEARCH, FIRST_ITEM, CART, CHECKOUT, SUCCESS = 0, 1, 2, 2 + ITEM_SLOTS, 3 + ITEM_SLOTS, 4 + ITEM_SLOTS
PAGE_SLOTS = SUCCESS + 1
PATH_OF_SLOT = {HOME: 0, SEARCH: 1, CART: 2, CHECKOUT: 3, SUCCESS: 4}
ITEM_PATH_OFFSET = 4  # path code of /item/<n> is 4 + n


@dataclass
class Chunk:
    """One chunk of simulated users. Row tables are dicts of equal-length arrays; ``session``
    indexes the chunk's sessions, and sessions are grouped by user in user order."""

    user_ids: np.ndarray  # (users,) global user ids, 1-based
    country: np.ndarray  # (users,) index into COUNTRIES
    session_user: np.ndarray  # (sessions,) index into user_ids
    session_number: np.ndarray  # (sessions,) 0 for a user's first session
    session_start: np.ndarray  # (sessions,) seconds
    session_browser: np.ndarray  # (sessions,) index into BROWSERS
    cookie_session: np.ndarray  # (sessions,) the session whose cookie (anonymousId) this one carries
    session_pages: np.ndarray
    session_duration: np.ndarray  # seconds
    pages: dict[str, np.ndarray]  # session, time, path (index into PATHS)
    events: dict[str, np.ndarray]  # session, time, event (index into EVENTS), value
    orders: dict[str, np.ndarray]  # session, time, qty, amount, amount_missing
    exposures: dict[str, np.ndarray]  # session, time, experiment (index into experiments), variation

    def row_counts(self) -> dict[str, int]:
        return {
            "experiment_viewed": len(self.exposures["session"]),
            "orders": len(self.orders["session"]),
            "pages": len(self.pages["session"]),
            "sessions": len(self.session_user),
            "events": len(self.events["session"]),
        }


def simulate_chunk(
    rng: np.random.Generator,
    first_user_id: int,
    users: int,
    days: int,
    experiments: tuple[PlantedExperiment, ...] = PLANTED_EXPERIMENTS,
) -> Chunk:
    """Users ``first_user_id … first_user_id + users - 1`` over ``days`` days, drawn from ``rng``."""
    for behaviour, ceiling in highest_probabilities(experiments).items():
        if ceiling > 1:
            raise ValueError(
                f"planted effects on {behaviour} could push its probability to {ceiling:.2f} > 1: "
                "smaller effects keep every effect an exact multiplier."
            )
    period_s = days * SECONDS_PER_DAY
    country = _draw(rng, COUNTRY_WEIGHTS, users)
    return_p = RETURN_MAX * rng.beta(*RETURN_BETA, users)
    add_propensity = PROPENSITY_MAX - 1 + rng.beta(PROPENSITY_BETA, PROPENSITY_BETA, users)
    buy_propensity = PROPENSITY_MAX - 1 + rng.beta(PROPENSITY_BETA, PROPENSITY_BETA, users)
    variation = np.stack([_draw(rng, e.weights, users) for e in experiments])  # experiments × users
    extra_exposure = np.stack(
        [(rng.random(users) < e.extra_exposure_probability) & (variation[i] > 0) for i, e in enumerate(experiments)]
    )

    # Sessions: a first visit on a uniform day, then return visits that get rarer and further apart.
    day, start = _visit_slots(rng, users, days)
    return_multiplier = np.ones(users)
    for i, e in enumerate(experiments):
        if e.acts_on == "return_visit":  # exposed at the end of the first session, so before any return
            exposed = (start[:, 0] >= e.starts * period_s) & (start[:, 0] < e.ends * period_s)
            return_multiplier *= np.where(exposed, 1 + np.asarray(e.effects)[variation[i]], 1.0)
    return_p = return_p[:, None] * RETURN_DECAY ** np.arange(MAX_SESSIONS - 1) * return_multiplier[:, None]
    returned = np.cumprod(rng.random(return_p.shape) < return_p, axis=1).astype(bool)
    exists = np.concatenate([np.ones((users, 1), bool), returned], axis=1) & (day < days)
    session_user, session_number = np.nonzero(exists)  # row-major: grouped by user, in visit order
    session_start = start[exists]
    sessions = len(session_user)
    first_of_user = session_number == 0
    browser = _draw(rng, BROWSER_WEIGHTS, sessions)
    cookie_session = _cookie_sessions(session_user, browser, rng.random(sessions) < COOKIE_CLEAR_SHARE)

    # Pages: which slots each session visits, before any planted effect.
    visits = np.zeros((sessions, PAGE_SLOTS), bool)
    visits[:, HOME] = True
    searched = rng.random(sessions) < SEARCH_SHARE
    visits[:, SEARCH] = searched
    item_count = np.where(searched, 1 + rng.binomial(ITEM_SLOTS - 1, 0.4, sessions), rng.binomial(2, 0.3, sessions))
    item_visits = np.arange(ITEM_SLOTS) < item_count[:, None]
    visits[:, FIRST_ITEM:CART] = item_visits
    item_id = 1 + _draw(rng, np.asarray(ITEM_WEIGHTS) / sum(ITEM_WEIGHTS), (sessions, ITEM_SLOTS))
    dwell = DWELL_MIN_S + np.floor(rng.exponential(DWELL_MEAN_S, (sessions, PAGE_SLOTS))).astype(np.int64)

    active = np.stack(
        [
            (session_start >= e.starts * period_s)
            & (session_start < e.ends * period_s)
            & (True if e.browser is None else browser == BROWSERS.index(e.browser))
            for e in experiments
        ]
    )
    shown = {
        "home": np.ones(sessions, bool),
        "search": searched,
        "item": item_count > 0,
        "first_session_end": first_of_user,
    }
    exposed_in = {i: active[i] & shown[e.exposed_on] for i, e in enumerate(experiments) if e.exposed_on != "checkout"}

    def multiplier(behaviour: str) -> np.ndarray:
        """Product of ``1 + effect`` over experiments acting on ``behaviour`` the user has seen by now."""
        m = np.ones(sessions)
        for i, e in enumerate(experiments):
            if e.acts_on == behaviour:
                seen = _since_first(exposed_in[i], session_user)
                m *= np.where(seen, 1 + np.asarray(e.effects)[variation[i, session_user]], 1.0)
        return m

    p_add = ADD_TO_CART_BASE * add_propensity[session_user] * multiplier("add_to_cart")
    added = item_visits & (rng.random((sessions, ITEM_SLOTS)) < p_add[:, None])
    qty = added.sum(axis=1)
    visits[:, CART] = qty > 0
    visits[:, CHECKOUT] = visits[:, CART] & (rng.random(sessions) < CHECKOUT_SHARE)
    for i, e in enumerate(experiments):
        if e.exposed_on == "checkout":
            exposed_in[i] = active[i] & visits[:, CHECKOUT]
    p_buy = PURCHASE_BASE * buy_propensity[session_user] * multiplier("purchase")
    visits[:, SUCCESS] = visits[:, CHECKOUT] & (rng.random(sessions) < p_buy)

    # Times: each visited page starts when the previous one's dwell ends.
    spent = dwell * visits
    page_time = session_start[:, None] + np.cumsum(spent, axis=1) - spent
    duration = spent.sum(axis=1)

    path = np.empty((sessions, PAGE_SLOTS), np.int64)
    for slot, code in PATH_OF_SLOT.items():
        path[:, slot] = code
    path[:, FIRST_ITEM:CART] = ITEM_PATH_OFFSET + item_id
    pages = _rows(visits, page_time, path=path)

    item_time = page_time[:, FIRST_ITEM:CART]
    events = _concat(
        [
            _rows(
                visits[:, HOME] & (rng.random(sessions) < OPEN_NAV_SHARE),
                page_time[:, HOME] + 1 + dwell[:, HOME] // 2,
                event=0,
                value=0,
            ),
            _rows(searched, page_time[:, SEARCH] - 1, event=1, value=0),
            _rows(searched & (rng.random(sessions) < SORT_SHARE), page_time[:, SEARCH] + 2, event=2, value=0),
            _rows(added, item_time + dwell[:, FIRST_ITEM:CART] // 2, event=3, value=item_id),
            _rows(visits[:, CART], page_time[:, CART], event=4, value=qty),
        ]
    )

    bought = visits[:, SUCCESS]
    orders = _rows(bought, page_time[:, SUCCESS], qty=qty, amount=(item_id * added).sum(axis=1))
    orders["amount_missing"] = rng.random(len(orders["session"])) < NULL_AMOUNT_SHARE

    place_time = {
        "home": page_time[:, HOME],
        "search": page_time[:, SEARCH],
        "checkout": page_time[:, CHECKOUT],
        "first_session_end": session_start + duration,
    }
    exposure_parts = []
    for i, e in enumerate(experiments):
        if e.exposed_on == "item":
            rows = _rows(item_visits & exposed_in[i][:, None], item_time)
        else:
            rows = _rows(exposed_in[i], place_time[e.exposed_on])
        user = session_user[rows["session"]]
        rows["experiment"] = np.full(len(user), i)
        rows["variation"] = variation[i, user]
        exposure_parts.append(rows)
        if e.extra_exposure_share:  # the planted bug: one more exposure, to variation 0, at the first one
            extra = _starts_group(user) & extra_exposure[i, user]
            exposure_parts.append(
                {
                    "session": rows["session"][extra],
                    "time": rows["time"][extra] + 1,
                    "experiment": rows["experiment"][extra],
                    "variation": np.zeros(extra.sum(), np.int64),
                }
            )

    return Chunk(
        user_ids=first_user_id + np.arange(users, dtype=np.int64),
        country=country,
        session_user=session_user,
        session_number=session_number,
        session_start=session_start,
        session_browser=browser,
        cookie_session=cookie_session,
        session_pages=visits.sum(axis=1),
        session_duration=duration,
        pages=pages,
        events=events,
        orders=orders,
        exposures=_concat(exposure_parts),
    )


def highest_probabilities(experiments: tuple[PlantedExperiment, ...] = PLANTED_EXPERIMENTS) -> dict[str, float]:
    """The highest probability each behaviour can reach under the planted effects. At most 1 means
    no probability is ever capped, so every planted effect is an exact multiplier."""
    highest = dict(BASE_PROBABILITY)
    for e in experiments:
        if e.acts_on:
            highest[e.acts_on] *= 1 + max(e.effects)
    return highest


def _draw(rng: np.random.Generator, weights, size) -> np.ndarray:
    """Indices drawn with probabilities ``weights`` (summing to 1)."""
    cumulative = np.cumsum(weights)
    return np.minimum(np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right"), len(cumulative) - 1)


def _visit_slots(rng: np.random.Generator, users: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(day, start second) of each user's possible visits, users × MAX_SESSIONS: the first on a
    uniform day, each next one 1 + floor(Exponential(GAP_DAYS_MEAN × GAP_GROWTH^k)) days later."""
    gaps = 1 + np.floor(
        rng.exponential(GAP_DAYS_MEAN * GAP_GROWTH ** np.arange(MAX_SESSIONS - 1), (users, MAX_SESSIONS - 1))
    )
    day = rng.integers(0, days, users)[:, None] + np.concatenate(
        [np.zeros((users, 1), np.int64), np.cumsum(gaps.astype(np.int64), axis=1)], axis=1
    )
    return day, day * SECONDS_PER_DAY + _time_of_day(rng, day.shape)


def _starts_group(sorted_keys: np.ndarray) -> np.ndarray:
    """True where a run of equal values begins in ``sorted_keys`` (e.g. a user's first session)."""
    return np.diff(sorted_keys, prepend=-1) != 0


def _time_of_day(rng: np.random.Generator, shape) -> np.ndarray:
    """Seconds after midnight, the hour drawn from HOUR_WEIGHTS."""
    hours = _draw(rng, np.asarray(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS), shape)
    return hours * 3600 + rng.integers(0, 3600, shape)


def _cookie_sessions(session_user: np.ndarray, browser: np.ndarray, cleared: np.ndarray) -> np.ndarray:
    """For each session, the session that set its cookie: a cookie lives in one browser of one
    user, from that browser's first session or a session with cleared cookies on."""
    group = session_user * len(BROWSERS) + browser
    order = np.argsort(group, kind="stable")  # (user, browser) groups, in visit order
    new_cookie = _starts_group(group[order]) | cleared[order]
    position = np.maximum.accumulate(np.where(new_cookie, np.arange(len(order)), 0))
    cookie_session = np.empty_like(order)
    cookie_session[order] = order[position]
    return cookie_session


def _since_first(flag: np.ndarray, session_user: np.ndarray) -> np.ndarray:
    """True for every session of a user from their first flagged session on (sessions grouped by user)."""
    counts = np.cumsum(flag)
    starts_user = _starts_group(session_user)
    before = (counts - flag)[starts_user]
    return counts > before[np.cumsum(starts_user) - 1]


def _rows(mask: np.ndarray, time, **columns) -> dict[str, np.ndarray]:
    """Rows where ``mask`` holds: ``session``, ``time`` and ``columns``, in session order.

    ``mask`` is (sessions,) or (sessions, slots); values are scalars, per-session (sessions,)
    arrays or arrays shaped like ``mask``.
    """
    rows = {"session": np.nonzero(mask)[0]}
    for name, value in {"time": time, **columns}.items():
        value = np.asarray(value)
        if value.ndim == 1 and mask.ndim == 2:
            value = value[:, None]
        rows[name] = np.broadcast_to(value, mask.shape)[mask]
    return rows


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Row tables stacked, then sorted by session and time (stable, so deterministic)."""
    stacked = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    order = np.argsort(stacked["session"] * np.int64(2**36) + stacked["time"], kind="stable")  # time < 2^36 s
    return {name: values[order] for name, values in stacked.items()}
