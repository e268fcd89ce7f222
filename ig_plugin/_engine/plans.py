"""Plans: where the path points of a span of samples lie, and how their gradients add up.

The compiled loop (:func:`ig_plugin._engine.loop.integrate`) takes any plan through one small
protocol, :class:`Plan`: how many (sample, point) pairs the span has, the points of a chunk of
them with the factor each gradient is multiplied by and its weight, and how a finished sample's
sum becomes its attribution. A plan is a NamedTuple of tensors, so a compiled function takes it as
an argument and traces once per kind of plan.

- :class:`SharedSteps` (Integrated Gradients): every sample walks the same nodes from its start
  to its end; ``(end - start)`` is applied once, when the sample is finished.
- :class:`DrawnPairs` (Expected Gradients): each pair has its own start (a row of a table, e.g. a
  background sample), node and weight; ``(end - start)`` is applied pair by pair.
- :class:`BlurSteps` (Blur IG): the points are blurred copies of each sample, each with the
  finite-difference direction of the blur path as its factor.
- :class:`Idgi` wraps any plan whose points run along each sample's path in order: the loop then
  sums IDGI's terms (Yang et al., 2023) instead of ``weight * factor * gradient``, with the
  model's outputs along the path (:func:`ig_plugin._engine.path_math.idgi_terms`).

A new path method whose points can be laid out ahead (Blur IG: explicit points and per-point
factors) is one more plan here; a method that chooses each point from the last gradient (Guided
IG) uses :meth:`ig_plugin._engine.compiled.CompiledModel.gradients_at` instead.

Host side, :class:`SpanPlans` gives the plan of each span of samples and says what the span's
``starts`` are: the span's own rows, or one table shared by every span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import tensorflow as tf

from ig_plugin._engine.blur import gaussian_blur
from ig_plugin._engine.path_math import along_paths, chunk_points, scale


class Chunk(NamedTuple):
    """``hi - lo`` consecutive (sample, point) pairs of a span, sorted by sample.

    Attributes
    ----------
    sample_ids
        ``(n_pairs,)`` int64: the span row each pair belongs to, non-decreasing.
    last_is_complete
        Whether the chunk's last sample has no pairs after the chunk.
    points
        Per attributed tensor ``(n_pairs, *feature_shape)``: where the gradients are taken.
    weights
        ``(n_pairs,)``: each pair's weight in its sample's sum.
    factors
        Per attributed tensor ``(n_pairs, *feature_shape)``: what each gradient is multiplied by
        before it is weighted; None when the plan applies it at :meth:`Plan.finish` instead.
    """

    sample_ids: tf.Tensor
    last_is_complete: tf.Tensor
    points: list
    weights: tf.Tensor
    factors: list | None = None


class Plan(Protocol):
    """What the compiled loop asks of a plan (see the module docstring)."""

    @property
    def idgi(self) -> bool:
        """Whether the loop sums IDGI's terms (gradients weighed by the output changes along
        each sample's points) instead of ``weight * factor * gradient``: a Python bool, the
        same for every plan of a class, so it is static in a trace."""

    def n_pairs(self, ends: Sequence[tf.Tensor]) -> tf.Tensor:
        """The span's (sample, point) pairs, int64."""

    def chunk(
        self, starts: Sequence[tf.Tensor], ends: Sequence[tf.Tensor], lo: tf.Tensor, hi: tf.Tensor
    ) -> Chunk:
        """Pairs ``lo`` to ``hi - 1``: their points, factors and weights."""

    def finish(
        self, sums: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, rows: slice, many: bool
    ) -> tf.Tensor:
        """Finished samples' weighted sums ``(n, [K,] *feature_shape)`` float64 as attributions;
        they are the span's ``rows`` of one attributed tensor's ``starts`` and ``ends``."""


