"""``n_steps="auto"`` with each round's host work in a few compiled loops (numba), when numba is
installed (``pip install ig_plugin[fast]``).

The rule is :mod:`ig_plugin._integral.auto_steps`' (its docstring says what it does and why);
this module runs the same rounds. There, a round is a few hundred numpy passes over arrays of a
few hundred rows, and on small models their fixed costs outweigh the gradients: on the digits MLP
at tolerance 1e-2 the numpy work took as long as the gradients themselves. Here, per round, one
loop assesses the samples and chooses the leaves to halve, one collects the finished samples,
and one halves the leaves, each feature's values read once.

The layout differs, not the rule: the integrand of every attributed tensor sits side by side in
one store ``(rows, K, features)`` (``K`` is 1 for one target), and the leaves are compacted each
round. Sums run in another order than numpy's, so results agree with
:func:`ig_plugin._integral.auto_steps.integrate_auto` to rounding (the tests hold them to it),
and a leaf whose share sits on a threshold may be halved by one and not the other.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
import warnings
from types import ModuleType

import numpy as np

from ig_plugin._integral import auto_steps
from ig_plugin._integral.auto_steps import IntegrandAt, Leaves

#: Set to "0" to keep ``n_steps="auto"`` on the numpy rounds although numba is installed.
ENVIRONMENT_SWITCH = "IG_PLUGIN_NUMBA"


def available() -> bool:
    """numba is installed, imports, and is not switched off (:data:`ENVIRONMENT_SWITCH`)."""
    return os.environ.get(ENVIRONMENT_SWITCH, "1") != "0" and _compiled_loops() is not None


@functools.cache
def _compiled_loops() -> ModuleType | None:
    """The compiled loops, or None without numba. Imported on first use: importing numba takes a
    few tenths of a second, which only ``n_steps="auto"`` should pay. Their ``cache=True`` keeps
    the machine code on disk (next to the module, or in numba's user-wide cache where that is
    read-only), so the compile (a few seconds) is paid once per machine, not once per process."""
    if importlib.util.find_spec("numba") is None:
        return None
    try:
        loops = importlib.import_module("ig_plugin._integral._fused_kernels")
    except ImportError as error:  # for one, a numba built for another numpy
        warnings.warn(
            f"numba is installed but does not import ({error}); n_steps='auto' runs its rounds "
            f"in numpy, which is slower on small models. Set {ENVIRONMENT_SWITCH}=0 to silence "
            "this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return loops


def _kernels() -> ModuleType:
    """The compiled loops (only called where :func:`available` said so)."""
    loops = _compiled_loops()
    if loops is None:
        raise RuntimeError("numba is not available: check fused_refinement.available() first")
    return loops


class _Store:
    """The integrand at every node, each node once: ``values (rows, K, features)`` (the
    attributed tensors' features side by side, in their common dtype) and their sums over the
    features ``sums (rows, K)`` (float64). Grows by doubling."""

    def __init__(self, values: list[np.ndarray], many: bool) -> None:
        n_targets = values[0].shape[1] if many else 1
        self.widths = [math.prod(v.shape[2 if many else 1 :]) for v in values]
        self.dtype = np.result_type(*values)
        self.n_targets = n_targets
        self.size = 0
        self.values = np.empty((0, n_targets, sum(self.widths)), dtype=self.dtype)
        self.sums = np.empty((0, n_targets))
        self.append(values)

    def append(self, values: list[np.ndarray]) -> np.ndarray:
        """Store the integrand at new nodes; their rows."""
        n_new = len(values[0])
        start, stop = self.size, self.size + n_new
        if stop > len(self.values):
            capacity = max(2 * len(self.values), stop)
            self.values = auto_steps._room(self.values[:start], capacity)
            self.sums = auto_steps._room(self.sums[:start], capacity)
        offset = 0
        for value, width in zip(values, self.widths, strict=True):
            self.values[start:stop, :, offset : offset + width] = value.reshape(
                n_new, self.n_targets, width
            )
            offset += width
        _kernels().node_sums(self.values, self.sums, start, stop)
        self.size = stop
        return np.arange(start, stop)

    def split(self, flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        """``flat (N, K, features)`` as one array per attributed tensor, shaped ``shapes``."""
        bounds = np.cumsum([0, *self.widths])
        return [
            flat[:, :, low:high].reshape(shape).astype(self.dtype)
            for low, high, shape in zip(bounds[:-1], bounds[1:], shapes, strict=True)
        ]


def integrate_auto(
    integrand_at: IntegrandAt,
    changes: np.ndarray,
    rounding: np.ndarray,
    allowed_errors: np.ndarray,
    max_steps: int,
    many: bool = False,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """:func:`ig_plugin._integral.auto_steps.integrate_auto`, with the same arguments and
    results, each round's host work in compiled loops."""
    kernels = _kernels()
    n_samples = len(changes)
    as_targets = (n_samples, changes.shape[1] if many else 1)  # the loops' (N, K), K = 1 alone
    first_steps = auto_steps.first_round_steps(max_steps)
    grid = np.linspace(0.0, 1.0, first_steps)
    grid[0] = auto_steps.PATH_START
    first_values = integrand_at(
        np.repeat(np.arange(n_samples), first_steps), np.tile(grid, n_samples)
    )
    shapes = [(n_samples, *v.shape[1:]) for v in first_values]
    store = _Store(first_values, many)
    # Per sample, target and feature, the sums over its rough leaves of |b|, b and b**2 (see
    # auto_steps._JumpSums), float64.
    jumps = np.zeros((n_samples, 3, *store.values.shape[1:]))
    leaves = _first_leaves(store, jumps, n_samples, first_steps)
    results = np.zeros((n_samples, *store.values.shape[1:]))
    n_steps = np.full(n_samples, first_steps, dtype=np.int64)
    estimates = np.zeros(as_targets)
    while len(leaves.samples):
        finished, chosen, twice = kernels.assess(
            leaves.samples,
            leaves.estimates,
            leaves.excess,
            leaves.totals,
            changes.reshape(as_targets),
            rounding.reshape(as_targets),
            allowed_errors.reshape(as_targets),
            jumps,
            n_steps,
            max_steps,
            estimates,
            auto_steps.JUMP_SIGMAS,
            auto_steps.DEEP_SHARE,
        )
        done = finished[leaves.samples]
        if done.any():
            kernels.collect(store.values, *leaves[:4], leaves.smooth, done, results)
        if not len(chosen):
            break
        kept = ~done
        kept[chosen] = False
        split = leaves.take(chosen)
        np.add.at(n_steps, split.samples, np.where(twice, 6, 2))
        leaves = _union(leaves.take(kept), _split(integrand_at, store, jumps, split, twice))
    attributions = store.split(results, shapes)
    return attributions, n_steps, estimates if many else estimates[:, 0]


def _union(first: Leaves, second: Leaves) -> Leaves:
    """The leaves of both, ``first``'s then ``second``'s."""
    return Leaves._make(np.concatenate(pair) for pair in zip(first, second, strict=True))


def _first_leaves(store: _Store, jumps: np.ndarray, n_samples: int, n_nodes: int) -> Leaves:
    """Each sample's path at its first ``n_nodes`` nodes, halved as
    :func:`ig_plugin._integral.auto_steps._first_leaves` halves it, counted in ``jumps``."""
    kernels = _kernels()
    first_row = np.arange(n_samples) * n_nodes
    nodes = first_row[:, np.newaxis] + np.array([0, n_nodes // 2, n_nodes - 1])
    samples = np.arange(n_samples)
    lows, highs = np.zeros(n_samples), np.ones(n_samples)
    depth = n_nodes.bit_length() - 2  # 5 nodes: once; 9: twice
    made = kernels.whole_leaves(
        store.values, store.sums, lows, highs, nodes, samples, jumps, depth == 0
    )
    leaves = Leaves(samples, lows, highs, nodes, *made)
    for level in range(depth):
        quarters = np.concatenate([nodes[:, 0] + nodes[:, 1], nodes[:, 1] + nodes[:, 2]]) // 2
        last = level == depth - 1
        leaves = _halve(store, jumps, leaves, quarters, count_out=False, count_in=last)
        nodes = leaves.nodes
    return leaves


def _halve(
    store: _Store,
    jumps: np.ndarray,
    leaves: Leaves,
    quarters: np.ndarray,
    count_out: bool | np.ndarray,
    count_in: bool | np.ndarray,
) -> Leaves:
    """Each leaf's two halves, next to each other, with the integrand at its quarter points in
    ``store``'s rows ``quarters`` (all left quarters, then all right). The leaves leave the jump
    sums where ``count_out``, and their halves join them where ``count_in``."""
    n = len(leaves.samples)
    # Plain arrays (not broadcast views): each distinct array type is a compile of its own.
    out = np.full(n, count_out, dtype=bool) if np.isscalar(count_out) else count_out
    into = np.full(n, count_in, dtype=bool) if np.isscalar(count_in) else count_in
    made = _kernels().halve(
        store.values,
        store.sums,
        *leaves[:4],
        leaves.smooth,
        leaves.estimates,
        quarters,
        out,
        into,
        jumps,
        auto_steps.SMOOTH_DECAY,
        *auto_steps.SMOOTH_RATIOS,
    )
    return Leaves(np.repeat(leaves.samples, 2), *made)


def _split(
    integrand_at: IntegrandAt, store: _Store, jumps: np.ndarray, leaves: Leaves, twice: np.ndarray
) -> Leaves:
    """Each leaf halved, and halved again where ``twice`` (its quarters), every new node from
    one pass (see :func:`ig_plugin._integral.auto_steps._split`); the new leaves."""
    middles = 0.5 * (leaves.lows + leaves.highs)
    lows = np.concatenate([leaves.lows[twice], middles[twice]])
    highs = np.concatenate([middles[twice], leaves.highs[twice]])
    first = auto_steps._quarter_points(leaves.lows, leaves.highs)
    second = auto_steps._quarter_points(lows, highs)
    samples = np.concatenate([np.tile(leaves.samples, 2), np.tile(leaves.samples[twice], 4)])
    rows = store.append(integrand_at(samples, np.concatenate([first, second])))
    n = len(first)
    halves = _halve(store, jumps, leaves, rows[:n], count_out=True, count_in=~twice)
    if not twice.any():
        return halves
    again = np.repeat(twice, 2)
    deep = halves.take(again)
    by_leaf = np.arange(len(lows)).reshape(2, -1).T.ravel()
    quarter_rows = rows[n:][np.concatenate([by_leaf, by_leaf + len(lows)])]
    quarters = _halve(store, jumps, deep, quarter_rows, count_out=False, count_in=True)
    return _union(halves.take(~again), quarters)
