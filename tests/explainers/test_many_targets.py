"""``explain(targets=...)``: K targets per sample in one pass, equal to K separate calls."""

import numpy as np
import pytest
from compat import keras
from models import (
    METHODS,
    RowCounter,
    binary_model,
    functional_mlp,
    multi_input_mlp,
    rank3_mlp,
    seeded_floats,
    set_seeded_weights,
)

from ig_plugin import IntegratedGradients
from ig_plugin._request.forward_kwargs import ForwardKwargs
from ig_plugin._request.inputs import Layout
from ig_plugin._request.request import ModelCall

X = seeded_floats((7, 4), seed=70)


@pytest.fixture(scope="module")
def classifier():
    return functional_mlp(4, 6, 5, seed=71)  # 5 classes


def assert_equal_to_separate_calls(explainer, X, targets, **kwargs):
    """``targets`` is (N, K); each column explained alone must give the same numbers."""
    together = explainer.explain(X, targets=targets, **kwargs)
    n, k = targets.shape
    assert together.deltas.shape == (n, k)
    np.testing.assert_array_equal(together.target, targets)
    for column in range(k):
        alone = explainer.explain(X, target=targets[:, column], **kwargs)
        for ours, theirs in zip(together.attributions, alone.attributions, strict=True):
            assert ours.shape == (n, k, *theirs.shape[1:])
            assert ours.dtype == theirs.dtype
            np.testing.assert_allclose(ours[:, column], theirs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together.deltas[:, column], alone.deltas, atol=1e-5)
    return together


@pytest.mark.parametrize("method", METHODS)
def test_equal_to_separate_calls_for_every_method(classifier, method):
    explainer = IntegratedGradients(classifier, method=method, n_steps=9, internal_batch_size=13)
    targets = np.random.default_rng(72).integers(0, 5, size=(7, 3))
    assert_equal_to_separate_calls(explainer, X, targets)


@pytest.mark.parametrize("to_inputs", [False, True])
def test_equal_to_separate_calls_with_a_layer(classifier, to_inputs):
    explainer = IntegratedGradients(classifier, layer=classifier.layers[1], n_steps=12)
    targets = np.tile([4, 0, 2], (7, 1))
    together = assert_equal_to_separate_calls(
        explainer, X, targets, attribute_to_layer_inputs=to_inputs
    )
    assert together.attributions[0].shape == (7, 3, 4 if to_inputs else 6)


def test_equal_to_separate_calls_with_two_inputs():
    model = multi_input_mlp(seed=73, n_out=4)
    X2 = [seeded_floats((5, 3), seed=74), seeded_floats((5, 2), seed=75)]
    explainer = IntegratedGradients(model, n_steps=10, internal_batch_size=6)
    assert_equal_to_separate_calls(explainer, X2, np.tile([3, 1], (5, 1)), baselines=[0.5, -1.0])


@pytest.mark.parametrize("n_targets", [10, 12, 23])
def test_more_targets_than_one_forward_pass_serves(classifier, n_targets):
    """Ten targets share a forward pass; more are taken in passes of at most ten (12 as 6 + 6,
    23 as 8 + 8 + 7 with a padded last pass), and each still equals its own call."""
    explainer = IntegratedGradients(classifier, n_steps=6, internal_batch_size=2 * n_targets + 3)
    targets = np.random.default_rng(n_targets).integers(0, 5, size=(7, n_targets))
    assert_equal_to_separate_calls(explainer, X, targets)


def test_every_k_gets_its_own_trace_without_a_batch_jacobian(classifier, monkeypatch):
    """One explainer asked for K = 2, 12 and 3 targets in turn: each K is traced with K known,
    so the one-hot backward passes serve it, never the batch Jacobian (the fallback for a trace
    that leaves K open, 1.6x slower than K separate calls and K times the memory)."""
    import tensorflow as tf

    def refuse(*args, **kwargs):
        raise AssertionError("batch_jacobian was used: K was not known in the trace")

    monkeypatch.setattr(tf.GradientTape, "batch_jacobian", refuse)
    explainer = IntegratedGradients(classifier, n_steps=5, internal_batch_size=30)
    for n_targets in (2, 12, 3):
        targets = np.random.default_rng(n_targets).integers(0, 5, size=(7, n_targets))
        assert_equal_to_separate_calls(explainer, X, targets)


def test_more_targets_than_one_pass_with_a_layer_and_two_inputs():
    model = multi_input_mlp(seed=80, n_out=4)
    X2 = [seeded_floats((5, 3), seed=81), seeded_floats((5, 2), seed=82)]
    targets = np.random.default_rng(83).integers(0, 4, size=(5, 13))
    explainer = IntegratedGradients(model, n_steps=5, internal_batch_size=40)
    assert_equal_to_separate_calls(explainer, X2, targets)
    layered = IntegratedGradients(model, layer=model.layers[-2], n_steps=5)
    assert_equal_to_separate_calls(layered, X2, targets)


