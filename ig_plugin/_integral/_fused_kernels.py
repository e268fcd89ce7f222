"""The compiled loops of :mod:`ig_plugin._integral.fused_refinement` (numba, imported only when it
is used).

Every array of integrand values is ``(rows, K, features)``; per-leaf and per-sample quantities
are ``(n, K)``. The leaves live in a pool, the fields of
:class:`~ig_plugin._integral.auto_steps.Leaves` in its order, then ``alive`` (one tuple, ``pool``,
for the loops that write leaves; :func:`assess`, :func:`new_nodes` and :func:`collect` take the
fields they read), with room to grow: rows ``[0, size)`` are in use, and ``alive`` marks the
leaves among them (not halved, their sample not finished). A halving writes its left half over
its parent and appends the rest. What each quantity means is documented in
:mod:`ig_plugin._integral.auto_steps`
(:class:`~ig_plugin._integral.auto_steps.Leaves`, :func:`~ig_plugin._integral.auto_steps._halve`,
:meth:`~ig_plugin._integral.auto_steps._JumpSums.estimates`,
:func:`~ig_plugin._integral.auto_steps._plan_splits`); the comments here say only how the loops
map onto it. Arithmetic is float64 throughout, whatever the integrand's dtype.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def _compiled(**options):
    """``njit``, the machine code kept on disk where numba finds a writable place for it (next
    to this module, or its user-wide cache): compiled once per machine. Where it finds none (a
    read-only install and home), numba refuses ``cache=True`` outright; the loops are then
    compiled in each process instead."""

    def decorate(function):
        try:
            return njit(cache=True, nogil=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return njit(nogil=True, **options)(function)

    return decorate


@_compiled(fastmath={"reassoc", "contract"})
def node_sums(values, sums, start, stop):
    """``sums[r, k]``: the sum over the features of ``values[r, k]``, for ``start <= r < stop``."""
    for r in range(start, stop):
        for k in range(values.shape[1]):
            total = 0.0
            for f in range(values.shape[2]):
                total += values[r, k, f]
            sums[r, k] = total


@_compiled(inline="always")
def _rule(sums, low, middle, high, width, smooth, k):
    """A leaf's integral of the features' sum: Simpson's rule where smooth, else the trapezoid
    rule on its halves (:meth:`ig_plugin._integral.auto_steps.Leaves.node_weights`)."""
    if smooth:
        return width / 6.0 * (sums[low, k] + sums[high, k]) + width * (2.0 / 3.0) * sums[middle, k]
    return width / 4.0 * (sums[low, k] + sums[high, k]) + width / 2.0 * sums[middle, k]


@_compiled(inline="always")
def _count(jumps, sample, k, f, bend, sign):
    """Count one leaf's signed bend of feature ``(k, f)`` in (``sign`` 1) or out (-1) of its
    sample's jump sums: of ``|b|``, ``b`` and ``b**2``."""
    jumps[sample, 0, k, f] += sign * abs(bend)
    jumps[sample, 1, k, f] += sign * bend
    jumps[sample, 2, k, f] += sign * bend * bend


@_compiled(fastmath={"reassoc", "contract"})
def whole_leaves(values, sums, n_nodes, pool, jumps, count_in):
    """Pool rows ``[0, N)``: each sample's whole path, a leaf that no halving made, from its
    first ``n_nodes`` nodes (store rows ``[s * n_nodes, (s + 1) * n_nodes)``); its estimate is
    its bend, and it joins the jump sums where ``count_in``."""
    samples, lows, highs, nodes, floors, smooth, smooth_errors, estimates, excess, totals, alive = (
        pool
    )
    n_targets, n_features = values.shape[1], values.shape[2]
    for s in range(jumps.shape[0]):
        a, m, b = s * n_nodes, s * n_nodes + n_nodes // 2, (s + 1) * n_nodes - 1
        samples[s], lows[s], highs[s], smooth[s], alive[s] = s, 0.0, 1.0, False, True
        nodes[s, 0], nodes[s, 1], nodes[s, 2] = a, m, b
        for k in range(n_targets):
            bend = 0.0
            for f in range(n_features):
                signed = 0.25 * (2.0 * values[m, k, f] - values[a, k, f] - values[b, k, f])
                bend += abs(signed)
                if count_in:
                    _count(jumps, s, k, f, signed, 1.0)
            floors[s, k], smooth_errors[s, k], excess[s, k] = 0.0, 0.0, 0.0
            estimates[s, k] = bend
            totals[s, k] = _rule(sums, a, m, b, 1.0, False, k)


