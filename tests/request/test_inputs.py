"""X, baselines and forward_kwargs: structures, broadcasting, no mutation, model kinds."""

import copy

import numpy as np
import pytest
import tensorflow as tf
from compat import keras
from models import (
    GatedLinear,
    functional_mlp,
    linear_multi_input_model,
    multi_input_mlp,
    seeded_floats,
    sequential_mlp,
    subclassed_mlp,
)

from ig_plugin import IntegratedGradients
from ig_plugin._engine import spans as _spans

WEIGHTS_A = np.array([[1.0, 0.5], [-2.0, 1.0], [0.25, -1.0]], dtype="float32")
WEIGHTS_B = np.array([[3.0, -0.5], [-1.0, 2.0]], dtype="float32")


@pytest.fixture(scope="module")
def two_inputs():
    return [seeded_floats((4, 3), seed=20), seeded_floats((4, 2), seed=21)]


@pytest.fixture(scope="module")
def linear_two_inputs():
    return linear_multi_input_model(WEIGHTS_A, WEIGHTS_B)


# --- several inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("container", [list, tuple])
def test_multi_input_closed_form(linear_two_inputs, two_inputs, container):
    explanation = IntegratedGradients(linear_two_inputs, n_steps=2).explain(
        container(two_inputs), target=1
    )
    assert isinstance(explanation.attributions, list) and len(explanation.attributions) == 2
    a, b = two_inputs
    np.testing.assert_allclose(explanation.attributions[0], WEIGHTS_A[:, 1] * a, rtol=1e-5)
    np.testing.assert_allclose(explanation.attributions[1], WEIGHTS_B[:, 1] * b, rtol=1e-5)


@pytest.mark.parametrize("container", [list, tuple])
def test_multi_input_completeness(two_inputs, container):
    model = multi_input_mlp(seed=22)
    explanation = IntegratedGradients(model, n_steps=50).explain(container(two_inputs), target=2)
    assert [a.shape for a in explanation.attributions] == [(4, 3), (4, 2)]
    gap = (
        np.asarray(model(two_inputs))[:, 2]
        - np.asarray(model([np.zeros((4, 3)), np.zeros((4, 2))]))[:, 2]
    )
    total = sum(a.sum(axis=1, dtype=np.float64) for a in explanation.attributions)
    np.testing.assert_allclose(total, gap, atol=1e-5)
    assert np.abs(explanation.deltas).max() < 1e-5
    # both inputs matter in this model
    assert all(np.abs(a).max() > 1e-3 for a in explanation.attributions)


def test_image_shaped_input_closed_form():
    """Inputs of rank 4 (N, H, W, C): each pixel gets its weight times its value."""
    inputs = keras.Input((2, 3, 2))
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    weights = np.random.default_rng(32).normal(size=(12, 2)).astype("float32")
    dense.set_weights([weights])
    X = seeded_floats((3, 2, 3, 2), seed=33)
    baselines = seeded_floats((1, 2, 3, 2), seed=34)
    explanation = IntegratedGradients(model, n_steps=3, internal_batch_size=4).explain(
        X, baselines=baselines, target=[0, 1, 1]
    )
    per_sample_weights = weights[:, [0, 1, 1]].T.reshape(3, 2, 3, 2)
    expected = per_sample_weights * (X - baselines)
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)
    assert np.abs(explanation.deltas).max() < 1e-5


def test_mixed_input_dtypes_are_kept(linear_two_inputs, two_inputs):
    X = [two_inputs[0].astype("float64"), two_inputs[1]]
    explanation = IntegratedGradients(linear_two_inputs, n_steps=2).explain(X, target=0)
    assert [a.dtype for a in explanation.attributions] == [np.float64, np.float32]
    np.testing.assert_allclose(explanation.attributions[0], WEIGHTS_A[:, 0] * X[0], rtol=1e-5)


def test_unconnected_input_gets_zero_attributions(two_inputs):
    """alibi bug 6: an input that does not reach the output crashed with a None gradient."""
    a, b = keras.Input((3,)), keras.Input((2,))
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model([a, b], dense(a))
    dense.set_weights([WEIGHTS_A])
    explanation = IntegratedGradients(model, n_steps=2).explain(two_inputs, target=0)
    np.testing.assert_array_equal(explanation.attributions[1], np.zeros((4, 2)))
    np.testing.assert_allclose(
        explanation.attributions[0], WEIGHTS_A[:, 0] * two_inputs[0], rtol=1e-5
    )
    assert np.abs(explanation.deltas).max() < 1e-5


