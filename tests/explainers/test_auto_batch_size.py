"""``internal_batch_size="auto"``: the chunk chosen from a memory budget, never the result."""

import numpy as np
import pytest
from compat import keras
from image_models import images, small_cnn
from models import RowCounter, functional_mlp, seeded_floats, set_seeded_weights
from saved_explainers import SAVED_BY_0_1_0, build_model

from ig_plugin import (
    BlurIntegratedGradients,
    ExpectedGradients,
    GuidedIntegratedGradients,
    IntegratedGradients,
    NoiseTunnel,
)
from ig_plugin._engine import memory
from ig_plugin._engine.memory import BatchSize, PointCost
from ig_plugin._request.forward_kwargs import ForwardKwargs
from ig_plugin._request.inputs import Layout
from ig_plugin._request.request import ModelCall

X = seeded_floats((9, 4), seed=90)
SINGLE = ModelCall(Layout("single"))


@pytest.fixture(scope="module")
def classifier():
    return functional_mlp(4, 6, 5, seed=91)


def counted_model(rows):
    inputs = keras.Input((4,))
    counted = RowCounter(rows)(inputs)
    hidden = keras.layers.Dense(6, activation="tanh")(counted)
    return set_seeded_weights(keras.Model(inputs, keras.layers.Dense(5)(hidden)), seed=92)


def cost_of(explainer):
    return explainer._compiled_model().point_cost((X,), SINGLE, ForwardKwargs({}, {}))


def assert_same(auto, fixed):
    for ours, theirs in zip(auto.attributions, fixed.attributions, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(auto.deltas, fixed.deltas, rtol=1e-6, atol=1e-6)


# --- the result does not depend on the chunk ---------------------------------------------------


@pytest.mark.parametrize("budget", [None, 5_000, 50_000])
def test_integrated_gradients_equal_a_fixed_size(classifier, budget):
    auto = IntegratedGradients(classifier, n_steps=17, internal_batch_size="auto")
    if budget is not None:
        auto = IntegratedGradients(
            classifier, n_steps=17, internal_batch_size="auto", memory_budget=budget
        )
    fixed = IntegratedGradients(classifier, n_steps=17, internal_batch_size=7)
    assert_same(auto.explain(X, target=2), fixed.explain(X, target=2))
    assert_same(auto.explain(X, targets="all"), fixed.explain(X, targets="all"))


def test_a_layer_and_auto_steps_equal_a_fixed_size(classifier):
    layer = classifier.layers[1]
    for n_steps in (12, "auto"):
        auto = IntegratedGradients(
            classifier, layer=layer, n_steps=n_steps, internal_batch_size="auto"
        )
        fixed = IntegratedGradients(classifier, layer=layer, n_steps=n_steps, internal_batch_size=5)
        assert_same(auto.explain(X, target=1), fixed.explain(X, target=1))


def test_expected_gradients_and_noise_tunnel_equal_a_fixed_size(classifier):
    background = seeded_floats((6, 4), seed=93)
    auto = ExpectedGradients(
        classifier, background, n_samples=20, seed=1, internal_batch_size="auto"
    )
    fixed = ExpectedGradients(classifier, background, n_samples=20, seed=1, internal_batch_size=3)
    assert_same(auto.explain(X, target=0), fixed.explain(X, target=0))
    tunnel_auto = NoiseTunnel(
        IntegratedGradients(classifier, n_steps=8, internal_batch_size="auto"), nt_samples=4, seed=2
    )
    tunnel_fixed = NoiseTunnel(
        IntegratedGradients(classifier, n_steps=8, internal_batch_size=6), nt_samples=4, seed=2
    )
    assert_same(tunnel_auto.explain(X, target=3), tunnel_fixed.explain(X, target=3))


# --- the budget decides the chunk --------------------------------------------------------------


@pytest.mark.parametrize("points", [1, 3, 8])
def test_the_budget_sets_the_points_per_gradient_batch(points):
    rows = []
    model = counted_model(rows)
    probe = IntegratedGradients(model, n_steps=10, internal_batch_size="auto")
    cost = cost_of(probe)
    budget = points * cost.gradient_bytes(1) + 1
    explainer = IntegratedGradients(
        model, n_steps=10, internal_batch_size="auto", memory_budget=budget
    )
    rows.clear()
    explainer.explain(X, target=0)
    # A forward pass keeps no gradient: it takes more rows than a gradient batch.
    forward_rows = BatchSize(None, budget).forward_rows(cost)
    assert forward_rows > points
    n_forward = 2 * -(-len(X) // forward_rows)  # on X, then on the baselines
    assert max(rows[:n_forward]) == min(forward_rows, len(X))
    gradient_chunks = rows[n_forward:]
    assert max(gradient_chunks) == points
    assert sum(gradient_chunks) == len(X) * 10


def test_k_targets_cost_more_per_point():
    rows = []
    model = counted_model(rows)
    probe = IntegratedGradients(model, n_steps=10, internal_batch_size="auto")
    cost = cost_of(probe)
    budget = 20 * cost.gradient_bytes(1)
    explainer = IntegratedGradients(
        model, n_steps=10, internal_batch_size="auto", memory_budget=budget
    )
    rows.clear()
    explainer.explain(X, targets=[0, 1, 2, 3, 4])
    assert rows[:2] == [len(X), len(X)]  # the forward passes on X and on the baselines
    assert max(rows[2:]) == budget // cost.gradient_bytes(5) < 20


def test_a_budget_too_small_for_one_point_is_an_error(classifier):
    explainer = IntegratedGradients(classifier, internal_batch_size="auto", memory_budget=100)
    per_point = cost_of(explainer).gradient_bytes(1)
    message = rf"`memory_budget` is 100 bytes, less than one path point .* \(about {per_point:,}"
    with pytest.raises(ValueError, match=message):
        explainer.explain(X, target=0)


def test_the_default_budget_is_a_fraction_of_the_available_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 8_000_000)
    assert memory.default_budget() == 2_000_000
    cost = PointCost(activation_bytes=1_000, point_bytes=100)
    # 1.5 * (2 * 1000 + (1 + 3) * 100) = 3,600 bytes a point: 555 points, capped at 4,096.
    assert BatchSize(None).gradient_points(cost) == 555
    assert BatchSize(None, 10**12).gradient_points(cost) == memory.MAX_AUTO_POINTS
    assert memory.available_bytes.__module__  # the real one reads /proc/meminfo


def test_available_memory_reads_the_host():
    available = memory.available_bytes()
    assert 0 < available < 1 << 50


def test_the_estimate_counts_every_activation_of_a_row():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(1000, use_bias=False)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False)(hidden))
    cost = cost_of(IntegratedGradients(model))
    # At least the input, the 1,000 hidden units and the outputs, in float32.
    assert cost.activation_bytes >= 4 * (4 + 1000 + 2)
    assert cost.point_bytes == 16


