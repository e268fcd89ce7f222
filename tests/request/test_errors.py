"""Bad input: each case raises the right exception with a message naming the argument.

Errors about the arguments themselves must come before any TensorFlow work: a counting model
proves that the model was never called (not even traced) for those.
"""

from functools import partial

import numpy as np
import pytest
import tensorflow as tf
from models import TwoOutputs, binary_model

from ig_plugin import IntegratedGradients

N = 4
X = np.random.default_rng(50).normal(size=(N, 3)).astype("float32")


def test_counting_model_sees_a_valid_explain(counting):
    """The control for the tests below: a valid call does reach the model."""
    IntegratedGradients(counting, n_steps=2).explain(X, target=0)
    assert counting.calls > 0


# --- constructor arguments -----------------------------------------------------------------------

CONSTRUCTOR_CASES = {
    "unknown method": ({"method": "simpson"}, ValueError, "`method`"),
    "method not a string": ({"method": 3}, ValueError, "`method`"),
    "n_steps zero": ({"n_steps": 0}, ValueError, "`n_steps`"),
    "n_steps negative": ({"n_steps": -5}, ValueError, "`n_steps`"),
    "trapezoid with one step": (
        {"method": "riemann_trapezoid", "n_steps": 1},
        ValueError,
        "`n_steps`",
    ),
    "n_steps float": ({"n_steps": 10.0}, TypeError, "`n_steps`"),
    "n_steps bool": ({"n_steps": True}, TypeError, "`n_steps`"),
    "internal_batch_size zero": ({"internal_batch_size": 0}, ValueError, "`internal_batch_size`"),
    "internal_batch_size negative": (
        {"internal_batch_size": -1},
        ValueError,
        "`internal_batch_size`",
    ),
    "internal_batch_size float": (
        {"internal_batch_size": 10.0},
        TypeError,
        "`internal_batch_size`",
    ),
    "target_fn not callable": ({"target_fn": "argmax"}, TypeError, "`target_fn`"),
}


@pytest.mark.parametrize(
    "kwargs, error, match", CONSTRUCTOR_CASES.values(), ids=CONSTRUCTOR_CASES.keys()
)
def test_constructor_errors(counting, kwargs, error, match):
    with pytest.raises(error, match=match):
        IntegratedGradients(counting, **kwargs)
    assert counting.calls == 0


def test_model_not_callable():
    with pytest.raises(TypeError, match="`model`"):
        IntegratedGradients("not a model")


def test_valid_numpy_integer_n_steps(linear, linear_data):
    """numpy ints are ints: accepted and stored as plain int."""
    explainer = IntegratedGradients(linear, n_steps=np.int64(3), internal_batch_size=np.int32(4))
    assert explainer.meta["params"]["n_steps"] == 3
    assert type(explainer.meta["params"]["n_steps"]) is int
    assert type(explainer.meta["params"]["internal_batch_size"]) is int
    explainer.explain(linear_data, target=0)


# --- explain arguments, caught before any TensorFlow work ----------------------------------------

GATE = np.ones((N, 3), dtype="float32")

