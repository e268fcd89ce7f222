"""The explainer as an alibi Explainer: metadata, pickling, reset_predictor, progress bar."""

import copy
import subprocess
import sys
from functools import partial

import dill
import numpy as np
import pytest
from alibi.api.interfaces import Explainer, Explanation
from alibi.explainers.integrated_gradients import LayerState as AlibiLayerState
from models import CountingModel, functional_mlp, set_seeded_weights

import ig_plugin
import ig_plugin._integral.driver
from ig_plugin import IntegratedGradients, LayerState


@pytest.fixture(scope="module")
def explainer(mlp):
    return IntegratedGradients(mlp, n_steps=7, internal_batch_size=11)


def test_is_an_alibi_explainer(explainer):
    assert isinstance(explainer, Explainer)


def test_meta(explainer):
    meta = explainer.meta
    assert meta["name"] == "IntegratedGradients"
    assert meta["type"] == ["whitebox"]
    assert meta["explanations"] == ["local"]
    assert meta["params"] == {
        "target_fn": None,
        "method": "gausslegendre",
        "n_steps": 7,
        "internal_batch_size": 11,
        "layer": "unspecified",
    }
    # alibi's Base copies the meta keys onto the instance; params is the same dict
    assert explainer.params is explainer.meta["params"]
    assert explainer.name == "IntegratedGradients"


def test_explanation_meta_is_a_copy(explainer, mlp_data):
    explanation = explainer.explain(mlp_data, target=0)
    assert isinstance(explanation, Explanation)
    assert explanation.meta == explainer.meta
    explanation.meta["params"]["n_steps"] = 1000
    assert explainer.meta["params"]["n_steps"] == 7


def test_layer_state_values_match_alibi():
    assert {s.name: s.value for s in LayerState} == {s.name: s.value for s in AlibiLayerState}
    assert LayerState.UNSPECIFIED == "unspecified"


def test_public_names():
    assert set(ig_plugin.__all__) >= {"IntegratedGradients", "LayerState", "__version__"}
    assert isinstance(ig_plugin.__version__, str) and ig_plugin.__version__


def test_dill_round_trip(explainer, mlp, mlp_data):
    before = explainer.explain(mlp_data, target=2)
    payload = dill.dumps(explainer)
    # no TensorFlow object is pickled: the model comes back through reset_predictor
    assert b"keras" not in payload and b"tensorflow" not in payload
    restored = dill.loads(payload)
    restored.reset_predictor(mlp)
    after = restored.explain(mlp_data, target=2)
    assert restored.meta == explainer.meta
    np.testing.assert_allclose(after.attributions[0], before.attributions[0], rtol=1e-6)
    np.testing.assert_allclose(after.deltas, before.deltas, atol=1e-7)


def test_explain_before_reset_predictor_says_so(explainer, mlp_data):
    restored = dill.loads(dill.dumps(explainer))
    with pytest.raises((TypeError, ValueError, RuntimeError), match="reset_predictor"):
        restored.explain(mlp_data, target=0)


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copied_explainer_still_explains(explainer, mlp_data, copier):
    """alibi's explainers survive copy.copy and copy.deepcopy; a drop-in should too."""
    before = explainer.explain(mlp_data, target=0)
    after = copier(explainer).explain(mlp_data, target=0)
    np.testing.assert_allclose(after.attributions[0], before.attributions[0], rtol=1e-6)


def test_alibi_save_and_load(tmp_path, explainer, mlp, mlp_data):
    """alibi.saving dispatches on meta['name']: the MLServer route must work for ig_plugin."""
    from alibi.saving import load_explainer

    before = explainer.explain(mlp_data, target=1)
    explainer.save(tmp_path)
    loaded = load_explainer(tmp_path, predictor=mlp)
    assert type(loaded) is IntegratedGradients
    assert loaded.meta == explainer.meta
    after = loaded.explain(mlp_data, target=1)
    np.testing.assert_allclose(after.attributions[0], before.attributions[0], rtol=1e-6)
    # saving did not detach the original explainer from its model
    again = explainer.explain(mlp_data, target=1)
    np.testing.assert_allclose(again.attributions[0], before.attributions[0], rtol=1e-6)


def test_reset_predictor_to_another_model(mlp_data):
    first = functional_mlp(4, 5, 3, seed=60)
    second = set_seeded_weights(functional_mlp(4, 5, 3, seed=60), seed=61)
    explainer = IntegratedGradients(first, n_steps=10)
    on_first = explainer.explain(mlp_data, target=1).attributions[0]
    explainer.reset_predictor(second)
    on_second = explainer.explain(mlp_data, target=1).attributions[0]
    expected = IntegratedGradients(second, n_steps=10).explain(mlp_data, target=1).attributions[0]
    np.testing.assert_allclose(on_second, expected, rtol=1e-6)
    assert not np.allclose(on_second, on_first, rtol=1e-2)
    assert explainer.model is second


