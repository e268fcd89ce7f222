"""The compiled loops of :mod:`ig_plugin._integral.fused_refinement` (numba, imported only when it
is used).

Every array of integrand values is ``(rows, K, features)``; per-leaf and per-sample quantities
are ``(n, K)``. What each quantity means is documented in :mod:`ig_plugin._integral.auto_steps`
(:class:`~ig_plugin._integral.auto_steps.Leaves`, :func:`~ig_plugin._integral.auto_steps._halve`,
:meth:`~ig_plugin._integral.auto_steps._JumpSums.estimates`,
:func:`~ig_plugin._integral.auto_steps._plan_splits`); the comments here say only how the loops
map onto it. Arithmetic is float64 throughout, whatever the integrand's dtype.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def node_sums(values, sums, start, stop):
    """``sums[r, k]``: the sum over the features of ``values[r, k]``, for ``start <= r < stop``."""
    for r in range(start, stop):
        for k in range(values.shape[1]):
            total = 0.0
            for f in range(values.shape[2]):
                total += values[r, k, f]
            sums[r, k] = total


@njit(cache=True, nogil=True)
def _rule(sums, low, middle, high, width, smooth, k):
    """A leaf's integral of the features' sum: Simpson's rule where smooth, else the trapezoid
    rule on its halves (:meth:`ig_plugin._integral.auto_steps.Leaves.node_weights`)."""
    if smooth:
        return width / 6.0 * (sums[low, k] + sums[high, k]) + width * (2.0 / 3.0) * sums[middle, k]
    return width / 4.0 * (sums[low, k] + sums[high, k]) + width / 2.0 * sums[middle, k]


@njit(cache=True, nogil=True)
def _count(jumps, sample, k, f, bend, sign):
    """Count one leaf's signed bend of feature ``(k, f)`` in (``sign`` 1) or out (-1) of its
    sample's jump sums: of ``|b|``, ``b`` and ``b**2``."""
    jumps[sample, 0, k, f] += sign * abs(bend)
    jumps[sample, 1, k, f] += sign * bend
    jumps[sample, 2, k, f] += sign * bend * bend


@njit(cache=True, nogil=True)
def whole_leaves(values, sums, lows, highs, nodes, samples, jumps, count_in):
    """Leaves that no halving made (the whole paths of the first round): their floors, smooth
    flags, smooth errors (all zero or False), estimates (their bends), excess (zero) and totals;
    counted in ``jumps`` where ``count_in``."""
    n, n_targets, n_features = len(lows), values.shape[1], values.shape[2]
    zeros = np.zeros((n, n_targets))
    estimates = np.zeros((n, n_targets))
    totals = np.zeros((n, n_targets))
    for i in range(n):
        a, m, b = nodes[i, 0], nodes[i, 1], nodes[i, 2]
        width = highs[i] - lows[i]
        for k in range(n_targets):
            bend = 0.0
            for f in range(n_features):
                signed = 0.25 * width * (2.0 * values[m, k, f] - values[a, k, f] - values[b, k, f])
                bend += abs(signed)
                if count_in:
                    _count(jumps, samples[i], k, f, signed, 1.0)
            estimates[i, k] = bend
            totals[i, k] = _rule(sums, a, m, b, width, False, k)
    return zeros, np.zeros(n, dtype=np.bool_), zeros.copy(), estimates, zeros.copy(), totals


