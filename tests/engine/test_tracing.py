"""TracedOnceFunction: one trace per kind of call whatever the batch, and calls that reach the
trace with their tensors where the trace takes them."""

from __future__ import annotations

import enum
from typing import NamedTuple

import numpy as np
import pytest
import tensorflow as tf

from ig_plugin._engine.tracing import TracedOnceFunction


class Pair(NamedTuple):
    first: tf.Tensor
    second: tf.Tensor


class Mode(enum.Enum):
    PLUS = 1
    MINUS = -1


def weighted(pair: Pair, named: dict[str, tf.Tensor], mode: Mode, scale: float) -> tf.Tensor:
    """Every tensor with its own weight: a tensor bound to another's place changes the sum."""
    total = pair.first + 2.0 * pair.second
    for weight, key in enumerate(["zeta", "alpha", "mid"], start=3):
        total += weight * named[key]
    return mode.value * scale * total


def arguments(rows: int, seed: int) -> tuple[Pair, dict[str, np.ndarray], Mode, float]:
    draw = np.random.default_rng(seed).normal
    pair = Pair(tf.constant(draw(size=(rows, 3))), tf.constant(draw(size=(rows, 3))))
    # Inserted out of sorted order, one of them a numpy array: the trace takes them sorted.
    named = {
        "zeta": tf.constant(draw(size=(rows, 3))),
        "alpha": draw(size=(rows, 3)),
        "mid": tf.constant(draw(size=(rows, 3))),
    }
    return pair, named, Mode.MINUS, 0.5


def test_calls_bind_each_tensor_to_its_place_and_trace_once_for_every_batch() -> None:
    traces = []

    def counted(*args):
        traces.append(1)
        return weighted(*args)

    function = TracedOnceFunction(counted)
    for rows, seed in [(2, 0), (5, 1), (1, 2)]:
        args = arguments(rows, seed)
        np.testing.assert_allclose(function(*args).numpy(), weighted(*args).numpy(), rtol=1e-12)
    assert len(traces) == 1
    assert function._trace(arguments(4, 3)).flat  # the calls above took the flat way


def test_other_constants_bind_and_trace_again() -> None:
    """A constant whose repr does not say its value (here a different scale behind the same
    repr) goes through the binding call, which traces again for it."""

    class Scale:
        def __init__(self, value: float) -> None:
            self.value = value

        def __repr__(self) -> str:
            return "Scale"

    function = TracedOnceFunction(lambda x, scale: x * scale.value)
    x = tf.constant([[1.0, 2.0]])
    assert function(x, Scale(2.0)).numpy().tolist() == [[2.0, 4.0]]
    assert function(x, Scale(3.0)).numpy().tolist() == [[3.0, 6.0]]
    assert not function._trace((x, Scale(3.0))).flat


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_new_dtype_or_rank_is_a_trace_of_its_own(dtype: type) -> None:
    function = TracedOnceFunction(lambda x: tf.reduce_sum(x, axis=-1))
    assert function(np.ones((2, 3), dtype)).dtype == dtype
    assert function(np.ones((2, 3, 4), dtype)).numpy().shape == (2, 3)
    assert function(np.ones((5, 3), np.float16)).dtype == np.float16
