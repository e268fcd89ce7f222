"""One test per model kind, run on every Keras stack CI covers (Keras 3, tf_keras, Keras 2.14).

Each kind is built with the same seeded weights as a plain Functional reference, so input and
layer attributions must match the reference's, and completeness must hold.
"""

import os

import alibi
import numpy as np
import pytest
import tensorflow as tf
from compat import KERAS_MAJOR, keras

from ig_plugin import IntegratedGradients
from ig_plugin._engine import tracing

X = np.random.default_rng(30).normal(size=(5, 4)).astype("float32")
TARGET = np.array([0, 1, 2, 1, 0])


def _dense_stack():
    return [keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3, activation="softmax")]


def _weights(model, seed=0):
    rng = np.random.default_rng(seed)
    return [0.7 * rng.normal(size=w.shape) for w in model.get_weights()]


def functional():
    inputs = keras.Input((4,))
    hidden, head = _dense_stack()
    model = keras.Model(inputs, head(hidden(inputs)))
    model.set_weights(_weights(model))
    return model, hidden


def sequential():
    hidden, head = _dense_stack()
    model = keras.Sequential([keras.Input((4,)), hidden, head])
    model.set_weights(_weights(model))
    return model, hidden


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden, self.head = _dense_stack()

    def call(self, x):
        return self.head(self.hidden(x))


def subclassed():
    model = Subclassed()
    model(X[:1])
    model.set_weights(_weights(model))
    return model, model.hidden


def nested():
    """The hidden layer lives inside a sub-model."""
    inner_inputs = keras.Input((4,))
    hidden, head = _dense_stack()
    block = keras.Model(inner_inputs, hidden(inner_inputs), name="block")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, head(block(inputs)))
    model.set_weights(_weights(model))
    return model, hidden


KINDS = {"functional": functional, "sequential": sequential, "subclassed": subclassed}
KINDS["nested sub-model"] = nested


@pytest.fixture(scope="module")
def reference():
    model, hidden = functional()
    inputs = IntegratedGradients(model).explain(X, target=TARGET)
    layer = IntegratedGradients(model, layer=hidden).explain(X, target=TARGET)
    return inputs, layer


@pytest.mark.parametrize("kind", KINDS)
def test_model_kind_matches_the_functional_reference(kind, reference):
    model, hidden = KINDS[kind]()
    by_inputs = IntegratedGradients(model).explain(X, target=TARGET)
    by_layer = IntegratedGradients(model, layer=hidden).explain(X, target=TARGET)
    np.testing.assert_allclose(by_inputs.attributions[0], reference[0].attributions[0], rtol=1e-5)
    np.testing.assert_allclose(by_layer.attributions[0], reference[1].attributions[0], rtol=1e-5)
    for explanation in (by_inputs, by_layer):
        assert np.abs(explanation.deltas).max() < 1e-4


def test_multi_input_model():
    a, b = keras.Input((4,)), keras.Input((2,))
    joined = keras.layers.Concatenate()([a, b])
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")
    model = keras.Model([a, b], keras.layers.Dense(3, activation="softmax")(hidden(joined)))
    model.set_weights(_weights(model))
    X_b = np.random.default_rng(31).normal(size=(5, 2)).astype("float32")
    explanation = IntegratedGradients(model).explain([X, X_b], target=TARGET)
    assert [a.shape for a in explanation.attributions] == [(5, 4), (5, 2)]
    assert np.abs(explanation.deltas).max() < 1e-4
    by_layer = IntegratedGradients(model, layer=hidden).explain([X, X_b], target=TARGET)
    assert by_layer.attributions[0].shape == (5, 5)
    assert np.abs(by_layer.deltas).max() < 1e-4


def test_multi_output_model():
    inputs = keras.Input((4,))
    hidden, head = _dense_stack()
    trunk = hidden(inputs)
    model = keras.Model(inputs, [head(trunk), keras.layers.Dense(1, name="value")(trunk)])
    model.set_weights(_weights(model))
    first = IntegratedGradients(model).explain(X, target=TARGET, output=0)
    second = IntegratedGradients(model).explain(X, output=1)
    assert first.predictions.shape == (5, 3) and second.predictions.shape == (5, 1)
    for explanation in (first, second):
        assert np.abs(explanation.deltas).max() < 1e-4


POSITIVE = np.abs(X) + 0.1  # every path point's batch sums to more than 0


def _squares_if_positive(x):
    """sum(x**2) where the batch sums to more than 0, else its negative: Python ``if`` on a
    tensor, which traces only where AutoGraph converts it."""
    if tf.reduce_sum(x) > 0:
        return tf.reduce_sum(x * x, axis=1, keepdims=True)
    return -tf.reduce_sum(x * x, axis=1, keepdims=True)


class BranchingModel(keras.Model):
    """A subclassed model whose ``call`` branches in Python on a tensor."""

    def call(self, x):
        return _squares_if_positive(x)


@pytest.fixture(params=["model alone", "whole pass"])
def autograph_converts(request, monkeypatch):
    """Each way the engine has AutoGraph convert the model: the model alone (passes traced
    without AutoGraph), or the whole pass, as on a TensorFlow without the API the first takes."""
    if request.param == "whole pass":
        monkeypatch.setattr(tracing, "CONVERTS_MODEL_ALONE", False)
    return request.param


