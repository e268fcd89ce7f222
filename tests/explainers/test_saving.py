"""Saving and loading: round trips for every layer kind, alibi.saving in both directions, a fresh
process, strict errors for bad folders, and a model that loading never changes."""

import json
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import alibi.explainers
import alibi.saving
import dill
import numpy as np
import pytest
from alibi.exceptions import SerializationError
from compat import keras
from pickles import globals_in_pickle

import ig_plugin._explainer.saving
from ig_plugin import IntegratedGradients, LayerState


def _seed_weights(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([0.7 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def chain_model(seed=0, n_features=6):
    inputs = keras.Input((n_features,))
    h = keras.layers.Dense(5, activation="tanh", name="first")(inputs)
    h = keras.layers.Dense(4, activation="tanh", name="second")(h)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(h)
    return _seed_weights(keras.Model(inputs, outputs), seed)


def nested_model(seed=0):
    inner_in = keras.Input((4,))
    inner_out = keras.layers.Dense(3, activation="tanh", name="inner_dense")(inner_in)
    block = keras.Model(inner_in, inner_out, name="block")
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(
        block(keras.layers.Dense(4, activation="tanh", name="pre")(inputs))
    )
    return _seed_weights(keras.Model(inputs, outputs), seed)


X = np.random.default_rng(1).normal(size=(5, 6)).astype("float32")

LAYER_KINDS = {
    "none": (chain_model, lambda m: None, LayerState.UNSPECIFIED),
    "top-level object": (chain_model, lambda m: m.get_layer("second"), 2),
    "callable": (chain_model, "callable", LayerState.CALLABLE),
    "nested object": (
        nested_model,
        lambda m: m.get_layer("block").get_layer("inner_dense"),
        LayerState.NON_SERIALIZABLE,
    ),
}


def make_explainer(kind):
    builder, layer_of, _ = LAYER_KINDS[kind]
    model = builder()
    layer = (lambda m: m.get_layer("second")) if layer_of == "callable" else layer_of(model)
    return model, IntegratedGradients(
        model, layer=layer, target_fn=partial(np.argmax, axis=1), n_steps=20
    )


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_round_trip_explains_like_the_original(kind, tmp_path):
    model, explainer = make_explainer(kind)
    assert explainer.meta["params"]["layer"] == LAYER_KINDS[kind][2]
    original = explainer.explain(X)
    predictions_before = model(X).numpy()

    explainer.save(tmp_path)
    loaded = IntegratedGradients.load(tmp_path, model)
    again = loaded.explain(X)

    assert isinstance(loaded, IntegratedGradients)
    assert loaded.meta == explainer.meta
    for ours, theirs in zip(again.attributions, original.attributions, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_array_equal(model(X).numpy(), predictions_before)
    assert all(
        "call" not in vars(layer) or vars(layer)["call"].__self__ is layer for layer in model.layers
    )


@pytest.mark.parametrize("kind", ["none", "top-level object", "callable"])
def test_alibi_saving_in_both_directions(kind, tmp_path):
    model, explainer = make_explainer(kind)
    original = explainer.explain(X).attributions[0]

    explainer.save(tmp_path / "ours")
    by_alibi = alibi.saving.load_explainer(tmp_path / "ours", predictor=model)
    assert isinstance(by_alibi, IntegratedGradients)
    np.testing.assert_allclose(by_alibi.explain(X).attributions[0], original, rtol=1e-6)

    alibi.saving.save_explainer(explainer, tmp_path / "alibis")
    assert sorted(os.listdir(tmp_path / "alibis")) == ["explainer.dill", "meta.dill"]
    loaded = IntegratedGradients.load(tmp_path / "alibis", model)
    np.testing.assert_allclose(loaded.explain(X).attributions[0], original, rtol=1e-6)
    # The explainer alibi saved is still whole afterwards.
    np.testing.assert_allclose(explainer.explain(X).attributions[0], original, rtol=1e-6)


def test_alibi_load_reads_a_nested_layer_saved_by_ig_plugin(tmp_path):
    model, explainer = make_explainer("nested object")
    original = explainer.explain(X).attributions[0]
    explainer.save(tmp_path)
    by_alibi = alibi.saving.load_explainer(tmp_path, predictor=model)
    np.testing.assert_allclose(by_alibi.explain(X).attributions[0], original, rtol=1e-6)
    # alibi's own save refuses nested layers (its SerializationError); ig_plugin's save does not.
    with pytest.raises(SerializationError):
        alibi.saving.save_explainer(explainer, tmp_path / "alibi")


@pytest.mark.parametrize("kind", ["none", "top-level object", "nested object"])
def test_no_tensorflow_object_is_pickled_and_the_folder_is_small(kind, tmp_path):
    _, explainer = make_explainer(kind)
    explainer.explain(X)  # compiled functions exist and must be left out
    explainer.save(tmp_path)
    size = (tmp_path / "explainer.dill").stat().st_size + (tmp_path / "meta.dill").stat().st_size
    assert size < 4096
    modules = globals_in_pickle(tmp_path / "explainer.dill")
    assert not any(m.split(".")[0] in ("tensorflow", "keras", "tf_keras") for m in modules)
    assert "ig_plugin.integrated_gradients" in modules


def test_metadata_is_json_safe_with_a_callable_target_fn():
    _, explainer = make_explainer("callable")
    json.dumps(explainer.meta)
    explanation = explainer.explain(X)
    assert json.loads(explanation.to_json())["meta"]["params"]["target_fn"].startswith(
        "functools.partial(numpy.argmax"
    )


def test_saved_files_get_the_permissions_of_new_files(tmp_path):
    """Written through private temporary files, but readable as any new file would be (by a
    server running as another user, say)."""
    _, explainer = make_explainer("none")
    explainer.save(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("meta.dill", "explainer.dill"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explainer.dill", "meta.dill"]


def test_an_unpickled_explainer_asks_for_its_model_then_explains_as_before():
    model, explainer = make_explainer("top-level object")
    expected = explainer.explain(X).attributions[0]
    unpickled = dill.loads(dill.dumps(explainer))
    with pytest.raises(ValueError, match=r"no model.*reset_predictor.*IntegratedGradients\.load"):
        unpickled.explain(X)
    unpickled.reset_predictor(model)
    np.testing.assert_allclose(unpickled.explain(X).attributions[0], expected, rtol=1e-6)


def test_loading_a_folder_saved_by_another_version_warns(tmp_path, monkeypatch):
    model, explainer = make_explainer("none")
    explainer.save(tmp_path)
    monkeypatch.setattr(ig_plugin._explainer.saving, "__version__", "99.0.0")
    with pytest.warns(UserWarning, match=r"saved with ig_plugin .* loaded by ig_plugin 99\.0\.0"):
        IntegratedGradients.load(tmp_path, model)


# --- strict loading -----------------------------------------------------------------------------


@pytest.fixture()
def saved(tmp_path):
    model, explainer = make_explainer("top-level object")
    explainer.save(tmp_path / "saved")
    return model, tmp_path / "saved"


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No saved explainer folder"):
        IntegratedGradients.load(tmp_path / "nowhere", chain_model())


@pytest.mark.parametrize("missing", ["meta.dill", "explainer.dill"])
def test_missing_file(saved, missing):
    model, folder = saved
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"{missing} is missing"):
        IntegratedGradients.load(folder, model)


@pytest.mark.parametrize("damaged", ["meta.dill", "explainer.dill"])
def test_unreadable_file(saved, damaged):
    model, folder = saved
    (folder / damaged).write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=f"{damaged} could not be read"):
        IntegratedGradients.load(folder, model)


def test_folder_of_another_explainer(saved):
    model, folder = saved
    with open(folder / "meta.dill", "wb") as f:
        dill.dump({"name": "AnchorTabular", "version": "0.9.6"}, f)
    with pytest.raises(ValueError, match="does not hold an ig_plugin IntegratedGradients"):
        IntegratedGradients.load(folder, model)


def test_folder_of_alibis_own_integrated_gradients(tmp_path):
    model = chain_model()
    alibi.saving.save_explainer(alibi.explainers.IntegratedGradients(model), tmp_path)
    with pytest.raises(ValueError, match=r"holds a alibi\..*IntegratedGradients, not an ig_plugin"):
        IntegratedGradients.load(tmp_path, model)


def _short_model():
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(inputs))  # 2 layers


def test_model_without_the_saved_layer_index(saved):
    _, folder = saved
    with pytest.raises(ValueError, match="no layer at index 2"):
        IntegratedGradients.load(folder, _short_model())


def test_model_without_the_saved_layer_path(tmp_path):
    _, explainer = make_explainer("nested object")
    explainer.save(tmp_path)
    with pytest.raises(ValueError, match="no layer at path 'block/inner_dense'"):
        IntegratedGradients.load(tmp_path, chain_model())


def test_model_with_other_input_shapes(saved):
    _, folder = saved
    with pytest.raises(
        ValueError, match=r"input shapes differ.*Saved: \[\[6\]\]; received: \[\[7\]\]"
    ):
        IntegratedGradients.load(folder, chain_model(n_features=7))


def test_model_with_another_output_shape(saved):
    _, folder = saved
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, name="first")(inputs)
    h = keras.layers.Dense(4, name="second")(h)
    other = keras.Model(inputs, keras.layers.Dense(2, name="head")(h))
    with pytest.raises(ValueError, match=r"output shape differs.*Saved: \[3\]; received: \[2\]"):
        IntegratedGradients.load(folder, other)


def test_a_failed_load_leaves_the_model_unchanged(saved):
    _, folder = saved
    model = _short_model()
    before = model(X).numpy()
    with pytest.raises(ValueError):
        IntegratedGradients.load(folder, model)
    np.testing.assert_array_equal(model(X).numpy(), before)
    assert all(
        "call" not in vars(layer) or vars(layer)["call"].__self__ is layer for layer in model.layers
    )


class Unpicklable:
    """A target_fn that pickling refuses, as one holding a lock or a connection would."""

    def __call__(self, predictions):
        return np.argmax(predictions, axis=1)

    def __reduce__(self):
        raise TypeError("cannot pickle this target_fn")


def test_a_failed_save_leaves_the_earlier_save_intact(saved):
    model, folder = saved
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    broken = IntegratedGradients(model, layer=model.get_layer("second"), target_fn=Unpicklable())
    with pytest.raises(TypeError, match="cannot pickle this target_fn"):
        broken.save(folder)
    # Both files exactly as they were, no temporary file left behind, and still loadable.
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    loaded = IntegratedGradients.load(folder, model)
    assert loaded.meta["params"]["target_fn"] == "functools.partial(numpy.argmax, axis=1)"


def test_a_saved_index_that_now_points_at_another_layer(saved):
    _, folder = saved  # saved for layers[2], the Dense named "second"
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, activation="tanh", name="first")(inputs)
    renamed = keras.Model(
        inputs, keras.layers.Dense(3, name="head")(keras.layers.Dense(4, name="other")(h))
    )
    with pytest.raises(ValueError, match=r"saved for layer 'second' \(Dense\).*'other' \(Dense\)"):
        IntegratedGradients.load(folder, renamed)
    regularised = keras.Model(
        inputs, keras.layers.Dense(3, name="head")(keras.layers.Dropout(0.1, name="second")(h))
    )
    with pytest.raises(ValueError, match=r"'second' \(Dense\).*'second' \(Dropout\)"):
        IntegratedGradients.load(folder, regularised)


def test_the_checks_after_loading_hold_until_a_model_fits(saved):
    model, _ = saved
    explainer = dill.loads(dill.dumps(IntegratedGradients(model, layer=model.get_layer("second"))))
    wrong = chain_model(n_features=7)
    for _ in range(2):  # a second try with the same wrong model must not slip through
        with pytest.raises(ValueError, match="input shapes differ"):
            explainer.reset_predictor(wrong)
    explainer.reset_predictor(model)
    assert explainer.layer is model.get_layer("second")


@pytest.mark.parametrize("loader", ["ig_plugin", "alibi"])
def test_loading_with_a_plain_function_as_the_model(saved, loader):
    _, folder = saved

    def not_a_model(x):
        return x

    with pytest.raises(ValueError, match=r"must be a Keras model with layers\. Received: function"):
        if loader == "ig_plugin":
            IntegratedGradients.load(folder, not_a_model)
        else:
            alibi.saving.load_explainer(folder, predictor=not_a_model)


# --- a fresh process, as a server would load it -------------------------------------------------


def test_load_in_a_fresh_process_beside_a_saved_keras_model(tmp_path):
    model, explainer = make_explainer("callable")
    expected = explainer.explain(X).attributions[0]
    model.save(tmp_path / "model.keras")
    explainer.save(tmp_path / "explainer")
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import os
        import numpy as np
        from ig_plugin import IntegratedGradients

        if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
            import tf_keras as keras
        else:
            import keras

        folder = Path(sys.argv[1])
        model = keras.saving.load_model(folder / "model.keras")
        explainer = IntegratedGradients.load(folder / "explainer", model)
        explanation = explainer.explain(np.load(folder / "X.npy"))
        np.save(folder / "attributions.npy", explanation.attributions[0])
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(Path(tmp_path, "attributions.npy")), expected, rtol=1e-6)


