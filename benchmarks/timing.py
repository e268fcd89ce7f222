"""Timed runs of one workload: ig_plugin, alibi, and the floor (the bare gradients).

The floor evaluates the same gradients as IG, at the same path points and in the same batches,
with nothing around them: the points and targets are computed beforehand (untimed) and the timed
loop only calls one compiled ``tf.function`` per batch, which returns the gradient of the
selected output with respect to its input. For layer attributions the floor differentiates the
part of the model after the layer, run on points in the layer's output space.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from alibi.explainers import IntegratedGradients as AlibiIntegratedGradients
from workloads import Workload

from ig_plugin import IntegratedGradients
from ig_plugin._integral.quadrature import quadrature

METHOD = "gausslegendre"
RUNNERS = ("ig_plugin", "floor", "alibi")
#: The runners timed in alternation; the others are timed after them, one after the other.
ALTERNATING = ("ig_plugin", "floor")
#: Seconds under which a run is cheap enough to repeat as often as the most repeated runner.
QUICK_RUN_S = 3.0


@dataclass
class Case:
    """A workload made concrete: the model, its inputs and their targets (argmax of the model)."""

    workload: Workload
    model: keras.Model
    X: np.ndarray
    target: np.ndarray
    layer: Any


def make_case(workload: Workload, n_samples: int | None = None) -> Case:
    """Build the workload's model and inputs; ``n_samples`` defaults to the workload's N."""
    model = workload.build()
    X = workload.make_inputs(workload.n_samples if n_samples is None else n_samples)
    target = np.argmax(model.predict(X, batch_size=500, verbose=0), axis=1)
    layer = None if workload.layer is None else workload.layer(model)
    return Case(workload, model, X, target, layer)


def explainer(
    kind: str, case: Case, n_steps: int, batch_size: int | str, memory_budget: int | None = None
) -> Any:
    """An ig_plugin or alibi explainer for ``case``, with the same settings for both
    (``batch_size="auto"`` and ``memory_budget``: ig_plugin only)."""
    if memory_budget is not None:
        return IntegratedGradients(
            case.model,
            layer=case.layer,
            method=METHOD,
            n_steps=n_steps,
            internal_batch_size=batch_size,
            memory_budget=memory_budget,
        )
    cls = IntegratedGradients if kind == "ig_plugin" else AlibiIntegratedGradients
    return cls(
        case.model,
        layer=case.layer,
        method=METHOD,
        n_steps=n_steps,
        internal_batch_size=batch_size,
    )


def explain_runner(kind: str, case: Case, n_steps: int, batch_size: int) -> Callable[[], Any]:
    """One timed call: ``explain`` on all of X, baselines zero (the default of both)."""
    explaining = explainer(kind, case, n_steps, batch_size)
    return lambda: explaining.explain(case.X, target=case.target)


def _layers_after(model: keras.Model, layer: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """The model after ``layer``, for a chain model: its later layers applied in order."""
    later = model.layers[model.layers.index(layer) + 1 :]

    def head(x: tf.Tensor) -> tf.Tensor:
        for each in later:
            x = each(x)
        return x

    return head


def _path_ends(case: Case) -> tuple[np.ndarray, np.ndarray, Callable[[tf.Tensor], tf.Tensor]]:
    """Where the paths start and end, and the function of them that is differentiated."""
    baseline = np.zeros_like(case.X)
    if case.layer is None:
        return baseline, case.X, case.model
    # Layer attributions: the paths run in the layer's output space (here, the embedding's).
    start, end = (np.asarray(case.layer(x)) for x in (baseline, case.X))
    return start, end, _layers_after(case.model, case.layer)


def floor_runner(case: Case, n_steps: int, batch_size: int) -> Callable[[], Any]:
    """The bare cost of IG's gradients: the timed loop only calls one ``tf.function``."""
    start, end, function = _path_ends(case)
    alphas, _ = quadrature(METHOD, n_steps)
    # Sample-major order, as ig_plugin takes the pairs: points: (N * n_steps, *feature_shape).
    column = (1, -1) + (1,) * (start.ndim - 1)
    points = start[:, None] + alphas.reshape(column).astype(start.dtype) * (end - start)[:, None]
    points = points.reshape((-1, *start.shape[1:]))
    targets = np.repeat(case.target, n_steps)
    batches = [
        (
            tf.constant(points[first : first + batch_size]),
            tf.constant(targets[first : first + batch_size]),
        )
        for first in range(0, len(points), batch_size)
    ]

    @tf.function(reduce_retracing=True)
    def gradients(x: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            selected = tf.gather(function(x), t, batch_dims=1)
        return tape.gradient(selected, x)

    def run() -> None:
        for x, t in batches:
            gradients(x, t).numpy()

    return run


def runner(kind: str, case: Case, n_steps: int, batch_size: int) -> Callable[[], Any]:
    """The timed call of ``kind``: one of :data:`RUNNERS`."""
    if kind == "floor":
        return floor_runner(case, n_steps, batch_size)
    return explain_runner(kind, case, n_steps, batch_size)


def seconds(run: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def time_case(
    case: Case, kinds: tuple[str, ...], repeats: dict[str, int], n_steps: int, batch_size: int
) -> dict[str, dict[str, Any]]:
    """Warm up each runner once (tracing), then time ig_plugin and the floor in alternation,
    then alibi.

    Alternating spreads a change of machine load over ig_plugin and its floor alike. alibi runs
    apart: it allocates and frees gigabytes per run, and whichever runner follows it pays for
    the memory the system takes back (up to 20 % on workload 3, measured). A runner whose
    warm-up took less than :data:`QUICK_RUN_S` runs as often as the most repeated one, whatever
    ``repeats`` asks: its median then costs little and is as steady as theirs. Returns, per
    runner, the median and the individual times.
    """
    runs = {kind: runner(kind, case, n_steps, batch_size) for kind in kinds}
    most = max(repeats[kind] for kind in kinds)
    repeats = {kind: most if seconds(runs[kind]) < QUICK_RUN_S else repeats[kind] for kind in kinds}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    alternating = [kind for kind in kinds if kind in ALTERNATING]
    for round_ in range(max((repeats[kind] for kind in alternating), default=0)):
        for kind in alternating:
            if round_ < repeats[kind]:
                times[kind].append(seconds(runs[kind]))
    for kind in kinds:
        if kind not in ALTERNATING:
            times[kind] = [seconds(runs[kind]) for _ in range(repeats[kind])]
    return {
        kind: {"median_s": statistics.median(values), "runs_s": values}
        for kind, values in times.items()
    }
