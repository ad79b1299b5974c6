"""Synthetic product data shaped like GrowthBook's sample, with planted experiments of known effect.

``generate(db)`` replaces ``experiment_viewed``, ``orders``, ``pages``, ``sessions`` and ``events``
(``sql/growthbook/schema.sql``) and ``generator_truth`` (``sql/generator/schema.sql``) in one
transaction, simulating users in fixed-size chunks so memory stays bounded from 10 thousand to
10 million users. The same seed and arguments always write identical rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

from workbench.db.connection import SqlDatabase
from workbench.errors import WorkbenchError
from workbench.generator.planted import PLANTED_EXPERIMENTS, PlantedExperiment, truth_table

__all__ = ["PLANTED_EXPERIMENTS", "PlantedExperiment", "generate", "rows_per_user", "users_for_rows"]

SCHEMA = "growthbook/schema.sql"
TRUTH_SCHEMA = "generator/schema.sql"
CHUNK_USERS = 50_000  # fixed: part of what makes a seed reproducible, and the memory bound
MIN_USERS, MAX_USERS = 100, 100_000_000
MAX_DAYS = 3_650
CALIBRATION_USERS = 20_000


def checked_arguments(users: int, seed: int, days: int, start: str | date) -> datetime:
    """Validate ``generate``'s arguments; return ``start`` as a UTC midnight datetime."""
    if isinstance(users, bool) or not isinstance(users, int) or not MIN_USERS <= users <= MAX_USERS:
        raise WorkbenchError(
            f"users (--users) must be a whole number from {MIN_USERS:,} to {MAX_USERS:,}, not {users!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WorkbenchError(f"seed (--seed) must be a whole number of 0 or more, not {seed!r}.")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise WorkbenchError(f"days (--days) must be a whole number of days from 1 to {MAX_DAYS:,}, not {days!r}.")
    if isinstance(start, datetime):
        start = start.date()
    if not isinstance(start, date):
        try:
            start = date.fromisoformat(str(start))
        except ValueError:
            raise WorkbenchError(f"start (--start) must be a date like 2026-09-25, not {start!r}.") from None
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def generate(
    db: SqlDatabase, users: int = 10_000, seed: int = 1, days: int = 60, start: str | date = "2026-09-25"
) -> dict[str, int]:
    """Replace the five sample tables and ``generator_truth`` in ``db`` with ``users`` simulated users
    active over ``days`` days from ``start`` (UTC); return the rows written per table."""
    from workbench.db.bulk_write import write_transaction
    from workbench.db.sql_files import table_definitions
    from workbench.progress import progress_bar

    start_us = int(checked_arguments(users, seed, days, start).timestamp()) * 1_000_000
    tables = table_definitions(SCHEMA)
    truth = table_definitions(TRUTH_SCHEMA)["generator_truth"]
    counts = dict.fromkeys([*tables, truth.name], 0)
    bar = progress_bar(users, desc="Generating users", unit="user", unit_scale=True)
    try:
        with write_transaction(db) as writer:
            for table in [*tables.values(), truth]:
                writer.replace_table(table)
            counts[truth.name] = writer.append(truth, truth_table())
            for size, batches in _chunk_batches(users, seed, days, start_us):
                for name, batch in batches.items():
                    counts[name] += writer.append(tables[name], batch)
                bar.update(size)
    finally:
        bar.close()
    return counts


def _chunk_batches(users: int, seed: int, days: int, start_us: int) -> Iterator[tuple[int, dict]]:
    """(users, Arrow tables) per chunk of CHUNK_USERS users. The next chunk is simulated in a
    worker thread while the caller writes the current one, so at most two chunks are in memory."""
    import numpy as np

    from workbench.generator.arrow_tables import chunk_tables, id_salts
    from workbench.generator.simulation import simulate_chunk

    salts = id_salts(seed)
    firsts = range(0, users, CHUNK_USERS)

    def build(index: int) -> tuple[int, dict]:
        size = min(CHUNK_USERS, users - firsts[index])
        chunk = simulate_chunk(np.random.default_rng([seed, index]), firsts[index] + 1, size, days)
        return size, chunk_tables(chunk, salts, start_us)

    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(build, 0)
        for index in range(len(firsts)):
            ready = pending.result()
            if index + 1 < len(firsts):
                pending = worker.submit(build, index + 1)
            yield ready


def rows_per_user(days: int = 60) -> dict[str, float]:
    """Rows each simulated user adds to each of the five tables over ``days`` days, measured on
    20,000 users simulated in memory (about a quarter of a second; nothing is written)."""
    import numpy as np

    from workbench.generator.simulation import simulate_chunk

    checked_arguments(CALIBRATION_USERS, 1, days, "2026-09-25")
    counts = simulate_chunk(np.random.default_rng([1, 0]), 1, CALIBRATION_USERS, days).row_counts()
    return {table: rows / CALIBRATION_USERS for table, rows in counts.items()}


def users_for_rows(target_rows: int, table: str | None = None, days: int = 60) -> int:
    """How many users to generate for about ``target_rows`` rows in ``table`` (default: the five
    tables together), e.g. to size a benchmark at 1M, 10M or 50M rows."""
    ratios = rows_per_user(days)
    if table is not None and table not in ratios:
        raise WorkbenchError(f"table must be one of {sorted(ratios)} or None (all five), not {table!r}.")
    per_user = ratios[table] if table else sum(ratios.values())
    return max(MIN_USERS, math.ceil(target_rows / per_user))