# --- a model built again from code --------------------------------------------------------------


def auto_named_model(seed=0, middle_units=4):
    """chain_model without names: Keras numbers them (dense_7, dense_8, ...) process-wide."""
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, activation="tanh")(inputs)
    h = keras.layers.Dense(middle_units, activation="tanh")(h)
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    return _seed_weights(keras.Model(inputs, outputs), seed)


def auto_named_nested_model(seed=0):
    inner_in = keras.Input((4,))
    block = keras.Model(inner_in, keras.layers.Dense(3, activation="tanh")(inner_in))
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, activation="softmax")(
        block(keras.layers.Dense(4, activation="tanh")(inputs))
    )
    return _seed_weights(keras.Model(inputs, outputs), seed)


#: kind -> (builder, where the layer is in a model, whether the explainer gets the callable)
REBUILT_LAYERS = {
    "index": (auto_named_model, lambda m: m.layers[2], False),
    "callable": (auto_named_model, lambda m: m.layers[2], True),
    "nested object": (auto_named_nested_model, lambda m: m.layers[2].layers[1], False),
}


@pytest.mark.parametrize("kind", REBUILT_LAYERS)
def test_a_model_built_again_from_code_loads(kind, tmp_path):
    # The usual deployment: the model is built by the same code and its weights loaded, so its
    # automatic layer names differ from the saved ones.
    builder, layer_of, as_callable = REBUILT_LAYERS[kind]
    model = builder()
    explainer = IntegratedGradients(
        model, layer=layer_of if as_callable else layer_of(model), n_steps=20
    )
    explainer.save(tmp_path)
    rebuilt = builder()
    rebuilt.set_weights(model.get_weights())
    assert [layer.name for layer in rebuilt.layers] != [layer.name for layer in model.layers]

    loaded = IntegratedGradients.load(tmp_path, rebuilt)

    assert loaded.layer is layer_of(rebuilt)
    np.testing.assert_allclose(
        loaded.explain(X, target=1).attributions[0],
        explainer.explain(X, target=1).attributions[0],
        rtol=1e-6,
    )


def test_a_rebuilt_model_whose_layer_is_configured_differently_is_refused(tmp_path):
    model = auto_named_model()
    IntegratedGradients(model, layer=model.layers[2]).save(tmp_path)
    with pytest.raises(ValueError, match=r"configured differently \(units: saved 4, found 5\)"):
        IntegratedGradients.load(tmp_path, auto_named_model(middle_units=5))


def test_a_rebuilt_model_with_another_layer_class_at_the_index_is_refused(tmp_path):
    model = auto_named_model()
    IntegratedGradients(model, layer=model.layers[2]).save(tmp_path)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(4, activation="tanh")(inputs)
    other = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dropout(0.1)(h)))
    with pytest.raises(ValueError, match=r"saved for layer 'dense_\d+' \(Dense\).*\(Dropout\)"):
        IntegratedGradients.load(tmp_path, other)
