"""``n_steps="auto"``: each sample's path halved where its integrand is rough, until the estimated
error meets the tolerance.

Numpy only; the integrand comes from ``integrand_at``, which evaluates a whole round (every new
node of every sample) in one pass of the compiled loop.

The integrand of a ReLU network is piecewise constant before the last activation: it jumps
wherever a unit switches along the path. A rule that refines the whole path at once (Romberg's,
the rule of earlier releases) pays for every jump everywhere; this one pays where the jumps are.

Each sample's path ``[0, 1]`` is a set of leaf intervals ``[a, b]`` with the integrand known at
``a``, the middle ``m`` and ``b``. A leaf's integral is the trapezoid rule on its two halves,
``h/4 (f(a) + 2 f(m) + f(b))``, and its error estimate the difference from the trapezoid on the
whole leaf, ``h/4 |2 f(m) - f(a) - f(b)|`` summed over the features (the quantity the tolerance
bounds). The estimate is a bound, not a guess, where it matters: for one jump anywhere in the
leaf the error is at most ``h/4`` times the jump and the estimate is exactly that; on smooth
stretches the estimate is three times the error. Only jumps that cancel inside one leaf (the
integrand back to its value at both ends and the middle) go unseen, which the completeness gap
then partly catches.

A sample's error estimate is the larger of the sum of its leaves' estimates and its completeness
gap ``|sum(attributions) - (F(x) - F(x'))|`` beyond the outputs' own rounding (a lower bound of
the summed error that costs nothing). A sample stops as soon as that is at most ``tolerance *
max(|F(x) - F(x')|, 1e-12)``; otherwise its leaves with the largest estimates are halved (two
new nodes each, the quarter points), just enough of them that the others' estimates add up to at
most half of what is allowed. All samples' halvings of a round go to the model together, so the
rounds, not the intervals, cost a compiled call: at most ``log2(max_steps)`` of them, since each
round halves the widest leaf it touches.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ig_plugin._integral.completeness import attribution_sums

#: Gradients per sample in the first round: the path's ends and its middle.
FIRST_ROUND_STEPS = 3

#: How much smaller than their parent's the two halves' error estimates may be together: where
#: the integrand is smooth, halving divides the trapezoid's error by 4; at a jump, by 2. Where
#: the estimates fall faster, the halves have missed something: several jumps in one direction
#: look straight at three nodes (a staircase). The shortfall then stays the halves' least
#: estimate, half to each, until they are halved in turn.
SMOOTH_DECAY = 4.0

#: The range of ``(bend(left) + bend(right)) / bend(parent)`` taken for a smooth integrand (a
#: quarter, for a smooth one; a half, at a jump).
SMOOTH_RATIOS = (0.125, 0.375)

#: A leaf whose estimate is this many times what its sample may err is halved twice in one
#: round (its quarters): at a jump that takes six gradients where two rounds of halving take
#: four, but each round is a pass of the compiled loop, which is what costs on small models
#: far from the tolerance.
DEEP_SHARE = 4.0

#: ``integrand_at(samples, alphas)``: per attributed tensor, ``(x - x') * grad F`` at path
#: position ``alphas[i]`` of sample ``samples[i]`` (an index into X), float64,
#: ``(n, [K,] *feature_shape)``.
IntegrandAt = Callable[[np.ndarray, np.ndarray], list[np.ndarray]]


class Leaves(NamedTuple):
    """The leaf intervals of the unfinished samples, sorted by sample.

    Attributes
    ----------
    samples
        ``(n,)`` the sample (index into X) each leaf belongs to, non-decreasing.
    lows, highs
        ``(n,)`` the leaf's interval of the path.
    ends
        Per attributed tensor ``(n, 3, [K,] *feature_shape)``: the integrand at the leaf's low
        end, middle and high end.
    floors
        ``(n,)`` or ``(n, K)``: the least error estimate the leaf may have, from its parent's
        (see :data:`SMOOTH_DECAY`).
    smooth
        ``(n,)``: the leaf and its sibling bent as a smooth integrand does, a quarter of their
        parent's bend together; its integral is then Simpson's rule and its error estimate
        ``smooth_errors``.
    smooth_errors
        Shaped like ``floors``: half of ``|S(parent) - S(leaf) - S(sibling)|``, the size of
        the last refinement of Simpson's rule (which it overstates about 16 times where the
        integrand is smooth).
    """

    samples: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    ends: list[np.ndarray]
    floors: np.ndarray
    smooth: np.ndarray
    smooth_errors: np.ndarray

    def take(self, rows: np.ndarray) -> Leaves:
        return Leaves(
            self.samples[rows],
            self.lows[rows],
            self.highs[rows],
            [e[rows] for e in self.ends],
            self.floors[rows],
            self.smooth[rows],
            self.smooth_errors[rows],
        )

    def values(self) -> list[np.ndarray]:
        """Each leaf's integral: Simpson's rule where it is smooth, else the trapezoid rule on
        its halves (whose error the bend bounds at a jump)."""
        quarter = self._quarter_widths()
        smooth = self.smooth.reshape(quarter.shape)
        return [
            np.where(
                smooth,
                (2.0 / 3.0) * quarter * (e[:, 0] + 4.0 * e[:, 1] + e[:, 2]),
                quarter * (e[:, 0] + 2.0 * e[:, 1] + e[:, 2]),
            )
            for e in self.ends
        ]

    def bends(self, many: bool) -> np.ndarray:
        """``|T2 - T1|`` summed over the features: the trapezoid rule on the halves against the
        trapezoid rule on the whole leaf, ``(n,)`` or ``(n, K)``."""
        quarter = self._quarter_widths()
        bends = [np.abs(quarter * (2.0 * e[:, 1] - e[:, 0] - e[:, 2])) for e in self.ends]
        return attribution_sums(bends, many)

    def simpsons(self) -> list[np.ndarray]:
        """Simpson's rule on each leaf, per attributed tensor."""
        quarter = self._quarter_widths()
        return [(2.0 / 3.0) * quarter * (e[:, 0] + 4.0 * e[:, 1] + e[:, 2]) for e in self.ends]

    def errors(self, many: bool) -> np.ndarray:
        """Each leaf's error estimate, ``(n,)`` or ``(n, K)``: where it is smooth, the last
        refinement of Simpson's rule; elsewhere its bend, at least its floor."""
        smooth = self.smooth.reshape(-1, *([1] * (self.floors.ndim - 1)))
        jumps = np.maximum(self.bends(many), self.floors)
        return np.where(smooth, self.smooth_errors, jumps)

    def _quarter_widths(self) -> np.ndarray:
        widths = 0.25 * (self.highs - self.lows)
        rank = max(e.ndim for e in self.ends) - 2  # the axes after (leaf, node)
        return widths.reshape(-1, *([1] * rank))


