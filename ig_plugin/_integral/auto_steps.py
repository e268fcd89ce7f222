"""``n_steps="auto"``: each sample's path halved where its integrand is rough, until the estimated
error meets the tolerance.

Numpy only; the integrand comes from ``integrand_at``, which evaluates a whole round (every new
node of every sample) in one compiled call per gradient batch.

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

Summed over a sample's leaves, those bounds add up errors that mostly cancel: where many jumps
fall between the nodes at random, each leaf's error lies anywhere within its bend, with either
sign. So per feature the leaves' bends are summed as a random sum is (:class:`_JumpSums`: three
standard deviations, at least the signed sum where the leaves err alike, at most the bound),
and smooth leaves' estimates and the staircase floors are added as they are. A sample's error
estimate is the larger of that and its completeness gap ``|sum(attributions) - (F(x) -
F(x'))|`` beyond the outputs' own rounding (a lower bound of the summed error that costs
nothing). A sample stops as soon as that is at most ``tolerance *
max(|F(x) - F(x')|, 1e-12)``; otherwise its leaves with the largest estimates are halved (two
new nodes each, the quarter points), just enough of them that the others' estimates (scaled as
the cancelling scales the sample's) add up to at most half of what is allowed. All samples'
halvings of a round go to the model together, so the rounds, not the intervals, cost a compiled
call: at most ``log2(max_steps)`` of them, since each round halves the widest leaf it touches.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ig_plugin._integral.completeness import attribution_sums

#: Where the first node is taken instead of the path's start: just after it, where the integrand
#: has the value it keeps on the first stretch. At the start itself, units whose input is exactly
#: zero there (zero biases on a zero baseline: Keras' defaults) sit on their kink, and the
#: gradient there is not the one the integral sees; the trapezoid rules would weigh that one
#: point as if it held for a quarter of the first piece. Moving the node this little changes the
#: integral by about 1e-6 of the integrand.
PATH_START = 2.0**-20

#: Halvings of the whole path that the first round makes at once: its 9 nodes (8 equal pieces'
#: ends) give the whole path's leaf quartered, with the floors, smooth flags and estimates that
#: two rounds of halving would give it. On the ReLU networks of the benchmark every sample was
#: quartered in the second round, so the rounds take the same nodes, one call fewer; a straight
#: integrand (a linear model) pays 9 gradients where 3 would have shown it straight.
FIRST_DEPTH = 2


def first_round_steps(max_steps: int) -> int:
    """Gradients per sample in the first round: ``2 ** (FIRST_DEPTH + 1) + 1``, or 5 or 3 where
    ``max_steps`` is lower."""
    depth = FIRST_DEPTH
    while depth and 2 ** (depth + 1) + 1 > max_steps:
        depth -= 1
    return 2 ** (depth + 1) + 1


#: How much smaller than their parent's the two halves' error estimates may be together: where
#: the integrand is smooth, halving divides the trapezoid's error by 4; at a jump, by 2. Where
#: the estimates fall faster, the halves have missed something: several jumps in one direction
#: look straight at three nodes (a staircase). The shortfall then stays the halves' least
#: estimate, half to each, until they are halved in turn.
SMOOTH_DECAY = 4.0

#: The range of ``(bend(left) + bend(right)) / bend(parent)`` taken for a smooth integrand (a
#: quarter, for a smooth one; a half, at a jump).
SMOOTH_RATIOS = (0.125, 0.375)

#: A leaf whose estimate is more than this many times what its sample may err is halved twice
#: in one round (its quarters). Halving a leaf at a jump halves its estimate, and a round's
#: halvings aim at leaving half of what is allowed (see :func:`_plan_splits`), so such a leaf
#: would be halved again next round anyway. Quartering it at once takes six gradients where
#: two rounds of halving take four, but each round is a compiled call and a pass of numpy
#: work, which is what costs on small models. (At 4, the earlier threshold, the digits CNN, MLP
#: and tiny model took a round more at 1e-2 for 1% to 5% fewer gradients, and more time.)
DEEP_SHARE = 1.0

#: How many standard deviations of the jumps' cancelling sum a feature's error estimate takes
#: (see :meth:`_JumpSums.estimates`): a Gaussian sum exceeds three of them once in 370 times.
#: Two were not enough where a sample has few features, each with few jumps.
JUMP_SIGMAS = 3.0


#: ``integrand_at(samples, alphas)``: per attributed tensor, ``(x - x') * grad F`` at path
#: position ``alphas[i]`` of sample ``samples[i]`` (an index into X), ``(n, [K,]
#: *feature_shape)``, in a floating dtype of at least 32 bits (the gradients', float32 for most
#: models). The work per feature stays in that dtype; sums over the features are float64.
IntegrandAt = Callable[[np.ndarray, np.ndarray], list[np.ndarray]]


class Nodes:
    """The integrand at every node of a group's paths, each node once: per attributed tensor
    ``(rows, [K,] *feature_shape)`` (in the integrand's dtype), and its sum over every tensor's
    features ``(rows,)`` or ``(rows, K)`` (float64). Leaves hold their nodes' rows.

    A halving's two new nodes are appended; the parent's three are the halves' too, and stay
    where they are. So the leaves' bookkeeping (choosing, moving, dropping them) moves row
    numbers, not the integrand: on the CNNs of the benchmark, copying each leaf's three nodes
    into its halves and through the pool cost as much as the rest of a round's numpy work.
    """

    def __init__(self, values: list[np.ndarray], many: bool) -> None:
        self.many = many
        self.values = values
        self.sums = attribution_sums(values, many)
        self.size = len(self.sums)

    def append(self, values: list[np.ndarray]) -> np.ndarray:
        """Store the integrand at new nodes; their rows."""
        n_new = len(values[0])
        stop = self.size + n_new
        if stop > len(self.sums):
            capacity = max(2 * len(self.sums), stop)
            self.values = [_room(v[: self.size], capacity) for v in self.values]
            self.sums = _room(self.sums[: self.size], capacity)
        for held, new in zip(self.values, values, strict=True):
            held[self.size : stop] = new
        self.sums[self.size : stop] = attribution_sums(values, self.many)
        rows = np.arange(self.size, stop)
        self.size = stop
        return rows

    def at(self, rows: np.ndarray) -> list[np.ndarray]:
        """The integrand at the nodes of ``rows``, per attributed tensor."""
        return [values[rows] for values in self.values]


class Leaves(NamedTuple):
    """The leaf intervals of the unfinished samples.

    Attributes
    ----------
    samples
        ``(n,)`` the sample (index into X) each leaf belongs to.
    lows, highs
        ``(n,)`` the leaf's interval of the path.
    nodes
        ``(n, 3)``: the rows of :class:`Nodes` that hold the integrand at the leaf's low end,
        middle and high end.
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
    estimates
        Shaped like ``floors``: the leaf's error estimate (:meth:`errors`, kept).
    excess
        Shaped like ``floors``: the part of :attr:`estimates` that :class:`_JumpSums` does not
        hold: all of it for a smooth leaf, what its floor adds to its bend for the others.
    totals
        Shaped like ``floors``: the sum over the features of the leaf's integral (kept, for
        the completeness gaps). The rules are linear, so it comes from the nodes' sums over the
        features (:attr:`Nodes.sums`), without the leaf's integral per feature: a sample's
        integrals per feature are summed only when it is done (:func:`_collect`).
    """

    samples: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    nodes: np.ndarray
    floors: np.ndarray
    smooth: np.ndarray
    smooth_errors: np.ndarray
    estimates: np.ndarray
    excess: np.ndarray
    totals: np.ndarray

    def take(self, rows: np.ndarray | slice) -> Leaves:
        return Leaves._make(value[rows] for value in self)

    def kept(self, store: Nodes, bends: np.ndarray) -> Leaves:
        """The same leaves with their :attr:`estimates`, :attr:`excess` and :attr:`totals`
        computed; ``bends`` are their :meth:`bends`."""
        estimates = self.errors(bends)
        smooth = self.smooth.reshape(-1, *([1] * (bends.ndim - 1)))
        low, middle, high = (store.sums[self.nodes[:, i]] for i in range(3))
        return self._replace(
            estimates=estimates,
            excess=np.where(smooth, estimates, estimates - bends),
            totals=self._rule(low, middle, high),
        )

    def integrals(self, store: Nodes) -> list[np.ndarray]:
        """Each leaf's integral per feature, per attributed tensor ``(n, [K,] *feature_shape)``
        (float64: the tests' reference)."""
        low, middle, high = (store.at(self.nodes[:, i]) for i in range(3))
        return [self._rule(*values) for values in zip(low, middle, high, strict=True)]

    def node_weights(self) -> np.ndarray:
        """``(n, 3)``: what each leaf's rule weighs the integrand at its low end, middle and high
        end by. The trapezoid rule on its halves ``T2``, whose error the bend bounds at a jump,
        weighs them ``h/4 (1, 2, 1)``; where the leaf is smooth, Simpson's rule (which is
        ``T2 + (T2 - T1) / 3``) weighs them ``h/6 (1, 4, 1)``."""
        widths = self.highs - self.lows
        ends = np.where(self.smooth, widths / 6.0, widths / 4.0)
        middles = np.where(self.smooth, widths * (2.0 / 3.0), widths / 2.0)
        return np.stack([ends, middles, ends], axis=1)

    def _rule(self, low: np.ndarray, middle: np.ndarray, high: np.ndarray) -> np.ndarray:
        """The leaf's integral from the integrand at its nodes (see :meth:`node_weights`)."""
        shape = (-1, *([1] * (low.ndim - 1)))
        weights = self.node_weights()
        return (
            weights[:, 0].reshape(shape) * low
            + weights[:, 1].reshape(shape) * middle
            + weights[:, 2].reshape(shape) * high
        )

    def signed_bends(self, store: Nodes) -> list[np.ndarray]:
        """``T2 - T1`` per feature, per attributed tensor ``(n, [K,] *feature_shape)``: the
        trapezoid rule on the halves less the trapezoid rule on the whole leaf."""
        low, middle, high = (store.at(self.nodes[:, i]) for i in range(3))
        return [
            self._quarter_widths(m.ndim - 1, m.dtype) * _bent(a, m, b)
            for a, m, b in zip(low, middle, high, strict=True)
        ]

    def errors(self, bends: np.ndarray) -> np.ndarray:
        """Each leaf's error estimate, ``(n,)`` or ``(n, K)``: where it is smooth, the last
        refinement of Simpson's rule; elsewhere its bend (``bends``), at least its floor."""
        smooth = self.smooth.reshape(-1, *([1] * (self.floors.ndim - 1)))
        return np.where(smooth, self.smooth_errors, np.maximum(bends, self.floors))

    def _quarter_widths(self, rank: int, dtype: np.dtype) -> np.ndarray:
        """A quarter of each leaf's width, shaped to multiply values with ``rank`` axes after
        the leaf's, in their ``dtype`` (a float64 factor would make float64 copies of them)."""
        return (0.25 * (self.highs - self.lows)).astype(dtype).reshape(-1, *([1] * rank))


def _bent(low: np.ndarray, middle: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``2 f(m) - f(a) - f(b)``: a leaf's signed bend before its quarter width."""
    return 2.0 * middle - low - high


def bends(signed: list[np.ndarray], many: bool) -> np.ndarray:
    """``|T2 - T1|`` summed over the features, ``(n,)`` or ``(n, K)``, from the signed bends
    (:meth:`Leaves.signed_bends`)."""
    return attribution_sums([np.abs(b) for b in signed], many)


class Made(NamedTuple):
    """Leaves just made by halving others, with the signed bends (:meth:`Leaves.signed_bends`)
    the jump sums count in for them and out for the leaves they replace."""

    leaves: Leaves
    signed: list[np.ndarray]
    replaced_signed: list[np.ndarray]


def _union(first: Made, second: Made) -> Made:
    """The leaves of both (in no particular order), each with its signed bends; ``first``'s
    replaced leaves."""
    pairs = zip(first.leaves, second.leaves, strict=True)
    return Made(
        Leaves._make(np.concatenate(pair) for pair in pairs),
        [np.concatenate(pair) for pair in zip(first.signed, second.signed, strict=True)],
        first.replaced_signed,
    )


def _quarter_points(lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """The nodes halving the leaves ``[lows, highs]`` adds: all left quarters, then all right."""
    middles = 0.5 * (lows + highs)
    return np.concatenate([0.5 * (lows + middles), 0.5 * (middles + highs)])


def _split(
    integrand_at: IntegrandAt,
    store: Nodes,
    leaves: Leaves,
    errors: np.ndarray,
    twice: np.ndarray,
) -> Made:
    """Each leaf halved, and halved again where ``twice`` (its quarters: six new nodes instead of
    two, and a round less), with every new node from one pass; ``errors`` are the leaves'
    error estimates."""
    middles = 0.5 * (leaves.lows + leaves.highs)
    lows = np.concatenate([leaves.lows[twice], middles[twice]])
    highs = np.concatenate([middles[twice], leaves.highs[twice]])
    first = _quarter_points(leaves.lows, leaves.highs)
    second = _quarter_points(lows, highs)
    samples = np.concatenate([np.tile(leaves.samples, 2), np.tile(leaves.samples[twice], 4)])
    rows = store.append(integrand_at(samples, np.concatenate([first, second])))
    n = len(first)
    halves = _halve(store, leaves, errors, rows[:n])
    if not twice.any():
        return halves
    again = np.repeat(twice, 2)
    deep = halves.leaves.take(again)
    # _halve orders halves by leaf; the second nodes were laid out by half (all left, all right).
    by_leaf = np.arange(len(lows)).reshape(2, -1).T.ravel()
    quarters = _halve(
        store, deep, deep.estimates, rows[n:][np.concatenate([by_leaf, by_leaf + len(lows)])]
    )
    # The deep halves are leaves no more: the halves kept and the quarters are.
    kept = ~again
    halves_kept = Made(
        halves.leaves.take(kept), [s[kept] for s in halves.signed], halves.replaced_signed
    )
    return _union(halves_kept, quarters)


def _halve(store: Nodes, leaves: Leaves, errors: np.ndarray, quarters: np.ndarray) -> Made:
    """Each leaf's two halves, with the integrand at its quarter points in ``store``'s rows
    ``quarters`` (all left quarters, then all right); ``errors`` are the leaves' error
    estimates, which set the halves' floors."""
    n = len(leaves.samples)
    many = store.many
    middles = 0.5 * (leaves.lows + leaves.highs)
    low, middle, high = leaves.nodes[:, 0], leaves.nodes[:, 1], leaves.nodes[:, 2]
    # Each leaf's halves next to each other: (a, q1, m), then (m, q2, b).
    nodes = np.stack([low, quarters[:n], middle, middle, quarters[n:], high], axis=1)
    zeros = np.zeros((2 * n, *errors.shape[1:]))
    halves = Leaves(
        np.repeat(leaves.samples, 2),
        np.stack([leaves.lows, middles], axis=1).ravel(),
        np.stack([middles, leaves.highs], axis=1).ravel(),
        nodes.reshape(2 * n, 3),
        zeros,
        np.zeros(2 * n, dtype=bool),
        zeros,
        zeros,
        zeros,
        zeros,
    )
    # The signed bends serve everything else: the halves' estimates, the test of smoothness,
    # the last refinement of Simpson's rule and the jump sums. The halves' nodes are the
    # parent's and the quarter points, each taken from the store once.
    signed, parent_signed = [], []
    ends = zip(*(store.at(leaves.nodes[:, i]) for i in range(3)), store.at(quarters), strict=True)
    for a, m, b, q in ends:
        rank = a.ndim - 1
        parent_signed.append(leaves._quarter_widths(rank, a.dtype) * _bent(a, m, b))
        bent = np.stack([_bent(a, q[:n], m), _bent(m, q[n:], b)], axis=1)
        signed.append(halves._quarter_widths(rank, a.dtype) * bent.reshape(2 * n, *a.shape[1:]))
    halves_bends = bends(signed, many)
    both = halves_bends.reshape(n, 2, *halves_bends.shape[1:]).sum(axis=1)
    shortfall = np.maximum(errors / SMOOTH_DECAY - both, 0.0)
    # Smooth: the halves bend a quarter as much as the parent did (an eighth to three eighths).
    parent_bends = bends(parent_signed, many)
    ratio = both / np.where(parent_bends > 0, parent_bends, np.inf)
    smooth = (ratio >= SMOOTH_RATIOS[0]) & (ratio <= SMOOTH_RATIOS[1])
    if many:
        smooth = smooth.all(axis=1)
    # Simpson's rule on the parent less on its halves is (b - 4 (b_left + b_right)) / 3 in the
    # signed bends (each Simpson's rule is its T2 plus a third of its bend).
    steps = [
        np.abs(p - 4.0 * h.reshape(n, 2, *h.shape[1:]).sum(axis=1))
        for p, h in zip(parent_signed, signed, strict=True)
    ]
    refinement = attribution_sums(steps, many) / 6.0
    made = halves._replace(
        floors=np.repeat(0.5 * shortfall, 2, axis=0),
        smooth=np.repeat(smooth, 2),
        smooth_errors=np.repeat(refinement, 2, axis=0),
    ).kept(store, halves_bends)
    return Made(made, signed, parent_signed)


def first_nodes(n_samples: int, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """The first round's nodes, ``(samples, alphas)``: ``n_nodes`` equally spaced on each
    sample's path (the first at :data:`PATH_START`), sample by sample, so that the node at a
    leaf's quarter is the row halfway between its end's and its middle's."""
    grid = np.linspace(0.0, 1.0, n_nodes)
    grid[0] = PATH_START
    return np.repeat(np.arange(n_samples), n_nodes), np.tile(grid, n_samples)


def _first_leaves(
    integrand_at: IntegrandAt, changes_shape: tuple[int, ...], n_nodes: int
) -> tuple[Nodes, Made]:
    """Each sample's path at ``n_nodes`` (3, 5 or 9) equally spaced nodes, from one pass: the
    leaf of the whole path, halved once with 5 nodes and twice with 9, as the rounds would
    halve it (see :data:`FIRST_DEPTH`). Returns the nodes and the leaves."""
    n_samples, many = changes_shape[0], len(changes_shape) > 1
    store = Nodes(integrand_at(*first_nodes(n_samples, n_nodes)), many)
    first_row = np.arange(n_samples) * n_nodes
    zeros = np.zeros(changes_shape)
    whole = Leaves(
        np.arange(n_samples),
        np.zeros(n_samples),
        np.ones(n_samples),
        first_row[:, np.newaxis] + np.array([0, n_nodes // 2, n_nodes - 1]),
        zeros,
        np.zeros(n_samples, dtype=bool),
        zeros,
        zeros,
        zeros,
        zeros,
    )
    signed = whole.signed_bends(store)
    made = Made(whole.kept(store, bends(signed, many)), signed, [])
    for _ in range(n_nodes.bit_length() - 2):  # 5 nodes: once; 9: twice
        nodes = made.leaves.nodes
        quarters = np.concatenate([nodes[:, 0] + nodes[:, 1], nodes[:, 1] + nodes[:, 2]]) // 2
        made = _halve(store, made.leaves, made.leaves.estimates, quarters)
    # The halved leaves never entered the jump sums: the first leaves replace none there.
    return store, made._replace(replaced_signed=[])


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
        Most gradient evaluations per sample (at least 3; the first round takes
        :func:`first_round_steps`).
    many
        The integrals have a K axis after the sample (several targets); a sample stops when all
        its targets meet their bounds.

    Returns
    -------
    attributions, n_steps, error_estimates
        Per attributed tensor the attributions (in the integrand's dtype); the gradient
        evaluations each sample took, ``(N,)``; and the error estimates, shaped like
        ``allowed_errors`` (above them for the samples that reached ``max_steps``: see
        :func:`warn_if_unmet`).
    """
    n_samples = len(changes)
    first_steps = first_round_steps(max_steps)
    store, first = _first_leaves(integrand_at, changes.shape, first_steps)
    pool = _Pool(first.leaves)
    results = [np.zeros((n_samples, *v.shape[1:]), dtype=v.dtype) for v in store.values]
    jumps = _JumpSums(results, first)
    n_steps = np.full(n_samples, first_steps, dtype=np.int64)
    estimates = np.zeros(allowed_errors.shape)
    while pool.n_live:
        rows = pool.live_rows()
        # The leaves' scalars for every leaf; the integrand at their nodes for those collected
        # or halved.
        held = pool.leaves
        samples, leaf_estimates = held.samples[rows], held.estimates[rows]
        owners, group = np.unique(samples, return_inverse=True)
        n_open = len(owners)
        gaps = np.abs(_group_sums(held.totals[rows], group, n_open) - changes[owners])
        bounds = _group_sums(leaf_estimates, group, n_open)
        summed = _group_sums(held.excess[rows], group, n_open) + jumps.estimates(owners, many)
        estimate = np.maximum(summed, gaps - rounding[owners])
        met = estimate <= allowed_errors[owners]
        done = met.all(axis=1) if many else met
        left = max_steps - n_steps[owners]
        finished = done | (left < 2)  # a halving takes two gradients
        if finished.any():
            _collect(results, store, held.take(rows[finished[group]]), owners[finished])
            estimates[owners[finished]] = estimate[finished]
        # A leaf's share of what its sample may err (its worst target's), its estimate scaled
        # as the jumps' cancelling scales the sample's.
        scale = summed / np.where(bounds > 0, bounds, np.inf)
        shares = leaf_estimates * scale[group] / allowed_errors[samples]
        if many:
            shares = shares.max(axis=1)
        chosen, twice = _plan_splits(shares, group, n_open, left)
        chosen &= ~finished[group]
        twice &= chosen
        # The finished samples' leaves and the halved ones leave the pool; the halves join it.
        pool.drop(rows[finished[group] | chosen])
        if not chosen.any():
            break
        np.add.at(n_steps, samples[chosen], np.where(twice[chosen], 6, 2))
        # By sample (stably): the halves come out in the same order, and their sums need no
        # sort.
        by_sample = np.argsort(samples[chosen], kind="stable")
        split = held.take(rows[chosen][by_sample])
        made = _split(integrand_at, store, split, split.estimates, twice[chosen][by_sample])
        jumps.add(split, made.replaced_signed, sign=-1.0)
        jumps.add(made.leaves, made.signed)
        pool.add(made.leaves)
    return results, n_steps, estimates


class _JumpSums:
    """Per sample and feature, sums over the sample's leaves that are not smooth of their
    signed bends ``b`` (:meth:`Leaves.signed_bends`): of ``|b|``, of ``b`` and of ``b**2``.

    They give the jumps' part of each sample's error estimate (:meth:`estimates`). The sums are
    kept up to date as leaves come and go, so that a round costs the leaves it halves, not
    every leaf.
    """

    def __init__(self, results: list[np.ndarray], first: Made) -> None:
        # Per attributed tensor (shaped like its ``results``, ``(N, [K,] *feature_shape)``),
        # (sample, [|b|, b, b**2], feature), its K axis and features flat.
        self._shapes = [r.shape[1:] for r in results]
        n_samples = len(results[0])
        self._sums = [np.zeros((n_samples, 3, math.prod(shape))) for shape in self._shapes]
        self.add(first.leaves, first.signed)

    def add(self, leaves: Leaves, signed: list[np.ndarray], sign: float = 1.0) -> None:
        """Count ``leaves``, whose signed bends are ``signed``, in (or, with ``sign=-1``, out
        of: they were halved) their samples' sums."""
        rough = ~leaves.smooth
        if not rough.any():
            return
        counted = np.flatnonzero(rough) if not rough.all() else slice(None)
        owners, row = np.unique(leaves.samples[counted], return_inverse=True)
        for sums, bent in zip(self._sums, signed, strict=True):
            # In float64: a leaf is counted in with one round's leaves and out with another's,
            # and float32 sums would leave the difference of their roundings behind.
            flat = bent.reshape(len(rough), -1)[counted].astype(np.float64)
            # Each sum by itself: a stacked copy of the three cost as much as the sums.
            parts = (np.abs(flat), flat, np.square(flat))
            for part, by_owner in enumerate(_sums_by_owner(parts, row, len(owners))):
                sums[owners, part] += sign * by_owner

    def estimates(self, samples: np.ndarray, many: bool) -> np.ndarray:
        """The jumps' part of the error estimates of ``samples``, ``(n,)`` or ``(n, K)``.

        Per feature, the error of a leaf whose one jump sits anywhere between its nodes is
        spread evenly over ``[-|b|, |b|]`` (variance ``b**2 / 3``), and where the jumps sit is
        as good as random from leaf to leaf: the errors of many leaves cancel as a sum of
        independent terms does. The feature's estimate is :data:`JUMP_SIGMAS` standard
        deviations of that sum, but at least ``|sum(b)|`` (where the leaves err alike, as on a
        smooth stretch whose curve the trapezoid rule always misses on one side) and at most
        ``sum(|b|)``, the bound that holds whatever the jumps do.
        """
        parts = []
        for sums, shape in zip(self._sums, self._shapes, strict=True):
            bound, signed, squares = np.moveaxis(sums[samples], 1, 0)
            spread = JUMP_SIGMAS * np.sqrt(np.maximum(squares, 0.0) / 3.0)
            cancelled = np.maximum(np.abs(signed), spread)
            estimate = np.minimum(np.maximum(bound, 0.0), cancelled)
            parts.append(estimate.reshape(len(samples), *shape))
        return attribution_sums(parts, many)


#: Most samples whose leaves :func:`_sums_by_owner` sums with a matrix product: its matrix of
#: signs holds a row per sample and a column per leaf, so with many samples (a group of a model
#: with few features) it would grow as their square.
DENSE_OWNERS = 32


def _sums_by_owner(
    parts: tuple[np.ndarray, ...], row: np.ndarray, n_owners: int
) -> list[np.ndarray]:
    """For each array of ``parts``, ``sum over i with row[i] == r of part[i]`` for each
    ``r < n_owners`` (every owner has a row at least).

    For a few owners, a product with each owner's row of ones: one pass of BLAS, and no copy of
    the parts sorted by owner (on the 32x32 CNN the sorted copy cost three times as much). For
    many, a segment sum, linear in the rows.
    """
    if n_owners <= DENSE_OWNERS:
        ones = np.zeros((n_owners, len(row)))
        ones[row, np.arange(len(row))] = 1.0
        return [(ones @ p.reshape(len(row), -1)).reshape(n_owners, *p.shape[1:]) for p in parts]
    return [_segment_sums(p, row, n_owners) for p in parts]


class _Pool:
    """The leaves of the unfinished samples, in no particular order, with room to grow: a round
    halves a few of them, and copying every leaf to replace those cost more than the round's
    gradients on a small model.

    Rows ``[0, size)`` of :attr:`leaves` are in use; :attr:`alive` marks those that are leaves
    still (not halved, their sample not finished). When the dead rows outnumber the live ones,
    the live rows move to the front: each leaf is moved a bounded number of times on average.
    """

    def __init__(self, leaves: Leaves) -> None:
        self.leaves = leaves
        self.size = len(leaves.samples)
        self.alive = np.ones(self.size, dtype=bool)
        self.n_live = self.size

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.alive[: self.size])

    def drop(self, rows: np.ndarray) -> None:
        self.alive[rows] = False
        self.n_live -= len(rows)

    def add(self, new: Leaves) -> None:
        if 2 * self.n_live < self.size:
            live = self.live_rows()
            self._write(slice(0, len(live)), self.leaves.take(live))
            self.size = len(live)
            self.alive[: self.size], self.alive[self.size :] = True, False
        n_new = len(new.samples)
        if self.size + n_new > len(self.alive):
            capacity = max(2 * len(self.alive), self.size + n_new)
            used = self.leaves.take(slice(0, self.size))
            self.leaves = Leaves._make(_room(value, capacity) for value in used)
            self.alive = np.concatenate(
                [self.alive[: self.size], np.zeros(capacity - self.size, dtype=bool)]
            )
        rows = slice(self.size, self.size + n_new)
        self._write(rows, new)
        self.alive[rows] = True
        self.size += n_new
        self.n_live += n_new

    def _write(self, rows: slice, leaves: Leaves) -> None:
        for held, value in zip(self.leaves, leaves, strict=True):
            held[rows] = value


def _room(values: np.ndarray, capacity: int) -> np.ndarray:
    """``values`` in the first rows of an array of ``capacity`` rows."""
    grown = np.empty((capacity, *values.shape[1:]), dtype=values.dtype)
    grown[: len(values)] = values
    return grown


def _group_sums(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Sums of ``values`` ``(n,)`` or ``(n, K)`` over the rows of each group."""
    if values.ndim == 1:
        return np.bincount(group, weights=values, minlength=n_groups)
    columns = [np.bincount(group, weights=c, minlength=n_groups) for c in values.T]
    return np.stack(columns, axis=1)


def _collect(results: list[np.ndarray], store: Nodes, leaves: Leaves, samples: np.ndarray) -> None:
    """Write the attributions of finished ``samples`` (sorted): the sums of their leaves' rules,
    node by node. Neighbouring leaves share their ends, so each node's integrand is read once,
    weighed by all that the rules of the leaves holding it give it (about two reads per leaf
    instead of three, and a product per node instead of a rule per leaf)."""
    held = leaves.nodes.ravel()
    weights = np.bincount(held, weights=leaves.node_weights().ravel(), minlength=store.size)
    owners = np.empty(store.size, dtype=np.int64)
    owners[held] = np.repeat(leaves.samples, 3)
    rows = np.flatnonzero(np.bincount(held, minlength=store.size))
    group = np.searchsorted(samples, owners[rows])
    # By sample before reading the integrand: the segment sums then need no sorted copy of it.
    order = np.argsort(group, kind="stable")
    rows, group = rows[order], group[order]
    weights = weights[rows]
    for result, values in zip(results, store.at(rows), strict=True):
        values *= weights.astype(values.dtype).reshape(-1, *([1] * (values.ndim - 1)))
        result[samples] = _segment_sums(values, group, len(samples))


def _segment_sums(values: np.ndarray, row: np.ndarray, n_groups: int) -> np.ndarray:
    """``values`` summed over the rows of each group ``r < n_groups`` (every group has one at
    least), in their order: a segment sum, after a stable sort by group where the rows are not
    in order already (halved leaves come sorted by sample, so most rounds skip the copy)."""
    if len(row) > 1 and (row[1:] < row[:-1]).any():
        order = np.argsort(row, kind="stable")
        values, row = values[order], row[order]
    starts = np.searchsorted(row, np.arange(n_groups))
    return np.add.reduceat(values, starts, axis=0)


def _plan_splits(
    shares: np.ndarray, group: np.ndarray, n_groups: int, left: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which leaves to halve this round, and which of those to halve twice.

    Per sample (its leaves are those of its ``group``; it may still take ``left`` gradients):
    its leaves by decreasing share are halved until the others' shares add up to at most half
    of what is allowed (half of what they add up to now, if that is already within it; every
    leaf, if all shares are zero). A leaf whose share is more than :data:`DEEP_SHARE` is
    halved twice (its quarters), if the sample can pay for that.
    """
    counts = np.bincount(group, minlength=n_groups)
    starts = np.cumsum(counts) - counts  # where each group begins in the ranking
    order = np.lexsort((-shares, group))  # by sample, then the largest share first
    ranked = shares[order]
    totals = np.repeat(np.bincount(group, weights=shares, minlength=n_groups), counts)
    ahead = np.cumsum(ranked) - ranked  # the shares ranked ahead, across samples
    ahead -= ahead[np.repeat(starts, counts)]  # ... within the sample
    wanted = (totals - ahead > 0.5 * np.minimum(totals, 1.0)) | (totals <= 0.0)
    rank = np.arange(len(shares)) - np.repeat(starts, counts)
    wanted &= rank < np.repeat(left // 2, counts)  # a halving takes two gradients
    chosen = np.zeros(len(shares), dtype=bool)
    chosen[order] = wanted
    twice = chosen & (shares > DEEP_SHARE)
    cost = 2 * np.bincount(group[chosen], minlength=n_groups)
    cost += 4 * np.bincount(group[twice], minlength=n_groups)  # six nodes, not two
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
