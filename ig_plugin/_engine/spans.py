"""Run the compiled attribution over the samples, span by span.

No TensorFlow in this module. ``attribute(first, stop)`` returns the finished attributions of
samples ``first`` to ``stop - 1``; the gradient batches inside it are the compiled side's
business. Few calls are fastest (a compiled loop pays its dispatch once per call), but each call
copies its samples' path ends to TensorFlow, so a span holds at most :data:`SPAN_BYTES` of them:
memory stays flat as N grows. Progress is reported from inside the compiled loop, chunk by chunk
(:mod:`ig_plugin._engine.progress`), so spans need not be cut finer for it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: ``attribute(first, stop)``: per attributed tensor, the attributions of samples ``first`` to
#: ``stop - 1``, an array of shape ``(stop - first, [K,] *feature_shape)``.
AttributeFn = Callable[[int, int], list[np.ndarray]]

#: Most bytes of path ends (and, for layer attributions, model inputs) per span: 8 MiB keeps the
#: copies small beside a model's working memory, and spans long enough that dispatching a call
#: costs nothing measurable (for 32x32x3 images, 341 samples, 17,050 gradients, per call).
SPAN_BYTES = 8 * 1024 * 1024


#: Most pairs per span for plans made span by span (Expected Gradients' draws): a pair's plan is
#: four 8-byte values, held once in numpy and once as tensors, so 2**18 pairs keep that near
#: 16 MiB whatever N and the pairs per sample are (200 draws: 1,310 samples per span, each span
#: one compiled call of 262,144 gradients, so calls cost nothing).
SPAN_PAIRS = 2**18


def span_length(row_bytes: int, pairs_per_sample: int | None = None) -> int:
    """Samples per span: as many as :data:`SPAN_BYTES` allows, and with ``pairs_per_sample``
    (a plan made per span) :data:`SPAN_PAIRS`; at least one.

    ``row_bytes`` is what one sample's rows of the arrays copied per span take.
    """
    length = max(1, SPAN_BYTES // max(row_bytes, 1))
    if pairs_per_sample is not None:
        length = min(length, max(1, SPAN_PAIRS // pairs_per_sample))
    return length


def sample_spans(n_samples: int, length: int) -> list[tuple[int, int]]:
    """Split ``range(n_samples)`` into consecutive spans ``(first, stop)`` of ``length`` samples."""
    return [(first, min(first + length, n_samples)) for first in range(0, n_samples, length)]


def attribute_in_spans(attribute: AttributeFn, n_samples: int, length: int) -> list[np.ndarray]:
    """The attributions of all ``n_samples`` samples, ``length`` samples per call.

    Parameters
    ----------
    attribute
        Attributions of a span of samples; see :data:`AttributeFn`.
    n_samples, length
        Samples to attribute, and the most per ``attribute`` call (see :func:`span_length`).

    Returns
    -------
    list of numpy arrays
        One per attributed tensor, of shape ``(n_samples, *feature_shape)``.
    """
    spans = sample_spans(n_samples, length)
    results: list[np.ndarray] = []
    for first, stop in spans:
        parts = attribute(first, stop)
        if len(spans) == 1:
            results = list(parts)
        else:
            if not results:
                # Filled in place: concatenating the parts at the end would hold them twice.
                results = [np.empty((n_samples, *p.shape[1:]), dtype=p.dtype) for p in parts]
            for result, part in zip(results, parts, strict=True):
                result[first:stop] = part
    return results