PRE_TF_CASES = {
    # target
    "target float scalar": ({"X": X, "target": 1.0}, TypeError, "`target`"),
    "target float array": (
        {"X": X, "target": np.array([0.0, 1.0, 1.0, 0.0])},
        TypeError,
        "`target`",
    ),
    "target float list": ({"X": X, "target": [0, 1.5, 1, 0]}, TypeError, "`target`"),
    "target bool": ({"X": X, "target": True}, TypeError, "`target`"),
    "target string": ({"X": X, "target": "cat"}, TypeError, "`target`"),
    "target wrong leading dim": ({"X": X, "target": [0, 1, 1]}, ValueError, "`target`"),
    "target rank 3": ({"X": X, "target": np.zeros((N, 1, 2), dtype=int)}, ValueError, "`target`"),
    "target negative": ({"X": X, "target": [0, -1, 1, 0]}, ValueError, "`target`"),
    "target negative scalar": ({"X": X, "target": -1}, ValueError, "`target`"),
    # X
    "X list of lists": ({"X": X.tolist()}, TypeError, r"`X`.*Received: a list of lists.*asarray"),
    "X bfloat16": (
        {"X": X.astype(tf.bfloat16.as_numpy_dtype)},
        TypeError,
        r"`X`.*float16, float32 or float64.*Received: dtype bfloat16",
    ),
    "X dict with non-string keys": ({"X": {0: X}}, TypeError, "`X`"),
    "X string": ({"X": "some text"}, TypeError, "`X`"),
    "X scalar array": ({"X": np.array(1.0)}, ValueError, "`X`"),
    "X empty": ({"X": np.zeros((0, 3), dtype="float32")}, ValueError, "`X`"),
    "X empty list": ({"X": []}, ValueError, "`X`"),
    "X with NaN": ({"X": np.where(X > 1, np.nan, X)}, ValueError, r"`X`.*NaN"),
    "X with inf": ({"X": np.where(X > 1, np.inf, X)}, ValueError, r"`X`.*infinity"),
    "X integer": ({"X": np.ones((N, 3), dtype="int32")}, TypeError, "layer"),
    "X bool": ({"X": np.ones((N, 3), dtype=bool)}, TypeError, "layer"),
    "X complex": ({"X": X.astype(np.complex64)}, TypeError, "`X`"),
    "X object": ({"X": X.astype(object)}, TypeError, "`X`"),
    "X inputs with different N": (
        {"X": [X, np.ones((N + 1, 2), dtype="float32")]},
        ValueError,
        r"`X`.*leading dimension",
    ),
    # baselines
    "baselines string": ({"X": X, "baselines": "zeros"}, TypeError, "`baselines`"),
    "baselines dict": ({"X": X, "baselines": {"a": 0.0}}, TypeError, "`baselines`"),
    "baselines bool": ({"X": X, "baselines": True}, TypeError, "`baselines`"),
    "baselines NaN": ({"X": X, "baselines": float("nan")}, ValueError, "`baselines`"),
    "baselines overflowing float32": (
        {"X": X, "baselines": 1e39},
        ValueError,
        r"`baselines` overflows the input's dtype float32",
    ),
    "baselines array overflowing float16": (
        {"X": X.astype("float16"), "baselines": np.full((1, 3), 7e4)},
        ValueError,
        r"`baselines` overflows the input's dtype float16",
    ),
    "baselines array with NaN": (
        {"X": X, "baselines": np.full((1, 3), np.nan)},
        ValueError,
        "`baselines`",
    ),
    "baselines wrong shape": ({"X": X, "baselines": np.zeros((N, 2))}, ValueError, "`baselines`"),
    "baselines wrong N": ({"X": X, "baselines": np.zeros((N - 1, 3))}, ValueError, "`baselines`"),
    "baselines list for single X": ({"X": X, "baselines": [0.0]}, TypeError, "`baselines`"),
    "baselines list of 1 for 2 inputs": (
        {"X": [X, X[:, :2]], "baselines": [np.zeros_like(X)]},
        ValueError,
        "`baselines`",
    ),
    "baselines array for multi-input X": (
        {"X": [X, X[:, :2]], "baselines": np.zeros_like(X)},
        TypeError,
        "`baselines`",
    ),
    "baselines entry wrong shape": (
        {"X": [X, X[:, :2]], "baselines": [np.zeros_like(X), np.zeros((N, 3))]},
        ValueError,
        r"`baselines\[1\]`",
    ),
    # forward_kwargs
    "forward_kwargs list": ({"X": X, "forward_kwargs": [GATE]}, TypeError, "`forward_kwargs`"),
    "forward_kwargs non-string key": (
        {"X": X, "forward_kwargs": {0: GATE}},
        TypeError,
        "`forward_kwargs`",
    ),
    "forward_kwargs wrong leading dim": (
        {"X": X, "forward_kwargs": {"gate": GATE[:2]}},
        ValueError,
        r"forward_kwargs\['gate'\]",
    ),
    "forward_kwargs tensor with wrong leading dim": (
        {"X": X, "forward_kwargs": {"gate": tf.constant(GATE[:2])}},
        ValueError,
        r"forward_kwargs\['gate'\].*shape \(2, 3\)",
    ),
    "forward_kwargs list with wrong leading dim": (
        {"X": X, "forward_kwargs": {"gate": GATE[:3].tolist()}},
        ValueError,
        r"forward_kwargs\['gate'\].*shape \(3, 3\)",
    ),
    # other
    "attribute_to_layer_inputs not bool": (
        {"X": X, "attribute_to_layer_inputs": "yes"},
        TypeError,
        "`attribute_to_layer_inputs`",
    ),
    "progress_bar a string": (
        {"X": X, "progress_bar": "no"},
        TypeError,
        r"`progress_bar` must be a bool. Received: str 'no'",
    ),
    "output a float": ({"X": X, "output": 1.0}, TypeError, "`output`"),
}