class SharedSteps(NamedTuple):
    """Every sample's path has the nodes ``alphas``: pair ``p`` is step ``p % S`` of sample
    ``p // S``; ``starts`` are the span's own rows."""

    alphas: tf.Tensor  # (S,)
    weights: tf.Tensor  # (S,)

    @property
    def idgi(self) -> bool:
        return False

    def n_pairs(self, ends: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.shape(ends[0], out_type=tf.int64)[0] * tf.size(self.alphas, out_type=tf.int64)

    def chunk(
        self, starts: Sequence[tf.Tensor], ends: Sequence[tf.Tensor], lo: tf.Tensor, hi: tf.Tensor
    ) -> Chunk:
        n_steps = tf.size(self.alphas, out_type=tf.int64)
        pairs = tf.range(lo, hi)
        sample_ids, step_ids = pairs // n_steps, pairs % n_steps
        first = lo // n_steps
        n_segments = (hi - 1) // n_steps - first + 1
        offset, samples = lo - first * n_steps, slice(first, first + n_segments)
        points = [
            chunk_points(
                start[samples], end[samples], self.alphas, offset, sample_ids - first, step_ids
            )
            for start, end in zip(starts, ends, strict=True)
        ]
        weights = tf.gather(self.weights, step_ids)
        return Chunk(sample_ids, hi % n_steps == 0, points, weights)

    def finish(
        self, sums: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, rows: slice, many: bool
    ) -> tf.Tensor:
        return scale(sums, starts[rows], ends[rows], many)


class DrawnPairs(NamedTuple):
    """Pairs with their own start rows, nodes and weights, sorted by sample; ``starts`` are a
    table of start rows shared by every span.

    Every sample of the span must have at least one pair; ``samples`` counts from 0 in the span.
    """

    samples: tf.Tensor  # (P,) int64, non-decreasing
    starts: tf.Tensor  # (P,) int64, rows of the start table
    alphas: tf.Tensor  # (P,)
    weights: tf.Tensor  # (P,)

    @property
    def idgi(self) -> bool:
        return False

    def n_pairs(self, ends: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.size(self.samples, out_type=tf.int64)

    def chunk(
        self, starts: Sequence[tf.Tensor], ends: Sequence[tf.Tensor], lo: tf.Tensor, hi: tf.Tensor
    ) -> Chunk:
        stop = tf.size(self.samples, out_type=tf.int64)
        sample_ids, start_ids = self.samples[lo:hi], self.starts[lo:hi]
        following = self.samples[tf.minimum(hi, stop - 1)]
        last_is_complete = tf.logical_or(
            tf.equal(hi, stop), tf.not_equal(following, sample_ids[-1])
        )
        points, factors = [], []
        for table, end in zip(starts, ends, strict=True):
            lows, highs = tf.gather(table, start_ids), tf.gather(end, sample_ids)
            point, factor = along_paths(lows, highs, self.alphas[lo:hi])
            points.append(point)
            factors.append(factor)
        return Chunk(sample_ids, last_is_complete, points, self.weights[lo:hi], factors)

    def finish(
        self, sums: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, rows: slice, many: bool
    ) -> tf.Tensor:
        return sums  # the chunks carried each pair's factor


class BlurSteps(NamedTuple):
    """Blur IG's points: pair ``p`` is step ``p % S`` of sample ``p // S``, the sample's image
    (its row of ``ends``, ``(n, H, W, C)``) blurred with ``sigmas[step]``; its factor is the
    finite-difference direction of the blur path, ``(blur(x, sigma + grad_step) - blur(x,
    sigma)) * scales[step]`` (PAIR saliency's, with ``scales = -d_sigma / grad_step``). The
    starts are not used."""

    sigmas: tf.Tensor  # (S,) float64
    grad_step: tf.Tensor  # () float64
    scales: tf.Tensor  # (S,) float64

    @property
    def idgi(self) -> bool:
        return False

    def n_pairs(self, ends: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.shape(ends[0], out_type=tf.int64)[0] * tf.size(self.sigmas, out_type=tf.int64)

    def chunk(
        self, starts: Sequence[tf.Tensor], ends: Sequence[tf.Tensor], lo: tf.Tensor, hi: tf.Tensor
    ) -> Chunk:
        n_steps = tf.size(self.sigmas, out_type=tf.int64)
        pairs = tf.range(lo, hi)
        sample_ids, step_ids = pairs // n_steps, pairs % n_steps
        images = tf.gather(ends[0], sample_ids)
        sigmas = tf.gather(self.sigmas, step_ids)
        points = gaussian_blur(images, sigmas)
        nudged = gaussian_blur(images, sigmas + self.grad_step)
        scales = tf.reshape(tf.gather(self.scales, step_ids), [-1, 1, 1, 1])
        factors = [tf.cast((nudged - points) * scales, ends[0].dtype)]
        weights = tf.ones(tf.shape(pairs), ends[0].dtype)
        return Chunk(
            sample_ids, hi % n_steps == 0, [tf.cast(points, ends[0].dtype)], weights, factors
        )

    def finish(
        self, sums: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, rows: slice, many: bool
    ) -> tf.Tensor:
        return sums  # the chunks carried each point's direction


class Idgi(NamedTuple):
    """The points of ``plan``, summed as IDGI (Yang et al., 2023) instead of as a quadrature.

    ``plan``'s pairs must run along each sample's path in order, both ends included: the loop
    gives interval ``[x_i, x_{i+1}]``'s output change to the features in proportion to the
    squared gradient at ``x_i``. ``plan``'s factors, weights and ``finish`` are not used.
    ``sign`` is 1 when the points run from the path's start to the explained input, -1 when
    they run from the input away from it (Blur IG, whose path starts at the image).
    """

    plan: Any
    sign: tf.Tensor  # () float64

    @property
    def idgi(self) -> bool:
        return True

    def n_pairs(self, ends: Sequence[tf.Tensor]) -> tf.Tensor:
        return self.plan.n_pairs(ends)

    def chunk(
        self, starts: Sequence[tf.Tensor], ends: Sequence[tf.Tensor], lo: tf.Tensor, hi: tf.Tensor
    ) -> Chunk:
        return self.plan.chunk(starts, ends, lo, hi)

    def finish(
        self, sums: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, rows: slice, many: bool
    ) -> tf.Tensor:
        return sums  # the terms are the attributions


# -- host side: the plan of each span ---------------------------------------------------------


class SpanPlans(Protocol):
    """The plans of one explain, span by span (numpy; the engine converts them to tensors)."""

    @property
    def pairs_per_sample(self) -> int:
        """Pairs per sample, for progress totals and for sizing spans."""

    @property
    def starts_per_sample(self) -> bool:
        """True: a span's ``starts`` are its own rows; False: the whole table of start rows."""

    @property
    def made_per_span(self) -> bool:
        """Each span gets a plan of its own, as large as its pairs (spans are sized by pairs
        too)."""

    def for_span(self, first: int, stop: int) -> Any:
        """The plan of samples ``first`` to ``stop - 1`` (sample ids counted from ``first``)."""


class SamePlan(NamedTuple):
    """One plan for every span: the shared steps of Integrated Gradients, or Blur IG's."""

    plan: SharedSteps | BlurSteps
    starts_per_sample: bool = True
    made_per_span: bool = False

    @property
    def pairs_per_sample(self) -> int:
        steps = self.plan.alphas if isinstance(self.plan, SharedSteps) else self.plan.sigmas
        return len(steps)

    def for_span(self, first: int, stop: int) -> SharedSteps | BlurSteps:
        return self.plan


class PlanPerSpan(NamedTuple):
    """A plan made for each span, e.g. Expected Gradients' draws, over a table of starts."""

    make: Callable[[int, int], DrawnPairs]
    pairs_per_sample: int
    starts_per_sample: bool = False
    made_per_span: bool = True

    def for_span(self, first: int, stop: int) -> DrawnPairs:
        return self.make(first, stop)


def shared_steps(alphas: np.ndarray, weights: np.ndarray) -> SamePlan:
    """Integrated Gradients' plan: every sample at the nodes ``alphas`` with ``weights``."""
    return SamePlan(SharedSteps(alphas, weights))


class IdgiPlans(NamedTuple):
    """Any span plans' points, summed as IDGI (:class:`Idgi`)."""

    plans: Any  # a SpanPlans whose points run along each sample's path in order
    sign: float = 1.0

    @property
    def pairs_per_sample(self) -> int:
        return int(self.plans.pairs_per_sample)

    @property
    def starts_per_sample(self) -> bool:
        return bool(self.plans.starts_per_sample)

    @property
    def made_per_span(self) -> bool:
        return bool(self.plans.made_per_span)

    def for_span(self, first: int, stop: int) -> Idgi:
        return Idgi(self.plans.for_span(first, stop), np.float64(self.sign))


def uniform_points(n_steps: int) -> SamePlan:
    """IDGI on the straight line: the ``n_steps + 1`` uniform points from the start to the end,
    both included (for :class:`IdgiPlans`; the weights are not used)."""
    alphas = np.linspace(0.0, 1.0, n_steps + 1)
    return shared_steps(alphas, np.ones_like(alphas))