# --- arguments ---------------------------------------------------------------------------------

BAD = {
    "a word": ({"internal_batch_size": "big"}, TypeError, "`internal_batch_size` must be an int"),
    "zero": ({"internal_batch_size": 0}, ValueError, "internal_batch_size"),
    "budget without auto": (
        {"internal_batch_size": 10, "memory_budget": 10**6},
        ValueError,
        "`memory_budget` applies with internal_batch_size='auto' only",
    ),
    "budget of zero": (
        {"internal_batch_size": "auto", "memory_budget": 0},
        ValueError,
        "memory_budget",
    ),
    "budget as text": (
        {"internal_batch_size": "auto", "memory_budget": "1GB"},
        TypeError,
        "`memory_budget` must be an int",
    ),
}


@pytest.mark.parametrize("kwargs, error, match", BAD.values(), ids=BAD.keys())
def test_bad_arguments_fail_before_the_model_runs(kwargs, error, match):
    rows = []
    model = counted_model(rows)
    for make in (
        lambda: IntegratedGradients(model, **kwargs),
        lambda: ExpectedGradients(model, X[:2], **kwargs),
    ):
        with pytest.raises(error, match=match):
            make()
    assert rows == []


# --- saving ------------------------------------------------------------------------------------


def test_saving_keeps_auto_and_the_budget(classifier, tmp_path):
    explainer = IntegratedGradients(
        classifier, n_steps=9, internal_batch_size="auto", memory_budget=123_456
    )
    explainer.save(tmp_path / "saved")
    loaded = IntegratedGradients.load(tmp_path / "saved", classifier)
    assert loaded.internal_batch_size == "auto"
    assert loaded.memory_budget == 123_456
    assert loaded.meta["params"]["internal_batch_size"] == "auto"
    assert loaded.meta["params"]["memory_budget"] == 123_456
    assert_same(loaded.explain(X, target=1), explainer.explain(X, target=1))


def test_an_explainer_saved_by_0_1_0_keeps_its_batch_size():
    loaded = IntegratedGradients.load(SAVED_BY_0_1_0 / "target_fn", build_model())
    assert isinstance(loaded.internal_batch_size, int)
    assert loaded.memory_budget is None
    assert not loaded._batching.is_auto


def test_guided_and_blur_integrated_gradients_equal_a_fixed_size():
    # Guided IG's path can depend on the gradient batch (float32 sums), so the fixed size holds
    # every image as "auto" does here; Blur IG's points are laid out ahead and any size agrees.
    cnn, X_images = small_cnn(), images(5)
    guided_auto = GuidedIntegratedGradients(cnn, n_steps=12, internal_batch_size="auto")
    guided_fixed = GuidedIntegratedGradients(cnn, n_steps=12, internal_batch_size=5)
    assert_same(guided_auto.explain(X_images, target=1), guided_fixed.explain(X_images, target=1))
    blur_auto = BlurIntegratedGradients(
        cnn, max_sigma=3.0, n_steps=10, internal_batch_size="auto", memory_budget=10_000_000
    )
    blur_fixed = BlurIntegratedGradients(cnn, max_sigma=3.0, n_steps=10, internal_batch_size=3)
    assert_same(blur_auto.explain(X_images, target=2), blur_fixed.explain(X_images, target=2))
    assert blur_auto.meta["params"]["memory_budget"] == 10_000_000


def test_guided_and_blur_integrated_gradients_refuse_a_budget_without_auto():
    for explainer in (GuidedIntegratedGradients, BlurIntegratedGradients):
        with pytest.raises(ValueError, match="memory_budget"):
            explainer(small_cnn(), internal_batch_size=4, memory_budget=1_000)
