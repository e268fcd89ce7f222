"""Bad arguments to ExpectedGradients and NoiseTunnel: a ValueError or TypeError naming the
argument, before any TensorFlow work (a counting model proves the model never ran or traced)."""

import numpy as np
import pytest
from compat import keras
from models import bypass_model, linear_model, linear_multi_input_model, set_seeded_weights

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel

N = 4
X = np.random.default_rng(60).normal(size=(N, 3)).astype("float32")
BACKGROUND = np.random.default_rng(61).normal(size=(5, 3)).astype("float32")


def test_counting_model_sees_valid_calls(counting):
    """The control for the tests below: valid calls do reach the model."""
    explainer = ExpectedGradients(counting, BACKGROUND, n_samples=2, seed=0)
    NoiseTunnel(explainer, nt_samples=2).explain(X, target=0)
    assert counting.calls > 0


EG_CONSTRUCTOR_CASES = {
    "n_samples zero": ({"n_samples": 0}, ValueError, "`n_samples`"),
    "n_samples negative": ({"n_samples": -3}, ValueError, "`n_samples`"),
    "n_samples float": ({"n_samples": 2.0}, TypeError, "`n_samples`"),
    "n_samples bool": ({"n_samples": True}, TypeError, "`n_samples`"),
    "seed negative": ({"seed": -1}, ValueError, "`seed`"),
    "seed float": ({"seed": 1.5}, TypeError, "`seed`"),
    "n_steps in the sampled mode": ({"n_steps": 10}, ValueError, "`n_steps`"),
    "n_steps zero": ({"n_samples": None, "n_steps": 0}, ValueError, "`n_steps`"),
    "n_steps float": ({"n_samples": None, "n_steps": 5.0}, TypeError, "`n_steps`"),
    "internal_batch_size zero": ({"internal_batch_size": 0}, ValueError, "`internal_batch_size`"),
    "target_fn not callable": ({"target_fn": "argmax"}, TypeError, "`target_fn`"),
    "background a string": ({"background": "data"}, TypeError, "`background`"),
    "background a list of lists": ({"background": [[0.0, 1.0, 2.0]]}, TypeError, "`background"),
    "background without rows": (
        {"background": np.zeros((0, 3), "float32")},
        ValueError,
        "`background`",
    ),
    "background a scalar array": ({"background": np.array(1.0)}, ValueError, "`background`"),
    "background with NaN": (
        {"background": np.where(BACKGROUND > 1, np.nan, BACKGROUND)},
        ValueError,
        r"`background`.*NaN",
    ),
    "background of strings": ({"background": BACKGROUND.astype(str)}, TypeError, "`background`"),
    "background inputs with different rows": (
        {"background": [BACKGROUND, BACKGROUND[:2]]},
        ValueError,
        r"`background`.*\[5, 2\] rows",
    ),
    "background dict with non-string keys": (
        {"background": {0: BACKGROUND}},
        TypeError,
        "`background`",
    ),
}


@pytest.mark.parametrize(
    "kwargs, error, match", EG_CONSTRUCTOR_CASES.values(), ids=EG_CONSTRUCTOR_CASES.keys()
)
def test_expected_gradients_constructor_errors(counting, kwargs, error, match):
    arguments = {"background": BACKGROUND, **kwargs}
    with pytest.raises(error, match=match):
        ExpectedGradients(counting, **arguments)
    assert counting.calls == 0


def test_background_that_does_not_fit_the_declared_input(linear):
    with pytest.raises(ValueError, match=r"`background` must have shape \(N, 3\)"):
        ExpectedGradients(linear, np.zeros((4, 5), "float32"))


def test_background_with_the_wrong_number_of_inputs(linear):
    with pytest.raises(ValueError, match=r"1 input\(s\): `background` must hold one array"):
        ExpectedGradients(linear, [BACKGROUND, BACKGROUND])


EG_EXPLAIN_CASES = {
    "X rows of another shape": ({"X": X[:, :2]}, ValueError, r"`X` must have rows of the backgr"),
    "X with several inputs": ({"X": [X, X]}, ValueError, "`X` must have one array per array"),
    "target float": ({"X": X, "target": 1.5}, TypeError, "`target`"),
    "forward_kwargs list": ({"X": X, "forward_kwargs": [1]}, TypeError, "`forward_kwargs`"),
    "progress_bar string": ({"X": X, "progress_bar": "yes"}, TypeError, "`progress_bar`"),
    "target and targets": ({"X": X, "target": 0, "targets": [0, 1]}, ValueError, "`targets`"),
}


@pytest.mark.parametrize(
    "kwargs, error, match", EG_EXPLAIN_CASES.values(), ids=EG_EXPLAIN_CASES.keys()
)
def test_expected_gradients_explain_errors_before_tensorflow(counting, kwargs, error, match):
    explainer = ExpectedGradients(counting, BACKGROUND, n_samples=2)
    with pytest.raises(error, match=match):
        explainer.explain(**kwargs)
    with pytest.raises(error, match=match):
        explainer.validate(**kwargs)
    assert counting.calls == 0


def test_background_that_overflows_the_dtype_of_X(counting):
    explainer = ExpectedGradients(counting, np.full((2, 3), 1e5), n_samples=2)
    with pytest.raises(ValueError, match="`background` overflows the input's dtype float16"):
        explainer.explain(X.astype("float16"), target=0)
    assert counting.calls == 0


def test_layer_with_per_sample_forward_kwargs():
    model = bypass_model()
    explainer = ExpectedGradients(model, BACKGROUND, layer=model.get_layer("bypassed"))
    with pytest.raises(ValueError, match=r"`forward_kwargs` with per-sample arrays.*`layer`"):
        explainer.explain(X, target=0, forward_kwargs={"mask": np.ones((N, 3))})