# Inlined into ``split``, as ``_rule`` and ``_count`` are into their callers: a call per halving
# cost as much as the halving itself on narrow inputs (halving the tiny model's 200 first leaves
# thrice took 266 us called and 151 us inlined, on a 2-core Intel Xeon), and the cold compile
# took as long either way (about 5 s there).
@_compiled(fastmath={"reassoc", "contract"}, inline="always")
def _halve_into(
    values,
    sums,
    pool,
    jumps,
    parent,
    q1,
    q2,
    left_row,
    right_row,
    count_out,
    count_in,
    constants,
    buffers,
):
    """Halve the leaf in pool row ``parent``, with the integrand at its quarter points in store
    rows ``q1`` and ``q2``, into pool rows ``left_row`` (which may be ``parent``) and
    ``right_row``. The parent leaves the jump sums where ``count_out`` (if it was in them: not
    smooth), its halves join them where ``count_in`` (if they are not smooth). ``constants``:
    :data:`~ig_plugin._integral.auto_steps.SMOOTH_DECAY` and the two
    :data:`~ig_plugin._integral.auto_steps.SMOOTH_RATIOS`; ``buffers``: room for one leaf's
    signed bends and sums."""
    samples, lows, highs, nodes, floors, smooth, smooth_errors, estimates, excess, totals, alive = (
        pool
    )
    smooth_decay, smooth_low, smooth_high = constants
    parents, lefts, rights, per_target = buffers
    n_targets, n_features = values.shape[1], values.shape[2]
    # The parent's fields first: its left half may take its row.
    a, m, b = nodes[parent, 0], nodes[parent, 1], nodes[parent, 2]
    sample, low_end, high_end = samples[parent], lows[parent], highs[parent]
    width = high_end - low_end
    parent_width, half_width = 0.25 * width, 0.125 * width
    for k in range(n_targets):
        parent_bend, left_bend, right_bend, refinement = 0.0, 0.0, 0.0, 0.0
        for f in range(n_features):
            low, middle, high = values[a, k, f], values[m, k, f], values[b, k, f]
            bent = parent_width * (2.0 * middle - low - high)
            left = half_width * (2.0 * values[q1, k, f] - low - middle)
            right = half_width * (2.0 * values[q2, k, f] - middle - high)
            parents[k, f], lefts[k, f], rights[k, f] = bent, left, right
            parent_bend += abs(bent)
            left_bend += abs(left)
            right_bend += abs(right)
            refinement += abs(bent - 4.0 * (left + right))
        per_target[0, k], per_target[1, k], per_target[2, k] = parent_bend, left_bend, right_bend
        per_target[3, k] = refinement / 6.0
        per_target[4, k] = estimates[parent, k]  # the parent's error estimate
    if count_out and not smooth[parent]:
        for k in range(n_targets):
            for f in range(n_features):
                _count(jumps, sample, k, f, parents[k, f], -1.0)
    # Smooth: the halves bend a quarter as much as the parent (for every target).
    is_smooth = True
    for k in range(n_targets):
        both = per_target[1, k] + per_target[2, k]
        ratio = both / per_target[0, k] if per_target[0, k] > 0.0 else 0.0
        if not (smooth_low <= ratio <= smooth_high):
            is_smooth = False
    middle_point = 0.5 * (low_end + high_end)
    for side in range(2):
        row = left_row if side == 0 else right_row
        first, second, third = (a, q1, m) if side == 0 else (m, q2, b)
        nodes[row, 0], nodes[row, 1], nodes[row, 2] = first, second, third
        samples[row], smooth[row], alive[row] = sample, is_smooth, True
        lows[row] = low_end if side == 0 else middle_point
        highs[row] = middle_point if side == 0 else high_end
        for k in range(n_targets):
            bend = per_target[1 + side, k]
            both = per_target[1, k] + per_target[2, k]
            floors[row, k] = 0.5 * max(per_target[4, k] / smooth_decay - both, 0.0)
            smooth_errors[row, k] = per_target[3, k]
            estimate = per_target[3, k] if is_smooth else max(bend, floors[row, k])
            estimates[row, k] = estimate
            excess[row, k] = estimate if is_smooth else estimate - bend
            totals[row, k] = _rule(sums, first, second, third, 0.5 * width, is_smooth, k)
    if count_in and not is_smooth:
        for k in range(n_targets):
            for f in range(n_features):
                _count(jumps, sample, k, f, lefts[k, f], 1.0)
                _count(jumps, sample, k, f, rights[k, f], 1.0)