def test_this_tensorflow_converts_the_model_alone():
    # Else every process's first explain pays AutoGraph's conversion of the passes again.
    assert tracing.CONVERTS_MODEL_ALONE


def test_a_tensorflow_without_the_internal_autograph_api_converts_whole_passes(monkeypatch):
    monkeypatch.delattr(tf.__internal__, "autograph")
    assert not tracing._converts_model_alone()


def test_a_function_with_python_control_flow_on_tensors_is_converted_as_before(
    autograph_converts,
):
    # IG of sum(x**2) from a zero baseline is x**2 exactly; the other branch gives -x**2.
    explanation = IntegratedGradients(_squares_if_positive).explain(POSITIVE)
    np.testing.assert_allclose(explanation.attributions[0], POSITIVE**2, rtol=1e-5)


def test_a_legacy_keras_call_with_python_control_flow_on_tensors_is_converted_as_before(
    autograph_converts,
):
    if KERAS_MAJOR == 3:
        pytest.skip("Keras 3 converts no layer's call, in its own predict as in explain")
    model = BranchingModel()
    model(POSITIVE[:1])
    explanation = IntegratedGradients(model).explain(POSITIVE)
    np.testing.assert_allclose(explanation.attributions[0], POSITIVE**2, rtol=1e-5)


class KeywordModel(keras.Model):
    """A subclassed model whose call takes ``mask``, ``training`` and ``attention_mask``."""

    def __init__(self):
        super().__init__()
        self.hidden, self.head = _dense_stack()
        self.seen_training = []

    def call(self, x, mask=None, training=None, attention_mask=None):
        self.seen_training.append(training)
        if mask is not None:
            x = x * tf.cast(mask, x.dtype)
        if attention_mask is not None:
            x = x + tf.cast(attention_mask, x.dtype)
        return self.head(self.hidden(x))


def test_subclassed_call_with_keyword_arguments():
    model = KeywordModel()
    model(X[:1])
    model.set_weights(_weights(model))
    mask = (np.arange(20).reshape(5, 4) % 3 != 0).astype("float32")
    attention = np.full((5, 4), 0.5, dtype="float32")
    kwargs = {"mask": mask, "training": False, "attention_mask": attention}
    explanation = IntegratedGradients(model).explain(X, forward_kwargs=kwargs, target=TARGET)
    assert False in model.seen_training
    # A masked feature does not reach the output: zero attribution; completeness holds.
    assert np.all(explanation.attributions[0][mask == 0] == 0)
    assert np.abs(explanation.deltas).max() < 1e-4
    # Each sample alone, with its own rows of the keyword arrays, gives the same result.
    for i in range(5):
        alone = IntegratedGradients(model).explain(
            X[i : i + 1],
            forward_kwargs={
                "mask": mask[i : i + 1],
                "training": False,
                "attention_mask": attention[i : i + 1],
            },
            target=int(TARGET[i]),
        )
        np.testing.assert_allclose(
            alone.attributions[0][0], explanation.attributions[0][i], rtol=1e-5, atol=1e-7
        )


def _other_keras():
    """The Keras that is not the one under test, when both are installed (tf_keras stack)."""
    try:
        if KERAS_MAJOR == 3:
            import tf_keras as other
        else:
            import keras as other
    except ImportError:
        return None
    major = int(other.__version__.split(".")[0])
    return other if major != KERAS_MAJOR else None


def test_layers_are_recognised_per_object_whichever_keras_made_them():
    other = _other_keras()
    if other is None:
        pytest.skip("only one Keras is installed in this stack")
    inputs = other.Input((4,))
    hidden = other.layers.Dense(6, activation="tanh")
    model = other.Model(inputs, other.layers.Dense(3, activation="softmax")(hidden(inputs)))
    model.set_weights(_weights(model))
    explanation = IntegratedGradients(model, layer=hidden).explain(X, target=TARGET)
    assert explanation.meta["params"]["layer"] == 1
    assert np.abs(explanation.deltas).max() < 1e-4
    with pytest.raises(ValueError, match="must be a layer of the model"):
        IntegratedGradients(functional()[0], layer=hidden)


def test_the_stack_under_test_is_the_one_ci_announced():
    """CI sets IG_PLUGIN_EXPECT_KERAS per stack, so a misconfigured env cannot pass silently."""
    expected = os.environ.get("IG_PLUGIN_EXPECT_KERAS")
    if expected is None:
        pytest.skip("IG_PLUGIN_EXPECT_KERAS is not set")
    assert f"{keras.__name__} {keras.__version__}".startswith(expected)


def test_the_alibi_under_test_is_the_one_ci_announced():
    """CI sets IG_PLUGIN_EXPECT_ALIBI on the stack that proves alibi 0.9.4 (Apache-2.0)."""
    expected = os.environ.get("IG_PLUGIN_EXPECT_ALIBI")
    if expected is None:
        pytest.skip("IG_PLUGIN_EXPECT_ALIBI is not set")
    assert alibi.__version__ == expected