# --- baselines -----------------------------------------------------------------------------------


def test_baseline_with_leading_dim_one_broadcasts(linear, linear_weights, linear_data):
    row = seeded_floats((1, 3), seed=23)
    explainer = IntegratedGradients(linear, n_steps=2)
    broadcast = explainer.explain(linear_data, baselines=row, target=0)
    tiled = explainer.explain(linear_data, baselines=np.repeat(row, 5, axis=0), target=0)
    np.testing.assert_allclose(broadcast.attributions[0], tiled.attributions[0], rtol=1e-6)
    expected = linear_weights[:, 0] * (linear_data - row)
    np.testing.assert_allclose(broadcast.attributions[0], expected, rtol=1e-5, atol=1e-6)
    assert broadcast.baselines.shape == linear_data.shape


@pytest.mark.parametrize("baseline", [np.float32(0.0), np.float64(0.5), np.array(0.5), 1])
def test_scalar_baselines(linear, linear_weights, linear_data, baseline):
    """alibi bug 8: np.float32(0) as baseline raised."""
    explanation = IntegratedGradients(linear, n_steps=2).explain(
        linear_data, baselines=baseline, target=1
    )
    expected = linear_weights[:, 1] * (linear_data - float(baseline))
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_baseline_dtype_follows_x(linear, linear_weights, linear_data, dtype):
    baselines = np.ones((1, 3), dtype=dtype)
    explanation = IntegratedGradients(linear, n_steps=2).explain(
        linear_data, baselines=baselines, target=0
    )
    assert explanation.attributions[0].dtype == np.float32
    assert explanation.baselines.dtype == np.float32
    expected = linear_weights[:, 0] * (linear_data - 1.0)
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)


def test_baselines_list_for_multi_input(linear_two_inputs, two_inputs):
    base_a = seeded_floats((4, 3), seed=24)
    base_b = seeded_floats((1, 2), seed=25)
    explainer = IntegratedGradients(linear_two_inputs, n_steps=2)
    for baselines, (ref_a, ref_b) in [
        ([base_a, base_b], (base_a, base_b)),
        ((base_a, 0.5), (base_a, 0.5)),
        ([None, base_b], (0.0, base_b)),
    ]:
        explanation = explainer.explain(two_inputs, baselines=baselines, target=0)
        a, b = two_inputs
        np.testing.assert_allclose(
            explanation.attributions[0], WEIGHTS_A[:, 0] * (a - ref_a), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            explanation.attributions[1], WEIGHTS_B[:, 0] * (b - ref_b), rtol=1e-5, atol=1e-6
        )


def test_caller_data_is_not_mutated(two_inputs):
    """alibi bug 9: the caller's baselines list was changed in place."""
    model = multi_input_mlp(seed=22)
    X = [x.copy() for x in two_inputs]
    baselines = [seeded_floats((1, 3), seed=26), 0.5]
    X_before, baselines_before = copy.deepcopy(X), copy.deepcopy(baselines)
    ids_before = [id(x) for x in X], [id(b) for b in baselines]
    IntegratedGradients(model, n_steps=5).explain(X, baselines=baselines, target=1)
    assert ([id(x) for x in X], [id(b) for b in baselines]) == ids_before
    assert len(X) == 2 and len(baselines) == 2
    for got, before in zip(X, X_before, strict=True):
        np.testing.assert_array_equal(got, before)
    np.testing.assert_array_equal(baselines[0], baselines_before[0])
    assert baselines[0].shape == (1, 3) and baselines[1] == 0.5


def test_caller_forward_kwargs_not_mutated():
    model = GatedLinear(WEIGHTS_A)
    X = seeded_floats((4, 3), seed=27)
    gate = np.array([[1.0, 0.0, 1.0]] * 4, dtype="float32")
    forward_kwargs = {"gate": gate}
    before = copy.deepcopy(forward_kwargs)
    IntegratedGradients(model, n_steps=2).explain(X, forward_kwargs=forward_kwargs, target=0)
    assert list(forward_kwargs) == ["gate"] and forward_kwargs["gate"] is gate
    np.testing.assert_array_equal(gate, before["gate"])


# --- forward_kwargs ------------------------------------------------------------------------------