def test_progress_bar(explainer, mlp_data, capsys):
    explainer.explain(mlp_data, target=0, progress_bar=True)
    err = capsys.readouterr().err
    total = len(mlp_data) * explainer.n_steps
    assert f"{total}/{total}" in err


def test_progress_moves_within_one_long_sample(mlp, mlp_data, monkeypatch):
    """One sample of 200 points in chunks of 10: the bar moves chunk by chunk, not 0 -> 100%."""
    updates = []

    class RecordingBar:
        def __init__(self, total, disable, **kwargs):
            self.disable = disable

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            updates.append(n)

    monkeypatch.setattr(ig_plugin._integral.driver, "tqdm", RecordingBar)
    explainer = IntegratedGradients(mlp, n_steps=200, internal_batch_size=10)
    explainer.explain(mlp_data[:1], target=0, progress_bar=True)
    assert updates == [10] * 20


def test_the_first_explain_traces_each_pass_once():
    """Forward batches of 3, 3 and 1 samples and spans of any size reuse one trace each, where
    the first explain of a new explainer used to trace them twice."""
    model = CountingModel(3, 2)
    model(np.zeros((1, 3), dtype="float32"))
    model.calls = 0
    explainer = IntegratedGradients(model, n_steps=4, internal_batch_size=3)
    X = np.random.default_rng(0).normal(size=(7, 3)).astype("float32")
    explainer.explain(X, target=1)
    assert model.calls == 2  # one trace of the forward pass, one of the gradient loop
    explainer.explain(X[:5], target=0)
    explainer.explain(np.concatenate([X, X]), target=1)
    assert model.calls == 2


def test_no_progress_bar_by_default(explainer, mlp_data, capsys):
    explainer.explain(mlp_data, target=0)
    assert capsys.readouterr().err == ""


def test_model_predictions_unchanged_by_explain(mlp_data):
    model = functional_mlp(4, 5, 3, seed=62)
    weights_before = [w.copy() for w in model.get_weights()]
    predictions_before = np.asarray(model(mlp_data))
    explanation = IntegratedGradients(model, n_steps=5).explain(mlp_data, target=0)
    np.testing.assert_array_equal(np.asarray(model(mlp_data)), predictions_before)
    for after, before in zip(model.get_weights(), weights_before, strict=True):
        np.testing.assert_array_equal(after, before)
    np.testing.assert_allclose(explanation.predictions, predictions_before, rtol=1e-6)


def test_explanation_data(explainer, mlp_data):
    explanation = explainer.explain(mlp_data, target=0, baselines=0.25)
    assert explanation.X is mlp_data
    np.testing.assert_array_equal(explanation.baselines, np.full_like(mlp_data, 0.25))
    assert explanation.forward_kwargs == {}
    assert explanation.deltas.shape == (len(mlp_data),)
    assert explanation.predictions.shape == (len(mlp_data), 3)
    explanation.to_json()


def test_importing_the_package_or_the_command_does_not_import_tensorflow():
    """``ig-plugin --help`` or a missing file must not wait for TensorFlow (6 to 12 s here)."""
    code = (
        "import sys, ig_plugin, ig_plugin.cli\n"
        "assert 'tensorflow' not in sys.modules, 'imported tensorflow'\n"
        "from ig_plugin import IntegratedGradients, LayerState\n"
        "assert 'tensorflow' in sys.modules and IntegratedGradients.__name__\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_unknown_names_raise_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        ig_plugin.Nothing  # noqa: B018


def test_target_fn_is_one_attribute_that_meta_mirrors(mlp, mlp_data):
    explainer = IntegratedGradients(mlp, n_steps=4)
    assert explainer.target_fn is None and explainer.meta["params"]["target_fn"] is None
    explainer.target_fn = partial(np.argmax, axis=1)
    assert explainer.meta["params"]["target_fn"] == "functools.partial(numpy.argmax, axis=1)"
    explanation = explainer.explain(mlp_data)
    assert explanation.meta["params"]["target_fn"] == "functools.partial(numpy.argmax, axis=1)"
    with pytest.raises(TypeError, match="`target_fn` must be None or a callable"):
        explainer.target_fn = "argmax"
    # A copy with another target_fn shares the compiled passes and leaves the original alone.
    plain = explainer.with_target_fn(None)
    assert plain._compiled_model() is explainer._compiled_model()
    assert plain.meta["params"]["target_fn"] is None
    assert explainer.meta["params"]["target_fn"] == "functools.partial(numpy.argmax, axis=1)"
