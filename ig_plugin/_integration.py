"""Driving the gradient passes of one explain: a fixed rule, or each sample refined on its own.

:class:`Paths` holds what the compiled passes need and gives the attributions of any subset of
the samples under any plan, span by span; :func:`integrate_fixed` runs one quadrature rule over
all samples, :func:`integrate_refined` lets :func:`ig_plugin._auto_steps.integrate_auto` choose
the nodes sample by sample. Both draw a progress bar fed from inside the compiled loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from ig_plugin._auto_steps import integrate_auto
from ig_plugin._compiled import CompiledModel, PathEnds
from ig_plugin._forward_kwargs import ForwardKwargs
from ig_plugin._gradient_loop import SharedSteps
from ig_plugin._progress import reporting
from ig_plugin._request import Request
from ig_plugin._spans import attribute_in_spans, span_length
from ig_plugin._targets import TargetRule


class Paths(NamedTuple):
    """What the gradient passes of one explain need, for any subset of its samples.

    Attributes
    ----------
    compiled
        The model's compiled passes.
    ends
        Where every sample's paths start and end (and its real inputs, for a layer).
    request
        The explain call's normalised arguments.
    rule
        The target rule, with every sample's targets.
    batch_size
        ``internal_batch_size``: the most path points per gradient batch, each point with K
        targets counting K times.
    """

    compiled: CompiledModel
    ends: PathEnds
    request: Request
    rule: TargetRule
    batch_size: int

    def attribute(self, samples: np.ndarray, plan: SharedSteps, progress: Any) -> list[np.ndarray]:
        """The attributions of ``samples`` (indices into X) under ``plan``."""
        every = len(samples) == self.request.inputs.n_samples

        def pick(array: np.ndarray) -> np.ndarray:
            return array if every else array[samples]

        ends = PathEnds(*(tuple(map(pick, group)) for group in self.ends))
        kwargs = ForwardKwargs(
            {k: pick(v) for k, v in self.request.kwargs.per_sample.items()},
            self.request.kwargs.shared,
        )
        target = None if self.rule.target is None else pick(self.rule.target)
        chunk = self.rule.points_per_chunk(self.batch_size)
        attribute = self.compiled.attribution_fn(
            ends,
            kwargs,
            TargetRule(self.rule.kind, target),
            self.request.call,
            plan,
            chunk,
            progress,
        )
        length = span_length(
            sum(a[:1].nbytes for a in (*ends.starts, *ends.ends, *ends.model_inputs))
        )
        return attribute_in_spans(attribute, len(samples), length)


def integrate_fixed(paths: Paths, plan: SharedSteps) -> list[np.ndarray]:
    """Every sample's attributions under one quadrature rule."""
    n_samples, show = paths.request.inputs.n_samples, paths.request.show_progress
    total = n_samples * len(plan.alphas) * paths.rule.n_targets
    with (
        tqdm(total=total, disable=not show, desc="IG", unit="point") as bar,
        reporting(bar.update if show else None) as progress,
    ):
        return paths.attribute(np.arange(n_samples), plan, progress)


def integrate_refined(
    paths: Paths, changes: np.ndarray, rounding: np.ndarray, tolerance: float, max_steps: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``n_steps="auto"``: each sample refined until its error estimate is at most
    ``tolerance * max(|changes|, 1e-12)``, ``changes`` being its ``F(x) - F(x')`` (known to
    ``rounding``).

    Returns the attributions (in the attributed tensors' dtypes), the gradient evaluations per
    sample and the error estimates (see :func:`ig_plugin._auto_steps.integrate_auto`).
    """
    show = paths.request.show_progress
    with (
        tqdm(disable=not show, desc="IG (auto)", unit="point") as bar,
        reporting(bar.update if show else None) as progress,
    ):

        def attribute_level(active: np.ndarray, alphas: np.ndarray) -> list[np.ndarray]:
            # Plain sums at the level's new nodes: Romberg weighs them itself.
            plan = SharedSteps(alphas, np.ones_like(alphas))
            return [p.astype(np.float64) for p in paths.attribute(active, plan, progress)]

        allowed = tolerance * np.maximum(np.abs(changes), 1e-12)
        attributions, n_steps, errors = integrate_auto(
            attribute_level, changes, rounding, allowed, max_steps, paths.rule.many
        )
    dtypes = [end.dtype for end in paths.ends.ends]
    return [a.astype(d) for a, d in zip(attributions, dtypes, strict=True)], n_steps, errors
