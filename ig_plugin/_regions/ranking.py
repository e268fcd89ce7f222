"""XRAI's greedy ranking of overlapping regions by attribution density (Kapishnikov et al.,
2019), with PAIR saliency 0.2.1's semantics (``XRAI._xrai`` with ``_gain_density``).

Starting from an empty selection, each step adds the mask whose not-yet-selected pixels have the
highest mean attribution; a mask that would add fewer than ``min_pixel_diff`` new pixels is
dropped for good. The steps stop when no mask is left or once the selection covers more than
``area_threshold`` of the image; the pixels never selected form one last region, of their own
mean attribution. Every pixel gets the density its region had when it joined, so the map still
sums to the attribution's sum; regions are then ranked by that density, highest first (ties in
the order they joined).

PAIR recomputes every remaining mask's density from scratch at every step (K masks, P pixels:
K * P work per step). Here each mask's count and sum of unselected pixels are kept and only the
newly selected pixels are subtracted, so all the steps together cost K * P. The running sums are
float64 and can differ from a fresh float mean in the last bits, so the few masks within a small
tolerance of the best are compared again exactly as PAIR computes them (the mean, in the
attribution's dtype, of the new pixels in row-major order), and the first of them in mask order
wins ties: the ranking and the map are PAIR's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The tolerance, relative to the largest |attribution|, within which running densities are
#: checked again exactly. A float32 mean of up to millions of values is off by far less.
_RECHECK = 1e-5


@dataclass(frozen=True)
class RankedRegions:
    """XRAI's result for one image.

    Attributes
    ----------
    saliency
        ``(H, W)``: each pixel's value is the attribution density of the region it joined.
    ranks
        ``(H, W)`` ints from 1: the rank of each pixel's region, 1 for the most salient.
    """

    saliency: np.ndarray
    ranks: np.ndarray


def rank_regions(
    attribution: np.ndarray, masks: np.ndarray, min_pixel_diff: int, area_threshold: float
) -> RankedRegions:
    """Rank the regions of one image.

    Parameters
    ----------
    attribution
        ``(H, W)`` finite attributions (channels already merged).
    masks
        ``(K, H, W)`` booleans: the candidate regions, in the order that breaks ties.
    min_pixel_diff
        A mask adding fewer new pixels than this (>= 1) is dropped.
    area_threshold
        Stop adding masks once the selection covers more than this fraction of the image.
    """
    shape = attribution.shape
    values = attribution.reshape(-1)
    wide = values.astype(np.float64)
    flat = masks.reshape(len(masks), -1)
    counts = flat.sum(axis=1, dtype=np.int64)
    live = np.flatnonzero(counts >= min_pixel_diff)  # the others never get in (PAIR's 1st pass)
    flat, counts = flat[live], counts[live]
    sums = np.array([wide[mask].sum() for mask in flat], dtype=np.float64)
    tolerance = _RECHECK * float(np.max(np.abs(wide), initial=0.0)) + np.finfo(np.float64).tiny
    covered = np.zeros(values.size, dtype=bool)
    active = np.ones(len(flat), dtype=bool)
    saliency = np.full(values.size, -np.inf)
    joined: list[np.ndarray] = []
    gains: list[float] = []
    area = 0.0
    while area <= area_threshold:
        active &= counts >= min_pixel_diff
        candidates = np.flatnonzero(active)
        if not len(candidates):
            break
        density = sums[candidates] / counts[candidates]
        close = candidates[density >= density.max() - tolerance]
        exact = [values[flat[index] & ~covered].mean() for index in close]
        best = int(np.argmax(exact))  # the first of the highest, in mask order
        chosen, gain = close[best], exact[best]
        fresh = np.flatnonzero(flat[chosen] & ~covered)
        joined.append(fresh)
        gains.append(gain)
        covered[fresh] = True
        area = covered.mean()
        saliency[fresh] = gain
        active[chosen] = False
        rows = np.flatnonzero(active)
        overlap = flat[np.ix_(rows, fresh)]
        counts[rows] -= overlap.sum(axis=1, dtype=np.int64)
        sums[rows] -= overlap @ wide[fresh]
    order = sorted(range(len(gains)), key=lambda step: -gains[step])  # stable, as PAIR's
    ranks = np.zeros(values.size, dtype=np.int64)
    for rank, step in enumerate(order, start=1):
        ranks[joined[step]] = rank
    rest = ~covered
    if rest.any():
        saliency[rest] = values[rest].mean()
        ranks[rest] = len(order) + 1
    return RankedRegions(saliency.astype(values.dtype).reshape(shape), ranks.reshape(shape))