def test_all_and_a_list_for_every_sample(classifier):
    explainer = IntegratedGradients(classifier, n_steps=8)
    every = explainer.explain(X, targets="all")
    np.testing.assert_array_equal(every.target, np.tile(np.arange(5), (7, 1)))
    listed = explainer.explain(X, targets=[1, 3])
    np.testing.assert_allclose(listed.attributions[0], every.attributions[0][:, [1, 3]], rtol=1e-5)
    # The classes of a softmax sum to one: their attributions sum to zero, feature by feature.
    np.testing.assert_allclose(every.attributions[0].sum(axis=1), 0, atol=1e-5)


def test_a_single_sigmoid_output_takes_targets_zero_and_one():
    model = binary_model(4, seed=76)
    explainer = IntegratedGradients(model, n_steps=10)
    both = explainer.explain(X, targets=[0, 1])
    np.testing.assert_allclose(both.attributions[0][:, 0], -both.attributions[0][:, 1], rtol=1e-5)
    one = explainer.explain(X, target=1)
    np.testing.assert_allclose(both.attributions[0][:, 1], one.attributions[0], rtol=1e-5)


def test_k_targets_share_a_chunk_by_memory():
    """internal_batch_size bounds the memory: with K targets a chunk holds as many points as
    fit in the memory of internal_batch_size one-target points. The activations are shared by
    the K targets and only the gradients multiply, so that is fewer points than the batch size
    and more than batch_size // K."""
    rows = []
    inputs = keras.Input((4,))
    counted = RowCounter(rows)(inputs)
    hidden = keras.layers.Dense(6, activation="tanh")(counted)
    model = set_seeded_weights(keras.Model(inputs, keras.layers.Dense(5)(hidden)), seed=77)
    explainer = IntegratedGradients(model, n_steps=10, internal_batch_size=20)
    explainer.explain(X, targets=[0, 1, 2, 3])
    gradient_chunks = rows[2:]  # after the forward passes on X and on the baselines
    cost = explainer._compiled_model().point_cost(
        (X,), ModelCall(Layout("single")), ForwardKwargs({}, {})
    )
    expected = int(20 * cost.gradient_bytes(1) / cost.gradient_bytes(4))
    assert 20 // 4 < expected < 20
    assert max(gradient_chunks) == expected
    assert sum(gradient_chunks) == 7 * 10  # every point once for all four targets


# --- errors ------------------------------------------------------------------------------------

ERRORS = {
    "with target": ({"targets": [0, 1], "target": 0}, ValueError, "at most one of `target`"),
    "unknown string": ({"targets": "every"}, ValueError, "`targets` as a string must be 'all'"),
    "floats": ({"targets": [0.0, 1.0]}, TypeError, "`targets` must hold integers"),
    "a number": ({"targets": 2}, TypeError, "`targets` must be 'all', a list"),
    "empty": ({"targets": []}, ValueError, r"K >= 1"),
    "wrong N": ({"targets": np.zeros((3, 2), int)}, ValueError, r"\(7, K\)"),
    "rank 3": ({"targets": np.zeros((7, 2, 1), int)}, ValueError, r"\(7, K\)"),
    "negative": ({"targets": [0, -1]}, ValueError, "must not be negative"),
    "out of range": ({"targets": [0, 5]}, ValueError, "`targets` is out of range"),
}


@pytest.mark.parametrize("kwargs, error, match", ERRORS.values(), ids=ERRORS.keys())
def test_bad_targets(classifier, kwargs, error, match):
    with pytest.raises(error, match=match):
        IntegratedGradients(classifier, n_steps=2).explain(X, **kwargs)


def test_targets_with_a_target_fn(classifier):
    explainer = IntegratedGradients(classifier, n_steps=2, target_fn=lambda p: p.argmax(1))
    with pytest.raises(ValueError, match=r"at most one of.*targets, target_fn"):
        explainer.explain(X, targets="all")


def test_all_needs_classes():
    with pytest.raises(ValueError, match=r"targets='all'.*pass targets=\[0, 1\]"):
        IntegratedGradients(binary_model(4, seed=78), n_steps=2).explain(X, targets="all")
    with pytest.raises(ValueError, match=r"targets='all'.*needs an output of shape \(N, C\)"):
        IntegratedGradients(rank3_mlp(4, (2, 3), seed=79), n_steps=2).explain(X, targets="all")