@njit(cache=True, nogil=True)
def halve(
    values,
    sums,
    samples,
    lows,
    highs,
    nodes,
    smooth,
    errors,
    quarters,
    count_out,
    count_in,
    jumps,
    smooth_decay,
    smooth_low,
    smooth_high,
):
    """Each leaf's two halves (rows ``2i`` and ``2i + 1``), from the integrand at its quarter
    points (rows ``quarters[i]`` and ``quarters[n + i]``): their lows, highs, nodes, floors,
    smooth flags, smooth errors, estimates, excess and totals. Leaf ``i`` leaves the jump sums
    where ``count_out[i]`` (and it was in them: not smooth), its halves join them where
    ``count_in[i]`` (and they are not smooth)."""
    n, n_targets, n_features = len(lows), values.shape[1], values.shape[2]
    new_lows, new_highs = np.empty(2 * n), np.empty(2 * n)
    new_nodes = np.empty((2 * n, 3), dtype=np.int64)
    floors = np.empty((2 * n, n_targets))
    new_smooth = np.empty(2 * n, dtype=np.bool_)
    smooth_errors = np.empty((2 * n, n_targets))
    estimates = np.empty((2 * n, n_targets))
    excess = np.empty((2 * n, n_targets))
    totals = np.empty((2 * n, n_targets))
    parent_bends = np.empty(n_targets)
    left_bends, right_bends = np.empty(n_targets), np.empty(n_targets)
    refinements = np.empty(n_targets)
    for i in range(n):
        a, m, b = nodes[i, 0], nodes[i, 1], nodes[i, 2]
        q1, q2 = quarters[i], quarters[n + i]
        sample = samples[i]
        width = highs[i] - lows[i]
        parent_width, half_width = 0.25 * width, 0.125 * width
        leaving = count_out[i] and not smooth[i]
        for k in range(n_targets):
            parent_bend, left_bend, right_bend, refinement = 0.0, 0.0, 0.0, 0.0
            for f in range(n_features):
                low, middle, high = values[a, k, f], values[m, k, f], values[b, k, f]
                parent = parent_width * (2.0 * middle - low - high)
                left = half_width * (2.0 * values[q1, k, f] - low - middle)
                right = half_width * (2.0 * values[q2, k, f] - middle - high)
                parent_bend += abs(parent)
                left_bend += abs(left)
                right_bend += abs(right)
                refinement += abs(parent - 4.0 * (left + right))
                if leaving:
                    _count(jumps, sample, k, f, parent, -1.0)
            parent_bends[k], left_bends[k], right_bends[k] = parent_bend, left_bend, right_bend
            refinements[k] = refinement / 6.0
        # Smooth: the halves bend a quarter as much as the parent (for every target).
        is_smooth = True
        for k in range(n_targets):
            both = left_bends[k] + right_bends[k]
            ratio = both / parent_bends[k] if parent_bends[k] > 0.0 else 0.0
            if not (smooth_low <= ratio <= smooth_high):
                is_smooth = False
        middle_point = 0.5 * (lows[i] + highs[i])
        for side in range(2):
            row = 2 * i + side
            low_node, middle_node, high_node = (a, q1, m) if side == 0 else (m, q2, b)
            new_nodes[row, 0] = low_node
            new_nodes[row, 1] = middle_node
            new_nodes[row, 2] = high_node
            new_lows[row] = lows[i] if side == 0 else middle_point
            new_highs[row] = middle_point if side == 0 else highs[i]
            new_smooth[row] = is_smooth
            for k in range(n_targets):
                bend = left_bends[k] if side == 0 else right_bends[k]
                shortfall = max(errors[i, k] / smooth_decay - left_bends[k] - right_bends[k], 0.0)
                floors[row, k] = 0.5 * shortfall
                smooth_errors[row, k] = refinements[k]
                estimate = refinements[k] if is_smooth else max(bend, floors[row, k])
                estimates[row, k] = estimate
                excess[row, k] = estimate if is_smooth else estimate - bend
                totals[row, k] = _rule(
                    sums, low_node, middle_node, high_node, 0.5 * width, is_smooth, k
                )
        if count_in[i] and not is_smooth:
            for k in range(n_targets):
                for f in range(n_features):
                    low, middle, high = values[a, k, f], values[m, k, f], values[b, k, f]
                    left = half_width * (2.0 * values[q1, k, f] - low - middle)
                    right = half_width * (2.0 * values[q2, k, f] - middle - high)
                    _count(jumps, sample, k, f, left, 1.0)
                    _count(jumps, sample, k, f, right, 1.0)
    return (
        new_lows,
        new_highs,
        new_nodes,
        floors,
        new_smooth,
        smooth_errors,
        estimates,
        excess,
        totals,
    )


@njit(cache=True, nogil=True)
def assess(
    samples,
    estimates,
    excess,
    totals,
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
    ``sample_estimates``), and which leaves to halve (indices, by sample and within a sample in
    the leaves' order) with which of those to halve twice."""
    n, n_targets = estimates.shape
    n_samples, n_features = changes.shape[0], jumps.shape[3]
    counts = np.zeros(n_samples, dtype=np.int64)
    gathered = np.zeros((3, n_samples, n_targets))  # totals, estimates, excess
    for i in range(n):
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
    members = np.empty(n, dtype=np.int64)
    filled = starts[:-1].copy()
    for i in range(n):
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
        for j in range(len(own)):
            share = -np.inf
            for k in range(n_targets):
                share = max(share, estimates[own[j], k] * scale[s, k] / allowed[s, k])
            shares[j] = share
        total = shares.sum()
        left = max_steps - n_steps[s]
        ahead, cost = 0.0, 0
        for rank, j in enumerate(_largest_first(shares)):
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def collect(values, samples, lows, highs, nodes, smooth, done, results):
    """Add the rules of the leaves where ``done`` to their samples' ``results``."""
    for i in range(len(samples)):
        if not done[i]:
            continue
        width = highs[i] - lows[i]
        end_weight = width / 6.0 if smooth[i] else width / 4.0
        middle_weight = width * (2.0 / 3.0) if smooth[i] else width / 2.0
        a, m, b, s = nodes[i, 0], nodes[i, 1], nodes[i, 2], samples[i]
        for k in range(values.shape[1]):
            for f in range(values.shape[2]):
                results[s, k, f] += end_weight * (values[a, k, f] + values[b, k, f]) + (
                    middle_weight * values[m, k, f]
                )
