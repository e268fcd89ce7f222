"""Models with several output tensors: the caller picks one with ``output=``, and targets,
predictions and deltas then refer to it."""

import numpy as np
import pytest
from compat import keras

from ig_plugin import IntegratedGradients

X = np.random.default_rng(20).normal(size=(5, 4)).astype("float32")


def _seeded(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([0.7 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def heads():
    """A shared trunk with a 3-class softmax head ``probs`` and a scalar head ``value``."""
    inputs = keras.Input((4,))
    trunk = keras.layers.Dense(6, activation="tanh", name="trunk")(inputs)
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(trunk)
    value = keras.layers.Dense(1, name="value")(trunk)
    as_list = _seeded(keras.Model(inputs, [probs, value]))
    as_dict = keras.Model(inputs, {"p": probs, "v": value})
    only_probs = keras.Model(inputs, probs)
    only_value = keras.Model(inputs, value)
    return as_list, as_dict, only_probs, only_value


@pytest.mark.parametrize("pick", [0, "probs"])
def test_list_outputs_by_index_or_name_equal_the_single_output_model(heads, pick):
    as_list, _, only_probs, _ = heads
    target = np.arange(5) % 3
    picked = IntegratedGradients(as_list).explain(X, target=target, output=pick)
    single = IntegratedGradients(only_probs).explain(X, target=target)
    np.testing.assert_allclose(picked.attributions[0], single.attributions[0], rtol=1e-6)
    np.testing.assert_allclose(picked.predictions, single.predictions, rtol=1e-6)
    assert picked.predictions.shape == (5, 3)
    assert np.abs(picked.deltas).max() < 1e-4


@pytest.mark.parametrize("pick", [1, "v"])
def test_dict_outputs_by_index_or_key(heads, pick):
    _, as_dict, _, only_value = heads
    picked = IntegratedGradients(as_dict).explain(X, output=pick)
    single = IntegratedGradients(only_value).explain(X)
    np.testing.assert_allclose(picked.attributions[0], single.attributions[0], rtol=1e-6)
    np.testing.assert_allclose(picked.deltas, single.deltas, atol=1e-6)


def test_layer_attributions_on_a_picked_output(heads):
    as_list, _, _, only_value = heads
    picked = IntegratedGradients(as_list, layer=lambda m: m.get_layer("trunk")).explain(
        X, output="value"
    )
    single = IntegratedGradients(only_value, layer=lambda m: m.get_layer("trunk")).explain(X)
    np.testing.assert_allclose(picked.attributions[0], single.attributions[0], rtol=1e-6)
    assert np.abs(picked.deltas).max() < 1e-4


def test_without_a_pick_the_error_lists_the_outputs(heads):
    as_list = heads[0]
    with pytest.raises(
        ValueError, match=r"2 outputs: \[0\] 'probs' of shape \(3,\), \[1\] 'value'"
    ):
        IntegratedGradients(as_list).explain(X, target=0)


@pytest.mark.parametrize("pick", [2, "nope"])
def test_a_pick_that_names_no_output(heads, pick):
    with pytest.raises(ValueError, match=r"`output` .* names none of the model's 2 outputs"):
        IntegratedGradients(heads[1]).explain(X, output=pick)


@pytest.mark.parametrize("pick", [-1, 1.0, True, ["probs"]])
def test_a_pick_of_the_wrong_type(heads, pick):
    with pytest.raises(TypeError, match="`output` must be None, a non-negative int"):
        IntegratedGradients(heads[0]).explain(X, output=pick)


def test_a_pick_on_a_single_output_model(heads):
    only_probs = heads[2]
    first = IntegratedGradients(only_probs).explain(X, target=1, output=0)
    plain = IntegratedGradients(only_probs).explain(X, target=1)
    np.testing.assert_array_equal(first.attributions[0], plain.attributions[0])
    with pytest.raises(ValueError, match="single output tensor"):
        IntegratedGradients(only_probs).explain(X, target=1, output=1)


def test_a_numpy_integer_pick(heads):
    as_list, _, _, only_value = heads
    picked = IntegratedGradients(as_list).explain(X, output=np.int64(1))
    plain = IntegratedGradients(only_value).explain(X)
    np.testing.assert_allclose(picked.attributions[0], plain.attributions[0], rtol=1e-6)


class NestedOutputs(keras.Model):
    """Returns ``{"logits": t, "hidden_states": (a, b)}``, as text models often do."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(3, activation="tanh")
        self.logits = keras.layers.Dense(2)

    def call(self, x):
        hidden = self.hidden(x)
        return {"logits": self.logits(hidden), "hidden_states": (x, hidden)}


@pytest.fixture(scope="module")
def nested():
    model = NestedOutputs()
    model(X)
    return _seeded(model, seed=3)


def test_nested_outputs_are_listed(nested):
    with pytest.raises(
        ValueError,
        match=r"has 2 outputs: \[0\] 'logits' of shape \(2,\), "
        r"\[1\] 'hidden_states' \(a tuple of 2 values, not a tensor\)",
    ):
        IntegratedGradients(nested).explain(X, target=0)


def test_a_tensor_beside_nested_outputs_can_be_picked(nested):
    explanation = IntegratedGradients(nested).explain(X, target=1, output="logits")
    expected = np.asarray(nested(X)["logits"])[:, 1] - np.asarray(nested(0 * X)["logits"])[:, 1]
    np.testing.assert_allclose(explanation.attributions[0].sum(axis=1), expected, atol=1e-5)


def test_a_nested_output_cannot_be_picked(nested):
    with pytest.raises(ValueError, match=r"`output` 'hidden_states' names a tuple of 2 values"):
        IntegratedGradients(nested).explain(X, target=0, output="hidden_states")
