"""``n_steps="auto"``: each sample's path refined until its estimated error meets the tolerance.

Numpy only; the gradients come from ``attribute_level``. The rule is Romberg's: trapezoid rules
on 1, 2, 4, ... intervals, nested (level L adds the 2**(L-1) midpoints of level L - 1's
intervals, so no gradient is computed twice), with Richardson extrapolation across levels. A
sample's estimate at level L is the extrapolated value. Its error estimate is the larger of the
sum over features of ``|estimate_L - estimate_(L-1)|`` (the size of the last refinement, which
covers every single feature) and its completeness gap ``|sum(estimate_L) - (F(x) - F(x'))|``
beyond the outputs' own rounding (a lower bound of the summed error that costs nothing: it
catches a sharp feature that the first nodes all missed, where successive levels agree by
chance). A sample stops as soon as that is at
most ``tolerance * max(|F(x) - F(x')|, 1e-12)``; the others go on to the next level, so samples
that are done stop costing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ig_plugin._integral.completeness import attribution_sums

#: Columns of the Romberg table: extrapolating further assumes more smoothness than the path
#: integrands of ReLU networks have (their gradients jump), and buys little on smooth ones.
MAX_EXTRAPOLATIONS = 3

#: ``attribute_level(active, alphas)``: per attributed tensor, ``(x - x') * sum_a grad(a)`` over
#: the nodes ``alphas`` for the samples ``active`` (indices into X), float64.
AttributeLevel = Callable[[np.ndarray, np.ndarray], list[np.ndarray]]


def deepest_level(max_steps: int) -> int:
    """The last level whose gradient evaluations per sample, ``2**L + 1``, fit ``max_steps``."""
    return (max_steps - 1).bit_length() - 1  # floor(log2(max_steps - 1)), in integers


def level_nodes(level: int) -> np.ndarray:
    """The nodes a level adds: both ends at level 0, then the midpoints of the previous level."""
    if level == 0:
        return np.array([0.0, 1.0])
    return (2.0 * np.arange(1, 2 ** (level - 1) + 1) - 1.0) / 2.0**level


def integrate_auto(
    attribute_level: AttributeLevel,
    changes: np.ndarray,
    rounding: np.ndarray,
    allowed_errors: np.ndarray,
    max_steps: int,
    many: bool = False,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Refine each sample until its error estimate is at most its ``allowed_errors``.

    Parameters
    ----------
    attribute_level
        Unweighted gradient sums on a set of nodes (:data:`AttributeLevel`).
    changes
        Each sample's ``F(x) - F(x')``, what its attributions must add up to: ``(N,)`` or with
        ``many`` ``(N, K)``.
    rounding
        How far the model's rounding of its outputs alone can move ``changes``: a completeness
        gap within it says nothing about the integration.
    allowed_errors
        Each sample's bound on its error estimate, shaped like ``changes``.
    max_steps
        Most gradient evaluations per sample.
    many
        The sums have a K axis after the sample (several targets); a sample stops when all
        its targets meet their bounds.

    Returns
    -------
    attributions, n_steps, error_estimates
        Per attributed tensor the attributions (float64); the gradient evaluations each sample
        took, ``(N,)``; and the error estimates, shaped like ``allowed_errors``.
    """
    n_samples = len(changes)
    last = deepest_level(max_steps)
    active = np.arange(n_samples)
    results: list[np.ndarray] = []
    n_steps = np.zeros(n_samples, dtype=np.int64)
    errors = np.zeros(allowed_errors.shape)
    previous_row: list[list[np.ndarray]] = []
    for level in range(last + 1):
        sums = attribute_level(active, level_nodes(level))
        if not results:
            results = [np.zeros((n_samples, *s.shape[1:])) for s in sums]
        width = 2.0**-level
        if level == 0:
            trapezoid = [0.5 * s for s in sums]  # one interval: the ends at half weight
        else:
            trapezoid = [0.5 * t + width * s for t, s in zip(previous_row[0], sums, strict=True)]
        row = [trapezoid]
        for m in range(1, min(level, MAX_EXTRAPOLATIONS) + 1):
            factor = 4.0**m - 1.0
            row.append(
                [r + (r - p) / factor for r, p in zip(row[m - 1], previous_row[m - 1], strict=True)]
            )
        if level > 0:
            best, before = row[-1], previous_row[-1]
            steps = [np.abs(b - p) for b, p in zip(best, before, strict=True)]
            refinement = attribution_sums(steps, many)
            gap = np.abs(attribution_sums(best, many) - changes[active]) - rounding[active]
            error = np.maximum(refinement, gap)
            met = error <= allowed_errors[active]
            done = met if not many else met.all(axis=1)
            if level == last:
                _warn_if_unmet(int((~done).sum()), max_steps)
                done = np.ones_like(done)
            finished = active[done]
            for result, value in zip(results, best, strict=True):
                result[finished] = value[done]
            n_steps[finished] = 2**level + 1
            errors[finished] = error[done]
            keep = ~done
            active = active[keep]
            row = [[v[keep] for v in column] for column in row]
        previous_row = row
        if not active.size:
            break
    return results, n_steps, errors


def _warn_if_unmet(count: int, max_steps: int) -> None:
    if count:
        warnings.warn(
            f"{count} samples reached max_steps={max_steps} without meeting the tolerance; "
            "their attributions are the most refined ones, and `error_estimates` says how far "
            "they are. Raise max_steps or the tolerance.",
            UserWarning,
            stacklevel=4,
        )