@pytest.mark.parametrize("span_bytes", [None, 1])
def test_per_sample_forward_kwargs_follow_their_sample(monkeypatch, span_bytes):
    if span_bytes is not None:
        # One sample per compiled call: each call must get its own rows of the kwargs.
        monkeypatch.setattr(_spans, "SPAN_BYTES", span_bytes)
    model = GatedLinear(WEIGHTS_A)
    X = seeded_floats((4, 3), seed=28)
    gate = np.random.default_rng(29).integers(0, 2, size=(4, 3)).astype("float32")
    gate[0] = [1.0, 1.0, 0.0]  # make sure rows differ
    gate[1] = [0.0, 1.0, 1.0]
    # internal_batch_size 3: forward passes and gradient chunks both cut through the samples
    explainer = IntegratedGradients(model, n_steps=3, internal_batch_size=3)
    together = explainer.explain(X, forward_kwargs={"gate": gate}, target=1)
    assert np.abs(together.deltas).max() < 1e-5
    # closed form: y = (x * gate) @ W
    np.testing.assert_allclose(
        together.attributions[0], WEIGHTS_A[:, 1] * gate * X, rtol=1e-5, atol=1e-7
    )
    for i in range(4):
        alone = explainer.explain(X[i : i + 1], forward_kwargs={"gate": gate[i : i + 1]}, target=1)
        np.testing.assert_allclose(together.attributions[0][i], alone.attributions[0][0], rtol=1e-6)


def test_scalar_forward_kwargs():
    """alibi bug 8: {"training": False} crashed. Dropout makes training=True visible."""
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Dropout(0.5, seed=0)(inputs)))
    dense.set_weights([WEIGHTS_A])
    X = seeded_floats((4, 3), seed=30)
    explainer = IntegratedGradients(model, n_steps=2)
    explanation = explainer.explain(X, forward_kwargs={"training": False}, target=0)
    np.testing.assert_allclose(explanation.attributions[0], WEIGHTS_A[:, 0] * X, rtol=1e-5)
    assert explanation.forward_kwargs == {"training": False}
    default = explainer.explain(X, target=0)
    np.testing.assert_allclose(explanation.attributions[0], default.attributions[0], rtol=1e-6)


# --- Keras model kinds ---------------------------------------------------------------------------


def test_functional_sequential_subclassed_agree(mlp_data):
    """alibi bug 2: Keras 3 subclassed models failed at construction."""
    builders = (functional_mlp, sequential_mlp, subclassed_mlp)
    model_set = [build(4, 5, 3, seed=31) for build in builders]
    predictions = [np.asarray(m(mlp_data)) for m in model_set]
    for p in predictions[1:]:
        np.testing.assert_allclose(p, predictions[0], rtol=1e-6)
    results = [
        IntegratedGradients(m, n_steps=20).explain(mlp_data, target=1, baselines=-0.5)
        for m in model_set
    ]
    for result in results:
        np.testing.assert_allclose(
            result.attributions[0], results[0].attributions[0], rtol=1e-5, atol=1e-7
        )
        assert np.abs(result.deltas).max() < 1e-4
    assert np.abs(results[0].attributions[0]).max() > 1e-3


def test_vector_output_without_target_says_target(mlp, mlp_data):
    """alibi bug 7: a TensorFlow error instead of a message about `target`."""
    with pytest.raises(ValueError, match="`target`"):
        IntegratedGradients(mlp, n_steps=2).explain(mlp_data)


@pytest.mark.parametrize("convert", [tf.constant, np.ndarray.tolist, lambda a: tuple(a.tolist())])
@pytest.mark.parametrize("n_samples", [3, 4])  # 3: N equals internal_batch_size
def test_array_like_forward_kwargs_follow_their_sample(convert, n_samples):
    """A tensor or a list of rows must follow its sample like an array, not go whole to every
    gradient chunk (which silently gave each path point another sample's mask)."""
    model = GatedLinear(WEIGHTS_A)
    X = seeded_floats((n_samples, 3), seed=40)
    gate = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1]], dtype="float32")[:n_samples]
    explainer = IntegratedGradients(model, n_steps=4, internal_batch_size=3)
    explanation = explainer.explain(X, forward_kwargs={"gate": convert(gate)}, target=1)
    np.testing.assert_allclose(
        explanation.attributions[0], WEIGHTS_A[:, 1] * gate * X, rtol=1e-5, atol=1e-7
    )
    assert np.abs(explanation.deltas).max() < 1e-5
    # The explanation keeps them as arrays: JSON-safe, whatever the caller passed.
    np.testing.assert_array_equal(explanation.forward_kwargs["gate"], gate)
    explanation.to_json()


