"""Adjusted p-values for many metrics × variations tested at once.

Holm (1979) "A simple sequentially rejective multiple test procedure" controls the family-wise
error rate; Benjamini & Hochberg (1995) "Controlling the false discovery rate" controls the false
discovery rate. NaN p-values (comparisons that could not be made) are left out of the family and
stay NaN.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["none", "holm", "bh"]
CORRECTIONS = ("none", "holm", "bh")


def holm_bonferroni(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down: sorted ascending, ``p̃₍ᵢ₎ = max_{j≤i} min(1, (m-j+1)·p₍ⱼ₎)`` (Holm 1979)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """BH step-up: sorted ascending, ``p̃₍ᵢ₎ = min_{j≥i} min(1, m·p₍ⱼ₎/j)`` (Benjamini & Hochberg 1995)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = m * p[order] / np.arange(1, m + 1)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


def adjusted_p_values(p_values: Sequence[float], correction: Correction) -> np.ndarray:
    """``p_values`` adjusted by ``correction`` ("holm" or "bh"; "none" returns them unchanged)."""
    if correction == "holm":
        return holm_bonferroni(p_values)
    if correction == "bh":
        return benjamini_hochberg(p_values)
    if correction == "none":
        return np.asarray(p_values, dtype=float)
    raise ValueError(f"correction {correction!r} is not one of {', '.join(CORRECTIONS)}.")
