"""Turn a simulated :class:`Chunk` into Arrow tables shaped like GrowthBook's sample tables.

Text columns are Arrow dictionary arrays (row → session or label), which both DuckDB's Arrow scan
and the CSV writer for PostgreSQL's ``COPY`` read as plain text. Identifiers look like GrowthBook's: ``userId`` is the user number as text, ``anonymousId`` is
``<Browser><userId>__<random>`` (the browser and random number of the session that set the cookie),
``sessionId`` is 16 hex digits. Ids come from a keyed bijective hash of (user, session number), so
they are unique without any bookkeeping and identical for the same seed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.generator.planted import PLANTED_EXPERIMENTS, PlantedExperiment
from workbench.generator.simulation import BROWSERS, COUNTRIES, EVENTS, PATHS, Chunk

HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
MICROSECONDS = 1_000_000


def id_salts(seed: int) -> np.ndarray:
    """Two 64-bit keys derived from ``seed``: for session ids and for anonymous-id random parts."""
    return np.random.SeedSequence(seed).generate_state(2, np.uint64)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijection of uint64 that looks random."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hex16(values: np.ndarray) -> pa.Array:
    """Each uint64 as 16 lower-case hex digits, built without a Python loop."""
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    chars = HEX_DIGITS[((values[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]
    offsets = np.arange(0, 16 * (len(values) + 1), 16, dtype=np.int32)
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def chunk_tables(
    chunk: Chunk,
    salts: np.ndarray,
    start_us: int,
    experiments: tuple[PlantedExperiment, ...] = PLANTED_EXPERIMENTS,
) -> dict[str, pa.Table]:
    """The five tables' rows for ``chunk``; ``start_us`` is the period's start in epoch microseconds."""
    user_id = chunk.user_ids[chunk.session_user]
    session_key = (user_id.astype(np.uint64) << np.uint64(8)) | chunk.session_number.astype(np.uint64)
    user_text = pc.cast(pa.array(user_id), pa.string())
    browser_text = pa.array(BROWSERS).take(pa.array(chunk.session_browser))
    cookie_random = (splitmix64(session_key[chunk.cookie_session] + salts[1]) >> np.uint64(11)) * 2.0**-53
    anonymous_id = pc.binary_join_element_wise(
        browser_text.take(pa.array(chunk.cookie_session)),
        user_text,
        "__",
        pc.cast(pa.array(cookie_random), pa.string()),
        "",
    )
    identity = {
        "userId": user_text,
        "anonymousId": anonymous_id,
        "sessionId": hex16(splitmix64(session_key + salts[0])),
        "browser": browser_text,
        "country": _labels(chunk.country[chunk.session_user], COUNTRIES).cast(pa.string()),
    }

    def table(rows: dict[str, np.ndarray], time_column: str = "timestamp", **columns: pa.Array) -> pa.Table:
        session = pa.array(rows["session"])
        data = {name: pa.DictionaryArray.from_arrays(session, values) for name, values in identity.items()}
        data[time_column] = _timestamps(rows["time"], start_us)
        return pa.table({**data, **columns})

    exposures = chunk.exposures
    orders = chunk.orders
    return {
        "experiment_viewed": table(
            exposures,
            experimentId=_labels(exposures["experiment"], [e.key for e in experiments]),
            variationId=pc.cast(pa.array(exposures["variation"]), pa.string()),
        ),
        "orders": table(
            orders,
            qty=pa.array(orders["qty"], pa.int32()),
            amount=pa.array(orders["amount"], pa.int32(), mask=orders["amount_missing"]),
        ),
        "pages": table(chunk.pages, path=_labels(chunk.pages["path"], PATHS)),
        "sessions": table(
            {"session": np.arange(len(chunk.session_user)), "time": chunk.session_start},
            "sessionStart",
            pages=pa.array(chunk.session_pages, pa.int32()),
            duration=pa.array(chunk.session_duration, pa.int32()),
        ),
        "events": table(
            chunk.events,
            value=pa.array(chunk.events["value"], pa.int32()),
            event=_labels(chunk.events["event"], EVENTS),
        ),
    }


def _labels(codes: np.ndarray, labels) -> pa.DictionaryArray:
    """Text columns as dictionary arrays: ``labels[code]`` per row, without copying strings."""
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(list(labels), pa.string()))


def _timestamps(seconds: np.ndarray, start_us: int) -> pa.Array:
    return pa.array(start_us + seconds.astype(np.int64) * MICROSECONDS, pa.timestamp("us"))
