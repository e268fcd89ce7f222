"""Spearman's rank correlation, row by row (numpy and scipy only)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's correlation of each row of ``a`` with the same row of ``b`` (ties get their
    average rank), ``(n,)`` float64.

    A row whose values are all equal in ``a`` or in ``b`` has no ranking to agree with: its
    correlation is 0 (xplique's MuFidelity sets the undefined value to 0 too), not NaN.
    """
    ranks_a = rankdata(a.reshape(len(a), -1), axis=1)
    ranks_b = rankdata(b.reshape(len(b), -1), axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    scale = np.sqrt((ranks_a**2).sum(axis=1) * (ranks_b**2).sum(axis=1))
    products = (ranks_a * ranks_b).sum(axis=1)
    correlations: np.ndarray = np.divide(products, scale, out=np.zeros(len(a)), where=scale > 0)
    return np.clip(correlations, -1.0, 1.0)
