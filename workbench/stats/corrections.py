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


def _ranked(p_values: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The p-values as floats, an all-NaN output of their shape, and the positions of the non-NaN
    ones in ascending order of p (NaNs are left out of the family and stay NaN)."""
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    return p, np.full(p.shape, np.nan), valid[np.argsort(p[valid], kind="stable")]


def holm_bonferroni(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down: sorted ascending, ``p̃₍ᵢ₎ = max_{j≤i} min(1, (m-j+1)·p₍ⱼ₎)`` (Holm 1979)."""
    p, out, order = _ranked(p_values)
    m = len(order)
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """BH step-up: sorted ascending, ``p̃₍ᵢ₎ = min_{j≥i} min(1, m·p₍ⱼ₎/j)`` (Benjamini & Hochberg 1995)."""
    p, out, order = _ranked(p_values)
    m = len(order)
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
