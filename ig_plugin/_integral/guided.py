"""Guided Integrated Gradients (Kapishnikov et al., 2021): the path chosen step by step.

At every step the features whose gradients are smallest in magnitude move toward the input, each
kept within ``max_dist`` (in the path's fraction) of the straight line, until the path's L1
distance to the input has shrunk by ``1 / n_steps`` of the whole; the attributions are the sums
of ``gradient * move``. The semantics are PAIR saliency's ``guided_ig_impl`` (0.2.1), which walks
one sample at a time; here the samples of X walk together (``internal_batch_size`` at a time),
each on its own path, and each step asks
:meth:`~ig_plugin._engine.compiled.CompiledModel.gradients_at` for the gradients of all of them
in one compiled pass. The rest of a step is numpy on
``(N, n_features)`` arrays, in float64 as in PAIR.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ig_plugin._integral.driver import Paths

#: PAIR's closeness of the L1 distance to its target at the end of a step (``math.isclose``).
EPSILON = 1e-9


class GuidedSettings(NamedTuple):
    """Guided IG's settings: steps, the fraction of features moved together, how far from the
    straight line a feature may be (a fraction of the path), and whether IDGI sums the steps."""

    n_steps: int
    fraction: float
    max_dist: float
    idgi: bool = False


class _Walk(NamedTuple):
    """Every sample's flattened input, baseline, their difference and L1 distance (float64)."""

    inputs: np.ndarray
    baselines: np.ndarray
    differences: np.ndarray
    l1_total: np.ndarray

    def at(self, alpha: float) -> np.ndarray:
        """The straight line's points at ``alpha``, every sample."""
        return self.baselines + self.differences * alpha


