"""``n_steps="auto"`` with each round's host work in a few compiled loops (numba), when numba is
installed (``pip install ig_plugin[fast]``).

The rule is :mod:`ig_plugin._integral.auto_steps`' (its docstring says what it does and why);
this module runs the same rounds. There, a round is a few hundred numpy passes over arrays of a
few hundred rows, and on small models their fixed costs outweigh the gradients: on the digits MLP
at tolerance 1e-2 the numpy work took as long as the gradients themselves. Here, per round, one
loop assesses the samples and chooses the leaves to halve, one collects the finished samples,
one places the new nodes, and one halves the leaves, each feature's values read once; what
stays in Python is the call for the integrand at the new nodes and a few array operations.

The layout differs, not the rule: the integrand of every attributed tensor sits side by side in
one store ``(rows, K, features)`` (``K`` is 1 for one target), and a halving writes its halves
into the pool of leaves in place, so a round copies no leaf. Sums run in another order than
numpy's, so results agree with :func:`ig_plugin._integral.auto_steps.integrate_auto` to rounding
(the tests hold them to it), and a leaf whose share sits on a threshold may be halved by one and
not the other.
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

    def per_tensor(self, flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        """``flat (N, K, features)`` as one array per attributed tensor, shaped ``shapes``."""
        bounds = np.cumsum([0, *self.widths])
        return [
            flat[:, :, low:high].reshape(shape).astype(self.dtype)
            for low, high, shape in zip(bounds[:-1], bounds[1:], shapes, strict=True)
        ]


class _Pool:
    """The leaves, the fields of :class:`~ig_plugin._integral.auto_steps.Leaves` with room to
    grow: rows ``[0, size)`` are in use, ``alive`` marks the leaves among them. The loops halve
    leaves in place (the left half over its parent, the rest appended) and drop finished
    samples' leaves by marking them; when the dead rows outnumber the live ones, the live move
    to the front."""

    def __init__(self, n_samples: int, n_targets: int, capacity: int) -> None:
        per_target = np.zeros((capacity, n_targets))
        self.leaves = Leaves(
            np.zeros(capacity, dtype=np.int64),
            np.zeros(capacity),
            np.zeros(capacity),
            np.zeros((capacity, 3), dtype=np.int64),
            per_target,
            np.zeros(capacity, dtype=bool),
            per_target.copy(),
            per_target.copy(),
            per_target.copy(),
            per_target.copy(),
        )
        self.alive = np.zeros(capacity, dtype=bool)
        self.size = n_samples  # the whole paths, written by the first round's loop
        self.n_live = n_samples

    @property
    def fields(self) -> tuple[np.ndarray, ...]:
        """Every field, then ``alive``: the loops' ``pool``."""
        return (*self.leaves, self.alive)

    def compact(self) -> None:
        """The live rows to the front, where the dead ones outnumber them (between rounds: it
        moves rows)."""
        if 2 * self.n_live < self.size:
            live = np.flatnonzero(self.alive[: self.size])
            for held, value in zip(
                self.fields, (*self.leaves.take(live), self.alive[live]), strict=True
            ):
                held[: len(live)] = value
            self.alive[len(live) :] = False
            self.size = len(live)

    def make_room(self, extra: int) -> None:
        """Room for ``extra`` more rows."""
        if self.size + extra > len(self.alive):
            capacity = max(2 * len(self.alive), self.size + extra)
            self.leaves = Leaves._make(
                auto_steps._room(value[: self.size], capacity) for value in self.leaves
            )
            self.alive = auto_steps._room(self.alive[: self.size], capacity)
            self.alive[self.size :] = False

    def split(
        self,
        store: _Store,
        jumps: np.ndarray,
        chosen: np.ndarray,
        twice: np.ndarray,
        rows: np.ndarray,
        count_out: bool,
    ) -> None:
        """Halve the leaves ``chosen``, twice where ``twice``, with the integrand at the new
        nodes in ``store``'s ``rows``: two per leaf (its quarter points), then four per leaf
        halved twice (its halves' quarter points), in the order
        :func:`~ig_plugin._integral._fused_kernels.new_nodes` gives."""
        self.make_room(len(chosen) + 2 * int(twice.sum()))
        first = 2 * len(chosen)
        size = _kernels().split(
            store.values,
            store.sums,
            self.fields,
            self.size,
            chosen,
            twice,
            rows[:first],
            rows[first:],
            count_out,
            jumps,
            _smooth_constants(),
        )
        self.n_live += size - self.size
        self.size = size


