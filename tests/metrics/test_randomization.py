"""The model randomization test: the order of the layers, what is randomized at each step, the
correlations' closed form on a linear model, and the user's model left bitwise unchanged, also
when the explainer raises midway (on a clone, and in place for a model Keras cannot clone)."""

import warnings

import numpy as np
import pytest
from compat import keras
from models import (
    SubclassedMLP,
    functional_mlp,
    linear_model,
    seeded_floats,
    sequential_mlp,
    set_seeded_weights,
)
from scipy.stats import spearmanr

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel
from ig_plugin.metrics import model_randomization
from ig_plugin.metrics._streams import random_stream

X = seeded_floats((5, 4), seed=70)
TARGET = np.array([0, 1, 2, 1, 0])


class Unclonable(SubclassedMLP):
    """A subclassed MLP that no Keras can rebuild from its config, so none can clone it (Keras 3
    cannot clone a plain SubclassedMLP either; tf_keras can, from the arguments it records)."""

    def get_config(self):
        raise NotImplementedError("built from code only")


def unclonable_mlp(n_in, n_hidden, n_out, seed):
    model = Unclonable(n_hidden, n_out)
    model(np.zeros((1, n_in), dtype="float32"))  # build the weights
    return set_seeded_weights(model, seed)


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def assert_bitwise_equal(before, after):
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        assert old.dtype == new.dtype
        assert old.tobytes() == new.tobytes()


def test_a_linear_model_has_the_closed_form():
    """One layer ``y = x @ W``: IG from 0 is ``W[:, t] * x`` before and ``W'[:, t] * x`` after,
    W' drawn with W's mean and standard deviation from the seed's stream of layer 0."""
    weights = seeded_floats((4, 3), seed=71)
    model = linear_model(weights)
    result = model_randomization(IntegratedGradients(model), X, TARGET, seed=3)
    ((name, correlations),) = result.items()
    assert name == model.layers[-1].name
    drawn = random_stream(3, 0).normal(weights.mean(), weights.std(), weights.shape)
    drawn = drawn.astype("float32")
    for i, t in enumerate(TARGET):
        expected = spearmanr(weights[:, t] * X[i], drawn[:, t] * X[i])[0]
        np.testing.assert_allclose(correlations[i], expected, atol=1e-12)
    assert (np.abs(correlations) < 1).any()


class Spy(IntegratedGradients):
    """IntegratedGradients that records the weights and targets of every explain (copies share
    the record), and raises at the explain numbered ``fail_at``."""

    def __init__(self, model, record, fail_at=None):
        super().__init__(model, n_steps=8)
        self.record, self.fail_at = record, fail_at

    def explain(self, X, target=None, **kwargs):
        self.record.append((weights_of(self.model), target))
        if len(self.record) == self.fail_at:
            raise RuntimeError("the explainer failed midway")
        return super().explain(X, target=target, **kwargs)


def changed_layers(model, weights, original):
    """The names of the layers whose weights differ from ``original``."""
    names, position = [], 0
    for layer in model.layers:
        count = len(layer.get_weights())
        span = slice(position, position + count)
        pairs = zip(weights[span], original[span], strict=True)
        if any(not np.array_equal(new, old) for new, old in pairs):
            names.append(layer.name)
        position += count
    return names


@pytest.mark.parametrize("order", ["cascading", "independent"])
def test_the_layers_are_randomized_from_the_output_down(order):
    model = sequential_mlp(4, 6, 3, seed=72)
    original, record = weights_of(model), []
    result = model_randomization(Spy(model, record), X, TARGET, order=order, seed=0)
    names = [layer.name for layer in model.layers][::-1]
    assert list(result) == names
    assert len(record) == 1 + len(names)
    assert_bitwise_equal(original, record[0][0])  # the first explain sees the model itself
    for step, (weights, _) in enumerate(record[1:]):
        expected = names[: step + 1] if order == "cascading" else [names[step]]
        assert sorted(changed_layers(model, weights, original)) == sorted(expected)
    for correlations in result.values():
        assert correlations.shape == (len(X),)
        assert (np.abs(correlations) <= 1).all()
    assert_bitwise_equal(original, weights_of(model))


