"""Properties over the argument space, with hypothesis.

Invariants that must hold for any valid combination of shapes, dtypes, N, n_steps, batch sizes,
baselines, targets and methods: equality with a numpy reference on linear models (whose IG is
``w * (x - x')``), exactness of the rules that integrate a linear integrand exactly, and
invariance to ``internal_batch_size``. And for invalid combinations: a ValueError or TypeError,
never another exception.

The models are few and built once (a new explainer costs a trace); the arguments vary.
"""

import os

import numpy as np
import pytest
from compat import keras
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from models import METHODS, power_sum_model

from ig_plugin import IntegratedGradients
from ig_plugin._integral.quadrature import MIN_STEPS, quadrature

#: IG_PLUGIN_HYPOTHESIS_EXAMPLES=1000 searches longer than CI does.
EXAMPLES = int(os.environ.get("IG_PLUGIN_HYPOTHESIS_EXAMPLES", "30"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: For properties whose examples each need a new explainer (about half a second to trace).
TRACING = settings(SETTINGS, max_examples=max(1, EXAMPLES // 2))

#: Input shapes (without the batch axis) of the linear models, and their outputs.
FEATURE_SHAPES = ((3,), (2, 2), (2, 3, 1))
N_OUTPUTS = 3


def _linear(feature_shape, seed):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(int(np.prod(feature_shape)), N_OUTPUTS)).astype("float32")
    inputs = keras.Input(feature_shape)
    dense = keras.layers.Dense(N_OUTPUTS, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights])
    return model, weights


LINEAR = {shape: _linear(shape, seed) for seed, shape in enumerate(FEATURE_SHAPES)}
EXPLAINERS: dict = {}


def explainer_for(shape, method, n_steps, batch):
    """One explainer per setting, reused across examples (each new one traces)."""
    key = (shape, method, n_steps, batch)
    if key not in EXPLAINERS:
        EXPLAINERS[key] = IntegratedGradients(
            LINEAR[shape][0], method=method, n_steps=n_steps, internal_batch_size=batch
        )
    return EXPLAINERS[key]


def reference_ig(weights, X, baselines, targets, method, n_steps):
    """IG by numpy on ``y = flatten(x) @ weights``: the gradient is constant along the path, so
    the rule only enters through the sum of its weights (1 for every rule)."""
    _, quadrature_weights = quadrature(method, n_steps)
    per_sample = weights[:, targets].T.reshape(X.shape)  # (N, *feature_shape)
    return quadrature_weights.sum() * per_sample * (X.astype(np.float64) - baselines)


finite = st.floats(-3, 3, allow_nan=False, width=32)


@st.composite
def linear_cases(draw):
    shape = draw(st.sampled_from(FEATURE_SHAPES))
    n = draw(st.integers(1, 9))
    X = draw(hnp.arrays(np.float32, (n, *shape), elements=finite))
    baseline_kind = draw(st.sampled_from(["none", "number", "row", "full"]))
    baselines = {
        "none": None,
        "number": draw(finite),
        "row": draw(hnp.arrays(np.float32, (1, *shape), elements=finite)),
        "full": draw(hnp.arrays(np.float32, (n, *shape), elements=finite)),
    }[baseline_kind]
    targets = draw(st.lists(st.integers(0, N_OUTPUTS - 1), min_size=n, max_size=n))
    method = draw(st.sampled_from(METHODS))
    n_steps = draw(st.sampled_from([MIN_STEPS[method], 8]))
    batch = draw(st.sampled_from([1, 5, 64]))
    return shape, X, baselines, np.array(targets), method, n_steps, batch


@TRACING
@given(linear_cases())
def test_linear_models_equal_a_numpy_reference(case):
    shape, X, baselines, targets, method, n_steps, batch = case
    explanation = explainer_for(shape, method, n_steps, batch).explain(
        X, baselines=baselines, target=targets
    )
    start = np.zeros_like(X) if baselines is None else np.broadcast_to(baselines, X.shape)
    expected = reference_ig(LINEAR[shape][1], X, start, targets, method, n_steps)
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=2e-5, atol=2e-5)
    assert explanation.attributions[0].dtype == np.float32
    assert np.abs(explanation.deltas).max() < 1e-4
    np.testing.assert_array_equal(explanation.target, targets)


SQUARE = power_sum_model(4, 2)


@TRACING
@given(
    X=hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.just(4)), elements=finite),
    baseline=finite,
    method=st.sampled_from(["gausslegendre", "riemann_middle", "riemann_trapezoid"]),
    n_steps=st.integers(2, 6),
    batches=st.tuples(st.integers(1, 30), st.integers(1, 30)),
)
def test_exact_rules_are_complete_and_batch_size_invariant(X, baseline, method, n_steps, batches):
    """On ``sum x**2`` the path integrand is linear in alpha: these rules integrate it exactly,
    so the deltas vanish, whatever ``internal_batch_size`` cuts the paths into."""
    results = [
        IntegratedGradients(SQUARE, method=method, n_steps=n_steps, internal_batch_size=b).explain(
            X, baselines=baseline
        )
        for b in batches
    ]
    gap = np.abs(results[0].deltas) / np.maximum(1.0, np.abs(X.astype(np.float64) ** 2).sum(axis=1))
    assert gap.max() < 1e-5
    np.testing.assert_allclose(
        results[0].attributions[0], results[1].attributions[0], rtol=1e-5, atol=1e-5
    )
    expected = X.astype(np.float64) ** 2 - np.float64(baseline) ** 2  # IG of x_j^2 per feature
    np.testing.assert_allclose(results[0].attributions[0], expected, rtol=1e-4, atol=1e-4)


