"""The completeness check: how the attributions add up against ``F(x) - F(x')``.

``deltas`` are ``sum(attributions) - (F(x) - F(x'))`` per sample (and per target, with several),
with ``F`` the explained scalar of the same target rule as the gradients. A sample whose
gradients were all zero although its output changed is warned about: that is what a path the
gradients cannot follow gives (a cast to an integer, a rounding, an argmax inside the model).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ig_plugin._engine.select import explained
from ig_plugin._request.rules import Rule


def attribution_sums(attributions: list[np.ndarray], many: bool) -> np.ndarray:
    """Sums over every attributed tensor's features, float64: ``(N,)``, or ``(N, K)``."""
    axes = 2 if many else 1
    return sum(a.reshape(*a.shape[:axes], -1).sum(axis=-1, dtype=np.float64) for a in attributions)


class OutputChanges(NamedTuple):
    """``F(end) - F(start)`` of the explained scalars, float64, ``(N,)`` or ``(N, K)``, and how
    far the model's rounding of the two outputs alone can move it."""

    changes: np.ndarray
    rounding: np.ndarray


def output_changes(rule: Rule, end_outputs: np.ndarray, start_outputs: np.ndarray) -> OutputChanges:
    """``F(end) - F(start)`` of the explained scalars, with its rounding error."""
    f_end, f_start = explained(rule, end_outputs), explained(rule, start_outputs)
    eps = np.finfo(f_end.dtype).eps if f_end.dtype.kind == "f" else 0.0
    magnitude = np.abs(f_end).astype(np.float64) + np.abs(f_start)
    return OutputChanges(f_end.astype(np.float64) - f_start, 4 * eps * magnitude)


def warn_if_not_differentiable(
    attributions: list[np.ndarray], changes: np.ndarray, many: bool
) -> None:
    """Warn about samples whose attributions are all zero although their output changed."""
    axes = 2 if many else 1
    all_zero = np.all([~a.reshape(*a.shape[:axes], -1).any(axis=-1) for a in attributions], axis=0)
    silent = all_zero & (np.abs(changes) > 1e-6)
    if many:
        silent = silent.any(axis=1)
        changes = np.abs(changes).max(axis=1)
    if silent.any():
        first = int(np.flatnonzero(silent)[0])
        warnings.warn(
            f"{int(silent.sum())} of {len(changes)} samples got all-zero attributions although "
            f"the explained output changed between baseline and input (sample {first}: by "
            f"{changes[first]:.4g}). Gradients do not flow along the path: the model may cast to "
            "an integer, round or take an argmax between the inputs and this output.",
            UserWarning,
            stacklevel=3,
        )