def test_the_first_layer_is_the_same_in_both_orders():
    model = functional_mlp(4, 6, 3, seed=73)
    explainer = IntegratedGradients(model, n_steps=8)
    cascading = model_randomization(explainer, X, TARGET, seed=1)
    independent = model_randomization(explainer, X, TARGET, order="independent", seed=1)
    first, second = list(cascading)
    np.testing.assert_allclose(cascading[first], independent[first])
    assert not np.allclose(cascading[second], independent[second])


def test_the_targets_a_target_fn_chose_are_kept():
    model = functional_mlp(4, 6, 3, seed=74)
    record = []
    spy = Spy(model, record)
    spy.target_fn = lambda predictions: np.argmax(predictions, axis=1)
    model_randomization(spy, X, seed=2)
    chosen = np.argmax(model(X).numpy(), axis=1)
    assert record[0][1] is None  # the first explain lets target_fn choose
    for _, target in record[1:]:
        np.testing.assert_array_equal(target, chosen)


@pytest.mark.parametrize("build", [functional_mlp, unclonable_mlp])
@pytest.mark.parametrize("fail_at", [2, 3])
def test_the_model_is_unchanged_when_the_explainer_fails_midway(build, fail_at):
    model = build(4, 6, 3, seed=75)
    original = weights_of(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the subclassed model's in-place notice
        with pytest.raises(RuntimeError, match="failed midway"):
            model_randomization(Spy(model, [], fail_at=fail_at), X, TARGET, seed=0)
    assert_bitwise_equal(original, weights_of(model))


def test_a_model_keras_cannot_clone_is_randomized_in_place_and_restored():
    functional, subclassed = functional_mlp(4, 6, 3, seed=76), unclonable_mlp(4, 6, 3, seed=76)
    original = weights_of(subclassed)
    cloned = model_randomization(IntegratedGradients(functional), X, TARGET, seed=4)
    with pytest.warns(UserWarning, match="randomized in place"):
        in_place = model_randomization(IntegratedGradients(subclassed), X, TARGET, seed=4)
    assert_bitwise_equal(original, weights_of(subclassed))
    # The same weights and seed give the same correlations by either route.
    for by_clone, by_place in zip(cloned.values(), in_place.values(), strict=True):
        np.testing.assert_allclose(by_place, by_clone, atol=1e-6)


def test_nested_layers_are_named_by_their_path():
    inner = sequential_mlp(4, 5, 3, seed=77)
    inputs = keras.Input((4,))
    head = keras.layers.Dense(3, name="head")
    model = keras.Model(inputs, head(inner(inputs)))
    head.set_weights([seeded_floats((3, 3), seed=78), np.zeros(3, "float32")])
    result = model_randomization(IntegratedGradients(model, n_steps=8), X, TARGET, seed=5)
    assert list(result) == ["head", *(f"{inner.name}/{layer.name}" for layer in inner.layers[::-1])]


@pytest.mark.parametrize("wrap", ["noise_tunnel", "expected_gradients"])
def test_seeded_wrappers_and_variants(wrap):
    model = functional_mlp(4, 6, 3, seed=79)
    if wrap == "noise_tunnel":
        explainer = NoiseTunnel(IntegratedGradients(model, n_steps=8), nt_samples=3, seed=0)
    else:
        explainer = ExpectedGradients(model, seeded_floats((8, 4), seed=80), n_samples=16, seed=0)
    original = weights_of(model)
    result = model_randomization(explainer, X, TARGET, seed=6)
    assert len(result) == 2
    assert all(np.isfinite(values).all() for values in result.values())
    assert_bitwise_equal(original, weights_of(model))
    # The wrapped explainer still explains the model itself, unchanged.
    before = explainer.explain(X, target=TARGET).attributions[0]
    np.testing.assert_array_equal(explainer.explain(X, target=TARGET).attributions[0], before)