# --- invalid combinations: ValueError or TypeError, never another exception ----------------------

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(-2, 4), max_size=4),
    st.lists(st.floats(-2, 2), max_size=4),
    hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int32, np.bool_, np.complex64, np.float16]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    ),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2),
)


# Each argument is valid about half the time, so that bad ones are met at every stage.
valid_X = hnp.arrays(
    st.sampled_from([np.float32, np.float64, np.uint8]),
    st.tuples(st.integers(1, 4), st.just(3)),
    elements=st.integers(0, 3),
)


@SETTINGS
@given(
    X=st.one_of(valid_X, anything),
    baselines=st.one_of(st.none(), finite, anything),
    target=st.one_of(st.integers(0, N_OUTPUTS - 1), anything),
    forward_kwargs=st.one_of(st.none(), anything),
    output=st.one_of(st.none(), st.just(0), anything),
    attribute_to_layer_inputs=st.one_of(st.just(False), anything),
    progress_bar=st.one_of(st.just(False), anything),
)
def test_explain_arguments_fail_only_with_value_or_type_errors(
    X, baselines, target, forward_kwargs, output, attribute_to_layer_inputs, progress_bar
):
    explainer = explainer_for((3,), "gausslegendre", 2, 64)
    try:
        explainer.explain(
            X,
            forward_kwargs=forward_kwargs,
            baselines=baselines,
            target=target,
            attribute_to_layer_inputs=attribute_to_layer_inputs,
            output=output,
            progress_bar=progress_bar,
        )
    except (ValueError, TypeError):
        pass


@SETTINGS
@given(
    method=st.one_of(st.sampled_from(METHODS), anything),
    n_steps=anything,
    internal_batch_size=anything,
    target_fn=st.one_of(st.none(), anything),
    layer=st.one_of(st.none(), anything),
)
def test_constructor_arguments_fail_only_with_value_or_type_errors(
    method, n_steps, internal_batch_size, target_fn, layer
):
    assume(not callable(layer))
    try:
        IntegratedGradients(
            LINEAR[(3,)][0],
            layer=layer,
            target_fn=target_fn,
            method=method,
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
        )
    except (ValueError, TypeError):
        pass


@pytest.mark.parametrize("shape", FEATURE_SHAPES)
def test_the_reference_itself_is_not_trivial(shape):
    """The numpy reference is what it claims: w * (x - x') for a hand-checked sample."""
    _, weights = LINEAR[shape]
    X = np.ones((1, *shape), np.float32)
    expected = weights[:, 1].reshape(shape)[np.newaxis]
    np.testing.assert_allclose(
        reference_ig(weights, X, np.zeros_like(X), np.array([1]), "gausslegendre", 5), expected
    )
