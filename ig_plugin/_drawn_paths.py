"""Expected Gradients on the compiled gradient loop: its attributions span by span, and the mean
output at the path starts that its deltas need.

The gradients go through :meth:`ig_plugin._compiled.CompiledModel.attribution_fn` with a plan of
drawn pairs (:mod:`ig_plugin._draws`), whose start table is the background (or the layer's values
on it). Spans are cut so that both the path ends and the plan of a span stay small, so memory is
flat in the number of samples and of draws.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ig_plugin._compiled import CompiledModel, ModelCall, PathEnds
from ig_plugin._draws import PlanFn
from ig_plugin._forward_kwargs import ForwardKwargs
from ig_plugin._progress import reporting
from ig_plugin._spans import attribute_in_spans, span_length
from ig_plugin._targets import TargetRule

#: Most drawn pairs per span. A pair's plan is four 8-byte values, held once in numpy and once
#: as tensors: 2**18 pairs keep that near 16 MiB whatever N and n_samples are (200 draws: 1,310
#: samples per span, each span one compiled call of 262,144 gradients, so calls cost nothing).
SPAN_PAIRS = 2**18


def integrate_drawn(
    compiled: CompiledModel,
    ends: PathEnds,
    kwargs: ForwardKwargs,
    rule: TargetRule,
    call: ModelCall,
    plan: PlanFn,
    pairs_per_sample: int,
    batch_size: int,
    show_progress: bool,
) -> list[np.ndarray]:
    """The attributions of every sample under ``plan``: per attributed tensor
    ``(N, [K,] *feature_shape)``, in its dtype.

    ``ends.starts`` is the start table (one row per background row); ``batch_size`` is
    ``internal_batch_size``, the most path points per gradient batch (a point with K targets
    counts K times).
    """
    n_samples = ends.ends[0].shape[0]
    chunk = rule.points_per_chunk(batch_size)
    row_bytes = sum(a[:1].nbytes for a in (*ends.ends, *ends.model_inputs))
    length = min(span_length(row_bytes), max(1, SPAN_PAIRS // pairs_per_sample))
    with (
        tqdm(
            total=n_samples * pairs_per_sample,
            disable=not show_progress,
            desc="Expected Gradients",
            unit="point",
        ) as bar,
        reporting(bar.update if show_progress else None) as progress,
    ):
        attribute = compiled.attribution_fn(ends, kwargs, rule, call, plan, chunk, progress)
        return attribute_in_spans(attribute, n_samples, length)


def mean_start_outputs(
    compiled: CompiledModel,
    ends: PathEnds,
    kwargs: ForwardKwargs,
    call: ModelCall,
    batch_size: int,
) -> np.ndarray:
    """The model output at each sample's path starts, averaged over the background rows:
    ``(N, *output_shape)`` float64.

    Without a layer and without per-sample ``forward_kwargs`` every sample starts from the same
    rows, so the M rows are run once. Otherwise a sample's start depends on the sample: its own
    ``forward_kwargs`` row, or (with a layer) its real inputs beside the layer's value on a
    background row, as in the gradient passes. Then all N * M (sample, row) pairs are run, in
    blocks of at most 8 MiB of rows.
    """
    n_samples, n_rows = ends.ends[0].shape[0], ends.starts[0].shape[0]
    if compiled.layer is None and not kwargs.per_sample:
        outputs, _ = compiled.forward(ends.starts, call, kwargs, batch_size)
        mean = outputs.mean(axis=0, keepdims=True, dtype=np.float64)
        return np.broadcast_to(mean, (n_samples, *mean.shape[1:]))
    block = span_length(sum(a[:1].nbytes for a in (*ends.model_inputs, *ends.starts)))
    sums = np.zeros(0)  # shaped by the first block's outputs
    for first in range(0, n_samples * n_rows, block):
        pairs = np.arange(first, min(first + block, n_samples * n_rows))
        samples, rows = pairs // n_rows, pairs % n_rows
        if compiled.layer is None:
            per_sample = {key: value[samples] for key, value in kwargs.per_sample.items()}
            outputs, _ = compiled.forward(
                tuple(start[rows] for start in ends.starts),
                call,
                ForwardKwargs(per_sample, kwargs.shared),
                batch_size,
            )
        else:
            outputs, _ = compiled.forward(
                tuple(x[samples] for x in ends.model_inputs),
                call,
                kwargs,
                batch_size,
                mode="substitute",
                layer_values=tuple(start[rows] for start in ends.starts),
            )
        if first == 0:
            sums = np.zeros((n_samples, *outputs.shape[1:]))
        np.add.at(sums, samples, outputs)
    return sums / n_rows
