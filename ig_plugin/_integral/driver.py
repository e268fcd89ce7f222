"""Driving the gradient passes of one explain, for every path method.

:class:`Paths` holds what the compiled passes need (the model's passes, where each sample's paths
start and end, the forward_kwargs, the target rule, how the model is called and the batch size)
and gives the attributions of its samples under any plan, span by span. :func:`integrate` runs
one plan over every sample under one progress bar; :func:`integrate_refined` lets
:func:`ig_plugin._integral.auto_steps.integrate_auto` choose the nodes sample by sample.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ig_plugin._engine.compiled import CompiledModel, PathEnds
from ig_plugin._engine.memory import BatchSize, PointCost
from ig_plugin._engine.plans import SpanPlans
from ig_plugin._engine.progress import reporting
from ig_plugin._engine.spans import attribute_in_spans, sample_spans, span_length
from ig_plugin._integral import fused_refinement
from ig_plugin._integral.auto_steps import IntegrandAt, integrate_auto, warn_if_unmet
from ig_plugin._request.forward_kwargs import ForwardKwargs
from ig_plugin._request.request import ModelCall
from ig_plugin._request.rules import Rule


@dataclass(frozen=True)
class Paths:
    """What the gradient passes of one explain need, for all of its samples or some.

    Attributes
    ----------
    compiled
        The model's compiled passes.
    ends
        Where every sample's paths start and end (and its real inputs, for a layer).
    kwargs
        The forward_kwargs, split by how they travel.
    rule
        The target rule, with every sample's targets.
    call
        How the model is called.
    batch
        ``internal_batch_size`` (a count of one-target path points per gradient batch, or
        "auto") and ``memory_budget``.
    cost
        What one path point costs in memory (see :mod:`ig_plugin._engine.memory`): needed by
        "auto" and by several targets; None when neither is asked.
    """

    compiled: CompiledModel
    ends: PathEnds
    kwargs: ForwardKwargs
    rule: Rule
    call: ModelCall
    batch: BatchSize
    cost: PointCost | None

    @property
    def n_rows(self) -> int:
        """The samples explained."""
        return int(self.ends.ends[0].shape[0])

    @property
    def forward_rows(self) -> int:
        """Rows per forward pass."""
        return self.batch.forward_rows(self.cost)

    @property
    def gradient_points(self) -> int:
        """Path points per gradient batch, each with the rule's targets."""
        return self.batch.gradient_points(self.cost, self.rule.n_targets)

    def start_outputs(self, over_table: bool = False) -> np.ndarray:
        """The model output at each sample's path start (averaged over a table of starts with
        ``over_table``): see :meth:`CompiledModel.start_outputs`."""
        return self.compiled.start_outputs(
            self.ends, self.call, self.kwargs, self.forward_rows, over_table=over_table
        )

    def subset(self, samples: np.ndarray, starts_per_sample: bool = True) -> Paths:
        """The same paths for the samples ``samples`` (indices) only."""

        def pick(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
            return tuple(array[samples] for array in arrays)

        ends = PathEnds(
            pick(self.ends.starts) if starts_per_sample else self.ends.starts,
            pick(self.ends.ends),
            pick(self.ends.model_inputs),
        )
        kwargs = ForwardKwargs(
            {k: v[samples] for k, v in self.kwargs.per_sample.items()}, self.kwargs.shared
        )
        return replace(self, ends=ends, kwargs=kwargs, rule=self.rule.rows(samples))

    def gradients_at(
        self, points: list[np.ndarray], samples: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Gradients and explained outputs at points the host chose, one per row, point ``i``
        of sample ``samples[i]`` (see :meth:`CompiledModel.gradients_at`)."""
        return self.compiled.gradients_at(
            points,
            samples,
            self.ends.model_inputs,
            self.kwargs,
            self.rule,
            self.call,
            self.gradient_points,
        )

    def attribute(self, plans: SpanPlans, progress: tf.Tensor | None) -> list[np.ndarray]:
        """Every sample's attributions under ``plans``: per attributed tensor
        ``(N, [K,] *feature_shape)``, in its dtype."""
        chunk = self.gradient_points
        attribute = self.compiled.attribution_fn(
            self.ends, self.kwargs, self.rule, self.call, plans, chunk, progress
        )
        copied = (
            *self.ends.ends,
            *self.ends.model_inputs,
            *(self.ends.starts if plans.starts_per_sample else ()),
        )
        length = span_length(
            sum(a[:1].nbytes for a in copied),
            plans.pairs_per_sample if plans.made_per_span else None,
        )
        return attribute_in_spans(attribute, self.n_rows, length)


@contextlib.contextmanager
def progress_bar(show: bool, description: str, total: int | None) -> Iterator[tf.Tensor | None]:
    """A tqdm bar fed from inside the compiled loop (a token for it), or nothing."""
    with (
        tqdm(total=total, disable=not show, desc=description, unit="point") as bar,
        reporting(bar.update if show else None) as progress,
    ):
        yield progress


def integrate(
    paths: Paths, plans: SpanPlans, show_progress: bool, description: str
) -> list[np.ndarray]:
    """Every sample's attributions under ``plans``, with a progress bar if asked."""
    total = paths.n_rows * plans.pairs_per_sample * paths.rule.n_targets
    with progress_bar(show_progress, description, total) as progress:
        return paths.attribute(plans, progress)


#: Most bytes of integrand values ``n_steps="auto"`` may hold at once: each sample keeps the
#: integrand at its nodes (with a K axis for several targets), up to ``max_steps`` of them, in a
#: store that grows by doubling, plus a round's new values and the signed bends of the pieces it
#: halves. Samples are refined in groups that fit, so memory stays flat as N grows. A value is
#: counted at 8 bytes, a float64 model's: a float32 model's store takes half of that, which
#: leaves room for its float64 jump sums and estimates.
AUTO_BYTES = 256 * 1024 * 1024


def auto_group_length(paths: Paths, max_steps: int) -> int:
    """Samples refined together by ``n_steps="auto"``: as many as :data:`AUTO_BYTES` holds at
    their worst (every sample at ``max_steps``), at least one."""
    features = sum(int(np.prod(end.shape[1:])) for end in paths.ends.ends)
    per_sample = 4 * max_steps * 8 * features * paths.rule.n_targets
    return max(1, AUTO_BYTES // per_sample)


def _integrand(paths: Paths, update: Callable[[int], object] | None) -> IntegrandAt:
    """``integrand_at`` (see :data:`ig_plugin._integral.auto_steps.IntegrandAt`) on ``paths``;
    ``update`` (a progress bar's) is told how many nodes each round evaluated."""

    def integrand_at(samples: np.ndarray, alphas: np.ndarray) -> list[np.ndarray]:
        # Every node is a point of its own, not a term of a sum: plain gradients at host-built
        # points skip the compiled loop's chunking and per-sample sums, which cost 0.4 to 1 ms
        # more per round on the benchmark's models.
        starts = [start[samples] for start in paths.ends.starts]
        differences = [
            end[samples] - start for end, start in zip(paths.ends.ends, starts, strict=True)
        ]
        points = [
            start + alphas.astype(start.dtype).reshape(-1, *([1] * (start.ndim - 1))) * diff
            for start, diff in zip(starts, differences, strict=True)
        ]
        grads, _ = paths.gradients_at(points, samples)
        if update is not None:
            update(len(samples))
        many = paths.rule.many
        # In the gradients' own precision (at least float32): the integrand is no more precise
        # than they are, and float64 copies doubled the memory that auto's numpy work passes
        # over (about a quarter of its time on the digits MLP).
        products = [
            (diff[:, np.newaxis] if many else diff) * grad
            for diff, grad in zip(differences, grads, strict=True)
        ]
        return [p.astype(np.promote_types(p.dtype, np.float32), copy=False) for p in products]

    return integrand_at


def integrate_refined(
    paths: Paths,
    changes: np.ndarray,
    rounding: np.ndarray,
    tolerance: float,
    max_steps: int,
    show_progress: bool,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``n_steps="auto"``: each sample refined until its error estimate is at most
    ``tolerance * max(|changes|, 1e-12)``, ``changes`` being its ``F(x) - F(x')`` (known to
    ``rounding``).

    Returns the attributions (in the attributed tensors' dtypes), the gradient evaluations per
    sample and the error estimates (see :func:`ig_plugin._integral.auto_steps.integrate_auto`).
    """
    allowed = tolerance * np.maximum(np.abs(changes), 1e-12)
    group = auto_group_length(paths, max_steps)
    # The same rounds, their host work compiled where numba is installed.
    refine = fused_refinement.integrate_auto if fused_refinement.available() else integrate_auto
    parts = []
    with tqdm(disable=not show_progress, desc="IG (auto)", unit="point") as bar:
        for first, stop in sample_spans(paths.n_rows, group):
            rows = np.arange(first, stop)
            some = paths if stop - first == paths.n_rows else paths.subset(rows)
            parts.append(
                refine(
                    _integrand(some, bar.update if show_progress else None),
                    changes[rows],
                    rounding[rows],
                    allowed[rows],
                    max_steps,
                    paths.rule.many,
                )
            )
    attributions = [np.concatenate(column) for column in zip(*(p[0] for p in parts), strict=True)]
    n_steps = np.concatenate([p[1] for p in parts])
    errors = np.concatenate([p[2] for p in parts])
    unmet = errors > allowed
    warn_if_unmet(int((unmet.any(axis=1) if paths.rule.many else unmet).sum()), max_steps)
    dtypes = [end.dtype for end in paths.ends.ends]
    return [a.astype(d) for a, d in zip(attributions, dtypes, strict=True)], n_steps, errors