def _sorted_union(first: Leaves, second: Leaves) -> Leaves:
    samples = np.concatenate([first.samples, second.samples])
    order = np.argsort(samples, kind="stable")
    return Leaves(
        samples[order],
        np.concatenate([first.lows, second.lows])[order],
        np.concatenate([first.highs, second.highs])[order],
        [np.concatenate([a, b])[order] for a, b in zip(first.ends, second.ends, strict=True)],
        np.concatenate([first.floors, second.floors])[order],
        np.concatenate([first.smooth, second.smooth])[order],
        np.concatenate([first.smooth_errors, second.smooth_errors])[order],
    )


def _quarter_points(lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """The nodes halving the leaves ``[lows, highs]`` adds: all left quarters, then all right."""
    middles = 0.5 * (lows + highs)
    return np.concatenate([0.5 * (lows + middles), 0.5 * (middles + highs)])


def _split(
    integrand_at: IntegrandAt,
    leaves: Leaves,
    errors: np.ndarray,
    twice: np.ndarray,
    many: bool,
) -> Leaves:
    """Each leaf halved, and halved again where ``twice`` (its quarters: six new nodes instead of
    two, and a round less), with every new node from one pass; ``errors`` are the leaves'
    error estimates."""
    middles = 0.5 * (leaves.lows + leaves.highs)
    lows = np.concatenate([leaves.lows[twice], middles[twice]])
    highs = np.concatenate([middles[twice], leaves.highs[twice]])
    first = _quarter_points(leaves.lows, leaves.highs)
    second = _quarter_points(lows, highs)
    samples = np.concatenate([np.tile(leaves.samples, 2), np.tile(leaves.samples[twice], 4)])
    values = integrand_at(samples, np.concatenate([first, second]))
    n = len(first)

    def known(parts: list[np.ndarray]) -> IntegrandAt:
        return lambda samples, alphas: parts

    halves = _halve(known([v[:n] for v in values]), leaves, errors, many)
    if not twice.any():
        return halves
    again = np.repeat(twice, 2)
    deep = halves.take(again)
    # _halve orders halves by leaf; the second nodes were laid out by half (all left, all right).
    by_leaf = np.arange(len(lows)).reshape(2, -1).T.ravel()
    order = np.concatenate([by_leaf, by_leaf + len(lows)])
    second_values = [v[n:][order] for v in values]
    quarters = _halve(known(second_values), deep, deep.errors(many), many)
    return _sorted_union(halves.take(~again), quarters)


def _halve(integrand_at: IntegrandAt, leaves: Leaves, errors: np.ndarray, many: bool) -> Leaves:
    """Each leaf's two halves, with the integrand at its quarter points (one pass); ``errors``
    are the leaves' error estimates, which set the halves' floors."""
    n = len(leaves.samples)
    middles = 0.5 * (leaves.lows + leaves.highs)
    quarters = _quarter_points(leaves.lows, leaves.highs)
    new = integrand_at(np.concatenate([leaves.samples, leaves.samples]), quarters)
    left_ends = [
        np.stack([e[:, 0], q[:n], e[:, 1]], axis=1) for e, q in zip(leaves.ends, new, strict=True)
    ]
    right_ends = [
        np.stack([e[:, 1], q[n:], e[:, 2]], axis=1) for e, q in zip(leaves.ends, new, strict=True)
    ]
    # Each leaf's halves next to each other, so the leaves stay sorted by sample.
    order = np.arange(2 * n).reshape(2, n).T.ravel()
    halves = Leaves(
        np.concatenate([leaves.samples, leaves.samples])[order],
        np.concatenate([leaves.lows, middles])[order],
        np.concatenate([middles, leaves.highs])[order],
        [np.concatenate([a, b])[order] for a, b in zip(left_ends, right_ends, strict=True)],
        np.zeros((2 * n, *errors.shape[1:])),
        np.zeros(2 * n, dtype=bool),
        np.zeros((2 * n, *errors.shape[1:])),
    )
    bends = halves.bends(many)
    both = bends.reshape(n, 2, *bends.shape[1:]).sum(axis=1)
    shortfall = np.maximum(errors / SMOOTH_DECAY - both, 0.0)
    # Smooth: the halves bend a quarter as much as the parent did (an eighth to three eighths).
    parent_bends = leaves.bends(many)
    ratio = both / np.where(parent_bends > 0, parent_bends, np.inf)
    smooth = (ratio >= SMOOTH_RATIOS[0]) & (ratio <= SMOOTH_RATIOS[1])
    if many:
        smooth = smooth.all(axis=1)
    simpson_parent = leaves.simpsons()
    simpson_halves = [h.reshape(n, 2, *h.shape[1:]).sum(axis=1) for h in halves.simpsons()]
    steps = [np.abs(p - h) for p, h in zip(simpson_parent, simpson_halves, strict=True)]
    refinement = 0.5 * attribution_sums(steps, many)
    return halves._replace(
        floors=np.repeat(0.5 * shortfall, 2, axis=0),
        smooth=np.repeat(smooth, 2),
        smooth_errors=np.repeat(refinement, 2, axis=0),
    )


def _first_leaves(integrand_at: IntegrandAt, changes_shape: tuple[int, ...]) -> Leaves:
    """Each sample's whole path as one leaf: the integrand at its ends and middle."""
    n_samples = changes_shape[0]
    samples = np.arange(n_samples)
    alphas = np.repeat([[0.0, 0.5, 1.0]], n_samples, axis=0).ravel()
    values = integrand_at(np.repeat(samples, 3), alphas)
    ends = [v.reshape(n_samples, 3, *v.shape[1:]) for v in values]
    zeros = np.zeros((n_samples, *changes_shape[1:]))
    smooth = np.zeros(n_samples, dtype=bool)
    return Leaves(samples, np.zeros(n_samples), np.ones(n_samples), ends, zeros, smooth, zeros)


def integrate_auto(
    integrand_at: IntegrandAt,
    changes: np.ndarray,
    rounding: np.ndarray,
    allowed_errors: np.ndarray,
    max_steps: int,
    many: bool = False,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Refine each sample until its error estimate is at most its ``allowed_errors``.

    Parameters
    ----------
    integrand_at
        The integrand at positions of the paths (:data:`IntegrandAt`).
    changes
        Each sample's ``F(x) - F(x')``, what its attributions must add up to: ``(N,)`` or with
        ``many`` ``(N, K)``.
    rounding
        How far the model's rounding of its outputs alone can move ``changes``: a completeness
        gap within it says nothing about the integration.
    allowed_errors
        Each sample's bound on its error estimate, shaped like ``changes``.
    max_steps
        Most gradient evaluations per sample (at least :data:`FIRST_ROUND_STEPS`).
    many
        The integrals have a K axis after the sample (several targets); a sample stops when all
        its targets meet their bounds.

    Returns
    -------
    attributions, n_steps, error_estimates
        Per attributed tensor the attributions (float64); the gradient evaluations each sample
        took, ``(N,)``; and the error estimates, shaped like ``allowed_errors`` (above them
        for the samples that reached ``max_steps``: see :func:`warn_if_unmet`).
    """
    n_samples = len(changes)
    leaves = _first_leaves(integrand_at, changes.shape)
    results = [np.zeros((n_samples, *e.shape[2:])) for e in leaves.ends]
    n_steps = np.full(n_samples, FIRST_ROUND_STEPS, dtype=np.int64)
    estimates = np.zeros(allowed_errors.shape)
    while len(leaves.samples):
        owners, starts = np.unique(leaves.samples, return_index=True)
        counts = np.diff(np.append(starts, len(leaves.samples)))
        sums = [np.add.reduceat(v, starts, axis=0) for v in leaves.values()]
        errors = leaves.errors(many)
        gaps = np.abs(attribution_sums(sums, many) - changes[owners]) - rounding[owners]
        estimate = np.maximum(np.add.reduceat(errors, starts, axis=0), gaps)
        met = estimate <= allowed_errors[owners]
        done = met.all(axis=1) if many else met
        # A leaf's share of what its sample may err (its worst target's).
        shares = errors / allowed_errors[leaves.samples]
        if many:
            shares = shares.max(axis=1)
        left = max_steps - n_steps[owners]
        out_of_steps = ~done & (left < 2)  # a halving takes two gradients
        finished = done | out_of_steps
        for result, total in zip(results, sums, strict=True):
            result[owners[finished]] = total[finished]
        estimates[owners[finished]] = estimate[finished]
        open_leaves = ~np.repeat(finished, counts)
        chosen, twice = _plan_splits(shares, starts, counts, left)
        chosen &= open_leaves
        twice &= chosen
        if not chosen.any():
            break
        np.add.at(n_steps, leaves.samples[chosen], np.where(twice[chosen], 6, 2))
        split = _split(integrand_at, leaves.take(chosen), errors[chosen], twice[chosen], many)
        leaves = _sorted_union(leaves.take(open_leaves & ~chosen), split)
    return results, n_steps, estimates


def _plan_splits(
    shares: np.ndarray, starts: np.ndarray, counts: np.ndarray, left: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which leaves to halve this round, and which of those to halve twice.

    Per sample (the leaves from ``starts``, ``counts`` of them, and ``left`` gradients it may
    still take): its leaves by decreasing share are halved until the others' shares add up to
    at most half of what is allowed (half of what they add up to now, if that is already
    within it; every leaf, if all shares are zero). A leaf whose share is more than
    :data:`DEEP_SHARE` is halved twice (its quarters), if the sample can pay for that.
    """
    group = np.repeat(np.arange(len(starts)), counts)
    order = np.lexsort((-shares, group))  # by sample, then the largest share first
    ranked = shares[order]
    totals = np.repeat(np.add.reduceat(shares, starts), counts)
    ahead = np.cumsum(ranked) - ranked  # the shares ranked ahead, across samples
    ahead -= ahead[np.repeat(starts, counts)]  # ... within the sample
    wanted = (totals - ahead > 0.5 * np.minimum(totals, 1.0)) | (totals <= 0.0)
    rank = np.arange(len(shares)) - np.repeat(starts, counts)
    wanted &= rank < np.repeat(left // 2, counts)  # a halving takes two gradients
    chosen = np.zeros(len(shares), dtype=bool)
    chosen[order] = wanted
    twice = chosen & (shares > DEEP_SHARE)
    cost = 2 * np.bincount(group[chosen], minlength=len(starts))
    cost += 4 * np.bincount(group[twice], minlength=len(starts))  # six nodes, not two
    return chosen, twice & (cost <= left)[group]


def warn_if_unmet(count: int, max_steps: int) -> None:
    """One warning for the ``count`` samples that reached ``max_steps`` unmet (from the
    explainer's ``explain``)."""
    if count:
        warnings.warn(
            f"{count} samples reached max_steps={max_steps} without meeting the tolerance; "
            "their attributions are the most refined ones, and `error_estimates` says how far "
            "they are. Raise max_steps or the tolerance.",
            UserWarning,
            stacklevel=5,
        )