def _isclose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``math.isclose(a, b, rel_tol=EPSILON, abs_tol=EPSILON)``, elementwise."""
    return np.abs(a - b) <= np.maximum(EPSILON * np.maximum(np.abs(a), np.abs(b)), EPSILON)


def _step(
    walk: _Walk,
    x: np.ndarray,
    gradients: np.ndarray,
    step: int,
    settings: GuidedSettings,
    moving: np.ndarray,
) -> np.ndarray:
    """Move the points ``x`` (in place) of the ``moving`` samples through step ``step``; return
    each sample's ``sum over moves of (x_new - x_old) * gradient`` per feature."""
    alpha = (step + 1.0) / settings.n_steps
    alpha_min, alpha_max = max(alpha - settings.max_dist, 0.0), min(alpha + settings.max_dist, 1.0)
    x_min, x_max = walk.at(alpha_min), walk.at(alpha_max)
    l1_target = walk.l1_total * (1 - (step + 1) / settings.n_steps)
    guide = gradients.copy()  # features at x_max are marked +inf here, for this step
    moved = np.zeros_like(x)
    going = moving.copy()
    # Every round moves at least one more feature to x_max, so the rounds end; the bound only
    # guards against a round that cannot (PAIR would loop forever there).
    for _ in range(x.shape[1] + 2):
        rows = np.flatnonzero(going)
        if rows.size == 0:
            break
        xs, old = x[rows], x[rows].copy()
        lows, highs = x_min[rows], x_max[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            alphas = np.where(walk.differences[rows] != 0, (xs - walk.baselines[rows]), np.nan)
            alphas = alphas / walk.differences[rows]
        alphas[np.isnan(alphas)] = alpha_max
        # Features that fell behind the allowed interval catch up to its low end.
        behind = alphas < alpha_min
        xs[behind] = lows[behind]
        l1_current = np.abs(xs - walk.inputs[rows]).sum(axis=1)
        close = _isclose(l1_target[rows], l1_current)
        rows_guide = guide[rows]
        rows_guide[xs == highs] = np.inf
        threshold = np.quantile(
            np.abs(rows_guide), settings.fraction, axis=1, method="lower", keepdims=True
        )
        selected = (np.abs(rows_guide) <= threshold) & (rows_guide != np.inf)
        l1_selected = (np.abs(xs - highs) * selected).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(l1_selected > 0, (l1_current - l1_target[rows]) / l1_selected, np.inf)
        # gamma > 1: the selected features cannot close the gap; they go as far as allowed.
        fully = gamma > 1.0
        partly = xs + (highs - xs) * np.where(fully, 0.0, gamma)[:, np.newaxis]
        targets = np.where(fully[:, np.newaxis], highs, partly)
        xs = np.where(selected & ~close[:, np.newaxis], targets, xs)
        moved[rows] += (xs - old) * gradients[rows]
        x[rows], guide[rows] = xs, rows_guide
        going[rows] = ~close & fully
    return moved


def guided_attributions(
    paths: Paths, settings: GuidedSettings, end_outputs: np.ndarray
) -> np.ndarray:
    """Every sample's Guided IG attributions, shaped and typed like X.

    ``paths`` holds one attributed tensor (the model's one input) and a rule of one target per
    sample; ``end_outputs`` are the explained outputs at X (float64, ``(N,)``), the path's last
    point, which IDGI needs. The samples walk in blocks of ``paths.gradient_points``
    (``internal_batch_size``, or what "auto" chooses), one gradient pass per step for a whole
    block, so the walks' state (a few float64 copies of the block's features) is bounded
    whatever N.

    With ``settings.idgi`` the attributions are IDGI's on the guided path's points ``x_0`` (the
    baseline) to ``x_m`` (X): ``sum_i g_i**2 / |g_i|**2 * (F(x_{i+1}) - F(x_i))``.
    """
    blocks = []
    for first in range(0, paths.n_rows, paths.gradient_points):
        rows = np.arange(first, min(first + paths.gradient_points, paths.n_rows))
        block = paths if len(rows) == paths.n_rows else paths.subset(rows)
        blocks.append(_walk(block, settings, end_outputs[rows]))
    return np.concatenate(blocks)


def _walk(paths: Paths, settings: GuidedSettings, end_outputs: np.ndarray) -> np.ndarray:
    """:func:`guided_attributions` of one block of samples, all stepped together."""
    shape, dtype = paths.ends.ends[0].shape, paths.ends.ends[0].dtype
    n_rows = shape[0]
    inputs = paths.ends.ends[0].reshape(n_rows, -1).astype(np.float64)
    baselines = paths.ends.starts[0].reshape(n_rows, -1).astype(np.float64)
    differences = inputs - baselines
    walk = _Walk(inputs, baselines, differences, np.abs(differences).sum(axis=1))
    # A sample at its baseline has zero attributions (PAIR returns them at once).
    moving = walk.l1_total != 0
    samples = np.arange(n_rows)
    x = baselines.copy()
    attributions = np.zeros_like(inputs)
    shares, previous = np.zeros_like(inputs), np.zeros(n_rows)
    for step in range(settings.n_steps):
        grads, scalars = paths.gradients_at([x.reshape(shape).astype(dtype)], samples)
        gradients = grads[0].reshape(n_rows, -1).astype(np.float64)
        moved = _step(walk, x, gradients, step, settings, moving)
        if not settings.idgi:
            attributions += moved
            continue
        outputs = scalars.astype(np.float64)
        attributions += shares * (outputs - previous)[:, np.newaxis]
        shares, previous = _shares(gradients), outputs
    if settings.idgi:
        attributions += shares * (end_outputs - previous)[:, np.newaxis]
    attributions[~moving] = 0.0
    return attributions.reshape(shape).astype(dtype)


def _shares(gradients: np.ndarray) -> np.ndarray:
    """IDGI's ``g**2 / |g|**2`` per sample (zeros where the gradient is zero)."""
    squares = gradients**2
    norms = squares.sum(axis=1, keepdims=True)
    return np.divide(squares, norms, out=np.zeros_like(squares), where=norms > 0)