def _smooth_constants() -> tuple[float, float, float]:
    """The halving's constants, read at each call (the tests patch them)."""
    return (auto_steps.SMOOTH_DECAY, *auto_steps.SMOOTH_RATIOS)


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
    first_values = integrand_at(*auto_steps.first_nodes(n_samples, first_steps))
    shapes = [(n_samples, *v.shape[1:]) for v in first_values]
    store = _Store(first_values, many)
    # Per sample, target and feature, the sums over its rough leaves of |b|, b and b**2 (see
    # auto_steps._JumpSums), float64.
    jumps = np.zeros((n_samples, 3, *store.values.shape[1:]))
    pool = _first_leaves(store, jumps, n_samples, first_steps)
    results = np.zeros((n_samples, *store.values.shape[1:]))
    n_steps = np.full(n_samples, first_steps, dtype=np.int64)
    estimates = np.zeros(as_targets)
    changes, rounding, allowed_errors = (
        a.reshape(as_targets) for a in (changes, rounding, allowed_errors)
    )
    while pool.n_live:
        pool.compact()
        leaves = pool.leaves
        finished, chosen, twice = kernels.assess(
            leaves.samples,
            leaves.estimates,
            leaves.excess,
            leaves.totals,
            pool.alive,
            pool.size,
            changes,
            rounding,
            allowed_errors,
            jumps,
            n_steps,
            max_steps,
            estimates,
            auto_steps.JUMP_SIGMAS,
            auto_steps.DEEP_SHARE,
        )
        if finished.any():
            pool.n_live -= kernels.collect(
                store.values, *leaves[:4], leaves.smooth, pool.alive, pool.size, finished, results
            )
        if not len(chosen):
            break
        alphas, new_samples = kernels.new_nodes(
            leaves.samples, leaves.lows, leaves.highs, chosen, twice, n_steps
        )
        rows = store.append(integrand_at(new_samples, alphas))
        pool.split(store, jumps, chosen, twice, rows, count_out=True)
    attributions = store.per_tensor(results, shapes)
    return attributions, n_steps, estimates if many else estimates[:, 0]


def _first_leaves(store: _Store, jumps: np.ndarray, n_samples: int, n_nodes: int) -> _Pool:
    """Each sample's path at its first ``n_nodes`` (3, 5 or 9) nodes, halved once (5) or twice
    (9) as :func:`ig_plugin._integral.auto_steps._first_leaves` halves it, the last leaves
    counted in ``jumps``."""
    n_targets = store.values.shape[1]
    pool = _Pool(n_samples, n_targets, capacity=4 * n_samples)
    depth = n_nodes.bit_length() - 2  # 5 nodes: once; 9: twice
    _kernels().whole_leaves(store.values, store.sums, n_nodes, pool.fields, jumps, depth == 0)
    if depth:
        starts = np.arange(n_samples)[:, np.newaxis] * n_nodes
        first = starts + np.array([n_nodes // 4, 3 * n_nodes // 4])  # the path's quarter points
        second = starts + np.array([1, 3, 5, 7]) if depth == 2 else starts[:, :0]  # its halves'
        rows = np.concatenate([first.ravel(), second.ravel()])
        everything = np.arange(n_samples)
        pool.split(store, jumps, everything, np.full(n_samples, depth == 2), rows, count_out=False)
    return pool