@pytest.mark.parametrize("kwargs, error, match", PRE_TF_CASES.values(), ids=PRE_TF_CASES.keys())
def test_explain_errors_before_tensorflow(counting, kwargs, error, match):
    explainer = IntegratedGradients(counting, n_steps=2)
    with pytest.raises(error, match=match):
        explainer.explain(**kwargs)
    assert counting.calls == 0, "the model ran before the bad input was caught"


def test_target_and_target_fn_together(counting):
    explainer = IntegratedGradients(counting, target_fn=partial(np.argmax, axis=1), n_steps=2)
    with pytest.raises(ValueError, match=r"`target`.*`target_fn`"):
        explainer.explain(X, target=0)
    assert counting.calls == 0


# --- errors that need the model's output shape ---------------------------------------------------


@pytest.fixture(scope="module")
def vector_explainer(linear):
    return IntegratedGradients(linear, n_steps=2)  # 3 features -> 2 outputs


@pytest.mark.parametrize(
    "target, match",
    [
        (None, "`target` is required"),
        (2, "`target` is out of range"),
        ([0, 1, 5, 0], "`target` is out of range"),
        (np.zeros((N, 2), dtype=int), "`target` must have shape"),
        (np.zeros((N, 1), dtype=int), "`target` must have shape"),
    ],
    ids=["missing", "out of range", "one out of range", "(N, 2) for (N, C)", "(N, 1)"],
)
def test_target_does_not_fit_vector_output(vector_explainer, target, match):
    with pytest.raises(ValueError, match=match):
        vector_explainer.explain(X, target=target)


def test_target_above_one_for_single_output_model():
    explainer = IntegratedGradients(binary_model(3, seed=51), n_steps=2)
    with pytest.raises(ValueError, match="`target` must be 0 or 1"):
        explainer.explain(X, target=[0, 1, 2, 1])


def test_target_fn_wrong_shape(linear):
    explainer = IntegratedGradients(linear, target_fn=partial(np.argmax, axis=0), n_steps=2)
    with pytest.raises(ValueError, match="target_fn"):
        explainer.explain(X)


def test_target_fn_returning_floats(linear):
    explainer = IntegratedGradients(linear, target_fn=lambda p: p[:, 0], n_steps=2)
    with pytest.raises(TypeError, match="target_fn"):
        explainer.explain(X)


def test_target_fn_out_of_range(linear):
    explainer = IntegratedGradients(linear, target_fn=lambda p: np.full(len(p), 7), n_steps=2)
    with pytest.raises(ValueError, match=r"target_fn.*out of range"):
        explainer.explain(X)


def test_multi_output_model_without_a_pick_lists_its_outputs():
    with pytest.raises(ValueError, match=r"has 2 outputs: \[0\] .* \[1\] .*output="):
        IntegratedGradients(TwoOutputs(), n_steps=2).explain(X, target=0)
