"""The span driver: spans of whole samples, bounded in bytes."""

import itertools

import numpy as np
import pytest

from ig_plugin._engine.spans import SPAN_BYTES, attribute_in_spans, sample_spans, span_length


class RecordingAttribute:
    """An ``attribute(first, stop)`` whose results name their samples, its calls recorded.

    Row ``i`` of the first tensor is ``i`` (as float32), of the second ``-i`` in a (2, 2) block
    (as float64), so the tests can see that every sample lands where it belongs.
    """

    def __init__(self):
        self.calls = []

    def __call__(self, first, stop):
        self.calls.append((first, stop))
        ids = np.arange(first, stop)
        return [
            ids.astype(np.float32)[:, None] * np.ones((1, 3), np.float32),
            -ids.astype(np.float64)[:, None, None] * np.ones((1, 2, 2)),
        ]


def expected(n_samples):
    ids = np.arange(n_samples)
    return ids[:, None] * np.ones((1, 3)), -ids[:, None, None] * np.ones((1, 2, 2))


def test_one_call_when_the_samples_fit_in_one_span():
    attribute = RecordingAttribute()
    results = attribute_in_spans(attribute, 7, length=7)
    assert attribute.calls == [(0, 7)]
    for result, reference in zip(results, expected(7), strict=True):
        np.testing.assert_array_equal(result, reference)


@pytest.mark.parametrize("n_samples, length", [(1, 1), (7, 3), (51, 2), (120, 50), (1000, 7)])
def test_spans_fill_the_results_in_order(n_samples, length):
    attribute = RecordingAttribute()
    results = attribute_in_spans(attribute, n_samples, length)

    assert attribute.calls == sample_spans(n_samples, length)
    assert all(stop - first <= length for first, stop in attribute.calls)
    for result, reference in zip(results, expected(n_samples), strict=True):
        np.testing.assert_array_equal(result, reference)
    assert [r.dtype for r in results] == [np.float32, np.float64]


def test_span_length_is_bounded_in_bytes():
    assert span_length(row_bytes=1024) == SPAN_BYTES // 1024
    assert span_length(row_bytes=4) == SPAN_BYTES // 4
    # A sample larger than the budget still gets a span of its own.
    assert span_length(row_bytes=2 * SPAN_BYTES) == 1


@pytest.mark.parametrize("n_samples, length", [(1, 1), (1, 50), (10, 3), (10, 10), (100, 7)])
def test_sample_spans(n_samples, length):
    spans = sample_spans(n_samples, length)
    assert spans[0][0] == 0
    assert spans[-1][1] == n_samples
    assert all(stop == next_first for (_, stop), (next_first, _) in itertools.pairwise(spans))
    assert all(0 < stop - first <= length for first, stop in spans)
    assert len(spans) == -(-n_samples // length)
