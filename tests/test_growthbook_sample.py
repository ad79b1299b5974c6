"""The GrowthBook sample loader, on DuckDB and PostgreSQL, against GrowthBook's own files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from support.seed000 import ASSIGNMENT_SQL as SEED_ASSIGNMENT_SQL
from workbench.errors import DataFileError
from workbench.growthbook_sample import FILE_TABLES, load_growthbook_sample

EXPECTED_ROWS = {"experiment_viewed": 120_280, "orders": 7_093, "pages": 117_882, "sessions": 28_042, "events": 65_350}


def test_row_counts_match_the_files(growthbook_url):
    db = wb.connect(growthbook_url)
    counts = {t: int(db.sql(f"SELECT COUNT(*) AS n FROM {t}")["n"].iloc[0]) for t in EXPECTED_ROWS}
    assert counts == EXPECTED_ROWS


def test_seed_sql_runs_unchanged_with_real_types(growthbook_url, sample_dir):
    db = wb.connect(growthbook_url)
    frame = db.sql(SEED_ASSIGNMENT_SQL + " ORDER BY timestamp, user_id, experiment_id, variation_id", limit=None)
    assert list(frame.columns) == ["user_id", "timestamp", "experiment_id", "variation_id", "browser", "country"]
    assert pd.api.types.is_datetime64_any_dtype(frame["timestamp"])
    raw = pd.read_csv(sample_dir / "experimentViews.csv.gz", dtype=str)
    assert len(frame) == len(raw)
    assert frame["timestamp"].min() == pd.Timestamp(raw["timestamp"].min())
    assert set(frame["experiment_id"]) == set(raw["experimentId"])
    identity = db.sql("SELECT userId AS user_id, anonymousId AS anonymous_id FROM experiment_viewed", limit=None)
    assert identity.groupby("user_id")["anonymous_id"].nunique().max() > 1  # cookies cleared: the join matters


def test_null_amounts_are_fifteen_percent(growthbook_url, sample_dir):
    db = wb.connect(growthbook_url)
    stats = db.sql(
        "SELECT COUNT(*) AS n, COUNT(amount) AS with_amount, SUM(amount) AS total, SUM(qty) AS qty FROM orders"
    )
    raw = pd.read_csv(sample_dir / "purchases.csv.gz", dtype=str)
    nulls = (raw["amount"] == r"\N").sum()
    assert int(stats["n"].iloc[0]) - int(stats["with_amount"].iloc[0]) == nulls
    assert 0.14 < nulls / len(raw) < 0.16
    assert int(stats["total"].iloc[0]) == raw.loc[raw["amount"] != r"\N", "amount"].astype(int).sum()
    assert int(stats["qty"].iloc[0]) == raw["qty"].astype(int).sum()


def test_loading_twice_replaces(backend, sample_dir):
    url = backend.new_url("load_twice")
    db = wb.connect(url, read_only=False)
    first = load_growthbook_sample(db, sample_dir)
    second = load_growthbook_sample(db, sample_dir)
    assert first == second == EXPECTED_ROWS
    assert int(db.sql("SELECT COUNT(*) AS n FROM sessions")["n"].iloc[0]) == EXPECTED_ROWS["sessions"]
    db.dispose()


def _copy_sample(sample_dir: Path, target: Path, plain: bool = False) -> Path:
    target.mkdir()
    for stem in FILE_TABLES:
        source = sample_dir / f"{stem}.csv.gz"
        if plain:
            with gzip.open(source, "rb") as src, open(target / f"{stem}.csv", "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copy(source, target / source.name)
    return target


def test_plain_csv_files_load_too(tmp_path, sample_dir):
    folder = _copy_sample(sample_dir, tmp_path / "plain", plain=True)
    db = wb.connect(f"duckdb:///{tmp_path / 'plain.duckdb'}", read_only=False)
    assert load_growthbook_sample(db, folder) == EXPECTED_ROWS
    db.dispose()


def _corrupt_line(path: Path, line_no: int, replace: tuple[str, str]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    assert replace[0] in lines[line_no - 1]
    lines[line_no - 1] = lines[line_no - 1].replace(*replace, 1)
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    "stem, line, replace, message",
    [
        ("purchases", 42, (",2026-", ",2026-13-"), "line 42: column timestamp"),
        ("sessions", 7, (",US,", ",US,,"), "line 7"),
        ("purchases", 100, (",Chrome,", ",Chrome,extra,"), "line 100"),
        ("events", 5, (",Add to Cart", ",Add to Cart,"), "line 5"),
        ("events", 9, ("2,287,", "two,287,"), "line 9: column value"),
        ("purchases", 3, (",15", ",15.5"), "line 3: column amount"),
    ],
)
def test_a_malformed_row_names_file_and_line_and_loads_nothing(
    backend, tmp_path, sample_dir, stem, line, replace, message
):
    folder = _copy_sample(sample_dir, tmp_path / "bad", plain=True)
    url = backend.new_url(f"bad_{stem}_{line}")
    db = wb.connect(url, read_only=False)
    good = _copy_sample(sample_dir, tmp_path / "good")
    load_growthbook_sample(db, good)
    _corrupt_line(folder / f"{stem}.csv", line, replace)
    with pytest.raises(DataFileError) as caught:
        load_growthbook_sample(db, folder)
    assert f"{stem}.csv" in str(caught.value) and message in str(caught.value)
    # the earlier good load is intact: nothing half-way
    assert int(db.sql("SELECT COUNT(*) AS n FROM orders")["n"].iloc[0]) == EXPECTED_ROWS["orders"]
    db.dispose()


def test_a_missing_file_is_named(tmp_path, sample_dir):
    folder = _copy_sample(sample_dir, tmp_path / "partial")
    (folder / "pageViews.csv.gz").unlink()
    db = wb.connect(f"duckdb:///{tmp_path / 'partial.duckdb'}", read_only=False)
    with pytest.raises(DataFileError, match=r"pageViews.csv"):
        load_growthbook_sample(db, folder)
    db.dispose()


def test_a_failure_mid_transaction_keeps_the_previous_tables(backend, tmp_path, sample_dir, monkeypatch):
    from workbench.db import bulk_write

    db = wb.connect(backend.new_url("mid_failure"), read_only=False)
    load_growthbook_sample(db, sample_dir)
    calls = {"n": 0}
    original = bulk_write.BulkWriter.append

    def failing_append(self, table, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk full")
        return original(self, table, batch)

    monkeypatch.setattr(bulk_write.BulkWriter, "append", failing_append)
    with pytest.raises(wb.WorkbenchError, match="nothing was kept"):
        load_growthbook_sample(db, sample_dir)
    monkeypatch.undo()
    counts = {t: int(db.sql(f"SELECT COUNT(*) AS n FROM {t}")["n"].iloc[0]) for t in EXPECTED_ROWS}
    assert counts == EXPECTED_ROWS
    db.dispose()
