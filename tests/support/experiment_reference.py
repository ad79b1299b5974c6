"""An independent pandas computation of GrowthBook's experiment semantics, straight from the raw
CSV files of GrowthBook's sample (never through our SQL): the oracle for the experiment engine.

The metric definitions below restate, in pandas, the metrics of the repository's ``workbench.yml``.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

MULTIPLE = "__multiple__"


@cache
def raw(sample_dir: Path, stem: str) -> pd.DataFrame:
    """One CSV file with ``\\N`` as NaN and timestamps parsed."""
    frame = pd.read_csv(Path(sample_dir) / f"{stem}.csv.gz", dtype=str, keep_default_na=False, na_values=[r"\N"])
    for col in ("timestamp", "sessionStart"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], format="%Y-%m-%d %H:%M:%S")
    for col in ("amount", "qty", "duration", "pages", "value"):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col]).astype(float)
    return frame


def units(
    sample_dir: Path, key: str, start, end, unit_col: str = "userId", dimension: str | None = None, top_n: int = 20
) -> pd.DataFrame:
    """``unit, variation, first_exposure[, dim]``: every unit exposed in [start, end]."""
    views = raw(sample_dir, "experimentViews")
    ev = views[(views["experimentId"] == key) & (views["timestamp"] >= start) & (views["timestamp"] <= end)]
    order = ["timestamp", "variationId"] + ([dimension] if dimension else [])
    ev = ev.sort_values(order, kind="stable")
    first = ev.groupby(unit_col, sort=False).head(1).set_index(unit_col)
    n_variations = ev.groupby(unit_col)["variationId"].nunique()
    out = pd.DataFrame(
        {
            "unit": first.index,
            "first_exposure": first["timestamp"].to_numpy(),
            "variation": first["variationId"].to_numpy(),
        }
    )
    out.loc[out["unit"].map(n_variations).to_numpy() > 1, "variation"] = MULTIPLE
    if dimension:
        out["dim"] = first[dimension].fillna("(null)").to_numpy()
        counts = out["dim"].value_counts()
        ranked = sorted(counts.index, key=lambda v: (-counts[v], v))
        keep = set(ranked[:top_n])
        out["dim"] = out["dim"].where(out["dim"].isin(keep), "(other)")
    return out.reset_index(drop=True)


def identity_pairs(sample_dir: Path) -> pd.DataFrame:
    views = raw(sample_dir, "experimentViews")
    return views[["userId", "anonymousId"]].dropna().drop_duplicates()


def metric_rows(sample_dir: Path, name: str) -> tuple[pd.DataFrame, str]:
    """Rows of a base metric as ``(frame with userId/anonymousId, ts, value), keyed columns``."""
    if name in (
        "purchased",
        "revenue_per_user",
        "orders_per_user",
        "revenue_per_user_cuped",
        "order_amount_p90",
        "bulk_buyer",
    ):
        o = raw(sample_dir, "purchases")
        if name == "bulk_buyer":  # the fact metric's row_filter: qty > 1
            o = o[o["qty"] > 1]
        return pd.DataFrame(
            {"userId": o["userId"], "anonymousId": o["anonymousId"], "ts": o["timestamp"], "value": o["amount"]}
        ), "both"
    if name == "page_views_per_user":
        p = raw(sample_dir, "pageViews")
        return pd.DataFrame({"anonymousId": p["anonymousId"], "ts": p["timestamp"], "value": 1.0}), "anonymousId"
    if name in ("retention_rate", "sessions_per_user", "session_duration"):
        s = raw(sample_dir, "sessions")
        return pd.DataFrame(
            {"userId": s["userId"], "anonymousId": s["anonymousId"], "ts": s["sessionStart"], "value": s["duration"]}
        ), "both"
    if name == "sessions_with_searches":
        e = raw(sample_dir, "events")
        e = e[e["event"] == "Search"].groupby(["userId", "anonymousId", "sessionId"], as_index=False)["timestamp"].min()
        return pd.DataFrame(
            {"userId": e["userId"], "anonymousId": e["anonymousId"], "ts": e["timestamp"], "value": 1.0}
        ), "both"
    if name == "added_to_cart":
        e = raw(sample_dir, "events")
        e = e[e["event"] == "Add to Cart"]
        return pd.DataFrame(
            {"userId": e["userId"], "anonymousId": e["anonymousId"], "ts": e["timestamp"], "value": np.nan}
        ), "both"
    raise KeyError(name)


# name -> (kind, delay hours, window hours, absolute cap, percentile cap, cuped lookback days)
BASE = {
    "purchased": ("binomial", 0, None, None, None, None),
    "revenue_per_user": ("mean", 0, None, None, None, None),
    "orders_per_user": ("count", 0, None, None, None, None),
    "bulk_buyer": ("binomial", 0, None, None, None, None),
    "revenue_per_user_cuped": ("mean", 0, None, 100.0, None, 14),
    "page_views_per_user": ("count", 0, None, None, None, 7),
    "retention_rate": ("binomial", 24, None, None, None, None),
    "sessions_per_user": ("count", 0, None, None, None, None),
    "session_duration": ("duration", 0, None, None, 0.99, 7),
    "sessions_with_searches": ("count", 0, None, None, None, None),
    "added_to_cart": ("binomial", 0, 72, None, None, None),
}
RATIOS = {
    "average_order_value": ("revenue_per_user", "orders_per_user"),
    "pages_per_session": ("page_views_per_user", "sessions_per_user"),
}


def _rows_for_units(sample_dir: Path, name: str, u: pd.DataFrame, unit_col: str) -> pd.DataFrame:
    rows, keyed = metric_rows(sample_dir, name)
    if keyed == "both" or keyed == unit_col:
        joined = rows.rename(columns={unit_col: "unit"})
    else:  # through the identity join
        pairs = identity_pairs(sample_dir).rename(columns={unit_col: "unit"})
        other = "anonymousId" if unit_col == "userId" else "userId"
        joined = rows.merge(pairs[["unit", other]], on=other)
    return joined[["unit", "ts", "value"]].merge(u[["unit", "first_exposure"]], on="unit")


def per_unit(sample_dir: Path, name: str, u: pd.DataFrame, end, unit_col: str = "userId") -> pd.DataFrame:
    """``main`` (capped), ``pre`` (CUPED covariate, capped) and ``rows`` per unit of ``u``."""
    kind, delay, hours, cap_abs, cap_pct, lookback = BASE[name]
    r = _rows_for_units(sample_dir, name, u, unit_col)
    lo = r["first_exposure"] + pd.Timedelta(hours=delay)
    hi = r["first_exposure"] + pd.Timedelta(hours=delay + hours) if hours is not None else pd.Timestamp(end)
    counted = r[(r["ts"] >= lo) & (r["ts"] <= hi)]
    out = pd.DataFrame({"unit": u["unit"]}).set_index("unit")
    out["rows"] = counted.groupby("unit").size().reindex(out.index).fillna(0)
    if kind == "binomial":
        out["main"] = (out["rows"] > 0).astype(float)
    elif kind == "count":
        out["main"] = out["rows"].astype(float)
    else:
        out["main"] = counted.groupby("unit")["value"].sum(min_count=1).reindex(out.index).fillna(0.0)
    if lookback:
        pre_rows = r[(r["ts"] >= r["first_exposure"] - pd.Timedelta(days=lookback)) & (r["ts"] < r["first_exposure"])]
        if kind in ("mean", "duration"):
            out["pre"] = pre_rows.groupby("unit")["value"].sum(min_count=1).reindex(out.index).fillna(0.0)
        else:
            n = pre_rows.groupby("unit").size().reindex(out.index).fillna(0).astype(float)
            out["pre"] = (n > 0).astype(float) if kind == "binomial" else n
    cap = cap_abs
    if cap_pct is not None:
        values = np.sort(out["main"].to_numpy())
        cap = values[math.ceil(len(values) * cap_pct) - 1]
    if cap is not None:
        out["main"] = out["main"].clip(upper=cap)
        if "pre" in out:
            out["pre"] = out["pre"].clip(upper=cap)
    return out


def sufficient_stats(
    sample_dir: Path, key: str, start, end, variations, metrics, unit_col="userId", dimension=None, top_n=20
) -> pd.DataFrame:
    """Rows ``metric, dimension_value, variation, users, count, main_sum, …`` (overall: ``all``)."""
    u = units(sample_dir, key, start, end, unit_col, dimension, top_n)
    u = u[u["variation"].isin(variations)].reset_index(drop=True)
    groups = [("all", u)] + ([(v, u[u["dim"] == v]) for v in sorted(u["dim"].unique())] if dimension else [])
    rows = []
    for name in metrics:
        if name == "order_amount_p90":
            r = _rows_for_units(sample_dir, name, u, unit_col)
            r = r[(r["ts"] >= r["first_exposure"]) & (r["ts"] <= pd.Timestamp(end)) & r["value"].notna()].merge(
                u[["unit", "variation"] + (["dim"] if dimension else [])], on="unit"
            )
        else:
            parts = RATIOS.get(name, (name, None))
            main = per_unit(sample_dir, parts[0], u, end, unit_col)
            den = per_unit(sample_dir, parts[1], u, end, unit_col) if parts[1] else None
        for value, gu in groups:
            for var in variations:
                vu = gu[gu["variation"] == var]["unit"]
                row = {"metric": name, "dimension_value": value, "variation": var, "users": len(vu)}
                if name == "order_amount_p90":
                    sel = (
                        r[r["variation"] == var] if value == "all" else r[(r["variation"] == var) & (r["dim"] == value)]
                    )
                    row |= quantile_stats(sel["value"].to_numpy(), 0.9)
                    row |= cluster_sums(sel, row["quantile"])
                    row |= {"count": row["quantile_n"], "quantile_nstar": row["quantile_n"], "quantile_level": 0.9}
                else:
                    a = main.loc[vu, "main"].to_numpy()
                    row |= {"count": len(vu), "main_sum": a.sum(), "main_sum_squares": (a * a).sum()}
                    if den is not None:
                        b = den.loc[vu, "main"].to_numpy()
                        row |= {
                            "denominator_sum": b.sum(),
                            "denominator_sum_squares": (b * b).sum(),
                            "main_denominator_sum_product": (a * b).sum(),
                        }
                    if "pre" in main and den is None:  # ratios carry no covariate
                        c = main.loc[vu, "pre"].to_numpy()
                        row |= {
                            "covariate_sum": c.sum(),
                            "covariate_sum_squares": (c * c).sum(),
                            "main_covariate_sum_product": (a * c).sum(),
                        }
                rows.append(row)
    return pd.DataFrame(rows)


def cluster_sums(rows: pd.DataFrame, quantile: float) -> dict:
    """GrowthBook's per-unit sums of an event quantile over ``rows`` (``unit``, ``value``): sᵢ the
    unit's values at or below ``quantile``, nᵢ its values (units without rows add 0)."""
    s = (rows["value"] <= quantile).groupby(rows["unit"]).sum().to_numpy(float)
    n = rows.groupby("unit").size().to_numpy(float)
    return {
        "main_sum": s.sum(),
        "main_sum_squares": (s * s).sum(),
        "denominator_sum": n.sum(),
        "denominator_sum_squares": (n * n).sum(),
        "main_denominator_sum_product": (s * n).sum(),
    }


def quantile_stats(values: np.ndarray, q: float) -> dict:
    """Nearest-rank quantile and the order statistics at n·q ∓ 1.96·sqrt(n·q·(1−q))."""
    v = np.sort(values)
    n = len(v)
    if n == 0:
        return {"quantile_n": 0, "quantile": np.nan, "quantile_lower": np.nan, "quantile_upper": np.nan}
    nq = n * q
    half = 1.96 * math.sqrt(nq * (1 - q))
    lower, upper = max(math.floor(nq - half), 1), min(math.ceil(nq + half), n)
    return {
        "quantile_n": n,
        "quantile": v[math.ceil(nq) - 1],
        "quantile_lower": v[lower - 1],
        "quantile_upper": v[upper - 1],
    }