@_compiled()
def split(
    values,
    sums,
    pool,
    size,
    chosen,
    twice,
    first_rows,
    second_rows,
    count_out,
    jumps,
    constants,
):
    """Halve the leaves in pool rows ``chosen``, and halve their halves again where ``twice``;
    the pool's new size.

    The integrand at the quarter points of leaf ``chosen[t]`` is in store rows
    ``first_rows[2t]`` (left) and ``first_rows[2t + 1]`` (right); for the ``j``-th leaf halved
    twice, at its halves' quarter points in ``second_rows[4j : 4j + 4]`` (left half's left and
    right, right half's left and right). A leaf leaves the jump sums where ``count_out``; its
    halves join them, or, where halved twice, its quarters.
    """
    n_targets, n_features = values.shape[1], values.shape[2]
    buffers = (  # one leaf's signed bends (parent, halves) and its sums per target
        np.empty((n_targets, n_features)),
        np.empty((n_targets, n_features)),
        np.empty((n_targets, n_features)),
        np.empty((5, n_targets)),
    )
    j = 0  # leaves halved twice so far
    for t in range(len(chosen)):
        parent, right = chosen[t], size
        # One halving, or three (the leaf's, then its halves'), at one call site: numba
        # compiles a call once per site, and this one is the bulk of the compile.
        for step in range(3 if twice[t] else 1):
            if step == 0:
                half, quarters, at, leaving = parent, first_rows, 2 * t, count_out
            else:  # the left half (in the parent's row), then the right
                half = parent if step == 1 else right
                quarters, at, leaving = second_rows, 4 * j + 2 * (step - 1), False
            _halve_into(
                values,
                sums,
                pool,
                jumps,
                half,
                quarters[at],
                quarters[at + 1],
                half,
                size,
                leaving,
                step > 0 or not twice[t],
                constants,
                buffers,
            )
            size += 1
        j += twice[t]
    return size


@_compiled()
def new_nodes(samples, lows, highs, chosen, twice, n_steps):
    """Where halving the leaves in pool rows ``chosen`` puts new nodes, and whose they are: each
    leaf's two quarter points, then, for those halved ``twice``, the quarter points of both its
    halves (four each), in the order :func:`split` reads them. The positions are
    :func:`ig_plugin._integral.auto_steps._quarter_points`', to the bit (the same operations, in
    the same order, without fastmath). The new nodes are added to their samples' ``n_steps``."""
    n_chosen, n_twice = len(chosen), 0
    for t in range(n_chosen):
        n_twice += twice[t]
    alphas = np.empty(2 * n_chosen + 4 * n_twice)
    owners = np.empty(2 * n_chosen + 4 * n_twice, dtype=np.int64)
    deep = 2 * n_chosen  # where the next leaf halved twice writes its four
    for t in range(n_chosen):
        row = chosen[t]
        low, high, sample = lows[row], highs[row], samples[row]
        middle = 0.5 * (low + high)
        left, right = 0.5 * (low + middle), 0.5 * (middle + high)
        alphas[2 * t], alphas[2 * t + 1] = left, right
        owners[2 * t], owners[2 * t + 1] = sample, sample
        n_steps[sample] += 2
        if twice[t]:
            alphas[deep], alphas[deep + 1] = 0.5 * (low + left), 0.5 * (left + middle)
            alphas[deep + 2], alphas[deep + 3] = 0.5 * (middle + right), 0.5 * (right + high)
            for i in range(4):
                owners[deep + i] = sample
            n_steps[sample] += 4
            deep += 4
    return alphas, owners