# --- X against the model's declared inputs -------------------------------------------------------


def test_x_is_checked_against_the_declared_input_shape(linear, linear_data):
    explainer = IntegratedGradients(linear, n_steps=2)
    explainer.explain(linear_data, target=0)  # traced for other N first
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 3\).*Received: shape \(3,\)"):
        explainer.explain(linear_data[0], target=0)
    with pytest.raises(ValueError, match=r"batch axis: pass X\[np.newaxis\]"):
        explainer.explain(linear_data[0], target=0)
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 3\).*Received: shape \(5, 2\)"):
        explainer.explain(linear_data[:, :2], target=0)
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 3\).*\(5, 3, 1\)"):
        explainer.explain(linear_data[..., np.newaxis], target=0)


def test_x_needs_one_array_per_declared_input(linear_two_inputs, two_inputs):
    explainer = IntegratedGradients(linear_two_inputs, n_steps=2)
    with pytest.raises(ValueError, match=r"model has 2 input.*Received: a single array"):
        explainer.explain(two_inputs[0], target=0)
    with pytest.raises(ValueError, match=r"model has 2 input.*Received: 3 arrays"):
        explainer.explain([*two_inputs, two_inputs[1]], target=0)
    with pytest.raises(ValueError, match=r"`X\[1\]` must have shape \(N, 2\)"):
        explainer.explain([two_inputs[0], two_inputs[0]], target=0)


# --- integer X -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int64", "bool"])
def test_integer_x_for_a_float_input_is_explained_as_floats(linear, linear_weights, dtype):
    """As alibi does: uint8 images need no conversion by hand when the model takes floats."""
    X = np.random.default_rng(41).integers(0, 2 if dtype == "bool" else 255, size=(4, 3))
    X = X.astype(dtype)
    explanation = IntegratedGradients(linear, n_steps=2).explain(X, target=1)
    assert explanation.attributions[0].dtype == np.float32
    np.testing.assert_allclose(
        explanation.attributions[0], linear_weights[:, 1] * X.astype("float32"), rtol=1e-5
    )
    assert explanation.X is X


def test_integer_x_for_an_integer_input_still_needs_a_layer():
    inputs = keras.Input((4,), dtype="int32")
    embedded = keras.layers.Embedding(10, 2)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(embedded)))
    with pytest.raises(TypeError, match=r"integer input.*attribute to a layer"):
        IntegratedGradients(model).explain(np.ones((2, 4), dtype="int32"))


# --- X as a dict ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def named_inputs():
    pixels, meta = keras.Input((3,), name="pixels"), keras.Input((2,), name="meta")
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model([pixels, meta], dense(keras.layers.Concatenate()([pixels, meta])))
    dense.set_weights([np.concatenate([WEIGHTS_A, WEIGHTS_B])])
    return model


def test_x_as_a_dict_by_input_name(named_inputs, two_inputs):
    a, b = two_inputs
    explainer = IntegratedGradients(named_inputs, n_steps=2)
    by_name = explainer.explain(
        {"meta": b, "pixels": a}, target=1, baselines={"meta": 0.5, "pixels": 0.0}
    )
    by_list = explainer.explain([a, b], target=1, baselines=[0.0, 0.5])
    # Attributions in the model's input order, whatever the dict's order.
    np.testing.assert_allclose(by_name.attributions[0], WEIGHTS_A[:, 1] * a, rtol=1e-5)
    np.testing.assert_allclose(by_name.attributions[1], WEIGHTS_B[:, 1] * (b - 0.5), rtol=1e-5)
    for ours, reference in zip(by_name.attributions, by_list.attributions, strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-6)
    assert set(by_name.baselines) == {"pixels", "meta"}


def test_x_as_a_dict_with_wrong_names(named_inputs, two_inputs):
    with pytest.raises(
        ValueError,
        match=r"model has 2 input.*named \['pixels', 'meta'\].*Received: keys \['pixels'\]",
    ):
        IntegratedGradients(named_inputs, n_steps=2).explain({"pixels": two_inputs[0]}, target=0)
    with pytest.raises(ValueError, match=r"`baselines` must have the keys of `X`"):
        IntegratedGradients(named_inputs, n_steps=2).explain(
            {"pixels": two_inputs[0], "meta": two_inputs[1]}, baselines={"pixels": 0.0}, target=0
        )
