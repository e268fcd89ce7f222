"""Saving and loading ExpectedGradients (its background with it) and NoiseTunnel (its wrapped
explainer with it): round trips, alibi.saving in both directions, no TensorFlow object pickled,
and a model that does not fit refused."""

import copy
import os

import alibi.saving
import numpy as np
import pytest
from compat import keras
from models import seeded_floats, set_seeded_weights
from pickles import globals_in_pickle

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel

X = seeded_floats((4, 6), seed=70)
BACKGROUND = seeded_floats((5, 6), seed=71)


def chain_model(n_features=6):
    inputs = keras.Input((n_features,))
    h = keras.layers.Dense(5, activation="tanh", name="first")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(h)
    return set_seeded_weights(keras.Model(inputs, outputs), seed=72)


LAYERS = {
    "none": None,
    "object": lambda model: model.get_layer("first"),
    "callable": "callable",
}


def make_explainer(layer_kind, n_samples=10):
    model = chain_model()
    layer = LAYERS[layer_kind]
    if layer_kind == "callable":
        layer = lambda m: m.get_layer("first")  # noqa: E731
    elif layer is not None:
        layer = layer(model)
    return model, ExpectedGradients(model, BACKGROUND, n_samples=n_samples, seed=3, layer=layer)


@pytest.mark.parametrize("layer_kind", LAYERS)
def test_expected_gradients_round_trip(layer_kind, tmp_path):
    _, explainer = make_explainer(layer_kind)
    original = explainer.explain(X, target=1)
    explainer.save(tmp_path)
    loaded = ExpectedGradients.load(tmp_path, chain_model())
    assert loaded.meta == explainer.meta
    np.testing.assert_array_equal(loaded.background, BACKGROUND)
    np.testing.assert_allclose(
        loaded.explain(X, target=1).attributions[0], original.attributions[0], rtol=1e-6
    )


def test_expected_gradients_with_alibi_saving_in_both_directions(tmp_path):
    model, explainer = make_explainer("object")
    original = explainer.explain(X, target=0).attributions[0]
    explainer.save(tmp_path / "ours")
    by_alibi = alibi.saving.load_explainer(tmp_path / "ours", predictor=model)
    assert isinstance(by_alibi, ExpectedGradients)
    np.testing.assert_allclose(by_alibi.explain(X, target=0).attributions[0], original, rtol=1e-6)

    alibi.saving.save_explainer(explainer, tmp_path / "alibis")
    assert sorted(os.listdir(tmp_path / "alibis")) == ["explainer.dill", "meta.dill"]
    loaded = ExpectedGradients.load(tmp_path / "alibis", model)
    np.testing.assert_allclose(loaded.explain(X, target=0).attributions[0], original, rtol=1e-6)
    # alibi set the model to None and back while it saved: the explainer is whole afterwards.
    np.testing.assert_allclose(explainer.explain(X, target=0).attributions[0], original, rtol=1e-6)


def test_no_tensorflow_object_is_pickled_and_the_background_is(tmp_path):
    _, explainer = make_explainer("object")
    explainer.explain(X, target=0)  # compiled functions exist and must be left out
    explainer.save(tmp_path)
    modules = globals_in_pickle(tmp_path / "explainer.dill")
    assert not any(m.split(".")[0] in ("tensorflow", "keras", "tf_keras") for m in modules)
    assert "ig_plugin.expected_gradients" in modules
    # The background's 5 x 6 float32 values are in the file; nothing much else is.
    size = (tmp_path / "explainer.dill").stat().st_size
    assert BACKGROUND.nbytes < size < BACKGROUND.nbytes + 4096


def test_a_model_that_does_not_fit_is_refused(tmp_path):
    _, explainer = make_explainer("none")
    explainer.save(tmp_path)
    with pytest.raises(ValueError, match="input shapes differ"):
        ExpectedGradients.load(tmp_path, chain_model(n_features=4))
    with pytest.raises(ValueError, match="does not hold an ig_plugin IntegratedGradients"):
        IntegratedGradients.load(tmp_path, chain_model())


def test_copies_share_the_model_and_not_the_settings():
    model, explainer = make_explainer("object")
    clone = copy.deepcopy(explainer)
    assert clone.model is model and clone.layer is explainer.layer
    clone.meta["params"]["seed"] = 99
    assert explainer.meta["params"]["seed"] == 3
    np.testing.assert_allclose(
        clone.explain(X, target=2).attributions[0],
        explainer.explain(X, target=2).attributions[0],
        rtol=1e-6,
    )


@pytest.mark.parametrize("wrapped", ["ig", "eg"])
def test_noise_tunnel_round_trip(wrapped, tmp_path):
    model, explainer = make_explainer("object")
    if wrapped == "ig":
        explainer = IntegratedGradients(model, layer=model.get_layer("first"), n_steps=8)
    tunnel = NoiseTunnel(explainer, "smoothgrad_sq", nt_samples=3, stdevs=0.2, seed=1)
    original = tunnel.explain(X, target=1).attributions[0]
    tunnel.save(tmp_path)
    loaded = NoiseTunnel.load(tmp_path, chain_model())
    assert loaded.meta == tunnel.meta
    np.testing.assert_allclose(loaded.explain(X, target=1).attributions[0], original, rtol=1e-6)
    by_alibi = alibi.saving.load_explainer(tmp_path, predictor=chain_model())
    np.testing.assert_allclose(by_alibi.explain(X, target=1).attributions[0], original, rtol=1e-6)
    modules = globals_in_pickle(tmp_path / "explainer.dill")
    assert not any(m.split(".")[0] in ("tensorflow", "keras", "tf_keras") for m in modules)