@_compiled()
def assess(
    samples,
    estimates,
    excess,
    totals,
    alive,
    size,
    changes,
    rounding,
    allowed,
    jumps,
    n_steps,
    max_steps,
    sample_estimates,
    sigmas,
    deep_share,
):
    """One round's decisions: which samples are finished (their error estimates written to
    ``sample_estimates``), and which leaves to halve (pool rows, by sample and within a sample
    in the pool's order) with which of those to halve twice."""
    n, n_targets = size, estimates.shape[1]
    n_samples, n_features = changes.shape[0], jumps.shape[3]
    counts = np.zeros(n_samples, dtype=np.int64)
    gathered = np.zeros((3, n_samples, n_targets))  # totals, estimates, excess
    for i in range(n):
        if not alive[i]:
            continue
        s = samples[i]
        counts[s] += 1
        for k in range(n_targets):
            gathered[0, s, k] += totals[i, k]
            gathered[1, s, k] += estimates[i, k]
            gathered[2, s, k] += excess[i, k]
    finished = np.zeros(n_samples, dtype=np.bool_)
    scale = np.zeros((n_samples, n_targets))
    estimate = np.empty(n_targets)
    for s in range(n_samples):
        if counts[s] == 0:
            continue
        done = True
        for k in range(n_targets):
            cancelled = 0.0  # the jumps' part, per feature (_JumpSums.estimates)
            for f in range(n_features):
                spread = sigmas * math.sqrt(max(jumps[s, 2, k, f], 0.0) / 3.0)
                cancelled += min(max(jumps[s, 0, k, f], 0.0), max(abs(jumps[s, 1, k, f]), spread))
            summed = gathered[2, s, k] + cancelled
            gap = abs(gathered[0, s, k] - changes[s, k])
            estimate[k] = max(summed, gap - rounding[s, k])
            if not estimate[k] <= allowed[s, k]:
                done = False
            bound = gathered[1, s, k]
            scale[s, k] = summed / bound if bound > 0.0 else 0.0
        if done or max_steps - n_steps[s] < 2:  # a halving takes two gradients
            finished[s] = True
            for k in range(n_targets):  # a loop: a slice's assignment took 2 s to compile
                sample_estimates[s, k] = estimate[k]
    # Each sample's leaves, in their order.
    starts = np.zeros(n_samples + 1, dtype=np.int64)
    for s in range(n_samples):
        starts[s + 1] = starts[s] + counts[s]
    members = np.empty(starts[n_samples], dtype=np.int64)
    filled = starts[:-1].copy()
    for i in range(n):
        if alive[i]:
            members[filled[samples[i]]] = i
            filled[samples[i]] += 1
    marked = np.zeros(n, dtype=np.bool_)
    deep = np.zeros(n, dtype=np.bool_)
    n_chosen = 0
    for s in range(n_samples):
        if counts[s] == 0 or finished[s]:
            continue
        own = members[starts[s] : starts[s + 1]]
        shares = np.empty(len(own))
        total = 0.0
        for j in range(len(own)):
            share = -np.inf
            for k in range(n_targets):
                share = max(share, estimates[own[j], k] * scale[s, k] / allowed[s, k])
            shares[j] = share
            total += share
        left = max_steps - n_steps[s]
        ahead, cost = 0.0, 0
        ranked = _largest_first(shares)
        for rank in range(len(ranked)):
            j = ranked[rank]
            wanted = total - ahead > 0.5 * min(total, 1.0) or total <= 0.0
            if wanted and rank < left // 2:
                marked[own[j]] = True
                deep[own[j]] = shares[j] > deep_share
                cost += 6 if deep[own[j]] else 2
                n_chosen += 1
            ahead += shares[j]
        if cost > left:  # quartering would overrun max_steps: halve only
            for j in range(len(own)):
                deep[own[j]] = False
    chosen = np.empty(n_chosen, dtype=np.int64)
    twice = np.empty(n_chosen, dtype=np.bool_)
    c = 0
    for s in range(n_samples):
        for i in members[starts[s] : starts[s + 1]]:
            if marked[i]:
                chosen[c], twice[c] = i, deep[i]
                c += 1
    return finished, chosen, twice


@_compiled()
def _largest_first(values):
    """The indices of ``values`` by decreasing value, equal ones in their order: a merge sort
    written out, since numba's ``np.argsort(kind="mergesort")`` took seconds to compile."""
    n = len(values)
    order = np.arange(n)
    spare = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        for start in range(0, n, 2 * width):
            middle, stop = min(start + width, n), min(start + 2 * width, n)
            i, j = start, middle
            for out in range(start, stop):
                if j >= stop or (i < middle and values[order[i]] >= values[order[j]]):
                    spare[out] = order[i]
                    i += 1
                else:
                    spare[out] = order[j]
                    j += 1
        order, spare = spare, order
        width *= 2
    return order


@_compiled()
def collect(values, samples, lows, highs, nodes, smooth, alive, size, finished, results):
    """Add the rules of the leaves of the ``finished`` samples to their ``results``, and take
    those leaves out of the pool; how many they were."""
    taken = 0
    for i in range(size):
        if not (alive[i] and finished[samples[i]]):
            continue
        alive[i] = False
        taken += 1
        width = highs[i] - lows[i]
        end_weight = width / 6.0 if smooth[i] else width / 4.0
        middle_weight = width * (2.0 / 3.0) if smooth[i] else width / 2.0
        a, m, b, s = nodes[i, 0], nodes[i, 1], nodes[i, 2], samples[i]
        for k in range(values.shape[1]):
            for f in range(values.shape[2]):
                results[s, k, f] += end_weight * (values[a, k, f] + values[b, k, f]) + (
                    middle_weight * values[m, k, f]
                )
    return taken