def test_explain_without_a_model(counting):
    explainer = ExpectedGradients(counting, BACKGROUND, n_samples=2)
    explainer.model = None
    with pytest.raises(ValueError, match=r"no model.*ExpectedGradients\.load"):
        explainer.explain(X, target=0)


# --- NoiseTunnel -------------------------------------------------------------------------------

NT_CONSTRUCTOR_CASES = {
    "unknown nt_type": ({"nt_type": "smooth"}, ValueError, "`nt_type`"),
    "nt_type not a string": ({"nt_type": 1}, ValueError, "`nt_type`"),
    "nt_samples zero": ({"nt_samples": 0}, ValueError, "`nt_samples`"),
    "nt_samples None": ({"nt_samples": None}, TypeError, "`nt_samples`"),
    "stdevs negative": ({"stdevs": -0.1}, ValueError, "`stdevs`"),
    "stdevs NaN": ({"stdevs": float("nan")}, ValueError, "`stdevs`"),
    "stdevs infinite": ({"stdevs": float("inf")}, ValueError, "`stdevs`"),
    "stdevs a string": ({"stdevs": "1"}, TypeError, "`stdevs`"),
    "stdevs a list of strings": ({"stdevs": ["1.0"]}, TypeError, "`stdevs`"),
    "stdevs an empty list": ({"stdevs": []}, TypeError, "`stdevs`"),
    "stdevs an empty tuple": ({"stdevs": ()}, TypeError, "`stdevs`"),
    "stdevs tuple with a negative": ({"stdevs": (1.0, -1.0)}, ValueError, "`stdevs`"),
    "seed negative": ({"seed": -2}, ValueError, "`seed`"),
}


@pytest.mark.parametrize(
    "kwargs, error, match", NT_CONSTRUCTOR_CASES.values(), ids=NT_CONSTRUCTOR_CASES.keys()
)
def test_noise_tunnel_constructor_errors(counting, kwargs, error, match):
    with pytest.raises(error, match=match):
        NoiseTunnel(IntegratedGradients(counting), **kwargs)
    assert counting.calls == 0


@pytest.mark.parametrize("stdevs", [(1.0, 1.0), [1.0, 1.0, 0.0]])
def test_noise_tunnel_checks_stdevs_against_the_declared_inputs_at_construction(stdevs):
    model = linear_model(np.ones((3, 1), "float32"))  # one declared input
    with pytest.raises(ValueError, match=r"`stdevs` as a sequence must have one value per model"):
        NoiseTunnel(IntegratedGradients(model), stdevs=stdevs)


def test_noise_tunnel_takes_stdevs_as_a_list_or_a_tuple():
    weights = np.array([[1.0], [2.0]], "float32")
    model = linear_multi_input_model(weights, weights)
    X = [np.ones((2, 2), "float32"), np.ones((2, 2), "float32")]
    explanations = [
        NoiseTunnel(IntegratedGradients(model), nt_samples=2, stdevs=stdevs, seed=3).explain(X)
        for stdevs in ([0.0, 0.5], (0.0, 0.5))
    ]
    for listed, tupled in zip(*(e.attributions for e in explanations), strict=True):
        np.testing.assert_array_equal(listed, tupled)
    assert explanations[0].meta["params"]["stdevs"] == [0.0, 0.5]


def test_noise_tunnel_wraps_only_ig_plugin_explainers(counting):
    with pytest.raises(TypeError, match="`explainer`"):
        NoiseTunnel(counting)


NT_EXPLAIN_CASES = {
    "stdevs for another number of inputs": (
        {"stdevs": (1.0, 1.0)},
        {"X": X, "target": 0},
        ValueError,
        r"`stdevs` as a sequence must have one value per input of X \(1\)",
    ),
    "an argument the wrapped explainer does not take": (
        {},
        {"X": X, "target": 0, "nt_samples": 4},
        TypeError,
        "nt_samples",
    ),
    "a bad argument of the wrapped explainer": (
        {},
        {"X": X, "baselines": "zeros"},
        TypeError,
        "`baselines`",
    ),
    "integer X": ({}, {"X": X.astype("int32"), "target": 0}, TypeError, "`X`"),
}


@pytest.mark.parametrize(
    "nt_kwargs, kwargs, error, match", NT_EXPLAIN_CASES.values(), ids=NT_EXPLAIN_CASES.keys()
)
def test_noise_tunnel_explain_errors_before_tensorflow(counting, nt_kwargs, kwargs, error, match):
    tunnel = NoiseTunnel(IntegratedGradients(counting), **nt_kwargs)
    with pytest.raises(error, match=match):
        tunnel.explain(**kwargs)
    assert counting.calls == 0


def test_noise_on_token_ids_is_refused_but_zero_noise_is_not():
    inputs = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(12, 4, name="embedding")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(embedded))
    model = set_seeded_weights(keras.Model(inputs, outputs), seed=62)
    explainer = IntegratedGradients(model, layer=model.get_layer("embedding"), n_steps=4)
    ids = np.random.default_rng(63).integers(1, 12, (3, 5)).astype("int32")
    with pytest.raises(ValueError, match=r"`X` holds int32 values.*`stdevs`"):
        NoiseTunnel(explainer, stdevs=1.0).explain(ids, target=0)
    smoothed = NoiseTunnel(explainer, nt_samples=2, stdevs=0.0).explain(ids, target=0)
    np.testing.assert_array_equal(
        smoothed.attributions[0], explainer.explain(ids, target=0).attributions[0]
    )
